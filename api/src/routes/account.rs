//! The caller's own account: profile, password, sessions; and other users' public profiles.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chorus_cluster::access::AccessNotice;
use chorus_core::auth::{hash_password, verify_password};
use chorus_core::model::ProfileUpdate;
use chrono::Utc;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Caller, PathParams};
use crate::routes::auth::{blocking, valid_password};
use crate::views::{
    ChangePasswordRequest, ProfileView, SessionView, UpdateProfileRequest, UserView,
};

/// A zone of the IANA tz database (chrono-tz's copy), such as `Europe/Paris` or `UTC`: a name
/// of the right shape that names no zone (`Europe/Pariss`, `Mars/Olympus`) is refused too.
fn valid_time_zone(zone: &str) -> bool {
    zone.parse::<chrono_tz::Tz>().is_ok()
}

pub(crate) fn valid_avatar_url(url: &str) -> bool {
    url.len() <= 500 && url.starts_with("https://") && !url.chars().any(char::is_whitespace)
}

#[utoipa::path(patch, path = "/v1/users/me", tag = "account", security(("bearer" = [])),
    request_body = UpdateProfileRequest,
    responses(
        (status = 200, description = "The profile as it is now", body = UserView),
        (status = 400, description = "`invalid_display_name`, `invalid_avatar_url`, `invalid_time_zone`, `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
    ))]
pub async fn update_profile(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(request): Body<UpdateProfileRequest>,
) -> ApiResult<Json<UserView>> {
    let display_name = match request.display_name.as_deref().map(str::trim) {
        Some(name) if name.is_empty() || name.chars().count() > 80 => {
            return Err(ApiError::bad_request(
                "invalid_display_name",
                "display name must be 1 to 80 characters",
            ));
        }
        other => other.map(str::to_string),
    };
    if let Some(Some(url)) = &request.avatar_url
        && !valid_avatar_url(url)
    {
        return Err(ApiError::bad_request(
            "invalid_avatar_url",
            "avatar_url must be an https:// URL of at most 500 characters",
        ));
    }
    if let Some(Some(zone)) = &request.time_zone
        && !valid_time_zone(zone)
    {
        return Err(ApiError::bad_request(
            "invalid_time_zone",
            "time_zone must be an IANA zone name such as Europe/Paris",
        ));
    }
    let update = ProfileUpdate {
        display_name,
        avatar_url: request.avatar_url,
        time_zone: request.time_zone,
    };
    let user = state
        .api
        .store
        .update_profile(caller.user_id, &update)
        .await?;
    Ok(Json(user.into()))
}

#[utoipa::path(post, path = "/v1/users/me/password", tag = "account", security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Changed; every other session is revoked"),
        (status = 400, description = "`weak_password`, `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`wrong_password`: the current password does not match", body = ErrorBody),
    ))]
pub async fn change_password(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(request): Body<ChangePasswordRequest>,
) -> ApiResult<StatusCode> {
    valid_password(&request.new_password)?;
    let store = &state.api.store;
    let user = store
        .user(caller.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let credentials = store
        .user_by_email(&user.email)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let current = request.current_password;
    let hash = credentials.password_hash;
    if !blocking(move || verify_password(&current, &hash)).await? {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_password",
            "the current password does not match",
        ));
    }
    let new = request.new_password;
    let new_hash = blocking(move || hash_password(&new)).await??;
    store.set_password_hash(caller.user_id, &new_hash).await?;
    // Whoever else held a session may have known the old password.
    let revoked = store
        .revoke_sessions_of(caller.user_id, Some(caller.session_id), Utc::now())
        .await?;
    if revoked > 0 {
        state
            .api
            .access
            .notify(AccessNotice::Sessions {
                user_id: caller.user_id,
                session_id: None,
            })
            .await;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/users/me/sessions", tag = "account", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's active sessions, newest first", body = [SessionView]),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
    ))]
pub async fn sessions(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> ApiResult<Json<Vec<SessionView>>> {
    let sessions = state
        .api
        .store
        .active_sessions_of(caller.user_id, Utc::now())
        .await?;
    Ok(Json(
        sessions
            .into_iter()
            .map(|s| SessionView::new(s, caller.session_id))
            .collect(),
    ))
}

#[utoipa::path(delete, path = "/v1/users/me/sessions/{session_id}", tag = "account",
    security(("bearer" = [])),
    params(("session_id" = Uuid, Path, description = "Session id")),
    responses(
        (status = 204, description = "Revoked: its tokens and WebSockets stop working"),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such active session of the caller", body = ErrorBody),
    ))]
pub async fn revoke_session(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(session_id): PathParams<Uuid>,
) -> ApiResult<StatusCode> {
    let store = &state.api.store;
    match store.session(session_id).await? {
        Some(session) if session.user_id == caller.user_id && session.is_active(Utc::now()) => {
            store.revoke_session(session_id, Utc::now()).await?;
            state
                .api
                .access
                .notify(AccessNotice::Sessions {
                    user_id: caller.user_id,
                    session_id: Some(session_id),
                })
                .await;
            Ok(StatusCode::NO_CONTENT)
        }
        _ => Err(ApiError::not_found("session")),
    }
}

#[utoipa::path(get, path = "/v1/users/{user_id}", tag = "account", security(("bearer" = [])),
    params(("user_id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "A user's public profile", body = ProfileView),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user, or none who shares a workspace with the caller", body = ErrorBody),
    ))]
pub async fn profile(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(user_id): PathParams<Uuid>,
) -> ApiResult<Json<ProfileView>> {
    let store = &state.api.store;
    let mut visible = user_id == caller.user_id;
    if !visible {
        for (workspace, _) in store.workspaces_of(caller.user_id).await? {
            if store.workspace_role(workspace.id, user_id).await?.is_some() {
                visible = true;
                break;
            }
        }
    }
    if !visible {
        return Err(ApiError::not_found("user"));
    }
    let user = store
        .user(user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok(Json(user.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zone_and_avatar_rules() {
        for good in [
            "Europe/Paris",
            "UTC",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+3",
        ] {
            assert!(valid_time_zone(good), "{good}");
        }
        for bad in [
            "",
            "/Paris",
            "Europe//Paris",
            "Europe/Par is",
            &"a".repeat(65),
            "Europe/Pariss",
            "Mars/Olympus",
            "x",
        ] {
            assert!(!valid_time_zone(bad), "{bad}");
        }
        assert!(valid_avatar_url("https://cdn.example.com/a.png"));
        assert!(!valid_avatar_url("http://cdn.example.com/a.png"));
        assert!(!valid_avatar_url("javascript:alert(1)"));
    }
}
