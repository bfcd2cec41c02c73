//! The REST API (axum): accounts, workspaces, channels and history, with an OpenAPI document.
//!
//! Requests enter through [`router`]; handlers (in `routes/`) read and write the metadata store
//! and read the message store. The API never writes messages: that is the channel service's job.
//! Every error is a JSON body with a status code (`error.rs`); no request can panic the server.

mod error;
mod extract;
mod openapi;
mod rate_limit;
mod routes;
mod views;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use chorus_core::auth::Authenticator;
use chorus_core::{MessageStore, MetadataStore};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

pub use error::{ApiError, ErrorBody};

use chorus_cluster::rate_limit::RateLimitStore;

use crate::rate_limit::Limiters;

/// Largest accepted request body.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the API needs.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn MetadataStore>,
    pub messages: Arc<dyn MessageStore>,
    pub auth: Authenticator,
    pub limits: ApiLimits,
    /// Where rate-limit counters live (this process, or Redis shared by every API node).
    pub rate_limits: Arc<dyn RateLimitStore>,
}

/// Rate limits of the credential endpoints.
#[derive(Clone, Debug)]
pub struct ApiLimits {
    pub login_per_minute_per_ip: u32,
    pub login_per_minute_per_account: u32,
    pub register_per_minute_per_ip: u32,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            login_per_minute_per_ip: 20,
            login_per_minute_per_account: 10,
            register_per_minute_per_ip: 10,
        }
    }
}

/// The handlers' state: the dependencies plus the limiters built from them.
#[derive(Clone)]
pub(crate) struct AppState {
    api: Arc<ApiState>,
    limiters: Arc<Limiters>,
}

/// Every route, with the state applied.
pub fn router(state: ApiState) -> Router {
    let limiters = Limiters::new(state.rate_limits.as_ref(), &state.limits);
    let state = AppState {
        api: Arc::new(state),
        limiters: Arc::new(limiters),
    };
    Router::new()
        .route("/healthz", get(health))
        .route("/openapi.json", get(openapi_json))
        .route("/v1/auth/register", post(routes::auth::register))
        .route("/v1/auth/login", post(routes::auth::login))
        .route("/v1/auth/refresh", post(routes::auth::refresh))
        .route("/v1/auth/logout", post(routes::auth::logout))
        .route("/v1/users/me", get(routes::auth::me))
        .route(
            "/v1/workspaces",
            post(routes::workspaces::create).get(routes::workspaces::list),
        )
        .route(
            "/v1/workspaces/{workspace_id}/members",
            post(routes::workspaces::add_member),
        )
        .route(
            "/v1/workspaces/{workspace_id}/channels",
            post(routes::workspaces::create_channel).get(routes::workspaces::list_channels),
        )
        .route(
            "/v1/channels/{channel_id}/join",
            post(routes::channels::join),
        )
        .route(
            "/v1/channels/{channel_id}/messages",
            get(routes::channels::history),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// The OpenAPI document of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::ApiDoc::openapi()
}

#[utoipa::path(get, path = "/healthz", tag = "auth",
    responses((status = 200, description = "The node is serving", body = views::Health)))]
pub(crate) async fn health() -> Json<views::Health> {
    Json(views::Health { status: "ok" })
}

async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi())
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}
