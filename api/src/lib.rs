//! The REST API (axum): accounts, workspaces, channels, direct messages, messages and history,
//! search and the audit log, with an OpenAPI document.
//!
//! Requests enter through [`router`]; handlers (in `routes/`) check permissions (`policy.rs`),
//! read and write the metadata store and read the message store. Messages, edits, deletions and
//! reactions are never written here: they are submitted to the channel service through the
//! [`ChannelRouter`], which sequences them with WebSocket sends. Changes to someone's rights are
//! announced through the [`AccessNotifier`] so gateways re-check open connections. Every error is
//! a JSON body with a status code (`error.rs`); no request can panic the server.

mod audit;
mod bot_access;
mod commands;
mod context;
mod error;
mod export;
mod extract;
mod openapi;
pub mod policy;
mod quota;
mod rate_limit;
mod request_log;
mod routes;
mod shedding;
mod stream;
mod views;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{delete, get, patch, post, put};
use chorus_cluster::ChannelRouter;
use chorus_cluster::access::AccessNotifier;
use chorus_core::auth::Authenticator;
use chorus_core::client_addr::TrustedProxies;
use chorus_core::{MessageStore, MetadataStore};
use chorus_presence::PresenceStore;
use utoipa::OpenApi;

pub use error::{ApiError, ErrorBody};
pub use quota::RateLimitQuotas;
pub use routes::admin::{ADMIN_TOKEN_HEADER, authorise_operator};
pub use stream::{SharedWatchBus, StreamLimits, Streams};

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
    /// Each workspace's messages per minute (its plan), shared with this process's gateway so
    /// REST posts and WebSocket sends count against one quota.
    pub quotas: Arc<chorus_core::limits::quota::MessageQuotas>,
    /// Sequences messages, edits, deletions and reactions posted over REST.
    pub router: Arc<dyn ChannelRouter>,
    /// Tells gateways when someone's access changed.
    pub access: Arc<dyn AccessNotifier>,
    /// Presence: custom statuses set here, read for bulk queries, announced to every gateway.
    pub presence: Arc<dyn PresenceStore>,
    /// The operator's token for `/v1/admin/*` (disabling accounts); those routes answer 404 when
    /// it is unset.
    pub admin_token: Option<String>,
    /// Proxies whose `X-Forwarded-For` names the client (request log, per-IP limits).
    pub trusted_proxies: TrustedProxies,
    /// The port of this process's WebSocket gateway (`GET /v1/gateway`), for the web client;
    /// `None` in a process that runs no gateway.
    pub gateway_port: Option<u16>,
    /// The time focus mode decides at: the wall clock, or a test's manual clock.
    pub clock: chorus_core::Clock,
    /// The Server-Sent Events streams of this process (`GET /v1/stream`); the server's shutdown
    /// must call [`Streams::close_all`] (an open stream would hold a graceful shutdown).
    pub streams: Streams,
    /// Where webhook and slash-command URLs may lead, and the client that sends to them.
    pub outbound: chorus_webhooks::resolver::Outbound,
}

