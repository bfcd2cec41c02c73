//! Server-Sent Events end to end (`GET /v1/stream`, docs/PROTOCOL.md): a stream carries the
//! caller's channel events; a client that disconnects and resumes with `Last-Event-ID` gets
//! every event it missed, once, in order — in every channel, from the replay buffer or, when it
//! was away longer than the buffer holds, from history; heartbeats keep a quiet stream alive;
//! the stream is held to the caller's rights.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::TestNode;
use common::sse::{SseClient, SseEvent};
use serde_json::{Value, json};
use uuid::Uuid;

fn id(value: &Value) -> Uuid {
    value["id"].as_str().unwrap().parse().unwrap()
}

async fn post(node: &TestNode, token: &str, channel: Uuid, text: &str) -> u64 {
    let (status, body) = node
        .post(
            &format!("/v1/channels/{channel}/messages"),
            Some(token),
            json!({"text": text}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["seq"].as_u64().unwrap()
}

async fn open(node: &TestNode, token: &str, last_event_id: Option<&str>) -> SseClient {
    SseClient::open(&node.http, &node.url("/v1/stream"), token, last_event_id)
        .await
        .unwrap_or_else(|(status, body)| panic!("{status} {body}"))
}

/// (channel, seq) of a `message` event.
fn position(event: &SseEvent) -> (Uuid, u64) {
    assert_eq!(event.event, "message", "{event:?}");
    let frame = event.json();
    assert_eq!(frame["type"], "message", "the data is the WebSocket frame");
    (
        frame["channel_id"].as_str().unwrap().parse().unwrap(),
        frame["seq"].as_u64().unwrap(),
    )
}

/// Two channels Bob reads, with Alice posting.
async fn two_channels(node: &TestNode) -> (String, String, Uuid, Uuid) {
    let (_, alice) = node.user("alice").await;
    let (_, bob) = node.user("bob").await;
    let (workspace, general) = node.team(&alice, &[&bob]).await;
    let (status, random) = node
        .post(
            &format!("/v1/workspaces/{workspace}/channels"),
            Some(&alice),
            json!({"name": "random"}),
        )
        .await;
    assert_eq!(status, 201, "{random}");
    let random = id(&random);
    let (status, body) = node
        .post(
            &format!("/v1/channels/{random}/join"),
            Some(&bob),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    (alice, bob, general, random)
}

/// Streams, disconnects after a few events, misses some while away, and resumes: everything
/// arrives exactly once, and in channel order.
async fn resume_misses_nothing_and_repeats_nothing(node: &TestNode, away: usize) {
    let (alice, bob, general, random) = two_channels(node).await;
    // History from before the stream is not part of it.
    post(node, &alice, general, "before").await;

    let mut stream = open(node, &bob, None).await;
    let ready = stream.next().await;
    assert_eq!(ready.event, "ready");
    assert_eq!(ready.json()["resumed"], false);
    let mut posted = BTreeSet::new();
    for n in 0..3 {
        let channel = if n % 2 == 0 { general } else { random };
        posted.insert((
            channel,
            post(node, &alice, channel, &format!("live {n}")).await,
        ));
    }
    let mut seen = Vec::new();
    let mut last_id = ready.id.clone().unwrap();
    for _ in 0..2 {
        let event = stream.next().await;
        seen.push(position(&event));
        last_id = event.id.clone().unwrap();
    }
    // Bob goes away with one event unread (or in flight); Alice keeps posting in both.
    drop(stream);
    for n in 0..away {
        let channel = if n % 3 == 0 { random } else { general };
        posted.insert((
            channel,
            post(node, &alice, channel, &format!("away {n}")).await,
        ));
    }

    let mut stream = open(node, &bob, Some(&last_id)).await;
    let ready = stream.next().await;
    assert_eq!(ready.event, "ready");
    assert_eq!(ready.json()["resumed"], true);
    // And one more once he is back, live.
    posted.insert((general, post(node, &alice, general, "back").await));
    while seen.len() < posted.len() {
        seen.push(position(&stream.next().await));
    }
    let unique: BTreeSet<_> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "an event arrived twice: {seen:?}");
    assert_eq!(unique, posted, "missed or foreign events");
    for channel in [general, random] {
        let seqs: Vec<u64> = seen
            .iter()
            .filter(|(c, _)| *c == channel)
            .map(|(_, s)| *s)
            .collect();
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "{channel}: {seqs:?}"
        );
    }
    assert!(
        stream.quiet_for(Duration::from_millis(300)).await,
        "nothing more"
    );
}

#[tokio::test]
async fn a_resumed_stream_gets_what_it_missed_from_the_replay_buffer_once() {
    let node = TestNode::start().await;
    resume_misses_nothing_and_repeats_nothing(&node, 6).await;
    node.shutdown().await;
}

#[tokio::test]
async fn a_stream_away_longer_than_the_replay_buffer_catches_up_from_history() {
    // A buffer of 4 events per channel; Bob misses 20.
    let node = TestNode::start_with(|config| config.channels.replay_buffer = 4).await;
    resume_misses_nothing_and_repeats_nothing(&node, 20).await;
    node.shutdown().await;
}

#[tokio::test]
async fn a_quiet_stream_gets_heartbeats() {
    let node = TestNode::start_with(|config| config.api.stream_heartbeat_ms = 50).await;
    let (_, alice) = node.user("alice").await;
    node.team(&alice, &[]).await;
    let mut stream = open(&node, &alice, None).await;
    assert_eq!(stream.next().await.event, "ready");
    let heartbeat = stream.next_any().await.unwrap();
    assert_eq!(
        heartbeat.comment.as_deref(),
        Some("heartbeat"),
        "{heartbeat:?}"
    );
    node.shutdown().await;
}

#[tokio::test]
async fn a_stream_is_held_to_the_callers_rights() {
    let node = TestNode::start().await;
    let (_, alice) = node.user("alice").await;
    let (bob_id, bob) = node.user("bob").await;
    let (_, carol) = node.user("carol").await;
    let (_, general) = node.team(&alice, &[&bob]).await;
    let url = node.url("/v1/stream");

    // No token; a bad Last-Event-ID; a channel Carol cannot read.
    let status = node.http.get(&url).send().await.unwrap().status();
    assert_eq!(status, 401);
    let refused = SseClient::open(&node.http, &url, &bob, Some("v1.!!")).await;
    let (status, body) = refused.err().unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_last_event_id"))
    );
    let named = format!("{url}?channels={general}");
    let (status, body) = SseClient::open(&node.http, &named, &carol, None)
        .await
        .err()
        .unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    // Bob streams the channel by name; Alice removes him: the channel leaves his stream.
    let mut stream = SseClient::open(&node.http, &named, &bob, None)
        .await
        .unwrap();
    assert_eq!(stream.next().await.event, "ready");
    let seq = post(&node, &alice, general, "hello").await;
    assert_eq!(position(&stream.next().await), (general, seq));
    let (status, body) = node
        .call(
            "DELETE",
            &format!("/v1/channels/{general}/members/{bob_id}"),
            Some(&alice),
            None,
        )
        .await;
    assert!((200..300).contains(&status), "{status} {body}");
    let gone = stream.next().await;
    assert_eq!(gone.event, "unsubscribed", "{gone:?}");
    assert_eq!(gone.json()["channel_id"], general.to_string());
    post(&node, &alice, general, "bob is gone").await;
    assert!(stream.quiet_for(Duration::from_millis(300)).await);

    // Alice's own stream ends when she logs out: a `close` event with 4100, then the end.
    let mut stream = open(&node, &alice, None).await;
    assert_eq!(stream.next().await.event, "ready");
    let (status, body) = node.post("/v1/auth/logout", Some(&alice), json!({})).await;
    assert!((200..300).contains(&status), "{status} {body}");
    let close = stream.next().await;
    assert_eq!(close.event, "close", "{close:?}");
    assert_eq!(close.json()["code"], 4100);
    assert!(
        stream.next_any().await.is_none(),
        "the stream ends after close"
    );
    node.shutdown().await;
}

#[tokio::test]
async fn a_bot_streams_only_with_channels_read() {
    let node = TestNode::start().await;
    let (_, admin) = node.user("admin").await;
    let (workspace, _) = node.team(&admin, &[]).await;
    let (status, bot) = node
        .post(
            &format!("/v1/workspaces/{workspace}/bots"),
            Some(&admin),
            json!({"name": "reader"}),
        )
        .await;
    assert_eq!(status, 201, "{bot}");
    let bot_id = id(&bot);
    for (scopes, expected) in [
        (json!(["messages:write"]), 403),
        (json!(["channels:read"]), 200),
    ] {
        let (status, token) = node
            .post(
                &format!("/v1/bots/{bot_id}/tokens"),
                Some(&admin),
                json!({"name": "t", "scopes": scopes}),
            )
            .await;
        assert_eq!(status, 201, "{token}");
        let token = token["token"].as_str().unwrap();
        let status = match SseClient::open(&node.http, &node.url("/v1/stream"), token, None).await {
            Ok(_) => 200,
            Err((status, _)) => status,
        };
        assert_eq!(status, expected, "{scopes}");
    }
    node.shutdown().await;
}
