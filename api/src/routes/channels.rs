//! A channel: join it and read its history.

use axum::Json;
use axum::extract::{Path, State};
use chorus_core::HistoryQuery;
use chorus_core::model::{ChannelAccess, ChannelKind};
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Caller, Params};
use crate::routes::workspaces::role_in;
use crate::views::{ChannelView, HistoryPage, HistoryParams, MessageView};

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 200;

#[utoipa::path(post, path = "/v1/channels/{channel_id}/join", tag = "channels",
    security(("bearer" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id")),
    responses(
        (status = 200, description = "The caller is a member (joining twice is harmless)", body = ChannelView),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: private channels are joined by invitation", body = ErrorBody),
        (status = 404, description = "`not_found`: no such channel, or not in its workspace", body = ErrorBody),
    ))]
pub async fn join(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(channel_id): Path<Uuid>,
) -> ApiResult<Json<ChannelView>> {
    let store = &state.api.store;
    let channel = store
        .channel(channel_id)
        .await?
        .ok_or_else(|| ApiError::not_found("channel"))?;
    role_in(&state, channel.workspace_id, caller.user_id)
        .await
        .map_err(|_| ApiError::not_found("channel"))?;
    let access = store.channel_access(channel_id, caller.user_id).await?;
    if !matches!(access, ChannelAccess::Member { .. }) {
        if channel.kind != ChannelKind::Public {
            return Err(ApiError::forbidden(
                "private channels are joined by invitation",
            ));
        }
        store.add_channel_member(channel_id, caller.user_id).await?;
    }
    Ok(Json(ChannelView::new(channel, Some(true))))
}

#[utoipa::path(get, path = "/v1/channels/{channel_id}/messages", tag = "channels",
    security(("bearer" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id"), HistoryParams),
    responses(
        (status = 200, description = "One page, in ascending seq order", body = HistoryPage),
        (status = 400, description = "`invalid_query`: limit out of 1..=200, both cursors, or a malformed value", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a member of the channel", body = ErrorBody),
        (status = 404, description = "`not_found`: no such channel, or not in its workspace", body = ErrorBody),
    ))]
pub async fn history(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(channel_id): Path<Uuid>,
    Params(params): Params<HistoryParams>,
) -> ApiResult<Json<HistoryPage>> {
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit must be 1 to 200",
        ));
    }
    let query = match (params.before, params.after) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "give `before` or `after`, not both",
            ));
        }
        (before, None) => HistoryQuery::Before {
            before,
            limit: limit + 1,
        },
        (None, Some(after)) => HistoryQuery::After {
            after,
            limit: limit + 1,
        },
    };
    match state
        .api
        .store
        .channel_access(channel_id, caller.user_id)
        .await?
    {
        ChannelAccess::Invisible => return Err(ApiError::not_found("channel")),
        ChannelAccess::NotMember => {
            return Err(ApiError::forbidden("you are not a member of this channel"));
        }
        ChannelAccess::Member { .. } => {}
    }
    let mut messages = state.api.messages.page(channel_id, query).await?;
    let has_more = messages.len() > limit;
    messages.truncate(limit);
    if matches!(query, HistoryQuery::Before { .. }) {
        messages.reverse();
    }
    Ok(Json(HistoryPage {
        messages: messages.into_iter().map(MessageView::from).collect(),
        has_more,
    }))
}
