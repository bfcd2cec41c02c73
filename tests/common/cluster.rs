//! Test harness of a real local cluster: `chorus` processes (3 channel nodes, 2 gateways that
//! also serve the REST API) on a fresh PostgreSQL database and the machine's Redis, talking QUIC
//! with mutual TLS on loopback. Processes are killed with SIGKILL, as an SRE's `kill -9` would.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use chorus_cluster::rpc::{NODE_GROUP, NodeStatus, method};
use chorus_cluster::transport::{QuicEndpoint, TlsFiles, TransportLimits};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use uuid::Uuid;

use super::Rest;

const BIN: &str = env!("CARGO_BIN_EXE_chorus");
const JWT_SECRET: &str = "cluster-test-secret-cluster-test-secret";

/// Settings for tests: generous client limits, as in the embedded harness.
const TEST_CONFIG: &str = r#"
[gateway]
frames_per_second = 10000
frame_burst = 10000
[cluster]
# Membership tests: a node killed for 3 s is replaced (when a spare exists), moves follow quickly.
replace_dead_after_secs = 3
move_pause_ms = 200
[api]
login_per_minute_per_ip = 10000
register_per_minute_per_ip = 10000
writes_per_minute_per_user = 100000
"#;

fn postgres_url() -> String {
    std::env::var("CHORUS_TEST_POSTGRES_URL")
        .expect("CHORUS_TEST_POSTGRES_URL must name a PostgreSQL server (scripts/test.sh sets it)")
}

fn redis_url() -> String {
    std::env::var("CHORUS_TEST_REDIS_URL")
        .expect("CHORUS_TEST_REDIS_URL must name a Redis server (scripts/test.sh sets it)")
}

/// A fresh database on the test PostgreSQL server; returns its URL.
async fn fresh_database() -> String {
    use sqlx::Connection;
    let admin = postgres_url();
    let name = format!("chorus_cluster_{}", Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|err| panic!("cannot reach PostgreSQL at {admin}: {err}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let (server, _) = admin
        .rsplit_once('/')
        .unwrap_or_else(|| panic!("CHORUS_TEST_POSTGRES_URL has no database part: {admin}"));
    format!("{server}/{name}")
}

/// A UDP port free right now on 127.0.0.1, for a channel node's transport (its peers must know
/// it before it starts). Taken below the kernel's ephemeral range (32768–60999 by default) and
/// never twice in this process: a port the kernel handed out for `:0` and took back could be
/// handed to the next `:0` bind — another test's QUIC client endpoint — before the node binds
/// it, and the node would exit at start.
fn free_udp_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(
        0,
        20_000 + (std::process::id() % 5_000) as u16,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    loop {
        let port = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(port < 32_000, "no free UDP port below the ephemeral range");
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// One process of the cluster.
pub struct Proc {
    pub name: String,
    args: Vec<String>,
    child: Option<Child>,
    pub api: Option<SocketAddr>,
    pub ws: Option<SocketAddr>,
    /// The ops listener (`/metrics`, `/readyz`): every process has one.
    pub ops: Option<SocketAddr>,
    log: PathBuf,
}

impl Proc {
    /// A process started by [`Proc::spawn`] as `chorus <args>`, logging to `dir/<name>.log`.
    pub fn new(name: String, args: Vec<String>, dir: &Path) -> Self {
        Proc {
            log: dir.join(format!("{name}.log")),
            name,
            args,
            child: None,
            api: None,
            ws: None,
            ops: None,
        }
    }

    pub async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut child = Command::new(BIN)
            .args(&self.args)
            .env(
                "RUST_LOG",
                std::env::var("CHORUS_TEST_CLUSTER_LOG")
                    .unwrap_or_else(|_| "info,openraft=error".into()),
            )
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let wants_ws = self.name.starts_with("gateway");
        let started = async {
            while let Some(line) = lines.next_line().await.unwrap() {
                let addr = |prefix: &str| line.rsplit_once(prefix).map(|(_, a)| a.parse().unwrap());
                if let Some(ops) = line.strip_prefix("chorus ops        http://") {
                    self.ops = ops.strip_suffix("/metrics").map(|a| a.parse().unwrap());
                }
                if line.starts_with("chorus REST API") {
                    self.api = addr("http://");
                }
                if line.starts_with("chorus WebSocket") {
                    self.ws = addr("ws://");
                }
                if line.starts_with("chorus transport") && !wants_ws {
                    return;
                }
                if self.ws.is_some() {
                    return;
                }
            }
            panic!(
                "{} exited before it listened; see {}",
                self.name,
                self.log.display()
            );
        };
        tokio::time::timeout(Duration::from_secs(90), started)
            .await
            .unwrap_or_else(|_| panic!("{} did not start; see {}", self.name, self.log.display()));
        // Keep draining standard output so the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.child = Some(child);
    }

    /// SIGKILL: no goodbye, no flush beyond what was fsynced.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().unwrap();
            child.wait().await.unwrap();
        }
    }

    /// SIGTERM, as an orchestrator stops a process, and waits for it to exit.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().expect("a running child has a pid");
            let status = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .unwrap();
            assert!(status.success(), "kill -TERM {pid} failed");
            tokio::time::timeout(Duration::from_secs(60), child.wait())
                .await
                .unwrap_or_else(|_| panic!("{} did not stop within 60 s of SIGTERM", self.name))
                .unwrap();
        }
    }

    /// What the process has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

