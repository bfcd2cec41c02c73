//! Registration, login, token refresh, logout and the caller's profile.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chorus_core::StoreError;
use chorus_core::auth::{
    ACCESS_TTL, Principal, REFRESH_TTL, hash_password, new_refresh_token, refresh_token_hash,
    verify_password,
};
use chorus_core::model::{Session, User};
use chrono::Utc;
use uuid::Uuid;

use crate::AppState;
use crate::audit::{self, Audit};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Caller};
use crate::request_log::ClientAddr;
use crate::views::{LoginRequest, RefreshRequest, RegisterRequest, TokenResponse, UserView};
use chorus_cluster::access::AccessNotice;
use serde_json::json;

/// A hash of a password nobody has, verified when the e-mail is unknown so that a login takes as
/// long for an unknown account as for a wrong password (no account enumeration by timing).
fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| hash_password(&new_refresh_token()).unwrap_or_default())
        .clone()
}

/// A simple but real e-mail check: one `@`, a local part, a dotted domain, no spaces.
pub fn valid_email(email: &str) -> bool {
    if email.len() > 254 || email.chars().any(char::is_whitespace) {
        return false;
    }
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)
}

/// Password rules: 8 to 256 characters.
pub(crate) fn valid_password(password: &str) -> ApiResult<()> {
    if (8..=256).contains(&password.chars().count()) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "weak_password",
            "password must be 8 to 256 characters",
        ))
    }
}

#[utoipa::path(post, path = "/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered", body = UserView),
        (status = 400, description = "`invalid_email`, `weak_password`, `invalid_display_name`, `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 409, description = "`email_taken`", body = ErrorBody),
        (status = 429, description = "`rate_limited` (per IP and per e-mail), with Retry-After", body = ErrorBody),
    ))]
pub async fn register(
    State(state): State<AppState>,
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    Body(request): Body<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    state
        .limiters
        .register_ip
        .check(&client.to_string())
        .await?;
    let email = request.email.trim().to_lowercase();
    if !valid_email(&email) {
        return Err(ApiError::bad_request(
            "invalid_email",
            "not a valid e-mail address",
        ));
    }
    state.limiters.register_account.check(&email).await?;
    valid_password(&request.password)?;
    let display_name = match request.display_name.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => email.split('@').next().unwrap_or_default().to_string(),
    };
    if display_name.chars().count() > 80 {
        return Err(ApiError::bad_request(
            "invalid_display_name",
            "display name must be at most 80 characters",
        ));
    }
    let password = request.password;
    let hash = blocking(move || hash_password(&password)).await??;
    match state
        .api
        .store
        .create_user(&email, &display_name, &hash)
        .await
    {
        Ok(user) => Ok((StatusCode::CREATED, Json(user.into()))),
        Err(StoreError::Conflict(_)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "email_taken",
            "an account with this e-mail exists",
        )),
        Err(err) => Err(err.into()),
    }
}

/// Opens a session for `user` and hands out its tokens.
async fn open_session(state: &AppState, user: User) -> ApiResult<TokenResponse> {
    let now = Utc::now();
    let session_id = Uuid::new_v4();
    let refresh_token = format!("{session_id}.{}", new_refresh_token());
    state
        .api
        .store
        .create_session(&Session {
            id: session_id,
            user_id: user.id,
            refresh_hash: refresh_token_hash(&refresh_token),
            refresh_expires_at: now + REFRESH_TTL,
            created_at: now,
            revoked_at: None,
        })
        .await?;
    Ok(tokens(state, user, session_id, refresh_token))
}

fn tokens(state: &AppState, user: User, session_id: Uuid, refresh_token: String) -> TokenResponse {
    let principal = Principal {
        bot_scopes: None,
        user_id: user.id,
        session_id,
    };
    TokenResponse {
        access_token: state
            .api
            .auth
            .issue_access(principal, Utc::now(), ACCESS_TTL),
        refresh_token,
        token_type: "Bearer",
        expires_in: ACCESS_TTL.as_secs(),
        session_id,
        user: user.into(),
    }
}

