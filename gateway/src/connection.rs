//! One client connection: handshake, authentication, then the frame loop.
//!
//! The task owns the socket. It reads client frames, writes what its outbox holds, and closes the
//! connection on the heartbeat deadline or when asked (slow consumer, shutdown). Live channel
//! events are filtered against `last_seq` per channel when written, which makes replay-then-live
//! hand-over exact: an event already replayed is skipped, and a gap (an event lost between the bus
//! and this gateway) is filled from the channel's replay buffer before going on.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use chorus_cluster::{BusEvent, PublishRequest, Replay, RouteError};
use chorus_core::auth::{AuthError, Principal};
use chorus_core::bots::{Scope, Scopes};
use chorus_core::mentions::parse_mentions;
use chorus_core::model::ChannelAccess;
use chorus_protocol::limits::{MAX_FRAME_BYTES, MAX_MESSAGE_CHARS, MAX_NONCE_BYTES};
use chorus_protocol::{
    ChannelPosition, ClientFrame, CloseCode, ErrorCode, Intent, Intents, PROTOCOL_VERSION,
    ServerFrame, UserInfo,
};
use futures_util::{FutureExt, SinkExt, StreamExt};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use uuid::Uuid;

use crate::Shared;
use crate::flood::Refusals;
use crate::hub::ConnId;
use crate::metrics::{GATEWAY, Out};
use crate::outbox::{Outbox, Outgoing, Recheck};
use crate::sessions::{Holder, SessionError};
use crate::stream::Stream;

mod badges;
mod bot;
mod presence;

pub(crate) use bot::send_limiter;

type Socket = WebSocketStream<Stream>;

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
    /// Close with a standard code (1009 message too big, 1002 protocol error).
    Standard(WsCloseCode, &'static str),
    /// The peer went away or closed; nothing more to say.
    Gone,
}

/// A channel this connection is subscribed to.
struct Subscription {
    /// The newest sequence number delivered (or replayed) to the client.
    last_seq: u64,
    /// Whether the user may post, once checked.
    can_post: Option<bool>,
}

fn text(frame: &ServerFrame) -> Utf8Bytes {
    Utf8Bytes::from(frame.to_json())
}

fn ws_config(shared: &Shared) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(shared.config.read_buffer_bytes)
        .write_buffer_size(shared.config.write_buffer_bytes)
        .max_write_buffer_size(shared.config.write_buffer_bytes + 2 * MAX_FRAME_BYTES)
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES))
}

/// Runs one connection to its end.
///
/// Each phase that ends — handshake and authentication, opening the session, closing — is a
/// boxed future of its own: this function's future is the connection task's memory for its whole
/// life, so it keeps only the `Connection` and the state of its main loop.
pub(crate) async fn run(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let accepted = Instant::now();
    let Some((mut connection, opening)) = Box::pin(open(stream, peer, shared)).await else {
        GATEWAY.handshakes_failed.increment(1);
        return;
    };
    connection.opened = accepted;
    let end = match Box::pin(connection.start(opening)).await {
        Ok(()) => {
            GATEWAY
                .handshake_seconds
                .record(accepted.elapsed().as_secs_f64());
            connection.serve().await
        }
        Err(end) => end,
    };
    Box::pin(connection.finish(end)).await;
}

