//! Reading a channel: history pages of messages as they are now, one message, its edits, its
//! thread, and the raw event stream for clients catching up after `resync_required`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use chorus_core::HistoryQuery;
use chorus_core::messages::materialize;
use chorus_protocol::{EventKind, MessageEvent};
use uuid::Uuid;

use crate::AppState;
use crate::context::ChannelContext;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Caller, Params, PathParams};
use crate::routes::messages::{load_message, message_not_found};
use crate::views::{
    EditHistory, EditView, EventPage, EventParams, EventView, HistoryPage, HistoryParams,
    MessageView, RepliesParams, ThreadPage,
};

const DEFAULT_PAGE: usize = 50;
pub const MAX_PAGE: usize = 200;

pub fn page_limit(limit: Option<usize>, default: usize, max: usize) -> ApiResult<usize> {
    let limit = limit.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be 1 to {max}"),
        ));
    }
    Ok(limit)
}

/// Messages of one channel as they are now, in the order given.
pub async fn materialize_all(
    state: &AppState,
    channel: Uuid,
    messages: Vec<MessageEvent>,
) -> ApiResult<Vec<MessageView>> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let seqs: Vec<u64> = messages.iter().map(|m| m.seq).collect();
    let related = state.api.messages.related(channel, &seqs).await?;
    // Group once so a page costs one pass over the related events, not one per message.
    let mut by_target: HashMap<u64, Vec<MessageEvent>> = HashMap::new();
    for event in related {
        for seq in [event.target_seq, event.parent_seq].into_iter().flatten() {
            by_target.entry(seq).or_default().push(event.clone());
        }
    }
    Ok(messages
        .into_iter()
        .map(|m| {
            let related = by_target.remove(&m.seq).unwrap_or_default();
            materialize(m, &related).into()
        })
        .collect())
}

#[utoipa::path(get, path = "/v1/channels/{channel_id}/messages", tag = "messages",
    security(("bearer" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id"), HistoryParams),
    responses(
        (status = 200, description = "One page of messages (thread replies included, with `parent_seq`), in ascending seq order, each as it is now", body = HistoryPage),
        (status = 400, description = "`invalid_query`: limit out of 1..=200, more than one cursor, or a malformed value", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a member of the channel", body = ErrorBody),
        (status = 404, description = "`not_found`: no such channel, not in its workspace, or a private channel or DM the caller is not in", body = ErrorBody),
    ))]
pub async fn history(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(channel_id): PathParams<Uuid>,
    Params(params): Params<HistoryParams>,
) -> ApiResult<Json<HistoryPage>> {
    let limit = page_limit(params.limit, DEFAULT_PAGE, MAX_PAGE)?;
    let cursors = [
        params.before.is_some(),
        params.after.is_some(),
        params.around.is_some(),
    ];
    if cursors.iter().filter(|c| **c).count() > 1 {
        return Err(ApiError::bad_request(
            "invalid_query",
            "give at most one of `before`, `after` and `around`",
        ));
    }
    let context = ChannelContext::load(&state, channel_id, caller.user_id).await?;
    context.require_member()?;
    let store = &state.api.messages;
    let (messages, has_more) = if let Some(around) = params.around {
        // The message itself and older ones fill the first half, newer ones the rest.
        let older_count = limit.div_ceil(2);
        let newer_count = limit - older_count;
        let mut older = store
            .message_page(
                channel_id,
                HistoryQuery::Before {
                    before: Some(around.saturating_add(1)),
                    limit: older_count + 1,
                },
            )
            .await?;
        let mut newer = store
            .message_page(
                channel_id,
                HistoryQuery::After {
                    after: around,
                    limit: newer_count + 1,
                },
            )
            .await?;
        let more = older.len() > older_count || newer.len() > newer_count;
        older.truncate(older_count);
        older.reverse();
        newer.truncate(newer_count);
        older.extend(newer);
        (older, more)
    } else {
        let query = match params.after {
            Some(after) => HistoryQuery::After {
                after,
                limit: limit + 1,
            },
            None => HistoryQuery::Before {
                before: params.before,
                limit: limit + 1,
            },
        };
        let mut messages = store.message_page(channel_id, query).await?;
        let more = messages.len() > limit;
        messages.truncate(limit);
        if matches!(query, HistoryQuery::Before { .. }) {
            messages.reverse();
        }
        (messages, more)
    };
    Ok(Json(HistoryPage {
        messages: materialize_all(&state, channel_id, messages).await?,
        has_more,
    }))
}

#[utoipa::path(get, path = "/v1/channels/{channel_id}/events", tag = "messages",
    security(("bearer" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id"), EventParams),
    responses(
        (status = 200, description = "Every event after `after`, in seq order — what a WebSocket client missed (see `resync_required`)", body = EventPage),
        (status = 400, description = "`invalid_query`: missing `after`, limit out of 1..=200", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a member of the channel", body = ErrorBody),
        (status = 404, description = "`not_found`: no such channel, not in its workspace, or a private channel or DM the caller is not in", body = ErrorBody),
    ))]
pub async fn events(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(channel_id): PathParams<Uuid>,
    Params(params): Params<EventParams>,
) -> ApiResult<Json<EventPage>> {
    let limit = page_limit(params.limit, MAX_PAGE, MAX_PAGE)?;
    let context = ChannelContext::load(&state, channel_id, caller.user_id).await?;
    context.require_member()?;
    let mut events = state
        .api
        .messages
        .page(
            channel_id,
            HistoryQuery::After {
                after: params.after,
                limit: limit + 1,
            },
        )
        .await?;
    let has_more = events.len() > limit;
    events.truncate(limit);
    Ok(Json(EventPage {
        events: events.into_iter().map(EventView::from).collect(),
        has_more,
    }))
}

#[utoipa::path(get, path = "/v1/channels/{channel_id}/messages/{seq}", tag = "messages",
    security(("bearer" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id"),
           ("seq" = u64, Path, description = "The message's seq")),
    responses(
        (status = 200, description = "The message as it is now", body = MessageView),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a member of the channel", body = ErrorBody),
        (status = 404, description = "`not_found` (channel), `message_not_found`", body = ErrorBody),
    ))]
pub async fn message(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams((channel_id, seq)): PathParams<(Uuid, u64)>,
) -> ApiResult<Json<MessageView>> {
    let context = ChannelContext::load(&state, channel_id, caller.user_id).await?;
    context.require_member()?;
    Ok(Json(load_message(&state, channel_id, seq).await?.into()))
}

#[utoipa::path(get, path = "/v1/channels/{channel_id}/messages/{seq}/edits", tag = "messages",
    security(("bearer" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id"),
           ("seq" = u64, Path, description = "The message's seq")),
    responses(
        (status = 200, description = "The original text and every edit, oldest first (empty once the message is deleted)", body = EditHistory),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a member of the channel", body = ErrorBody),
        (status = 404, description = "`not_found` (channel), `message_not_found`", body = ErrorBody),
    ))]
