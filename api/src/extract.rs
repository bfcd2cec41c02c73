//! Extractors that turn bad requests into JSON errors: the bearer token, path parameters, JSON
//! bodies and queries. Handlers use these, never axum's own, whose rejections are `text/plain`.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use chorus_core::auth::Principal;
use chorus_core::bots::Scopes;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::bot_access::{BotRoute, bot_route, channel_segment};
use crate::error::ApiError;
use crate::request_log::UserSlot;

/// The authenticated caller, from `Authorization: Bearer <access token or bot token>`. A bot
/// token is held to its scopes and its channels here, before any handler runs.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::unauthenticated("unauthenticated", "missing bearer token"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| {
                ApiError::unauthenticated("unauthenticated", "expected a bearer token")
            })?;
        let principal = state.api.auth.verify_access(token.trim()).await?;
        if let Some(slot) = parts.extensions.get::<UserSlot>() {
            let _ = slot.0.set(principal.user_id);
        }
        if let Some(scopes) = principal.bot_scopes {
            check_bot(parts, state, principal.user_id, scopes).await?;
        }
        Ok(Caller(principal))
    }
}

/// What a bot token may call (`bot_access.rs`), and only in the channels the bot is a member of:
/// any other channel does not exist for it.
async fn check_bot(
    parts: &Parts,
    state: &AppState,
    bot: uuid::Uuid,
    scopes: Scopes,
) -> Result<(), ApiError> {
    let template = parts
        .extensions
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .unwrap_or_default();
    match bot_route(&parts.method, template) {
        BotRoute::Open => {}
        BotRoute::Needs(scope) if scopes.contains(scope) => {}
        BotRoute::Needs(scope) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "missing_scope",
                format!("this bot token lacks the scope {}", scope.as_str()),
            ));
        }
        BotRoute::Closed => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "bot_forbidden",
                "bot tokens cannot use this route",
            ));
        }
    }
    if let Some(channel) = channel_segment(template, parts.uri.path())
        .and_then(|segment| uuid::Uuid::try_parse(segment).ok())
        && state
            .api
            .store
            .channel_membership(channel, bot)
            .await?
            .is_none()
    {
        return Err(ApiError::not_found("channel"));
    }
    Ok(())
}

/// A JSON body whose rejections are JSON errors.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonSyntaxError(err) => ApiError::bad_request(
            "invalid_json",
            format!("body is not valid JSON: {}", err.body_text()),
        ),
        JsonRejection::JsonDataError(err) => ApiError::bad_request("invalid_body", err.body_text()),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected content-type: application/json",
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "request body is larger than 64 KiB",
        ),
        other => ApiError::bad_request("invalid_body", other.body_text()),
    }
}

/// Query parameters whose rejections are JSON errors.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Params(value)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> ApiError {
    ApiError::bad_request("invalid_query", rejection.body_text())
}

/// Path parameters (ids, seqs) whose rejections are JSON errors: `400 invalid_path`.
pub struct PathParams<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(PathParams(value)),
            Err(rejection) => Err(path_rejection(rejection)),
        }
    }
}

fn path_rejection(rejection: PathRejection) -> ApiError {
    ApiError::bad_request("invalid_path", rejection.body_text())
}
