//! Workspace limits (issue 16, plans): the instance admin sets a workspace's limits with the
//! operator token (`/v1/admin/workspaces/{id}/limits`), and its members read them with what the
//! workspace uses of them (`/v1/workspaces/{id}/limits`). The limits are enforced where members
//! join, channels are created, retention policies are set and messages are sent; the decisions
//! are `chorus_core::limits`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chorus_core::limits::{WorkspaceLimits, WorkspaceUsage, valid_limits};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::audit::{self, Audit};
use crate::context::role_in;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Caller, PathParams};
use crate::routes::admin::authorise_operator;

/// A workspace's limits. Every field is optional: absent or `null` is no limit.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsBody {
    /// People in the workspace (bots are not counted).
    #[serde(default)]
    pub max_members: Option<u32>,
    /// Public and private channels, archived ones included (direct messages are not counted).
    #[serde(default)]
    pub max_channels: Option<u32>,
    /// Messages posted in the whole workspace per minute, over REST and WebSocket together.
    #[serde(default)]
    pub messages_per_minute: Option<u32>,
    /// The longest retention policy allowed (1 to 36,500 days); with it, "keep forever" is not
    /// allowed and history older than it is deleted whatever the workspace's own policy.
    #[serde(default)]
    pub max_retention_days: Option<u32>,
}

impl From<LimitsBody> for WorkspaceLimits {
    fn from(body: LimitsBody) -> Self {
        WorkspaceLimits {
            max_members: body.max_members,
            max_channels: body.max_channels,
            messages_per_minute: body.messages_per_minute,
            max_retention_days: body.max_retention_days,
        }
    }
}

impl From<WorkspaceLimits> for LimitsBody {
    fn from(limits: WorkspaceLimits) -> Self {
        LimitsBody {
            max_members: limits.max_members,
            max_channels: limits.max_channels,
            messages_per_minute: limits.messages_per_minute,
            max_retention_days: limits.max_retention_days,
        }
    }
}

/// What a workspace uses of its limits now.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageView {
    /// People (not bots) in the workspace.
    pub members: u64,
    /// Public and private channels, archived included.
    pub channels: u64,
}

/// A workspace's limits and its usage.
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitsView {
    pub workspace_id: Uuid,
    /// `null` fields are unlimited.
    pub limits: LimitsBody,
    pub usage: UsageView,
}

async fn view(state: &AppState, workspace_id: Uuid) -> ApiResult<LimitsView> {
    let store = state.api.store.limits();
    let limits = store.workspace_limits(workspace_id).await?;
    let WorkspaceUsage { members, channels } = store.workspace_usage(workspace_id).await?;
    Ok(LimitsView {
        workspace_id,
        limits: limits.into(),
        usage: UsageView { members, channels },
    })
}

#[utoipa::path(get, path = "/v1/workspaces/{workspace_id}/limits", tag = "workspaces",
    operation_id = "get_workspace_limits",
    security(("bearer" = [])),
    params(("workspace_id" = Uuid, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "The workspace's limits (`null`: unlimited) and its usage", body = LimitsView),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such workspace, or the caller is not in it", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(workspace_id): PathParams<Uuid>,
) -> ApiResult<Json<LimitsView>> {
    role_in(&state, workspace_id, caller.user_id).await?;
    Ok(Json(view(&state, workspace_id).await?))
}

#[utoipa::path(get, path = "/v1/admin/workspaces/{workspace_id}/limits", tag = "admin",
    operation_id = "admin_get_workspace_limits",
    params(("workspace_id" = Uuid, Path, description = "Workspace id"),
           ("x-chorus-admin-token" = String, Header, description = "The node's admin_token")),
    responses(
        (status = 200, description = "The workspace's limits (`null`: unlimited) and its usage", body = LimitsView),
        (status = 401, description = "`unauthenticated`: missing or wrong operator token", body = ErrorBody),
        (status = 404, description = "`not_found`: no such workspace, or no admin_token configured", body = ErrorBody),
    ))]
pub async fn admin_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    PathParams(workspace_id): PathParams<Uuid>,
) -> ApiResult<Json<LimitsView>> {
    authorise_operator(state.api.admin_token.as_deref(), &headers)?;
    if state.api.store.workspace(workspace_id).await?.is_none() {
        return Err(ApiError::not_found("workspace"));
    }
    Ok(Json(view(&state, workspace_id).await?))
}

#[utoipa::path(put, path = "/v1/admin/workspaces/{workspace_id}/limits", tag = "admin",
    operation_id = "set_workspace_limits",
    request_body = LimitsBody,
    params(("workspace_id" = Uuid, Path, description = "Workspace id"),
           ("x-chorus-admin-token" = String, Header, description = "The node's admin_token")),
    responses(
        (status = 200, description = "Set, replacing every field (audited as `workspace_limits_set`). A workspace already beyond a new limit keeps what it has and cannot grow; a retention cap shortens a longer policy at the retention job's next tick", body = LimitsView),
        (status = 400, description = "`invalid_limits`: a limit of 0, or max_retention_days beyond 36500; `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`: missing or wrong operator token", body = ErrorBody),
        (status = 404, description = "`not_found`: no such workspace, or no admin_token configured", body = ErrorBody),
    ))]
