//! API errors: an HTTP status and a JSON body `{"error": {"code", "message"}}`.
//!
//! Internal failures are logged once here and answered with a bare `internal` error: nothing about
//! the backend ever reaches a client.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chorus_core::StoreError;
use chorus_core::auth::AuthError;
use chorus_core::limits::LimitRefusal;
use chorus_core::limits::quota::QuotaExceeded;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable, snake_case: e.g. `invalid_email`, `forbidden`, `not_found`.
    pub code: String,
    /// For people; never contains secrets or internals.
    pub message: String,
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds, for 429 answers.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn unauthenticated(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after_secs.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests; retry later",
            )
        }
    }

    /// A workspace over its messages per minute: 429 with `Retry-After` and its own code, so a
    /// client can tell its workspace's plan from its own rate (`rate_limited`).
    pub fn over_quota(exceeded: &QuotaExceeded) -> Self {
        ApiError {
            retry_after: Some(exceeded.retry_after.as_secs_f64().ceil().max(1.0) as u64),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                QuotaExceeded::CODE,
                exceeded.message(),
            )
        }
    }

    /// Logs the cause and hides it.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal server error",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(what) => ApiError::not_found(&what),
            other => ApiError::internal(other),
        }
    }
}

/// A change beyond the workspace's plan: 409 with the limit's code.
impl From<LimitRefusal> for ApiError {
    fn from(refusal: LimitRefusal) -> Self {
        ApiError::new(StatusCode::CONFLICT, refusal.code(), refusal.message())
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Invalid => {
                ApiError::unauthenticated("unauthenticated", "invalid access token")
            }
            AuthError::Expired => {
                ApiError::unauthenticated("token_expired", "access token has expired")
            }
            AuthError::Revoked => {
                ApiError::unauthenticated("session_revoked", "session has been revoked")
            }
            AuthError::Store(err) => ApiError::internal(err),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
