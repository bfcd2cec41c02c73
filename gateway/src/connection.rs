//! One client connection: handshake, authentication, then the frame loop. This file holds the
//! connection's state, its life (`run`) and the frame loop; its phases and duties are the
//! modules under `connection/` (handshake, session, subscribe, send, writer, errors, presence,
//! badges, bot).
//!
//! The task owns the socket. It reads client frames, writes what its outbox holds, and closes the
//! connection on the heartbeat deadline or when asked (slow consumer, shutdown). Live channel
//! events are filtered against `last_seq` per channel when written, which makes replay-then-live
//! hand-over exact: an event already replayed is skipped, and a gap (an event lost between the bus
//! and this gateway) is filled from the channel's replay buffer before going on.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use chorus_cluster::BusEvent;
use chorus_core::auth::Principal;
use chorus_core::bots::{Scope, Scopes};
use chorus_protocol::{ClientFrame, CloseCode, ErrorCode, Intent, Intents, ServerFrame};
use futures_util::future::Either;
use futures_util::{SinkExt, StreamExt};
use governor::clock::{Clock, MonotonicClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use uuid::Uuid;

use crate::hub::ConnId;
use crate::metrics::GATEWAY;
use crate::outbox::{Outbox, Outgoing};
use crate::sessions::Holder;
use crate::stream::Stream;
use crate::{OpenSlot, Shared};

mod badges;
mod bot;
mod errors;
mod handshake;
mod occasional;
mod presence;
mod send;
mod session;
mod subscribe;
mod subscriptions;
mod writer;

pub(crate) use bot::send_limiter;
use errors::channel_error;
use handshake::{Opening, close, open};
use occasional::Occasional;
use subscriptions::{Subscription, Subscriptions};

type Socket = WebSocketStream<Stream>;

/// A connection's frame rate limiter. On the standard clock: governor's default (quanta) clock
/// keeps a 40-byte calibration in every limiter, which each idle connection would carry.
type FrameLimiter =
    RateLimiter<NotKeyed, InMemoryState, MonotonicClock, NoOpMiddleware<std::time::Instant>>;

/// How often a connection renews its presence lease (a third of `CONNECTION_LEASE`), and its
/// session's hold lease when the session store needs one (`GatewayConfig::session_limits`).
pub(crate) const LEASE_RENEWAL: std::time::Duration = std::time::Duration::from_secs(30);

/// How long a connection remembers that it sent `typing` in a channel (the indicator's life).
const TYPING_MEMORY: std::time::Duration =
    std::time::Duration::from_millis(chorus_protocol::limits::TYPING_TTL_MS);

/// How a connection ends.
enum End {
    /// Close with one of our codes.
    Close(CloseCode),
    /// Close with a standard code (1009 message too big, 1002 protocol error); see
    /// [`standard_reason`].
    Standard(WsCloseCode),
    /// The peer went away or closed; nothing more to say.
    Gone,
}

/// The reason sent with a standard close code.
fn standard_reason(code: WsCloseCode) -> &'static str {
    match code {
        WsCloseCode::Size => "frame too large",
        _ => "protocol error",
    }
}

/// How a connection ends when reading from it failed: a frame too large or malformed framing is
/// answered with the standard close code; a peer that vanished — its TCP connection ended without
/// a close frame, or any I/O error — is gone, with nothing to tell it (logged as 1006).
fn read_failed(err: &WsError) -> End {
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    match err {
        WsError::Capacity(_) => End::Standard(WsCloseCode::Size),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => End::Gone,
        WsError::Protocol(_) => End::Standard(WsCloseCode::Protocol),
        _ => End::Gone,
    }
}

fn text(frame: &ServerFrame) -> Utf8Bytes {
    Utf8Bytes::from(frame.to_json())
}

