//! The chaos scenario, small, against a real cluster: `scripts/netns-cluster.sh` starts three
//! channel nodes, each in its own network namespace, and two gateways, with the `chorus` binary
//! of this build profile; the scenario kills, freezes and partitions them while clients send and
//! follow channels, then its checker must find nothing lost, duplicated, unexpected or out of
//! order, and no commit by an isolated leader. Then a rolling restart of every process, with the
//! same check.
//!
//! Needs root and iproute2 (network namespaces), the machine's PostgreSQL and Redis, python3
//! (the script's relay) and psql: it fails, saying which, when one is missing — never skips.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use chorus_loadtest::api::Api;
use chorus_loadtest::chaos::{self, faults};
use serde_json::Value;

/// Settings of every process: the load tester registers users and sends frames from one
/// address, faster than production limits allow.
const CONFIG: &str = r#"
[gateway]
frames_per_second = 100000
frame_burst = 100000
[api]
login_per_minute_per_ip = 1000000
login_per_minute_per_account = 1000000
register_per_minute_per_ip = 1000000
writes_per_minute_per_user = 1000000
"#;

/// A scenario that takes longer than this at this scale is broken.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(300);

/// `target/<profile>/chorus`, next to the `deps/` directory this test runs from.
fn chorus_binary() -> PathBuf {
    let test = std::env::current_exe().expect("test executable path");
    let profile_dir = test
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from target/<profile>/deps/");
    let binary = profile_dir.join(format!("chorus{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "build the chorus binary first (cargo build): {} does not exist",
        binary.display()
    );
    binary
}

/// `HOST` and `PORT` of a `scheme://[user@]host:port[/…]` URL.
fn host_port(url: &str) -> (String, String) {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    let (host, port) = authority
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("no port in {url}"));
    (host.to_string(), port.to_string())
}

/// `count` consecutive TCP ports free on 127.0.0.1 now, below the ephemeral range.
fn free_ports(count: u16) -> u16 {
    let start = 24_000 + (std::process::id() % 600) as u16 * 12;
    (0..600u16)
        .map(|k| 24_000 + (start - 24_000 + k * 12) % 7_200)
        .find(|base| (0..count).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok()))
        .expect("no free run of ports")
}

/// A /24 of 10.77.x.0 that no interface of this machine has.
fn free_subnet() -> String {
    let taken = String::from_utf8(
        Command::new("ip")
            .args(["-o", "-4", "addr", "show"])
            .output()
            .expect("iproute2's `ip` must be installed")
            .stdout,
    )
    .unwrap();
    (0..200u32)
        .map(|k| format!("10.77.{}", 20 + (std::process::id() + k) % 200))
        .find(|subnet| !taken.contains(&format!(" {subnet}.")))
        .expect("no free 10.77.x subnet")
}

/// A cluster started by the script; `down` and cleaned up on drop.
struct Cluster {
    ctl: String,
    dir: PathBuf,
    db: String,
    pg: (String, String),
    gateways: Vec<SocketAddr>,
    rest: Vec<String>,
}

