//! Where webhook and slash-command requests may go (server-side request forgery): with the
//! default `[webhooks] allow_internal = []`, a workspace admin cannot point the server at this
//! host, a private network or a link-local metadata service — at registration, and again when
//! sending if the operator narrowed the list after a subscription was made.

mod common;

use std::time::Duration;

use common::TestNode;
use common::webhooks::{log_when, subscribe};
use serde_json::json;
use uuid::Uuid;

/// URLs a subscription or a command must not name when no internal network is allowed.
const INTERNAL: &[&str] = &[
    "http://127.0.0.1:9/hook",
    "https://127.0.0.1/hook",
    "https://localhost:8443/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://10.1.2.3/hook",
    "https://[::1]/hook",
    "https://[::ffff:192.168.0.1]/hook",
    "https://0.0.0.0/hook",
];

async fn public_only_node() -> TestNode {
    TestNode::start_with(|config| config.webhooks.allow_internal.clear()).await
}

#[tokio::test]
async fn internal_urls_are_refused_at_registration() {
    let node = public_only_node().await;
    let (_, alice) = node.user("alice").await;
    let (workspace, channel) = node.team(&alice, &[]).await;
    let (status, bot) = node
        .post(
            &format!("/v1/workspaces/{workspace}/bots"),
            Some(&alice),
            json!({"name": "relay"}),
        )
        .await;
    assert_eq!(status, 201, "{bot}");
    for url in INTERNAL {
        let (status, body) = node
            .post(
                &format!("/v1/workspaces/{workspace}/event-subscriptions"),
                Some(&alice),
                json!({"url": url, "events": ["message"], "channel_ids": [channel]}),
            )
            .await;
        assert_eq!(status, 400, "{url}: {body}");
        assert_eq!(body["error"]["code"], "invalid_url", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("allow_internal"),
            "the message says what the operator can change: {body}"
        );
        let (status, body) = node
            .post(
                &format!("/v1/workspaces/{workspace}/commands"),
                Some(&alice),
                json!({"name": "probe", "bot_id": bot["id"], "url": url}),
            )
            .await;
        assert_eq!(status, 400, "{url}: {body}");
        assert_eq!(body["error"]["code"], "invalid_url", "{body}");
    }
    // A public name is fine (it is checked address by address when connecting).
    let (status, body) = node
        .post(
            &format!("/v1/workspaces/{workspace}/event-subscriptions"),
            Some(&alice),
            json!({"url": "https://hooks.example.com/chorus", "events": ["message"], "channel_ids": [channel]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    node.shutdown().await;
}

#[tokio::test]
async fn a_subscription_to_an_address_no_longer_allowed_fails_at_once_without_a_request() {
    let mut node = TestNode::start_with(|config| {
        config.webhooks.poll_ms = 20;
        config.webhooks.retry_base_ms = 20;
        config.webhooks.max_attempts = 5;
    })
    .await;
    let (_, alice) = node.user("alice").await;
    let (workspace, channel) = node.team(&alice, &[]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (subscription, _) = subscribe(&node, &alice, workspace, channel, &url).await;

    // The operator removes loopback from the list.
    node.node.take().unwrap().shutdown().await;
    node.config.webhooks.allow_internal.clear();
    node.node = Some(chorus::Node::start(node.config.clone()).await.unwrap());
    let (status, body) = node
        .post(
            &format!("/v1/channels/{channel}/messages"),
            Some(&alice),
            json!({"text": "for nobody", "nonce": Uuid::new_v4().to_string()}),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    let log = log_when(&node, &alice, subscription, |log| {
        log.len() == 1 && log[0]["status"] == "failed"
    })
    .await;
    let log = &log[0];
    assert_eq!(log["attempts"], 1, "refused once, not retried: {log}");
    let error = log["last_error"].as_str().unwrap();
    assert!(error.starts_with("refused: "), "{error}");
    assert!(error.contains("allow_internal"), "{error}");
    // Nothing ever connected to the endpoint.
    let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(accepted.is_err(), "no connection was made");
    node.shutdown().await;
}
