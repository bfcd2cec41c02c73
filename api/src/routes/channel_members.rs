//! Who is in a channel, and each member's own settings: leave, add and remove members, mute,
//! mark read.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chorus_cluster::access::AccessNotice;
use chorus_core::StoreError;
use chorus_core::model::{ChannelKind, Role};
use serde_json::json;
use uuid::Uuid;

use crate::AppState;
use crate::audit::{self, Audit};
use crate::context::ChannelContext;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Caller, PathParams};
use crate::views::{
    AddChannelMemberRequest, ChannelMemberView, ChannelView, MarkReadRequest, MuteRequest,
    ReadPositionView,
};

#[utoipa::path(get, path = "/v1/channels/{channel_id}/members", tag = "channels",
    security(("bearer" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id")),
    responses(
        (status = 200, description = "Members, oldest first", body = [ChannelMemberView]),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: a private channel or DM the caller is not in", body = ErrorBody),
        (status = 404, description = "`not_found`: no such channel, not in its workspace, or a private channel or DM the caller is not in", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(channel_id): PathParams<Uuid>,
) -> ApiResult<Json<Vec<ChannelMemberView>>> {
    let context = ChannelContext::load(&state, channel_id, caller.user_id).await?;
    if context.channel.kind != ChannelKind::Public {
        context.require_member()?;
    }
    let members = state.api.store.channel_members(channel_id).await?;
    Ok(Json(members.into_iter().map(Into::into).collect()))
}

#[utoipa::path(post, path = "/v1/channels/{channel_id}/members", tag = "channels",
    security(("bearer" = [])), request_body = AddChannelMemberRequest,
    params(("channel_id" = Uuid, Path, description = "Channel id")),
    responses(
        (status = 201, description = "Added (adding a member again is harmless)", body = ChannelMemberView),
        (status = 400, description = "`invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only non-guest members add people, never to a DM; `channel_archived`", body = ErrorBody),
        (status = 404, description = "`not_found` (channel), `user_not_found`: not a member of the workspace", body = ErrorBody),
    ))]
pub async fn add(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(channel_id): PathParams<Uuid>,
    Body(request): Body<AddChannelMemberRequest>,
) -> ApiResult<(StatusCode, Json<ChannelMemberView>)> {
    let context = ChannelContext::load(&state, channel_id, caller.user_id).await?;
    if context.channel.kind == ChannelKind::Dm {
        return Err(ApiError::forbidden("direct messages have fixed members"));
    }
    context.require_writable()?;
    if context.role == Role::Guest {
        return Err(ApiError::forbidden("guests cannot add people to channels"));
    }
    let store = &state.api.store;
    if store
        .workspace_role(context.channel.workspace_id, request.user_id)
        .await?
        .is_none()
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "user_not_found",
            "no such member of this workspace",
        ));
    }
    store
        .add_channel_member(channel_id, request.user_id)
        .await?;
    let member = store
        .channel_membership(channel_id, request.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    // A bot's open sockets follow its memberships: this one starts receiving the channel.
    state
        .api
        .access
        .notify(AccessNotice::Channel {
            channel_id,
            user_id: Some(request.user_id),
        })
        .await;
    Ok((StatusCode::CREATED, Json(member.into())))
}

#[utoipa::path(delete, path = "/v1/channels/{channel_id}/members/{user_id}", tag = "channels",
    security(("bearer" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id"),
           ("user_id" = Uuid, Path, description = "The member to remove")),
    responses(
        (status = 204, description = "Removed (audited as `channel_member_removed`); their subscriptions to the channel end"),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only the channel's creator and admins remove others; DMs have fixed members", body = ErrorBody),
        (status = 404, description = "`not_found`: no such channel or member", body = ErrorBody),
    ))]
pub async fn remove(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams((channel_id, user_id)): PathParams<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    let context = ChannelContext::load(&state, channel_id, caller.user_id).await?;
    if user_id == caller.user_id {
        return leave_channel(&state, &context).await;
    }
    context.require_manager()?;
    if !state
        .api
        .store
        .remove_channel_member(channel_id, user_id)
        .await?
    {
        return Err(ApiError::not_found("member"));
    }
    audit::record(
        &state,
        Audit {
            workspace_id: Some(context.channel.workspace_id),
            actor_id: Some(caller.user_id),
            action: "channel_member_removed",
            target_id: Some(user_id),
            details: json!({"channel_id": channel_id}),
        },
    )
    .await;
    state
        .api
        .access
        .notify(AccessNotice::Channel {
            channel_id,
            user_id: Some(user_id),
        })
        .await;
    Ok(StatusCode::NO_CONTENT)
}

