//! Emoji reactions: one per user per emoji per message (RF-05.4).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chorus_cluster::PublishRequest;
use chorus_protocol::EventKind;
use uuid::Uuid;

use crate::AppState;
use crate::context::ChannelContext;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Caller, PathParams};
use crate::routes::messages::{acting, load_message, submit};
use crate::views::MessageView;

/// An emoji: a short name (`thumbsup`, `+1`) or an emoji character sequence — 1 to 32
/// characters, no whitespace or control characters.
fn valid_emoji(emoji: &str) -> bool {
    let count = emoji.chars().count();
    (1..=32).contains(&count) && !emoji.chars().any(|c| c.is_whitespace() || c.is_control())
}

async fn react(
    state: AppState,
    user: Uuid,
    channel_id: Uuid,
    seq: u64,
    emoji: String,
    kind: EventKind,
) -> ApiResult<Json<MessageView>> {
    let context = ChannelContext::load(&state, channel_id, user).await?;
    context.require_writable()?;
    if !valid_emoji(&emoji) {
        return Err(ApiError::bad_request(
            "invalid_emoji",
            "emoji must be 1 to 32 characters without spaces",
        ));
    }
    state.limiters.writes_user.check(&user.to_string()).await?;
    let current = load_message(&state, channel_id, seq).await?;
    if current.deleted.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "message_deleted",
            "the message has been deleted",
        ));
    }
    let holds = current
        .reactions
        .iter()
        .any(|r| r.emoji == emoji && r.users.contains(&user));
    // Adding a reaction one holds, or taking back one one does not, changes nothing: no event.
    let changes = (kind == EventKind::ReactionAdd) != holds;
    if !changes {
        return Ok(Json(current.into()));
    }
    submit(
        &state,
        PublishRequest {
            emoji: Some(emoji),
            ..acting(channel_id, user, kind, seq, String::new())
        },
    )
    .await?;
    Ok(Json(load_message(&state, channel_id, seq).await?.into()))
}

#[utoipa::path(put, path = "/v1/channels/{channel_id}/messages/{seq}/reactions/{emoji}", tag = "messages",
    security(("bearer" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id"),
           ("seq" = u64, Path, description = "The message's seq"),
           ("emoji" = String, Path, description = "Short name or emoji, URL-encoded")),
    responses(
        (status = 200, description = "The message with its reactions; adding one the caller already holds changes nothing", body = MessageView),
        (status = 400, description = "`invalid_emoji`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a member; `channel_archived`", body = ErrorBody),
        (status = 404, description = "`not_found` (channel), `message_not_found`", body = ErrorBody),
        (status = 409, description = "`message_deleted`", body = ErrorBody),
        (status = 429, description = "`rate_limited`, with Retry-After", body = ErrorBody),
    ))]
pub async fn add(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams((channel_id, seq, emoji)): PathParams<(Uuid, u64, String)>,
) -> ApiResult<Json<MessageView>> {
    react(
        state,
        caller.user_id,
        channel_id,
        seq,
        emoji,
        EventKind::ReactionAdd,
    )
    .await
}

#[utoipa::path(delete, path = "/v1/channels/{channel_id}/messages/{seq}/reactions/{emoji}", tag = "messages",
    security(("bearer" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id"),
           ("seq" = u64, Path, description = "The message's seq"),
           ("emoji" = String, Path, description = "Short name or emoji, URL-encoded")),
    responses(
        (status = 200, description = "The message with its reactions; removing one the caller does not hold changes nothing", body = MessageView),
        (status = 400, description = "`invalid_emoji`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a member; `channel_archived`", body = ErrorBody),
        (status = 404, description = "`not_found` (channel), `message_not_found`", body = ErrorBody),
        (status = 409, description = "`message_deleted`", body = ErrorBody),
        (status = 429, description = "`rate_limited`, with Retry-After", body = ErrorBody),
    ))]
pub async fn remove(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams((channel_id, seq, emoji)): PathParams<(Uuid, u64, String)>,
) -> ApiResult<Json<MessageView>> {
    react(
        state,
        caller.user_id,
        channel_id,
        seq,
        emoji,
        EventKind::ReactionRemove,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::valid_emoji;

    #[test]
    fn emoji_rules() {
        for good in ["thumbsup", "+1", "🎉", "👍🏽", "flag-fr"] {
            assert!(valid_emoji(good), "{good}");
        }
        for bad in ["", "two words", "tab\t", &"x".repeat(33)] {
            assert!(!valid_emoji(bad), "{bad:?}");
        }
    }
}
