//! Outgoing webhooks end to end: a real node delivers to a real local HTTP server started by the
//! test. A delivery carries a valid signature, is retried after a 500, survives a node restart
//! while pending, and gives up after the limit — and the delivery log says so.

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chorus_webhooks::signature::{
    DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify,
};
use common::{FRAME_WAIT, TestNode};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use uuid::Uuid;

/// One request the receiver got.
#[derive(Debug)]
struct Received {
    headers: HeaderMap,
    body: String,
}

/// A local HTTP endpoint that answers with the statuses it is told, in order (then 200), and
/// hands every request to the test.
struct Receiver {
    statuses: Mutex<VecDeque<u16>>,
    /// The answer once `statuses` is used up.
    otherwise: Mutex<u16>,
    requests: mpsc::UnboundedSender<Received>,
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
async fn receiver(statuses: &[u16]) -> (Arc<Receiver>, String, mpsc::UnboundedReceiver<Received>) {
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

async fn next_request(requests: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(FRAME_WAIT, requests.recv())
        .await
        .expect("a delivery arrives")
        .unwrap()
}

/// A node that retries quickly (the waits are what is tuned, not asserted).
async fn node(max_attempts: u32) -> TestNode {
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
async fn subscribe(
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

async fn post_message(node: &TestNode, token: &str, channel: Uuid, text: &str) -> u64 {
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
async fn log_when(
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
fn verified(request: &Received, secret: &str) -> Value {
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

#[tokio::test]
async fn a_delivery_is_signed_retried_after_a_500_and_logged() {
    let node = node(5).await;
    let (_, alice) = node.user("alice").await;
    let (_, bob) = node.user("bob").await;
    let (workspace, channel) = node.team(&alice, &[&bob]).await;
    let (_receiver, url, mut requests) = receiver(&[500]).await;

    // Only admins subscribe, and only to URLs allowed.
    let (status, body) = node
        .post(
            &format!("/v1/workspaces/{workspace}/event-subscriptions"),
            Some(&bob),
            json!({"url": url, "events": ["message"], "channel_ids": [channel]}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = node
        .post(
            &format!("/v1/workspaces/{workspace}/event-subscriptions"),
            Some(&alice),
            json!({"url": "http://example.com/hook", "events": ["message"], "channel_ids": [channel]}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_url"))
    );
    let (subscription, secret) = subscribe(&node, &alice, workspace, channel, &url).await;

    let seq = post_message(&node, &bob, channel, "hello hooks").await;
    // A reaction is not a kind the subscription takes.
    let (status, _) = node
        .call(
            "PUT",
            &format!("/v1/channels/{channel}/messages/{seq}/reactions/tada"),
            Some(&bob),
            None,
        )
        .await;
    assert!(status == 200 || status == 201 || status == 204, "{status}");
    let after = post_message(&node, &bob, channel, "second").await;

    let first = next_request(&mut requests).await;
    let body = verified(&first, &secret);
    assert_eq!(body["seq"], seq);
    assert_eq!(body["channel_id"], channel.to_string());
    assert_eq!(body["subscription_id"], subscription.to_string());
    assert_eq!(body["event"]["text"], "hello hooks");

    // The 500 is retried: the same delivery, signed again.
    let mut seen = vec![first];
    while seen.len() < 3 {
        seen.push(next_request(&mut requests).await);
    }
    let bodies: Vec<Value> = seen.iter().map(|r| verified(r, &secret)).collect();
    let of_first: Vec<&Value> = bodies.iter().filter(|b| b["seq"] == seq).collect();
    assert_eq!(of_first.len(), 2, "{bodies:?}");
    assert_eq!(of_first[0]["delivery_id"], of_first[1]["delivery_id"]);
    assert!(bodies.iter().any(|b| b["seq"] == after));
    assert!(bodies.iter().all(|b| b["kind"] == "message"));

    let log = log_when(&node, &alice, subscription, |log| {
        log.len() == 2 && log.iter().all(|d| d["status"] == "delivered")
    })
    .await;
    let first_log = log.iter().find(|d| d["seq"] == seq).unwrap();
    assert_eq!(first_log["attempts"], 2);
    assert_eq!(first_log["last_status_code"], 200);
    let second_log = log.iter().find(|d| d["seq"] == after).unwrap();
    assert_eq!(second_log["attempts"], 1);

    // The secret is never shown again.
    let (status, listed) = node
        .get(
            &format!("/v1/workspaces/{workspace}/event-subscriptions"),
            &alice,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0].get("secret").is_none());
    node.shutdown().await;
}

#[tokio::test]
async fn a_pending_delivery_survives_a_node_restart() {
    let mut node = node(20).await;
    let (_, alice) = node.user("alice").await;
    let (workspace, channel) = node.team(&alice, &[]).await;
    let (receiver, url, mut requests) = receiver(&[]).await;
    *receiver.otherwise.lock().unwrap() = 503;
    let (subscription, secret) = subscribe(&node, &alice, workspace, channel, &url).await;
    let seq = post_message(&node, &alice, channel, "before the restart").await;
    let failed = verified(&next_request(&mut requests).await, &secret);
    assert_eq!(failed["seq"], seq);

    // Stopped while the delivery waits for its retry. Started again looking for new events only
    // once at start and then hourly, so a message committed now is not enqueued before the
    // next stop: after it, only history and the durable cursor know of it.
    node.node.take().unwrap().shutdown().await;
    node.config.webhooks.poll_ms = 3_600_000;
    node.node = Some(chorus::Node::start(node.config.clone()).await.unwrap());
    let later = post_message(&node, &alice, channel, "never enqueued before the stop").await;
    *receiver.otherwise.lock().unwrap() = 200;
    node.node.take().unwrap().shutdown().await;
    node.config.webhooks.poll_ms = 20;
    node.node = Some(chorus::Node::start(node.config.clone()).await.unwrap());

    let log = log_when(&node, &alice, subscription, |log| {
        log.len() == 2 && log.iter().all(|d| d["status"] == "delivered")
    })
    .await;
    let first = log.iter().find(|d| d["seq"] == seq).unwrap();
    assert_eq!(first["id"], failed["delivery_id"]);
    assert!(first["attempts"].as_u64().unwrap() >= 2, "{first}");
    assert!(log.iter().any(|d| d["seq"] == later));
    // Every request the receiver got was for one of the two, validly signed.
    while let Ok(request) = requests.try_recv() {
        let body = verified(&request, &secret);
        assert!(body["seq"] == seq || body["seq"] == later, "{body}");
    }
    node.shutdown().await;
}

#[tokio::test]
async fn a_delivery_gives_up_after_the_limit_and_the_log_shows_it() {
    let node = node(3).await;
    let (_, alice) = node.user("alice").await;
    let (workspace, channel) = node.team(&alice, &[]).await;
    let (receiver, url, mut requests) = receiver(&[]).await;
    *receiver.otherwise.lock().unwrap() = 500;
    let (subscription, secret) = subscribe(&node, &alice, workspace, channel, &url).await;
    let seq = post_message(&node, &alice, channel, "doomed").await;

    let log = log_when(&node, &alice, subscription, |log| {
        log.len() == 1 && log[0]["status"] == "failed"
    })
    .await;
    assert_eq!(log[0]["seq"], seq);
    assert_eq!(log[0]["attempts"], 3);
    assert_eq!(log[0]["last_status_code"], 500);
    assert_eq!(log[0]["last_error"], "HTTP 500");
    assert_eq!(log[0]["next_attempt_at"], Value::Null);
    let mut attempts = 0;
    while let Ok(request) = requests.try_recv() {
        verified(&request, &secret);
        attempts += 1;
    }
    assert_eq!(attempts, 3, "three attempts, no more");

    // Deleting the subscription deletes its log.
    let (status, _) = node
        .call(
            "DELETE",
            &format!("/v1/event-subscriptions/{subscription}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = node
        .get(
            &format!("/v1/event-subscriptions/{subscription}/deliveries"),
            &alice,
        )
        .await;
    assert_eq!(status, 404);
    node.shutdown().await;
}