pub async fn set(
    State(state): State<AppState>,
    headers: HeaderMap,
    PathParams(workspace_id): PathParams<Uuid>,
    Body(body): Body<LimitsBody>,
) -> ApiResult<Json<LimitsView>> {
    authorise_operator(state.api.admin_token.as_deref(), &headers)?;
    let limits = WorkspaceLimits::from(body);
    valid_limits(&limits).map_err(|why| ApiError::bad_request("invalid_limits", why))?;
    store_limits(&state, workspace_id, &limits).await?;
    audit::record(
        &state,
        Audit {
            workspace_id: Some(workspace_id),
            actor_id: None,
            action: "workspace_limits_set",
            target_id: Some(workspace_id),
            details: json!({ "by": "operator", "limits": limits }),
        },
    )
    .await;
    Ok(Json(view(&state, workspace_id).await?))
}

#[utoipa::path(delete, path = "/v1/admin/workspaces/{workspace_id}/limits", tag = "admin",
    operation_id = "clear_workspace_limits",
    params(("workspace_id" = Uuid, Path, description = "Workspace id"),
           ("x-chorus-admin-token" = String, Header, description = "The node's admin_token")),
    responses(
        (status = 204, description = "Cleared: the workspace is unlimited (audited as `workspace_limits_cleared`)"),
        (status = 401, description = "`unauthenticated`: missing or wrong operator token", body = ErrorBody),
        (status = 404, description = "`not_found`: no such workspace, or no admin_token configured", body = ErrorBody),
    ))]
pub async fn clear(
    State(state): State<AppState>,
    headers: HeaderMap,
    PathParams(workspace_id): PathParams<Uuid>,
) -> ApiResult<StatusCode> {
    authorise_operator(state.api.admin_token.as_deref(), &headers)?;
    store_limits(&state, workspace_id, &WorkspaceLimits::default()).await?;
    audit::record(
        &state,
        Audit {
            workspace_id: Some(workspace_id),
            actor_id: None,
            action: "workspace_limits_cleared",
            target_id: Some(workspace_id),
            details: json!({ "by": "operator" }),
        },
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Stores the limits and makes this process's sends see them at once (other processes within
/// `chorus_core::limits::quota::LIMITS_TTL`).
async fn store_limits(
    state: &AppState,
    workspace_id: Uuid,
    limits: &WorkspaceLimits,
) -> ApiResult<()> {
    state
        .api
        .store
        .limits()
        .set_workspace_limits(workspace_id, limits)
        .await
        .map_err(|err| match err {
            chorus_core::StoreError::NotFound(_) => ApiError::not_found("workspace"),
            other => other.into(),
        })?;
    state.api.quotas.forget(workspace_id);
    Ok(())
}

// ---- enforcement, for the routes that grow a workspace ----

/// 409 `workspace_member_limit` unless one more member fits the workspace's plan.
pub async fn admit_member(state: &AppState, workspace_id: Uuid) -> ApiResult<()> {
    let store = state.api.store.limits();
    let limits = store.workspace_limits(workspace_id).await?;
    if limits.max_members.is_none() {
        return Ok(());
    }
    let usage = store.workspace_usage(workspace_id).await?;
    Ok(chorus_core::limits::admit_member(&limits, &usage)?)
}

/// 409 `workspace_channel_limit` unless one more channel fits the workspace's plan.
pub async fn admit_channel(state: &AppState, workspace_id: Uuid) -> ApiResult<()> {
    let store = state.api.store.limits();
    let limits = store.workspace_limits(workspace_id).await?;
    if limits.max_channels.is_none() {
        return Ok(());
    }
    let usage = store.workspace_usage(workspace_id).await?;
    Ok(chorus_core::limits::admit_channel(&limits, &usage)?)
}

/// 409 `retention_exceeds_plan` unless the policy `days` (`None`: forever) fits the plan's cap.
pub async fn admit_retention(
    state: &AppState,
    workspace_id: Uuid,
    days: Option<u32>,
) -> ApiResult<()> {
    let limits = state
        .api
        .store
        .limits()
        .workspace_limits(workspace_id)
        .await?;
    Ok(chorus_core::limits::admit_retention(&limits, days)?)
}

/// Counts one message posted to `channel_id` against its workspace's messages per minute;
/// 429 `workspace_message_limit` with `Retry-After` beyond it.
pub async fn count_message(state: &AppState, channel_id: Uuid) -> ApiResult<()> {
    state
        .api
        .quotas
        .check_send(channel_id)
        .await
        .map_err(|exceeded| ApiError::over_quota(&exceeded))
}
