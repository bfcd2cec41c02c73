//! Assembles an embedded node: stores, channel service, bus, presence, API and gateway.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use axum::serve::ListenerExt;
use chorus_api::{ApiLimits, ApiState};
use chorus_channel_node::{ChannelNodeConfig, ChannelService, StateLimits};
use chorus_cluster::access::{AccessNotifier, LocalAccessNotifier, RedisAccessNotifier};
use chorus_cluster::rate_limit::{LocalRateLimits, RateLimitStore, RedisRateLimits};
use chorus_cluster::{ChannelRouter, FanoutBus, LocalBus, RedisBus};
use chorus_core::auth::Authenticator;
use chorus_core::client_addr::TrustedProxies;
use chorus_core::limits::quota::MessageQuotas;
use chorus_core::{
    InstrumentedMessageStore, MessageStore, MetadataStore, PostgresMessageStore,
    PostgresMetadataStore, RedbMessageStore, ScyllaMessageStore, SqliteMetadataStore,
};
use chorus_gateway::{GatewayDeps, MemorySessions, RedisSessions, SessionLimits, SessionStore};
use chorus_notify::{FocusRuntime, Notifier, NotifyingBus};
use chorus_presence::{MemoryPresence, PresenceStore, RedisPresence};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::NodeConfig;
use crate::ops::OpsServer;
use crate::ops::readiness::{ChannelServiceProbe, MessagesProbe, MetadataProbe, Readiness};

/// Events waiting for the gateway's fan-out task.
const BUS_QUEUE: usize = 16 * 1024;

/// A running embedded node.
pub struct Node {
    pub api_addr: SocketAddr,
    pub ws_addr: SocketAddr,
    /// The ops listener (`/metrics`, `/livez`, `/readyz`), when `ops_addr` is set.
    pub ops_addr: Option<SocketAddr>,
    ops: Option<OpsServer>,
    stop: watch::Sender<bool>,
    api: JoinHandle<std::io::Result<()>>,
    gateway: JoinHandle<std::io::Result<()>>,
    channels: ChannelService,
    /// The notifier's route to `channels` for automatic replies, emptied at shutdown.
    auto_replies: chorus_notify::AutoReplyRouter,
    /// Focus mode's runtime: ticked on the wall clock every `focus_tick_ms`, or by tests.
    focus: Arc<FocusRuntime>,
    focus_ticker: Option<JoinHandle<()>>,
    /// The retention job: ticked every `retention_tick_ms`, or by tests.
    retention: Arc<crate::retention::RetentionRuntime>,
    retention_ticker: Option<JoinHandle<()>>,
}

