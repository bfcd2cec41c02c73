//! Where this process's WebSocket gateway listens.
//!
//! The web client is served from the API's address, but the gateway has an address of its own
//! (`ws_addr`); a browser asks here which port to open its WebSocket on instead of guessing.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::AppState;
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::views::GatewayView;

#[utoipa::path(get, path = "/v1/gateway", tag = "auth",
    responses(
        (status = 200, description = "The port of this process's WebSocket gateway, on the same host \
                                      as the API (connect to `ws://HOST:PORT/ws`)", body = GatewayView),
        (status = 404, description = "`not_found`: this process runs no gateway (an API-only cluster process)",
         body = ErrorBody),
    ))]
pub async fn gateway(State(state): State<AppState>) -> Result<Json<GatewayView>, ApiError> {
    match state.api.gateway_port {
        Some(port) => Ok(Json(GatewayView { port, path: "/ws" })),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "this process runs no WebSocket gateway",
        )),
    }
}
