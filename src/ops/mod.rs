//! The ops listener (`ops_addr`): `GET /metrics` (Prometheus text format), `GET /livez` and
//! `GET /readyz`, on every kind of process — embedded node, channel node, gateway, API.
//!
//! It is a listener of its own so that it can stay private (scraped by Prometheus, asked by a
//! load balancer) while the API and gateway face clients, and so that a channel node, which has
//! no HTTP listener otherwise, is watched the same way. It keeps answering while the process
//! drains (`/readyz` then says so) and stops last.

pub mod metrics;
pub(crate) mod readiness;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub(crate) use readiness::Readiness;

struct OpsState {
    metrics: PrometheusHandle,
    readiness: Readiness,
}

fn router(state: Arc<OpsState>) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn render_metrics(State(state): State<Arc<OpsState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// The process runs and its runtime answers; nothing else is asked (a restart would not help a
/// store outage, so liveness never depends on one).
async fn livez() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<Arc<OpsState>>) -> impl IntoResponse {
    let report = state.readiness.report().await;
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if report.ready { "ready" } else { "not_ready" },
        "checks": report.checks,
        "not_ready": report.not_ready,
    });
    (status, Json(body))
}

/// A running ops listener.
pub(crate) struct OpsServer {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
}

impl OpsServer {
    /// Listens on `addr` and serves until [`OpsServer::stop`].
    pub async fn start(addr: SocketAddr, readiness: Readiness) -> anyhow::Result<Self> {
        use anyhow::Context;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (ops_addr)"))?;
        let addr = listener.local_addr()?;
        let state = Arc::new(OpsState {
            metrics: metrics::install(),
            readiness,
        });
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(
            axum::serve(listener, router(state))
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .into_future(),
        );
        Ok(OpsServer { addr, stop, task })
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Ok(Err(err)) = self.task.await {
            tracing::warn!(role = "ops", error = %err, "stopped with an error");
        }
    }
}
