//! Gateway protections: origin allow-list, rate limit, protocol violations, graceful shutdown.

mod common;

use chorus_protocol::{ClientFrame, CloseCode, ErrorCode, ServerFrame};
use common::{Client, TestNode, close_code};
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[tokio::test]
async fn a_browser_from_a_foreign_origin_is_refused_at_the_handshake() {
    let node = TestNode::start_with(|config| {
        config.gateway.allowed_origins = vec!["https://chat.example.com".into()];
    })
    .await;
    let request_from = |origin: &str| {
        let mut request = format!("ws://{}/ws", node.ws())
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
        request
    };
    match tokio_tungstenite::connect_async(request_from("https://evil.example.net")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("expected a 403 refusal, got {:?}", other.map(|_| ())),
    }
    let allowed = tokio_tungstenite::connect_async(request_from("https://chat.example.com")).await;
    assert!(allowed.is_ok());
    // Clients that send no Origin (bots, native apps) are allowed.
    let _ = Client::connect(node.ws()).await;
    node.shutdown().await;
}

#[tokio::test]
async fn flooding_frames_gets_rate_limited_then_closed_with_4004() {
    let node = TestNode::start_with(|config| {
        config.gateway.frames_per_second = 1;
        config.gateway.frame_burst = 3;
    })
    .await;
    let (_, alice) = node.user("alice").await;
    let (mut ws, _) = Client::identify(node.ws(), &alice).await;
    for _ in 0..3 {
        ws.send(&ClientFrame::Heartbeat).await;
    }
    ws.send(&ClientFrame::Heartbeat).await;
    let limited = ws
        .next_matching(|f| !matches!(f, ServerFrame::HeartbeatAck))
        .await;
    match limited {
        ServerFrame::Error {
            code,
            retry_after_ms,
            ..
        } => {
            assert_eq!(code, ErrorCode::RateLimited);
            assert!(retry_after_ms.is_some());
        }
        other => panic!("{other:?}"),
    }
    // Keeps flooding: the connection is closed.
    for _ in 0..10 {
        if ws
            .ws
            .send(Message::Text(ClientFrame::Heartbeat.to_json().into()))
            .await
            .is_err()
        {
            break;
        }
    }
    assert_eq!(
        close_code(&ws.closed().await),
        Some(CloseCode::RateLimited.code())
    );
    node.shutdown().await;
}

#[tokio::test]
async fn a_second_identify_and_a_binary_frame_are_protocol_errors() {
    let node = TestNode::start().await;
    let (_, alice) = node.user("alice").await;
    let (mut ws, _) = Client::identify(node.ws(), &alice).await;
    ws.send(&ClientFrame::Identify {
        intents: None,
        token: alice.clone(),
    })
    .await;
    assert_eq!(
        close_code(&ws.closed().await),
        Some(CloseCode::AlreadyAuthenticated.code())
    );

    let (mut ws, _) = Client::identify(node.ws(), &alice).await;
    ws.ws
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(
        close_code(&ws.closed().await),
        Some(CloseCode::ProtocolViolation.code())
    );
    node.shutdown().await;
}

#[tokio::test]
async fn resuming_an_unknown_session_closes_with_4005() {
    let node = TestNode::start().await;
    let (_, alice) = node.user("alice").await;
    let mut ws = Client::connect(node.ws()).await;
    ws.send(&ClientFrame::Resume {
        intents: None,
        token: alice,
        session_id: uuid::Uuid::new_v4(),
        channels: vec![],
    })
    .await;
    assert_eq!(
        close_code(&ws.closed().await),
        Some(CloseCode::SessionInvalid.code())
    );
    node.shutdown().await;
}

#[tokio::test]
async fn shutdown_tells_connected_clients_to_reconnect_elsewhere() {
    let node = TestNode::start().await;
    let (_, alice) = node.user("alice").await;
    let (mut ws, _) = Client::identify(node.ws(), &alice).await;
    let stopping = tokio::spawn(node.shutdown());
    assert_eq!(
        close_code(&ws.closed().await),
        Some(CloseCode::ServerRestart.code())
    );
    stopping.await.unwrap();
}

#[tokio::test]
async fn a_flood_at_the_default_rate_is_closed_4004_although_frames_are_admitted_in_between() {
    // The default limits (50 frames/s, burst 100): the limiter admits a frame every 20 ms, so a
    // flood is never refused many times in a row; it must be closed all the same.
    let node = TestNode::start_with(|config| {
        config.gateway.frames_per_second = 50;
        config.gateway.frame_burst = 100;
    })
    .await;
    let (_, alice) = node.user("alice").await;
    let (mut ws, _) = Client::identify(node.ws(), &alice).await;
    let started = std::time::Instant::now();
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(2));
    // One second at 500 frames/s: ~150 admitted (rate and burst), ~350 refused — past the limit
    // of 100 refusals in a window.
    while started.elapsed() < std::time::Duration::from_secs(1) {
        tick.tick().await;
        if ws
            .ws
            .send(Message::Text(ClientFrame::Heartbeat.to_json().into()))
            .await
            .is_err()
        {
            break;
        }
    }
    assert_eq!(
        close_code(&ws.closed().await),
        Some(CloseCode::RateLimited.code()),
        "a 500 frames/s flood was not closed"
    );
    node.shutdown().await;
}
