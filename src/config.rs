//! Node configuration: defaults, then a TOML file, then `CHORUS_*` environment variables and
//! command-line flags (applied by `main.rs` through clap, which reads both).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chorus_channel_node::{RaftTiming, StateLimits};
use chorus_gateway::GatewayConfig;
use serde::{Deserialize, Serialize};

/// Everything an embedded node needs to start.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Where metadata, the Raft log, snapshots and message history live.
    pub data_dir: PathBuf,
    /// REST API listen address.
    pub api_addr: SocketAddr,
    /// WebSocket gateway listen address.
    pub ws_addr: SocketAddr,
    /// HS256 secret for access tokens. When unset, a random one is created once and kept in
    /// `<data_dir>/jwt-secret`, so tokens survive restarts.
    pub jwt_secret: Option<String>,
    /// Operator token for `/v1/admin/*` (header `x-chorus-admin-token`); unset disables them.
    pub admin_token: Option<String>,
    /// Metadata store: unset for SQLite in `data_dir`, `sqlite://PATH`, or `postgres://…`.
    pub metadata_url: Option<String>,
    /// Message history: unset for redb in `data_dir`, `redb://PATH`, `postgres://…` or
    /// `scylla://host:port[,host:port]/keyspace[?replication_factor=N]`.
    pub messages_url: Option<String>,
    /// The fan-out bus: unset (or `local`) for the in-process bus, `redis://host:port` for Redis
    /// pub/sub (required as soon as more than one gateway process serves the same channels).
    pub bus_url: Option<String>,
    /// Presence and typing: unset (or `local`) in process, `redis://…` to share it between gateways.
    pub presence_url: Option<String>,
    /// Rate-limit counters: unset (or `local`) in process, `redis://…` to share limits between nodes.
    pub rate_limit_url: Option<String>,
    /// Resumable sessions: unset (or `local`) in process, `redis://…` so a client can resume on
    /// any gateway that shares it.
    pub session_url: Option<String>,
    /// The ops listener: `GET /metrics`, `/livez`, `/readyz` (docs/OPERATIONS.md). Unset: none.
    /// Keep it private (Prometheus and the load balancer reach it, clients do not).
    pub ops_addr: Option<SocketAddr>,
    /// Proxies (addresses or CIDR networks) whose `X-Forwarded-For` names the client, for the
    /// request log and per-IP limits of the API and gateway. Empty believes nobody.
    pub trusted_proxies: Vec<String>,
    /// TLS for the REST API and the WebSocket gateway (`https://`, `wss://`); unset: plain TCP.
    pub client_tls: ClientTlsSection,
    /// How often focus mode's runtime starts and ends sessions on time (scheduled windows,
    /// sessions planned to end); 0 turns the ticker off (tests drive it with a test clock).
    pub focus_tick_ms: u64,
    /// How often the retention job deletes the history workspaces' policies no longer keep
    /// (docs/OPERATIONS.md); 0 turns it off (tests drive it with `Node::retention_tick`).
    pub retention_tick_ms: u64,
    /// The time the API's focus routes decide at: the wall clock, or (tests) a manual clock.
    /// Not configurable in a file.
    #[serde(skip)]
    pub clock: chorus_core::Clock,
    pub gateway: GatewaySection,
    pub channels: ChannelsSection,
    pub api: ApiSection,
    pub webhooks: WebhooksSection,
    pub cluster: ClusterSection,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            data_dir: PathBuf::from("chorus-data"),
            api_addr: "127.0.0.1:8080".parse().expect("valid address"),
            ws_addr: "127.0.0.1:8081".parse().expect("valid address"),
            jwt_secret: None,
            admin_token: None,
            metadata_url: None,
            messages_url: None,
            bus_url: None,
            presence_url: None,
            rate_limit_url: None,
            session_url: None,
            ops_addr: None,
            trusted_proxies: Vec::new(),
            client_tls: ClientTlsSection::default(),
            focus_tick_ms: 5_000,
            retention_tick_ms: 3_600_000,
            clock: chorus_core::Clock::wall(),
            gateway: GatewaySection::default(),
            channels: ChannelsSection::default(),
            api: ApiSection::default(),
            webhooks: WebhooksSection::default(),
            cluster: ClusterSection::default(),
        }
    }
}

