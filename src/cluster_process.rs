//! A process of a cluster: the roles named in `[cluster] roles` (channel, gateway, api), on the
//! shared stores a cluster needs (docs/CLUSTER.md).
//!
//! A channel node runs the control group and the shard replicas placed on it
//! (`chorus_channel_node::ClusterChannelNode`); a gateway or API process reaches channels through
//! a `ClusterRouter` over the same mutual-TLS transport. Per-process stores (SQLite, redb, the
//! in-process bus) cannot be shared between processes, so a cluster refuses them at start.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chorus_channel_node::{ClusterChannelNode, ClusterNodeConfig, RebalanceSettings, StateLimits};
use chorus_cluster::ClusterMap;
use chorus_cluster::cluster_router::ClusterRouter;
use chorus_cluster::transport::{QuicEndpoint, TlsFiles, TransportLimits};
use chorus_core::auth::Authenticator;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{NodeConfig, Role};
use crate::node::{
    Front, is_postgres, listen, open_access, open_bus, open_messages, open_metadata, open_presence,
    spawn_api, spawn_gateway,
};
use crate::ops::OpsServer;
use crate::ops::readiness::{
    ChannelServiceProbe, MessagesProbe, MetadataProbe, RaftGroupsProbe, Readiness,
};

/// How long a gateway or API process waits for the cluster map at start (the channel nodes may
/// be starting at the same moment).
const MAP_WAIT: Duration = Duration::from_secs(60);

/// A running cluster process.
pub struct ClusterProcess {
    pub api_addr: Option<SocketAddr>,
    pub ws_addr: Option<SocketAddr>,
    pub transport_addr: Option<SocketAddr>,
    /// The ops listener (`/metrics`, `/livez`, `/readyz`), when `ops_addr` is set.
    pub ops_addr: Option<SocketAddr>,
    ops: Option<OpsServer>,
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<std::io::Result<()>>)>,
    /// Shared with the readiness probe until shutdown takes it back.
    channel_node: Option<Arc<ClusterChannelNode>>,
}

fn is_redis(url: Option<&str>) -> bool {
    url.is_some_and(|u| u.starts_with("redis://") || u.starts_with("rediss://"))
}

/// Why a configuration cannot run as a cluster process, if it cannot: the stores every role
/// shares must be shared ones.
pub fn check_cluster_config(config: &NodeConfig) -> Result<(), String> {
    let roles = &config.cluster.roles;
    let has = |role| roles.contains(&role);
    let mut problems = Vec::new();
    if config.cluster.seeds.is_empty() {
        problems.push("[cluster] seeds is empty: name the channel nodes as ID=HOST:PORT".into());
    }
    match config.cluster.seed_map() {
        Err(err) => problems.push(err),
        Ok(seeds) => {
            // What the channel node would refuse later, after opening its stores.
            if has(Role::Channel)
                && config.cluster.node_id != 0
                && !config.cluster.join
                && !seeds.contains_key(&config.cluster.node_id)
            {
                problems.push(format!(
                    "node_id {} is not among the seeds {:?} (a channel node is reached at its seed address; set join to add a node to a running cluster)",
                    config.cluster.node_id,
                    seeds.keys().collect::<Vec<_>>()
                ));
            }
            if !seeds.is_empty()
                && let Err(err) = ClusterMap::create(
                    config.cluster.shard_count,
                    config.cluster.replication,
                    seeds,
                )
            {
                problems.push(format!("[cluster] {err}"));
            }
        }
    }
    if config.cluster.tls_ca.is_none()
        || config.cluster.tls_cert.is_none()
        || config.cluster.tls_key.is_none()
    {
        problems.push(
            "tls_ca, tls_cert and tls_key are required (`chorus cluster certs` makes a dev set)"
                .into(),
        );
    }
    let messages = config.messages_url.as_deref();
    if !messages.is_some_and(|u| is_postgres(u) || u.starts_with("scylla://")) {
        problems.push(
            "messages_url must be postgres://… or scylla://… (history is shared by every node)"
                .into(),
        );
    }
    if !is_redis(config.bus_url.as_deref()) {
        problems.push("bus_url must be redis://… (events travel between processes)".into());
    }
    if has(Role::Channel) {
        if config.cluster.node_id == 0 {
            problems.push("node_id must be set (1 or more) on a channel node".into());
        }
        if config.cluster.listen.is_none() {
            problems.push("[cluster] listen must be set on a channel node".into());
        }
        if let Err(err) = config.cluster.raft_timing().check() {
            problems.push(err);
        }
    }
    // Every role: gateways and the API for accounts and sessions, a channel node for the notifier
    // of the shards it leads (members, levels, focus; who is online).
    if !config.metadata_url.as_deref().is_some_and(is_postgres) {
        problems.push(
            "metadata_url must be postgres://… (accounts are shared; a channel node's notifier reads members and focus)"
                .into(),
        );
    }
    if !is_redis(config.presence_url.as_deref()) {
        problems.push(
            "presence_url must be redis://… (presence is shared; a channel node's notifier asks who is online)"
                .into(),
        );
    }
    if has(Role::Gateway) || has(Role::Api) {
        if config.jwt_secret.is_none() {
            problems.push("jwt_secret must be set, the same on every gateway and API".into());
        }
        if !is_redis(config.rate_limit_url.as_deref()) {
            problems.push(
                "rate_limit_url must be redis://… (limits are per user, not per process)".into(),
            );
        }
    }
    if has(Role::Gateway) && !is_redis(config.session_url.as_deref()) {
        problems.push("session_url must be redis://… (a client resumes on any gateway)".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "this configuration cannot run as a cluster process:\n  - {}",
            problems.join("\n  - ")
        ))
    }
}

