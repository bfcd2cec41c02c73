//! Outgoing webhooks end to end: a real node delivers to a real local HTTP server started by the
//! test (`common/webhooks.rs`). A delivery carries a valid signature, is retried after a 500,
//! survives a node restart while pending, and gives up after the limit — and the delivery log
//! says so, until the retention job prunes its settled entries.

mod common;

use common::TestNode;
use common::webhooks::{log_when, next_request, node, post_message, receiver, subscribe, verified};
use serde_json::{Value, json};

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

#[tokio::test]
async fn the_retention_job_prunes_settled_deliveries_after_keep_deliveries_days() {
    let node = TestNode::start_with(|config| {
        config.webhooks.poll_ms = 20;
        // A failed attempt waits a minute: the second delivery stays pending through the test.
        config.webhooks.retry_base_ms = 60_000;
    })
    .await;
    assert_eq!(node.config.webhooks.keep_deliveries_days, 30, "the default");
    let (_, alice) = node.user("alice").await;
    let (workspace, channel) = node.team(&alice, &[]).await;
    let (receiver, url, _requests) = receiver(&[]).await;
    let (subscription, _) = subscribe(&node, &alice, workspace, channel, &url).await;
    post_message(&node, &alice, channel, "delivered").await;
    log_when(&node, &alice, subscription, |log| {
        log.len() == 1 && log[0]["status"] == "delivered"
    })
    .await;
    // A second one stays pending: its endpoint now fails and retries are far apart.
    *receiver.otherwise.lock().unwrap() = 503;
    let pending = post_message(&node, &alice, channel, "pending").await;
    log_when(&node, &alice, subscription, |log| {
        log.len() == 2 && log[0]["attempts"].as_u64() >= Some(1)
    })
    .await;

    let running = node.node.as_ref().unwrap();
    let now = chrono::Utc::now();
    let early = running
        .retention_tick(now + chrono::Duration::days(29))
        .await
        .unwrap();
    assert_eq!(early.webhook_deliveries, 0, "kept 30 days");
    let late = running
        .retention_tick(now + chrono::Duration::days(31))
        .await
        .unwrap();
    assert_eq!(late.webhook_deliveries, 1, "{late:?}");
    let log = log_when(&node, &alice, subscription, |log| log.len() == 1).await;
    assert_eq!(
        log[0]["seq"], pending,
        "the pending delivery is the queue: it stays"
    );
    assert_eq!(log[0]["status"], "pending");
    node.shutdown().await;
}