#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 400, description = "`invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`invalid_credentials`", body = ErrorBody),
        (status = 403, description = "`account_disabled` (only told to someone who knows the password)", body = ErrorBody),
        (status = 429, description = "`rate_limited` (per IP and per account), with Retry-After", body = ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    Body(request): Body<LoginRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let email = request.email.trim().to_lowercase();
    state.limiters.login_ip.check(&client.to_string()).await?;
    state.limiters.login_account.check(&email).await?;
    let credentials = state.api.store.user_by_email(&email).await?;
    let hash = credentials.as_ref().map(|c| c.password_hash.clone());
    let password = request.password;
    let matches =
        blocking(move || verify_password(&password, &hash.unwrap_or_else(dummy_hash))).await?;
    match credentials {
        Some(credentials) if matches && credentials.user.disabled_at.is_none() => {
            tracing::info!(user_id = %credentials.user.id, "login");
            let user_id = credentials.user.id;
            let tokens = open_session(&state, credentials.user).await?;
            audit::record(
                &state,
                Audit {
                    workspace_id: None,
                    actor_id: Some(user_id),
                    action: "login_succeeded",
                    target_id: Some(tokens.session_id),
                    details: json!({"ip": client.to_string()}),
                },
            )
            .await;
            Ok(Json(tokens))
        }
        credentials => {
            tracing::info!(%email, "login failed");
            let disabled = credentials
                .as_ref()
                .is_some_and(|c| matches && c.user.disabled_at.is_some());
            audit::record(
                &state,
                Audit {
                    workspace_id: None,
                    actor_id: credentials.as_ref().map(|c| c.user.id),
                    action: "login_failed",
                    target_id: None,
                    details: json!({
                        "email": email,
                        "ip": client.to_string(),
                        "reason": if disabled { "account_disabled" } else { "invalid_credentials" },
                    }),
                },
            )
            .await;
            if disabled {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "account_disabled",
                    "this account has been disabled",
                ));
            }
            Err(ApiError::unauthenticated(
                "invalid_credentials",
                "wrong e-mail or password",
            ))
        }
    }
}

#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens; the refresh token given is used up", body = TokenResponse),
        (status = 400, description = "`invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`invalid_refresh_token` (unknown, expired, revoked, or already used — reuse revokes the session)", body = ErrorBody),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    Body(request): Body<RefreshRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let invalid = || {
        ApiError::unauthenticated(
            "invalid_refresh_token",
            "refresh token is invalid, expired or already used",
        )
    };
    let old = request.refresh_token;
    let session_id = old
        .split_once('.')
        .and_then(|(id, _)| Uuid::parse_str(id).ok())
        .ok_or_else(invalid)?;
    let store = &state.api.store;
    let session = store.session(session_id).await?.ok_or_else(invalid)?;
    let now = Utc::now();
    if !session.is_active(now) {
        return Err(invalid());
    }
    let new_token = format!("{session_id}.{}", new_refresh_token());
    let rotated = store
        .rotate_refresh(
            session_id,
            &refresh_token_hash(&old),
            &refresh_token_hash(&new_token),
            now + REFRESH_TTL,
        )
        .await?;
    if !rotated {
        // A used refresh token came back: it may have been stolen. End the whole session.
        tracing::warn!(%session_id, "refresh token reuse; session revoked");
        store.revoke_session(session_id, now).await?;
        // The thief may hold an open socket too: close it now (4100), as logout does, rather
        // than at the next access sweep.
        state
            .api
            .access
            .notify(AccessNotice::Sessions {
                user_id: session.user_id,
                session_id: Some(session_id),
            })
            .await;
        return Err(invalid());
    }
    let user = store.user(session.user_id).await?.ok_or_else(invalid)?;
    Ok(Json(tokens(&state, user, session_id, new_token)))
}

#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 204, description = "Session revoked: its access and refresh tokens stop working, and its WebSockets close with 4100"),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
    ))]
pub async fn logout(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> ApiResult<StatusCode> {
    state
        .api
        .store
        .revoke_session(caller.session_id, Utc::now())
        .await?;
    state
        .api
        .access
        .notify(AccessNotice::Sessions {
            user_id: caller.user_id,
            session_id: Some(caller.session_id),
        })
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/users/me", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = UserView),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
    ))]
pub async fn me(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> ApiResult<Json<UserView>> {
    let user = state
        .api
        .store
        .user(caller.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok(Json(user.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_rules() {
        for good in ["a@b.co", "first.last+tag@example.com"] {
            assert!(valid_email(good), "{good}");
        }
        for bad in [
            "", "a", "@b.co", "a@", "a@b", "a b@c.de", "a@b@c.de", "a@.b.c", "a@b..c",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn the_dummy_hash_matches_no_password() {
        assert!(dummy_hash().starts_with("$argon2id$"));
        assert!(!verify_password("", &dummy_hash()));
    }
}
