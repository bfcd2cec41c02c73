//! Workspaces: create, read, rename, list mine, add members, and the channels inside one.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chorus_core::StoreError;
use chorus_core::metadata::NewChannel;
use chorus_core::model::{ChannelKind, Role};
use uuid::Uuid;

use crate::AppState;
use crate::context::require;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Caller, PathParams};
use crate::policy::Action;
use crate::routes::messages::route_error;
use crate::views::{
    AddMemberRequest, ChannelView, CreateChannelRequest, CreateWorkspaceRequest, MemberView,
    RenameWorkspaceRequest, WorkspaceView,
};

pub use crate::context::role_in;

fn valid_workspace_name(name: &str) -> ApiResult<&str> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(ApiError::bad_request(
            "invalid_name",
            "workspace name must be 1 to 80 characters",
        ));
    }
    Ok(name)
}

#[utoipa::path(post, path = "/v1/workspaces", tag = "workspaces", security(("bearer" = [])),
    request_body = CreateWorkspaceRequest,
    responses(
        (status = 201, description = "Created; the caller is its owner", body = WorkspaceView),
        (status = 400, description = "`invalid_name`, `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(request): Body<CreateWorkspaceRequest>,
) -> ApiResult<(StatusCode, Json<WorkspaceView>)> {
    let name = valid_workspace_name(&request.name)?;
    let workspace = state
        .api
        .store
        .create_workspace(name, caller.user_id)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(WorkspaceView::new(workspace, Role::Owner)),
    ))
}

#[utoipa::path(get, path = "/v1/workspaces", tag = "workspaces", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's workspaces with the caller's role", body = [WorkspaceView]),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> ApiResult<Json<Vec<WorkspaceView>>> {
    let workspaces = state.api.store.workspaces_of(caller.user_id).await?;
    Ok(Json(
        workspaces
            .into_iter()
            .map(|(workspace, role)| WorkspaceView::new(workspace, role))
            .collect(),
    ))
}

#[utoipa::path(get, path = "/v1/workspaces/{workspace_id}", tag = "workspaces",
    security(("bearer" = [])),
    params(("workspace_id" = Uuid, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "The workspace, with the caller's role", body = WorkspaceView),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such workspace, or the caller is not in it", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(workspace_id): PathParams<Uuid>,
) -> ApiResult<Json<WorkspaceView>> {
    let role = role_in(&state, workspace_id, caller.user_id).await?;
    let workspace = state
        .api
        .store
        .workspace(workspace_id)
        .await?
        .ok_or_else(|| ApiError::not_found("workspace"))?;
    Ok(Json(WorkspaceView::new(workspace, role)))
}

#[utoipa::path(patch, path = "/v1/workspaces/{workspace_id}", tag = "workspaces",
    security(("bearer" = [])), request_body = RenameWorkspaceRequest,
    params(("workspace_id" = Uuid, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "Renamed", body = WorkspaceView),
        (status = 400, description = "`invalid_name`, `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only owners and admins rename", body = ErrorBody),
        (status = 404, description = "`not_found`: no such workspace, or the caller is not in it", body = ErrorBody),
    ))]
pub async fn rename(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(workspace_id): PathParams<Uuid>,
    Body(request): Body<RenameWorkspaceRequest>,
) -> ApiResult<Json<WorkspaceView>> {
    let role = role_in(&state, workspace_id, caller.user_id).await?;
    require(
        role,
        Action::RenameWorkspace,
        "only owners and admins rename a workspace",
    )?;
    let name = valid_workspace_name(&request.name)?;
    let workspace = state.api.store.rename_workspace(workspace_id, name).await?;
    Ok(Json(WorkspaceView::new(workspace, role)))
}

#[utoipa::path(post, path = "/v1/workspaces/{workspace_id}/members", tag = "workspaces",
    security(("bearer" = [])), request_body = AddMemberRequest,
    params(("workspace_id" = Uuid, Path, description = "Workspace id")),
    responses(
        (status = 201, description = "Added", body = MemberView),
        (status = 400, description = "`invalid_role`, `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only owners and admins add members", body = ErrorBody),
        (status = 404, description = "`not_found` (workspace), `user_not_found`", body = ErrorBody),
        (status = 409, description = "`already_member`; `workspace_member_limit`: the workspace's plan allows no more members", body = ErrorBody),
    ))]
pub async fn add_member(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(workspace_id): PathParams<Uuid>,
    Body(request): Body<AddMemberRequest>,
) -> ApiResult<(StatusCode, Json<MemberView>)> {
    require(
        role_in(&state, workspace_id, caller.user_id).await?,
        Action::InviteMembers,
        "only owners and admins add members",
    )?;
    let role = match request.role.as_deref().unwrap_or("member") {
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
    let store = &state.api.store;
    let user = store
        .user_by_email(request.email.trim())
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "user_not_found",
                "no user with this e-mail",
            )
        })?
        .user;
    if store.workspace_role(workspace_id, user.id).await?.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_member",
            "the user is already a member of this workspace",
        ));
    }
    crate::routes::limits::admit_member(&state, workspace_id).await?;
    store
        .set_workspace_member(workspace_id, user.id, role)
        .await?;
    // The new member hears of it on every device (`invitation` notification).
    let name = store
        .workspace(workspace_id)
        .await?
        .map(|w| w.name)
        .unwrap_or_default();
    chorus_notify::direct::invitation(
        store.as_ref(),
        state.api.presence.as_ref(),
        user.id,
        workspace_id,
        &name,
        caller.user_id,
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(MemberView {
            workspace_id,
            user_id: user.id,
            role: role.as_str().to_string(),
        }),
    ))
}

