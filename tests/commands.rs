//! Slash commands end to end (docs/BOTS.md, "Slash commands"): a command handled by a bot over
//! its WebSocket, whose ephemeral answer reaches only the caller and whose channel answer
//! reaches everyone; a command handled by a signed URL; a handler that never answers leaves the
//! caller a `command_timeout` error; and the built-in commands.

mod common;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chorus_protocol::{ClientFrame, Intent, ServerFrame};
use chorus_webhooks::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, verify};
use common::{Client, FRAME_WAIT, TestNode};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use uuid::Uuid;

fn id(value: &Value) -> Uuid {
    value["id"].as_str().unwrap().parse().unwrap()
}

/// A bot of the workspace with a token; returns (bot id, token).
async fn bot(node: &TestNode, admin: &str, workspace: Uuid) -> (Uuid, String) {
    let (status, bot) = node
        .post(
            &format!("/v1/workspaces/{workspace}/bots"),
            Some(admin),
            json!({"name": "deployer"}),
        )
        .await;
    assert_eq!(status, 201, "{bot}");
    let bot_id = id(&bot);
    let (status, token) = node
        .post(
            &format!("/v1/bots/{bot_id}/tokens"),
            Some(admin),
            json!({"name": "ci", "scopes": ["channels:read"]}),
        )
        .await;
    assert_eq!(status, 201, "{token}");
    (bot_id, token["token"].as_str().unwrap().to_string())
}

async fn register(node: &TestNode, admin: &str, workspace: Uuid, body: Value) -> Value {
    let (status, command) = node
        .post(
            &format!("/v1/workspaces/{workspace}/commands"),
            Some(admin),
            body,
        )
        .await;
    assert_eq!(status, 201, "{command}");
    command
}

async fn invoke(node: &TestNode, token: &str, channel: Uuid, text: &str) -> (u16, Value) {
    node.post(
        &format!("/v1/channels/{channel}/commands"),
        Some(token),
        json!({"text": text}),
    )
    .await
}

/// A member's socket, subscribed to `channel`.
async fn member_socket(node: &TestNode, token: &str, channel: Uuid) -> Client {
    let (mut client, _) = Client::identify(node.ws(), token).await;
    client
        .send(&ClientFrame::Subscribe {
            channel_id: channel,
            since_seq: None,
        })
        .await;
    client
        .wait_for(|f| matches!(f, ServerFrame::Subscribed { .. }))
        .await;
    client
}

/// The texts of the channel's messages, oldest first.
async fn history(node: &TestNode, token: &str, channel: Uuid) -> Vec<String> {
    let (status, body) = node
        .get(&format!("/v1/channels/{channel}/messages"), token)
        .await;
    assert_eq!(status, 200, "{body}");
    let texts: Vec<String> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect();
    texts
}

