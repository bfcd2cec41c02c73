//! Direct messages (RF-03.2): a 1:1 or group conversation (up to 8 people) that exists once per
//! set of members — opened on first use, the same channel ever after.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use uuid::Uuid;

use crate::AppState;
use crate::context::{require, role_in};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Caller, PathParams};
use crate::policy::Action;
use crate::views::{ChannelView, OpenDmRequest};

/// Most people in a group DM, the caller included.
const MAX_DM_MEMBERS: usize = 8;

#[utoipa::path(post, path = "/v1/workspaces/{workspace_id}/dms", tag = "channels",
    security(("bearer" = [])), request_body = OpenDmRequest,
    params(("workspace_id" = Uuid, Path, description = "Workspace id")),
    responses(
        (status = 201, description = "Created now, with every participant as a member", body = ChannelView),
        (status = 200, description = "The existing conversation of exactly these people", body = ChannelView),
        (status = 400, description = "`invalid_members`: 1 to 7 others, the caller not counted; `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 404, description = "`not_found` (workspace), `user_not_found`: someone is not in the workspace", body = ErrorBody),
    ))]
pub async fn open(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(workspace_id): PathParams<Uuid>,
    Body(request): Body<OpenDmRequest>,
) -> ApiResult<(StatusCode, Json<ChannelView>)> {
    let role = role_in(&state, workspace_id, caller.user_id).await?;
    require(role, Action::OpenDm, "you may not open direct messages")?;
    let mut members: Vec<Uuid> = request
        .user_ids
        .into_iter()
        .filter(|id| *id != caller.user_id)
        .collect();
    members.sort();
    members.dedup();
    if members.is_empty() || members.len() >= MAX_DM_MEMBERS {
        return Err(ApiError::bad_request(
            "invalid_members",
            "a direct message has 1 to 7 other people",
        ));
    }
    let store = &state.api.store;
    for member in &members {
        if store.workspace_role(workspace_id, *member).await?.is_none() {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "user_not_found",
                "someone named is not a member of this workspace",
            ));
        }
    }
    members.push(caller.user_id);
    members.sort();
    let (channel, created) = store
        .open_dm(workspace_id, &members, caller.user_id)
        .await?;
    let membership = store.channel_membership(channel.id, caller.user_id).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(ChannelView::for_member(channel, membership.as_ref())),
    ))
}