/// Rate limits of the credential endpoints.
#[derive(Clone, Debug)]
pub struct ApiLimits {
    pub login_per_minute_per_ip: u32,
    pub login_per_minute_per_account: u32,
    pub register_per_minute_per_ip: u32,
    pub register_per_minute_per_account: u32,
    /// REST message posts, edits and reactions per user.
    pub writes_per_minute_per_user: u32,
    /// Requests answered at once; beyond it a request is refused at once (503 `overloaded`).
    pub max_concurrent_requests: usize,
    /// A request still unanswered after this long is abandoned (503 `timeout`); 0: no limit.
    pub request_timeout_ms: u64,
    /// How long a slash command's handler has to answer before the caller is told
    /// `command_timeout`.
    pub command_deadline_ms: u64,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            login_per_minute_per_ip: 20,
            login_per_minute_per_account: 10,
            register_per_minute_per_ip: 10,
            register_per_minute_per_account: 5,
            writes_per_minute_per_user: 600,
            max_concurrent_requests: 1_024,
            request_timeout_ms: 30_000,
            command_deadline_ms: 3_000,
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
    // Router::layer wraps each route on its own: the limit is a global one so that every route
    // shares the same permits.
    let shedding = tower::ServiceBuilder::new()
        .layer(axum::error_handling::HandleErrorLayer::new(
            |err: axum::BoxError| async move { shedding::refusal(err) },
        ))
        .layer(tower::load_shed::LoadShedLayer::new())
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            state.limits.max_concurrent_requests.max(1),
        ))
        .layer(tower::timeout::TimeoutLayer::new(
            shedding::timeout_from_ms(state.limits.request_timeout_ms),
        ));
    let state = AppState {
        api: Arc::new(state),
        limiters: Arc::new(limiters),
    };
    Router::new()
        .route("/healthz", get(health))
        .route("/openapi.json", get(openapi_json))
        .route("/v1/gateway", get(routes::gateway::gateway))
        .route("/v1/stream", get(routes::stream::stream))
        .merge(account_routes())
        .merge(workspace_routes())
        .merge(channel_routes())
        .merge(message_routes())
        .merge(bot_routes())
        .merge(governance_routes())
        .route(
            "/v1/admin/users/{user_id}/disable",
            post(routes::admin::disable_user),
        )
        .route(
            "/v1/admin/users/{user_id}/enable",
            post(routes::admin::enable_user),
        )
        .route(
            "/v1/admin/workspaces/{workspace_id}/limits",
            get(routes::limits::admin_get)
                .put(routes::limits::set)
                .delete(routes::limits::clear),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(shedding)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            request_log::observe,
        ))
        .with_state(state)
}

fn account_routes() -> Router<AppState> {
    use routes::{account, auth, focus, presence};
    Router::new()
        .route("/v1/auth/register", post(auth::register))
        .route("/v1/auth/login", post(auth::login))
        .route("/v1/auth/refresh", post(auth::refresh))
        .route("/v1/auth/logout", post(auth::logout))
        .route("/v1/users/me", get(auth::me).patch(account::update_profile))
        .route("/v1/users/me/password", post(account::change_password))
        .route("/v1/users/me/sessions", get(account::sessions))
        .route(
            "/v1/users/me/sessions/{session_id}",
            delete(account::revoke_session),
        )
        .route("/v1/users/{user_id}", get(account::profile))
        .route(
            "/v1/users/me/status",
            put(presence::set_status).delete(presence::clear_status),
        )
        .route("/v1/presence/query", post(presence::query))
        .route(
            "/v1/users/me/focus",
            get(focus::get).post(focus::start).delete(focus::end),
        )
        .route("/v1/users/me/focus/settings", put(focus::set_settings))
        .route("/v1/users/me/focus/digests", get(focus::digests))
        .route("/v1/users/me/focus/stats", get(focus::stats))
        .route("/v1/workspaces/{workspace_id}/focus", get(focus::team))
        .route(
            "/v1/workspaces/{workspace_id}/focus/policy",
            get(focus::get_policy)
                .put(focus::set_policy)
                .delete(focus::remove_policy),
        )
}

fn workspace_routes() -> Router<AppState> {
    use routes::{audit_log, dms, invites, members, search, workspaces};
    Router::new()
        .route(
            "/v1/workspaces",
            post(workspaces::create).get(workspaces::list),
        )
        .route(
            "/v1/workspaces/{workspace_id}",
            get(workspaces::get).patch(workspaces::rename),
        )
        .route(
            "/v1/workspaces/{workspace_id}/members",
            post(workspaces::add_member).get(members::list),
        )
        .route(
            "/v1/workspaces/{workspace_id}/members/{user_id}",
            patch(members::change_role).delete(members::remove),
        )
        .route(
            "/v1/workspaces/{workspace_id}/invites",
            post(invites::create).get(invites::list),
        )
        .route("/v1/invites/accept", post(invites::accept))
        .route(
            "/v1/workspaces/{workspace_id}/channels",
            post(workspaces::create_channel).get(workspaces::list_channels),
        )
        .route("/v1/workspaces/{workspace_id}/dms", post(dms::open))
        .route("/v1/workspaces/{workspace_id}/search", get(search::search))
        .route("/v1/workspaces/{workspace_id}/audit", get(audit_log::list))
}

