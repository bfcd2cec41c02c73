//! What an SRE watches: `/metrics` moves with real traffic and every series is documented,
//! `/livez` and `/readyz` answer (and readiness names what is missing when PostgreSQL goes away
//! or the node drains), the request log writes one JSON line per REST request and WebSocket
//! connection with the client behind a trusted proxy, and a `rediss://` URL is refused.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chorus_core::testing;
use chorus_protocol::{ClientFrame, ServerFrame};
use common::{Client, TestNode};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Every sample of a Prometheus text exposition, keyed by `name{labels}` as written.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The sum of every sample of `name` whose labels contain each of `labels` (`key="value"`).
fn sum(samples: &HashMap<String, f64>, name: &str, labels: &[&str]) -> f64 {
    samples
        .iter()
        .filter(|(series, _)| {
            let (series_name, rest) = series.split_once('{').unwrap_or((series.as_str(), ""));
            series_name == name && labels.iter().all(|l| rest.contains(l))
        })
        .map(|(_, v)| v)
        .sum()
}

async fn scrape(node: &TestNode) -> (String, HashMap<String, f64>) {
    let ops = node
        .node
        .as_ref()
        .unwrap()
        .ops_addr
        .expect("tests enable ops_addr");
    let response = reqwest::get(format!("http://{ops}/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let parsed = samples(&text);
    (text, parsed)
}

async fn readyz(node: &TestNode) -> (u16, Value) {
    let ops = node.node.as_ref().unwrap().ops_addr.unwrap();
    let response = reqwest::get(format!("http://{ops}/readyz")).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_with_traffic_and_every_series_is_documented() {
    let node = TestNode::start().await;
    let (_, before) = scrape(&node).await;

    // Traffic: REST sign-ups and a team, a WebSocket subscriber and a sender, a REST read.
    let (_, alice) = node.user("alice").await;
    let (_, bob) = node.user("bob").await;
    let (_, channel) = node.team(&alice, &[&bob]).await;
    let (mut bob_ws, _) = Client::identify(node.ws(), &bob).await;
    bob_ws
        .send(&ClientFrame::Subscribe {
            channel_id: channel,
            since_seq: None,
        })
        .await;
    bob_ws
        .wait_for(|f| matches!(f, ServerFrame::Subscribed { .. }))
        .await;
    let (mut alice_ws, _) = Client::identify(node.ws(), &alice).await;
    alice_ws.post(channel, "m1", "hello metrics").await;
    bob_ws
        .wait_for(|f| matches!(f, ServerFrame::Message(m) if m.channel_id == channel))
        .await;
    let (status, _) = node
        .get(&format!("/v1/channels/{channel}/messages"), &bob)
        .await;
    assert_eq!(status, 200);

    let (text, after) = scrape(&node).await;
    let moved = |name: &str, labels: &[&str]| {
        let (b, a) = (sum(&before, name, labels), sum(&after, name, labels));
        assert!(a > b, "{name}{labels:?} did not move: {b} -> {a}\n{text}");
    };
    moved("chorus_gateway_connections_accepted_total", &[]);
    moved("chorus_gateway_handshake_seconds_count", &[]);
    moved("chorus_gateway_frames_received_total", &[r#"type="send""#]);
    moved(
        "chorus_gateway_frames_received_total",
        &[r#"type="subscribe""#],
    );
    moved("chorus_gateway_frames_sent_total", &[r#"kind="event""#]);
    moved("chorus_gateway_deliveries_total", &[]);
    moved("chorus_gateway_acks_total", &[r#"result="ok""#]);
    moved("chorus_gateway_ack_seconds_count", &[]);
    moved("chorus_channel_batch_events_count", &[]);
    moved("chorus_raft_commit_seconds_count", &[]);
    moved("chorus_bus_published_total", &[r#"bus="local""#]);
    moved(
        "chorus_store_operation_seconds_count",
        &[r#"backend="redb""#, r#"operation="append_replayable""#],
    );
    moved(
        "chorus_http_requests_total",
        &[
            r#"method="POST""#,
            r#"route="/v1/auth/register""#,
            r#"status="201""#,
        ],
    );
    moved(
        "chorus_http_request_duration_seconds_count",
        &[r#"route="/v1/channels/{channel_id}/messages""#],
    );
    assert!(sum(&after, "chorus_raft_term", &[r#"group="chorus-channels""#]) >= 1.0);
    assert!(
        sum(
            &after,
            "chorus_raft_is_leader",
            &[r#"group="chorus-channels""#]
        ) >= 1.0
    );
    assert!(sum(&after, "chorus_gateway_connections_open", &[]) >= 2.0);

    // Labels are bounded: no user or channel id ever appears in a series.
    assert!(
        !text.contains(&channel.to_string()),
        "a channel id in a label"
    );

    // Every series exported is in the runbook.
    let runbook = std::fs::read_to_string("docs/OPERATIONS.md").unwrap();
    for series in after.keys() {
        let name = series.split('{').next().unwrap();
        let base = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|base| runbook.contains(&format!("`{base}`")))
            .unwrap_or(name);
        assert!(
            runbook.contains(&format!("`{base}`")),
            "{base} is not documented in docs/OPERATIONS.md"
        );
    }
    node.shutdown().await;
}

/// The `chorus_*` names a file mentions, less the histogram suffixes.
fn metric_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("chorus_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let name = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        names.push(name.to_string());
        rest = &tail[end..];
    }
    names
}

#[test]
fn the_alert_rules_and_the_dashboard_use_only_documented_metrics() {
    let runbook = std::fs::read_to_string("docs/OPERATIONS.md").unwrap();
    for file in [
        "deploy/prometheus/alerts.yml",
        "deploy/grafana/dashboards/chorus.json",
    ] {
        let names = metric_names(&std::fs::read_to_string(file).unwrap());
        assert!(!names.is_empty(), "{file} uses no metric");
        for name in names {
            assert!(
                runbook.contains(&format!("`{name}`")),
                "{file} uses {name}, which docs/OPERATIONS.md does not document"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn livez_and_readyz_answer_and_readyz_says_draining_during_shutdown() {
    let node = TestNode::start().await;
    let ops = node.node.as_ref().unwrap().ops_addr.unwrap();
    let live = reqwest::get(format!("http://{ops}/livez")).await.unwrap();
    assert_eq!(live.status(), 200);

    let (status, body) = readyz(&node).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    for check in ["metadata_store", "message_store", "channel_service"] {
        assert_eq!(body["checks"][check], "ok", "{body}");
    }

    // A client that never reads keeps the gateway draining for a moment; meanwhile the ops
    // listener still answers, and says why the node is not ready.
    let (_, alice) = node.user("alice").await;
    let (_client, _) = Client::identify(node.ws(), &alice).await;
    let poll = tokio::spawn(async move {
        loop {
            if let Ok(response) = reqwest::get(format!("http://{ops}/readyz")).await
                && response.status() == 503
            {
                return response.json::<Value>().await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    node.shutdown().await;
    let body = tokio::time::timeout(Duration::from_secs(1), poll)
        .await
        .expect("readyz answered 503 while draining")
        .unwrap();
    assert_eq!(body["status"], "not_ready");
    assert!(
        body["not_ready"][0]
            .as_str()
            .unwrap()
            .starts_with("draining"),
        "{body}"
    );
}

/// A TCP relay to PostgreSQL that the test can cut, as if the database went away.
struct Relay {
    addr: std::net::SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Relay {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let shared = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let pipe = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                shared.lock().unwrap().push(pipe);
            }
        });
        tasks.lock().unwrap().push(accept);
        Relay { addr, tasks }
    }

    /// Closes the listener and every relayed connection.
    fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_goes_false_when_postgres_is_unreachable() {
    let database = testing::fresh_database("readyz").await;
    // postgres://user@HOST:PORT/db → the relay in place of HOST:PORT.
    let (scheme_user, rest) = database.split_once('@').unwrap();
    let (server, db) = rest.split_once('/').unwrap();
    let relay = Relay::start(server.to_string()).await;
    let relayed = format!("{scheme_user}@{}/{db}", relay.addr);
    let node = TestNode::start_with(|config| config.metadata_url = Some(relayed)).await;
    let (status, body) = readyz(&node).await;
    assert_eq!(status, 200, "{body}");

    relay.cut();
    let (status, body) = readyz(&node).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not_ready");
    let reasons: Vec<&str> = body["not_ready"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(
        reasons.iter().any(|r| r.starts_with("metadata_store:")),
        "{body}"
    );
    assert_eq!(body["checks"]["message_store"], "ok", "{body}");
    node.shutdown().await;
    testing::drop_database(&database).await;
}

#[tokio::test]
async fn a_rediss_url_is_refused_at_start_instead_of_connecting_in_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = chorus::NodeConfig::for_tests(dir.path());
    config.bus_url = Some("rediss://127.0.0.1:6379".into());
    let Err(err) = chorus::Node::start(config).await else {
        panic!("a rediss:// bus must not start");
    };
    let why = format!("{err:#}");
    assert!(why.contains("rediss://") && why.contains("TLS"), "{why}");
}

/// The binary as an operator runs it: JSON logs, a trusted proxy, and the request log read back
/// from its standard error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_log_has_one_json_line_per_request_and_connection() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("chorus.toml");
    std::fs::write(
        &config,
        r#"
api_addr = "127.0.0.1:0"
ws_addr = "127.0.0.1:0"
jwt_secret = "request-log-secret-request-log-secret"
trusted_proxies = ["127.0.0.1"]
"#,
    )
    .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args(["--log-format", "json", "--config"])
        .arg(&config)
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut api, mut ws) = (None, None);
    while let Some(line) = stdout.next_line().await.unwrap() {
        if let Some(addr) = line.strip_prefix("chorus REST API   http://") {
            api = Some(addr.to_string());
        }
        if let Some(addr) = line.strip_prefix("chorus WebSocket  ws://") {
            ws = Some(addr.parse().unwrap());
            break;
        }
    }
    let rest = common::Rest {
        base: format!("http://{}", api.unwrap()),
        http: reqwest::Client::new(),
    };
    let response = rest
        .http
        .post(rest.url("/v1/auth/register"))
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-request-id", "req-42")
        .json(&serde_json::json!({"email": "log@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-request-id"], "req-42");
    let (user, token) = rest.user("carol").await;
    {
        let (_client, _) = Client::identify(ws.unwrap(), &token).await;
    }

    // Read the log until both lines are there (the connection's when it has closed).
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let (mut http_line, mut ws_line) = (None, None);
    let read = async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            let Ok(entry) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if entry["target"] != "chorus::request_log" {
                continue;
            }
            let fields = entry["fields"].clone();
            if fields["kind"] == "http" && fields["request_id"] == "req-42" {
                http_line = Some(fields);
            } else if fields["kind"] == "websocket" {
                ws_line = Some(fields);
            }
            if http_line.is_some() && ws_line.is_some() {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("both request-log lines were written");
    let http_line = http_line.unwrap();
    assert_eq!(http_line["method"], "POST");
    assert_eq!(http_line["route"], "/v1/auth/register");
    assert_eq!(http_line["status"], 201);
    assert_eq!(http_line["client"], "203.0.113.7");
    assert!(http_line["duration_ms"].as_f64().is_some());
    let ws_line = ws_line.unwrap();
    assert_eq!(ws_line["user_id"], user.to_string());
    assert_eq!(ws_line["client"], "127.0.0.1");
    assert!(ws_line["duration_ms"].as_u64().is_some());
    let _ = child.kill().await;
}

/// Starts a REST request whose body never finishes: the API holds it (a slow-loris client).
async fn hanging_request(api: std::net::SocketAddr) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut socket = tokio::net::TcpStream::connect(api).await.unwrap();
    socket
        .write_all(
            b"POST /v1/auth/register HTTP/1.1\r\nHost: chorus\r\n\
              Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":",
        )
        .await
        .unwrap();
    socket
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_sheds_requests_beyond_its_concurrency_limit() {
    let node = TestNode::start_with(|config| config.api.max_concurrent_requests = 1).await;
    let healthz = || async {
        let response = reqwest::get(node.url("/healthz")).await.unwrap();
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.unwrap())
    };
    assert_eq!(healthz().await.0, 200);

    let hanging = hanging_request(node.api()).await;
    // Once the server holds the hanging request, everything else is refused at once.
    let refused = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (status, body) = healthz().await;
            if status == 503 {
                return body;
            }
        }
    })
    .await
    .expect("a request beyond the limit is refused");
    assert_eq!(refused["error"]["code"], "overloaded");

    drop(hanging);
    let recovered = tokio::time::timeout(Duration::from_secs(10), async {
        while healthz().await.0 != 200 {}
    })
    .await;
    assert!(recovered.is_ok(), "the slot came back when the client left");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_never_finishes_is_cut_off_with_a_timeout() {
    use tokio::io::AsyncReadExt;
    let node = TestNode::start_with(|config| config.api.request_timeout_ms = 300).await;
    let mut hanging = hanging_request(node.api()).await;
    let mut response = Vec::new();
    let read = async {
        let mut chunk = [0u8; 1024];
        // Until the JSON body is complete (or the server closes).
        while !response.ends_with(b"}") {
            match hanging.read(&mut chunk).await.unwrap() {
                0 => break,
                n => response.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the server answered");
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(response.contains(r#""code":"timeout""#), "{response}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_gateway_refuses_new_sockets_with_503() {
    let node = TestNode::start_with(|config| config.gateway.max_connections = 1).await;
    let (_, token) = node.user("ada").await;
    let (_first, _) = Client::identify(node.ws(), &token).await;

    let refused = tokio_tungstenite::connect_async(format!("ws://{}/ws", node.ws())).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            assert_eq!(response.headers()["retry-after"], "5");
        }
        other => panic!("expected a 503 refusal, got {other:?}"),
    }
    node.shutdown().await;
}

/// The binary keeps its process out of transparent huge pages (src/huge_pages.rs), unless the
/// operator asks for them with mimalloc's own switch. Read from the kernel's view of the running
/// process, `THP_enabled` in /proc/PID/status.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_runs_without_transparent_huge_pages_unless_asked() {
    async fn thp_enabled(allow_thp: Option<&str>) -> Option<String> {
        let dir = tempfile::tempdir().unwrap();
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_chorus"));
        command
            .args([
                "serve",
                "--api-addr",
                "127.0.0.1:0",
                "--ws-addr",
                "127.0.0.1:0",
            ])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env_remove("MIMALLOC_ALLOW_THP")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        if let Some(value) = allow_thp {
            command.env("MIMALLOC_ALLOW_THP", value);
        }
        let mut child = command.spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        while let Some(line) = stdout.next_line().await.unwrap() {
            if line.starts_with("chorus WebSocket") {
                break;
            }
        }
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", child.id().unwrap())).unwrap();
        child.kill().await.unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("THP_enabled:"))
            .map(|value| value.trim().to_string())
    }

    let Some(by_default) = thp_enabled(None).await else {
        // Only a kernel built without transparent huge pages lacks the field: nothing to turn off.
        eprintln!("not checked: this kernel has no transparent huge pages (no THP_enabled)");
        return;
    };
    assert_eq!(by_default, "0", "huge pages must be off by default");
    assert_eq!(thp_enabled(Some("1")).await.as_deref(), Some("1"));
}