async fn leave_channel(state: &AppState, context: &ChannelContext) -> ApiResult<StatusCode> {
    if context.channel.kind == ChannelKind::Dm {
        return Err(ApiError::forbidden("direct messages cannot be left"));
    }
    let channel_id = context.channel.id;
    if !state
        .api
        .store
        .remove_channel_member(channel_id, context.user)
        .await?
    {
        return Err(ApiError::forbidden("you are not a member of this channel"));
    }
    state
        .api
        .access
        .notify(AccessNotice::Channel {
            channel_id,
            user_id: Some(context.user),
        })
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/channels/{channel_id}/leave", tag = "channels",
    security(("bearer" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id")),
    responses(
        (status = 204, description = "Left; the caller's subscriptions to the channel end"),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a member, or a DM", body = ErrorBody),
        (status = 404, description = "`not_found`: no such channel, not in its workspace, or a private channel or DM the caller is not in", body = ErrorBody),
    ))]
pub async fn leave(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(channel_id): PathParams<Uuid>,
) -> ApiResult<StatusCode> {
    let context = ChannelContext::load(&state, channel_id, caller.user_id).await?;
    leave_channel(&state, &context).await
}

#[utoipa::path(put, path = "/v1/channels/{channel_id}/mute", tag = "channels",
    security(("bearer" = [])), request_body = MuteRequest,
    params(("channel_id" = Uuid, Path, description = "Channel id")),
    responses(
        (status = 200, description = "The channel with the caller's new setting", body = ChannelView),
        (status = 400, description = "`invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a member", body = ErrorBody),
        (status = 404, description = "`not_found`: no such channel, not in its workspace, or a private channel or DM the caller is not in", body = ErrorBody),
    ))]
pub async fn set_mute(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(channel_id): PathParams<Uuid>,
    Body(request): Body<MuteRequest>,
) -> ApiResult<Json<ChannelView>> {
    let context = ChannelContext::load(&state, channel_id, caller.user_id).await?;
    context.require_member()?;
    let store = &state.api.store;
    if !store
        .set_channel_muted(channel_id, caller.user_id, request.muted)
        .await?
    {
        return Err(ApiError::forbidden("you are not a member of this channel"));
    }
    let membership = store.channel_membership(channel_id, caller.user_id).await?;
    Ok(Json(ChannelView::for_member(
        context.channel,
        membership.as_ref(),
    )))
}

#[utoipa::path(post, path = "/v1/channels/{channel_id}/read", tag = "channels",
    security(("bearer" = [])), request_body = MarkReadRequest,
    params(("channel_id" = Uuid, Path, description = "Channel id")),
    responses(
        (status = 200, description = "The read position now (it never moves back)", body = ReadPositionView),
        (status = 400, description = "`invalid_seq`: beyond the channel's newest event; `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a member", body = ErrorBody),
        (status = 404, description = "`not_found`: no such channel, not in its workspace, or a private channel or DM the caller is not in", body = ErrorBody),
    ))]
pub async fn mark_read(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(channel_id): PathParams<Uuid>,
    Body(request): Body<MarkReadRequest>,
) -> ApiResult<Json<ReadPositionView>> {
    let context = ChannelContext::load(&state, channel_id, caller.user_id).await?;
    context.require_member()?;
    let last_seq = state
        .api
        .router
        .last_seqs(&[channel_id])
        .await
        .map_err(crate::routes::messages::route_error)?
        .first()
        .copied()
        .unwrap_or(0);
    if request.seq > last_seq {
        return Err(ApiError::bad_request(
            "invalid_seq",
            format!("seq is beyond the channel's newest event ({last_seq})"),
        ));
    }
    match state
        .api
        .store
        .mark_read(channel_id, caller.user_id, request.seq)
        .await
    {
        Ok(last_read_seq) => {
            // Every device of the caller updates the channel's badge (`read_state`).
            let api = &state.api;
            chorus_notify::direct::read_state(
                api.store.as_ref(),
                api.messages.as_ref(),
                api.presence.as_ref(),
                caller.user_id,
                channel_id,
                last_read_seq,
            )
            .await;
            Ok(Json(ReadPositionView {
                channel_id,
                last_read_seq,
            }))
        }
        Err(StoreError::NotFound(_)) => {
            Err(ApiError::forbidden("you are not a member of this channel"))
        }
        Err(err) => Err(err.into()),
    }
}
