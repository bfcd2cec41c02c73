//! Bots end to end on a real node: admins create bots and tokens; a token is held to its scopes
//! and to the channels its bot was added to; a bot receives only its intents; a revoked token's
//! socket closes; a token's send rate is shared by its sockets; an incoming webhook posts once
//! per idempotency key; the example bot answers.

mod common;

#[path = "../examples/ping_bot.rs"]
#[expect(dead_code, reason = "the example's main runs only as the example")]
mod ping_bot;

use std::time::Duration;

use chorus_protocol::{ClientFrame, ErrorCode, EventKind, Intent, ServerFrame};
use common::{Client, TestNode, close_code};
use serde_json::{Value, json};
use uuid::Uuid;

fn id(value: &Value) -> Uuid {
    value["id"].as_str().unwrap().parse().unwrap()
}

/// A bot in the workspace and a token with `scopes`; returns (bot id, token).
async fn bot(node: &TestNode, admin: &str, workspace: Uuid, scopes: &[&str]) -> (Uuid, String) {
    let (status, bot) = node
        .post(
            &format!("/v1/workspaces/{workspace}/bots"),
            Some(admin),
            json!({"name": "helper", "description": "answers"}),
        )
        .await;
    assert_eq!(status, 201, "{bot}");
    let bot_id = id(&bot);
    let (status, token) = node
        .post(
            &format!("/v1/bots/{bot_id}/tokens"),
            Some(admin),
            json!({"name": "ci", "scopes": scopes}),
        )
        .await;
    assert_eq!(status, 201, "{token}");
    (bot_id, token["token"].as_str().unwrap().to_string())
}