/// `[client_tls]` — the certificate the API and gateway present to clients (PEM files). Both or
/// neither; distinct from the cluster identity in `[cluster]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientTlsSection {
    /// The certificate chain, leaf first.
    pub cert: Option<PathBuf>,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
}

/// `[gateway]` — see `GatewayConfig` for the meaning of each field.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySection {
    pub heartbeat_interval_ms: u64,
    pub heartbeat_timeout_ms: u64,
    pub auth_timeout_ms: u64,
    pub outbox_capacity: usize,
    pub max_in_flight_sends: usize,
    pub frames_per_second: u32,
    pub frame_burst: u32,
    pub max_subscriptions: usize,
    pub session_ttl_ms: u64,
    pub allowed_origins: Vec<String>,
    pub read_buffer_bytes: usize,
    pub write_buffer_bytes: usize,
    pub flush_interval_ms: u64,
    pub access_sweep_ms: u64,
    pub max_connections: usize,
}

impl Default for GatewaySection {
    fn default() -> Self {
        let d = GatewayConfig::default();
        GatewaySection {
            heartbeat_interval_ms: d.heartbeat_interval.as_millis() as u64,
            heartbeat_timeout_ms: d.heartbeat_timeout.as_millis() as u64,
            auth_timeout_ms: d.auth_timeout.as_millis() as u64,
            outbox_capacity: d.outbox_capacity,
            max_in_flight_sends: d.max_in_flight_sends,
            frames_per_second: d.frames_per_second,
            frame_burst: d.frame_burst,
            max_subscriptions: d.max_subscriptions,
            session_ttl_ms: d.session_ttl.as_millis() as u64,
            allowed_origins: d.allowed_origins,
            read_buffer_bytes: d.read_buffer_bytes,
            write_buffer_bytes: d.write_buffer_bytes,
            flush_interval_ms: d.flush_interval.as_millis() as u64,
            access_sweep_ms: d.access_sweep_interval.as_millis() as u64,
            max_connections: d.max_connections,
        }
    }
}

impl GatewaySection {
    pub fn to_gateway_config(&self) -> GatewayConfig {
        GatewayConfig {
            heartbeat_interval: Duration::from_millis(self.heartbeat_interval_ms),
            heartbeat_timeout: Duration::from_millis(self.heartbeat_timeout_ms),
            auth_timeout: Duration::from_millis(self.auth_timeout_ms),
            outbox_capacity: self.outbox_capacity,
            max_in_flight_sends: self.max_in_flight_sends,
            frames_per_second: self.frames_per_second,
            frame_burst: self.frame_burst,
            max_subscriptions: self.max_subscriptions,
            session_ttl: Duration::from_millis(self.session_ttl_ms),
            allowed_origins: self.allowed_origins.clone(),
            read_buffer_bytes: self.read_buffer_bytes,
            write_buffer_bytes: self.write_buffer_bytes,
            flush_interval: Duration::from_millis(self.flush_interval_ms),
            access_sweep_interval: Duration::from_millis(self.access_sweep_ms),
            max_connections: self.max_connections,
            ..GatewayConfig::default()
        }
    }
}

/// `[channels]` — the channel service.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelsSection {
    /// Recent messages per channel kept for resume.
    pub replay_buffer: usize,
    /// Recent nonces per channel remembered for deduplication.
    pub dedup_window: usize,
    /// Entries between state snapshots (the log before a snapshot is purged). An entry batches
    /// up to hundreds of messages; 2,000 keeps an embedded node's Raft log file at ~35 MB
    /// (docs/BENCHMARKS.md, disk), where 20,000 let it grow by ~680 bytes per message.
    pub snapshot_every: u64,
}