/// What every process of a test cluster is started with.
struct Settings {
    dir: PathBuf,
    seeds: String,
    shards: u32,
    certs: PathBuf,
    db: String,
}

impl Settings {
    /// The flags every process of the cluster shares, for the process called `name`.
    fn args(&self, name: &str) -> Vec<String> {
        let mut args: Vec<String> = vec!["serve".into(), "--config".into()];
        args.push(self.dir.join("test.toml").display().to_string());
        let certs = &self.certs;
        for (flag, value) in [
            ("--data-dir", self.dir.join(name).display().to_string()),
            ("--seeds", self.seeds.clone()),
            ("--shard-count", self.shards.to_string()),
            ("--replication", "3".into()),
            ("--tls-ca", certs.join("ca.pem").display().to_string()),
            (
                "--tls-cert",
                certs.join(format!("{name}.pem")).display().to_string(),
            ),
            (
                "--tls-key",
                certs.join(format!("{name}.key")).display().to_string(),
            ),
            ("--messages-url", self.db.clone()),
            ("--bus-url", redis_url()),
            // Every process: gateways for accounts and presence, channel nodes for the notifier.
            ("--metadata-url", self.db.clone()),
            ("--presence-url", redis_url()),
            ("--ops-addr", "127.0.0.1:0".into()),
        ] {
            args.push(flag.into());
            args.push(value);
        }
        args
    }
}

/// A running local cluster; dropping it kills every process.
pub struct LocalCluster {
    pub dir: tempfile::TempDir,
    pub nodes: BTreeMap<u64, Proc>,
    pub gateways: Vec<Proc>,
    pub transport: BTreeMap<u64, SocketAddr>,
    pub http: reqwest::Client,
    admin: QuicEndpoint,
    settings: Settings,
}

impl LocalCluster {
    /// Three channel nodes (replication 3, `shards` shards) and two gateways with the API.
    pub async fn start(shards: u32) -> Self {
        Self::start_with(shards, "").await
    }