/// Runs one connection to its end.
///
/// The phases before and after the main loop — handshake, authentication and opening the
/// session; closing — are boxed futures of their own: this function's future is the connection
/// task's memory for its whole life, so it keeps only the `Connection` and the state of its main
/// loop.
///
/// The opening phase is boxed here, before the task starts: the arguments it takes (the socket,
/// the peer's address) then never become fields of the task's future (an async function keeps
/// its arguments for its whole life).
pub(crate) fn run(
    stream: TcpStream,
    peer: SocketAddr,
    slot: OpenSlot,
) -> impl Future<Output = ()> + Send + 'static {
    let opening = Box::pin(open_and_start(stream, peer, slot.shared().clone()));
    live(opening, slot)
}

/// The connection once opened: the main loop, then closing. `slot` counts it open till the end.
async fn live(
    opening: Pin<Box<impl Future<Output = Option<(Connection, Result<(), End>)>>>>,
    // Dropped when this future ends: the connection is no longer counted open.
    _slot: OpenSlot,
) {
    let Some((mut connection, started)) = opening.await else {
        return;
    };
    let end = match started {
        Ok(()) => connection.serve().await,
        Err(end) => end,
    };
    Box::pin(connection.finish(end)).await;
}

/// The handshake, authentication, and the answer to the opening frame (`ready` or `resumed`).
/// `None` when the connection ended before it was authenticated.
async fn open_and_start(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
) -> Option<(Connection, Result<(), End>)> {
    let accepted = Instant::now();
    let accepted_ms = shared.now_ms();
    let Some((mut connection, opening)) = open(stream, peer, shared).await else {
        GATEWAY.handshakes_failed.increment(1);
        return None;
    };
    connection.opened_ms = accepted_ms;
    let started = connection.start(opening).await;
    if started.is_ok() {
        GATEWAY
            .handshake_seconds
            .record(accepted.elapsed().as_secs_f64());
    }
    Some((connection, started))
}

struct Connection {
    id: ConnId,
    ws: Socket,
    shared: Arc<Shared>,
    outbox: Arc<Outbox>,
    user: Uuid,
    /// The login session the token belongs to: revoking it ends this connection.
    auth_session: Uuid,
    session_id: Option<Uuid>,
    subscriptions: Subscriptions,
    limiter: FrameLimiter,
    /// When the last write to the client started (see `GatewayConfig::flush_interval`).
    last_write: Option<tokio::time::Instant>,
    /// When the presence lease was last renewed, in the gateway's clock (`Shared::now_ms`).
    lease_renewed_ms: u64,
    /// The client's address (behind a trusted proxy, the one it forwarded) and when the socket
    /// was accepted: the connection's log line.
    client: IpAddr,
    opened_ms: u64,
    /// Presence following, typing memory and rate-limit refusals, allocated on first use.
    occasional: Occasional,
    /// The kinds of events the client declared it wants (all when it declared none).
    intents: Intents,
    /// For a bot token: its scopes (`bot.rs`); `None` for a person.
    bot_scopes: Option<Scopes>,
}

impl Connection {
    fn new(ws: Socket, shared: Arc<Shared>, principal: Principal, client: IpAddr) -> Self {
        let config = &shared.config;
        let quota = Quota::per_second(NonZeroU32::new(config.frames_per_second.max(1)).unwrap())
            .allow_burst(NonZeroU32::new(config.frame_burst.max(1)).unwrap());
        let outbox = Arc::new(Outbox::new(config.outbox_capacity));
        outbox.touch(shared.now_ms());
        let id = shared
            .next_conn
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        shared
            .connections
            .write()
            .insert(id, (principal.user_id, outbox.clone()));
        Connection {
            id,
            ws,
            outbox,
            user: principal.user_id,
            auth_session: principal.session_id,
            session_id: None,
            subscriptions: Subscriptions::default(),
            limiter: RateLimiter::direct_with_clock(quota, MonotonicClock),
            last_write: None,
            lease_renewed_ms: shared.now_ms(),
            client,
            opened_ms: shared.now_ms(),
            occasional: Occasional::default(),
            intents: Intents::ALL,
            bot_scopes: principal.bot_scopes,
            shared,
        }
    }

