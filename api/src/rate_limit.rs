//! Per-IP and per-account limits on the credential endpoints.
//!
//! The counters live in a `RateLimitStore`: in this process for an embedded node, in Redis when
//! several API nodes must share one limit.

use std::sync::Arc;

use chorus_cluster::rate_limit::{RateLimitStore, RateLimiter};

use crate::ApiLimits;
use crate::error::ApiError;

/// One limit.
pub struct Limiter {
    inner: Arc<dyn RateLimiter>,
    /// `chorus_rate_limited_total{limit}`, resolved once.
    rejected: metrics::Counter,
}

impl Limiter {
    /// Counts one request for `key`; a 429 with `Retry-After` when over the limit.
    pub async fn check(&self, key: &str) -> Result<(), ApiError> {
        self.inner.check(key).await.map_err(|wait| {
            self.rejected.increment(1);
            ApiError::rate_limited(wait.as_secs_f64().ceil() as u64)
        })
    }
}

/// The limiters of one API instance.
pub struct Limiters {
    pub login_ip: Limiter,
    pub login_account: Limiter,
    pub register_ip: Limiter,
    pub register_account: Limiter,
    /// REST message writes (posts, edits, deletions, reactions) per user.
    pub writes_user: Limiter,
}

impl Limiters {
    pub fn new(store: &dyn RateLimitStore, limits: &ApiLimits) -> Self {
        let limiter = |name: &'static str, per_minute: u32| Limiter {
            inner: store.limiter(name, per_minute),
            rejected: metrics::counter!("chorus_rate_limited_total", "limit" => name),
        };
        Limiters {
            login_ip: limiter("login-ip", limits.login_per_minute_per_ip),
            login_account: limiter("login-account", limits.login_per_minute_per_account),
            register_ip: limiter("register-ip", limits.register_per_minute_per_ip),
            register_account: limiter("register-account", limits.register_per_minute_per_account),
            writes_user: limiter("writes-user", limits.writes_per_minute_per_user),
        }
    }
}
