//! Writing messages over REST: post (or reply in a thread), edit, delete. Each write is
//! submitted to the channel's sequencer exactly as a WebSocket `send` is, answered only once it is
//! durable, and reaches subscribers as a channel event in channel order.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chorus_cluster::{PublishAck, PublishRequest, RouteError};
use chorus_core::mentions::parse_mentions;
use chorus_core::messages::{MessageState, materialize};
use chorus_protocol::EventKind;
use chorus_protocol::limits::{MAX_MESSAGE_CHARS, MAX_NONCE_BYTES};
use serde_json::json;
use uuid::Uuid;

use crate::AppState;
use crate::audit::{self, Audit};
use crate::context::{ChannelContext, archived};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Caller, PathParams};
use crate::policy::{self, Action};
use crate::views::{EditMessageRequest, MessageView, PostMessageRequest};

/// The answer to a channel-service failure.
pub fn route_error(err: RouteError) -> ApiError {
    match &err {
        RouteError::Overloaded => ApiError {
            retry_after: Some(1),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "the channel service is overloaded; retry with the same nonce",
            )
        },
        RouteError::NotLeader { .. } | RouteError::Unavailable(_) => {
            tracing::warn!(cause = %err, "channel service unavailable");
            ApiError {
                retry_after: Some(1),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the channel service is unavailable; retry with the same nonce",
                )
            }
        }
        RouteError::Rejected(_) => message_not_found(),
        RouteError::Archived => crate::context::archived(),
        RouteError::Internal(cause) => ApiError::internal(cause.clone()),
    }
}

pub fn message_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "message_not_found",
        "no such message in this channel",
    )
}

/// Submits and waits until the event is durable.
pub async fn submit(state: &AppState, request: PublishRequest) -> ApiResult<PublishAck> {
    let ticket = state
        .api
        .router
        .submit(request)
        .await
        .map_err(route_error)?;
    ticket.await.map_err(route_error)
}

/// Message text rules: 1 to 4,000 characters, not only whitespace.
pub fn valid_text(text: &str) -> ApiResult<()> {
    if text.trim().is_empty() || text.chars().count() > MAX_MESSAGE_CHARS {
        return Err(ApiError::bad_request(
            "invalid_text",
            "text must be 1 to 4000 characters and not blank",
        ));
    }
    Ok(())
}

/// A message of the channel as it is now; 404 when `seq` is not a message.
pub async fn load_message(state: &AppState, channel: Uuid, seq: u64) -> ApiResult<MessageState> {
    let messages = &state.api.messages;
    let message = messages
        .event(channel, seq)
        .await?
        .filter(|e| e.kind == EventKind::Message)
        .ok_or_else(message_not_found)?;
    let related = messages.related(channel, &[seq]).await?;
    Ok(materialize(message, &related))
}

fn generated_nonce() -> String {
    Uuid::new_v4().to_string()
}

#[utoipa::path(post, path = "/v1/channels/{channel_id}/messages", tag = "messages",
    security(("bearer" = [])), request_body = PostMessageRequest,
    params(("channel_id" = Uuid, Path, description = "Channel id")),
    responses(
        (status = 201, description = "Posted and durable; subscribers get it as a `message` event", body = MessageView),
        (status = 200, description = "The nonce was used before: the original message, nothing posted", body = MessageView),
        (status = 400, description = "`invalid_text`, `invalid_nonce`, `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a member; `channel_archived`", body = ErrorBody),
        (status = 404, description = "`not_found` (channel), `message_not_found` (thread parent, a reply or a deleted message as parent)", body = ErrorBody),
        (status = 429, description = "`rate_limited` (the caller's rate) or `workspace_message_limit` (the workspace's plan: messages per minute), with Retry-After", body = ErrorBody),
        (status = 503, description = "`overloaded`, `unavailable`: retry with the same nonce", body = ErrorBody),
    ))]
pub async fn post(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(channel_id): PathParams<Uuid>,
    Body(request): Body<PostMessageRequest>,
) -> ApiResult<(StatusCode, Json<MessageView>)> {
    let context = ChannelContext::load(&state, channel_id, caller.user_id).await?;
    context.require_writable()?;
    state
        .limiters
        .writes_user
        .check(&caller.user_id.to_string())
        .await?;
    valid_text(&request.text)?;
    let nonce = request.nonce.unwrap_or_else(generated_nonce);
    if nonce.is_empty() || nonce.len() > MAX_NONCE_BYTES {
        return Err(ApiError::bad_request(
            "invalid_nonce",
            "nonce must be 1 to 64 bytes",
        ));
    }
    if let Some(parent) = request.parent_seq {
        let parent = load_message(&state, channel_id, parent).await?;
        if parent.message.parent_seq.is_some() || parent.deleted.is_some() {
            // Threads are one level deep, as in every chat product people know, and a deleted
            // message starts none (the channel service refuses both too, while it remembers).
            return Err(message_not_found());
        }
    }
    // Last of the checks: a post refused for another reason must not use the workspace's quota.
    crate::routes::limits::count_message(&state, channel_id).await?;
    let mentions = parse_mentions(&request.text);
    let ack = submit(
        &state,
        PublishRequest {
            parent_seq: request.parent_seq,
            mentions,
            ..PublishRequest::message(channel_id, caller.user_id, nonce, request.text)
        },
    )
    .await?;
    let message = load_message(&state, channel_id, ack.seq).await?;
    let status = if ack.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(message.into())))
}

