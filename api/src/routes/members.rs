//! Workspace members: list, change roles, remove (or leave).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chorus_cluster::access::AccessNotice;
use chorus_core::model::Role;
use serde_json::json;
use uuid::Uuid;

use crate::AppState;
use crate::audit::{self, Audit};
use crate::context::{require, role_in};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Caller, PathParams};
use crate::policy::{self, Action};
use crate::views::{ChangeRoleRequest, WorkspaceMemberView};

fn last_owner() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "last_owner",
        "a workspace keeps at least one owner: make someone else owner first",
    )
}

#[utoipa::path(get, path = "/v1/workspaces/{workspace_id}/members", tag = "workspaces",
    security(("bearer" = [])),
    params(("workspace_id" = Uuid, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "Every member with their role, oldest first", body = [WorkspaceMemberView]),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such workspace, or the caller is not in it", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(workspace_id): PathParams<Uuid>,
) -> ApiResult<Json<Vec<WorkspaceMemberView>>> {
    role_in(&state, workspace_id, caller.user_id).await?;
    let members = state.api.store.workspace_members(workspace_id).await?;
    Ok(Json(members.into_iter().map(Into::into).collect()))
}

#[utoipa::path(patch, path = "/v1/workspaces/{workspace_id}/members/{user_id}", tag = "workspaces",
    security(("bearer" = [])), request_body = ChangeRoleRequest,
    params(("workspace_id" = Uuid, Path, description = "Workspace id"),
           ("user_id" = Uuid, Path, description = "The member")),
    responses(
        (status = 200, description = "The member with the new role (audited as `role_changed`)", body = WorkspaceMemberView),
        (status = 400, description = "`invalid_role`, `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: members and guests change no roles; admins cannot touch owners or make owners", body = ErrorBody),
        (status = 404, description = "`not_found`: no such workspace or member", body = ErrorBody),
        (status = 409, description = "`last_owner`: the only owner cannot be demoted", body = ErrorBody),
    ))]
pub async fn change_role(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams((workspace_id, user_id)): PathParams<(Uuid, Uuid)>,
    Body(request): Body<ChangeRoleRequest>,
) -> ApiResult<Json<WorkspaceMemberView>> {
    let actor = role_in(&state, workspace_id, caller.user_id).await?;
    require(
        actor,
        Action::ChangeRoles,
        "only owners and admins change roles",
    )?;
    let to = Role::parse(&request.role).ok_or_else(|| {
        ApiError::bad_request("invalid_role", "role must be owner, admin, member or guest")
    })?;
    let store = &state.api.store;
    let from = store
        .workspace_role(workspace_id, user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    if !policy::may_change_role(actor, from, to) {
        return Err(ApiError::forbidden(
            "admins cannot change an owner's role or make owners",
        ));
    }
    if from == Role::Owner && to != Role::Owner && store.count_owners(workspace_id).await? <= 1 {
        return Err(last_owner());
    }
    if from != to {
        store
            .set_workspace_member(workspace_id, user_id, to)
            .await?;
        audit::record(
            &state,
            Audit {
                workspace_id: Some(workspace_id),
                actor_id: Some(caller.user_id),
                action: "role_changed",
                target_id: Some(user_id),
                details: json!({"from": from.as_str(), "to": to.as_str()}),
            },
        )
        .await;
        // A guest may no longer post where a member could, and the other way round.
        state
            .api
            .access
            .notify(AccessNotice::User { user_id })
            .await;
    }
    let member = store
        .workspace_members(workspace_id)
        .await?
        .into_iter()
        .find(|m| m.user.id == user_id)
        .ok_or_else(|| ApiError::not_found("member"))?;
    Ok(Json(member.into()))
}

#[utoipa::path(delete, path = "/v1/workspaces/{workspace_id}/members/{user_id}", tag = "workspaces",
    security(("bearer" = [])),
    params(("workspace_id" = Uuid, Path, description = "Workspace id"),
           ("user_id" = Uuid, Path, description = "The member (the caller's own id: leave)")),
    responses(
        (status = 204, description = "Removed from the workspace and all its channels (audited as `member_removed` or `member_left`); their WebSocket subscriptions end"),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: members and guests only leave; admins remove members and guests only", body = ErrorBody),
        (status = 404, description = "`not_found`: no such workspace or member", body = ErrorBody),
        (status = 409, description = "`last_owner`: the only owner cannot leave", body = ErrorBody),
    ))]
pub async fn remove(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams((workspace_id, user_id)): PathParams<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    let actor = role_in(&state, workspace_id, caller.user_id).await?;
    let store = &state.api.store;
    let target = store
        .workspace_role(workspace_id, user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    let is_self = user_id == caller.user_id;
    if !policy::may_remove_member(actor, target, is_self) {
        return Err(ApiError::forbidden(
            "only owners and admins remove members, and admins cannot remove owners or admins",
        ));
    }
    if target == Role::Owner && store.count_owners(workspace_id).await? <= 1 {
        return Err(last_owner());
    }
    if !store.remove_workspace_member(workspace_id, user_id).await? {
        return Err(ApiError::not_found("member"));
    }
    audit::record(
        &state,
        Audit {
            workspace_id: Some(workspace_id),
            actor_id: Some(caller.user_id),
            action: if is_self {
                "member_left"
            } else {
                "member_removed"
            },
            target_id: Some(user_id),
            details: json!({"role": target.as_str()}),
        },
    )
    .await;
    state
        .api
        .access
        .notify(AccessNotice::User { user_id })
        .await;
    Ok(StatusCode::NO_CONTENT)
}