fn tls_files(config: &NodeConfig) -> TlsFiles {
    let c = &config.cluster;
    TlsFiles {
        ca_cert: c.tls_ca.clone().unwrap_or_default(),
        cert: c.tls_cert.clone().unwrap_or_default(),
        key: c.tls_key.clone().unwrap_or_default(),
    }
}

impl ClusterProcess {
    pub async fn start(config: NodeConfig) -> anyhow::Result<Self> {
        check_cluster_config(&config).map_err(anyhow::Error::msg)?;
        // Before any role resolves its metric handles.
        crate::ops::metrics::install();
        let roles = config.cluster.roles.clone();
        let seeds = config.cluster.seed_map().map_err(anyhow::Error::msg)?;
        let tls = tls_files(&config);
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
        let messages = open_messages(config.messages_url.as_deref(), &config.data_dir)
            .await
            .context("cannot open the message store (messages_url)")?;
        let bus = open_bus(config.bus_url.as_deref()).await?;

        let mut process = ClusterProcess {
            api_addr: None,
            ws_addr: None,
            transport_addr: None,
            ops_addr: None,
            ops: None,
            stop: watch::channel(false).0,
            tasks: Vec::new(),
            channel_node: None,
        };
        if roles.contains(&Role::Channel) {
            let (channel_bus, auto_replies) =
                notifying_bus(&config, messages.clone(), bus.clone()).await?;
            let node = ClusterChannelNode::start(
                ClusterNodeConfig {
                    node_id: config.cluster.node_id,
                    data_dir: config.data_dir.join("channels"),
                    listen: config.cluster.listen.context("[cluster] listen")?,
                    seeds: seeds.clone(),
                    shard_count: config.cluster.shard_count,
                    replication: config.cluster.replication,
                    tls: tls.clone(),
                    limits: StateLimits {
                        replay_buffer: config.channels.replay_buffer,
                        dedup_window: config.channels.dedup_window,
                    },
                    max_in_flight: 50_000,
                    snapshot_every: config.channels.snapshot_every,
                    timing: config.cluster.raft_timing(),
                    join: config.cluster.join,
                    advertise: config.cluster.advertise,
                    rebalance: RebalanceSettings {
                        move_pause: Duration::from_millis(config.cluster.move_pause_ms),
                        replace_dead_after: Duration::from_secs(
                            config.cluster.replace_dead_after_secs,
                        ),
                        leader_settle: Duration::from_secs(config.cluster.leader_settle_secs),
                    },
                },
                messages.clone(),
                channel_bus,
            )
            .await
            .context("cannot start the channel node")?;
            process.transport_addr = node.local_addr();
            process.channel_node = Some(Arc::new(node));
            connect_auto_replies(auto_replies, &tls, seeds.values().copied().collect());
        }
        let mut readiness =
            Readiness::new(process.stop.subscribe()).with(MessagesProbe(messages.clone()));
        if let Some(node) = &process.channel_node {
            readiness = readiness.with(RaftGroupsProbe(node.clone()));
        }
        let (api, gateway) = (roles.contains(&Role::Api), roles.contains(&Role::Gateway));
        if api || gateway {
            let endpoint = QuicEndpoint::client(&tls, TransportLimits::default())
                .context("cannot open the cluster transport")?;
            let router =
                ClusterRouter::connect(endpoint, seeds.values().copied().collect(), MAP_WAIT)
                    .await
                    .context("cannot read the cluster map from the seeds")?;
            let store = open_metadata(config.metadata_url.as_deref(), &config.data_dir)
                .await
                .context("cannot open the metadata store (metadata_url)")?;
            let secret = config.jwt_secret.clone().unwrap_or_default().into_bytes();
            let front = Front {
                quotas: crate::node::open_quotas(&config, store.clone()).await?,
                auth: Authenticator::new(&secret, store.clone()),
                store,
                messages,
                router: Arc::new(router),
                bus,
                access: open_access(config.bus_url.as_deref()).await?,
                presence: open_presence(config.presence_url.as_deref()).await?,
            };
            readiness = readiness
                .with(MetadataProbe(front.store.clone()))
                .with(ChannelServiceProbe(front.router.clone()));
            let stopped = process.stop.subscribe();
            // The gateway's listener first: the API tells the web client its port.
            let ws_listener = if gateway {
                let listener = listen(config.ws_addr)
                    .await
                    .with_context(|| format!("cannot listen on {} (ws_addr)", config.ws_addr))?;
                process.ws_addr = Some(listener.local_addr()?);
                Some(listener)
            } else {
                None
            };
            if api {
                let listener = listen(config.api_addr)
                    .await
                    .with_context(|| format!("cannot listen on {} (api_addr)", config.api_addr))?;
                process.api_addr = Some(listener.local_addr()?);
                let gateway_port = process.ws_addr.map(|addr| addr.port());
                process.tasks.push((
                    "api",
                    spawn_api(
                        &config,
                        &front,
                        listener,
                        gateway_port,
                        stopped.clone(),
                        axum::Router::new(),
                    )
                    .await?,
                ));
                // Focus mode's ticker runs beside each API; several tickers on one store are
                // safe (chorus_notify::focus).
                if config.focus_tick_ms > 0 {
                    let runtime = Arc::new(chorus_notify::FocusRuntime::new(
                        front.store.clone(),
                        front.presence.clone(),
                    ));
                    let ticker = runtime.spawn(
                        std::time::Duration::from_millis(config.focus_tick_ms),
                        stopped.clone(),
                    );
                    process.tasks.push((
                        "focus",
                        tokio::spawn(async move {
                            let _ = ticker.await;
                            Ok(())
                        }),
                    ));
                }
            }
            if let Some(listener) = ws_listener {
                process.tasks.push((
                    "gateway",
                    spawn_gateway(&config, front, listener, stopped).await?,
                ));
            }
        }
        if let Some(addr) = config.ops_addr {
            let ops = OpsServer::start(addr, readiness).await?;
            process.ops_addr = Some(ops.addr);
            process.ops = Some(ops);
        }
        Ok(process)
    }

