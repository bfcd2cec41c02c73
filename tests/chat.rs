//! End-to-end behaviour of an embedded node through its real REST API and WebSocket gateway.

mod common;

use std::time::Duration;

use chorus_protocol::{ChannelPosition, ClientFrame, CloseCode, ErrorCode, ServerFrame};
use common::{Client, TestNode, close_code};
use serde_json::json;

fn message_seq(frame: &ServerFrame) -> Option<u64> {
    match frame {
        ServerFrame::Message(event) => Some(event.seq),
        _ => None,
    }
}

/// How many messages of `message_bytes` a client that stops reading must be sent before the
/// gateway has no room left for them: more than twice what the server's socket send buffer can
/// grow to (`tcp_wmem`'s maximum, 4 MiB by default), the batch being written and the outbox of
/// `outbox_capacity` frames can hold together. Below that, the kernel may absorb everything and
/// the stalled client is (rightly) never cut off.
fn messages_beyond_any_buffering(message_bytes: usize, outbox_capacity: usize) -> u64 {
    let send_buffer_max = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|line| line.split_whitespace().nth(2)?.parse::<usize>().ok())
        .unwrap_or(4 << 20);
    let frame_bytes = message_bytes + 200;
    let buffered = send_buffer_max + 2 * outbox_capacity * frame_bytes;
    (2 * buffered / frame_bytes) as u64
}

#[tokio::test]
async fn two_users_chat_and_see_the_same_sequence() {
    let node = TestNode::start().await;
    let (alice_id, alice) = node.user("alice").await;
    let (_, bob) = node.user("bob").await;
    let (_, channel) = node.team(&alice, &[&bob]).await;

    let (mut alice_ws, ready) = Client::identify(node.ws(), &alice).await;
    match ready {
        ServerFrame::Ready { channels, user, .. } => {
            assert_eq!(user.id, alice_id);
            assert_eq!(
                channels,
                vec![ChannelPosition {
                    channel_id: channel,
                    last_seq: 0
                }]
            );
        }
        other => panic!("{other:?}"),
    }
    let (mut bob_ws, _) = Client::identify(node.ws(), &bob).await;

    let (message_id, seq) = alice_ws.post(channel, "a-1", "hello bob").await;
    assert_eq!(seq, 1);
    let seen_by_bob = bob_ws.next_matching(|f| message_seq(f).is_some()).await;
    let ServerFrame::Message(event) = seen_by_bob else {
        unreachable!()
    };
    assert_eq!(
        (event.id, event.seq, event.author_id),
        (message_id, 1, alice_id)
    );
    assert_eq!(event.text, "hello bob");

    let (_, seq) = bob_ws.post(channel, "b-1", "hi alice").await;
    assert_eq!(seq, 2);
    // Alice sees her own message and Bob's, in channel order.
    let first = alice_ws.next_matching(|f| message_seq(f).is_some()).await;
    let second = alice_ws.next_matching(|f| message_seq(f).is_some()).await;
    assert_eq!(
        (message_seq(&first), message_seq(&second)),
        (Some(1), Some(2))
    );

    // History over REST agrees.
    let (status, page) = node
        .get(&format!("/v1/channels/{channel}/messages"), &bob)
        .await;
    assert_eq!(status, 200, "{page}");
    let seqs: Vec<u64> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 2]);
    node.shutdown().await;
}

#[tokio::test]
async fn a_repeated_nonce_yields_one_message() {
    let node = TestNode::start().await;
    let (_, alice) = node.user("alice").await;
    let (_, channel) = node.team(&alice, &[]).await;
    let (mut ws, _) = Client::identify(node.ws(), &alice).await;

    let first = ws.post(channel, "same-nonce", "once").await;
    ws.send(&ClientFrame::Send {
        channel_id: channel,
        nonce: "same-nonce".into(),
        text: "once".into(),
        parent_seq: None,
    })
    .await;
    let again = ws
        .next_matching(|f| matches!(f, ServerFrame::Ack { .. }))
        .await;
    match again {
        ServerFrame::Ack {
            message_id,
            seq,
            duplicate,
            ..
        } => {
            assert_eq!((message_id, seq), first);
            assert!(duplicate);
        }
        other => panic!("{other:?}"),
    }
    let (_, page) = node
        .get(&format!("/v1/channels/{channel}/messages"), &alice)
        .await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 1);
    node.shutdown().await;
}

