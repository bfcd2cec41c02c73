//! A channel's metadata: read, edit (name, description, topic, privacy), archive, join.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chorus_cluster::access::AccessNotice;
use chorus_core::StoreError;
use chorus_core::model::{ChannelKind, ChannelUpdate, Role};
use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use crate::AppState;
use crate::audit::{self, Audit};
use crate::context::{ChannelContext, archived, require};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Caller, PathParams};
use crate::policy::Action;
use crate::routes::workspaces::valid_channel_name;
use crate::views::{ChannelView, UpdateChannelRequest};

/// Loads a channel the caller may see: any public channel of their workspace, or a private one
/// or DM they are in (403 for a private channel they are not in).
#[utoipa::path(get, path = "/v1/channels/{channel_id}", tag = "channels",
    security(("bearer" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id")),
    responses(
        (status = 200, description = "The channel with the caller's membership", body = ChannelView),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such channel, not in its workspace, or a private channel or DM the caller is not in", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(channel_id): PathParams<Uuid>,
) -> ApiResult<Json<ChannelView>> {
    // A private channel or DM the caller is not in is a 404 from `load`.
    let context = ChannelContext::load(&state, channel_id, caller.user_id).await?;
    Ok(Json(ChannelView::for_member(
        context.channel,
        context.membership.as_ref(),
    )))
}

fn check_text(field: &'static str, code: &'static str, text: &str) -> ApiResult<()> {
    if text.chars().count() > 250 {
        return Err(ApiError::bad_request(
            code,
            format!("{field} must be at most 250 characters"),
        ));
    }
    Ok(())
}

#[utoipa::path(patch, path = "/v1/channels/{channel_id}", tag = "channels",
    security(("bearer" = [])), request_body = UpdateChannelRequest,
    params(("channel_id" = Uuid, Path, description = "Channel id")),
    responses(
        (status = 200, description = "The channel as it is now", body = ChannelView),
        (status = 400, description = "`invalid_channel_name`, `invalid_description`, `invalid_topic`, `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the topic is set by non-guest members; name, description and privacy by the channel's creator and admins; DMs never change. `channel_archived`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such channel, not in its workspace, or a private channel or DM the caller is not in", body = ErrorBody),
        (status = 409, description = "`channel_name_taken`", body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(channel_id): PathParams<Uuid>,
    Body(request): Body<UpdateChannelRequest>,
) -> ApiResult<Json<ChannelView>> {
    let context = ChannelContext::load(&state, channel_id, caller.user_id).await?;
    let mut update = ChannelUpdate::default();
    let structural =
        request.name.is_some() || request.description.is_some() || request.private.is_some();
    if structural {
        context.require_manager()?;
    }
    if let Some(topic) = &request.topic {
        context.require_writable()?;
        if context.role == Role::Guest {
            return Err(ApiError::forbidden("guests cannot set topics"));
        }
        check_text("topic", "invalid_topic", topic)?;
        update.topic = Some((topic.clone(), caller.user_id, Utc::now()));
    }
    if structural && context.channel.is_archived {
        return Err(archived());
    }
    if let Some(name) = &request.name {
        let name = name.trim();
        if !valid_channel_name(name) {
            return Err(ApiError::bad_request(
                "invalid_channel_name",
                "channel names are 1 to 80 lowercase letters, digits, '-' or '_'",
            ));
        }
        update.name = Some(name.to_string());
    }
    if let Some(description) = &request.description {
        check_text("description", "invalid_description", description)?;
        update.description = Some(description.clone());
    }
    let going_private =
        request.private == Some(true) && context.channel.kind == ChannelKind::Public;
    update.kind = request.private.map(|private| {
        if private {
            ChannelKind::Private
        } else {
            ChannelKind::Public
        }
    });
    let channel = match state.api.store.update_channel(channel_id, &update).await {
        Ok(channel) => channel,
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "channel_name_taken",
                "a channel with this name exists in the workspace",
            ));
        }
        Err(err) => return Err(err.into()),
    };
    if going_private {
        audit::record(
            &state,
            Audit {
                workspace_id: Some(channel.workspace_id),
                actor_id: Some(caller.user_id),
                action: "channel_made_private",
                target_id: Some(channel_id),
                details: json!({"name": channel.name}),
            },
        )
        .await;
    }
    Ok(Json(ChannelView::for_member(
        channel,
        context.membership.as_ref(),
    )))
}

