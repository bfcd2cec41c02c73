//! Smoke test: every scenario, at a tiny scale, against a real node, so the harness cannot rot.
//!
//! The node is the `chorus` binary of this build profile (`target/<profile>/chorus`), started
//! with `deploy/bench.toml` on ports chosen by the kernel. `cargo test --workspace` builds it
//! (it is the bin target of a workspace member that has integration tests); a run of this crate
//! alone needs `cargo build` first, and says so instead of skipping.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chorus_loadtest::api::Api;
use chorus_loadtest::{
    capacity, failover, fanout, history, hold, latency, plot, presence, report, soak, storm,
    webhooks,
};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A scenario that takes longer than this at smoke scale is broken.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

struct Node {
    child: Child,
    api: Api,
    ws: SocketAddr,
    data_dir: PathBuf,
    /// What the node printed, for the failure message.
    log: Arc<Mutex<String>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

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

async fn start_node() -> Node {
    start_node_with("bench.toml").await
}

/// A node started with `deploy/{config}`.
async fn start_node_with(config: &str) -> Node {
    let data_dir = std::env::temp_dir().join(format!(
        "loadtest-smoke-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let config = format!("{}/../deploy/{config}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(chorus_binary())
        .args(["serve", "--config", &config, "--data-dir"])
        .arg(&data_dir)
        .args(["--api-addr", "127.0.0.1:0", "--ws-addr", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start chorus");
    // The node prints where it listens; everything it prints is kept (and drained, so that a full
    // pipe never blocks it).
    let log = Arc::new(Mutex::new(String::new()));
    let (addrs, mut found) = tokio::sync::mpsc::unbounded_channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let (log, addrs) = (log.clone(), addrs.clone());
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                for prefix in ["chorus REST API", "chorus WebSocket"] {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        let _ = addrs.send((prefix, rest.trim().to_string()));
                    }
                }
                let mut log = log.lock().unwrap();
                if log.len() < 100_000 {
                    log.push_str(&line);
                    log.push('\n');
                }
            }
        });
    }
    let (mut api, mut ws) = (None, None);
    while api.is_none() || ws.is_none() {
        match tokio::time::timeout(Duration::from_secs(30), found.recv()).await {
            Ok(Some(("chorus REST API", url))) => api = Some(url),
            Ok(Some((_, url))) => {
                ws = Some(
                    url.trim_start_matches("ws://")
                        .parse::<SocketAddr>()
                        .expect("ws address"),
                )
            }
            _ => panic!(
                "the node did not say where it listens:\n{}",
                log.lock().unwrap()
            ),
        }
    }
    Node {
        child,
        api: Api::new(&api.unwrap()),
        ws: ws.unwrap(),
        data_dir,
        log,
    }
}

/// Runs a scenario with a deadline, failing with the node's output.
async fn scenario(node: &Node, run: impl Future<Output = anyhow::Result<Value>>) -> Value {
    match tokio::time::timeout(SCENARIO_TIMEOUT, run).await {
        Ok(Ok(result)) => result,
        Ok(Err(err)) => panic!(
            "scenario failed: {err:#}\nnode:\n{}",
            node.log.lock().unwrap()
        ),
        Err(_) => panic!("scenario timed out\nnode:\n{}", node.log.lock().unwrap()),
    }
}