    /// Counts this connection as online (or renews its lease), telling followers when the user
    /// comes online.
    async fn renew_presence(&mut self) {
        self.lease_renewed_ms = self.shared.now_ms();
        let presence = &self.shared.deps.presence;
        match presence
            .connected(self.user, self.presence_id(), chrono::Utc::now())
            .await
        {
            Ok(transition) => self.report_presence(transition).await,
            Err(err) => tracing::warn!(error = %err, "presence update failed"),
        }
    }

    /// This connection as the holder of its session, unique across the gateways that share the
    /// session store.
    fn holder(&self) -> Holder {
        Holder {
            gateway: self.shared.instance,
            connection: self.id,
        }
    }

    /// This connection in the presence store (unique across the deployment).
    fn presence_id(&self) -> Uuid {
        self.holder().presence_id(self.auth_session)
    }

    /// Renews the session's hold lease, for stores that need it (shared ones; the in-process
    /// store does not, so idle connections of an embedded node make no call here).
    async fn renew_session(&self) {
        let sessions = &self.shared.deps.sessions;
        if let Some(session) = self.session_id
            && sessions.hold_lease().is_some()
            && let Err(err) = sessions
                .renew(session, self.holder(), chrono::Utc::now())
                .await
        {
            tracing::warn!(error = %err, "session renewal failed");
        }
    }

    fn reply(&self, frame: &ServerFrame) {
        self.outbox.push(Outgoing::Frame(text(frame)));
    }

    /// Counts the connection online and answers its opening frame (`ready` or `resumed`).
    async fn start(&mut self, opening: Opening) -> Result<(), End> {
        self.intents = opening.intents();
        self.renew_presence().await;
        self.open_session(opening).await
    }

    /// The main loop: writes what the outbox holds and handles client frames until the
    /// connection ends. Closing on silence is the heartbeat sweep's job (`heartbeat.rs`): it
    /// closes the outbox, which ends `drain` with the close code.
    async fn serve(&mut self) -> End {
        let outbox = self.outbox.clone();
        loop {
            // Each arm only makes the boxed future of its step; awaiting it after the `select!`
            // keeps the frame read (or the items drained) out of this loop's state, which every
            // idle connection would otherwise carry (moved-from locals keep their place in a
            // future until their scope ends).
            let step = tokio::select! {
                biased;
                work = outbox.drain() => match work {
                    Ok(items) => Either::Left(Box::pin(self.write_outbox(items))),
                    Err(code) => return End::Close(code),
                },
                message = self.ws.next() => Either::Right(Box::pin(self.on_message(message))),
            };
            if let Err(end) = step.await {
                return end;
            }
        }
    }

