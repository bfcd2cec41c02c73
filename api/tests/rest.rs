//! The REST API over a real socket with a real HTTP client, on the embedded stores.

use std::sync::Arc;

use chorus_api::{ApiLimits, ApiState};
use chorus_channel_node::{ChannelNodeConfig, ChannelService};
use chorus_cluster::LocalBus;
use chorus_cluster::access::LocalAccessNotifier;
use chorus_core::auth::Authenticator;
use chorus_core::{MessageStore, MetadataStore, RedbMessageStore, SqliteMetadataStore};
use chorus_protocol::MessageEvent;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

struct Api {
    base: String,
    http: reqwest::Client,
    messages: Arc<RedbMessageStore>,
    _dir: tempfile::TempDir,
}

impl Api {
    async fn start(limits: ApiLimits) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn MetadataStore> =
            Arc::new(SqliteMetadataStore::in_memory().await.unwrap());
        let messages = Arc::new(RedbMessageStore::open(&dir.path().join("messages.redb")).unwrap());
        let bus = Arc::new(LocalBus::new(1024));
        let channels = ChannelService::start(
            ChannelNodeConfig::new(dir.path().join("channels")),
            messages.clone(),
            bus.clone(),
        )
        .await
        .unwrap();
        let access: Arc<LocalAccessNotifier> = Arc::new(LocalAccessNotifier::default());
        let quotas = Arc::new(chorus_core::limits::quota::MessageQuotas::new(
            store.clone(),
            Arc::new(chorus_api::RateLimitQuotas::new(Arc::new(
                chorus_cluster::rate_limit::LocalRateLimits,
            ))),
        ));
        let state = ApiState {
            quotas,
            auth: Authenticator::new(b"rest-test-secret-rest-test-secret", store.clone()),
            store,
            messages: messages.clone(),
            limits,
            rate_limits: Arc::new(chorus_cluster::rate_limit::LocalRateLimits),
            router: Arc::new(channels),
            access: access.clone(),
            presence: Arc::new(chorus_presence::MemoryPresence::default()),
            admin_token: None,
            trusted_proxies: Default::default(),
            gateway_port: None,
            clock: Default::default(),
            streams: chorus_api::Streams::new(bus, access, Default::default()),
            outbound: chorus_webhooks::resolver::Outbound::new(
                Default::default(),
                std::time::Duration::from_secs(5),
            )
            .unwrap(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(chorus_api::serve(listener, state, std::future::pending()));
        Api {
            base,
            http: reqwest::Client::new(),
            messages,
            _dir: dir,
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call("POST", path, token, Some(body)).await
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call("GET", path, Some(token), None).await
    }

    /// Registers and logs in; returns the login response.
    async fn user(&self, email: &str) -> Value {
        let (status, body) = self
            .post(
                "/v1/auth/register",
                None,
                json!({"email": email, "password": "long enough"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = self
            .post(
                "/v1/auth/login",
                None,
                json!({"email": email, "password": "long enough"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

fn token(login: &Value) -> &str {
    login["access_token"].as_str().unwrap()
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

#[tokio::test]
async fn register_validates_and_refuses_duplicates() {
    let api = Api::start(ApiLimits::default()).await;
    let cases = [
        (
            json!({"email": "not-an-email", "password": "long enough"}),
            "invalid_email",
        ),
        (
            json!({"email": "a@example.com", "password": "short"}),
            "weak_password",
        ),
        (json!({"email": "a@example.com"}), "invalid_body"),
    ];
    for (body, code) in cases {
        let (status, answer) = api.post("/v1/auth/register", None, body).await;
        assert_eq!(
            (status, error_code(&answer)),
            (StatusCode::BAD_REQUEST, code)
        );
    }
    let (status, user) = api
        .post(
            "/v1/auth/register",
            None,
            json!({"email": "Ada@Example.com", "password": "long enough"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["display_name"], "ada");
    let (status, answer) = api
        .post(
            "/v1/auth/register",
            None,
            json!({"email": "ADA@example.com", "password": "long enough"}),
        )
        .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::CONFLICT, "email_taken")
    );
}

/// An API that runs without a gateway in its process says so, rather than naming a port.
#[tokio::test]
async fn the_gateway_endpoint_is_a_404_without_a_gateway() {
    let api = Api::start(ApiLimits::default()).await;
    let (status, body) = api.call("GET", "/v1/gateway", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn malformed_requests_get_json_errors() {
    let api = Api::start(ApiLimits::default()).await;
    let response = api
        .http
        .post(format!("{}/v1/auth/login", api.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&response.json().await.unwrap()), "invalid_json");

    let response = api
        .http
        .post(format!("{}/v1/auth/login", api.base))
        .body(r#"{"email":"a@b.co","password":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let huge = json!({"email": "a@b.co", "password": "x".repeat(70 * 1024)});
    let (status, body) = api.post("/v1/auth/login", None, huge).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
    );

    let (status, body) = api.call("GET", "/v1/nowhere", None, None).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (status, body) = api.call("DELETE", "/v1/auth/login", None, None).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    let (status, body) = api.call("GET", "/v1/users/me", Some("garbage"), None).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );

    // Malformed path parameters are JSON errors too, not axum's `text/plain` "Invalid URL".
    let owner = api.user("paths@example.com").await;
    let channel = Uuid::new_v4();
    for path in [
        "/v1/channels/not-a-uuid".to_string(),
        "/v1/workspaces/123/channels".to_string(),
        "/v1/channels/%00".to_string(),
        "/v1/channels/%FF%FE".to_string(),
        format!("/v1/channels/{channel}/messages/ten"),
        format!("/v1/channels/{channel}/messages/-1"),
        format!("/v1/channels/{channel}/messages/99999999999999999999999"),
    ] {
        let response = api
            .http
            .get(format!("{}{path}", api.base))
            .bearer_auth(token(&owner))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{path}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(error_code(&body), "invalid_path", "{path}: {body}");
    }
    let (status, body) = api
        .call(
            "PUT",
            &format!("/v1/channels/{channel}/messages/1/reactions/%FF"),
            Some(token(&owner)),
            None,
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_path")
    );
}

#[tokio::test]
async fn login_refresh_rotation_replay_and_logout() {
    let api = Api::start(ApiLimits::default()).await;
    let login = api.user("ada@example.com").await;
    assert_eq!(login["token_type"], "Bearer");
    assert_eq!(login["expires_in"], 3600);
    let (status, body) = api
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "ada@example.com", "password": "wrong password"}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "invalid_credentials")
    );
    let (status, body) = api
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "nobody@example.com", "password": "wrong password"}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "invalid_credentials")
    );

    // Refresh rotates: the new token works once, the old one no longer.
    let first = login["refresh_token"].as_str().unwrap();
    let (status, refreshed) = api
        .post("/v1/auth/refresh", None, json!({"refresh_token": first}))
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let second = refreshed["refresh_token"].as_str().unwrap();
    assert_ne!(first, second);
    let (status, me) = api.get("/v1/users/me", token(&refreshed)).await;
    assert_eq!(
        (status, me["email"].as_str()),
        (StatusCode::OK, Some("ada@example.com"))
    );

    // Replaying the used token revokes the whole session, so the rotated one dies too.
    let (status, body) = api
        .post("/v1/auth/refresh", None, json!({"refresh_token": first}))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "invalid_refresh_token")
    );
    let (status, _) = api
        .post("/v1/auth/refresh", None, json!({"refresh_token": second}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = api.get("/v1/users/me", token(&refreshed)).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "session_revoked")
    );

    // Logout ends a session at once.
    let login = api
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "ada@example.com", "password": "long enough"}),
        )
        .await
        .1;
    let (status, _) = api
        .post("/v1/auth/logout", Some(token(&login)), json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = api.get("/v1/users/me", token(&login)).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "session_revoked")
    );
    let (status, _) = api
        .post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": login["refresh_token"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn login_is_rate_limited_per_account_with_retry_after() {
    let api = Api::start(ApiLimits {
        login_per_minute_per_account: 3,
        ..ApiLimits::default()
    })
    .await;
    api.user("ada@example.com").await; // one login used
    for _ in 0..2 {
        let (status, _) = api
            .post(
                "/v1/auth/login",
                None,
                json!({"email": "ada@example.com", "password": "bad password"}),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let response = api
        .http
        .post(format!("{}/v1/auth/login", api.base))
        .json(&json!({"email": "ada@example.com", "password": "long enough"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(error_code(&response.json().await.unwrap()), "rate_limited");
}

#[tokio::test]
async fn workspaces_channels_membership_and_visibility() {
    let api = Api::start(ApiLimits::default()).await;
    let owner = api.user("owner@example.com").await;
    let member = api.user("member@example.com").await;
    let outsider = api.user("outsider@example.com").await;

    let (status, workspace) = api
        .post(
            "/v1/workspaces",
            Some(token(&owner)),
            json!({"name": "  Acme  "}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        (workspace["name"].as_str(), workspace["role"].as_str()),
        (Some("Acme"), Some("owner"))
    );
    let ws = workspace["id"].as_str().unwrap();
    let (status, body) = api
        .post("/v1/workspaces", Some(token(&owner)), json!({"name": ""}))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_name")
    );

    let (status, body) = api
        .post(
            &format!("/v1/workspaces/{ws}/members"),
            Some(token(&owner)),
            json!({"email": "member@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = api
        .post(
            &format!("/v1/workspaces/{ws}/members"),
            Some(token(&owner)),
            json!({"email": "member@example.com"}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::CONFLICT, "already_member")
    );
    let (status, body) = api
        .post(
            &format!("/v1/workspaces/{ws}/members"),
            Some(token(&member)),
            json!({"email": "outsider@example.com"}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let (status, body) = api
        .post(
            &format!("/v1/workspaces/{ws}/members"),
            Some(token(&owner)),
            json!({"email": "ghost@example.com"}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "user_not_found")
    );

    let create = |name: &str, private: bool| json!({"name": name, "private": private});
    let (status, public) = api
        .post(
            &format!("/v1/workspaces/{ws}/channels"),
            Some(token(&owner)),
            create("general", false),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, private) = api
        .post(
            &format!("/v1/workspaces/{ws}/channels"),
            Some(token(&owner)),
            create("secret", true),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = api
        .post(
            &format!("/v1/workspaces/{ws}/channels"),
            Some(token(&member)),
            create("general", false),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::CONFLICT, "channel_name_taken")
    );
    let (status, body) = api
        .post(
            &format!("/v1/workspaces/{ws}/channels"),
            Some(token(&member)),
            create("Bad Name", false),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_channel_name")
    );
    let (status, _) = api
        .post(
            &format!("/v1/workspaces/{ws}/channels"),
            Some(token(&outsider)),
            create("mine", false),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a workspace one is not in does not exist"
    );

    // The member sees the public channel only, not yet as a member.
    let (status, listing) = api
        .get(&format!("/v1/workspaces/{ws}/channels"), token(&member))
        .await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<(&str, bool)> = listing
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap(),
                c["is_member"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(names, vec![("general", false)]);
    let (status, _) = api
        .get(&format!("/v1/workspaces/{ws}/channels"), token(&outsider))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let public_id = public["id"].as_str().unwrap();
    let private_id = private["id"].as_str().unwrap();
    let (status, _) = api
        .post(
            &format!("/v1/channels/{public_id}/join"),
            Some(token(&member)),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // A private channel the member is not in does not exist for them: 404, never 403, which
    // would tell them it is there.
    let (status, body) = api
        .post(
            &format!("/v1/channels/{private_id}/join"),
            Some(token(&member)),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (status, body) = api
        .get(&format!("/v1/channels/{private_id}"), token(&member))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (status, _) = api
        .post(
            &format!("/v1/channels/{public_id}/join"),
            Some(token(&outsider)),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // History: members read, others do not.
    let (status, _) = api
        .get(
            &format!("/v1/channels/{public_id}/messages"),
            token(&member),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api
        .get(
            &format!("/v1/channels/{private_id}/messages"),
            token(&member),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api
        .get(
            &format!("/v1/channels/{public_id}/messages"),
            token(&outsider),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api
        .get(
            &format!("/v1/channels/{}/messages", Uuid::new_v4()),
            token(&member),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, mine) = api.get("/v1/workspaces", token(&member)).await;
    assert_eq!(mine[0]["role"], "member");
}

#[tokio::test]
async fn history_pages_both_ways() {
    let api = Api::start(ApiLimits::default()).await;
    let owner = api.user("owner@example.com").await;
    let (_, workspace) = api
        .post(
            "/v1/workspaces",
            Some(token(&owner)),
            json!({"name": "Acme"}),
        )
        .await;
    let ws = workspace["id"].as_str().unwrap();
    let (_, channel) = api
        .post(
            &format!("/v1/workspaces/{ws}/channels"),
            Some(token(&owner)),
            json!({"name": "general"}),
        )
        .await;
    let channel_id: Uuid = channel["id"].as_str().unwrap().parse().unwrap();
    let author: Uuid = owner["user"]["id"].as_str().unwrap().parse().unwrap();
    let messages: Vec<MessageEvent> = (1..=120)
        .map(|seq| {
            MessageEvent::new_message(
                channel_id,
                seq,
                Uuid::now_v7(),
                author,
                format!("m{seq}"),
                chrono::Utc::now(),
                format!("n{seq}"),
            )
        })
        .collect();
    api.messages.append(&messages).await.unwrap();

    let seqs = |page: &Value| -> Vec<u64> {
        page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_u64().unwrap())
            .collect()
    };
    let path = |query: &str| format!("/v1/channels/{channel_id}/messages{query}");
    let (status, newest) = api.get(&path(""), token(&owner)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seqs(&newest), (71..=120).collect::<Vec<_>>());
    assert_eq!(newest["has_more"], true);
    let (_, older) = api.get(&path("?before=71&limit=100"), token(&owner)).await;
    assert_eq!(seqs(&older), (1..=70).collect::<Vec<_>>());
    assert_eq!(older["has_more"], false);
    let (_, newer) = api.get(&path("?after=100&limit=10"), token(&owner)).await;
    assert_eq!(seqs(&newer), (101..=110).collect::<Vec<_>>());
    assert_eq!(newer["has_more"], true);
    let (_, tail) = api.get(&path("?after=110&limit=10"), token(&owner)).await;
    assert_eq!(
        (seqs(&tail).len(), tail["has_more"].as_bool()),
        (10, Some(false))
    );

    for bad in [
        "?limit=0",
        "?limit=201",
        "?before=5&after=1",
        "?after=-1",
        "?limit=ten",
    ] {
        let (status, body) = api.get(&path(bad), token(&owner)).await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::BAD_REQUEST, "invalid_query"),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_with_its_errors() {
    let api = Api::start(ApiLimits::default()).await;
    let (status, doc) = api.call("GET", "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/healthz",
        "/v1/auth/register",
        "/v1/auth/login",
        "/v1/auth/refresh",
        "/v1/auth/logout",
        "/v1/users/me",
        "/v1/workspaces",
        "/v1/workspaces/{workspace_id}/members",
        "/v1/workspaces/{workspace_id}/channels",
        "/v1/channels/{channel_id}/join",
        "/v1/channels/{channel_id}/messages",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from the OpenAPI document"
        );
    }
    // Every operation documents the rejections of what it takes: a malformed path parameter,
    // and a body that is malformed, too large or not JSON.
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let responses = &operation["responses"];
            let described = |status: &str| responses[status]["description"].as_str().unwrap_or("");
            let takes_path = operation["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["in"] == "path"));
            if takes_path {
                assert!(
                    described("400").contains("`invalid_path`"),
                    "{method} {path}: 400 invalid_path not documented"
                );
            }
            if operation.get("requestBody").is_some() {
                assert!(
                    described("400").contains("`invalid_json`"),
                    "{method} {path}"
                );
                assert!(
                    described("413").contains("`body_too_large`"),
                    "{method} {path}"
                );
                assert!(
                    described("415").contains("`unsupported_media_type`"),
                    "{method} {path}"
                );
            }
        }
    }
    // Every operation but the health check documents at least one error response.
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let codes: Vec<&String> = operation["responses"].as_object().unwrap().keys().collect();
            if path != "/healthz" {
                assert!(
                    codes.iter().any(|c| c.starts_with('4')),
                    "{method} {path} has no error response"
                );
            }
        }
    }
}

/// Bounded fuzzing of REST bodies: mutated and random JSON bodies on routes that parse one.
/// Whatever arrives, the answer is never a 5xx, and every refusal is a JSON error with a code.
/// The generator is a seeded xorshift: a failure names the input, and replays.
#[tokio::test]
async fn mutated_request_bodies_never_cause_a_server_error() {
    let api = Api::start(ApiLimits::default()).await;
    let login = api.user("fuzz@example.com").await;
    let token = token(&login).to_string();
    let (status, workspace) = api
        .post("/v1/workspaces", Some(&token), json!({"name": "fuzz"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{workspace}");
    let workspace = workspace["id"].as_str().unwrap().to_string();
    let routes: Vec<(&str, String, Option<&str>, &str)> = vec![
        (
            "POST",
            "/v1/auth/login".into(),
            None,
            r#"{"email":"fuzz@example.com","password":"long enough"}"#,
        ),
        (
            "POST",
            "/v1/workspaces".into(),
            Some(&token),
            r#"{"name":"team"}"#,
        ),
        (
            "PATCH",
            "/v1/users/me".into(),
            Some(&token),
            r#"{"display_name":"Fuzz","status_text":"here","status_emoji":":)"}"#,
        ),
        (
            "POST",
            format!("/v1/workspaces/{workspace}/channels"),
            Some(&token),
            r#"{"name":"general","description":"d","private":false}"#,
        ),
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    const FRAGMENTS: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "\\",
        "null",
        "1e999",
        "-1",
        "\"x\"",
        "\u{0}",
        "18446744073709551616",
        "true",
        "\"\u{feff}\"",
        "[[[[[[[[[[]]]]]]]]]]",
    ];
    for (method, path, auth, valid) in &routes {
        for round in 0..120 {
            let mut body = valid.as_bytes().to_vec();
            for _ in 0..=(next() % 4) {
                let at = (next() as usize) % (body.len() + 1);
                match next() % 4 {
                    0 if !body.is_empty() => {
                        let i = (next() as usize) % body.len();
                        body[i] ^= 1 << (next() % 8);
                    }
                    1 => body.truncate(at),
                    2 => {
                        let fragment = FRAGMENTS[(next() as usize) % FRAGMENTS.len()];
                        body.splice(at..at, fragment.bytes());
                    }
                    _ if at < body.len() => {
                        body.remove(at);
                    }
                    _ => {}
                }
            }
            let mut request = api
                .http
                .request(method.parse().unwrap(), format!("{}{path}", api.base))
                .header("content-type", "application/json")
                .body(body.clone());
            if let Some(token) = auth {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            let text = response.text().await.unwrap();
            let shown = String::from_utf8_lossy(&body);
            assert!(
                !status.is_server_error(),
                "{method} {path} round {round} body {shown:?}: {status} {text}"
            );
            if status.is_client_error() {
                let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                assert!(
                    answer["error"]["code"].is_string(),
                    "{method} {path} round {round} body {shown:?}: {status} {text}"
                );
            }
        }
    }
}
