//! Reading the audit log (RF-01.6): workspace owners and admins only.

use axum::Json;
use axum::extract::State;
use uuid::Uuid;

use crate::AppState;
use crate::context::{require, role_in};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Caller, Params, PathParams};
use crate::policy::Action;
use crate::routes::history::page_limit;
use crate::views::{AuditEntryView, AuditPage, AuditParams};

#[utoipa::path(get, path = "/v1/workspaces/{workspace_id}/audit", tag = "workspaces",
    security(("bearer" = [])),
    params(("workspace_id" = Uuid, Path, description = "Workspace id"), AuditParams),
    responses(
        (status = 200, description = "Newest first: role changes, removals, invitations, deletions of others' messages, archiving, and the logins of the workspace's members", body = AuditPage),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only owners and admins read the audit log", body = ErrorBody),
        (status = 404, description = "`not_found`: no such workspace, or the caller is not in it", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(workspace_id): PathParams<Uuid>,
    Params(params): Params<AuditParams>,
) -> ApiResult<Json<AuditPage>> {
    let limit = page_limit(params.limit, 50, 200)?;
    let role = role_in(&state, workspace_id, caller.user_id).await?;
    require(
        role,
        Action::ReadAuditLog,
        "only owners and admins read the audit log",
    )?;
    let entries = state
        .api
        .store
        .audit_log(workspace_id, params.before, limit)
        .await?;
    let next_before = (entries.len() == limit)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(Json(AuditPage {
        entries: entries.into_iter().map(AuditEntryView::from).collect(),
        next_before,
    }))
}
