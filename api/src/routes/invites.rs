//! Invitations by e-mail: an admin creates one and hands its token to the invitee, who accepts
//! it while logged in with that e-mail.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chorus_core::auth::{new_refresh_token, refresh_token_hash};
use chorus_core::model::{Invite, Role};
use chrono::{Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::AppState;
use crate::audit::{self, Audit};
use crate::context::{require, role_in};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Caller, PathParams};
use crate::policy::Action;
use crate::routes::auth::valid_email;
use crate::views::{
    AcceptInviteRequest, CreateInviteRequest, CreatedInviteView, InviteView, WorkspaceView,
};

/// How long an invitation stays valid.
const INVITE_TTL_DAYS: i64 = 7;

#[utoipa::path(post, path = "/v1/workspaces/{workspace_id}/invites", tag = "workspaces",
    security(("bearer" = [])), request_body = CreateInviteRequest,
    params(("workspace_id" = Uuid, Path, description = "Workspace id")),
    responses(
        (status = 201, description = "Created; the token is shown only now and is valid 7 days", body = CreatedInviteView),
        (status = 400, description = "`invalid_email`, `invalid_role`, `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only owners and admins invite", body = ErrorBody),
        (status = 404, description = "`not_found`: no such workspace, or the caller is not in it", body = ErrorBody),
        (status = 409, description = "`workspace_member_limit`: the workspace is full under its plan", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(workspace_id): PathParams<Uuid>,
    Body(request): Body<CreateInviteRequest>,
) -> ApiResult<(StatusCode, Json<CreatedInviteView>)> {
    let role = role_in(&state, workspace_id, caller.user_id).await?;
    require(role, Action::InviteMembers, "only owners and admins invite")?;
    let email = request.email.trim().to_lowercase();
    if !valid_email(&email) {
        return Err(ApiError::bad_request(
            "invalid_email",
            "not a valid e-mail address",
        ));
    }
    let invited_role = match request.role.as_deref().unwrap_or("member") {
        "admin" => Role::Admin,
        "member" => Role::Member,
        "guest" => Role::Guest,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_role",
                "role must be admin, member or guest",
            ));
        }
    };
    // An invitation the workspace could not honour would only fail later, at acceptance.
    crate::routes::limits::admit_member(&state, workspace_id).await?;
    let token = new_refresh_token();
    let now = Utc::now();
    let invite = Invite {
        id: Uuid::now_v7(),
        workspace_id,
        email,
        role: invited_role,
        token_hash: refresh_token_hash(&token),
        invited_by: caller.user_id,
        created_at: now,
        expires_at: now + Duration::days(INVITE_TTL_DAYS),
        accepted_by: None,
        accepted_at: None,
    };
    state.api.store.create_invite(&invite).await?;
    audit::record(
        &state,
        Audit {
            workspace_id: Some(workspace_id),
            actor_id: Some(caller.user_id),
            action: "member_invited",
            target_id: Some(invite.id),
            details: json!({"email": invite.email, "role": invited_role.as_str()}),
        },
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(CreatedInviteView {
            invite: invite.into(),
            token,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/workspaces/{workspace_id}/invites", tag = "workspaces",
    security(("bearer" = [])),
    params(("workspace_id" = Uuid, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "Pending invitations, newest first", body = [InviteView]),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only owners and admins see invitations", body = ErrorBody),
        (status = 404, description = "`not_found`: no such workspace, or the caller is not in it", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(workspace_id): PathParams<Uuid>,
) -> ApiResult<Json<Vec<InviteView>>> {
    let role = role_in(&state, workspace_id, caller.user_id).await?;
    require(
        role,
        Action::InviteMembers,
        "only owners and admins see invitations",
    )?;
    let invites = state
        .api
        .store
        .pending_invites(workspace_id, Utc::now())
        .await?;
    Ok(Json(invites.into_iter().map(Into::into).collect()))
}

#[utoipa::path(post, path = "/v1/invites/accept", tag = "workspaces",
    security(("bearer" = [])), request_body = AcceptInviteRequest,
    responses(
        (status = 200, description = "The caller is a member now", body = WorkspaceView),
        (status = 400, description = "`invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`invite_for_another_email`: log in with the invited address", body = ErrorBody),
        (status = 404, description = "`invite_not_found`: unknown, expired or already used", body = ErrorBody),
        (status = 409, description = "`workspace_member_limit`: the workspace is full under its plan (the invitation stays usable)", body = ErrorBody),
    ))]
pub async fn accept(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(request): Body<AcceptInviteRequest>,
) -> ApiResult<Json<WorkspaceView>> {
    let unusable = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "invite_not_found",
            "the invitation is unknown, expired or already used",
        )
    };
    let store = &state.api.store;
    let invite = store
        .invite_by_token_hash(&refresh_token_hash(request.token.trim()))
        .await?
        .ok_or_else(unusable)?;
    let now = Utc::now();
    if invite.accepted_by.is_some() || invite.expires_at <= now {
        return Err(unusable());
    }
    let user = store
        .user(caller.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    if user.email != invite.email {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "invite_for_another_email",
            "this invitation was sent to another e-mail address",
        ));
    }
    // A member already (accepting only changes their role) takes no new place.
    if store
        .workspace_role(invite.workspace_id, caller.user_id)
        .await?
        .is_none()
    {
        crate::routes::limits::admit_member(&state, invite.workspace_id).await?;
    }
    if !store.accept_invite(invite.id, caller.user_id, now).await? {
        return Err(unusable());
    }
    audit::record(
        &state,
        Audit {
            workspace_id: Some(invite.workspace_id),
            actor_id: Some(caller.user_id),
            action: "invite_accepted",
            target_id: Some(invite.id),
            details: json!({"role": invite.role.as_str()}),
        },
    )
    .await;
    let workspace = store
        .workspace(invite.workspace_id)
        .await?
        .ok_or_else(|| ApiError::not_found("workspace"))?;
    let role = role_in(&state, invite.workspace_id, caller.user_id).await?;
    Ok(Json(WorkspaceView::new(workspace, role)))
}