/// An event acting on message `target` (edit, delete, reaction) by `actor`.
pub fn acting(
    channel_id: Uuid,
    actor: Uuid,
    kind: EventKind,
    target: u64,
    text: String,
) -> PublishRequest {
    PublishRequest {
        kind,
        target_seq: Some(target),
        ..PublishRequest::message(channel_id, actor, generated_nonce(), text)
    }
}

fn deleted() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "message_deleted",
        "the message has been deleted",
    )
}

#[utoipa::path(patch, path = "/v1/channels/{channel_id}/messages/{seq}", tag = "messages",
    security(("bearer" = [])), request_body = EditMessageRequest,
    params(("channel_id" = Uuid, Path, description = "Channel id"),
           ("seq" = u64, Path, description = "The message's seq")),
    responses(
        (status = 200, description = "Edited; subscribers get an `edit` event; the old text stays in the edit history", body = MessageView),
        (status = 400, description = "`invalid_text`, `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only the author edits, while a member; `channel_archived`", body = ErrorBody),
        (status = 404, description = "`not_found` (channel), `message_not_found`", body = ErrorBody),
        (status = 409, description = "`message_deleted`", body = ErrorBody),
        (status = 429, description = "`rate_limited`, with Retry-After", body = ErrorBody),
        (status = 503, description = "`overloaded`, `unavailable`", body = ErrorBody),
    ))]
pub async fn edit(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams((channel_id, seq)): PathParams<(Uuid, u64)>,
    Body(request): Body<EditMessageRequest>,
) -> ApiResult<Json<MessageView>> {
    let context = ChannelContext::load(&state, channel_id, caller.user_id).await?;
    context.require_writable()?;
    state
        .limiters
        .writes_user
        .check(&caller.user_id.to_string())
        .await?;
    valid_text(&request.text)?;
    let current = load_message(&state, channel_id, seq).await?;
    if current.message.author_id != caller.user_id {
        return Err(ApiError::forbidden("only the author edits a message"));
    }
    if current.deleted.is_some() {
        return Err(deleted());
    }
    let mentions = parse_mentions(&request.text);
    submit(
        &state,
        PublishRequest {
            mentions,
            ..acting(
                channel_id,
                caller.user_id,
                EventKind::Edit,
                seq,
                request.text,
            )
        },
    )
    .await?;
    Ok(Json(load_message(&state, channel_id, seq).await?.into()))
}

#[utoipa::path(delete, path = "/v1/channels/{channel_id}/messages/{seq}", tag = "messages",
    security(("bearer" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id"),
           ("seq" = u64, Path, description = "The message's seq")),
    responses(
        (status = 204, description = "Deleted (soft: a tombstone keeps its place); subscribers get a `delete` event. Deleting someone else's message is audited as `message_deleted`"),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only the author (a member) or a workspace admin who can see the channel; `channel_archived`", body = ErrorBody),
        (status = 404, description = "`not_found` (channel), `message_not_found`", body = ErrorBody),
        (status = 409, description = "`message_deleted`: already deleted", body = ErrorBody),
        (status = 503, description = "`overloaded`, `unavailable`", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams((channel_id, seq)): PathParams<(Uuid, u64)>,
) -> ApiResult<StatusCode> {
    let context = ChannelContext::load(&state, channel_id, caller.user_id).await?;
    let current = load_message(&state, channel_id, seq).await?;
    let own = current.message.author_id == caller.user_id;
    let moderator = policy::allows(context.role, Action::DeleteOthersMessages)
        && (context.is_member() || context.channel.kind == chorus_core::model::ChannelKind::Public);
    if !(own && context.is_member() || moderator) {
        return Err(ApiError::forbidden(
            "only the author and workspace admins delete a message",
        ));
    }
    if context.channel.is_archived {
        return Err(archived());
    }
    if current.deleted.is_some() {
        return Err(deleted());
    }
    submit(
        &state,
        acting(
            channel_id,
            caller.user_id,
            EventKind::Delete,
            seq,
            String::new(),
        ),
    )
    .await?;
    if !own {
        audit::record(
            &state,
            Audit {
                workspace_id: Some(context.channel.workspace_id),
                actor_id: Some(caller.user_id),
                action: "message_deleted",
                target_id: Some(current.message.id),
                details: json!({
                    "channel_id": channel_id,
                    "seq": seq,
                    "author_id": current.message.author_id,
                }),
            },
        )
        .await;
    }
    Ok(StatusCode::NO_CONTENT)
}