/// The WebSocket handshake, `hello`, and authentication. `None` when the connection ended.
async fn open(
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
enum Opening {
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
    fn intents(&self) -> Intents {
        match self {
            Opening::Identify { intents } | Opening::Resume { intents, .. } => *intents,
        }
    }
}

/// Waits for `identify` or `resume` and checks its token.
async fn authenticate(ws: &mut Socket, shared: &Shared) -> Result<(Opening, Principal), End> {
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
async fn close(ws: &mut Socket, end: End) {
    let frame = match end {
        End::Gone => return,
        End::Close(code) => CloseFrame {
            code: WsCloseCode::from(code.code()),
            reason: code.reason().into(),
        },
        End::Standard(code, reason) => CloseFrame {
            code,
            reason: reason.into(),
        },
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), ws.close(Some(frame))).await;
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
    subscriptions: HashMap<Uuid, Subscription>,
    limiter: DefaultDirectRateLimiter,
    /// Frames refused by the rate limiter lately; too many in one window closes the connection
    /// (4004, `flood.rs`).
    refusals: Refusals,
    in_flight: Arc<AtomicUsize>,
    /// When the last write to the client started (see `GatewayConfig::flush_interval`).
    last_write: Option<tokio::time::Instant>,
    /// This connection in the presence store (unique across the deployment).
    presence_id: Uuid,
    /// When the presence lease was last renewed.
    lease_renewed: Instant,
    /// Channels this connection said it was typing in, and when: only those need a "stopped
    /// typing" when a message is sent, which spares the presence store a call per message.
    typing_in: Vec<(Uuid, Instant)>,
    /// The client's address (behind a trusted proxy, the one it forwarded) and when the socket
    /// was accepted: the connection's log line.
    client: IpAddr,
    opened: Instant,
    /// Users whose presence this connection follows (`presence_subscribe`), at most
    /// `MAX_PRESENCE_SUBSCRIPTIONS`.
    following: Vec<Uuid>,
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
            subscriptions: HashMap::new(),
            limiter: RateLimiter::direct(quota),
            refusals: Refusals::default(),
            in_flight: Arc::new(AtomicUsize::new(0)),
            last_write: None,
            presence_id: Uuid::new_v4(),
            lease_renewed: Instant::now(),
            typing_in: Vec::new(),
            client,
            opened: Instant::now(),
            following: Vec::new(),
            intents: Intents::ALL,
            bot_scopes: principal.bot_scopes,
            shared,
        }
    }

    /// Counts this connection as online (or renews its lease), telling followers when the user
    /// comes online.
    async fn renew_presence(&mut self) {
        self.lease_renewed = Instant::now();
        let presence = &self.shared.deps.presence;
        match presence
            .connected(self.user, self.presence_id, chrono::Utc::now())
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
            let step = tokio::select! {
                biased;
                work = outbox.drain() => match work {
                    Ok(items) => Box::pin(self.write_outbox(items)).await,
                    Err(code) => Err(End::Close(code)),
                },
                message = self.ws.next() => Box::pin(self.on_message(message)).await,
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    async fn open_session(&mut self, opening: Opening) -> Result<(), End> {
        let now = chrono::Utc::now();
        match opening {
            Opening::Identify { .. } => {
                let session_id = self
                    .shared
                    .deps
                    .sessions
                    .create(self.user, self.holder(), now)
                    .await
                    .map_err(session_end)?;
                self.session_id = Some(session_id);
                let user = self.load_user().await?;
                let mut channels = self
                    .shared
                    .deps
                    .store
                    .channel_ids_of(self.user)
                    .await
                    .map_err(|err| internal("channel list", err))?;
                channels.truncate(self.shared.config.max_subscriptions);
                if self.lacks(Scope::ChannelsRead) {
                    channels.clear();
                }
                // Subscribe before reading positions so no event falls between the two.
                for channel in &channels {
                    self.shared
                        .hub
                        .subscribe(*channel, self.id, self.outbox.clone());
                }
                let seqs = self
                    .shared
                    .deps
                    .router
                    .last_seqs(&channels)
                    .await
                    .map_err(|err| internal("last seqs", err))?;
                let mut positions = Vec::with_capacity(channels.len());
                for (channel, last_seq) in channels.into_iter().zip(seqs) {
                    self.subscriptions.insert(
                        channel,
                        Subscription {
                            last_seq,
                            can_post: None,
                        },
                    );
                    positions.push(ChannelPosition {
                        channel_id: channel,
                        last_seq,
                    });
                }
                let unreads = self.badges(&positions).await;
                self.reply(&ServerFrame::Ready {
                    session_id,
                    user,
                    channels: positions,
                    unreads,
                });
            }
            Opening::Resume {
                session_id,
                channels,
                ..
            } => {
                self.shared
                    .deps
                    .sessions
                    .resume(session_id, self.user, self.holder(), now)
                    .await
                    .map_err(session_end)?;
                self.session_id = Some(session_id);
                let mut replayed = 0;
                for position in channels
                    .into_iter()
                    .take(self.shared.config.max_subscriptions)
                {
                    // A channel the user may no longer read is answered with its error frame;
                    // the others resume.
                    match self
                        .subscribe(position.channel_id, Some(position.last_seq))
                        .await
                    {
                        Ok(count) => replayed += count,
                        Err(error) => self.reply(&error),
                    }
                }
                self.reply(&ServerFrame::Resumed {
                    session_id,
                    replayed,
                });
            }
        }
        // From here on the user's notifications and read-state changes reach this connection.
        self.shared.user_watch.add(self.user, self.id, &self.outbox);
        Ok(())
    }

    async fn load_user(&self) -> Result<UserInfo, End> {
        match self.shared.deps.store.user(self.user).await {
            Ok(Some(user)) => Ok(UserInfo {
                id: user.id,
                display_name: user.display_name,
            }),
            Ok(None) => Err(End::Close(CloseCode::AuthenticationFailed)),
            Err(err) => Err(internal("user lookup", err)),
        }
    }

    async fn on_message(&mut self, message: Option<Result<Message, WsError>>) -> Result<(), End> {
        let message = match message {
            None => return Err(End::Gone),
            Some(Ok(message)) => message,
            Some(Err(WsError::Capacity(_))) => {
                return Err(End::Standard(WsCloseCode::Size, "frame too large"));
            }
            Some(Err(WsError::Protocol(_))) => {
                return Err(End::Standard(WsCloseCode::Protocol, "protocol error"));
            }
            Some(Err(_)) => return Err(End::Gone),
        };
        self.outbox.touch(self.shared.now_ms());
        // Renew a third of the way through the lease, so a live connection never lapses.
        if self.lease_renewed.elapsed() > LEASE_RENEWAL {
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
                .refusals
                .refuse(Instant::now(), self.shared.config.frame_burst)
            {
                return Err(End::Close(CloseCode::RateLimited));
            }
            GATEWAY.frames_rate_limited.increment(1);
            // The limiter's own answer: how long until it admits a frame again.
            let wait = not_until.wait_time_from(DefaultClock::default().now());
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
                    let now = Instant::now();
                    self.typing_in.retain(|(c, at)| {
                        *c != channel_id && now.duration_since(*at) < TYPING_MEMORY
                    });
                    self.typing_in.push((channel_id, now));
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

    /// Checks access, subscribes, and replays what came after `since_seq`. Returns the number of
    /// replayed events; the error is the frame to answer with.
    async fn subscribe(
        &mut self,
        channel: Uuid,
        since_seq: Option<u64>,
    ) -> Result<u64, ServerFrame> {
        if self.lacks(Scope::ChannelsRead) {
            return Err(Self::missing_scope(Scope::ChannelsRead, channel, None));
        }
        if !self.subscriptions.contains_key(&channel)
            && self.subscriptions.len() >= self.shared.config.max_subscriptions
        {
            return Err(channel_error(
                ErrorCode::InvalidFrame,
                "subscription limit reached",
                channel,
            ));
        }
        let access = self.access(channel).await?;
        if !access.can_read() {
            return Err(access_error(access, channel));
        }
        self.shared
            .hub
            .subscribe(channel, self.id, self.outbox.clone());
        let replayed = match since_seq {
            None => {
                let last_seq = self.last_seq(channel).await?;
                self.subscriptions.insert(
                    channel,
                    Subscription {
                        last_seq,
                        can_post: Some(access.can_post()),
                    },
                );
                (0, last_seq)
            }
            Some(since) => {
                self.subscriptions.insert(
                    channel,
                    Subscription {
                        last_seq: since,
                        can_post: Some(access.can_post()),
                    },
                );
                self.queue_replay(channel, since)
                    .await
                    .map_err(|err| route_error(err, None, Some(channel)))?
            }
        };
        self.reply(&ServerFrame::Subscribed {
            channel_id: channel,
            last_seq: replayed.1,
        });
        Ok(replayed.0)
    }

    /// Queues the events of `channel` after `since` from its replay buffer; returns how many, and
    /// the position they bring the client to.
    ///
    /// They are queued as events, not as finished frames, and the subscription's `last_seq` stays
    /// at `since` until the writer sends them: a live event newer than the replay may already sit
    /// in the outbox ahead of them, and the writer's sequence check then fills the gap before it
    /// instead of sending it first.
    async fn queue_replay(&mut self, channel: Uuid, since: u64) -> Result<(u64, u64), RouteError> {
        match self.shared.deps.router.replay(channel, since).await? {
            Replay::Events(events) => {
                let (mut count, mut newest) = (0, since);
                for event in events.into_iter().filter(|event| event.seq > since) {
                    count += 1;
                    newest = event.seq;
                    self.outbox.push(Outgoing::Event {
                        channel_id: channel,
                        seq: event.seq,
                        kind: event.kind,
                        frame: text(&ServerFrame::Message((*event).clone())),
                    });
                }
                Ok((count, newest))
            }
            Replay::TooOld { last_seq } => {
                if let Some(subscription) = self.subscriptions.get_mut(&channel) {
                    subscription.last_seq = last_seq;
                }
                self.reply(&ServerFrame::ResyncRequired {
                    channel_id: channel,
                    after_seq: since,
                    last_seq,
                });
                Ok((0, last_seq))
            }
        }
    }

    async fn last_seq(&self, channel: Uuid) -> Result<u64, ServerFrame> {
        self.shared
            .deps
            .router
            .last_seqs(&[channel])
            .await
            .map(|seqs| seqs.first().copied().unwrap_or(0))
            .map_err(|err| route_error(err, None, Some(channel)))
    }

    async fn access(&self, channel: Uuid) -> Result<ChannelAccess, ServerFrame> {
        let is_bot = self.is_bot();
        self.shared
            .deps
            .store
            .channel_access(channel, self.user)
            .await
            .map(|access| {
                if is_bot {
                    bot::bot_access(access)
                } else {
                    access
                }
            })
            .map_err(|err| {
                tracing::error!(error = %err, "channel access check failed");
                channel_error(ErrorCode::Internal, "internal error", channel)
            })
    }

    /// The frames that bring the client from its `last_seq` to the channel's newest event, for the
    /// writer to send at once (it advances `last_seq` past them).
    async fn catch_up(&mut self, channel: Uuid) -> Result<Vec<Utf8Bytes>, RouteError> {
        let Some(after) = self.subscriptions.get(&channel).map(|s| s.last_seq) else {
            return Ok(Vec::new());
        };
        let replay = self.shared.deps.router.replay(channel, after).await?;
        let Some(subscription) = self.subscriptions.get_mut(&channel) else {
            return Ok(Vec::new());
        };
        Ok(match replay {
            Replay::Events(events) => {
                let mut frames = Vec::with_capacity(events.len());
                for event in events {
                    if event.seq > subscription.last_seq {
                        subscription.last_seq = event.seq;
                        if self.intents.wants_event(event.kind) {
                            frames.push(text(&ServerFrame::Message((*event).clone())));
                        }
                    }
                }
                frames
            }
            Replay::TooOld { last_seq } => {
                subscription.last_seq = last_seq;
                vec![text(&ServerFrame::ResyncRequired {
                    channel_id: channel,
                    after_seq: after,
                    last_seq,
                })]
            }
        })
    }

    async fn send(
        &mut self,
        channel: Uuid,
        nonce: String,
        text: String,
        parent_seq: Option<u64>,
    ) -> Result<(), ServerFrame> {
        let nonce_error = |code, message: &str| ServerFrame::Error {
            code,
            message: message.into(),
            nonce: Some(nonce.clone()),
            channel_id: Some(channel),
            retry_after_ms: None,
        };
        if nonce.is_empty() || nonce.len() > MAX_NONCE_BYTES {
            return Err(nonce_error(
                ErrorCode::InvalidFrame,
                "nonce must be 1 to 64 bytes",
            ));
        }
        if text.trim().is_empty() {
            return Err(nonce_error(
                ErrorCode::InvalidFrame,
                "text must not be empty",
            ));
        }
        if text.chars().count() > MAX_MESSAGE_CHARS {
            return Err(nonce_error(
                ErrorCode::TextTooLong,
                "text is longer than 4000 characters",
            ));
        }
        if self.lacks(Scope::MessagesWrite) {
            return Err(Self::missing_scope(
                Scope::MessagesWrite,
                channel,
                Some(nonce),
            ));
        }
        if let Some(refusal) = self.bot_send_refusal(channel, &nonce) {
            return Err(refusal);
        }
        if self.in_flight.load(Ordering::Relaxed) >= self.shared.config.max_in_flight_sends {
            return Err(nonce_error(
                ErrorCode::TooManyInFlight,
                "too many sends waiting for acknowledgement",
            ));
        }
        // Only a "may post" is trusted from the cache: a refusal is re-read each time, so a
        // channel unarchived (or a member re-added) a moment ago takes sends at once. Refused
        // sends are rare and rate-limited; whatever the cache says, an archived channel's
        // sequencer refuses its events (`RouteError::Archived`).
        let cached = self
            .subscriptions
            .get(&channel)
            .and_then(|s| s.can_post)
            .filter(|&can_post| can_post);
        let can_post = match cached {
            Some(can_post) => can_post,
            None => {
                let access = self.access(channel).await?;
                if !access.can_read() {
                    let mut error = access_error(access, channel);
                    if let ServerFrame::Error { nonce: n, .. } = &mut error {
                        *n = Some(nonce);
                    }
                    return Err(error);
                }
                if let Some(subscription) = self.subscriptions.get_mut(&channel) {
                    subscription.can_post = Some(access.can_post());
                }
                access.can_post()
            }
        };
        if !can_post {
            return Err(nonce_error(
                ErrorCode::Forbidden,
                "you may not post in this channel",
            ));
        }
        // Last of the checks, so a send refused for another reason uses none of the quota.
        if let Err(exceeded) = self.shared.deps.quotas.check_send(channel).await {
            return Err(ServerFrame::Error {
                code: ErrorCode::WorkspaceMessageLimit,
                message: exceeded.message(),
                nonce: Some(nonce),
                channel_id: Some(channel),
                retry_after_ms: Some(
                    u64::try_from(exceeded.retry_after.as_millis())
                        .unwrap_or(u64::MAX)
                        .max(1),
                ),
            });
        }
        if let Some(at) = self.typing_in.iter().position(|(c, _)| *c == channel) {
            self.typing_in.swap_remove(at);
            if let Err(err) = self
                .shared
                .deps
                .presence
                .stopped_typing(channel, self.user)
                .await
            {
                tracing::warn!(error = %err, "presence update failed");
            }
        }
        let request = PublishRequest {
            parent_seq,
            mentions: parse_mentions(&text),
            ..PublishRequest::message(channel, self.user, nonce.clone(), text)
        };
        let ticket = self
            .shared
            .deps
            .router
            .submit(request)
            .await
            .map_err(|err| route_error(err, Some(nonce.clone()), Some(channel)))?;
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let outbox = self.outbox.clone();
        let in_flight = self.in_flight.clone();
        let submitted = Instant::now();
        tokio::spawn(async move {
            let outcome = ticket.await;
            GATEWAY.acked(outcome.is_ok(), submitted.elapsed());
            let frame = match outcome {
                Ok(ack) => ServerFrame::Ack {
                    nonce,
                    channel_id: channel,
                    message_id: ack.message_id,
                    seq: ack.seq,
                    created_at: ack.created_at,
                    duplicate: ack.duplicate,
                },
                Err(err) => route_error(err, Some(nonce), Some(channel)),
            };
            outbox.push(Outgoing::Frame(Utf8Bytes::from(frame.to_json())));
            in_flight.fetch_sub(1, Ordering::Relaxed);
        });
        Ok(())
    }

    /// Writes everything queued, skipping events already delivered and filling gaps.
    async fn write_outbox(&mut self, mut items: VecDeque<Outgoing>) -> Result<(), End> {
        let flush_interval = self.shared.config.flush_interval;
        if let Some(ready_at) = self.last_write.map(|at| at + flush_interval)
            && tokio::time::Instant::now() < ready_at
        {
            // Unless the connection must close or its outbox fills up meanwhile.
            tokio::select! {
                biased;
                _ = self.outbox.pressing() => {}
                _ = tokio::time::sleep_until(ready_at) => {}
            }
            // What arrived while waiting leaves in the same write.
            match self.outbox.drain().now_or_never() {
                Some(Ok(more)) => items.extend(more),
                Some(Err(code)) => return Err(End::Close(code)),
                None => {}
            }
        }
        GATEWAY.outbox_drain_items.record(items.len() as f64);
        let mut frames = Vec::with_capacity(items.len());
        // Frames by kind, added to the counters once per write.
        let (mut events, mut typing, mut replayed) = (0u64, 0u64, 0u64);
        for item in items {
            match item {
                Outgoing::Frame(frame) => frames.push(frame),
                Outgoing::Typing { user_id, frame } => {
                    if user_id != self.user && self.intents.contains(Intent::Typing) {
                        typing += 1;
                        frames.push(frame);
                    }
                }
                Outgoing::Recheck(recheck) => frames.extend(self.recheck(recheck).await?),
                Outgoing::CatchUp { channel_id } => match self.catch_up(channel_id).await {
                    Ok(missing) => {
                        replayed += missing.len() as u64;
                        frames.extend(missing);
                    }
                    Err(err) => return Err(internal("catch up", err)),
                },
                Outgoing::Event {
                    channel_id,
                    seq,
                    kind,
                    frame,
                } => {
                    let Some(subscription) = self.subscriptions.get_mut(&channel_id) else {
                        continue;
                    };
                    if seq <= subscription.last_seq {
                        continue;
                    }
                    if seq == subscription.last_seq + 1 {
                        subscription.last_seq = seq;
                        // Outside the intents: delivered as far as the position goes, not sent.
                        if self.intents.wants_event(kind) {
                            events += 1;
                            frames.push(frame);
                        }
                        continue;
                    }
                    // Events were lost between the bus and this gateway: catch up from the
                    // channel's buffer (which includes this one) instead of skipping ahead.
                    tracing::warn!(%channel_id, have = subscription.last_seq, got = seq, "gap in channel events; catching up");
                    match self.catch_up(channel_id).await {
                        Ok(missing) => {
                            replayed += missing.len() as u64;
                            frames.extend(missing);
                        }
                        Err(err) => return Err(internal("catch up", err)),
                    }
                }
            }
        }
        if frames.is_empty() {
            return Ok(());
        }
        // The rest are replies to the client's own frames (acks, errors, subscribe replays).
        GATEWAY.frames_out(Out::Event, events);
        GATEWAY.frames_out(Out::Typing, typing);
        GATEWAY.frames_out(Out::Replay, replayed);
        GATEWAY.frames_out(Out::Reply, frames.len() as u64 - events - typing - replayed);
        self.last_write = Some(tokio::time::Instant::now());
        let outbox = self.outbox.clone();
        let write_timeout = self.shared.config.write_timeout;
        let ws = &mut self.ws;
        let write = async move {
            for frame in frames {
                ws.feed(Message::Text(frame)).await?;
            }
            ws.flush().await
        };
        tokio::select! {
            written = tokio::time::timeout(write_timeout, write) => match written {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) => Err(End::Gone),
                Err(_) => Err(End::Close(CloseCode::SlowConsumer)),
            },
            code = outbox.killed() => Err(End::Close(code)),
        }
    }

    /// Re-reads the user's rights after an access notice. Ends the connection (4100) when its
    /// login session is gone; drops subscriptions the user may no longer read, telling the client
    /// with a `forbidden` error and `unsubscribed`; refreshes whether the user may post.
    async fn recheck(&mut self, recheck: Recheck) -> Result<Vec<Utf8Bytes>, End> {
        if matches!(recheck, Recheck::Session | Recheck::Everything) {
            let session = self
                .shared
                .deps
                .store
                .session(self.auth_session)
                .await
                .map_err(|err| internal("session check", err))?;
            if !session.is_some_and(|s| s.is_active(chrono::Utc::now())) {
                return Err(End::Close(CloseCode::AuthenticationFailed));
            }
        }
        let channels: Vec<Uuid> = match recheck {
            Recheck::Session => return Ok(Vec::new()),
            Recheck::Channel(channel) => vec![channel],
            Recheck::AllChannels | Recheck::Everything => {
                self.subscriptions.keys().copied().collect()
            }
        };
        let mut frames = Vec::new();
        for channel in channels {
            if !self.subscriptions.contains_key(&channel) {
                if matches!(recheck, Recheck::Channel(_)) {
                    self.follow_membership(channel).await;
                }
                continue;
            }
            let access = self
                .shared
                .deps
                .store
                .channel_access(channel, self.user)
                .await
                .map_err(|err| internal("access check", err))?;
            if access.can_read() {
                if let Some(subscription) = self.subscriptions.get_mut(&channel) {
                    subscription.can_post = Some(access.can_post());
                }
                continue;
            }
            self.shared.hub.unsubscribe(channel, self.id);
            self.subscriptions.remove(&channel);
            frames.push(text(&channel_error(
                ErrorCode::Forbidden,
                "you no longer have access to this channel",
                channel,
            )));
            frames.push(text(&ServerFrame::Unsubscribed {
                channel_id: channel,
            }));
        }
        Ok(frames)
    }

    /// Unregisters everything and closes the socket.
    async fn finish(&mut self, end: End) {
        let (code, close_code) = match &end {
            End::Close(code) => (Some(*code), code.code()),
            End::Standard(code, _) => (None, u16::from(*code)),
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
            duration_ms = self.opened.elapsed().as_millis() as u64,
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
            .disconnected(self.user, self.presence_id, chrono::Utc::now())
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

/// How a session the connection could not open ends it: an unknown session is 4005 (identify
/// afresh), a full store 4003 (try another gateway), an unreachable store 4000 (back off and
/// retry: the session is likely still there once the store is back).
fn session_end(err: SessionError) -> End {
    match err {
        SessionError::Unknown => End::Close(CloseCode::SessionInvalid),
        SessionError::Full => End::Close(CloseCode::ServerRestart),
        SessionError::Unavailable(_) => internal("session store", err),
    }
}

fn internal(what: &str, err: impl std::fmt::Display) -> End {
    tracing::error!(error = %err, "{what} failed");
    End::Close(CloseCode::InternalError)
}

fn channel_error(code: ErrorCode, message: &str, channel: Uuid) -> ServerFrame {
    ServerFrame::Error {
        code,
        message: message.into(),
        nonce: None,
        channel_id: Some(channel),
        retry_after_ms: None,
    }
}

fn access_error(access: ChannelAccess, channel: Uuid) -> ServerFrame {
    match access {
        ChannelAccess::Invisible => channel_error(ErrorCode::NotFound, "no such channel", channel),
        _ => channel_error(
            ErrorCode::Forbidden,
            "you are not a member of this channel",
            channel,
        ),
    }
}

fn route_error(err: RouteError, nonce: Option<String>, channel: Option<Uuid>) -> ServerFrame {
    let (code, message) = match &err {
        RouteError::Overloaded => (ErrorCode::Unavailable, "channel service overloaded; retry"),
        RouteError::Unavailable(_) | RouteError::NotLeader { .. } => {
            (ErrorCode::Unavailable, "channel service unavailable; retry")
        }
        RouteError::Archived => (ErrorCode::Forbidden, "the channel is archived"),
        RouteError::Rejected(_) => (
            ErrorCode::NotFound,
            "parent_seq names no message of this channel",
        ),
        RouteError::Internal(_) => {
            tracing::error!(error = %err, "channel service error");
            (
                ErrorCode::Internal,
                "internal error; retry with the same nonce",
            )
        }
    };
    // An overloaded shard says when a retry is likely to be taken.
    let retry_after_ms = matches!(err, RouteError::Overloaded)
        .then(|| u64::try_from(chorus_cluster::OVERLOADED_RETRY_AFTER.as_millis()).unwrap_or(250));
    ServerFrame::Error {
        code,
        message: message.into(),
        nonce,
        channel_id: channel,
        retry_after_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(end: End) -> Option<u16> {
        match end {
            End::Close(code) => Some(code.code()),
            _ => None,
        }
    }

    #[test]
    fn a_session_the_store_refuses_or_cannot_reach_ends_with_its_close_code() {
        assert_eq!(code(session_end(SessionError::Unknown)), Some(4005));
        assert_eq!(code(session_end(SessionError::Full)), Some(4003));
        assert_eq!(
            code(session_end(SessionError::Unavailable("timed out".into()))),
            Some(4000),
            "retry later: the session is likely still there"
        );
    }

    #[test]
    fn an_overloaded_shard_says_when_to_retry_and_other_refusals_do_not() {
        let retry_after = |err| match route_error(err, Some("n-1".into()), None) {
            ServerFrame::Error {
                code,
                retry_after_ms,
                nonce,
                ..
            } => {
                assert_eq!(code, ErrorCode::Unavailable);
                assert_eq!(nonce.as_deref(), Some("n-1"), "the refused send is named");
                retry_after_ms
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(retry_after(RouteError::Overloaded), Some(250));
        assert_eq!(retry_after(RouteError::Unavailable("down".into())), None);
    }
}
