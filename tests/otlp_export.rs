//! Span export to an OpenTelemetry collector: the binary, started with `--otlp-endpoint`, sends
//! OTLP/HTTP protobuf to a local collector stand-in, and one REST request is one trace — the
//! request's span, the channel commit under it, and the store read of a history page under its own.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

/// A collector stand-in: accepts `POST /v1/traces` and hands each decoded batch's spans on.
async fn collector() -> (String, mpsc::UnboundedReceiver<Vec<Span>>) {
    async fn traces(
        State(spans): State<mpsc::UnboundedSender<Vec<Span>>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        if headers["content-type"] != "application/x-protobuf" {
            return StatusCode::UNSUPPORTED_MEDIA_TYPE;
        }
        let Ok(request) = ExportTraceServiceRequest::decode(body) else {
            return StatusCode::BAD_REQUEST;
        };
        let batch = request
            .resource_spans
            .into_iter()
            .flat_map(|resource| resource.scope_spans)
            .flat_map(|scope| scope.spans)
            .collect();
        let _ = spans.send(batch);
        StatusCode::OK
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(traces))
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (endpoint, rx)
}

/// A span's string attribute.
fn attribute(span: &Span, key: &str) -> Option<String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    span.attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .and_then(
            |attribute| match attribute.value.as_ref()?.value.as_ref()? {
                Value::StringValue(text) => Some(text.clone()),
                _ => None,
            },
        )
}

/// A span named `child` whose parent is the span of a `method` REST request: (child, request).
fn chain(spans: &[Span], child: &str, method: &str) -> Option<(Span, Span)> {
    let by_id: HashMap<&[u8], &Span> = spans.iter().map(|s| (s.span_id.as_slice(), s)).collect();
    spans
        .iter()
        .filter(|span| span.name == child)
        .find_map(|span| {
            let parent = by_id.get(span.parent_span_id.as_slice())?;
            (parent.name == "request" && attribute(parent, "method").as_deref() == Some(method))
                .then(|| (span.clone(), (*parent).clone()))
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_request_is_one_trace_down_to_the_channel_commit_and_the_store() {
    let (endpoint, mut batches) = collector().await;
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args([
            "serve",
            "--api-addr",
            "127.0.0.1:0",
            "--ws-addr",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--otlp-endpoint")
        .arg(&endpoint)
        // The SDK's standard setting: export every 100 ms instead of every 5 s.
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("CHORUS_JWT_SECRET", "otlp-export-secret-otlp-export-secret")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut api = None;
    while let Some(line) = stdout.next_line().await.unwrap() {
        if let Some(addr) = line.strip_prefix("chorus REST API   http://") {
            api = Some(addr.to_string());
            break;
        }
    }
    let rest = common::Rest {
        base: format!("http://{}", api.expect("the node printed its REST address")),
        http: reqwest::Client::new(),
    };
    let (_, alice) = rest.user("alice").await;
    let (_, channel) = rest.team(&alice, &[]).await;
    let messages = format!("/v1/channels/{channel}/messages");
    let (status, body) = rest
        .post(
            &messages,
            Some(&alice),
            json!({"text": "traced", "nonce": "t-1"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = rest.get(&messages, &alice).await;
    assert_eq!(status, 200, "{body}");

    // Collect spans until both chains are there.
    let mut spans = Vec::new();
    let chains = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            spans.extend(batches.recv().await.expect("the collector runs"));
            if let (Some(post), Some(read)) = (
                chain(&spans, "channel_commit", "POST"),
                chain(&spans, "store", "GET"),
            ) {
                return (post, read);
            }
        }
    })
    .await;
    let Ok(((commit, post), (store, get))) = chains else {
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
        panic!("no request → channel_commit and request → store chains among {names:?}");
    };
    assert_eq!(attribute(&store, "store").as_deref(), Some("messages"));
    assert_eq!(commit.trace_id, post.trace_id, "one trace per request");
    assert_eq!(store.trace_id, get.trace_id, "one trace per request");
    assert_ne!(post.trace_id, get.trace_id, "two requests, two traces");
    let _ = child.kill().await;
}
