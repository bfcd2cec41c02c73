//! The WebSocket gateway: holds client connections and speaks protocol v1 (`docs/PROTOCOL.md`).
//!
//! Data enters as client frames on a socket and leaves in two directions: sends go to the channel
//! service through a `ChannelRouter` (the gateway never touches channel internals or the message
//! store), and committed events come back from the `FanoutBus` into the [`hub`], which pushes them
//! to each subscriber's bounded [`outbox`]. Each connection is one task (`connection.rs`) that reads
//! frames, writes its outbox, and watches its heartbeat deadline.

mod access_watch;
mod config;
mod connection;
mod flood;
mod heartbeat;
mod hub;
mod metrics;
mod outbox;
mod presence_sweep;
mod presence_watch;
pub mod sessions;
mod stream;
mod user_watch;

/// For benches (`benches/benches/hub_fanout.rs`): the hub and outboxes, otherwise private. Not an
/// API: nothing outside the workspace's benchmarks should use it.
#[doc(hidden)]
pub mod internals {
    pub use crate::hub::Hub;
    pub use crate::outbox::{Outbox, Outgoing};
}

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chorus_cluster::access::AccessNotifier;
use chorus_cluster::{ChannelRouter, FanoutBus};
use chorus_core::MetadataStore;
use chorus_core::auth::Authenticator;
use chorus_presence::PresenceStore;
use chorus_protocol::CloseCode;
use parking_lot::RwLock;
use tokio::net::TcpListener;
use uuid::Uuid;

pub use config::GatewayConfig;
pub use sessions::{
    Holder, MemorySessions, RedisSessions, SessionError, SessionLimits, SessionStore,
};

use crate::hub::{ConnId, Hub};
use crate::outbox::Outbox;
use crate::presence_watch::PresenceWatch;
use crate::user_watch::UserWatch;

/// What the gateway talks to.
#[derive(Clone)]
pub struct GatewayDeps {
    pub auth: Authenticator,
    pub store: Arc<dyn MetadataStore>,
    pub router: Arc<dyn ChannelRouter>,
    pub bus: Arc<dyn FanoutBus>,
    pub presence: Arc<dyn PresenceStore>,
    /// Resumable sessions: in process, or shared with the other gateways of a deployment so a
    /// client can resume on any of them.
    pub sessions: Arc<dyn SessionStore>,
    /// Notices that someone's rights changed (logout, removal, archiving, disabled account).
    pub access: Arc<dyn AccessNotifier>,
    /// Unread and mention counts for `ready`; `None` leaves them out.
    pub badges: Option<Arc<chorus_notify::Badges>>,
    /// Each workspace's messages per minute (its plan), shared with this process's REST API so
    /// both count against one quota (`chorus_core::limits::quota`).
    pub quotas: Arc<chorus_core::limits::quota::MessageQuotas>,
    /// Serves WebSocket over TLS (`wss://`) with this certificate; `None` serves plain `ws://`.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// An accepted connection, counted in `Shared::open` and the open-connections gauge for as long
/// as its task holds this: to its end, or until the runtime drops the task at shutdown.
struct OpenSlot(Arc<Shared>);

impl OpenSlot {
    fn take(shared: &Arc<Shared>) -> Self {
        shared.open.fetch_add(1, Ordering::Relaxed);
        metrics::GATEWAY.connections_open.increment(1.0);
        OpenSlot(shared.clone())
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.0
    }
}

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
        metrics::GATEWAY.connections_open.decrement(1.0);
    }
}

/// State shared by every connection of a gateway.
struct Shared {
    config: GatewayConfig,
    deps: GatewayDeps,
    hub: Arc<Hub>,
    /// Which connections follow whose presence.
    presence_watch: Arc<PresenceWatch>,
    /// Which connections belong to whom, for notifications and read state.
    user_watch: Arc<UserWatch>,
    /// This gateway process among all that share the session store (see [`Holder`]).
    instance: u32,
    /// Authenticated connections, so shutdown (and later, revocation) can reach each of them.
    connections: RwLock<HashMap<ConnId, (Uuid, Arc<Outbox>)>>,
    next_conn: AtomicU64,
    /// Open sockets, authenticated or not.
    open: AtomicUsize,
    /// The origin of the gateway's millisecond clock (`now_ms`).
    started: Instant,
    /// Sends per bot token, over all its connections here (`connection/bot.rs`).
    bot_sends: governor::DefaultKeyedRateLimiter<Uuid>,
}

