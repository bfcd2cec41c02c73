//! Outgoing webhooks over REST: workspace admins subscribe a URL to event kinds in chosen
//! channels, change or delete the subscription, and read its delivery log. The deliveries
//! themselves are made by `chorus_webhooks::Dispatcher` from the queue these tables hold.
//!
//! A subscription starts at each channel's current end: it receives the events committed after
//! it was created, never the history before.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chorus_core::HistoryQuery;
use chorus_core::auth::new_refresh_token;
use chorus_core::bots::stored_now;
use chorus_core::outgoing::{Delivery, EventSubscription};
use chorus_protocol::EventKind;
use chorus_webhooks::target::TargetPolicy;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;
use crate::audit::{self, Audit};
use crate::context::{ChannelContext, require, role_in};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Caller, Params, PathParams};
use crate::policy::Action;
use crate::routes::history::page_limit;

/// Subscriptions a workspace may hold.
const MAX_SUBSCRIPTIONS: usize = 25;
/// Channels one subscription may name.
const MAX_CHANNELS: usize = 100;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscriptionRequest {
    /// `https://…`, or `http://` to a loopback address (127.0.0.0/8, ::1, localhost) for
    /// development; at most 2,048 bytes, no user name or password.
    pub url: String,
    /// At least one of `message`, `edit`, `delete`, `reaction_add`, `reaction_remove`.
    pub events: Vec<String>,
    /// 1 to 100 channels of the workspace that the caller can see.
    pub channel_ids: Vec<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSubscriptionRequest {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionView {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub channel_ids: Vec<Uuid>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
}

impl From<EventSubscription> for SubscriptionView {
    fn from(sub: EventSubscription) -> Self {
        SubscriptionView {
            id: sub.id,
            workspace_id: sub.workspace_id,
            url: sub.url,
            events: sub.events.iter().map(|k| k.as_str().to_string()).collect(),
            channel_ids: sub.channel_ids,
            created_by: sub.created_by,
            created_at: sub.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedSubscriptionView {
    #[serde(flatten)]
    pub details: SubscriptionView,
    /// The HMAC-SHA256 key of the signatures (docs/BOTS.md): shown only now.
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// Also the `X-Chorus-Delivery` header and the body's `delivery_id`.
    pub id: Uuid,
    pub channel_id: Uuid,
    pub seq: u64,
    pub kind: String,
    /// `pending`, `delivered` or `failed` (every attempt allowed failed).
    pub status: String,
    pub attempts: u32,
    /// The HTTP status of the last attempt that got an answer.
    pub last_status_code: Option<u16>,
    /// Why the last attempt failed (`HTTP 500`, `timed out`, `cannot connect` …).
    pub last_error: Option<String>,
    /// When a pending delivery is tried next.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        DeliveryView {
            id: d.id,
            channel_id: d.channel_id,
            seq: d.seq,
            kind: d.kind.as_str().to_string(),
            status: d.status.as_str().to_string(),
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            next_attempt_at: d.next_attempt_at,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    /// Newest first.
    pub deliveries: Vec<DeliveryView>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<Uuid>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// The `next_before` of the previous page.
    pub before: Option<Uuid>,
    /// 1 to 200; default 50.
    pub limit: Option<usize>,
}

fn valid_url(url: &str, targets: &TargetPolicy) -> ApiResult<String> {
    chorus_webhooks::endpoint::check_url(url, targets)
        .map(|_| url.to_string())
        .map_err(|why| ApiError::bad_request("invalid_url", why.to_string()))
}

fn valid_events(names: &[String]) -> ApiResult<Vec<EventKind>> {
    let mut kinds = names
        .iter()
        .map(|name| {
            EventKind::parse(name).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_events",
                    format!(
                        "unknown event kind {name:?}: use message, edit, delete, reaction_add, reaction_remove"
                    ),
                )
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    kinds.sort_by_key(|k| k.as_str());
    kinds.dedup();
    if kinds.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_events",
            "name at least one event kind",
        ));
    }
    Ok(kinds)
}

/// The subscription, for an admin of its workspace; 404 when the caller is not in it.
async fn subscription_for_admin(
    state: &AppState,
    id: Uuid,
    caller: Uuid,
) -> ApiResult<EventSubscription> {
    let sub = state
        .api
        .store
        .subscriptions()
        .subscription(id)
        .await?
        .ok_or_else(|| ApiError::not_found("subscription"))?;
    let role = role_in(state, sub.workspace_id, caller)
        .await
        .map_err(|_| ApiError::not_found("subscription"))?;
    require(
        role,
        Action::ManageBots,
        "only owners and admins manage event subscriptions",
    )?;
    Ok(sub)
}

#[utoipa::path(post, path = "/v1/workspaces/{workspace_id}/event-subscriptions", tag = "bots",
    security(("bearer" = [])), request_body = CreateSubscriptionRequest,
    params(("workspace_id" = Uuid, Path, description = "Workspace id")),
    responses(
        (status = 201, description = "Created; the signing secret is shown only now. Events committed from now on are delivered", body = CreatedSubscriptionView),
        (status = 400, description = "`invalid_url`, `invalid_events`, `invalid_channels`, `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only owners and admins", body = ErrorBody),
        (status = 404, description = "`not_found`: no such workspace, or a channel the caller cannot see", body = ErrorBody),
        (status = 409, description = "`too_many_subscriptions`: 25 per workspace", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(workspace_id): PathParams<Uuid>,
    Body(request): Body<CreateSubscriptionRequest>,
) -> ApiResult<(StatusCode, Json<CreatedSubscriptionView>)> {
    let role = role_in(&state, workspace_id, caller.user_id).await?;
    require(
        role,
        Action::ManageBots,
        "only owners and admins manage event subscriptions",
    )?;
    let url = valid_url(&request.url, &state.api.outbound.policy)?;
    let events = valid_events(&request.events)?;
    let mut channel_ids = request.channel_ids.clone();
    channel_ids.sort();
    channel_ids.dedup();
    if channel_ids.is_empty() || channel_ids.len() > MAX_CHANNELS {
        return Err(ApiError::bad_request(
            "invalid_channels",
            "name 1 to 100 channels",
        ));
    }
    let subs = state.api.store.subscriptions();
    if subs.subscriptions_of(workspace_id).await?.len() >= MAX_SUBSCRIPTIONS {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_subscriptions",
            "a workspace holds at most 25 event subscriptions",
        ));
    }
    let mut start = Vec::with_capacity(channel_ids.len());
    for channel_id in &channel_ids {
        let context = ChannelContext::load(&state, *channel_id, caller.user_id).await?;
        if context.channel.workspace_id != workspace_id {
            return Err(ApiError::bad_request(
                "invalid_channels",
                "every channel must belong to the workspace",
            ));
        }
        // The channel's end now: events after it are delivered.
        let last = state
            .api
            .messages
            .page(
                *channel_id,
                HistoryQuery::Before {
                    before: None,
                    limit: 1,
                },
            )
            .await?
            .first()
            .map_or(0, |event| event.seq);
        start.push((*channel_id, last));
    }
    let secret = format!("whsec_{}", new_refresh_token());
    let sub = EventSubscription {
        id: Uuid::now_v7(),
        workspace_id,
        url,
        secret: secret.clone(),
        events,
        channel_ids,
        created_by: caller.user_id,
        created_at: stored_now(),
    };
    subs.create_subscription(&sub, &start).await?;
    audit::record(
        &state,
        Audit {
            workspace_id: Some(workspace_id),
            actor_id: Some(caller.user_id),
            action: "event_subscription_created",
            target_id: Some(sub.id),
            details: json!({ "url": sub.url, "channel_ids": sub.channel_ids }),
        },
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(CreatedSubscriptionView {
            details: sub.into(),
            secret,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/workspaces/{workspace_id}/event-subscriptions", tag = "bots",
    security(("bearer" = [])),
    params(("workspace_id" = Uuid, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "The workspace's subscriptions (without secrets), oldest first", body = [SubscriptionView]),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only owners and admins", body = ErrorBody),
        (status = 404, description = "`not_found`: no such workspace visible to the caller", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(workspace_id): PathParams<Uuid>,
) -> ApiResult<Json<Vec<SubscriptionView>>> {
    let role = role_in(&state, workspace_id, caller.user_id).await?;
    require(
        role,
        Action::ManageBots,
        "only owners and admins manage event subscriptions",
    )?;
    let subs = state
        .api
        .store
        .subscriptions()
        .subscriptions_of(workspace_id)
        .await?;
    Ok(Json(subs.into_iter().map(Into::into).collect()))
}

#[utoipa::path(get, path = "/v1/event-subscriptions/{subscription_id}", tag = "bots",
    security(("bearer" = [])),
    params(("subscription_id" = Uuid, Path, description = "Subscription id")),
    responses(
        (status = 200, description = "The subscription (without its secret)", body = SubscriptionView),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only owners and admins", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(id): PathParams<Uuid>,
) -> ApiResult<Json<SubscriptionView>> {
    Ok(Json(
        subscription_for_admin(&state, id, caller.user_id)
            .await?
            .into(),
    ))
}

#[utoipa::path(patch, path = "/v1/event-subscriptions/{subscription_id}", tag = "bots",
    security(("bearer" = [])), request_body = UpdateSubscriptionRequest,
    params(("subscription_id" = Uuid, Path, description = "Subscription id")),
    responses(
        (status = 200, description = "Changed: pending deliveries go to the new URL; the new kinds apply to events not yet enqueued", body = SubscriptionView),
        (status = 400, description = "`invalid_url`, `invalid_events`, `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only owners and admins", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(id): PathParams<Uuid>,
    Body(request): Body<UpdateSubscriptionRequest>,
) -> ApiResult<Json<SubscriptionView>> {
    let sub = subscription_for_admin(&state, id, caller.user_id).await?;
    let url = request
        .url
        .as_deref()
        .map(|url| valid_url(url, &state.api.outbound.policy))
        .transpose()?;
    let events = request.events.as_deref().map(valid_events).transpose()?;
    let subs = state.api.store.subscriptions();
    subs.update_subscription(id, url.as_deref(), events.as_deref())
        .await?;
    audit::record(
        &state,
        Audit {
            workspace_id: Some(sub.workspace_id),
            actor_id: Some(caller.user_id),
            action: "event_subscription_changed",
            target_id: Some(id),
            details: json!({ "url": url, "events": request.events }),
        },
    )
    .await;
    let changed = subs
        .subscription(id)
        .await?
        .ok_or_else(|| ApiError::not_found("subscription"))?;
    Ok(Json(changed.into()))
}

#[utoipa::path(delete, path = "/v1/event-subscriptions/{subscription_id}", tag = "bots",
    security(("bearer" = [])),
    params(("subscription_id" = Uuid, Path, description = "Subscription id")),
    responses(
        (status = 204, description = "Deleted with its pending deliveries and its log"),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only owners and admins", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(id): PathParams<Uuid>,
) -> ApiResult<StatusCode> {
    let sub = subscription_for_admin(&state, id, caller.user_id).await?;
    state
        .api
        .store
        .subscriptions()
        .delete_subscription(id)
        .await?;
    audit::record(
        &state,
        Audit {
            workspace_id: Some(sub.workspace_id),
            actor_id: Some(caller.user_id),
            action: "event_subscription_deleted",
            target_id: Some(id),
            details: json!({ "url": sub.url }),
        },
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/event-subscriptions/{subscription_id}/deliveries", tag = "bots",
    security(("bearer" = [])), params(("subscription_id" = Uuid, Path, description = "Subscription id"), DeliveryParams),
    responses(
        (status = 200, description = "The delivery log, newest first: status, attempts, last HTTP status", body = DeliveryPage),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only owners and admins", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn deliveries(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(id): PathParams<Uuid>,
    Params(params): Params<DeliveryParams>,
) -> ApiResult<Json<DeliveryPage>> {
    subscription_for_admin(&state, id, caller.user_id).await?;
    let limit = page_limit(params.limit, 50, 200)?;
    let deliveries = state
        .api
        .store
        .subscriptions()
        .deliveries(id, params.before, limit)
        .await?;
    let next_before = (deliveries.len() == limit)
        .then(|| deliveries.last().map(|d| d.id))
        .flatten();
    Ok(Json(DeliveryPage {
        deliveries: deliveries.into_iter().map(Into::into).collect(),
        next_before,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_kinds_are_checked_sorted_and_deduplicated() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            valid_events(&names(&["reaction_add", "message", "message"])).unwrap(),
            vec![EventKind::Message, EventKind::ReactionAdd]
        );
        assert!(valid_events(&names(&[])).is_err());
        assert!(valid_events(&names(&["typing"])).is_err());
    }
}