impl Default for ChannelsSection {
    fn default() -> Self {
        let limits = StateLimits::default();
        ChannelsSection {
            replay_buffer: limits.replay_buffer,
            dedup_window: limits.dedup_window,
            snapshot_every: 2_000,
        }
    }
}

/// `[cluster]` — the roles this process plays in a cluster (docs/CLUSTER.md). With no roles the
/// process is an embedded node: every role, in process, on per-process stores.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSection {
    /// Any of `channel`, `gateway`, `api`; empty for the embedded node.
    pub roles: Vec<Role>,
    /// This channel node's id (unique, never reused); channel role only.
    pub node_id: u64,
    /// Where this channel node's transport listens (UDP); channel role only.
    pub listen: Option<SocketAddr>,
    /// The channel nodes that create the cluster, as `ID=HOST:PORT`; every role needs them (a
    /// gateway or API process reads the cluster map from any of them).
    pub seeds: Vec<String>,
    /// Shards, fixed when the cluster is created.
    pub shard_count: u32,
    /// Replicas per shard (1–5).
    pub replication: usize,
    /// PEM files of this process's cluster identity (`chorus cluster certs` makes a dev set).
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Raft timing of a channel node's groups (docs/CLUSTER.md, "Settings"): the leader's
    /// heartbeat, which is also openraft's limit for one replication call, and the range a
    /// follower draws its election timeout from. A follower elects about
    /// `raft_election_max_ms` + its timeout after its leader's last heartbeat.
    pub raft_heartbeat_ms: u64,
    pub raft_election_min_ms: u64,
    pub raft_election_max_ms: u64,
    /// Join a running cluster: this channel node is not among `seeds` (which name the nodes to
    /// ask); the cluster then moves replicas onto it (docs/CLUSTER.md, "Membership").
    pub join: bool,
    /// The transport address other nodes reach a joining node at [default: `listen`].
    pub advertise: Option<SocketAddr>,
    /// Pause between two shard moves of a rebalancing, so it does not crowd out live traffic.
    pub move_pause_ms: u64,
    /// A channel node unreachable this long has its replicas replaced on the other nodes, when
    /// a spare node can take them (0: never).
    pub replace_dead_after_secs: u64,
    /// A channel node that has led a shard this long hands the leadership to the shard's
    /// preferred leader (the first replica of its assignment), once that replica has caught up:
    /// leaderships return to a node that comes back (0: never; a draining node's leaderships
    /// are handed over at once whatever this says).
    pub leader_settle_secs: u64,
}

impl Default for ClusterSection {
    fn default() -> Self {
        ClusterSection {
            roles: Vec::new(),
            node_id: 0,
            listen: None,
            seeds: Vec::new(),
            shard_count: 16,
            replication: 3,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            raft_heartbeat_ms: RaftTiming::CLUSTER.heartbeat_ms,
            raft_election_min_ms: RaftTiming::CLUSTER.election_min_ms,
            raft_election_max_ms: RaftTiming::CLUSTER.election_max_ms,
            join: false,
            advertise: None,
            move_pause_ms: 1_000,
            replace_dead_after_secs: 600,
            leader_settle_secs: 10,
        }
    }
}

/// A role a process plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Raft replicas of the shards placed on this node (and the control group).
    Channel,
    /// The WebSocket gateway.
    Gateway,
    /// The REST API.
    Api,
}

impl ClusterSection {
    /// The Raft timing these settings give.
    pub fn raft_timing(&self) -> RaftTiming {
        RaftTiming {
            heartbeat_ms: self.raft_heartbeat_ms,
            election_min_ms: self.raft_election_min_ms,
            election_max_ms: self.raft_election_max_ms,
        }
    }