async fn add_to_channel(node: &TestNode, admin: &str, channel: Uuid, user: Uuid) {
    let (status, body) = node
        .post(
            &format!("/v1/channels/{channel}/members"),
            Some(admin),
            json!({"user_id": user}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// A bot that may read and post, added to `channel`; returns (bot id, token).
async fn posting_bot_in(
    node: &TestNode,
    admin: &str,
    workspace: Uuid,
    channel: Uuid,
) -> (Uuid, String) {
    let scopes = ["channels:read", "messages:write"];
    let (bot_id, token) = bot(node, admin, workspace, &scopes).await;
    add_to_channel(node, admin, channel, bot_id).await;
    (bot_id, token)
}

async fn identify_with(
    node: &TestNode,
    token: &str,
    intents: Vec<Intent>,
) -> (Client, ServerFrame) {
    let mut client = Client::connect(node.ws()).await;
    client
        .send(&ClientFrame::Identify {
            token: token.into(),
            intents: Some(intents),
        })
        .await;
    let ready = client.next().await;
    assert!(matches!(ready, ServerFrame::Ready { .. }), "{ready:?}");
    (client, ready)
}

#[tokio::test]
async fn bot_tokens_are_scoped_confined_to_their_channels_and_revocable() {
    let node = TestNode::start().await;
    let (_, alice) = node.user("alice").await;
    let (_, bob) = node.user("bob").await;
    let (workspace, channel) = node.team(&alice, &[&bob]).await;

    // Only admins create bots.
    let (status, _) = node
        .post(
            &format!("/v1/workspaces/{workspace}/bots"),
            Some(&bob),
            json!({"name": "mine"}),
        )
        .await;
    assert_eq!(status, 403);
    let (bot_id, token) = bot(
        &node,
        &alice,
        workspace,
        &["channels:read", "messages:write"],
    )
    .await;
    assert!(token.starts_with("chb_"));
    let (status, listed) = node.get(&format!("/v1/bots/{bot_id}/tokens"), &alice).await;
    assert_eq!(status, 200);
    assert_eq!(
        listed[0]["scopes"],
        json!(["channels:read", "messages:write"])
    );
    assert!(
        !listed.to_string().contains(&token[4..]),
        "the secret is shown once"
    );
    let (status, body) = node
        .post(
            &format!("/v1/bots/{bot_id}/tokens"),
            Some(&alice),
            json!({"name": "x", "scopes": ["root"]}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_scopes"))
    );

    // Not added to the public channel: it does not exist for the bot.
    let (status, channels) = node
        .get(&format!("/v1/workspaces/{workspace}/channels"), &token)
        .await;
    assert_eq!((status, channels), (200, json!([])));
    let (status, _) = node
        .get(&format!("/v1/channels/{channel}/messages"), &token)
        .await;
    assert_eq!(status, 404);
    let (status, body) = node
        .post(
            &format!("/v1/channels/{channel}/join"),
            Some(&token),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("bot_forbidden"))
    );

    add_to_channel(&node, &alice, channel, bot_id).await;
    let (status, posted) = node
        .post(
            &format!("/v1/channels/{channel}/messages"),
            Some(&token),
            json!({"text": "beep"}),
        )
        .await;
    assert_eq!(status, 201, "{posted}");
    assert_eq!(posted["author_id"], json!(bot_id));
    let seq = posted["seq"].as_u64().unwrap();
    let (status, body) = node
        .call(
            "PUT",
            &format!("/v1/channels/{channel}/messages/{seq}/reactions/thumbsup"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("missing_scope"))
    );

    // Over the socket too; revoking the token closes it at once, and REST refuses it.
    let (mut socket, ready) = identify_with(&node, &token, vec![Intent::Messages]).await;
    let ServerFrame::Ready { channels, .. } = ready else {
        unreachable!()
    };
    assert_eq!(channels.len(), 1);
    let token_id = listed[0]["id"].as_str().unwrap();
    let (status, _) = node
        .call(
            "DELETE",
            &format!("/v1/bots/{bot_id}/tokens/{token_id}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(close_code(&socket.closed().await), Some(4100));
    let (status, _) = node.get("/v1/users/me", &token).await;
    assert_eq!(status, 401);
    let (_, listed) = node.get(&format!("/v1/bots/{bot_id}/tokens"), &alice).await;
    assert!(listed[0]["revoked_at"].is_string());
    node.shutdown().await;
}

#[tokio::test]
async fn a_bot_receives_only_its_intents_in_only_its_channels() {
    let node = TestNode::start().await;
    let (_, alice) = node.user("alice").await;
    let (workspace, channel) = node.team(&alice, &[]).await;
    let (status, other) = node
        .post(
            &format!("/v1/workspaces/{workspace}/channels"),
            Some(&alice),
            json!({"name": "elsewhere"}),
        )
        .await;
    assert_eq!(status, 201);
    let other = id(&other);
    let (bot_id, token) = bot(&node, &alice, workspace, &["channels:read"]).await;
    add_to_channel(&node, &alice, channel, bot_id).await;
    let (mut bot_socket, _) = identify_with(&node, &token, vec![Intent::Messages]).await;
    let (mut alice_socket, _) = Client::identify(node.ws(), &alice).await;

    let (_, first) = alice_socket.post(channel, "a-1", "first").await;
    alice_socket.post(other, "b-1", "not for the bot").await;
    let (status, _) = node
        .call(
            "PUT",
            &format!("/v1/channels/{channel}/messages/{first}/reactions/tada"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (_, last) = alice_socket.post(channel, "a-2", "second").await;

    let mut seen = Vec::new();
    while seen.len() < 2 {
        if let ServerFrame::Message(event) = bot_socket.next().await {
            seen.push((event.channel_id, event.seq, event.kind));
        }
    }
    assert_eq!(
        seen,
        vec![
            (channel, first, EventKind::Message),
            (channel, last, EventKind::Message)
        ],
        "no reaction, nothing of the other channel"
    );

    // Added to the other channel while connected: the bot follows it at once.
    add_to_channel(&node, &alice, other, bot_id).await;
    bot_socket
        .wait_for(
            |f| matches!(f, ServerFrame::Subscribed { channel_id, .. } if *channel_id == other),
        )
        .await;
    let (_, third) = alice_socket.post(other, "b-2", "now for the bot").await;
    let frame = bot_socket
        .wait_for(|f| matches!(f, ServerFrame::Message(_)))
        .await;
    let ServerFrame::Message(event) = frame else {
        unreachable!()
    };
    assert_eq!((event.channel_id, event.seq), (other, third));

    // Without messages:write the bot cannot send.
    bot_socket
        .send(&ClientFrame::Send {
            channel_id: channel,
            nonce: "n".into(),
            text: "hi".into(),
            parent_seq: None,
        })
        .await;
    let refusal = bot_socket
        .wait_for(|f| matches!(f, ServerFrame::Error { .. }))
        .await;
    assert!(
        format!("{refusal:?}").contains("messages:write"),
        "{refusal:?}"
    );
    node.shutdown().await;
}

#[tokio::test]
async fn an_incoming_webhook_posts_once_per_idempotency_key() {
    let node = TestNode::start().await;
    let (_, alice) = node.user("alice").await;
    let (workspace, channel) = node.team(&alice, &[]).await;
    let (bot_id, _) = bot(&node, &alice, workspace, &["channels:read"]).await;
    let (status, hook) = node
        .post(
            &format!("/v1/channels/{channel}/webhooks"),
            Some(&alice),
            json!({"name": "ci", "bot_id": bot_id}),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    let url = hook["url"].as_str().unwrap().to_string();
    let (mut alice_socket, _) = Client::identify(node.ws(), &alice).await;

    let http = reqwest::Client::new();
    let deliver = |key: &'static str, path: String| {
        http.post(node.url(&path))
            .header("Idempotency-Key", key)
            .json(&json!({"text": "build 42 passed"}))
            .send()
    };
    let first = deliver("build-42", url.clone()).await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = deliver("build-42", url.clone()).await.unwrap();
    assert_eq!(again.status(), 200, "the same key posts nothing new");
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["seq"], again["seq"]);
    assert_eq!(first["author_id"], json!(bot_id));
    let wrong = url.rsplit_once('/').unwrap().0.to_string() + "/not-the-secret";
    assert_eq!(deliver("k", wrong).await.unwrap().status(), 404);

    let frame = alice_socket
        .wait_for(|f| matches!(f, ServerFrame::Message(_)))
        .await;
    let ServerFrame::Message(event) = frame else {
        unreachable!()
    };
    assert_eq!(
        (event.author_id, event.text.as_str()),
        (bot_id, "build 42 passed")
    );
    let (_, history) = node
        .get(&format!("/v1/channels/{channel}/messages"), &alice)
        .await;
    let texts = history.to_string().matches("build 42 passed").count();
    assert_eq!(texts, 1, "{history}");
    node.shutdown().await;
}

#[tokio::test]
async fn the_example_bot_answers_ping() {
    let node = TestNode::start().await;
    let (_, alice) = node.user("alice").await;
    let (workspace, channel) = node.team(&alice, &[]).await;
    let (bot_id, token) = posting_bot_in(&node, &alice, workspace, channel).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let url = format!("ws://{}/ws", node.ws());
    let running = tokio::spawn(async move {
        ping_bot::run(&url, &token, async {
            let _ = stopped.await;
        })
        .await
        .map_err(|err| err.to_string())
    });
    let (mut alice_socket, _) = Client::identify(node.ws(), &alice).await;
    // The bot may not be subscribed yet: ask until it answers.
    let mut answer = None;
    for attempt in 0..50 {
        alice_socket
            .post(channel, &format!("ping-{attempt}"), "!ping")
            .await;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(200);
        while let Ok(frame) = tokio::time::timeout_at(deadline, alice_socket.next()).await {
            if let ServerFrame::Message(event) = frame
                && event.author_id == bot_id
            {
                answer = Some(event.text);
                break;
            }
        }
        if answer.is_some() {
            break;
        }
    }
    assert_eq!(answer.as_deref(), Some("pong"));
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
    node.shutdown().await;
}

#[tokio::test]
async fn a_bot_token_has_one_send_rate_across_its_sockets() {
    let node = TestNode::start().await;
    let (_, alice) = node.user("alice").await;
    let (workspace, channel) = node.team(&alice, &[]).await;
    let (_, token) = posting_bot_in(&node, &alice, workspace, channel).await;
    let (mut first, _) = identify_with(&node, &token, vec![Intent::Messages]).await;
    let (mut second, _) = identify_with(&node, &token, vec![Intent::Messages]).await;

    // 40 sends on each socket at once: twice the token's burst (40), far below one connection's
    // frame and in-flight limits — only the token's rate can refuse them.
    const EACH: usize = 40;
    for (socket, name) in [(&mut first, "first"), (&mut second, "second")] {
        for i in 0..EACH {
            socket
                .send(&ClientFrame::Send {
                    channel_id: channel,
                    nonce: format!("{name}-{i}"),
                    text: format!("{name} {i}"),
                    parent_seq: None,
                })
                .await;
        }
    }
    let mut answers = Vec::new();
    for (socket, name) in [(&mut first, "first"), (&mut second, "second")] {
        let (mut acked, mut limited) = (0, 0);
        while acked + limited < EACH {
            match socket
                .wait_for(|f| {
                    matches!(
                        f,
                        ServerFrame::Ack { .. } | ServerFrame::Error { nonce: Some(_), .. }
                    )
                })
                .await
            {
                ServerFrame::Ack { .. } => acked += 1,
                ServerFrame::Error {
                    code,
                    nonce: Some(nonce),
                    retry_after_ms,
                    ..
                } => {
                    assert_eq!(code, ErrorCode::RateLimited, "{nonce}");
                    assert!(nonce.starts_with(name), "{nonce}");
                    assert!(retry_after_ms.is_some_and(|ms| ms > 0));
                    limited += 1;
                }
                other => unreachable!("{other:?}"),
            }
        }
        answers.push((acked, limited));
    }
    let acked: usize = answers.iter().map(|(a, _)| a).sum();
    let limited: usize = answers.iter().map(|(_, l)| l).sum();
    // The burst, plus what refilled at 20 a second while the frames were handled.
    assert!(acked >= 40, "{answers:?}");
    // Each socket alone stayed within a burst: refusals mean one rate for the token.
    assert!(
        limited > 0,
        "one rate per token, not per socket: {answers:?}"
    );
    // A refused send is retried with the same nonce once the rate allows.
    tokio::time::sleep(Duration::from_millis(100)).await;
    first.post(channel, "second-39", "second 39").await;
    node.shutdown().await;
}