    /// Graceful stop: gateways tell clients to reconnect elsewhere (4003) and drain, the API
    /// stops, then the channel node leaves its groups.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for (role, task) in self.tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::warn!(role, error = %err, "stopped with an error"),
                Err(err) => tracing::warn!(role, error = %err, "task failed"),
            }
        }
        // The ops listener answered "draining" until now; stopping it drops the probe's share
        // of the channel node.
        if let Some(ops) = self.ops {
            ops.stop().await;
        }
        if let Some(node) = self.channel_node {
            match Arc::into_inner(node) {
                Some(node) => node.shutdown().await,
                None => tracing::warn!("channel node still shared at shutdown; not stopped"),
            }
        }
    }
}

/// Focus mode's automatic replies from this channel node's notifier go to whichever shard leads
/// the DM, through a router of its own. Connected in the background: the cluster map may not be
/// readable until the cluster has formed, and the node must not wait for it to start; until it
/// is connected (tried again every `MAP_WAIT`), this node's automatic replies wait for it (the
/// notifier's `ROUTER_WAIT`).
fn connect_auto_replies(
    slot: chorus_notify::AutoReplyRouter,
    tls: &TlsFiles,
    seeds: Vec<std::net::SocketAddr>,
) {
    let tls = tls.clone();
    tokio::spawn(async move {
        loop {
            let endpoint = match QuicEndpoint::client(&tls, TransportLimits::default()) {
                Ok(endpoint) => endpoint,
                Err(err) => {
                    return tracing::warn!(error = %err, "no focus auto-replies: no transport");
                }
            };
            match ClusterRouter::connect(endpoint, seeds.clone(), MAP_WAIT).await {
                Ok(router) => {
                    slot.set(Arc::new(router));
                    return;
                }
                Err(err) => tracing::warn!(error = %err, "focus auto-replies wait for the map"),
            }
        }
    });
}