    /// The seeds as node ids and addresses.
    pub fn seed_map(&self) -> Result<std::collections::BTreeMap<u64, SocketAddr>, String> {
        self.seeds
            .iter()
            .map(|seed| {
                let (id, addr) = seed
                    .split_once('=')
                    .ok_or_else(|| format!("seed {seed:?} is not ID=HOST:PORT"))?;
                let id = id
                    .trim()
                    .parse()
                    .map_err(|_| format!("seed {seed:?}: {id:?} is not a node id"))?;
                let addr = addr
                    .trim()
                    .parse()
                    .map_err(|_| format!("seed {seed:?}: {addr:?} is not HOST:PORT"))?;
                Ok((id, addr))
            })
            .collect()
    }
}

/// `[api]` — the REST API.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSection {
    pub login_per_minute_per_ip: u32,
    pub login_per_minute_per_account: u32,
    pub register_per_minute_per_ip: u32,
    pub register_per_minute_per_account: u32,
    /// REST message posts, edits, deletions and reactions per user.
    pub writes_per_minute_per_user: u32,
    /// Requests answered at once; the rest are refused at once (503 `overloaded`).
    pub max_concurrent_requests: usize,
    /// A request unanswered after this long is abandoned (503 `timeout`); 0: no limit.
    pub request_timeout_ms: u64,
    /// Items waiting for one SSE stream (`GET /v1/stream`); beyond it the stream ends (4002).
    pub stream_queue: usize,
    /// Heartbeat comment on a quiet SSE stream after this long.
    pub stream_heartbeat_ms: u64,
    /// SSE streams one process serves at once (503 `too_many_streams` beyond).
    pub max_streams: usize,
    /// How long a slash command's handler has to answer (then the caller gets `command_timeout`).
    pub command_deadline_ms: u64,
}

impl Default for ApiSection {
    fn default() -> Self {
        let d = chorus_api::ApiLimits::default();
        let s = chorus_api::StreamLimits::default();
        ApiSection {
            login_per_minute_per_ip: d.login_per_minute_per_ip,
            login_per_minute_per_account: d.login_per_minute_per_account,
            register_per_minute_per_ip: d.register_per_minute_per_ip,
            register_per_minute_per_account: d.register_per_minute_per_account,
            writes_per_minute_per_user: d.writes_per_minute_per_user,
            max_concurrent_requests: d.max_concurrent_requests,
            request_timeout_ms: d.request_timeout_ms,
            stream_queue: s.queue,
            stream_heartbeat_ms: s.heartbeat_ms,
            max_streams: s.max_streams,
            command_deadline_ms: d.command_deadline_ms,
        }
    }
}

/// `[webhooks]` — outgoing webhooks, sent by every process that serves the API
/// (docs/BOTS.md, "Outgoing webhooks").
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksSection {
    /// Attempts per delivery, the first included; then it is marked `failed`.
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles with each further one (with jitter).
    pub retry_base_ms: u64,
    /// The longest wait between attempts.
    pub retry_cap_ms: u64,
    /// One attempt's limit, connecting included.
    pub timeout_ms: u64,
    /// Deliveries in flight to one subscription's URL at most.
    pub per_endpoint_concurrency: usize,
    /// Deliveries in flight from this process at most.
    pub max_concurrency: usize,
    /// How often new events are looked for, and due retries.
    pub poll_ms: u64,
    /// Internal networks (`127.0.0.0/8`, `10.0.0.0/8`, `::1`) that webhook and slash-command
    /// URLs may reach; every other internal address is refused (docs/BOTS.md, "Where requests
    /// may go"). Empty by default: public addresses only.
    pub allow_internal: Vec<String>,
    /// Days the delivery log keeps delivered and failed deliveries (the retention job removes
    /// older ones, every `retention_tick_ms`); 0 keeps them forever. Pending ones always stay.
    pub keep_deliveries_days: u32,
}