fn n(result: &Value, field: &str) -> u64 {
    result[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no `{field}` in {result:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_delivers_everything_once_in_order() {
    let node = start_node().await;
    let args = fanout::Args {
        channels: 2,
        members: 10,
        users_per_channel: 2,
        publishers: 3,
        rate: 60,
        duration_secs: 2,
        ..Default::default()
    };
    let result = scenario(&node, fanout::run(&node.api, node.ws, args)).await;
    assert!(n(&result, "sent") > 0, "{result:#}");
    assert_eq!(n(&result, "acked"), n(&result, "sent"), "{result:#}");
    assert_eq!(n(&result, "receivers_connected"), 20, "{result:#}");
    assert_eq!(
        n(&result, "expected_deliveries"),
        n(&result, "acked") * 10,
        "{result:#}"
    );
    assert_eq!(
        n(&result, "received_deliveries"),
        n(&result, "expected_deliveries"),
        "{result:#}"
    );
    for zero in [
        "lost",
        "duplicates",
        "order_violations",
        "unacked_deliveries",
        "foreign_deliveries",
        "receivers_closed_early",
    ] {
        assert_eq!(n(&result, zero), 0, "{zero}: {result:#}");
    }
    assert_eq!(
        result["send_to_receipt_ms"]["count"],
        result["received_deliveries"]
    );
    let page = plot::html(&result).expect("fanout results plot");
    assert!(page.contains("<svg"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_runs_its_kill_and_restart_commands_and_measures_each_kill() {
    let node = start_node().await;
    // One node cannot lose a leader and live: the "kill" here kills nothing, so each window is
    // only the spacing of acknowledgements — the harness is exercised, not the failover.
    let marker = node.data_dir.join("restarted");
    let args = failover::Args {
        channels: 4,
        publishers: 2,
        rate: 100,
        size: 100,
        kills: 2,
        every_secs: 2,
        warmup_secs: 1,
        kill_cmd: "echo node-x".into(),
        restart_cmd: format!("echo >> {} ", marker.display()),
        spread: Default::default(),
    };
    let result = scenario(&node, failover::run(&node.api, node.ws, args)).await;
    assert_eq!(n(&result, "kills"), 2, "{result:#}");
    assert_eq!(n(&result, "acked"), n(&result, "sent"), "{result:#}");
    assert_eq!(n(&result, "never_recovered"), 0, "{result:#}");
    assert_eq!(result["victims"], serde_json::json!(["node-x", "node-x"]));
    let restarts = std::fs::read_to_string(&marker).unwrap();
    assert_eq!(restarts.lines().collect::<Vec<_>>(), ["node-x", "node-x"]);
    let p99 = result["unavailability_ms"]["p99"].as_f64().unwrap();
    assert!(p99 > 0.0 && p99 < 1_000.0, "{result:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_resumes_everyone_without_missing_or_repeating() {
    let node = start_node().await;
    let args = storm::Args {
        connections: 60,
        channels: 2,
        users: 4,
        rate: 40,
        before_secs: 1,
        after_secs: 1,
        ..Default::default()
    };
    let result = scenario(&node, storm::run(&node.api, node.ws, args)).await;
    assert_eq!(n(&result, "connections_open"), 60, "{result:#}");
    assert_eq!(n(&result, "resumed"), 60, "{result:#}");
    assert!(n(&result, "acked") > 0, "{result:#}");
    for zero in [
        "clients_failed",
        "missed",
        "duplicated",
        "unacked_seqs_below_final",
    ] {
        assert_eq!(n(&result, zero), 0, "{zero}: {result:#}");
    }
    assert_eq!(
        n(&result, "events_live")
            + n(&result, "events_replayed")
            + n(&result, "events_fetched_after_resync"),
        n(&result, "expected_events"),
        "{result:#}"
    );
    assert_eq!(result["resume_ms"]["count"], 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_changes_reach_every_follower_once() {
    let node = start_node().await;
    let args = presence::Args {
        users: 12,
        follow: 3,
        rates: vec![20, 40],
        step_secs: 1,
        drain_secs: 1,
        max_p99_ms: 5_000.0,
        server_pid: node.child.id(),
        ..Default::default()
    };
    let result = scenario(&node, presence::run(&node.api, node.ws, args)).await;
    let steps = result["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 2, "{result:#}");
    for step in steps {
        let sent = step["changes_sent"].as_u64().unwrap();
        assert!(sent > 0, "{result:#}");
        assert_eq!(step["events_received"], sent * 3, "{result:#}");
        assert_eq!(step["missing"], 0, "{result:#}");
        assert_eq!(step["duplicated"], 0, "{result:#}");
        assert_eq!(step["passed"], true, "{result:#}");
    }
    assert_eq!(
        n(&result, "unexpected"),
        n(&result, "unexpected_before_changes")
    );
    assert_eq!(n(&result, "closed_early"), 0, "{result:#}");
    assert!(n(&result, "server_rss_subscribed_bytes") > 0, "{result:#}");
    assert!(result["sustained_events_per_sec"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_are_right() {
    let node = start_node().await;
    let args = history::Args {
        concurrency: 8,
        duration_secs: 2,
        messages: 300,
        seed_connections: 3,
        users: 2,
        ..Default::default()
    };
    let result = scenario(&node, history::run(&node.api, node.ws, args)).await;
    assert!(n(&result, "requests_ok") > 0, "{result:#}");
    assert_eq!(n(&result, "errors"), 0, "{result:#}");
    assert_eq!(n(&result, "bad_pages"), 0, "{result:#}");
    assert!(plot::html(&result).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_in_process_and_over_workers() {
    let node = start_node().await;
    let server_pid = node.child.id();
    let args = hold::Args {
        connections: 30,
        users: 3,
        hold_secs: 1,
        server_pids: server_pid.into_iter().collect(),
        settle_secs: 0,
        ..Default::default()
    };
    let result = scenario(&node, hold::run(&node.api, node.ws, args)).await;
    assert_eq!(n(&result, "connections_open"), 30, "{result:#}");
    assert_eq!(n(&result, "dropped_while_holding"), 0, "{result:#}");
    assert!(result["server_rss_after_bytes"].is_u64(), "{result:#}");

    // The workers are the real binary, re-executed as `hold-worker`; after the idle hold, posts
    // reach every held connection in every worker.
    let args = hold::Args {
        connections: 41,
        users: 3,
        hold_secs: 1,
        workers: 2,
        worker_exe: Some(env!("CARGO_BIN_EXE_loadtest").into()),
        server_pids: server_pid.into_iter().collect(),
        settle_secs: 0,
        publish_per_sec: 20.0,
        publish_secs: 1,
        drain_secs: 2,
        ..Default::default()
    };
    let result = scenario(&node, hold::run(&node.api, node.ws, args)).await;
    assert_eq!(n(&result, "workers"), 2, "{result:#}");
    assert_eq!(n(&result, "connections_open"), 41, "{result:#}");
    assert_eq!(n(&result, "connection_failures"), 0, "{result:#}");
    assert_eq!(result["handshake_plus_identify_ms"]["count"], 41);
    assert_eq!(
        result["servers"].as_array().map(Vec::len),
        Some(1),
        "{result:#}"
    );
    let fanout = &result["fanout"];
    assert_eq!(n(fanout, "posted"), 20, "{result:#}");
    assert_eq!(n(fanout, "deliveries"), 20 * 41, "{result:#}");
    assert_eq!(n(fanout, "lost"), 0, "{result:#}");
    assert_eq!(fanout["post_to_delivery_ms"]["count"], 20 * 41);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_measures_every_message() {
    let node = start_node().await;
    let args = latency::Args {
        messages: 20,
        interval_ms: 1,
        ..Default::default()
    };
    let result = scenario(&node, latency::run(&node.api, node.ws, args)).await;
    assert_eq!(result["send_to_receipt_ms"]["count"], 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_delivers_every_acked_message_once_and_signed() {
    // Its own configuration: deliveries to the sink on 127.0.0.1 need loopback allowed.
    let node = start_node_with("bench-webhooks.toml").await;
    let args = webhooks::Args {
        channels: 2,
        messages: 200,
        concurrency: 4,
        grace_ms: 300,
        ..Default::default()
    };
    let result = scenario(&node, webhooks::run(&node.api, args)).await;
    assert_eq!(n(&result, "acked"), 200, "{result:#}");
    assert_eq!(n(&result, "received"), 200, "{result:#}");
    assert_eq!(result["clean"], true, "{result:#}");
    assert_eq!(result["latency_after_ack_ms"]["count"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_samples_the_server_and_loses_nothing_across_churn() {
    let node = start_node().await;
    let args = soak::Args {
        connections: 30,
        channels: 2,
        users: 3,
        publishers: 2,
        rate: 30,
        duration_secs: 4,
        churn_every_secs: 1,
        churn_fraction: 0.2,
        history_readers: 2,
        history_every_ms: 200,
        server_pid: node.child.id(),
        sample_secs: 1,
        warmup_secs: 0,
        ..Default::default()
    };
    let result = scenario(&node, soak::run(&node.api, node.ws, args)).await;
    assert_eq!(n(&result, "connections_open"), 30, "{result:#}");
    assert!(n(&result, "acked") > 0, "{result:#}");
    assert!(n(&result, "churned") > 0, "{result:#}");
    assert_eq!(n(&result, "resumes"), n(&result, "churned"), "{result:#}");
    assert!(n(&result, "history_reads") > 0, "{result:#}");
    for zero in [
        "lost",
        "duplicates",
        "errors",
        "clients_failed",
        "unacked_seqs_below_final",
    ] {
        assert_eq!(n(&result, zero), 0, "{zero}: {result:#}");
    }
    assert_eq!(
        n(&result, "deliveries"),
        n(&result, "expected_deliveries"),
        "{result:#}"
    );
    // Sampled every second, plus once at the end.
    assert!(n(&result, "samples_taken") >= 3, "{result:#}");
    assert!(n(&result, "rss_peak_bytes") >= n(&result, "rss_start_bytes"));
    assert!(
        n(&result, "fds_end") > 30,
        "the server holds the connections: {result:#}"
    );
    assert!(result["rss_slope_bytes_per_min"].is_f64(), "{result:#}");
    let page = plot::html(&result).expect("soak results plot");
    assert!(page.contains("resident memory"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ramp_steps_up_and_reports_the_last_step_that_passed() {
    let node = start_node().await;
    let args = capacity::Args {
        channels: 2,
        members: 5,
        users_per_channel: 2,
        publishers: 2,
        start_rate: 20,
        growth: 2.0,
        max_steps: 3,
        step_secs: 1,
        // Generous: at this scale every step passes, even in a debug build.
        max_p99_ms: 5_000.0,
        ..Default::default()
    };
    let result = scenario(&node, capacity::run(&node.api, node.ws, args)).await;
    let steps = result["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 3, "{result:#}");
    for step in steps {
        assert_eq!(step["passed"], true, "{result:#}");
        assert_eq!(step["lost"], 0, "{result:#}");
        assert_eq!(step["duplicates"], 0, "{result:#}");
        assert_eq!(
            step["received_deliveries"], step["expected_deliveries"],
            "{result:#}"
        );
    }
    assert_eq!(steps[2]["rate_msg_s"], 80.0, "{result:#}");
    assert_eq!(result["capacity"]["step"], 2, "{result:#}");
    assert!(report::steps_table(&result).is_some());
    let page = plot::html(&result).expect("ramp results plot");
    assert!(page.contains("by step"));
}