impl Shared {
    /// Milliseconds since the gateway started: the clock of heartbeat stamps, which fit in an
    /// atomic where an `Instant` would not.
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

/// What a socket beyond `max_connections` is told before it is closed: the upgrade is refused
/// with a status any WebSocket client reports, and a hint to come back later.
const FULL_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\n\
Content-Type: application/json\r\nContent-Length: 81\r\nConnection: close\r\n\r\n\
{\"error\":{\"code\":\"too_many_connections\",\"message\":\"this gateway is full; retry\"}}";

/// Answers a socket over the connection cap, briefly (it may not read), and drops it.
async fn refuse(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let write = async {
        stream.write_all(FULL_RESPONSE).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

/// How long shutdown waits for clients to receive their close frames.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// Accepts connections on `listener` until `shutdown` resolves, then closes every connection with
/// 4003 ("reconnect elsewhere") and waits up to five seconds for them to finish.
pub async fn serve(
    listener: TcpListener,
    config: GatewayConfig,
    deps: GatewayDeps,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let hub = Arc::new(Hub::new(deps.bus.clone()));
    tokio::spawn(hub.clone().run(deps.bus.attach()));
    let presence_watch = Arc::new(PresenceWatch::default());
    let presence_feed = tokio::spawn(
        presence_watch
            .clone()
            .run(deps.presence.clone(), deps.presence.updates()),
    );
    let presence_sweeper = tokio::spawn(presence_sweep::run(deps.presence.clone()));
    let user_watch = Arc::new(UserWatch::default());
    let user_feed = tokio::spawn(user_watch.clone().run(deps.presence.user_frames()));
    let shared = Arc::new(Shared {
        instance: Holder::random_gateway(),
        config,
        deps,
        hub,
        presence_watch,
        user_watch,
        connections: RwLock::new(HashMap::new()),
        next_conn: AtomicU64::new(1),
        open: AtomicUsize::new(0),
        started: Instant::now(),
        bot_sends: connection::send_limiter(),
    });

    let watcher = tokio::spawn(access_watch::run(
        shared.deps.access.subscribe(),
        shared.clone(),
    ));
    let sweeper = tokio::spawn(heartbeat::run(shared.clone()));

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) if shared.open.load(Ordering::Relaxed) >= shared.config.max_connections => {
                    metrics::GATEWAY.connections_refused.increment(1);
                    // A TLS client could not read a plain-text 503; it sees the connection
                    // close before its handshake and retries like after any refusal.
                    if shared.deps.tls.is_none() {
                        tokio::spawn(refuse(stream));
                    }
                }
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    metrics::GATEWAY.connections_accepted.increment(1);
                    let task = connection::run(stream, peer, OpenSlot::take(&shared));
                    // The task's future is most of an idle connection's memory: say how big.
                    static TASK_SIZE: std::sync::Once = std::sync::Once::new();
                    TASK_SIZE.call_once(|| {
                        tracing::info!(bytes = std::mem::size_of_val(&task), "connection task size");
                    });
                    tokio::spawn(task);
                }
                Err(err) => {
                    // Out of file descriptors or similar: back off instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    drop(listener);
    watcher.abort();
    sweeper.abort();
    let outboxes: Vec<Arc<Outbox>> = shared
        .connections
        .read()
        .values()
        .map(|(_, outbox)| outbox.clone())
        .collect();
    tracing::info!(connections = outboxes.len(), "gateway draining");
    for outbox in outboxes {
        outbox.close(CloseCode::ServerRestart);
    }
    let deadline = tokio::time::Instant::now() + DRAIN_DEADLINE;
    while shared.open.load(Ordering::Relaxed) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    presence_sweeper.abort();
    presence_feed.abort();
    user_feed.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_full_response_declares_its_body_length() {
        let text = std::str::from_utf8(super::FULL_RESPONSE).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{text}"
        );
        assert!(serde_json::from_str::<serde_json::Value>(body).is_ok());
    }
}