impl Default for WebhooksSection {
    fn default() -> Self {
        let d = chorus_webhooks::WebhookConfig::default();
        WebhooksSection {
            max_attempts: d.retry.max_attempts,
            retry_base_ms: d.retry.base.as_millis() as u64,
            retry_cap_ms: d.retry.cap.as_millis() as u64,
            timeout_ms: d.timeout.as_millis() as u64,
            per_endpoint_concurrency: d.per_endpoint_concurrency,
            max_concurrency: d.max_concurrency,
            poll_ms: d.poll_interval.as_millis() as u64,
            allow_internal: Vec::new(),
            keep_deliveries_days: 30,
        }
    }
}

impl WebhooksSection {
    /// The addresses outgoing requests may reach.
    pub fn targets(
        &self,
    ) -> Result<chorus_webhooks::target::TargetPolicy, chorus_webhooks::target::BadNetwork> {
        chorus_webhooks::target::TargetPolicy::parse(&self.allow_internal)
    }

    pub fn to_webhook_config(
        &self,
        targets: Arc<chorus_webhooks::target::TargetPolicy>,
    ) -> chorus_webhooks::WebhookConfig {
        chorus_webhooks::WebhookConfig {
            retry: chorus_webhooks::retry::RetryPolicy {
                max_attempts: self.max_attempts.max(1),
                base: Duration::from_millis(self.retry_base_ms),
                cap: Duration::from_millis(self.retry_cap_ms),
            },
            timeout: Duration::from_millis(self.timeout_ms.max(1)),
            per_endpoint_concurrency: self.per_endpoint_concurrency.max(1),
            max_concurrency: self.max_concurrency.max(1),
            poll_interval: Duration::from_millis(self.poll_ms.max(1)),
            targets,
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
}

impl NodeConfig {
    /// Defaults overlaid with a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// A node for tests: ports chosen by the OS, data in `data_dir`.
    pub fn for_tests(data_dir: &Path) -> Self {
        NodeConfig {
            data_dir: data_dir.to_owned(),
            api_addr: "127.0.0.1:0".parse().expect("valid address"),
            ws_addr: "127.0.0.1:0".parse().expect("valid address"),
            jwt_secret: Some("test-secret-test-secret-test-secret".into()),
            ops_addr: Some("127.0.0.1:0".parse().expect("valid address")),
            // Tests' webhook and slash-command endpoints listen on this host.
            webhooks: WebhooksSection {
                allow_internal: vec!["127.0.0.0/8".into(), "::1".into()],
                ..WebhooksSection::default()
            },
            ..NodeConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_overrides_only_what_it_names() {
        let config: NodeConfig = toml::from_str(
            r#"
            ws_addr = "0.0.0.0:9000"
            [gateway]
            heartbeat_interval_ms = 1000
            "#,
        )
        .unwrap();
        assert_eq!(config.ws_addr.port(), 9000);
        assert_eq!(config.gateway.heartbeat_interval_ms, 1000);
        assert_eq!(config.api_addr, NodeConfig::default().api_addr);
    }

    #[test]
    fn cluster_roles_and_seeds_parse() {
        let config: NodeConfig = toml::from_str(
            r#"
            [cluster]
            roles = ["gateway", "api"]
            seeds = ["1=127.0.0.1:7101", "2 = 127.0.0.1:7102"]
            "#,
        )
        .unwrap();
        assert_eq!(config.cluster.roles, vec![Role::Gateway, Role::Api]);
        let seeds = config.cluster.seed_map().unwrap();
        assert_eq!(seeds[&2], "127.0.0.1:7102".parse().unwrap());
        let bad = ClusterSection {
            seeds: vec!["127.0.0.1:7101".into()],
            ..ClusterSection::default()
        };
        assert!(bad.seed_map().unwrap_err().contains("ID=HOST:PORT"));
    }

    #[test]
    fn the_shipped_configuration_files_parse() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
        for file in ["chorus.example.toml", "bench.toml"] {
            let config = NodeConfig::from_file(&root.join(file))
                .unwrap_or_else(|err| panic!("deploy/{file}: {err}"));
            assert!(config.cluster.roles.is_empty(), "{file}: an embedded node");
        }
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(toml::from_str::<NodeConfig>("wss_addr = \"x\"").is_err());
    }
}
