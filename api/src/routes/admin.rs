//! Operator actions, authorised by the node's `admin_token` (never by a user's token): disabling
//! and re-enabling accounts. A disabled user cannot log in, loses every session at once, and their
//! WebSockets close with 4100 within moments.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chorus_cluster::access::AccessNotice;
use chrono::Utc;
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::AppState;
use crate::audit::{self, Audit};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::PathParams;

/// The header carrying the operator token.
pub const ADMIN_TOKEN_HEADER: &str = "x-chorus-admin-token";

/// Checks the operator token; 404 when the node has none (the routes do not exist then).
fn authorise(state: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    authorise_operator(state.api.admin_token.as_deref(), headers)
}

/// Checks `headers` for the operator token `expected`; 404 when there is none (operator routes
/// do not exist then). Public for the operator routes the binary adds (`chorus backup`).
pub fn authorise_operator(expected: Option<&str>, headers: &HeaderMap) -> ApiResult<()> {
    let Some(expected) = expected else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such route",
        ));
    };
    let given = headers
        .get(ADMIN_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // Compare digests so the time taken says nothing about how much of the token matched.
    if Sha256::digest(given.as_bytes()) != Sha256::digest(expected.as_bytes()) {
        return Err(ApiError::unauthenticated(
            "unauthenticated",
            "missing or wrong operator token",
        ));
    }
    Ok(())
}

async fn set_disabled(
    state: AppState,
    headers: HeaderMap,
    user_id: Uuid,
    disabled: bool,
) -> ApiResult<StatusCode> {
    authorise(&state, &headers)?;
    let store = &state.api.store;
    if store.user(user_id).await?.is_none() {
        return Err(ApiError::not_found("user"));
    }
    store
        .set_user_disabled(user_id, disabled.then(Utc::now))
        .await?;
    if disabled {
        state
            .api
            .access
            .notify(AccessNotice::Sessions {
                user_id,
                session_id: None,
            })
            .await;
    }
    for (workspace, _) in store.workspaces_of(user_id).await? {
        audit::record(
            &state,
            Audit {
                workspace_id: Some(workspace.id),
                actor_id: None,
                action: if disabled {
                    "user_disabled"
                } else {
                    "user_enabled"
                },
                target_id: Some(user_id),
                details: json!({"by": "operator"}),
            },
        )
        .await;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/admin/users/{user_id}/disable", tag = "admin",
    params(("user_id" = Uuid, Path, description = "User id"),
           ("x-chorus-admin-token" = String, Header, description = "The node's admin_token")),
    responses(
        (status = 204, description = "Disabled: every session revoked, WebSockets closed with 4100, login refused"),
        (status = 401, description = "`unauthenticated`: missing or wrong operator token", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user, or no admin_token configured", body = ErrorBody),
    ))]
pub async fn disable_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    PathParams(user_id): PathParams<Uuid>,
) -> ApiResult<StatusCode> {
    set_disabled(state, headers, user_id, true).await
}

#[utoipa::path(post, path = "/v1/admin/users/{user_id}/enable", tag = "admin",
    params(("user_id" = Uuid, Path, description = "User id"),
           ("x-chorus-admin-token" = String, Header, description = "The node's admin_token")),
    responses(
        (status = 204, description = "Enabled: the user may log in again"),
        (status = 401, description = "`unauthenticated`: missing or wrong operator token", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user, or no admin_token configured", body = ErrorBody),
    ))]
pub async fn enable_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    PathParams(user_id): PathParams<Uuid>,
) -> ApiResult<StatusCode> {
    set_disabled(state, headers, user_id, false).await
}