/// Channel names: lowercase ASCII letters, digits, `-` and `_`, 1 to 80 characters.
pub fn valid_channel_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 80
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[utoipa::path(post, path = "/v1/workspaces/{workspace_id}/channels", tag = "channels",
    security(("bearer" = [])), request_body = CreateChannelRequest,
    params(("workspace_id" = Uuid, Path, description = "Workspace id")),
    responses(
        (status = 201, description = "Created; the caller is its first member", body = ChannelView),
        (status = 400, description = "`invalid_channel_name`, `invalid_description`, `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: guests cannot create channels", body = ErrorBody),
        (status = 404, description = "`not_found`: no such workspace, or the caller is not in it", body = ErrorBody),
        (status = 409, description = "`channel_name_taken`; `workspace_channel_limit`: the workspace's plan allows no more channels", body = ErrorBody),
    ))]
pub async fn create_channel(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(workspace_id): PathParams<Uuid>,
    Body(request): Body<CreateChannelRequest>,
) -> ApiResult<(StatusCode, Json<ChannelView>)> {
    require(
        role_in(&state, workspace_id, caller.user_id).await?,
        Action::CreateChannel,
        "guests cannot create channels",
    )?;
    let name = request.name.trim();
    if !valid_channel_name(name) {
        return Err(ApiError::bad_request(
            "invalid_channel_name",
            "channel names are 1 to 80 lowercase letters, digits, '-' or '_'",
        ));
    }
    let description = request.description.unwrap_or_default();
    if description.chars().count() > 250 {
        return Err(ApiError::bad_request(
            "invalid_description",
            "description must be at most 250 characters",
        ));
    }
    crate::routes::limits::admit_channel(&state, workspace_id).await?;
    let new = NewChannel {
        workspace_id,
        name: name.to_string(),
        description,
        kind: if request.private {
            ChannelKind::Private
        } else {
            ChannelKind::Public
        },
        created_by: caller.user_id,
    };
    match state.api.store.create_channel(&new).await {
        Ok(channel) => {
            let membership = state
                .api
                .store
                .channel_membership(channel.id, caller.user_id)
                .await?;
            Ok((
                StatusCode::CREATED,
                Json(ChannelView::for_member(channel, membership.as_ref())),
            ))
        }
        Err(StoreError::Conflict(_)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "channel_name_taken",
            "a channel with this name exists in the workspace",
        )),
        Err(err) => Err(err.into()),
    }
}

#[utoipa::path(get, path = "/v1/workspaces/{workspace_id}/channels", tag = "channels",
    security(("bearer" = [])),
    params(("workspace_id" = Uuid, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "Public channels, and the private channels and direct messages the caller is in, with the caller's read position, mute and unread count", body = [ChannelView]),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such workspace, or the caller is not in it", body = ErrorBody),
    ))]
pub async fn list_channels(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(workspace_id): PathParams<Uuid>,
) -> ApiResult<Json<Vec<ChannelView>>> {
    role_in(&state, workspace_id, caller.user_id).await?;
    let mut listings = state
        .api
        .store
        .channels_visible_to(workspace_id, caller.user_id)
        .await?;
    if caller.bot_scopes.is_some() {
        // A bot sees only the channels it was added to.
        listings.retain(|listing| listing.membership.is_some());
    }
    let ids: Vec<Uuid> = listings.iter().map(|l| l.channel.id).collect();
    let last_seqs = state
        .api
        .router
        .last_seqs(&ids)
        .await
        .map_err(route_error)?;
    let mut views = Vec::with_capacity(listings.len());
    for (listing, last_seq) in listings.into_iter().zip(last_seqs) {
        let unread = match &listing.membership {
            Some(member) if last_seq > member.last_read_seq => Some(
                state
                    .api
                    .messages
                    .count_messages_after(listing.channel.id, member.last_read_seq, UNREAD_CAP)
                    .await?,
            ),
            Some(_) => Some(0),
            None => None,
        };
        let mut view = ChannelView::for_member(listing.channel, listing.membership.as_ref());
        view.last_seq = Some(last_seq);
        view.unread_count = unread;
        views.push(view);
    }
    Ok(Json(views))
}

/// Unread counts stop at this (a client shows "999+").
const UNREAD_CAP: u64 = 1_000;

#[cfg(test)]
mod tests {
    use super::valid_channel_name;

    #[test]
    fn channel_name_rules() {
        assert!(valid_channel_name("general"));
        assert!(valid_channel_name("team-42_ops"));
        assert!(valid_channel_name(&"a".repeat(80)));
        for bad in ["", "General", "with space", "émoji", &"a".repeat(81)] {
            assert!(!valid_channel_name(bad), "{bad}");
        }
    }
}