pub async fn edits(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams((channel_id, seq)): PathParams<(Uuid, u64)>,
) -> ApiResult<Json<EditHistory>> {
    let context = ChannelContext::load(&state, channel_id, caller.user_id).await?;
    context.require_member()?;
    let state_now = load_message(&state, channel_id, seq).await?;
    // A deleted message's words are gone for readers, its earlier versions too.
    let deleted = state_now.deleted.is_some();
    Ok(Json(EditHistory {
        original_text: if deleted {
            String::new()
        } else {
            state_now.message.text
        },
        edits: state_now
            .edits
            .into_iter()
            .filter(|_| !deleted)
            .map(|e| EditView {
                seq: e.seq,
                text: e.text,
                edited_at: e.edited_at,
            })
            .collect(),
    }))
}

#[utoipa::path(get, path = "/v1/channels/{channel_id}/messages/{seq}/replies", tag = "messages",
    security(("bearer" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id"),
           ("seq" = u64, Path, description = "The thread parent's seq"), RepliesParams),
    responses(
        (status = 200, description = "The parent and one page of its replies, oldest first", body = ThreadPage),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a member of the channel", body = ErrorBody),
        (status = 404, description = "`not_found` (channel), `message_not_found`", body = ErrorBody),
    ))]
pub async fn replies(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams((channel_id, seq)): PathParams<(Uuid, u64)>,
    Params(params): Params<RepliesParams>,
) -> ApiResult<Json<ThreadPage>> {
    let limit = page_limit(params.limit, DEFAULT_PAGE, MAX_PAGE)?;
    let context = ChannelContext::load(&state, channel_id, caller.user_id).await?;
    context.require_member()?;
    let parent = load_message(&state, channel_id, seq).await?;
    if parent.message.parent_seq.is_some() {
        return Err(message_not_found());
    }
    let after = params.after.unwrap_or(0);
    let mut replies: Vec<MessageEvent> = state
        .api
        .messages
        .related(channel_id, &[seq])
        .await?
        .into_iter()
        .filter(|e| e.kind == EventKind::Message && e.parent_seq == Some(seq) && e.seq > after)
        .take(limit + 1)
        .collect();
    let has_more = replies.len() > limit;
    replies.truncate(limit);
    Ok(Json(ThreadPage {
        parent: parent.into(),
        replies: materialize_all(&state, channel_id, replies).await?,
        has_more,
    }))
}
