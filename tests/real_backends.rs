//! A node on the production backends — PostgreSQL for metadata and history, Redis for fan-out,
//! presence and rate limits — runs the same chat flow as the embedded node, and keeps its data
//! across a restart. Both servers are the machine's own; if either is unreachable the test fails.

mod common;

use chorus_core::testing;
use chorus_protocol::{ChannelPosition, ServerFrame};
use common::{Client, TestNode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_on_postgres_and_redis_survives_a_restart() {
    let database = testing::fresh_database("node").await;
    let redis =
        std::env::var("CHORUS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut node = TestNode::start_with(|config| {
        config.metadata_url = Some(database.clone());
        config.messages_url = Some(database.clone());
        config.bus_url = Some(redis.clone());
        config.presence_url = Some(redis.clone());
        config.rate_limit_url = Some(redis.clone());
    })
    .await;
    let (_, alice) = node.user("alice").await;
    let (_, bob) = node.user("bob").await;
    let (_, channel) = node.team(&alice, &[&bob]).await;
    {
        let (mut bob_ws, _) = Client::identify(node.ws(), &bob).await;
        let (mut alice_ws, _) = Client::identify(node.ws(), &alice).await;
        assert_eq!(
            alice_ws.post(channel, "p1", "stored in postgres").await.1,
            1
        );
        let seen = bob_ws
            .next_matching(|f| matches!(f, ServerFrame::Message(_)))
            .await;
        assert!(matches!(seen, ServerFrame::Message(m) if m.seq == 1));
    }
    node.restart().await;

    let (mut alice_ws, ready) = Client::identify(node.ws(), &alice).await;
    let ServerFrame::Ready { channels, .. } = ready else {
        unreachable!()
    };
    assert_eq!(
        channels,
        vec![ChannelPosition {
            channel_id: channel,
            last_seq: 1
        }]
    );
    assert_eq!(alice_ws.post(channel, "p2", "after restart").await.1, 2);
    let (status, page) = node
        .get(&format!("/v1/channels/{channel}/messages"), &bob)
        .await;
    assert_eq!(status, 200);
    let texts: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, vec!["stored in postgres", "after restart"]);
    node.shutdown().await;
    testing::drop_database(&database).await;
}
