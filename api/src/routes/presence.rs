//! Presence over REST: the caller's custom status (RF-06.3), and the presence of a list of users
//! at once (a client's sidebar on start-up). Live changes come over the WebSocket
//! (`presence_subscribe`, docs/PROTOCOL.md).
//!
//! A status set here is announced to every gateway, so followers of the caller see it at once.
//! Presence is visible only between users who share a workspace (`chorus_core::visibility`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chorus_core::visibility::sharing_a_workspace;
use chorus_presence::PresenceError;
use chorus_protocol::limits::MAX_PRESENCE_SUBSCRIPTIONS;
use chorus_protocol::{CustomStatus, PresenceInfo, PresenceStatus, StatusError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Caller};

/// A custom status, as set and as shown.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct CustomStatusView {
    /// Up to 100 characters; may be empty when `emoji` is set.
    #[serde(default)]
    pub text: String,
    /// An emoji: a character or a short name such as `palm_tree`, at most 64 bytes.
    #[serde(default)]
    pub emoji: Option<String>,
    /// When the status clears itself; absent or null for never.
    #[serde(default, with = "chorus_protocol::timestamp::option")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<CustomStatus> for CustomStatusView {
    fn from(status: CustomStatus) -> Self {
        CustomStatusView {
            text: status.text,
            emoji: status.emoji,
            expires_at: status.expires_at,
        }
    }
}

/// The user is in a focus session (their notifications wait).
#[derive(Debug, Serialize, ToSchema)]
pub struct FocusPresenceView {
    #[serde(with = "chorus_protocol::timestamp")]
    pub since: DateTime<Utc>,
    /// The planned end; null: until they end it.
    #[serde(with = "chorus_protocol::timestamp::option")]
    pub until: Option<DateTime<Utc>>,
}

/// One user's presence.
#[derive(Debug, Serialize, ToSchema)]
pub struct PresenceView {
    pub user_id: Uuid,
    /// `online`, `idle` or `offline`.
    #[schema(value_type = String, example = "online")]
    pub status: PresenceStatus,
    /// When a connection of the user last opened, closed or renewed; null if never.
    #[serde(with = "chorus_protocol::timestamp::option")]
    pub last_seen: Option<DateTime<Utc>>,
    pub custom_status: Option<CustomStatusView>,
    /// Present while the user is in a focus session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub focus: Option<FocusPresenceView>,
}

impl From<PresenceInfo> for PresenceView {
    fn from(info: PresenceInfo) -> Self {
        PresenceView {
            user_id: info.user_id,
            status: info.status,
            last_seen: info.last_seen,
            custom_status: info.custom_status.map(Into::into),
            focus: info.focus.map(|f| FocusPresenceView {
                since: f.since,
                until: f.until,
            }),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PresenceQuery {
    /// At most 100 users.
    pub user_ids: Vec<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PresenceList {
    /// The users asked for that the caller shares a workspace with, in the order asked.
    pub presences: Vec<PresenceView>,
}

fn unavailable(err: PresenceError) -> ApiError {
    tracing::warn!(error = %err, "presence store failed");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "presence_unavailable",
        "presence is unavailable; retry",
    )
}

fn status_error(err: StatusError) -> ApiError {
    let code = match err {
        StatusError::TextTooLong => "status_too_long",
        StatusError::InvalidEmoji => "invalid_emoji",
        StatusError::Empty => "empty_status",
        StatusError::AlreadyExpired => "status_expired",
    };
    ApiError::bad_request(code, err.to_string())
}

/// Tells every gateway the caller's presence changed (presence is advisory: errors are logged).
async fn announce(state: &AppState, user: Uuid) {
    let presence = state.api.presence.as_ref();
    match presence.presence_of(&[user], Utc::now()).await {
        Ok(mut infos) => {
            if let Some(info) = infos.pop() {
                presence.announce(info).await;
            }
        }
        Err(err) => tracing::warn!(error = %err, "presence read failed"),
    }
}

#[utoipa::path(put, path = "/v1/users/me/status", tag = "presence", security(("bearer" = [])),
    request_body = CustomStatusView,
    responses(
        (status = 200, description = "The status as set; followers of the caller receive a `presence` frame", body = CustomStatusView),
        (status = 400, description = "`status_too_long`, `invalid_emoji`, `empty_status`, `status_expired`, `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 503, description = "`presence_unavailable`: the presence store could not be reached", body = ErrorBody),
    ))]
pub async fn set_status(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(request): Body<CustomStatusView>,
) -> ApiResult<Json<CustomStatusView>> {
    let status = CustomStatus {
        text: request.text.trim().to_string(),
        emoji: request.emoji,
        expires_at: request.expires_at,
    };
    status.validate(Utc::now()).map_err(status_error)?;
    state
        .api
        .presence
        .set_custom_status(caller.user_id, Some(status.clone()))
        .await
        .map_err(unavailable)?;
    announce(&state, caller.user_id).await;
    Ok(Json(status.into()))
}

#[utoipa::path(delete, path = "/v1/users/me/status", tag = "presence", security(("bearer" = [])),
    responses(
        (status = 204, description = "Cleared; followers of the caller receive a `presence` frame"),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 503, description = "`presence_unavailable`", body = ErrorBody),
    ))]
pub async fn clear_status(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> ApiResult<StatusCode> {
    state
        .api
        .presence
        .set_custom_status(caller.user_id, None)
        .await
        .map_err(unavailable)?;
    announce(&state, caller.user_id).await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/presence/query", tag = "presence", security(("bearer" = [])),
    request_body = PresenceQuery,
    responses(
        (status = 200, description = "The presence of the users asked for that the caller shares a workspace with (others are left out, as unknown users are)", body = PresenceList),
        (status = 400, description = "`too_many_users` (more than 100 distinct), `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 503, description = "`presence_unavailable`", body = ErrorBody),
    ))]
pub async fn query(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(request): Body<PresenceQuery>,
) -> ApiResult<Json<PresenceList>> {
    let mut distinct = request.user_ids;
    let mut seen = std::collections::HashSet::new();
    distinct.retain(|user| seen.insert(*user));
    if distinct.len() > MAX_PRESENCE_SUBSCRIPTIONS {
        return Err(ApiError::bad_request(
            "too_many_users",
            format!("ask for at most {MAX_PRESENCE_SUBSCRIPTIONS} users at once"),
        ));
    }
    let visible = sharing_a_workspace(state.api.store.as_ref(), caller.user_id, &distinct).await?;
    let presences = state
        .api
        .presence
        .presence_of(&visible, Utc::now())
        .await
        .map_err(unavailable)?;
    Ok(Json(PresenceList {
        presences: presences.into_iter().map(Into::into).collect(),
    }))
}
