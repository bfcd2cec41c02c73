//! The webhook endpoint of a `webhooks` run: an HTTP server on 127.0.0.1 that checks each
//! delivery's signature, notes its channel, `seq` and arrival time, and answers 200 (after
//! `delay`, to play a slow receiver) or 401 when the signature is wrong.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde::Deserialize;
use uuid::Uuid;

use super::signature::verified;
use super::tally::Arrival;

/// The path the subscription names.
pub const PATH: &str = "/hook";

/// What the sink has seen; shared with the handler.
pub struct Sink {
    /// The subscription's secret, known once the subscription exists (which needs the sink's
    /// address first). Nothing is delivered before it is set.
    secret: OnceLock<String>,
    delay: Duration,
    arrivals: Mutex<Vec<Arrival>>,
    bad_signatures: AtomicU64,
}

/// The fields of a delivery's body the sink reads.
#[derive(Deserialize)]
struct Body {
    channel_id: Uuid,
    seq: u64,
}

impl Sink {
    pub fn set_secret(&self, secret: String) {
        // Set once per run; a second value would be a bug in the scenario.
        let _ = self.secret.set(secret);
    }

    /// A copy of the deliveries so far.
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals.lock().expect("sink lock").clone()
    }

    /// Deliveries refused for a missing, stale or wrong signature, or an unreadable body.
    pub fn bad_signatures(&self) -> u64 {
        self.bad_signatures.load(Ordering::Relaxed)
    }
}

/// Starts the sink on an ephemeral loopback port; it runs until the process ends.
pub async fn start(delay: Duration) -> anyhow::Result<(SocketAddr, Arc<Sink>)> {
    let sink = Arc::new(Sink {
        secret: OnceLock::new(),
        delay,
        arrivals: Mutex::new(Vec::new()),
        bad_signatures: AtomicU64::new(0),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route(PATH, post(receive))
        .with_state(sink.clone());
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            eprintln!("webhook sink stopped: {error}");
        }
    });
    Ok((addr, sink))
}

async fn receive(State(sink): State<Arc<Sink>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let signed = match (
        sink.secret.get(),
        header("x-chorus-timestamp"),
        header("x-chorus-signature"),
    ) {
        (Some(secret), Some(timestamp), Some(signature)) => {
            verified(secret, timestamp, &body, signature, now)
        }
        _ => false,
    };
    let parsed = serde_json::from_slice::<Body>(&body).ok();
    let Some(parsed) = parsed.filter(|_| signed) else {
        sink.bad_signatures.fetch_add(1, Ordering::Relaxed);
        return StatusCode::UNAUTHORIZED;
    };
    sink.arrivals.lock().expect("sink lock").push(Arrival {
        key: (parsed.channel_id, parsed.seq),
        at,
    });
    if !sink.delay.is_zero() {
        tokio::time::sleep(sink.delay).await;
    }
    StatusCode::OK
}
