//! Load shedding and request timeouts: the API answers at most `max_concurrent_requests` at once
//! and refuses the rest at once (503 `overloaded`, `Retry-After: 1`) instead of queueing them,
//! and a request that takes longer than `request_timeout` is abandoned (503 `timeout`).
//!
//! tower's `LoadShed`, `ConcurrencyLimit` and `Timeout` do the work; [`refusal`] turns their
//! errors into the API's JSON errors. It sits inside the request log, so refusals are logged and
//! counted like any answer.

use std::time::Duration;

use axum::BoxError;
use axum::http::StatusCode;

use crate::error::ApiError;

/// The JSON error for a request a tower layer refused or abandoned.
pub(crate) fn refusal(err: BoxError) -> ApiError {
    if err.is::<tower::load_shed::error::Overloaded>() {
        ApiError {
            retry_after: Some(1),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "the server is at its limit of concurrent requests; retry shortly",
            )
        }
    } else if err.is::<tower::timeout::error::Elapsed>() {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the request took too long and was abandoned",
        )
    } else {
        ApiError::internal(err)
    }
}

/// `Duration` from milliseconds, where 0 means "no limit" (a very long one).
pub(crate) fn timeout_from_ms(ms: u64) -> Duration {
    if ms == 0 {
        Duration::from_secs(365 * 24 * 3600)
    } else {
        Duration::from_millis(ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shed_and_timed_out_requests_get_their_own_codes() {
        let shed = refusal(Box::new(tower::load_shed::error::Overloaded::new()));
        assert_eq!(
            (shed.status, shed.code, shed.retry_after),
            (StatusCode::SERVICE_UNAVAILABLE, "overloaded", Some(1))
        );
        let late = refusal(Box::new(tower::timeout::error::Elapsed::new()));
        assert_eq!(
            (late.status, late.code),
            (StatusCode::SERVICE_UNAVAILABLE, "timeout")
        );
    }

    #[test]
    fn zero_means_no_timeout() {
        assert!(timeout_from_ms(0) > Duration::from_secs(3600));
        assert_eq!(timeout_from_ms(250), Duration::from_millis(250));
    }
}
