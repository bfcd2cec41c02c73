//! Outgoing webhooks under failure: a node killed with `kill -9` while deliveries wait loses
//! none of them (nor the events acknowledged just before, not yet enqueued), and an endpoint
//! that never answers holds only its own permits — chat and other endpoints go on.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use common::cluster::Proc;
use common::webhooks::{next_request, post_message, receiver, subscribe, verified};
use common::{FRAME_WAIT, Rest, TestNode};
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn pending_deliveries_survive_a_sigkill_of_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("chorus.toml");
    std::fs::write(
        &config,
        r#"
api_addr = "127.0.0.1:0"
ws_addr = "127.0.0.1:0"
jwt_secret = "webhook-crash-secret-webhook-crash-secret"
[webhooks]
allow_internal = ["127.0.0.0/8"]
poll_ms = 20
retry_base_ms = 100
retry_cap_ms = 300
max_attempts = 1000
# Deliveries leased by the killed process come back when their lease (timeout + 10 s) ends.
timeout_ms = 1000
"#,
    )
    .unwrap();
    let args = ["serve", "--config", &config.display().to_string()]
        .into_iter()
        .map(String::from)
        .chain([
            "--data-dir".into(),
            dir.path().join("data").display().to_string(),
        ])
        .collect();
    let mut process = Proc::new("node".into(), args, dir.path());
    process.spawn().await;
    let rest = |process: &Proc| Rest {
        base: format!("http://{}", process.api.unwrap()),
        http: reqwest::Client::new(),
    };
    let api = rest(&process);
    let (_, alice) = api.user("alice").await;
    let (workspace, channel) = api.team(&alice, &[]).await;
    let (receiver, url, mut requests) = receiver(&[]).await;
    *receiver.otherwise.lock().unwrap() = 503;
    let (status, subscription) = api
        .post(
            &format!("/v1/workspaces/{workspace}/event-subscriptions"),
            Some(&alice),
            json!({"url": url, "events": ["message"], "channel_ids": [channel]}),
        )
        .await;
    assert_eq!(status, 201, "{subscription}");
    let secret = subscription["secret"].as_str().unwrap().to_string();
    let post = |api: Rest, text: String| {
        let alice = alice.clone();
        async move {
            let (status, body) = api
                .post(
                    &format!("/v1/channels/{channel}/messages"),
                    Some(&alice),
                    json!({"text": text, "nonce": Uuid::new_v4().to_string()}),
                )
                .await;
            assert_eq!(status, 201, "{body}");
            body["seq"].as_u64().unwrap()
        }
    };
    let mut acked = std::collections::BTreeSet::new();
    for i in 0..20 {
        acked.insert(post(rest(&process), format!("queued {i}")).await);
    }
    // The endpoint has been tried and failed: the deliveries wait in the queue for retries.
    next_request(&mut requests).await;
    // Ten more, acknowledged just before the kill: enqueued or not yet, history has them.
    for i in 0..10 {
        acked.insert(post(rest(&process), format!("last {i}")).await);
    }
    process.kill().await;
    *receiver.otherwise.lock().unwrap() = 200;
    while requests.try_recv().is_ok() {}

    process.spawn().await;
    let mut delivered = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while !acked.is_subset(&delivered) {
        let request = tokio::time::timeout_at(deadline, requests.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "missing after the restart: {:?}",
                    acked.difference(&delivered).collect::<Vec<_>>()
                )
            })
            .unwrap();
        delivered.insert(verified(&request, &secret)["seq"].as_u64().unwrap());
    }
    assert_eq!(delivered, acked, "every acknowledged message, nothing else");
    process.kill().await;
}

/// Requests an endpoint holds unanswered: now, and the most at once.
#[derive(Default)]
struct Hanging {
    now: AtomicUsize,
    most: AtomicUsize,
}

/// Decrements `now` when the request's handler is dropped (the client gave up).
struct InFlight(Arc<Hanging>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A local endpoint that never answers.
async fn hanging_endpoint() -> (Arc<Hanging>, String) {
    let hanging = Arc::new(Hanging::default());
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(|State(hanging): State<Arc<Hanging>>| async move {
                let now = hanging.now.fetch_add(1, Ordering::SeqCst) + 1;
                hanging.most.fetch_max(now, Ordering::SeqCst);
                let _held = InFlight(hanging);
                std::future::pending::<StatusCode>().await
            }),
        )
        .with_state(hanging.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (hanging, url)
}

#[tokio::test]
async fn a_hanging_endpoint_holds_only_its_own_permits_and_never_slows_chat() {
    let node = TestNode::start_with(|config| {
        config.webhooks.poll_ms = 20;
        config.webhooks.timeout_ms = 60_000;
        config.webhooks.per_endpoint_concurrency = 2;
    })
    .await;
    let (_, alice) = node.user("alice").await;
    let (workspace, channel) = node.team(&alice, &[]).await;
    let (hanging, dead_url) = hanging_endpoint().await;
    let (_receiver, healthy_url, mut requests) = receiver(&[]).await;
    subscribe(&node, &alice, workspace, channel, &dead_url).await;
    let (_, secret) = subscribe(&node, &alice, workspace, channel, &healthy_url).await;

    let mut posted = Vec::new();
    for i in 0..10 {
        posted.push(post_message(&node, &alice, channel, &format!("message {i}")).await);
    }
    // The healthy endpoint gets every message while the other holds its requests.
    let mut seen = Vec::new();
    for _ in 0..posted.len() {
        seen.push(
            verified(&next_request(&mut requests).await, &secret)["seq"]
                .as_u64()
                .unwrap(),
        );
    }
    seen.sort_unstable();
    assert_eq!(seen, posted);
    // The hanging one holds its two permits and never more, however many deliveries wait.
    let deadline = tokio::time::Instant::now() + FRAME_WAIT;
    while hanging.now.load(Ordering::SeqCst) < 2 {
        assert!(tokio::time::Instant::now() < deadline, "two requests wait");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hanging.most.load(Ordering::SeqCst), 2);
    node.shutdown().await;
}
