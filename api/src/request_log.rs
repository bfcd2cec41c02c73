//! The API's outermost layer: one request id, one tracing span, one metrics sample and one line
//! in the request log per REST request.
//!
//! The request id is the caller's `X-Request-Id` when it sends a sane one, else a fresh UUID; it
//! is echoed in the response and is a field of the `request` span, so every log line written
//! while the request runs (store errors, channel-service refusals) carries it. The log line
//! (target `chorus::request_log`) names the method, the route *template* (never the ids in the
//! path), the status, the duration, the authenticated user when there is one, and the client
//! address — behind a trusted proxy, the one it forwarded (`chorus_core::client_addr`).
//! Metrics are labelled by method, route template and status: bounded sets.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;
use uuid::Uuid;

use crate::AppState;

/// Where the `Caller` extractor leaves the authenticated user for the log line.
#[derive(Clone, Default)]
pub(crate) struct UserSlot(pub Arc<OnceLock<Uuid>>);

/// The request's client address, for per-IP limits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClientAddr(pub IpAddr);

const REQUEST_ID: &str = "x-request-id";

/// The caller's request id if it is short printable ASCII (it is logged and echoed).
fn accepted_request_id(value: Option<&HeaderValue>) -> Option<String> {
    let value = value?.to_str().ok()?;
    let sane =
        !value.is_empty() && value.len() <= 64 && value.bytes().all(|b| b.is_ascii_graphic());
    sane.then(|| value.to_owned())
}

pub(crate) async fn observe(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let request_id = accepted_request_id(request.headers().get(REQUEST_ID))
        .unwrap_or_else(|| Uuid::new_v4().simple().to_string());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = request.method().clone();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let forwarded = request.headers().get_all("x-forwarded-for");
    let client = state
        .api
        .trusted_proxies
        .client_addr(peer, forwarded.iter().filter_map(|v| v.to_str().ok()));
    let user = UserSlot::default();
    request.extensions_mut().insert(user.clone());
    request.extensions_mut().insert(ClientAddr(client));

    let span = tracing::info_span!("request", %request_id, %method, route = %route);
    let mut response = next.run(request).instrument(span).await;

    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let labels = [
        ("method", method.as_str().to_owned()),
        ("route", route.clone()),
        ("status", status.to_string()),
    ];
    metrics::counter!("chorus_http_requests_total", &labels).increment(1);
    metrics::histogram!("chorus_http_request_duration_seconds", &labels[..2])
        .record(elapsed.as_secs_f64());
    let user_id = user.0.get().map(|u| u.to_string());
    tracing::info!(
        target: "chorus::request_log",
        kind = "http",
        %request_id,
        %method,
        route = %route,
        status,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        user_id = user_id.as_deref(),
        client = %client,
        "request"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_request_id_is_kept_only_when_it_is_short_printable_ascii() {
        let id = |s: &str| accepted_request_id(Some(&HeaderValue::from_str(s).unwrap()));
        assert_eq!(id("abc-123").as_deref(), Some("abc-123"));
        assert_eq!(id(""), None);
        assert_eq!(id("has space"), None);
        assert_eq!(id(&"x".repeat(65)), None);
        assert_eq!(accepted_request_id(None), None);
    }
}