    /// The same, with more `[cluster]` settings (TOML lines) for every process.
    pub async fn start_with(shards: u32, cluster_settings: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        let names = [
            "node-1",
            "node-2",
            "node-3",
            "gateway-1",
            "gateway-2",
            "admin",
            "node-4",
        ];
        let status = std::process::Command::new(BIN)
            .args(["cluster", "certs", "--dir"])
            .arg(&certs)
            .args(names)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "chorus cluster certs failed");
        let config =
            TEST_CONFIG.replace("[cluster]\n", &format!("[cluster]\n{cluster_settings}\n"));
        std::fs::write(dir.path().join("test.toml"), config).unwrap();
        let db = fresh_database().await;
        let transport: BTreeMap<u64, SocketAddr> = (1..=3)
            .map(|id| (id, SocketAddr::from(([127, 0, 0, 1], free_udp_port()))))
            .collect();
        let seeds = transport
            .iter()
            .map(|(id, addr)| format!("{id}={addr}"))
            .collect::<Vec<_>>()
            .join(",");
        let settings = Settings {
            dir: dir.path().to_path_buf(),
            seeds,
            shards,
            certs: certs.clone(),
            db: db.clone(),
        };
        let common = |name: &str| settings.args(name);
        let proc = Proc::new;
        let mut nodes = BTreeMap::new();
        for (&id, addr) in &transport {
            let name = format!("node-{id}");
            let mut args = common(&name);
            args.extend([
                "--role".into(),
                "channel".into(),
                "--node-id".into(),
                id.to_string(),
                "--cluster-listen".into(),
                addr.to_string(),
            ]);
            nodes.insert(id, proc(name, args, dir.path()));
        }
        let mut gateways = Vec::new();
        for i in 1..=2 {
            let name = format!("gateway-{i}");
            let mut args = common(&name);
            for (flag, value) in [
                ("--role", "gateway,api".to_string()),
                ("--rate-limit-url", redis_url()),
                ("--session-url", redis_url()),
                ("--jwt-secret", JWT_SECRET.into()),
                ("--api-addr", "127.0.0.1:0".into()),
                ("--ws-addr", "127.0.0.1:0".into()),
            ] {
                args.push(flag.into());
                args.push(value);
            }
            gateways.push(proc(name, args, dir.path()));
        }
        for node in nodes.values_mut() {
            node.spawn().await;
        }
        for gateway in &mut gateways {
            gateway.spawn().await;
        }
        let admin = QuicEndpoint::client(
            &TlsFiles::in_dir(&certs, "admin"),
            TransportLimits::default(),
        )
        .unwrap();
        LocalCluster {
            dir,
            nodes,
            gateways,
            transport,
            http: reqwest::Client::new(),
            admin,
            settings,
        }
    }

    /// Starts channel node `id` (its certificate must exist: `node-4`) with `--join`: it asks the
    /// seeds to add it, and the cluster moves replicas onto it.
    pub async fn join_node(&mut self, id: u64) {
        let name = format!("node-{id}");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_udp_port()));
        let mut args = self.settings.args(&name);
        args.extend([
            "--role".into(),
            "channel".into(),
            "--node-id".into(),
            id.to_string(),
            "--cluster-listen".into(),
            addr.to_string(),
            "--join".into(),
        ]);
        let mut node = Proc::new(name, args, self.dir.path());
        node.spawn().await;
        self.nodes.insert(id, node);
        self.transport.insert(id, addr);
    }

    /// Sends a membership change through channel node `via`; the map after it, or the refusal.
    pub async fn membership(
        &self,
        via: u64,
        request: &chorus_cluster::rpc::MembershipRequest,
    ) -> Result<chorus_cluster::ClusterMap, String> {
        let body = self
            .admin
            .call(
                self.transport[&via],
                NODE_GROUP,
                method::MEMBERSHIP,
                Bytes::from(serde_json::to_vec(request).unwrap()),
                Duration::from_secs(60),
            )
            .await
            .map_err(|err| err.to_string())?;
        serde_json::from_slice(&body).unwrap()
    }

    /// Keeps the data directories and logs for a look after the test (`CHORUS_TEST_KEEP_CLUSTER`).
    pub fn keep_logs_if_asked(&mut self) {
        if std::env::var_os("CHORUS_TEST_KEEP_CLUSTER").is_some() {
            let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap()).keep();
            eprintln!("cluster logs kept in {}", dir.display());
        }
    }

    /// The REST API of gateway `i` (0 or 1).
    pub fn rest(&self, i: usize) -> Rest {
        Rest {
            base: format!("http://{}", self.gateways[i].api.unwrap()),
            http: self.http.clone(),
        }
    }

    pub fn ws(&self, i: usize) -> SocketAddr {
        self.gateways[i].ws.unwrap()
    }

    pub fn certs(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    /// What channel node `id` reports, if it answers.
    pub async fn status(&self, id: u64) -> Option<NodeStatus> {
        let body = self
            .admin
            .call(
                self.transport[&id],
                NODE_GROUP,
                method::STATUS,
                Bytes::new(),
                Duration::from_secs(2),
            )
            .await
            .ok()?;
        serde_json::from_slice(&body).ok()
    }

    /// The shard of a channel, from the cluster map.
    pub async fn shard_of(&self, channel: Uuid) -> u32 {
        for id in self.transport.keys() {
            if let Some(status) = self.status(*id).await {
                return status.map.shard_of(channel);
            }
        }
        panic!("no channel node answers");
    }

    /// The node that leads `shard`, as the leader itself reports (waits for an election).
    pub async fn leader_of(&self, shard: u32) -> u64 {
        for _ in 0..100 {
            for (&id, node) in &self.nodes {
                if !node.is_running() {
                    continue;
                }
                if let Some(status) = self.status(id).await
                    && status
                        .shards
                        .iter()
                        .any(|s| s.shard == shard && s.group.state == "Leader")
                {
                    return id;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("shard {shard} has no leader");
    }

    /// Which node leads each shard, as the leaders themselves report (shards without a leader
    /// right now are missing).
    pub async fn leaders(&self) -> BTreeMap<u32, u64> {
        let mut leaders = BTreeMap::new();
        for (&id, node) in &self.nodes {
            if !node.is_running() {
                continue;
            }
            if let Some(status) = self.status(id).await {
                for shard in status.shards.iter().filter(|s| s.group.state == "Leader") {
                    leaders.insert(shard.shard, id);
                }
            }
        }
        leaders
    }

    /// A node's view of one shard: (last log index, applied index).
    pub async fn shard_progress(&self, node: u64, shard: u32) -> Option<(u64, u64)> {
        let status = self.status(node).await?;
        let group = &status.shards.iter().find(|s| s.shard == shard)?.group;
        Some((
            group.last_log_index.unwrap_or(0),
            group.applied_index.unwrap_or(0),
        ))
    }
}

/// Posts to the channels in turn until told to stop, retrying a `503` with the same nonce (the
/// documented contract); returns each acknowledged nonce with its seq, per channel.
pub async fn post_until(
    rest: Rest,
    token: String,
    channels: Vec<Uuid>,
    stop: Arc<AtomicBool>,
) -> BTreeMap<Uuid, Vec<(String, u64)>> {
    let mut acked: BTreeMap<Uuid, Vec<(String, u64)>> = BTreeMap::new();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let channel = channels[n % channels.len()];
        let nonce = format!("m-{n}");
        loop {
            let (status, body) = rest
                .post(
                    &format!("/v1/channels/{channel}/messages"),
                    Some(&token),
                    json!({"text": format!("text {n}"), "nonce": nonce}),
                )
                .await;
            match status {
                200 | 201 => {
                    acked
                        .entry(channel)
                        .or_default()
                        .push((nonce.clone(), body["seq"].as_u64().unwrap()));
                    break;
                }
                503 => tokio::time::sleep(Duration::from_millis(100)).await,
                other => panic!("post {nonce} failed with {other}: {body}"),
            }
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    acked
}

/// Every event of `channel` in history: (nonce, seq), oldest first.
pub async fn history_nonces(rest: &Rest, token: &str, channel: Uuid) -> Vec<(String, u64)> {
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let (status, body) = rest
            .get(
                &format!("/v1/channels/{channel}/events?after={after}&limit=100"),
                token,
            )
            .await;
        assert_eq!(status, 200, "events: {body}");
        let page = body["events"].as_array().cloned().unwrap_or_default();
        let Some(last) = page.last() else {
            return events;
        };
        after = last["seq"].as_u64().unwrap();
        // Only posts were made: every event is a message.
        events.extend(page.iter().map(|e| {
            (
                e["nonce"].as_str().unwrap_or_default().to_string(),
                e["seq"].as_u64().unwrap(),
            )
        }));
    }
}

/// A user (`alice`) with a workspace of `count` channels (its first channel and `count - 1`
/// more, named `{prefix}-N`): her token and the channels.
pub async fn owner_with_channels(rest: &Rest, prefix: &str, count: usize) -> (String, Vec<Uuid>) {
    let (_, alice) = rest.user("alice").await;
    let (workspace, first) = rest.team(&alice, &[]).await;
    let mut channels = vec![first];
    for i in 0..count.saturating_sub(1) {
        let (status, body) = rest
            .post(
                &format!("/v1/workspaces/{workspace}/channels"),
                Some(&alice),
                json!({"name": format!("{prefix}-{i}")}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        channels.push(body["id"].as_str().unwrap().parse().unwrap());
    }
    (alice, channels)
}
