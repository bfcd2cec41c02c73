//! Per-IP and per-account limits on the credential endpoints (GCRA via governor).
//!
//! Keyed limiter state grows with the number of keys seen, so stale keys are dropped whenever the
//! table grows past a bound.

use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;

/// Keys kept before stale ones are purged.
const PURGE_ABOVE: usize = 100_000;

pub struct Limiter {
    inner: DefaultKeyedRateLimiter<String>,
}

impl Limiter {
    pub fn per_minute(count: u32) -> Self {
        let count = NonZeroU32::new(count.max(1)).expect("at least one");
        Limiter {
            inner: RateLimiter::keyed(Quota::per_minute(count)),
        }
    }

    /// Counts one request for `key`; a 429 with `Retry-After` when over the limit.
    pub fn check(&self, key: &str) -> Result<(), ApiError> {
        if self.inner.len() > PURGE_ABOVE {
            self.inner.retain_recent();
        }
        self.inner.check_key(&key.to_string()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::rate_limited(wait.as_secs_f64().ceil() as u64)
        })
    }
}

/// The limiters of one API instance.
pub struct Limiters {
    pub login_ip: Limiter,
    pub login_account: Limiter,
    pub register_ip: Limiter,
}