impl Node {
    /// Opens the data directory, starts every role and returns once all listen.
    pub async fn start(config: NodeConfig) -> anyhow::Result<Node> {
        // Before any role resolves its metric handles.
        crate::ops::metrics::install();
        // Bad TLS settings fail before any store is opened.
        client_tls(&config)?;
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
        let store = open_metadata(config.metadata_url.as_deref(), &config.data_dir)
            .await
            .context("cannot open the metadata store (metadata_url)")?;
        let (messages, embedded_history) =
            open_history(config.messages_url.as_deref(), &config.data_dir)
                .await
                .context("cannot open the message store (messages_url)")?;
        let bus = open_bus(config.bus_url.as_deref()).await?;
        let mut channel_config = ChannelNodeConfig::new(config.data_dir.join("channels"));
        channel_config.limits = StateLimits {
            replay_buffer: config.channels.replay_buffer,
            dedup_window: config.channels.dedup_window,
        };
        channel_config.snapshot_every = config.channels.snapshot_every;
        let presence = open_presence(config.presence_url.as_deref()).await?;
        // The channel service's leader path notifies (see chorus_notify); gateways and the API
        // use the plain bus.
        let notifier = Notifier::new(store.clone(), messages.clone(), presence.clone());
        let auto_replies = notifier.auto_replies();
        let channel_bus = Arc::new(NotifyingBus::new(bus.clone(), notifier));
        let channels = ChannelService::start(channel_config, messages.clone(), channel_bus)
            .await
            .context("cannot start the channel service")?;
        // Focus mode's automatic replies are messages: the notifier submits them here (until
        // `shutdown` clears the slot, which would otherwise keep the service alive).
        auto_replies.set(Arc::new(channels.clone()));

        let secret = match &config.jwt_secret {
            Some(secret) => secret.clone().into_bytes(),
            None => load_or_create_secret(&config.data_dir.join("jwt-secret"))?,
        };
        let auth = Authenticator::new(&secret, store.clone());

        let api_listener = listen(config.api_addr)
            .await
            .with_context(|| format!("cannot listen on {} (api_addr)", config.api_addr))?;
        let ws_listener = listen(config.ws_addr)
            .await
            .with_context(|| format!("cannot listen on {} (ws_addr)", config.ws_addr))?;
        let api_addr = api_listener.local_addr()?;
        let ws_addr = ws_listener.local_addr()?;

        let (stop, stopped) = watch::channel(false);
        let focus = Arc::new(FocusRuntime::new(store.clone(), presence.clone()));
        let focus_ticker = (config.focus_tick_ms > 0).then(|| {
            focus.clone().spawn(
                std::time::Duration::from_millis(config.focus_tick_ms),
                stopped.clone(),
            )
        });
        let retention = Arc::new(crate::retention::RetentionRuntime::new(
            store.clone(),
            messages.clone(),
            config.webhooks.keep_deliveries_days,
        ));
        let retention_ticker = (config.retention_tick_ms > 0).then(|| {
            retention.clone().spawn(
                std::time::Duration::from_millis(config.retention_tick_ms),
                stopped.clone(),
            )
        });
        let front = Front {
            quotas: open_quotas(&config, store.clone()).await?,
            store,
            messages,
            auth,
            router: Arc::new(channels.clone()),
            bus,
            access: open_access(config.bus_url.as_deref()).await?,
            presence,
        };
        let ops = match config.ops_addr {
            Some(addr) => {
                let readiness = Readiness::new(stopped.clone())
                    .with(MetadataProbe(front.store.clone()))
                    .with(MessagesProbe(front.messages.clone()))
                    .with(ChannelServiceProbe(front.router.clone()));
                Some(OpsServer::start(addr, readiness).await?)
            }
            None => None,
        };
        // `POST /v1/admin/backup` exists when every store is embedded (`backup.rs`).
        let backup = match (embedded_metadata(&config), embedded_history) {
            (Some(metadata), Some(history)) => {
                crate::backup::routes(crate::backup::EmbeddedStores {
                    data_dir: config.data_dir.clone(),
                    metadata,
                    history,
                    channels: channels.clone(),
                    admin_token: config.admin_token.clone(),
                })
            }
            _ => axum::Router::new(),
        };
        let api = spawn_api(
            &config,
            &front,
            api_listener,
            Some(ws_addr.port()),
            stopped.clone(),
            backup,
        )
        .await?;
        let gateway = spawn_gateway(&config, front, ws_listener, stopped).await?;
        Ok(Node {
            api_addr,
            ws_addr,
            ops_addr: ops.as_ref().map(|o| o.addr),
            ops,
            stop,
            api,
            gateway,
            channels,
            auto_replies,
            focus,
            focus_ticker,
            retention,
            retention_ticker,
        })
    }

    /// One tick of the retention job at `now` (what the ticker does every `retention_tick_ms`).
    pub async fn retention_tick(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<crate::retention::RetentionReport, chorus_core::StoreError> {
        self.retention.tick(now).await
    }

    /// One tick of focus mode's runtime at `now` (what the ticker does every `focus_tick_ms`):
    /// starts and ends the sessions due by then. Tests call it with a test clock.
    pub async fn focus_tick(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<chorus_notify::focus::TickReport, chorus_core::StoreError> {
        self.focus.tick(now).await
    }

    /// Graceful stop: listeners close, clients are told to reconnect (4003) and drained, then the
    /// channel service stops. Everything acknowledged is already on disk.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for (role, task) in [("gateway", self.gateway), ("api", self.api)] {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::warn!(role, error = %err, "stopped with an error"),
                Err(err) => tracing::warn!(role, error = %err, "task failed"),
            }
        }
        if let Some(ticker) = self.focus_ticker {
            let _ = ticker.await;
        }
        if let Some(ticker) = self.retention_ticker {
            let _ = ticker.await;
        }
        self.channels.shutdown().await;
        self.auto_replies.clear();
        // Last: until here `/readyz` answered "draining".
        if let Some(ops) = self.ops {
            ops.stop().await;
        }
    }
}

/// What the client-facing roles (REST API, WebSocket gateway) talk to.
pub(crate) struct Front {
    pub store: Arc<dyn MetadataStore>,
    pub messages: Arc<dyn MessageStore>,
    pub auth: Authenticator,
    pub router: Arc<dyn ChannelRouter>,
    pub bus: Arc<dyn FanoutBus>,
    pub access: Arc<dyn AccessNotifier>,
    /// Shared by the API (custom statuses) and the gateway (connections, followers), so a status
    /// set over REST reaches the sockets of the same process.
    pub presence: Arc<dyn PresenceStore>,
    /// Each workspace's messages per minute, shared by the API and the gateway of the process.
    pub quotas: Arc<MessageQuotas>,
}

