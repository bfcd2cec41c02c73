//! The workspace message quotas' counter over the deployment's rate-limit store: in this process
//! for an embedded node, in Redis (`rate_limit_url`) when several processes must share one
//! workspace's messages per minute. REST posts and WebSocket sends of a process share one
//! [`MessageQuotas`] built on it (`src/node.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chorus_cluster::rate_limit::{RateLimitStore, RateLimiter};
use chorus_core::limits::quota::QuotaCounter;
use parking_lot::Mutex;

/// The key namespace of the quotas in the rate-limit store.
const NAME: &str = "workspace-messages";

/// A [`QuotaCounter`] with one limiter per distinct quota (plans are few, so the map stays small).
pub struct RateLimitQuotas {
    store: Arc<dyn RateLimitStore>,
    limiters: Mutex<HashMap<u32, Arc<dyn RateLimiter>>>,
    /// `chorus_rate_limited_total{limit="workspace-messages"}`, resolved once.
    rejected: metrics::Counter,
}

impl RateLimitQuotas {
    pub fn new(store: Arc<dyn RateLimitStore>) -> Self {
        RateLimitQuotas {
            store,
            limiters: Mutex::new(HashMap::new()),
            rejected: metrics::counter!("chorus_rate_limited_total", "limit" => NAME),
        }
    }

    fn limiter(&self, per_minute: u32) -> Arc<dyn RateLimiter> {
        self.limiters
            .lock()
            .entry(per_minute)
            .or_insert_with(|| self.store.limiter(NAME, per_minute))
            .clone()
    }
}

#[async_trait]
impl QuotaCounter for RateLimitQuotas {
    async fn check(&self, key: &str, per_minute: u32) -> Result<(), Duration> {
        let limiter = self.limiter(per_minute);
        let result = limiter.check(key).await;
        if result.is_err() {
            self.rejected.increment(1);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_cluster::rate_limit::LocalRateLimits;

    #[tokio::test]
    async fn each_quota_admits_its_burst_per_key() {
        let quotas = RateLimitQuotas::new(Arc::new(LocalRateLimits));
        for _ in 0..3 {
            assert!(quotas.check("w1", 3).await.is_ok());
        }
        assert!(quotas.check("w1", 3).await.is_err());
        assert!(quotas.check("w2", 3).await.is_ok(), "another workspace");
        // The same key under another quota is counted apart (a changed plan starts afresh).
        assert!(quotas.check("w1", 10).await.is_ok());
    }
}
