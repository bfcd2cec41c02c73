//! Workspace limits (issue 16, plans): the instance admin sets a workspace's limits with the
//! operator token; members read them with the workspace's usage; joining, inviting and creating
//! channels beyond them is refused with 409 and a stable code; a retention policy longer than
//! the plan's cap (or forever under one) is refused; sends beyond the workspace's messages per
//! minute are refused over REST (429, `Retry-After`) and WebSocket (`workspace_message_limit`),
//! counted together — and, with Redis, across nodes. On the embedded node and on PostgreSQL.

mod common;

use chorus_core::testing;
use chorus_protocol::{ClientFrame, ErrorCode, ServerFrame};
use common::{Client, TestNode};
use serde_json::{Value, json};
use uuid::Uuid;

const ADMIN: &str = "operator-secret";

fn redis_url() -> String {
    std::env::var("CHORUS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// An operator call: method, path and optional body, with the admin token (or `token`).
async fn admin(
    node: &TestNode,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = node
        .http
        .request(method.parse().unwrap(), node.url(path))
        .header("x-chorus-admin-token", token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn code(body: &Value) -> Option<&str> {
    body["error"]["code"].as_str()
}

async fn email_of(node: &TestNode, token: &str) -> String {
    let (_, me) = node.get("/v1/users/me", token).await;
    me["email"].as_str().unwrap().to_string()
}

/// Posts over REST; returns the status, the error code and the Retry-After header.
async fn rest_post(
    node: &TestNode,
    channel: Uuid,
    token: &str,
    text: &str,
) -> (u16, Option<String>, Option<String>) {
    let response = node
        .http
        .post(node.url(&format!("/v1/channels/{channel}/messages")))
        .bearer_auth(token)
        .json(&json!({"text": text}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, code(&body).map(str::to_string), retry_after)
}

/// The whole story on one node.
async fn limits_are_set_shown_and_enforced(node: &TestNode) {
    let (_, alice) = node.user("alice").await;
    let (_, bob) = node.user("bob").await;
    let (_, carol) = node.user("carol").await;
    let (workspace, general) = node.team(&alice, &[]).await;
    let limits = format!("/v1/admin/workspaces/{workspace}/limits");

    // Only the operator sets limits, and only sane ones.
    let plan = json!({"max_members": 2, "max_channels": 2, "messages_per_minute": 3,
                      "max_retention_days": 30});
    let (status, _) = admin(node, "PUT", &limits, "wrong", Some(plan.clone())).await;
    assert_eq!(status, 401);
    let (status, _) = node
        .call("PUT", &limits, Some(&alice), Some(plan.clone()))
        .await;
    assert_eq!(status, 401, "a user's token is not the operator's");
    let (status, body) = admin(
        node,
        "PUT",
        &format!("/v1/admin/workspaces/{}/limits", Uuid::new_v4()),
        ADMIN,
        Some(plan.clone()),
    )
    .await;
    assert_eq!((status, code(&body)), (404, Some("not_found")));
    let (status, body) = admin(node, "PUT", &limits, ADMIN, Some(json!({"max_members": 0}))).await;
    assert_eq!(
        (status, code(&body)),
        (400, Some("invalid_limits")),
        "{body}"
    );
    let (status, body) = admin(node, "PUT", &limits, ADMIN, Some(json!({"max_users": 5}))).await;
    assert_eq!((status, code(&body)), (400, Some("invalid_body")), "{body}");
    let (status, body) = admin(node, "PUT", &limits, ADMIN, Some(plan.clone())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["limits"], plan);

    // Members read them with the usage; outsiders do not.
    let shown = format!("/v1/workspaces/{workspace}/limits");
    let (status, body) = node.get(&shown, &alice).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["limits"], plan);
    assert_eq!(body["usage"], json!({"members": 1, "channels": 1}));
    let (status, _) = node.get(&shown, &carol).await;
    assert_eq!(status, 404);

    // Members: bob fits, carol does not — neither added, invited nor accepting an invitation.
    let members = format!("/v1/workspaces/{workspace}/members");
    let (status, body) = node
        .post(
            &members,
            Some(&alice),
            json!({"email": email_of(node, &bob).await}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = node
        .post(
            &format!("/v1/channels/{general}/join"),
            Some(&bob),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let carol_email = email_of(node, &carol).await;
    let (status, body) = node
        .post(&members, Some(&alice), json!({"email": carol_email}))
        .await;
    assert_eq!(
        (status, code(&body)),
        (409, Some("workspace_member_limit")),
        "{body}"
    );
    let invites = format!("/v1/workspaces/{workspace}/invites");
    let (status, body) = node
        .post(&invites, Some(&alice), json!({"email": carol_email}))
        .await;
    assert_eq!(
        (status, code(&body)),
        (409, Some("workspace_member_limit")),
        "{body}"
    );
    let mut roomier = plan.clone();
    roomier["max_members"] = json!(3);
    let (status, _) = admin(node, "PUT", &limits, ADMIN, Some(roomier)).await;
    assert_eq!(status, 200);
    let (status, invite) = node
        .post(&invites, Some(&alice), json!({"email": carol_email}))
        .await;
    assert_eq!(status, 201, "{invite}");
    let (status, _) = admin(node, "PUT", &limits, ADMIN, Some(plan.clone())).await;
    assert_eq!(status, 200);
    let accept = json!({"token": invite["token"]});
    let (status, body) = node
        .post("/v1/invites/accept", Some(&carol), accept.clone())
        .await;
    assert_eq!(
        (status, code(&body)),
        (409, Some("workspace_member_limit")),
        "{body}"
    );

    // Channels: one more fits, the next does not; direct messages are not channels of the plan.
    let channels = format!("/v1/workspaces/{workspace}/channels");
    let (status, body) = node
        .post(&channels, Some(&alice), json!({"name": "second"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = node
        .post(&channels, Some(&alice), json!({"name": "third"}))
        .await;
    assert_eq!(
        (status, code(&body)),
        (409, Some("workspace_channel_limit")),
        "{body}"
    );
    let (_, me) = node.get("/v1/users/me", &bob).await;
    let (status, body) = node
        .post(
            &format!("/v1/workspaces/{workspace}/dms"),
            Some(&alice),
            json!({"user_ids": [me["id"]]}),
        )
        .await;
    assert!(status == 200 || status == 201, "{status} {body}");
    let (_, body) = node.get(&shown, &bob).await;
    assert_eq!(body["usage"], json!({"members": 2, "channels": 2}));

    // Retention: at most the cap, and never forever under it.
    let retention = format!("/v1/workspaces/{workspace}/retention");
    for days in [json!(31), Value::Null] {
        let (status, body) = node
            .call("PUT", &retention, Some(&alice), Some(json!({"days": days})))
            .await;
        assert_eq!(
            (status, code(&body)),
            (409, Some("retention_exceeds_plan")),
            "{body}"
        );
    }
    let (status, body) = node
        .call("PUT", &retention, Some(&alice), Some(json!({"days": 30})))
        .await;
    assert_eq!(status, 200, "{body}");

    // Messages: three a minute for the whole workspace, REST and WebSocket together.
    let (status, _, _) = rest_post(node, general, &alice, "one").await;
    assert_eq!(status, 201);
    let (mut alice_ws, _) = Client::identify(node.ws(), &alice).await;
    alice_ws.post(general, "ws-2", "two").await;
    let (status, _, _) = rest_post(node, general, &alice, "three").await;
    assert_eq!(status, 201);
    alice_ws
        .send(&ClientFrame::Send {
            channel_id: general,
            nonce: "ws-4".into(),
            text: "four".into(),
            parent_seq: None,
        })
        .await;
    let refusal = alice_ws
        .wait_for(|f| matches!(f, ServerFrame::Error { nonce: Some(n), .. } | ServerFrame::Ack { nonce: n, .. } if n == "ws-4"))
        .await;
    match refusal {
        ServerFrame::Error {
            code,
            channel_id,
            retry_after_ms,
            ..
        } => {
            assert_eq!(code, ErrorCode::WorkspaceMessageLimit);
            assert_eq!(channel_id, Some(general));
            assert!(retry_after_ms.is_some_and(|ms| ms > 0 && ms <= 60_000));
        }
        other => panic!("expected the workspace's limit, got {other:?}"),
    }
    // Another member is refused too: the quota is the workspace's, not alice's.
    let (status, error, retry_after) = rest_post(node, general, &bob, "five").await;
    assert_eq!(
        (status, error.as_deref()),
        (429, Some("workspace_message_limit"))
    );
    let secs: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&secs), "{secs}");

    // The changes are in the workspace's audit log.
    let (_, audit) = node
        .get(&format!("/v1/workspaces/{workspace}/audit"), &alice)
        .await;
    let set = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "workspace_limits_set")
        .expect("an audit entry")
        .clone();
    assert_eq!(set["details"]["limits"], plan);

    // Cleared: everything is allowed again, at once.
    let (status, _) = admin(node, "DELETE", &limits, ADMIN, None).await;
    assert_eq!(status, 204);
    let (status, body) = node.post("/v1/invites/accept", Some(&carol), accept).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = node
        .post(&channels, Some(&alice), json!({"name": "third"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = node
        .call("PUT", &retention, Some(&alice), Some(json!({"days": null})))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = rest_post(node, general, &alice, "six").await;
    assert_eq!(status, 201);
    alice_ws.post(general, "ws-7", "seven").await;
    let (_, body) = node.get(&shown, &alice).await;
    assert_eq!(
        body["limits"],
        json!({"max_members": null, "max_channels": null, "messages_per_minute": null,
               "max_retention_days": null})
    );
    let (_, audit) = node
        .get(&format!("/v1/workspaces/{workspace}/audit"), &alice)
        .await;
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "workspace_limits_cleared")
    );
}

#[tokio::test]
async fn limits_on_the_embedded_node() {
    let node = TestNode::start_with(|config| config.admin_token = Some(ADMIN.into())).await;
    limits_are_set_shown_and_enforced(&node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_on_postgres_and_redis() {
    let database = testing::fresh_database("limits").await;
    let node = TestNode::start_with(|config| {
        config.admin_token = Some(ADMIN.into());
        config.metadata_url = Some(database.clone());
        config.messages_url = Some(database.clone());
        config.rate_limit_url = Some(redis_url());
    })
    .await;
    limits_are_set_shown_and_enforced(&node).await;
}

#[tokio::test]
async fn without_an_operator_token_the_admin_routes_do_not_exist() {
    let node = TestNode::start().await;
    let (_, alice) = node.user("alice").await;
    let (workspace, _) = node.team(&alice, &[]).await;
    let (status, body) = admin(
        &node,
        "PUT",
        &format!("/v1/admin/workspaces/{workspace}/limits"),
        "anything",
        Some(json!({"max_members": 1})),
    )
    .await;
    assert_eq!((status, code(&body)), (404, Some("not_found")));
}

/// Two nodes sharing PostgreSQL and Redis count one workspace's messages together: what one node
/// let through uses the quota the other sees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_quota_is_shared_across_nodes_through_redis() {
    let database = testing::fresh_database("limits_shared").await;
    let start = || {
        let database = database.clone();
        TestNode::start_with(move |config| {
            config.admin_token = Some(ADMIN.into());
            config.metadata_url = Some(database.clone());
            config.messages_url = Some(database);
            config.rate_limit_url = Some(redis_url());
        })
    };
    let first = start().await;
    let second = start().await;
    let (_, alice) = first.user("alice").await;
    let (workspace, general) = first.team(&alice, &[]).await;
    // Each node posts to its own channel: the nodes do not share a channel service.
    let (status, body) = first
        .post(
            &format!("/v1/workspaces/{workspace}/channels"),
            Some(&alice),
            json!({"name": "elsewhere"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let elsewhere: Uuid = body["id"].as_str().unwrap().parse().unwrap();
    let (status, _) = admin(
        &first,
        "PUT",
        &format!("/v1/admin/workspaces/{workspace}/limits"),
        ADMIN,
        Some(json!({"messages_per_minute": 3})),
    )
    .await;
    assert_eq!(status, 200);

    for text in ["one", "two"] {
        assert_eq!(rest_post(&first, general, &alice, text).await.0, 201);
    }
    assert_eq!(rest_post(&second, elsewhere, &alice, "three").await.0, 201);
    let (status, error, _) = rest_post(&second, elsewhere, &alice, "four").await;
    assert_eq!(
        (status, error.as_deref()),
        (429, Some("workspace_message_limit"))
    );
    let (status, error, _) = rest_post(&first, general, &alice, "five").await;
    assert_eq!(
        (status, error.as_deref()),
        (429, Some("workspace_message_limit"))
    );
}