/// The workspace message quotas of a process, counted where `rate_limit_url` says (Redis: one
/// quota across every process of the deployment).
pub(crate) async fn open_quotas(
    config: &NodeConfig,
    store: Arc<dyn MetadataStore>,
) -> anyhow::Result<Arc<MessageQuotas>> {
    let counter =
        chorus_api::RateLimitQuotas::new(open_rate_limits(config.rate_limit_url.as_deref()).await?);
    Ok(Arc::new(MessageQuotas::new(store, Arc::new(counter))))
}

/// Resolves once `stop` turns true.
async fn until_stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Serves the REST API, and the web client at `/` (`web.rs`), on `listener` until `stop`.
/// `gateway_port` is the port of this process's WebSocket gateway, if it runs one.
pub(crate) async fn spawn_api(
    config: &NodeConfig,
    front: &Front,
    listener: TcpListener,
    gateway_port: Option<u16>,
    stop: watch::Receiver<bool>,
    operator_routes: axum::Router,
) -> anyhow::Result<JoinHandle<std::io::Result<()>>> {
    let targets = Arc::new(config.webhooks.targets()?);
    let state = ApiState {
        outbound: chorus_webhooks::resolver::Outbound::new(
            targets.clone(),
            std::time::Duration::from_millis(config.webhooks.timeout_ms.max(1)),
        )?,
        store: front.store.clone(),
        messages: front.messages.clone(),
        auth: front.auth.clone(),
        limits: ApiLimits {
            login_per_minute_per_ip: config.api.login_per_minute_per_ip,
            login_per_minute_per_account: config.api.login_per_minute_per_account,
            register_per_minute_per_ip: config.api.register_per_minute_per_ip,
            register_per_minute_per_account: config.api.register_per_minute_per_account,
            writes_per_minute_per_user: config.api.writes_per_minute_per_user,
            max_concurrent_requests: config.api.max_concurrent_requests,
            request_timeout_ms: config.api.request_timeout_ms,
            command_deadline_ms: config.api.command_deadline_ms,
        },
        rate_limits: open_rate_limits(config.rate_limit_url.as_deref()).await?,
        quotas: front.quotas.clone(),
        router: front.router.clone(),
        access: front.access.clone(),
        presence: front.presence.clone(),
        admin_token: config.admin_token.clone(),
        trusted_proxies: trusted_proxies(config)?,
        gateway_port,
        clock: config.clock.clone(),
        streams: chorus_api::Streams::new(
            front.bus.clone(),
            front.access.clone(),
            chorus_api::StreamLimits {
                queue: config.api.stream_queue,
                heartbeat_ms: config.api.stream_heartbeat_ms,
                max_streams: config.api.max_streams,
            },
        ),
    };
    let streams = state.streams.clone();
    // Open SSE streams never end on their own: shutdown closes them (4003) so the graceful
    // shutdown's wait for connections can finish.
    let stop_serving = stop.clone();
    let stopped = async move {
        until_stopped(stop_serving).await;
        streams.close_all();
    };
    let app = chorus_api::router(state)
        .merge(operator_routes)
        .fallback_service(crate::web::router());
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    let tls = client_tls(config)?;
    // Outgoing webhooks are sent by every process that serves the API (it has the metadata
    // store and history they need); their shared queue keeps each delivery to one sender.
    let webhooks = chorus_webhooks::Dispatcher::start(
        front.store.clone(),
        front.messages.clone(),
        config.webhooks.to_webhook_config(targets),
        stop.clone(),
    )?;
    let serving: std::pin::Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>> = match tls {
        None => Box::pin(
            axum::serve(listener, service)
                .with_graceful_shutdown(stopped)
                .into_future(),
        ),
        Some(acceptor) => {
            // `tap_io` (a no-op) is what gives axum's `ConnectInfo<SocketAddr>` for a custom
            // listener.
            let listener = crate::tls::TlsListener::new(listener, acceptor)?.tap_io(|_| {});
            Box::pin(
                axum::serve(listener, service)
                    .with_graceful_shutdown(stopped)
                    .into_future(),
            )
        }
    };
    Ok(tokio::spawn(async move {
        let served = serving.await;
        if let Err(err) = webhooks.await {
            tracing::warn!(error = %err, "the webhook dispatcher failed");
        }
        served
    }))
}

