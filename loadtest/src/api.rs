//! The REST calls a scenario needs to set itself up.

use anyhow::{Context, bail};
use serde_json::{Value, json};
use uuid::Uuid;

/// A user the scenario created and logged in.
#[derive(Clone, Debug)]
pub struct User {
    pub email: String,
    pub token: String,
}

pub struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str) -> Self {
        Api {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
        }
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