    async fn on_message(&mut self, message: Option<Result<Message, WsError>>) -> Result<(), End> {
        let message = match message {
            None => return Err(End::Gone),
            Some(Ok(message)) => message,
            Some(Err(err)) => return Err(read_failed(&err)),
        };
        self.outbox.touch(self.shared.now_ms());
        // Renew a third of the way through the lease, so a live connection never lapses.
        let since_renewal = self.shared.now_ms().saturating_sub(self.lease_renewed_ms);
        if since_renewal > LEASE_RENEWAL.as_millis() as u64 {
            self.renew_presence().await;
            self.renew_session().await;
        }
        match message {
            Message::Text(raw) => self.on_text(&raw).await,
            Message::Binary(_) => Err(End::Close(CloseCode::ProtocolViolation)),
            Message::Close(_) => {
                // tungstenite has queued the close reply; send it and stop.
                let _ = self.ws.flush().await;
                Err(End::Gone)
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Ok(()),
        }
    }

    async fn on_text(&mut self, raw: &str) -> Result<(), End> {
        if let Err(not_until) = self.limiter.check() {
            if self
                .occasional
                .get_mut()
                .refusals
                .refuse(Instant::now(), self.shared.config.frame_burst)
            {
                return Err(End::Close(CloseCode::RateLimited));
            }
            GATEWAY.frames_rate_limited.increment(1);
            // The limiter's own answer: how long until it admits a frame again.
            let wait = not_until.wait_time_from(MonotonicClock.now());
            let retry_after_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
            self.reply(&ServerFrame::Error {
                code: ErrorCode::RateLimited,
                message: "too many frames; slow down".into(),
                nonce: None,
                channel_id: None,
                retry_after_ms: Some(retry_after_ms.max(1)),
            });
            return Ok(());
        }
        let frame = match ClientFrame::parse(raw) {
            Ok(frame) => {
                GATEWAY.frame_in(Some(&frame));
                frame
            }
            Err(err) => {
                GATEWAY.frame_in(None);
                self.reply(&ServerFrame::error(err.code(), err.to_string()));
                return Ok(());
            }
        };
        match frame {
            ClientFrame::Identify { .. } | ClientFrame::Resume { .. } => {
                Err(End::Close(CloseCode::AlreadyAuthenticated))
            }
            ClientFrame::Heartbeat => {
                self.reply(&ServerFrame::HeartbeatAck);
                Ok(())
            }
            ClientFrame::Subscribe {
                channel_id,
                since_seq,
            } => {
                if let Err(error) = self.subscribe(channel_id, since_seq).await {
                    self.reply(&error);
                }
                Ok(())
            }
            ClientFrame::Unsubscribe { channel_id } => {
                self.shared.hub.unsubscribe(channel_id, self.id);
                self.subscriptions.remove(&channel_id);
                self.reply(&ServerFrame::Unsubscribed { channel_id });
                Ok(())
            }
            ClientFrame::Send {
                channel_id,
                nonce,
                text,
                parent_seq,
            } => {
                if let Err(error) = self.send(channel_id, nonce, text, parent_seq).await {
                    self.reply(&error);
                }
                Ok(())
            }
            ClientFrame::Typing { channel_id } if self.lacks(Scope::MessagesWrite) => {
                self.reply(&Self::missing_scope(Scope::MessagesWrite, channel_id, None));
                Ok(())
            }
            ClientFrame::Typing { channel_id } => {
                if self.subscriptions.contains_key(&channel_id) {
                    self.occasional
                        .typing(channel_id, Instant::now(), TYPING_MEMORY);
                    let broadcast = self
                        .shared
                        .deps
                        .presence
                        .typing(channel_id, self.user, chrono::Utc::now())
                        .await
                        .unwrap_or_else(|err| {
                            tracing::warn!(error = %err, "presence update failed");
                            false
                        });
                    if broadcast {
                        GATEWAY.typing_broadcasts.increment(1);
                        self.shared
                            .deps
                            .bus
                            .publish(BusEvent::Typing {
                                channel_id,
                                user_id: self.user,
                            })
                            .await;
                    }
                } else {
                    self.reply(&channel_error(
                        ErrorCode::Forbidden,
                        "subscribe to the channel before typing in it",
                        channel_id,
                    ));
                }
                Ok(())
            }
            ClientFrame::PresenceSubscribe { .. } if !self.intents.contains(Intent::Presence) => {
                self.reply(&ServerFrame::error(
                    ErrorCode::Forbidden,
                    "presence_subscribe needs the presence intent",
                ));
                Ok(())
            }
            ClientFrame::PresenceSubscribe { user_ids } => {
                Box::pin(self.on_presence_subscribe(user_ids)).await;
                Ok(())
            }
            ClientFrame::Activity { state } => {
                self.on_activity(state).await;
                Ok(())
            }
        }
    }

    /// Unregisters everything and closes the socket.
    async fn finish(&mut self, end: End) {
        let (code, close_code) = match &end {
            End::Close(code) => (Some(*code), code.code()),
            End::Standard(code) => (None, u16::from(*code)),
            End::Gone => (None, 1006),
        };
        GATEWAY.closed(code);
        // The connection's one line in the request log (`chorus::request_log` for REST).
        tracing::info!(
            target: "chorus::request_log",
            kind = "websocket",
            conn = self.id,
            user_id = %self.user,
            client = %self.client,
            close_code,
            duration_ms = self.shared.now_ms().saturating_sub(self.opened_ms),
            subscriptions = self.subscriptions.len(),
            "websocket connection closed"
        );
        // Refuse further pushes (acks still in flight, fan-out racing the unsubscribes below);
        // the code is only the outbox's, the client gets `end`.
        self.outbox.close(CloseCode::ServerRestart);
        for channel in self.subscriptions.keys() {
            self.shared.hub.unsubscribe(*channel, self.id);
        }
        self.shared.connections.write().remove(&self.id);
        self.shared.user_watch.remove(self.user, self.id);
        self.unfollow_all();
        match self
            .shared
            .deps
            .presence
            .disconnected(self.user, self.presence_id(), chrono::Utc::now())
            .await
        {
            Ok(transition) => self.report_presence(transition).await,
            Err(err) => tracing::warn!(error = %err, "presence update failed"),
        }
        if let Some(session_id) = self.session_id {
            let (sessions, holder) = (&self.shared.deps.sessions, self.holder());
            let done = match end {
                End::Close(CloseCode::AuthenticationFailed) => {
                    sessions.forget(session_id, holder).await
                }
                _ => {
                    sessions
                        .release(session_id, holder, chrono::Utc::now())
                        .await
                }
            };
            if let Err(err) = done {
                // A shared store lets the session lapse with its hold lease instead.
                tracing::warn!(error = %err, "session release failed");
            }
        }
        close(&mut self.ws, end).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The connection's state is most of its task's future, which tokio allocates in a cell
    /// rounded up to 128 bytes (x86_64): 512 bytes of `Connection` make a future of 632 and a
    /// 768-byte cell (the cell adds 104 bytes). Fields that take the future past 664 cost every
    /// idle connection 128 bytes more (mimalloc: 128 or 256) — box them with the occasional
    /// state instead, or account for them in docs/BENCHMARKS.md.
    #[test]
    fn the_connection_state_stays_within_its_cell() {
        assert!(
            std::mem::size_of::<Connection>() <= 536,
            "Connection is {} bytes",
            std::mem::size_of::<Connection>()
        );
        assert!(std::mem::size_of::<End>() <= 8);
        assert!(std::mem::size_of::<FrameLimiter>() <= 40);
    }

    #[test]
    fn a_peer_that_vanished_is_gone_and_bad_framing_is_a_protocol_error() {
        use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
        let code = |err: WsError| match read_failed(&err) {
            End::Standard(code) => Some(u16::from(code)),
            End::Gone => None,
            End::Close(code) => panic!("closed with {code:?}"),
        };
        assert_eq!(
            code(WsError::Protocol(
                ProtocolError::ResetWithoutClosingHandshake
            )),
            None
        );
        assert_eq!(code(WsError::ConnectionClosed), None);
        assert_eq!(
            code(WsError::Io(std::io::ErrorKind::ConnectionReset.into())),
            None
        );
        assert_eq!(
            code(WsError::Protocol(ProtocolError::UnmaskedFrameFromClient)),
            Some(1002)
        );
        assert_eq!(
            code(WsError::Capacity(CapacityError::MessageTooLong {
                size: 2,
                max_size: 1
            })),
            Some(1009)
        );
    }

    #[test]
    fn standard_closes_say_why() {
        assert_eq!(standard_reason(WsCloseCode::Size), "frame too large");
        assert_eq!(standard_reason(WsCloseCode::Protocol), "protocol error");
    }
}
