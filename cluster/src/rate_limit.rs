//! Rate-limit counters: in-process (governor) or shared through Redis, so a limit holds across
//! every API node of a deployment.
//!
//! Both implement GCRA with a per-minute quota and a burst of the same size. The Redis version
//! runs the algorithm in one Lua script (the theoretical arrival time is the key's value), with
//! the time passed in. If Redis cannot answer, the check allows the request and logs: the limits
//! protect against abuse, and refusing every login while Redis is down would be an outage.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fred::prelude::{Client, LuaInterface};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter as Governor};

/// Keys kept by a local limiter before stale ones are purged.
const PURGE_ABOVE: usize = 100_000;

/// One limit (e.g. "logins per account").
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Counts one event for `key`; `Err(wait)` when over the limit.
    async fn check(&self, key: &str) -> Result<(), Duration>;
}

/// Makes limiters of one backend.
pub trait RateLimitStore: Send + Sync + 'static {
    /// A limiter called `name` (the key namespace) allowing `per_minute` events per key.
    fn limiter(&self, name: &str, per_minute: u32) -> Arc<dyn RateLimiter>;
}

/// Limits counted in this process.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalRateLimits;

struct LocalLimiter {
    inner: DefaultKeyedRateLimiter<String>,
}

impl RateLimitStore for LocalRateLimits {
    fn limiter(&self, _name: &str, per_minute: u32) -> Arc<dyn RateLimiter> {
        let per_minute = NonZeroU32::new(per_minute.max(1)).expect("at least one");
        Arc::new(LocalLimiter {
            inner: Governor::keyed(Quota::per_minute(per_minute)),
        })
    }
}

#[async_trait]
impl RateLimiter for LocalLimiter {
    async fn check(&self, key: &str) -> Result<(), Duration> {
        if self.inner.len() > PURGE_ABOVE {
            self.inner.retain_recent();
        }
        self.inner
            .check_key(&key.to_string())
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// GCRA: returns -1 when allowed, else the milliseconds to wait.
const GCRA: &str = r#"
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allowed_at = tat - tolerance
if now < allowed_at then return math.ceil(allowed_at - now) end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now) + 1)
return -1
"#;

/// Limits counted in Redis, shared by every node.
#[derive(Clone)]
pub struct RedisRateLimits {
    client: Client,
}

impl RedisRateLimits {
    /// Connects (failing after 5 s if Redis cannot be reached; reconnecting forever afterwards).
    pub async fn connect(url: &str) -> Result<Self, String> {
        Ok(RedisRateLimits {
            client: crate::redis::connect(url).await?,
        })
    }
}

struct RedisLimiter {
    client: Client,
    prefix: String,
    interval_ms: u64,
    tolerance_ms: u64,
}

impl RateLimitStore for RedisRateLimits {
    fn limiter(&self, name: &str, per_minute: u32) -> Arc<dyn RateLimiter> {
        let per_minute = u64::from(per_minute.max(1));
        let interval_ms = 60_000 / per_minute;
        Arc::new(RedisLimiter {
            client: self.client.clone(),
            // The quota is part of the namespace: a key's stored arrival time is only meaningful
            // under the quota that wrote it (one written at 10/min lies minutes ahead and would
            // refuse a process configured for more). Processes of one deployment share a config,
            // so they still share their counters.
            prefix: format!("chorus:rl:{name}:{per_minute}:"),
            interval_ms,
            // A burst of `per_minute` events: the first is free, the rest use the tolerance.
            tolerance_ms: interval_ms * (per_minute - 1),
        })
    }
}

impl RedisLimiter {
    /// The decision at `now_ms`.
    async fn check_at(&self, key: &str, now_ms: u64) -> Result<(), Duration> {
        let args = vec![
            now_ms.to_string(),
            self.interval_ms.to_string(),
            self.tolerance_ms.to_string(),
        ];
        match self
            .client
            .eval::<i64, _, _, _>(GCRA, vec![format!("{}{key}", self.prefix)], args)
            .await
        {
            Ok(wait) if wait >= 0 => Err(Duration::from_millis(wait as u64)),
            Ok(_) => Ok(()),
            Err(err) => {
                tracing::error!(error = %err, "rate limit check failed; allowing");
                Ok(())
            }
        }
    }
}

#[async_trait]
impl RateLimiter for RedisLimiter {
    async fn check(&self, key: &str) -> Result<(), Duration> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.check_at(key, now_ms).await
    }
}

/// Behaviour every rate-limit backend must have (run against each in `cluster/tests/`).
pub mod conformance {
    use super::RateLimitStore;

    /// A burst of the quota passes, the next event waits at most a minute, and keys and
    /// limiters are independent of each other.
    pub async fn bursts_then_limits_per_key(store: &dyn RateLimitStore) {
        let name = format!("test-{}", uuid::Uuid::new_v4().simple());
        let limiter = store.limiter(&name, 5);
        let key = uuid::Uuid::new_v4().to_string();
        for n in 0..5 {
            assert!(limiter.check(&key).await.is_ok(), "event {n} of the burst");
        }
        let wait = limiter
            .check(&key)
            .await
            .expect_err("the sixth event is limited");
        assert!(
            wait > std::time::Duration::ZERO && wait <= std::time::Duration::from_secs(60),
            "{wait:?}"
        );
        assert!(
            limiter.check("another key").await.is_ok(),
            "keys are independent"
        );
        let other = store.limiter(&format!("{name}-other"), 5);
        assert!(other.check(&key).await.is_ok(), "limiters are independent");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_limits_conform() {
        conformance::bursts_then_limits_per_key(&LocalRateLimits).await;
    }
}
