//! Notifications over REST: the caller's notifications (what the `notification` frame carried,
//! kept for a client that was offline or lost a frame), and the caller's notification level per
//! channel (`all`, `mentions`, `nothing`; mute is separate and silences everything).
//!
//! Who is notified of what is decided by `chorus_core::notify::rules` on the channel service's
//! leader path (`chorus_notify`); this file only reads and sets what that path reads.

use axum::Json;
use axum::extract::State;
use chorus_core::notify::NotifyLevel;
use chorus_protocol::{Notification, NotificationKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;
use crate::context::ChannelContext;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Caller, Params, PathParams};
use crate::routes::history::page_limit;

/// One notification, as the `notification` frame carries it.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationView {
    /// The same id as the frame's: a client drops a notification it already has.
    pub id: Uuid,
    /// `dm`, `mention`, `thread_reply`, `channel_mention`, `here_mention`, `message` or
    /// `invitation`.
    #[schema(value_type = String, example = "mention")]
    pub kind: NotificationKind,
    pub workspace_id: Uuid,
    /// The channel to open; absent for an invitation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The thread to open, for a reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_seq: Option<u64>,
    /// Who wrote the message, or who added the caller to the workspace.
    pub actor_id: Uuid,
    /// At most 140 characters of the message, or the workspace's name.
    pub preview: String,
    #[serde(with = "chorus_protocol::timestamp")]
    pub created_at: DateTime<Utc>,
}

impl From<Notification> for NotificationView {
    fn from(n: Notification) -> Self {
        NotificationView {
            id: n.id,
            kind: n.kind,
            workspace_id: n.workspace_id,
            channel_id: n.channel_id,
            seq: n.seq,
            parent_seq: n.parent_seq,
            actor_id: n.actor_id,
            preview: n.preview,
            created_at: n.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationPage {
    /// Newest first.
    pub notifications: Vec<NotificationView>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<Uuid>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationParams {
    /// The `next_before` of the previous page.
    pub before: Option<Uuid>,
    /// 1 to 200; default 50.
    pub limit: Option<usize>,
}

#[utoipa::path(get, path = "/v1/notifications", tag = "notifications",
    security(("bearer" = [])), params(NotificationParams),
    responses(
        (status = 200, description = "The caller's notifications, newest first", body = NotificationPage),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params(params): Params<NotificationParams>,
) -> ApiResult<Json<NotificationPage>> {
    let limit = page_limit(params.limit, 50, 200)?;
    let notifications = state
        .api
        .store
        .notifications()
        .notifications_of(caller.user_id, params.before, limit)
        .await?;
    let next_before = (notifications.len() == limit)
        .then(|| notifications.last().map(|n| n.id))
        .flatten();
    Ok(Json(NotificationPage {
        notifications: notifications.into_iter().map(Into::into).collect(),
        next_before,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyLevelRequest {
    /// `all`, `mentions` or `nothing`; null for the default (`all` in a direct-message channel,
    /// `mentions` elsewhere).
    #[schema(value_type = Option<String>, example = "mentions")]
    pub level: Option<NotifyLevel>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotifyLevelView {
    pub channel_id: Uuid,
    /// What the caller chose; null for the default.
    #[schema(value_type = Option<String>)]
    pub level: Option<NotifyLevel>,
    /// The level in effect.
    #[schema(value_type = String, example = "mentions")]
    pub effective_level: NotifyLevel,
}

#[utoipa::path(put, path = "/v1/channels/{channel_id}/notifications", tag = "notifications",
    security(("bearer" = [])), request_body = NotifyLevelRequest,
    params(("channel_id" = Uuid, Path, description = "Channel id")),
    responses(
        (status = 200, description = "The caller's level for the channel now", body = NotifyLevelView),
        (status = 400, description = "`invalid_json`, `invalid_body` (an unknown level)", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a member", body = ErrorBody),
        (status = 404, description = "`not_found`: no such channel, not in its workspace, or a private channel or DM the caller is not in", body = ErrorBody),
    ))]
pub async fn set_level(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(channel_id): PathParams<Uuid>,
    Body(request): Body<NotifyLevelRequest>,
) -> ApiResult<Json<NotifyLevelView>> {
    let context = ChannelContext::load(&state, channel_id, caller.user_id).await?;
    context.require_member()?;
    if !state
        .api
        .store
        .notifications()
        .set_notify_level(channel_id, caller.user_id, request.level)
        .await?
    {
        return Err(ApiError::forbidden("you are not a member of this channel"));
    }
    Ok(Json(NotifyLevelView {
        channel_id,
        level: request.level,
        effective_level: request
            .level
            .unwrap_or(NotifyLevel::default_for(context.channel.kind)),
    }))
}