impl Cluster {
    fn up() -> Self {
        let namespaces = Command::new("ip").args(["netns", "list"]).output();
        assert!(
            namespaces.as_ref().is_ok_and(|o| o.status.success()),
            "this test needs network namespaces (root and iproute2): {namespaces:?}"
        );
        let pg = host_port(&std::env::var("CHORUS_TEST_POSTGRES_URL").expect(
            "CHORUS_TEST_POSTGRES_URL must name a PostgreSQL server (scripts/test.sh sets it)",
        ));
        let redis = host_port(
            &std::env::var("CHORUS_TEST_REDIS_URL")
                .expect("CHORUS_TEST_REDIS_URL must name a Redis server (scripts/test.sh sets it)"),
        );
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("chorus-chaos-{}", &id[..12]));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("chaos.toml");
        std::fs::write(&config, CONFIG).unwrap();
        let base = free_ports(12);
        let db = format!("chorus_chaos_{}", &id[..16]);
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/netns-cluster.sh");
        let ctl = format!(
            "CHORUS_BIN={} CHORUS_CLUSTER_DIR={} CHORUS_NETNS_TAG=t{} CHORUS_NETNS_SUBNET={} \
             CHORUS_NETNS_PORT_BASE={base} CHORUS_CLUSTER_DB={db} CHORUS_CLUSTER_CONFIG={} \
             CHORUS_CLUSTER_PG_HOST={} CHORUS_CLUSTER_PG_PORT={} CHORUS_CLUSTER_REDIS_HOST={} \
             CHORUS_CLUSTER_REDIS_PORT={} CHORUS_SHARD_COUNT=8 {script}",
            chorus_binary().display(),
            dir.display(),
            std::process::id() % 100_000,
            free_subnet(),
            config.display(),
            pg.0,
            pg.1,
            redis.0,
            redis.1,
        );
        let cluster = Cluster {
            ctl,
            dir,
            db,
            pg,
            gateways: vec![
                SocketAddr::from(([127, 0, 0, 1], base + 1)),
                SocketAddr::from(([127, 0, 0, 1], base + 3)),
            ],
            rest: vec![
                format!("http://127.0.0.1:{base}"),
                format!("http://127.0.0.1:{}", base + 2),
            ],
        };
        let up = Command::new("sh")
            .arg("-c")
            .arg(format!("{} up", cluster.ctl))
            .output()
            .unwrap();
        assert!(
            up.status.success(),
            "netns-cluster.sh up failed:\n{}\n{}\n{}",
            String::from_utf8_lossy(&up.stdout),
            String::from_utf8_lossy(&up.stderr),
            cluster.logs()
        );
        cluster
    }

    /// The last lines of every process's log, for a failure message.
    fn logs(&self) -> String {
        let mut out = String::new();
        for name in ["node-1", "node-2", "node-3", "gateway-1", "gateway-2"] {
            let log =
                std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            out.push_str(&format!("--- {name}\n"));
            for line in tail.iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    fn args(&self) -> chaos::Args {
        chaos::Args {
            ctl: self.ctl.clone(),
            gateways: self.gateways.clone(),
            rest: self.rest.clone(),
            channels: 8,
            publishers: 4,
            subscribers: 2,
            rate: 60,
            size: 100,
            kinds: vec![faults::Kind::Kill],
            targets: ["node-1", "node-2", "node-3", "gateway-1", "gateway-2"]
                .map(String::from)
                .into(),
            faults: 0,
            plan: Vec::new(),
            rolling: false,
            fault_secs: 2,
            every_secs: 6,
            warmup_secs: 2,
            settle_secs: 60,
            seed: 1,
        }
    }

    async fn run(&self, args: chaos::Args) -> Value {
        let api = Api::new(&self.rest[0]);
        match tokio::time::timeout(SCENARIO_TIMEOUT, chaos::run(&api, args)).await {
            Ok(Ok(result)) => result,
            Ok(Err(err)) => panic!("scenario failed: {err:#}\n{}", self.logs()),
            Err(_) => panic!("scenario timed out\n{}", self.logs()),
        }
    }

    /// Fails, with the result and the logs, unless the checker found nothing.
    fn assert_clean(&self, result: &Value) {
        let checker = &result["checker"];
        for zero in [
            "lost",
            "duplicated",
            "unexpected",
            "out_of_order",
            "misacknowledged",
        ] {
            assert_eq!(checker[zero], 0, "{zero}: {result:#}\n{}", self.logs());
        }
        // (`never_recovered` is a measure of time, not of correctness: reported, not asserted.)
        for zero in ["unacked_at_end", "refused", "minority_commits"] {
            assert_eq!(result[zero], 0, "{zero}: {result:#}\n{}", self.logs());
        }
        assert_eq!(
            result["fault_error"],
            Value::Null,
            "{result:#}\n{}",
            self.logs()
        );
        assert_eq!(
            result["subscriber_failures"],
            serde_json::json!([]),
            "{result:#}"
        );
        assert_eq!(result["clean"], true, "{result:#}");
        assert!(checker["acknowledged"].as_u64().unwrap() > 0, "{result:#}");
        assert!(checker["delivered"].as_u64().unwrap() > 0, "{result:#}");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!("{} down", self.ctl))
            .output();
        if std::env::var_os("CHORUS_TEST_KEEP_CLUSTER").is_some() {
            eprintln!("cluster logs kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        let _ = Command::new("psql")
            .arg(format!(
                "postgres://postgres@{}:{}/postgres",
                self.pg.0, self.pg.1
            ))
            .args([
                "-qc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db),
            ])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_and_a_rolling_restart_lose_duplicate_and_reorder_nothing() {
    let cluster = Cluster::up();

    // Every kind of fault once, on nodes and gateways.
    let mut args = cluster.args();
    args.plan = [
        "kill:node-2",
        "partition:leader",
        "pause:gateway-1",
        "kill:gateway-2",
        "pause:node-1",
    ]
    .iter()
    .map(|p| faults::parse_planned(p).unwrap())
    .collect();
    let result = cluster.run(args).await;
    println!("chaos: {result:#}");
    cluster.assert_clean(&result);
    assert_eq!(result["faults"], 5, "{result:#}");
    assert!(
        result["partitioned_leader_shards"].as_u64().unwrap() > 0,
        "the partition isolated a leader: {result:#}"
    );
    assert!(
        result["publisher_reconnects"].as_u64().unwrap() > 0
            && result["subscriber_reconnects"].as_u64().unwrap() > 0,
        "gateway faults moved clients: {result:#}"
    );

    // Every process stopped and started in turn, under load.
    let mut args = cluster.args();
    args.rolling = true;
    args.every_secs = 3;
    args.fault_secs = 1;
    let result = cluster.run(args).await;
    println!("rolling restart: {result:#}");
    cluster.assert_clean(&result);
    assert_eq!(result["faults"], 5, "{result:#}");
}
