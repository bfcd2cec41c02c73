//! Incoming webhooks: an admin creates one for a channel, naming the bot it posts as; a `POST` of
//! JSON `{"text"}` to its secret URL posts that text as the bot, through the same path (and the
//! same limits) as `POST /v1/channels/{id}/messages`. An `Idempotency-Key` header becomes the
//! message's nonce, so a retried delivery posts once.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chorus_cluster::PublishRequest;
use chorus_cluster::access::AccessNotice;
use chorus_core::auth::{new_refresh_token, refresh_token_hash};
use chorus_core::bots::{IncomingWebhook, stored_now};
use chorus_core::mentions::parse_mentions;
use chorus_protocol::limits::MAX_NONCE_BYTES;
use serde_json::json;
use uuid::Uuid;

use crate::AppState;
use crate::audit::{self, Audit};
use crate::context::{ChannelContext, require};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Caller, PathParams};
use crate::policy::Action;
use crate::routes::bots::valid_name;
use crate::routes::messages::{load_message, submit, valid_text};
use crate::views::{
    CreateWebhookRequest, CreatedWebhookView, MessageView, WebhookPostRequest, WebhookView,
};

/// The header whose value becomes the posted message's nonce.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The channel, for an admin of its workspace who can see it.
async fn channel_for_admin(
    state: &AppState,
    channel_id: Uuid,
    caller: Uuid,
) -> ApiResult<ChannelContext> {
    let context = ChannelContext::load(state, channel_id, caller).await?;
    require(
        context.role,
        Action::ManageBots,
        "only owners and admins manage webhooks",
    )?;
    Ok(context)
}

#[utoipa::path(post, path = "/v1/channels/{channel_id}/webhooks", tag = "bots",
    security(("bearer" = [])), request_body = CreateWebhookRequest,
    params(("channel_id" = Uuid, Path, description = "Channel id")),
    responses(
        (status = 201, description = "Created; the secret URL is shown only now. The bot is now a member of the channel", body = CreatedWebhookView),
        (status = 400, description = "`invalid_name`, `invalid_bot` (no bot of this workspace), `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only owners and admins; `channel_archived`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such channel visible to the caller", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(channel_id): PathParams<Uuid>,
    Body(request): Body<CreateWebhookRequest>,
) -> ApiResult<(StatusCode, Json<CreatedWebhookView>)> {
    let context = channel_for_admin(&state, channel_id, caller.user_id).await?;
    if context.channel.is_archived {
        return Err(crate::context::archived());
    }
    let name = valid_name(&request.name)?;
    let store = &state.api.store;
    let bot = store
        .bot(request.bot_id)
        .await?
        .filter(|bot| bot.workspace_id == context.channel.workspace_id)
        .ok_or_else(|| {
            ApiError::bad_request("invalid_bot", "bot_id names no bot of this workspace")
        })?;
    let secret = new_refresh_token();
    let hook = IncomingWebhook {
        id: Uuid::now_v7(),
        workspace_id: context.channel.workspace_id,
        channel_id,
        bot_id: bot.user.id,
        name,
        secret_hash: refresh_token_hash(&secret),
        created_by: caller.user_id,
        created_at: stored_now(),
    };
    store.add_channel_member(channel_id, bot.user.id).await?;
    store.create_webhook(&hook).await?;
    // The bot's open sockets pick up the channel (bots follow their memberships).
    state
        .api
        .access
        .notify(AccessNotice::Channel {
            channel_id,
            user_id: Some(bot.user.id),
        })
        .await;
    audit::record(
        &state,
        Audit {
            workspace_id: Some(hook.workspace_id),
            actor_id: Some(caller.user_id),
            action: "webhook_created",
            target_id: Some(hook.id),
            details: json!({ "channel_id": channel_id, "bot_id": hook.bot_id }),
        },
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhookView {
            url: format!("/v1/hooks/{}/{secret}", hook.id),
            details: hook.into(),
        }),
    ))
}

