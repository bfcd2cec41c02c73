//! A connection's opening: the WebSocket handshake (with its limits and the `hello` frame), then
//! `identify` or `resume` within the authentication deadline, and the close frame at the end.
//! Nothing here holds a session yet: a connection that fails here never counted as online.

use std::net::SocketAddr;
use std::sync::Arc;

use chorus_core::auth::{AuthError, Principal};
use chorus_protocol::limits::{MAX_FRAME_BYTES, MAX_MESSAGE_CHARS};
use chorus_protocol::{
    ChannelPosition, ClientFrame, CloseCode, ErrorCode, Intents, PROTOCOL_VERSION, ServerFrame,
};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use uuid::Uuid;

use super::{Connection, End, Socket, text};
use crate::Shared;
use crate::stream::Stream;

pub(super) fn ws_config(shared: &Shared) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(shared.config.read_buffer_bytes)
        .write_buffer_size(shared.config.write_buffer_bytes)
        .max_write_buffer_size(shared.config.write_buffer_bytes + 2 * MAX_FRAME_BYTES)
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES))
}

/// The WebSocket handshake, `hello`, and authentication. `None` when the connection ended.
pub(super) async fn open(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
) -> Option<(Connection, Opening)> {
    let allowed = &shared.config.allowed_origins;
    let trusted = &shared.config.trusted_proxies;
    let mut client = peer.ip();
    // tungstenite's handshake callback signature fixes the (large) error type.
    #[allow(clippy::result_large_err)]
    let check_origin = |request: &Request, response: Response| {
        let forwarded = request.headers().get_all("x-forwarded-for");
        client = trusted.client_addr(peer.ip(), forwarded.iter().filter_map(|v| v.to_str().ok()));
        let origin = request
            .headers()
            .get("origin")
            .and_then(|o| o.to_str().ok());
        match origin {
            Some(origin) if !allowed.is_empty() && !allowed.iter().any(|a| a == origin) => {
                let mut refusal = ErrorResponse::new(Some("origin not allowed".into()));
                *refusal.status_mut() = StatusCode::FORBIDDEN;
                Err(refusal)
            }
            _ => Ok(response),
        }
    };
    // The TLS and WebSocket handshakes share one deadline, so a client that stalls either one
    // holds its socket no longer than the authentication timeout.
    let tls = shared.deps.tls.clone();
    let ws_settings = ws_config(&shared);
    let handshake = async move {
        let stream = match tls {
            Some(acceptor) => match acceptor.accept(stream).await {
                Ok(tls) => Stream::Tls(Box::new(tls)),
                Err(err) => {
                    tracing::debug!(error = %err, "tls handshake failed");
                    return None;
                }
            },
            None => Stream::Plain(stream),
        };
        let ws = tokio_tungstenite::accept_hdr_async_with_config(
            stream,
            check_origin,
            Some(ws_settings),
        )
        .await;
        Some(ws)
    };
    let mut ws = match tokio::time::timeout(shared.config.auth_timeout, handshake).await {
        Ok(None) => return None,
        Ok(Some(Ok(ws))) => ws,
        Ok(Some(Err(err))) => {
            tracing::debug!(error = %err, "websocket handshake failed");
            return None;
        }
        Err(_) => return None,
    };
    let hello = ServerFrame::Hello {
        protocol: PROTOCOL_VERSION,
        heartbeat_interval_ms: shared.config.heartbeat_interval.as_millis() as u64,
        max_frame_bytes: MAX_FRAME_BYTES,
        max_message_chars: MAX_MESSAGE_CHARS,
    };
    if ws.send(Message::Text(text(&hello))).await.is_err() {
        return None;
    }
    match authenticate(&mut ws, &shared).await {
        Ok((opening, principal)) => {
            let connection = Connection::new(ws, shared.clone(), principal, client);
            Some((connection, opening))
        }
        Err(end) => {
            close(&mut ws, end).await;
            None
        }
    }
}

/// The authentication frame a connection opened with.
pub(super) enum Opening {
    Identify {
        intents: Intents,
    },
    Resume {
        session_id: Uuid,
        channels: Vec<ChannelPosition>,
        intents: Intents,
    },
}

impl Opening {
    pub(super) fn intents(&self) -> Intents {
        match self {
            Opening::Identify { intents } | Opening::Resume { intents, .. } => *intents,
        }
    }
}

/// Waits for `identify` or `resume` and checks its token.
pub(super) async fn authenticate(
    ws: &mut Socket,
    shared: &Shared,
) -> Result<(Opening, Principal), End> {
    let deadline = tokio::time::Instant::now() + shared.config.auth_timeout;
    loop {
        let message = match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Err(End::Close(CloseCode::NotAuthenticated)),
            Ok(None) | Ok(Some(Err(_))) => return Err(End::Gone),
            Ok(Some(Ok(message))) => message,
        };
        let raw = match message {
            Message::Text(raw) => raw,
            Message::Binary(_) => return Err(End::Close(CloseCode::ProtocolViolation)),
            Message::Close(_) => return Err(End::Gone),
            _ => continue,
        };
        let (token, opening) = match ClientFrame::parse(&raw) {
            Ok(ClientFrame::Identify { token, intents }) => (
                token,
                Opening::Identify {
                    intents: Intents::declared(intents.as_deref()),
                },
            ),
            Ok(ClientFrame::Resume {
                token,
                session_id,
                channels,
                intents,
            }) => (
                token,
                Opening::Resume {
                    session_id,
                    channels,
                    intents: Intents::declared(intents.as_deref()),
                },
            ),
            Ok(_) => return Err(End::Close(CloseCode::NotAuthenticated)),
            Err(err) => {
                // A malformed first frame is answered and the client may try again until the
                // authentication deadline.
                let error = ServerFrame::error(err.code(), err.to_string());
                if ws.send(Message::Text(text(&error))).await.is_err() {
                    return Err(End::Gone);
                }
                continue;
            }
        };
        return match shared.deps.auth.verify_access(&token).await {
            Ok(principal) => Ok((opening, principal)),
            Err(AuthError::Store(err)) => {
                tracing::error!(error = %err, "token check failed");
                Err(End::Close(CloseCode::InternalError))
            }
            Err(err) => {
                let error = ServerFrame::error(ErrorCode::Forbidden, err.to_string());
                let _ = ws.send(Message::Text(text(&error))).await;
                Err(End::Close(CloseCode::AuthenticationFailed))
            }
        };
    }
}

/// Sends a close frame (briefly: the peer may not be reading) and drops the socket.
pub(super) async fn close(ws: &mut Socket, end: End) {
    let frame = match end {
        End::Gone => return,
        End::Close(code) => CloseFrame {
            code: WsCloseCode::from(code.code()),
            reason: code.reason().into(),
        },
        End::Standard(code) => CloseFrame {
            code,
            reason: super::standard_reason(code).into(),
        },
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), ws.close(Some(frame))).await;
}