/// Serves the WebSocket gateway on `listener` until `stop`.
pub(crate) async fn spawn_gateway(
    config: &NodeConfig,
    front: Front,
    listener: TcpListener,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<JoinHandle<std::io::Result<()>>> {
    let mut gateway_config = config.gateway.to_gateway_config();
    gateway_config.trusted_proxies = trusted_proxies(config)?;
    let badges = chorus_notify::Badges::new(front.store.clone(), front.messages.clone());
    let deps = GatewayDeps {
        badges: Some(Arc::new(badges)),
        auth: front.auth,
        store: front.store,
        router: front.router,
        bus: front.bus,
        presence: front.presence,
        sessions: open_sessions(
            config.session_url.as_deref(),
            gateway_config.session_limits(),
        )
        .await?,
        access: front.access,
        quotas: front.quotas,
        tls: client_tls(config)?,
    };
    Ok(tokio::spawn(chorus_gateway::serve(
        listener,
        gateway_config,
        deps,
        until_stopped(stop),
    )))
}

/// The client TLS acceptor, when `[client_tls]` is set.
fn client_tls(config: &NodeConfig) -> anyhow::Result<Option<tokio_rustls::TlsAcceptor>> {
    crate::tls::acceptor(
        config.client_tls.cert.as_deref(),
        config.client_tls.key.as_deref(),
    )
    .context("invalid client_tls")
}

fn trusted_proxies(config: &NodeConfig) -> anyhow::Result<TrustedProxies> {
    TrustedProxies::parse(&config.trusted_proxies)
        .map_err(anyhow::Error::msg)
        .context("invalid trusted_proxies")
}

/// Connections the kernel queues before `accept` (tokio's default is 1,024).
///
/// A reconnect storm arrives all at once; with a short queue the overflow waits a full second for
/// the SYN retransmit (the kernel still caps this at `net.core.somaxconn`).
const LISTEN_BACKLOG: u32 = 8_192;

/// A listening socket with a backlog sized for reconnect storms.
pub(crate) async fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The metadata store named by `metadata_url` (default: SQLite in the data directory).
pub(crate) async fn open_metadata(
    url: Option<&str>,
    data_dir: &Path,
) -> anyhow::Result<Arc<dyn MetadataStore>> {
    let sqlite = |path: &Path| {
        let path = path.to_owned();
        async move { Ok(Arc::new(SqliteMetadataStore::open(&path).await?) as Arc<dyn MetadataStore>) }
    };
    match url {
        None => sqlite(&data_dir.join("metadata.db")).await,
        Some(url) if url.starts_with("sqlite://") => {
            sqlite(Path::new(&url["sqlite://".len()..])).await
        }
        Some(url) if is_postgres(url) => Ok(Arc::new(PostgresMetadataStore::connect(url).await?)),
        Some(other) => {
            anyhow::bail!("unsupported metadata_url {other:?}: use sqlite://PATH or postgres://…")
        }
    }
}

pub(crate) fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The SQLite file of an embedded metadata store, `None` for PostgreSQL.
fn embedded_metadata(config: &NodeConfig) -> Option<std::path::PathBuf> {
    match config.metadata_url.as_deref() {
        None => Some(config.data_dir.join("metadata.db")),
        Some(url) if url.starts_with("sqlite://") => Some(url["sqlite://".len()..].into()),
        Some(_) => None,
    }
}

/// The message store named by `messages_url` (default: redb in the data directory).
pub(crate) async fn open_messages(
    url: Option<&str>,
    data_dir: &Path,
) -> anyhow::Result<Arc<dyn MessageStore>> {
    Ok(open_history(url, data_dir).await?.0)
}

/// [`open_messages`], with the redb store itself when history is embedded (for backups).
async fn open_history(
    url: Option<&str>,
    data_dir: &Path,
) -> anyhow::Result<(Arc<dyn MessageStore>, Option<RedbMessageStore>)> {
    let redb_path = match url {
        None => Some(data_dir.join("messages.redb")),
        Some(url) if url.starts_with("redb://") => Some(url["redb://".len()..].into()),
        Some(_) => None,
    };
    if let Some(path) = redb_path {
        let store = RedbMessageStore::open(&path)?;
        let instrumented = InstrumentedMessageStore::new(Arc::new(store.clone()), "redb");
        return Ok((Arc::new(instrumented), Some(store)));
    }
    let (store, backend): (Arc<dyn MessageStore>, _) = match url {
        Some(url) if url.starts_with("scylla://") => {
            (Arc::new(ScyllaMessageStore::connect(url).await?), "scylla")
        }
        Some(url) if is_postgres(url) => (
            Arc::new(PostgresMessageStore::connect(url).await?),
            "postgres",
        ),
        other => anyhow::bail!(
            "unsupported messages_url {:?}: use redb://PATH, postgres://… or scylla://…",
            other.unwrap_or_default()
        ),
    };
    // Latency and errors per operation (`chorus_store_operation_seconds`).
    Ok((
        Arc::new(InstrumentedMessageStore::new(store, backend)),
        None,
    ))
}

/// The fan-out bus named by `bus_url`, its `watch`es counted per channel: the gateway's hub and
/// the API's SSE streams both watch channels of one process-wide set (`SharedWatchBus`).
pub(crate) async fn open_bus(url: Option<&str>) -> anyhow::Result<Arc<dyn FanoutBus>> {
    Ok(Arc::new(chorus_api::SharedWatchBus::new(
        open_bare_bus(url).await?,
    )))
}

async fn open_bare_bus(url: Option<&str>) -> anyhow::Result<Arc<dyn FanoutBus>> {
    match url {
        None | Some("local") => Ok(Arc::new(LocalBus::new(BUS_QUEUE))),
        Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
            let bus = RedisBus::connect(url, BUS_QUEUE)
                .await
                .context("cannot start the Redis fan-out bus (bus_url)")?;
            Ok(Arc::new(bus))
        }
        Some(other) => {
            anyhow::bail!("unsupported bus_url {other:?}: use `local` or a redis:// URL")
        }
    }
}