/// The bus a channel node's shards publish on, with a notifier over the shared metadata store
/// and presence (PostgreSQL and Redis, which `check_cluster_config` requires), so the leader of
/// each shard notifies (ARCHITECTURE.md) — and the notifier's slot for the router its automatic
/// replies go to.
async fn notifying_bus(
    config: &NodeConfig,
    messages: Arc<dyn chorus_core::MessageStore>,
    bus: Arc<dyn chorus_cluster::FanoutBus>,
) -> anyhow::Result<(
    Arc<dyn chorus_cluster::FanoutBus>,
    chorus_notify::AutoReplyRouter,
)> {
    let store = open_metadata(config.metadata_url.as_deref(), &config.data_dir)
        .await
        .context("cannot open the metadata store (metadata_url)")?;
    let presence = open_presence(config.presence_url.as_deref()).await?;
    let notifier = chorus_notify::Notifier::new(store, messages, presence);
    let auto_replies = notifier.auto_replies();
    Ok((
        Arc::new(chorus_notify::NotifyingBus::new(bus, notifier)),
        auto_replies,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ClusterSection;

    fn cluster_config(roles: Vec<Role>) -> NodeConfig {
        NodeConfig {
            messages_url: Some("postgres://db/chorus".into()),
            metadata_url: Some("postgres://db/chorus".into()),
            bus_url: Some("redis://127.0.0.1:6379".into()),
            presence_url: Some("redis://127.0.0.1:6379".into()),
            rate_limit_url: Some("redis://127.0.0.1:6379".into()),
            session_url: Some("redis://127.0.0.1:6379".into()),
            jwt_secret: Some("s".repeat(32)),
            cluster: ClusterSection {
                roles,
                node_id: 1,
                listen: Some("127.0.0.1:7101".parse().unwrap()),
                seeds: vec!["1=127.0.0.1:7101".into()],
                replication: 1,
                tls_ca: Some("ca.pem".into()),
                tls_cert: Some("n.pem".into()),
                tls_key: Some("n.key".into()),
                ..ClusterSection::default()
            },
            ..NodeConfig::default()
        }
    }

    #[test]
    fn a_complete_cluster_configuration_passes() {
        let all = vec![Role::Channel, Role::Gateway, Role::Api];
        assert_eq!(check_cluster_config(&cluster_config(all)), Ok(()));
    }

    #[test]
    fn per_process_stores_are_refused_with_every_reason() {
        let mut config = cluster_config(vec![Role::Gateway]);
        config.metadata_url = None;
        config.messages_url = Some("redb://x".into());
        config.bus_url = Some("local".into());
        let why = check_cluster_config(&config).unwrap_err();
        assert!(why.contains("metadata_url must be postgres"), "{why}");
        assert!(why.contains("messages_url must be"), "{why}");
        assert!(why.contains("bus_url must be redis"), "{why}");
    }

    #[test]
    fn a_channel_node_must_be_a_seed_and_the_shape_must_fit_the_seeds() {
        let mut config = cluster_config(vec![Role::Channel]);
        config.cluster.node_id = 4;
        let why = check_cluster_config(&config).unwrap_err();
        assert!(
            why.contains("node_id 4 is not among the seeds [1]"),
            "{why}"
        );
        // Three replicas on one seed cannot be placed; a gateway is told so too.
        let mut gateway = cluster_config(vec![Role::Gateway]);
        gateway.cluster.replication = 3;
        let why = check_cluster_config(&gateway).unwrap_err();
        assert!(
            why.contains("replication 3 needs at least as many"),
            "{why}"
        );
    }

    #[test]
    fn a_channel_node_needs_an_id_and_a_listen_address() {
        let mut config = cluster_config(vec![Role::Channel]);
        config.cluster.node_id = 0;
        config.cluster.listen = None;
        let why = check_cluster_config(&config).unwrap_err();
        assert!(why.contains("node_id") && why.contains("listen"), "{why}");
    }

    #[test]
    fn a_channel_node_needs_the_shared_metadata_and_presence_for_its_notifier() {
        let mut config = cluster_config(vec![Role::Channel]);
        config.metadata_url = None;
        config.presence_url = None;
        config.jwt_secret = None; // a channel node takes no tokens
        let why = check_cluster_config(&config).unwrap_err();
        assert!(why.contains("metadata_url must be postgres"), "{why}");
        assert!(why.contains("presence_url must be redis"), "{why}");
        assert!(!why.contains("jwt_secret"), "{why}");
    }

    #[test]
    fn a_channel_node_refuses_raft_timing_that_cannot_hold_a_leader() {
        let mut config = cluster_config(vec![Role::Channel]);
        config.cluster.raft_heartbeat_ms = 200;
        config.cluster.raft_election_min_ms = 300;
        let why = check_cluster_config(&config).unwrap_err();
        assert!(why.contains("raft_election_min_ms"), "{why}");
    }
}