async fn set_archived(
    state: AppState,
    caller: Uuid,
    channel_id: Uuid,
    archived: bool,
) -> ApiResult<Json<ChannelView>> {
    let context = ChannelContext::load(&state, channel_id, caller).await?;
    context.require_manager()?;
    let update = ChannelUpdate {
        is_archived: Some(archived),
        ..ChannelUpdate::default()
    };
    let channel = state.api.store.update_channel(channel_id, &update).await?;
    // Then where the channel's events are sequenced, every time (it is idempotent, and a
    // previous call may have failed here): once this returns, no send is accepted into an
    // archived channel — nor refused by an unarchived one — whatever the gateways have heard.
    state
        .api
        .router
        .set_archived(channel_id, archived)
        .await
        .map_err(crate::routes::messages::route_error)?;
    if context.channel.is_archived != archived {
        audit::record(
            &state,
            Audit {
                workspace_id: Some(channel.workspace_id),
                actor_id: Some(caller),
                action: if archived {
                    "channel_archived"
                } else {
                    "channel_unarchived"
                },
                target_id: Some(channel_id),
                details: json!({"name": channel.name}),
            },
        )
        .await;
        // Open subscriptions re-read whether they may post.
        state
            .api
            .access
            .notify(AccessNotice::Channel {
                channel_id,
                user_id: None,
            })
            .await;
    }
    Ok(Json(ChannelView::for_member(
        channel,
        context.membership.as_ref(),
    )))
}

#[utoipa::path(post, path = "/v1/channels/{channel_id}/archive", tag = "channels",
    security(("bearer" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id")),
    responses(
        (status = 200, description = "Archived (read-only; audited as `channel_archived`); archiving twice is harmless. Every send after this answer is refused, on any gateway", body = ChannelView),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only the channel's creator and admins archive; DMs cannot be archived", body = ErrorBody),
        (status = 404, description = "`not_found`: no such channel, not in its workspace, or a private channel or DM the caller is not in", body = ErrorBody),
        (status = 503, description = "`unavailable`, `overloaded`: the channel service could not record it; retry (archiving is idempotent)", body = ErrorBody),
    ))]
pub async fn archive(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(channel_id): PathParams<Uuid>,
) -> ApiResult<Json<ChannelView>> {
    set_archived(state, caller.user_id, channel_id, true).await
}

#[utoipa::path(post, path = "/v1/channels/{channel_id}/unarchive", tag = "channels",
    security(("bearer" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id")),
    responses(
        (status = 200, description = "Writable again (audited as `channel_unarchived`); every send after this answer is accepted", body = ChannelView),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only the channel's creator and admins unarchive", body = ErrorBody),
        (status = 404, description = "`not_found`: no such channel, not in its workspace, or a private channel or DM the caller is not in", body = ErrorBody),
        (status = 503, description = "`unavailable`, `overloaded`: the channel service could not record it; retry", body = ErrorBody),
    ))]
pub async fn unarchive(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(channel_id): PathParams<Uuid>,
) -> ApiResult<Json<ChannelView>> {
    set_archived(state, caller.user_id, channel_id, false).await
}

#[utoipa::path(post, path = "/v1/channels/{channel_id}/join", tag = "channels",
    security(("bearer" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id")),
    responses(
        (status = 200, description = "The caller is a member (joining twice is harmless)", body = ChannelView),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: guests are added by members; `channel_archived`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such channel, not in its workspace, or a private channel or DM the caller is not in", body = ErrorBody),
    ))]
pub async fn join(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(channel_id): PathParams<Uuid>,
) -> ApiResult<Json<ChannelView>> {
    let context = ChannelContext::load(&state, channel_id, caller.user_id).await?;
    // A private channel or DM the caller is not in was answered 404 by `load`: what is left to
    // join is public.
    if !context.is_member() {
        require(
            context.role,
            Action::JoinPublicChannel,
            "guests are added to channels by a member",
        )?;
        if context.channel.is_archived {
            return Err(archived());
        }
        state
            .api
            .store
            .add_channel_member(channel_id, caller.user_id)
            .await?;
    }
    let membership = state
        .api
        .store
        .channel_membership(channel_id, caller.user_id)
        .await?;
    Ok(Json(ChannelView::for_member(
        context.channel,
        membership.as_ref(),
    )))
}