/// How access notices travel: with the bus (in process, or through the same Redis).
pub(crate) async fn open_access(bus_url: Option<&str>) -> anyhow::Result<Arc<dyn AccessNotifier>> {
    match bus_url {
        None | Some("local") => Ok(Arc::new(LocalAccessNotifier::default())),
        Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => Ok(Arc::new(
            RedisAccessNotifier::connect(url)
                .await
                .map_err(anyhow::Error::msg)
                .context("cannot start the Redis access notices (bus_url)")?,
        )),
        Some(other) => {
            anyhow::bail!("unsupported bus_url {other:?}: use `local` or a redis:// URL")
        }
    }
}

/// Where rate-limit counters live, named by `rate_limit_url`.
pub(crate) async fn open_rate_limits(url: Option<&str>) -> anyhow::Result<Arc<dyn RateLimitStore>> {
    match url {
        None | Some("local") => Ok(Arc::new(LocalRateLimits)),
        Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => Ok(Arc::new(
            RedisRateLimits::connect(url)
                .await
                .map_err(anyhow::Error::msg)
                .context("cannot start the Redis rate-limit store (rate_limit_url)")?,
        )),
        Some(other) => {
            anyhow::bail!("unsupported rate_limit_url {other:?}: use `local` or a redis:// URL")
        }
    }
}

/// The presence store named by `presence_url`.
pub(crate) async fn open_presence(url: Option<&str>) -> anyhow::Result<Arc<dyn PresenceStore>> {
    match url {
        None | Some("local") => Ok(Arc::new(MemoryPresence::default())),
        Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
            Ok(Arc::new(RedisPresence::connect(url).await.context(
                "cannot start the Redis presence store (presence_url)",
            )?))
        }
        Some(other) => {
            anyhow::bail!("unsupported presence_url {other:?}: use `local` or a redis:// URL")
        }
    }
}

/// The resumable-session store named by `session_url`.
async fn open_sessions(
    url: Option<&str>,
    limits: SessionLimits,
) -> anyhow::Result<Arc<dyn SessionStore>> {
    match url {
        None | Some("local") => Ok(Arc::new(MemorySessions::new(limits))),
        Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => Ok(Arc::new(
            RedisSessions::connect(url, limits)
                .await
                .context("cannot start the Redis session store (session_url)")?,
        )),
        Some(other) => {
            anyhow::bail!("unsupported session_url {other:?}: use `local` or a redis:// URL")
        }
    }
}

/// Reads the node's token secret, creating a random one (readable by the owner only) on first use.
pub(crate) fn load_or_create_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(secret) if secret.len() >= 32 => return Ok(secret),
        Ok(_) => anyhow::bail!("{} is shorter than 32 bytes", path.display()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
    let secret = chorus_core::auth::new_refresh_token().into_bytes();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    std::io::Write::write_all(&mut file, &secret)?;
    file.sync_all()?;
    Ok(secret)
}