fn channel_routes() -> Router<AppState> {
    use routes::{channel_members, channels};
    Router::new()
        .route(
            "/v1/channels/{channel_id}",
            get(channels::get).patch(channels::update),
        )
        .route("/v1/channels/{channel_id}/archive", post(channels::archive))
        .route(
            "/v1/channels/{channel_id}/unarchive",
            post(channels::unarchive),
        )
        .route("/v1/channels/{channel_id}/join", post(channels::join))
        .route(
            "/v1/channels/{channel_id}/leave",
            post(channel_members::leave),
        )
        .route(
            "/v1/channels/{channel_id}/members",
            get(channel_members::list).post(channel_members::add),
        )
        .route(
            "/v1/channels/{channel_id}/members/{user_id}",
            delete(channel_members::remove),
        )
        .route(
            "/v1/channels/{channel_id}/mute",
            put(channel_members::set_mute),
        )
        .route(
            "/v1/channels/{channel_id}/read",
            post(channel_members::mark_read),
        )
        .route(
            "/v1/channels/{channel_id}/notifications",
            put(routes::notifications::set_level),
        )
        .route("/v1/notifications", get(routes::notifications::list))
}

fn message_routes() -> Router<AppState> {
    use routes::{history, messages, reactions};
    Router::new()
        .route(
            "/v1/channels/{channel_id}/messages",
            get(history::history).post(messages::post),
        )
        .route("/v1/channels/{channel_id}/events", get(history::events))
        .route(
            "/v1/channels/{channel_id}/messages/{seq}",
            get(history::message)
                .patch(messages::edit)
                .delete(messages::delete),
        )
        .route(
            "/v1/channels/{channel_id}/messages/{seq}/edits",
            get(history::edits),
        )
        .route(
            "/v1/channels/{channel_id}/messages/{seq}/replies",
            get(history::replies),
        )
        .route(
            "/v1/channels/{channel_id}/messages/{seq}/reactions/{emoji}",
            put(reactions::add).delete(reactions::remove),
        )
}

fn bot_routes() -> Router<AppState> {
    use routes::{bots, commands, subscriptions, webhooks};
    Router::new()
        .route(
            "/v1/workspaces/{workspace_id}/bots",
            post(bots::create).get(bots::list),
        )
        .route(
            "/v1/bots/{bot_id}/tokens",
            post(bots::create_token).get(bots::list_tokens),
        )
        .route(
            "/v1/bots/{bot_id}/tokens/{token_id}",
            delete(bots::revoke_token),
        )
        .route(
            "/v1/channels/{channel_id}/webhooks",
            post(webhooks::create).get(webhooks::list),
        )
        .route("/v1/webhooks/{webhook_id}", delete(webhooks::delete))
        .route("/v1/hooks/{webhook_id}/{secret}", post(webhooks::deliver))
        .route(
            "/v1/workspaces/{workspace_id}/event-subscriptions",
            post(subscriptions::create).get(subscriptions::list),
        )
        .route(
            "/v1/event-subscriptions/{subscription_id}",
            get(subscriptions::get)
                .patch(subscriptions::update)
                .delete(subscriptions::delete),
        )
        .route(
            "/v1/event-subscriptions/{subscription_id}/deliveries",
            get(subscriptions::deliveries),
        )
        .route(
            "/v1/workspaces/{workspace_id}/commands",
            post(commands::register_command).get(commands::list_commands),
        )
        .route(
            "/v1/commands/{command_id}",
            delete(commands::delete_command),
        )
        .route("/v1/channels/{channel_id}/commands", post(commands::invoke))
        .route("/v1/commands/respond", post(commands::respond))
}

/// Data governance: exports, retention policies, legal holds and workspace limits (issue 16).
fn governance_routes() -> Router<AppState> {
    use routes::{export, retention};
    Router::new()
        .route("/v1/channels/{channel_id}/export", get(export::channel))
        .route(
            "/v1/workspaces/{workspace_id}/export",
            get(export::workspace),
        )
        .route(
            "/v1/workspaces/{workspace_id}/limits",
            get(routes::limits::get),
        )
        .route(
            "/v1/workspaces/{workspace_id}/retention",
            get(retention::get).put(retention::set),
        )
        .route(
            "/v1/channels/{channel_id}/legal-hold",
            get(retention::get_hold).put(retention::set_hold),
        )
}

/// Serves the API on `listener` until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let streams = state.streams.clone();
    let shutdown = async move {
        shutdown.await;
        streams.close_all();
    };
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