#[tokio::test]
async fn a_resumed_client_gets_exactly_the_missed_messages_in_order() {
    let node = TestNode::start().await;
    let (_, alice) = node.user("alice").await;
    let (_, bob) = node.user("bob").await;
    let (_, channel) = node.team(&alice, &[&bob]).await;

    let (mut bob_ws, ready) = Client::identify(node.ws(), &bob).await;
    let ServerFrame::Ready { session_id, .. } = ready else {
        unreachable!()
    };
    let (mut alice_ws, _) = Client::identify(node.ws(), &alice).await;
    alice_ws.post(channel, "before", "seen by bob").await;
    let seen = bob_ws.next_matching(|f| message_seq(f).is_some()).await;
    assert_eq!(message_seq(&seen), Some(1));
    drop(bob_ws);

    for n in 0..50 {
        alice_ws
            .post(channel, &format!("missed-{n}"), &format!("missed {n}"))
            .await;
    }

    let mut bob_ws = Client::connect(node.ws()).await;
    bob_ws
        .send(&ClientFrame::Resume {
            intents: None,
            token: bob.clone(),
            session_id,
            channels: vec![ChannelPosition {
                channel_id: channel,
                last_seq: 1,
            }],
        })
        .await;
    let mut replayed = Vec::new();
    loop {
        match bob_ws.next().await {
            ServerFrame::Message(event) => replayed.push((event.seq, event.text)),
            ServerFrame::Subscribed { last_seq, .. } => assert_eq!(last_seq, 51),
            ServerFrame::Resumed {
                session_id: resumed,
                replayed: count,
            } => {
                assert_eq!(resumed, session_id);
                assert_eq!(count, 50);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let expected: Vec<(u64, String)> = (0..50).map(|n| (n + 2, format!("missed {n}"))).collect();
    assert_eq!(replayed, expected);

    // Live delivery continues after the replay, with no duplicate.
    alice_ws.post(channel, "after", "live again").await;
    let live = bob_ws.next_matching(|f| message_seq(f).is_some()).await;
    assert_eq!(message_seq(&live), Some(52));
    node.shutdown().await;
}

/// A resume checks all its channels' access at once (one store query); each channel still gets
/// its own answer: the readable ones resume, the others are refused by name.
#[tokio::test]
async fn a_resume_answers_each_channel_on_its_own_when_some_are_no_longer_readable() {
    let node = TestNode::start().await;
    let (_, alice) = node.user("alice").await;
    let (bob_id, bob) = node.user("bob").await;
    let (workspace, general) = node.team(&alice, &[&bob]).await;
    let (status, secret) = node
        .post(
            &format!("/v1/workspaces/{workspace}/channels"),
            Some(&alice),
            json!({"name": "secret", "private": true}),
        )
        .await;
    assert_eq!(status, 201, "{secret}");
    let secret: uuid::Uuid = secret["id"].as_str().unwrap().parse().unwrap();
    let (status, body) = node
        .post(
            &format!("/v1/channels/{secret}/members"),
            Some(&alice),
            json!({"user_id": bob_id}),
        )
        .await;
    assert!(status < 300, "{status} {body}");

    let (bob_ws, ready) = Client::identify(node.ws(), &bob).await;
    let ServerFrame::Ready {
        session_id,
        channels: positions,
        ..
    } = ready
    else {
        unreachable!()
    };
    let position = |channel| {
        positions
            .iter()
            .find(|p| p.channel_id == channel)
            .map_or(0, |p| p.last_seq)
    };
    drop(bob_ws);
    let (mut alice_ws, _) = Client::identify(node.ws(), &alice).await;
    alice_ws.post(general, "g", "missed in general").await;
    // Bob leaves the private channel while away.
    let (status, body) = node
        .call(
            "DELETE",
            &format!("/v1/channels/{secret}/members/{bob_id}"),
            Some(&alice),
            None,
        )
        .await;
    assert!(status < 300, "{status} {body}");

    let nowhere = uuid::Uuid::new_v4();
    let mut bob_ws = Client::connect(node.ws()).await;
    bob_ws
        .send(&ClientFrame::Resume {
            intents: None,
            token: bob.clone(),
            session_id,
            channels: [secret, general, nowhere]
                .into_iter()
                .map(|channel_id| ChannelPosition {
                    channel_id,
                    last_seq: position(channel_id),
                })
                .collect(),
        })
        .await;
    let (mut refused, mut subscribed, mut messages) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        match bob_ws.next().await {
            ServerFrame::Error {
                code, channel_id, ..
            } => refused.push((channel_id.unwrap(), code)),
            ServerFrame::Subscribed { channel_id, .. } => subscribed.push(channel_id),
            ServerFrame::Message(event) => messages.push((event.channel_id, event.text)),
            ServerFrame::Resumed { replayed, .. } => {
                assert_eq!(replayed, 1);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        refused,
        [
            (secret, ErrorCode::NotFound),
            (nowhere, ErrorCode::NotFound)
        ]
    );
    assert_eq!(subscribed, [general]);
    assert_eq!(messages, [(general, "missed in general".to_string())]);
    node.shutdown().await;
}

#[tokio::test]
async fn a_gap_older_than_the_replay_buffer_asks_for_a_resync_from_history() {
    let node = TestNode::start_with(|config| config.channels.replay_buffer = 5).await;
    let (_, alice) = node.user("alice").await;
    let (_, channel) = node.team(&alice, &[]).await;
    let (mut ws, _) = Client::identify(node.ws(), &alice).await;
    for n in 0..10 {
        ws.post(channel, &n.to_string(), "x").await;
    }
    let (mut late, _) = Client::identify(node.ws(), &alice).await;
    late.send(&ClientFrame::Subscribe {
        channel_id: channel,
        since_seq: Some(2),
    })
    .await;
    match late
        .next_matching(|f| !matches!(f, ServerFrame::Message(_)))
        .await
    {
        ServerFrame::ResyncRequired {
            after_seq,
            last_seq,
            ..
        } => assert_eq!((after_seq, last_seq), (2, 10)),
        other => panic!("expected resync_required, got {other:?}"),
    }
    // History holds what the buffer no longer does.
    let (status, page) = node
        .get(
            &format!("/v1/channels/{channel}/messages?after=2&limit=200"),
            &alice,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["messages"].as_array().unwrap().len(), 8);
    node.shutdown().await;
}

#[tokio::test]
async fn a_restarted_node_keeps_history_and_continues_the_sequence() {
    let mut node = TestNode::start().await;
    let (_, alice) = node.user("alice").await;
    let (_, channel) = node.team(&alice, &[]).await;
    {
        let (mut ws, _) = Client::identify(node.ws(), &alice).await;
        for n in 1..=3 {
            assert_eq!(
                ws.post(channel, &format!("n{n}"), "before restart").await.1,
                n
            );
        }
    }
    node.restart().await;

    let (mut ws, ready) = Client::identify(node.ws(), &alice).await;
    let ServerFrame::Ready { channels, .. } = ready else {
        unreachable!()
    };
    assert_eq!(
        channels,
        vec![ChannelPosition {
            channel_id: channel,
            last_seq: 3
        }]
    );
    assert_eq!(ws.post(channel, "n4", "after restart").await.1, 4);
    // A nonce sent before the restart is still recognised.
    ws.send(&ClientFrame::Send {
        channel_id: channel,
        nonce: "n2".into(),
        text: "before restart".into(),
        parent_seq: None,
    })
    .await;
    match ws
        .next_matching(|f| matches!(f, ServerFrame::Ack { .. }))
        .await
    {
        ServerFrame::Ack { seq, duplicate, .. } => assert_eq!((seq, duplicate), (2, true)),
        other => panic!("{other:?}"),
    }
    let (_, page) = node
        .get(&format!("/v1/channels/{channel}/messages"), &alice)
        .await;
    let seqs: Vec<u64> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4]);
    node.shutdown().await;
}

#[tokio::test]
async fn a_non_member_can_neither_subscribe_to_nor_read_a_channel() {
    let node = TestNode::start().await;
    let (_, alice) = node.user("alice").await;
    let (_, mallory) = node.user("mallory").await;
    let (_, channel) = node.team(&alice, &[]).await;

    let (mut ws, _) = Client::identify(node.ws(), &mallory).await;
    ws.send(&ClientFrame::Subscribe {
        channel_id: channel,
        since_seq: None,
    })
    .await;
    match ws.next().await {
        ServerFrame::Error {
            code, channel_id, ..
        } => {
            assert_eq!(
                code,
                ErrorCode::NotFound,
                "outside the workspace the channel is invisible"
            );
            assert_eq!(channel_id, Some(channel));
        }
        other => panic!("{other:?}"),
    }
    ws.send(&ClientFrame::Send {
        channel_id: channel,
        nonce: "x".into(),
        text: "let me in".into(),
        parent_seq: None,
    })
    .await;
    assert!(matches!(
        ws.next().await,
        ServerFrame::Error {
            code: ErrorCode::NotFound,
            ..
        }
    ));
    let (status, body) = node
        .get(&format!("/v1/channels/{channel}/messages"), &mallory)
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"]["code"].is_string());
    node.shutdown().await;
}

#[tokio::test]
async fn bad_frames_get_documented_errors_and_the_connection_survives() {
    let node = TestNode::start().await;
    let (_, alice) = node.user("alice").await;
    let (_, channel) = node.team(&alice, &[]).await;
    let (mut ws, _) = Client::identify(node.ws(), &alice).await;

    ws.send_raw("{this is not json").await;
    assert!(matches!(
        ws.next().await,
        ServerFrame::Error {
            code: ErrorCode::InvalidJson,
            ..
        }
    ));
    ws.send_raw(r#"{"type":"teleport"}"#).await;
    assert!(matches!(
        ws.next().await,
        ServerFrame::Error {
            code: ErrorCode::UnknownType,
            ..
        }
    ));
    ws.send_raw(r#"{"type":"send","channel_id":"not-a-uuid"}"#)
        .await;
    assert!(matches!(
        ws.next().await,
        ServerFrame::Error {
            code: ErrorCode::InvalidFrame,
            ..
        }
    ));
    let long = "é".repeat(4_001);
    ws.send(&ClientFrame::Send {
        channel_id: channel,
        nonce: "long".into(),
        text: long,
        parent_seq: None,
    })
    .await;
    match ws.next().await {
        ServerFrame::Error { code, nonce, .. } => {
            assert_eq!(code, ErrorCode::TextTooLong);
            assert_eq!(nonce.as_deref(), Some("long"));
        }
        other => panic!("{other:?}"),
    }
    // Exactly 4,000 characters is allowed, and the connection still works.
    let (_, seq) = ws.post(channel, "max", &"é".repeat(4_000)).await;
    assert_eq!(seq, 1);
    ws.send(&ClientFrame::Heartbeat).await;
    ws.wait_for(|f| *f == ServerFrame::HeartbeatAck).await;
    node.shutdown().await;
}

/// docs/PROTOCOL.md, `identify`: before it, malformed frames are answered and may be retried,
/// pings change nothing, and a well-formed frame of another type closes 4101.
#[tokio::test]
async fn before_identify_malformed_frames_are_answered_and_other_frames_close_4101() {
    let node = TestNode::start().await;
    let (_, alice) = node.user("alice").await;
    let mut ws = Client::connect(node.ws()).await;
    for (raw, code) in [
        ("{not json", ErrorCode::InvalidJson),
        (r#"{"type": "teleport"}"#, ErrorCode::UnknownType),
        (r#"{"type": "identify"}"#, ErrorCode::InvalidFrame),
    ] {
        ws.send_raw(raw).await;
        match ws.next().await {
            ServerFrame::Error { code: got, .. } => assert_eq!(got, code, "{raw}"),
            other => panic!("{raw}: {other:?}"),
        }
    }
    futures_util::SinkExt::send(
        &mut ws.ws,
        tokio_tungstenite::tungstenite::Message::Ping(b"still there?".to_vec().into()),
    )
    .await
    .unwrap();
    // Still open, and identify still works.
    ws.send(&ClientFrame::Identify {
        intents: None,
        token: alice,
    })
    .await;
    assert!(matches!(
        ws.wait_for(|f| matches!(f, ServerFrame::Ready { .. }))
            .await,
        ServerFrame::Ready { .. }
    ));

    let mut ws = Client::connect(node.ws()).await;
    ws.send(&ClientFrame::Typing {
        channel_id: uuid::Uuid::new_v4(),
    })
    .await;
    assert_eq!(
        close_code(&ws.closed().await),
        Some(CloseCode::NotAuthenticated.code())
    );
    node.shutdown().await;
}

#[tokio::test]
async fn invalid_expired_and_missing_tokens_are_refused_with_4100_or_4101() {
    let node = TestNode::start().await;
    let (_, alice) = node.user("alice").await;

    let mut ws = Client::connect(node.ws()).await;
    ws.send(&ClientFrame::Identify {
        intents: None,
        token: "not.a.jwt".into(),
    })
    .await;
    assert!(matches!(ws.next().await, ServerFrame::Error { .. }));
    assert_eq!(
        close_code(&ws.closed().await),
        Some(CloseCode::AuthenticationFailed.code())
    );

    // A token signed with the right key but expired.
    let expired = expired_token(&node, &alice).await;
    let mut ws = Client::connect(node.ws()).await;
    ws.send(&ClientFrame::Identify {
        intents: None,
        token: expired,
    })
    .await;
    match ws.next().await {
        ServerFrame::Error { message, .. } => assert!(message.contains("expired"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        close_code(&ws.closed().await),
        Some(CloseCode::AuthenticationFailed.code())
    );

    // Any other frame before identify.
    let mut ws = Client::connect(node.ws()).await;
    ws.send(&ClientFrame::Heartbeat).await;
    assert_eq!(
        close_code(&ws.closed().await),
        Some(CloseCode::NotAuthenticated.code())
    );

    // A logged-out session's token stops working.
    let (status, _) = node.post("/v1/auth/logout", Some(&alice), json!({})).await;
    assert_eq!(status, 204);
    let mut ws = Client::connect(node.ws()).await;
    ws.send(&ClientFrame::Identify {
        intents: None,
        token: alice.clone(),
    })
    .await;
    assert!(matches!(ws.next().await, ServerFrame::Error { .. }));
    assert_eq!(
        close_code(&ws.closed().await),
        Some(CloseCode::AuthenticationFailed.code())
    );

    // The server is still serving.
    let (_, bob) = node.user("bob").await;
    let _ = Client::identify(node.ws(), &bob).await;
    node.shutdown().await;
}

/// Re-signs the claims of a valid token with an expiry in the past, using the node's secret.
async fn expired_token(node: &TestNode, valid: &str) -> String {
    use base64::Engine;
    let payload = valid.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    let mut claims = claims;
    claims["exp"] = json!(chrono::Utc::now().timestamp() - 60);
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(
            node.config.jwt_secret.as_ref().unwrap().as_bytes(),
        ),
    )
    .unwrap()
}

#[tokio::test]
async fn an_oversized_frame_closes_with_1009_and_others_are_unaffected() {
    let node = TestNode::start().await;
    let (_, alice) = node.user("alice").await;
    let (mut ws, _) = Client::identify(node.ws(), &alice).await;
    ws.send_raw(&"x".repeat(70 * 1024)).await;
    assert_eq!(close_code(&ws.closed().await), Some(1009));
    let _ = Client::identify(node.ws(), &alice).await;
    node.shutdown().await;
}

#[tokio::test]
async fn a_silent_client_is_closed_as_a_zombie() {
    let node = TestNode::start_with(|config| {
        config.gateway.heartbeat_interval_ms = 100;
        config.gateway.heartbeat_timeout_ms = 300;
    })
    .await;
    let (_, alice) = node.user("alice").await;
    let (mut ws, _) = Client::identify(node.ws(), &alice).await;
    assert_eq!(
        close_code(&ws.closed().await),
        Some(CloseCode::HeartbeatTimeout.code())
    );
    node.shutdown().await;
}

/// docs/PROTOCOL.md, `heartbeat`: WebSocket pings count as activity, so a client whose library
/// pings needs no `heartbeat` frames.
#[tokio::test]
async fn websocket_pings_keep_a_connection_alive() {
    let node = TestNode::start_with(|config| {
        config.gateway.heartbeat_interval_ms = 100;
        config.gateway.heartbeat_timeout_ms = 300;
    })
    .await;
    let (_, alice) = node.user("alice").await;
    let (mut ws, _) = Client::identify(node.ws(), &alice).await;
    // Five timeouts' worth of pings and nothing else.
    for _ in 0..30 {
        futures_util::SinkExt::send(
            &mut ws.ws,
            tokio_tungstenite::tungstenite::Message::Ping(b"p".to_vec().into()),
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ws.send(&ClientFrame::Heartbeat).await;
    assert_eq!(
        ws.wait_for(|f| matches!(f, ServerFrame::HeartbeatAck))
            .await,
        ServerFrame::HeartbeatAck
    );
    node.shutdown().await;
}

#[tokio::test]
async fn typing_reaches_the_other_members_only() {
    let node = TestNode::start().await;
    let (alice_id, alice) = node.user("alice").await;
    let (_, bob) = node.user("bob").await;
    let (_, channel) = node.team(&alice, &[&bob]).await;
    let (mut alice_ws, _) = Client::identify(node.ws(), &alice).await;
    let (mut bob_ws, _) = Client::identify(node.ws(), &bob).await;
    alice_ws
        .send(&ClientFrame::Typing {
            channel_id: channel,
        })
        .await;
    match bob_ws.next().await {
        ServerFrame::Typing {
            channel_id,
            user_id,
            expires_in_ms,
        } => {
            assert_eq!(
                (channel_id, user_id, expires_in_ms),
                (channel, alice_id, 5_000)
            );
        }
        other => panic!("{other:?}"),
    }
    // Alice does not get her own indicator: the next frame she sees is her heartbeat ack.
    alice_ws.send(&ClientFrame::Heartbeat).await;
    assert_eq!(alice_ws.next().await, ServerFrame::HeartbeatAck);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_as_slow_while_others_keep_receiving() {
    let node = TestNode::start_with(|config| {
        // Small, but above what the sequencer publishes at once (two batches of 128), so only
        // a reader that stops reading overflows it.
        config.gateway.outbox_capacity = 300;
        config.gateway.max_in_flight_sends = 10_000;
    })
    .await;
    let (_, alice) = node.user("alice").await;
    let (_, bob) = node.user("bob").await;
    let (_, carol) = node.user("carol").await;
    let (_, channel) = node.team(&alice, &[&bob, &carol]).await;

    let (sender, _) = Client::identify(node.ws(), &alice).await;
    let (mut reader, _) = Client::identify(node.ws(), &bob).await;
    // Carol's socket has a tiny receive buffer, and she stops reading: large messages fill the
    // socket buffers, then her outbox.
    let (mut stalled, _) = Client::identify_with_small_buffer(node.ws(), &carol).await;
    let text = "s".repeat(3_900);
    let total = messages_beyond_any_buffering(text.len(), 300);
    let reading = tokio::spawn(async move {
        let mut seen = 0;
        while seen < total {
            if let Some(seq) = message_seq(&reader.next().await) {
                seen += 1;
                assert_eq!(seq, seen, "the reader gets every message in order");
            }
        }
        seen
    });
    // The sender keeps reading its echoes and acks so that it is not the slow one, and keeps at
    // most `WINDOW` sends unacknowledged so that its own outbox (an echo and an ack per send)
    // never fills either.
    const WINDOW: usize = 50;
    let window = std::sync::Arc::new(tokio::sync::Semaphore::new(WINDOW));
    let (mut sink, mut stream) = futures_util::StreamExt::split(sender.ws);
    let draining = tokio::spawn({
        let window = window.clone();
        async move {
            while let Some(Ok(message)) = futures_util::StreamExt::next(&mut stream).await {
                if let tokio_tungstenite::tungstenite::Message::Text(text) = message
                    && matches!(ServerFrame::parse(&text), Ok(ServerFrame::Ack { .. }))
                {
                    window.add_permits(1);
                }
            }
        }
    });
    for n in 0..total {
        window.acquire().await.unwrap().forget();
        let frame = ClientFrame::Send {
            channel_id: channel,
            nonce: n.to_string(),
            text: text.clone(),
            parent_seq: None,
        };
        futures_util::SinkExt::send(
            &mut sink,
            tokio_tungstenite::tungstenite::Message::Text(frame.to_json().into()),
        )
        .await
        .unwrap();
    }
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(120), reading)
            .await
            .unwrap()
            .unwrap(),
        total
    );

    // Carol now reads what was buffered: the stream ends before the last message, with 4002.
    let mut last = 0;
    let mut code = None;
    loop {
        match tokio::time::timeout(
            common::FRAME_WAIT,
            futures_util::StreamExt::next(&mut stalled.ws),
        )
        .await
        .unwrap()
        {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) => {
                if let Some(seq) = message_seq(&ServerFrame::parse(&text).unwrap()) {
                    last = seq;
                }
            }
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => {
                code = close_code(&frame);
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
    assert!(
        last < total,
        "the stalled client was cut off (got up to {last})"
    );
    assert!(
        code.is_none() || code == Some(CloseCode::SlowConsumer.code()),
        "close code {code:?}"
    );
    draining.abort();
    node.shutdown().await;
}
