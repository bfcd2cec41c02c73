//! The REST calls a scenario needs to set itself up.

use anyhow::{Context, bail};
use futures_util::{StreamExt, TryStreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

/// Users registered at once: each registration and login hashes a password (Argon2id) on the
/// server, so more at once only queue there.
const SETUP_CONCURRENCY: usize = 4;

/// A user the scenario created and logged in.
#[derive(Clone, Debug)]
pub struct User {
    pub email: String,
    pub token: String,
}

#[derive(Clone)]
pub struct Api {
    base: String,
    http: reqwest::Client,
}

/// One page of `GET /v1/channels/{id}/messages`: the `seq`s it holds, in order.
#[derive(Deserialize, Debug)]
pub struct Page {
    pub messages: Vec<PageMessage>,
    pub has_more: bool,
}

#[derive(Deserialize, Debug)]
pub struct PageMessage {
    pub seq: u64,
    pub text: String,
}

/// Where a history page starts.
#[derive(Clone, Copy, Debug)]
pub enum Cursor {
    Newest,
    Before(u64),
    After(u64),
}

impl Api {
    pub fn new(base: &str) -> Self {
        Api {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
        }
    }

    /// Like [`Api::new`], with a time limit on every request: a run that pauses or kills the
    /// server must not wait forever on a request to a frozen process.
    pub fn with_timeout(base: &str, timeout: std::time::Duration) -> anyhow::Result<Self> {
        Ok(Api {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder().timeout(timeout).build()?,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> anyhow::Result<Value> {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST {path} answered {status}: {body}");
        }
        Ok(body)
    }

    /// Registers and logs in a fresh user.
    pub async fn user(&self, label: &str) -> anyhow::Result<User> {
        let email = format!("{label}-{}@loadtest.invalid", Uuid::new_v4().simple());
        let password = "loadtest password";
        self.post(
            "/v1/auth/register",
            None,
            json!({"email": email, "password": password, "display_name": label}),
        )
        .await?;
        let login = self
            .post(
                "/v1/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await?;
        Ok(User {
            email,
            token: login["access_token"].as_str().context("token")?.to_string(),
        })
    }

    /// Registers and logs in `count` users labelled `{label}{n}`, a few at a time, in order.
    pub async fn users(&self, label: &str, count: usize) -> anyhow::Result<Vec<User>> {
        futures_util::stream::iter(0..count)
            .map(|n| async move { self.user(&format!("{label}{n}")).await })
            .buffered(SETUP_CONCURRENCY)
            .try_collect()
            .await
    }

    /// Adds each user to the workspace and has it join each of `channels`, a few at a time.
    pub async fn enroll(
        &self,
        owner: &User,
        workspace: Uuid,
        users: &[User],
        channels: &[Uuid],
    ) -> anyhow::Result<()> {
        futures_util::stream::iter(users)
            .map(|user| async move {
                self.add_member(owner, workspace, user).await?;
                for channel in channels {
                    self.join(user, *channel).await?;
                }
                anyhow::Ok(())
            })
            .buffer_unordered(2 * SETUP_CONCURRENCY)
            .try_collect::<()>()
            .await
    }

    /// Posts a message over REST (`POST /v1/channels/{id}/messages`) with the given nonce.
    pub async fn post_message(
        &self,
        user: &User,
        channel: Uuid,
        text: &str,
        nonce: &str,
    ) -> anyhow::Result<()> {
        self.post(
            &format!("/v1/channels/{channel}/messages"),
            Some(&user.token),
            json!({"text": text, "nonce": nonce}),
        )
        .await
        .map(drop)
    }

    /// Like [`Api::post_message`], and returns the `seq` the message was committed at. A repeat
    /// with the same nonce answers the first post's `seq`, so a caller may retry safely.
    pub async fn post_message_seq(
        &self,
        user: &User,
        channel: Uuid,
        text: &str,
        nonce: &str,
    ) -> anyhow::Result<u64> {
        let body = self
            .post(
                &format!("/v1/channels/{channel}/messages"),
                Some(&user.token),
                json!({"text": text, "nonce": nonce}),
            )
            .await?;
        body["seq"].as_u64().context("message seq")
    }

    /// Subscribes `url` to `events` in `channels` (`POST /v1/workspaces/{id}/event-subscriptions`,
    /// as a workspace admin) and returns the subscription's signing secret, shown only here.
    pub async fn subscribe(
        &self,
        admin: &User,
        workspace: Uuid,
        url: &str,
        events: &[&str],
        channels: &[Uuid],
    ) -> anyhow::Result<String> {
        let body = self
            .post(
                &format!("/v1/workspaces/{workspace}/event-subscriptions"),
                Some(&admin.token),
                json!({"url": url, "events": events, "channel_ids": channels}),
            )
            .await?;
        Ok(body["secret"]
            .as_str()
            .context("subscription secret")?
            .to_string())
    }

    /// One history page; `Err` carries the HTTP status for anything but 200.
    pub async fn history(
        &self,
        token: &str,
        channel: Uuid,
        cursor: Cursor,
        limit: usize,
    ) -> anyhow::Result<Page> {
        let mut url = format!("{}/v1/channels/{channel}/messages?limit={limit}", self.base);
        match cursor {
            Cursor::Newest => {}
            Cursor::Before(seq) => url.push_str(&format!("&before={seq}")),
            Cursor::After(seq) => url.push_str(&format!("&after={seq}")),
        }
        let response = self
            .http
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .context("GET history")?;
        let status = response.status();
        if !status.is_success() {
            bail!("GET history answered {status}");
        }
        response.json().await.context("history page")
    }

    /// One page of `GET /v1/channels/{id}/events?after=…`: every event after `after`, in seq
    /// order, as (seq, nonce). `Err` for anything but 200.
    pub async fn events(
        &self,
        token: &str,
        channel: Uuid,
        after: u64,
        limit: usize,
    ) -> anyhow::Result<Vec<(u64, String)>> {
        let url = format!(
            "{}/v1/channels/{channel}/events?after={after}&limit={limit}",
            self.base
        );
        let response = self
            .http
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .context("GET events")?;
        let status = response.status();
        if !status.is_success() {
            bail!("GET events answered {status}");
        }
        let body: Value = response.json().await.context("events page")?;
        body["events"]
            .as_array()
            .context("no events array")?
            .iter()
            .map(|event| {
                Ok((
                    event["seq"].as_u64().context("event seq")?,
                    event["nonce"].as_str().unwrap_or_default().to_string(),
                ))
            })
            .collect()
    }

    pub async fn workspace(&self, owner: &User) -> anyhow::Result<Uuid> {
        let body = self
            .post(
                "/v1/workspaces",
                Some(&owner.token),
                json!({"name": "loadtest"}),
            )
            .await?;
        Ok(body["id"].as_str().context("workspace id")?.parse()?)
    }

    pub async fn add_member(
        &self,
        owner: &User,
        workspace: Uuid,
        user: &User,
    ) -> anyhow::Result<()> {
        self.post(
            &format!("/v1/workspaces/{workspace}/members"),
            Some(&owner.token),
            json!({"email": user.email}),
        )
        .await
        .map(drop)
    }

    pub async fn channel(&self, owner: &User, workspace: Uuid, name: &str) -> anyhow::Result<Uuid> {
        let body = self
            .post(
                &format!("/v1/workspaces/{workspace}/channels"),
                Some(&owner.token),
                json!({"name": name}),
            )
            .await?;
        Ok(body["id"].as_str().context("channel id")?.parse()?)
    }

    pub async fn join(&self, user: &User, channel: Uuid) -> anyhow::Result<()> {
        self.post(
            &format!("/v1/channels/{channel}/join"),
            Some(&user.token),
            json!({}),
        )
        .await
        .map(drop)
    }
}
