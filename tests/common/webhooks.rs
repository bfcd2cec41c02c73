//! A local webhook endpoint for tests and the helpers around it: a receiver that answers with
//! the statuses it is told, subscriptions, posts, the delivery log, signature checks.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chorus_webhooks::signature::{
    DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{FRAME_WAIT, TestNode};

/// One request the receiver got.
#[derive(Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: String,
}

/// A local HTTP endpoint that answers with the statuses it is told, in order (then 200), and
/// hands every request to the test.
pub struct Receiver {
    pub statuses: Mutex<VecDeque<u16>>,
    /// The answer once `statuses` is used up.
    pub otherwise: Mutex<u16>,
    pub requests: mpsc::UnboundedSender<Received>,
}

async fn hook(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let _ = receiver.requests.send(Received { headers, body });
    let status = receiver
        .statuses
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(*receiver.otherwise.lock().unwrap());
    StatusCode::from_u16(status).unwrap()
}

/// Starts a receiver; returns it, its URL and the requests it gets.
pub async fn receiver(
    statuses: &[u16],
) -> (Arc<Receiver>, String, mpsc::UnboundedReceiver<Received>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let receiver = Arc::new(Receiver {
        statuses: Mutex::new(statuses.iter().copied().collect()),
        otherwise: Mutex::new(200),
        requests: tx,
    });
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (receiver, url, rx)
}

pub async fn next_request(requests: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(FRAME_WAIT, requests.recv())
        .await
        .expect("a delivery arrives")
        .unwrap()
}

/// A node that retries quickly (the waits are what is tuned, not asserted).
pub async fn node(max_attempts: u32) -> TestNode {
    TestNode::start_with(|config| {
        config.webhooks.poll_ms = 20;
        config.webhooks.retry_base_ms = 20;
        config.webhooks.retry_cap_ms = 200;
        config.webhooks.timeout_ms = 5_000;
        config.webhooks.max_attempts = max_attempts;
    })
    .await
}

/// Subscribes `url` to messages in `channel`; returns (subscription id, secret).
pub async fn subscribe(
    node: &TestNode,
    admin: &str,
    workspace: Uuid,
    channel: Uuid,
    url: &str,
) -> (Uuid, String) {
    let (status, body) = node
        .post(
            &format!("/v1/workspaces/{workspace}/event-subscriptions"),
            Some(admin),
            json!({"url": url, "events": ["message"], "channel_ids": [channel]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    (
        body["id"].as_str().unwrap().parse().unwrap(),
        body["secret"].as_str().unwrap().to_string(),
    )
}

pub async fn post_message(node: &TestNode, token: &str, channel: Uuid, text: &str) -> u64 {
    let (status, body) = node
        .post(
            &format!("/v1/channels/{channel}/messages"),
            Some(token),
            json!({"text": text, "nonce": Uuid::new_v4().to_string()}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["seq"].as_u64().unwrap()
}

/// The delivery log once `done` holds for it (polled; fails after FRAME_WAIT).
pub async fn log_when(
    node: &TestNode,
    admin: &str,
    subscription: Uuid,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + FRAME_WAIT;
    loop {
        let (status, body) = node
            .get(
                &format!("/v1/event-subscriptions/{subscription}/deliveries"),
                admin,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let log = body["deliveries"].as_array().unwrap().clone();
        if done(&log) {
            return log;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the log never got there: {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The request's signature checks out with `secret`; returns its body as JSON.
pub fn verified(request: &Received, secret: &str) -> Value {
    let header = |name: &str| request.headers.get(name).unwrap().to_str().unwrap();
    let timestamp: i64 = header(TIMESTAMP_HEADER).parse().unwrap();
    let now = chrono::Utc::now().timestamp();
    verify(
        secret,
        timestamp,
        request.body.as_bytes(),
        header(SIGNATURE_HEADER),
        now,
        300,
    )
    .expect("the signature is valid");
    let body: Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(
        header(DELIVERY_HEADER),
        body["delivery_id"].as_str().unwrap()
    );
    assert_eq!(header(EVENT_HEADER), body["kind"].as_str().unwrap());
    body
}
