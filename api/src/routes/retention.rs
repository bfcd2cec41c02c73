//! Retention policies and legal holds (issue 16): how long a workspace keeps history, and the
//! channels exempt from it. The job that applies them is the binary's (`src/retention.rs`).
//!
//! Every member may read their workspace's policy (they should know how long what they write is
//! kept); owners and admins set it, and set or lift a channel's legal hold. Both changes are
//! audited.

use axum::Json;
use axum::extract::State;
use chorus_core::retention::valid_days;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::audit::{self, Audit};
use crate::context::{ChannelContext, require, role_in};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Caller, PathParams};
use crate::policy::Action;

/// A workspace's history policy.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct RetentionPolicy {
    /// History older than this many days is deleted (1 to 36,500); `null`: kept forever.
    pub days: Option<u32>,
}

/// Whether a channel is under legal hold.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct LegalHold {
    /// While `true`, retention deletes nothing from the channel.
    pub held: bool,
}

#[utoipa::path(get, path = "/v1/workspaces/{workspace_id}/retention", tag = "retention",
    operation_id = "get_retention",
    security(("bearer" = [])),
    params(("workspace_id" = Uuid, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "The workspace's history policy", body = RetentionPolicy),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such workspace, or the caller is not in it", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(workspace_id): PathParams<Uuid>,
) -> ApiResult<Json<RetentionPolicy>> {
    role_in(&state, workspace_id, caller.user_id).await?;
    let days = state
        .api
        .store
        .retention()
        .retention_days(workspace_id)
        .await?;
    Ok(Json(RetentionPolicy { days }))
}

#[utoipa::path(put, path = "/v1/workspaces/{workspace_id}/retention", tag = "retention",
    operation_id = "set_retention",
    security(("bearer" = [])), request_body = RetentionPolicy,
    params(("workspace_id" = Uuid, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "Set; the retention job deletes what is older at its next tick (audited as `retention_policy_set`)", body = RetentionPolicy),
        (status = 400, description = "`invalid_retention`: days out of 1..=36500; `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 409, description = "`retention_exceeds_plan`: longer than the workspace plan's `max_retention_days`, or forever (`null`) under such a cap", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only owners and admins set the policy", body = ErrorBody),
        (status = 404, description = "`not_found`: no such workspace, or the caller is not in it", body = ErrorBody),
    ))]
pub async fn set(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(workspace_id): PathParams<Uuid>,
    Body(policy): Body<RetentionPolicy>,
) -> ApiResult<Json<RetentionPolicy>> {
    let role = role_in(&state, workspace_id, caller.user_id).await?;
    require(
        role,
        Action::ManageRetention,
        "only owners and admins set the retention policy",
    )?;
    let days =
        valid_days(policy.days).map_err(|why| ApiError::bad_request("invalid_retention", why))?;
    crate::routes::limits::admit_retention(&state, workspace_id, days).await?;
    state
        .api
        .store
        .retention()
        .set_retention_days(workspace_id, days)
        .await?;
    audit::record(
        &state,
        Audit {
            workspace_id: Some(workspace_id),
            actor_id: Some(caller.user_id),
            action: "retention_policy_set",
            target_id: Some(workspace_id),
            details: json!({ "days": days }),
        },
    )
    .await;
    Ok(Json(RetentionPolicy { days }))
}

#[utoipa::path(get, path = "/v1/channels/{channel_id}/legal-hold", tag = "retention",
    operation_id = "get_legal_hold",
    security(("bearer" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id")),
    responses(
        (status = 200, description = "Whether the channel is under legal hold", body = LegalHold),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only owners and admins see and set legal holds", body = ErrorBody),
        (status = 404, description = "`not_found`: no such channel, or one the caller cannot see", body = ErrorBody),
    ))]
pub async fn get_hold(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(channel_id): PathParams<Uuid>,
) -> ApiResult<Json<LegalHold>> {
    let context = ChannelContext::load(&state, channel_id, caller.user_id).await?;
    require(context.role, Action::ManageRetention, HOLD_REFUSAL)?;
    let held = state.api.store.retention().legal_hold(channel_id).await?;
    Ok(Json(LegalHold { held }))
}

const HOLD_REFUSAL: &str = "only owners and admins see and set legal holds";

#[utoipa::path(put, path = "/v1/channels/{channel_id}/legal-hold", tag = "retention",
    operation_id = "set_legal_hold",
    security(("bearer" = [])), request_body = LegalHold,
    params(("channel_id" = Uuid, Path, description = "Channel id")),
    responses(
        (status = 200, description = "Set or lifted (audited as `legal_hold_set`)", body = LegalHold),
        (status = 400, description = "`invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only owners and admins see and set legal holds", body = ErrorBody),
        (status = 404, description = "`not_found`: no such channel, or one the caller cannot see", body = ErrorBody),
    ))]
pub async fn set_hold(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(channel_id): PathParams<Uuid>,
    Body(hold): Body<LegalHold>,
) -> ApiResult<Json<LegalHold>> {
    let context = ChannelContext::load(&state, channel_id, caller.user_id).await?;
    require(context.role, Action::ManageRetention, HOLD_REFUSAL)?;
    state
        .api
        .store
        .retention()
        .set_legal_hold(channel_id, hold.held)
        .await?;
    audit::record(
        &state,
        Audit {
            workspace_id: Some(context.channel.workspace_id),
            actor_id: Some(caller.user_id),
            action: "legal_hold_set",
            target_id: Some(channel_id),
            details: json!({ "held": hold.held }),
        },
    )
    .await;
    Ok(Json(hold))
}