#[utoipa::path(get, path = "/v1/channels/{channel_id}/webhooks", tag = "bots",
    security(("bearer" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id")),
    responses(
        (status = 200, description = "The channel's webhooks (without their URLs), oldest first", body = [WebhookView]),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only owners and admins", body = ErrorBody),
        (status = 404, description = "`not_found`: no such channel visible to the caller", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(channel_id): PathParams<Uuid>,
) -> ApiResult<Json<Vec<WebhookView>>> {
    channel_for_admin(&state, channel_id, caller.user_id).await?;
    let hooks = state.api.store.webhooks_of(channel_id).await?;
    Ok(Json(hooks.into_iter().map(WebhookView::from).collect()))
}

#[utoipa::path(delete, path = "/v1/webhooks/{webhook_id}", tag = "bots",
    security(("bearer" = [])),
    params(("webhook_id" = Uuid, Path, description = "Webhook id")),
    responses(
        (status = 204, description = "Deleted: its URL answers 404 from now on"),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only owners and admins", body = ErrorBody),
        (status = 404, description = "`not_found`: no such webhook visible to the caller", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(webhook_id): PathParams<Uuid>,
) -> ApiResult<StatusCode> {
    let store = &state.api.store;
    let hook = store
        .webhook(webhook_id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    channel_for_admin(&state, hook.channel_id, caller.user_id)
        .await
        .map_err(|err| match err.status {
            StatusCode::FORBIDDEN => err,
            _ => ApiError::not_found("webhook"),
        })?;
    store.delete_webhook(webhook_id).await?;
    audit::record(
        &state,
        Audit {
            workspace_id: Some(hook.workspace_id),
            actor_id: Some(caller.user_id),
            action: "webhook_deleted",
            target_id: Some(hook.id),
            details: json!({ "channel_id": hook.channel_id }),
        },
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The nonce a delivery posts with: its `Idempotency-Key` (1 to 64 bytes), or a fresh one. Nonces
/// are remembered per author, so keys are per bot: webhooks sharing a bot share their keys.
fn nonce_of(headers: &HeaderMap) -> ApiResult<String> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(Uuid::new_v4().to_string());
    };
    match value.to_str() {
        Ok(key) if !key.is_empty() && key.len() <= MAX_NONCE_BYTES => Ok(key.to_string()),
        _ => Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 64 visible ASCII characters",
        )),
    }
}

#[utoipa::path(post, path = "/v1/hooks/{webhook_id}/{secret}", tag = "bots",
    request_body = WebhookPostRequest,
    params(("webhook_id" = Uuid, Path, description = "Webhook id"),
           ("secret" = String, Path, description = "The secret part of the webhook's URL"),
           ("Idempotency-Key" = Option<String>, Header, description = "1 to 64 characters: the same key again returns the first post's message and posts nothing")),
    responses(
        (status = 201, description = "Posted as the webhook's bot and durable", body = MessageView),
        (status = 200, description = "The Idempotency-Key was used before: the original message, nothing posted", body = MessageView),
        (status = 400, description = "`invalid_text`, `invalid_idempotency_key`, `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the bot is no longer in the channel or is disabled; `channel_archived`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such webhook, or the secret is wrong", body = ErrorBody),
        (status = 429, description = "`rate_limited` (the bot's message writes per minute), with Retry-After", body = ErrorBody),
        (status = 503, description = "`overloaded`, `unavailable`: retry with the same Idempotency-Key", body = ErrorBody),
    ))]
pub async fn deliver(
    State(state): State<AppState>,
    PathParams((webhook_id, secret)): PathParams<(Uuid, String)>,
    headers: HeaderMap,
    Body(request): Body<WebhookPostRequest>,
) -> ApiResult<(StatusCode, Json<MessageView>)> {
    let store = &state.api.store;
    // Unknown hook and wrong secret answer alike: the URL is the credential.
    let hook = store
        .webhook(webhook_id)
        .await?
        .filter(|hook| hook.secret_hash == refresh_token_hash(&secret))
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    let bot = hook.bot_id;
    if store
        .user(bot)
        .await?
        .is_none_or(|u| u.disabled_at.is_some())
    {
        return Err(ApiError::forbidden("the webhook's bot is disabled"));
    }
    let context = ChannelContext::load(&state, hook.channel_id, bot)
        .await
        .map_err(|_| ApiError::forbidden("the webhook's bot cannot see the channel"))?;
    context.require_writable()?;
    state.limiters.writes_user.check(&bot.to_string()).await?;
    valid_text(&request.text)?;
    let nonce = nonce_of(&headers)?;
    let ack = submit(
        &state,
        PublishRequest {
            mentions: parse_mentions(&request.text),
            ..PublishRequest::message(hook.channel_id, bot, nonce, request.text)
        },
    )
    .await?;
    let message = load_message(&state, hook.channel_id, ack.seq).await?;
    let status = if ack.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(message.into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idempotency_key_becomes_the_nonce_within_its_limits() {
        let mut headers = HeaderMap::new();
        assert!(nonce_of(&headers).unwrap().len() <= MAX_NONCE_BYTES);
        headers.insert(IDEMPOTENCY_KEY, "build-42".parse().unwrap());
        assert_eq!(nonce_of(&headers).unwrap(), "build-42");
        headers.insert(IDEMPOTENCY_KEY, "x".repeat(65).parse().unwrap());
        assert!(nonce_of(&headers).is_err());
        headers.insert(IDEMPOTENCY_KEY, "".parse().unwrap());
        assert!(nonce_of(&headers).is_err());
    }
}