#[tokio::test]
async fn a_command_reaches_its_bot_and_an_ephemeral_answer_reaches_only_the_caller() {
    let node = TestNode::start().await;
    let (_, alice) = node.user("alice").await;
    let (bob_id, bob) = node.user("bob").await;
    let (workspace, channel) = node.team(&alice, &[&bob]).await;
    let (bot_id, bot_token) = bot(&node, &alice, workspace).await;
    let command = register(
        &node,
        &alice,
        workspace,
        json!({"name": "/deploy", "description": "ship it", "bot_id": bot_id}),
    )
    .await;
    assert_eq!(command["name"], "deploy");
    assert_eq!(command["handler"], "socket");
    let mut bot_socket = {
        let mut client = Client::connect(node.ws()).await;
        client
            .send(&ClientFrame::Identify {
                token: bot_token.clone(),
                intents: Some(vec![Intent::Messages]),
            })
            .await;
        client
            .wait_for(|f| matches!(f, ServerFrame::Ready { .. }))
            .await;
        client
    };
    let mut bob_socket = member_socket(&node, &bob, channel).await;
    let mut alice_socket = member_socket(&node, &alice, channel).await;

    // Bob's command goes to the bot, not into the channel.
    let (status, outcome) = invoke(&node, &bob, channel, "/deploy api prod").await;
    assert_eq!(status, 202, "{outcome}");
    assert_eq!(outcome["handled_by"], "socket");
    let frame = bot_socket
        .wait_for(|f| matches!(f, ServerFrame::Command(_)))
        .await;
    let ServerFrame::Command(invocation) = frame else {
        unreachable!()
    };
    assert_eq!(invocation.command, "deploy");
    assert_eq!(invocation.text, "api prod");
    assert_eq!(
        (invocation.user_id, invocation.channel_id),
        (bob_id, channel)
    );
    assert_eq!(
        invocation.invocation_id.to_string(),
        outcome["invocation_id"].as_str().unwrap()
    );

    // The bot answers Bob alone.
    let (status, body) = node
        .post(
            "/v1/commands/respond",
            None,
            json!({"response_token": &invocation.response_token, "text": "deploying api to prod"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["visibility"], "ephemeral");
    let frame = bob_socket
        .wait_for(|f| matches!(f, ServerFrame::Ephemeral(_)))
        .await;
    let ServerFrame::Ephemeral(answer) = frame else {
        unreachable!()
    };
    assert_eq!(answer.text, "deploying api to prod");
    assert_eq!((answer.bot_id, answer.channel_id), (bot_id, channel));
    assert!(answer.error.is_none());
    // One answer per invocation.
    let (status, body) = node
        .post(
            "/v1/commands/respond",
            None,
            json!({"response_token": &invocation.response_token, "text": "again"}),
        )
        .await;
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["error"]["code"], "invocation_closed");

    // A second invocation answered to the channel: Alice sees that message, and had seen no
    // ephemeral frame before it.
    let (status, _) = invoke(&node, &bob, channel, "/deploy web").await;
    assert_eq!(status, 202);
    let frame = bot_socket
        .wait_for(|f| matches!(f, ServerFrame::Command(_)))
        .await;
    let ServerFrame::Command(second) = frame else {
        unreachable!()
    };
    let (status, body) = node
        .post(
            "/v1/commands/respond",
            None,
            json!({"response_token": second.response_token, "text": "web is live", "visibility": "channel"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    loop {
        match alice_socket.next().await {
            ServerFrame::Message(message) => {
                assert_eq!(
                    (message.author_id, message.text.as_str()),
                    (bot_id, "web is live")
                );
                break;
            }
            ServerFrame::Ephemeral(leak) => panic!("Alice got Bob's ephemeral answer: {leak:?}"),
            _ => {}
        }
    }
    // The commands themselves were never posted.
    assert_eq!(history(&node, &alice, channel).await, ["web is live"]);
    node.shutdown().await;
}

#[tokio::test]
async fn a_bot_that_does_not_answer_leaves_the_caller_a_timeout_error() {
    let node = TestNode::start_with(|config| config.api.command_deadline_ms = 200).await;
    let (_, alice) = node.user("alice").await;
    let (workspace, channel) = node.team(&alice, &[]).await;
    let (bot_id, _) = bot(&node, &alice, workspace).await;
    register(
        &node,
        &alice,
        workspace,
        json!({"name": "slow", "bot_id": bot_id}),
    )
    .await;
    let mut alice_socket = member_socket(&node, &alice, channel).await;
    let (status, _) = invoke(&node, &alice, channel, "/slow").await;
    assert_eq!(status, 202);
    let frame = alice_socket
        .wait_for(|f| matches!(f, ServerFrame::Ephemeral(_)))
        .await;
    let ServerFrame::Ephemeral(timeout) = frame else {
        unreachable!()
    };
    assert_eq!(timeout.error.unwrap().code, "command_timeout");
    node.shutdown().await;
}

/// One request the command URL got.
struct Received {
    headers: HeaderMap,
    body: String,
}

/// A command URL that answers with `status` and `answer`, handing each request to the test.
async fn command_url(status: u16, answer: Value) -> (String, mpsc::UnboundedReceiver<Received>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let state = Arc::new((tx, status, answer));
    let app = axum::Router::new()
        .route(
            "/command",
            axum::routing::post(
                |State(state): State<Arc<(mpsc::UnboundedSender<Received>, u16, Value)>>,
                 headers: HeaderMap,
                 body: String| async move {
                    let _ = state.0.send(Received { headers, body });
                    (
                        StatusCode::from_u16(state.1).unwrap(),
                        axum::Json(state.2.clone()),
                    )
                },
            ),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/command", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

#[tokio::test]
async fn a_url_command_is_signed_and_its_answer_or_failure_reaches_the_caller() {
    let node = TestNode::start().await;
    let (_, alice) = node.user("alice").await;
    let (bob_id, bob) = node.user("bob").await;
    let (workspace, channel) = node.team(&alice, &[&bob]).await;
    let (bot_id, _) = bot(&node, &alice, workspace).await;
    let (url, mut requests) = command_url(
        200,
        json!({"text": "4 open incidents", "visibility": "channel"}),
    )
    .await;
    let command = register(
        &node,
        &alice,
        workspace,
        json!({"name": "incidents", "bot_id": bot_id, "url": url}),
    )
    .await;
    assert_eq!(command["handler"], "url");
    let secret = command["secret"].as_str().unwrap().to_string();
    let mut bob_socket = member_socket(&node, &bob, channel).await;

    let (status, outcome) = invoke(&node, &bob, channel, "/incidents open").await;
    assert_eq!(status, 202, "{outcome}");
    assert_eq!(outcome["handled_by"], "url");
    let request = tokio::time::timeout(FRAME_WAIT, requests.recv())
        .await
        .unwrap()
        .unwrap();
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    };
    verify(
        &secret,
        header(TIMESTAMP_HEADER).parse().unwrap(),
        request.body.as_bytes(),
        &header(SIGNATURE_HEADER),
        chrono::Utc::now().timestamp(),
        300,
    )
    .expect("the request is signed with the command's secret");
    let body: Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(body["type"], "command");
    assert_eq!(body["text"], "open");
    assert_eq!(body["user_id"], bob_id.to_string());
    // The URL's answer, in its response, is posted in the channel as the bot.
    let frame = bob_socket
        .wait_for(|f| matches!(f, ServerFrame::Message(_)))
        .await;
    let ServerFrame::Message(message) = frame else {
        unreachable!()
    };
    assert_eq!(
        (message.author_id, message.text.as_str()),
        (bot_id, "4 open incidents")
    );

    // A URL that fails: Bob is told, privately.
    let (broken, _requests) = command_url(500, json!({})).await;
    register(
        &node,
        &alice,
        workspace,
        json!({"name": "broken", "bot_id": bot_id, "url": broken}),
    )
    .await;
    let (status, _) = invoke(&node, &bob, channel, "/broken").await;
    assert_eq!(status, 202);
    let frame = bob_socket
        .wait_for(|f| matches!(f, ServerFrame::Ephemeral(_)))
        .await;
    let ServerFrame::Ephemeral(failure) = frame else {
        unreachable!()
    };
    let error = failure.error.unwrap();
    assert_eq!(error.code, "command_failed");
    assert!(error.message.contains("500"), "{}", error.message);
    node.shutdown().await;
}

#[tokio::test]
async fn built_in_commands_do_what_their_routes_do() {
    let node = TestNode::start().await;
    let (_, alice) = node.user("alice").await;
    let (_, bob) = node.user("bob").await;
    let (_, carol) = node.user("carol").await;
    let (workspace, channel) = node.team(&alice, &[&bob]).await;
    let (_, me) = node.get("/v1/users/me", &carol).await;
    let (status, body) = node
        .post(
            &format!("/v1/workspaces/{workspace}/members"),
            Some(&alice),
            json!({"email": me["email"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    let ok = |(status, body): (u16, Value)| {
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["handled_by"], "builtin");
        body["text"].as_str().unwrap().to_string()
    };
    let text = ok(invoke(&node, &bob, channel, "/topic Release day").await);
    assert_eq!(text, "Topic set to: Release day");
    let (_, view) = node.get(&format!("/v1/channels/{channel}"), &alice).await;
    assert_eq!(view["topic"], "Release day");

    ok(invoke(&node, &bob, channel, "/me waves").await);
    assert_eq!(history(&node, &alice, channel).await, ["_waves_"]);

    ok(invoke(&node, &bob, channel, "/mute").await);
    let (_, view) = node.get(&format!("/v1/channels/{channel}"), &bob).await;
    assert_eq!(view["muted"], true);
    ok(invoke(&node, &bob, channel, "/mute off").await);
    let (_, view) = node.get(&format!("/v1/channels/{channel}"), &bob).await;
    assert_eq!(view["muted"], false);

    let email = me["email"].as_str().unwrap();
    ok(invoke(&node, &alice, channel, &format!("/invite {email}")).await);
    let (_, view) = node.get(&format!("/v1/channels/{channel}"), &carol).await;
    assert_eq!(view["is_member"], true, "{view}");

    ok(invoke(&node, &bob, channel, "/focus 30").await);
    let (_, focus) = node.get("/v1/users/me/focus", &bob).await;
    assert!(focus["session"].is_object(), "{focus}");
    ok(invoke(&node, &bob, channel, "/focus off").await);
    let (_, focus) = node.get("/v1/users/me/focus", &bob).await;
    assert!(focus["session"].is_null(), "{focus}");

    // Refusals: unknown, bad usage, not a command, a reserved name, a member registering.
    let (status, body) = invoke(&node, &bob, channel, "/nope").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("unknown_command"))
    );
    let (status, body) = invoke(&node, &bob, channel, "/me").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_arguments"))
    );
    let (status, body) = invoke(&node, &bob, channel, "hello").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_command"))
    );
    let (bot_id, _) = bot(&node, &alice, workspace).await;
    let (status, body) = node
        .post(
            &format!("/v1/workspaces/{workspace}/commands"),
            Some(&alice),
            json!({"name": "topic", "bot_id": bot_id}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("reserved_command"))
    );
    let (status, _) = node
        .post(
            &format!("/v1/workspaces/{workspace}/commands"),
            Some(&bob),
            json!({"name": "mine", "bot_id": bot_id}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, list) = node
        .get(&format!("/v1/workspaces/{workspace}/commands"), &bob)
        .await;
    assert_eq!(status, 200);
    assert_eq!(list["builtins"].as_array().unwrap().len(), 5);
    node.shutdown().await;
}
