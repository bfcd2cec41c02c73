//! The Redis fan-out bus, against a real Redis: live delivery, and recovery from a Redis outage
//! with every message delivered once, in order.
//!
//! The outage test runs its own `redis-server` on a free port (so killing it disturbs nobody);
//! the machine's Redis must be installed. The delivery test uses the shared Redis given by
//! `CHORUS_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`). Neither test is ever skipped: an
//! unreachable Redis fails them.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chorus_protocol::ServerFrame;
use common::private_redis::PrivateRedis;
use common::{Client, TestNode};

fn shared_redis_url() -> String {
    std::env::var("CHORUS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn seq_of(frame: &ServerFrame) -> Option<u64> {
    match frame {
        ServerFrame::Message(m) => Some(m.seq),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_and_typing_travel_through_redis() {
    let url = shared_redis_url();
    let node = TestNode::start_with(|config| {
        config.bus_url = Some(url.clone());
        config.presence_url = Some(url);
    })
    .await;
    let (_, alice) = node.user("alice").await;
    let (_, bob) = node.user("bob").await;
    let (_, channel) = node.team(&alice, &[&bob]).await;
    let (mut bob_ws, _) = Client::identify(node.ws(), &bob).await;
    let (mut alice_ws, _) = Client::identify(node.ws(), &alice).await;
    for n in 1..=20u64 {
        assert_eq!(
            alice_ws
                .post(channel, &format!("m{n}"), "via redis")
                .await
                .1,
            n
        );
    }
    for n in 1..=20u64 {
        let frame = bob_ws.next_matching(|f| seq_of(f).is_some()).await;
        assert_eq!(seq_of(&frame), Some(n));
    }
    // Typing goes through the Redis presence store and the Redis bus.
    alice_ws
        .send(&chorus_protocol::ClientFrame::Typing {
            channel_id: channel,
        })
        .await;
    let typing = bob_ws
        .next_matching(|f| matches!(f, ServerFrame::Typing { .. }))
        .await;
    assert!(matches!(typing, ServerFrame::Typing { channel_id, .. } if channel_id == channel));
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_get_every_message_once_in_order_across_a_redis_outage() {
    let mut redis = PrivateRedis::start();
    let url = redis.url();
    let node = TestNode::start_with(|config| config.bus_url = Some(url)).await;
    let (_, alice) = node.user("alice").await;
    let (_, bob) = node.user("bob").await;
    let (_, channel) = node.team(&alice, &[&bob]).await;
    let (mut bob_ws, _) = Client::identify(node.ws(), &bob).await;
    let (mut alice_ws, _) = Client::identify(node.ws(), &alice).await;

    // Bob reads in the background, recording every sequence number and the newest one.
    let total = 60u64;
    let newest = Arc::new(AtomicU64::new(0));
    let reader = tokio::spawn({
        let newest = newest.clone();
        async move {
            let mut seen = Vec::new();
            while seen.last() != Some(&total) {
                if let Some(seq) = seq_of(&bob_ws.next().await) {
                    seen.push(seq);
                    newest.store(seq, Ordering::SeqCst);
                }
            }
            seen
        }
    });

    for n in 1..=20 {
        alice_ws
            .post(channel, &format!("before-{n}"), "before the outage")
            .await;
    }
    redis.kill();
    // Messages are still acknowledged while Redis is down: the channel service does not need it.
    for n in 21..=40 {
        assert_eq!(
            alice_ws
                .post(channel, &format!("during-{n}"), "during the outage")
                .await
                .1,
            n
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.spawn();

    // With no new message to reveal the gap, Bob still gets 21..=40: the bus resyncs on reconnect.
    let recovered = tokio::time::timeout(Duration::from_secs(20), async {
        while newest.load(Ordering::SeqCst) < 40 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        recovered.is_ok(),
        "messages sent during the outage were not recovered (newest seen: {})",
        newest.load(Ordering::SeqCst)
    );

    // Live delivery resumes over the re-established subscription.
    for n in 41..=total {
        alice_ws
            .post(channel, &format!("after-{n}"), "after the outage")
            .await;
    }
    let seen = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("bob received every message within 30 s")
        .unwrap();
    assert_eq!(
        seen,
        (1..=total).collect::<Vec<_>>(),
        "every message once, in order"
    );
    node.shutdown().await;
}
