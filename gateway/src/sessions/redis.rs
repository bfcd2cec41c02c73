//! Sessions in Redis, shared by every gateway of a deployment: a client may resume on any of them.
//!
//! Each session is a hash `<prefix>:<id>` (fields `user`, `holder`, and `expires` once released,
//! in ms since the epoch); a sorted set `<prefix>:index` scores each live session by when it stops
//! counting, which bounds the store the way the in-process map is bounded. Every rule of
//! [`SessionRecord`](super::SessionRecord) runs as one Lua script — so the check-and-set of the
//! holder is atomic between gateways — and decides with the time the caller passes in.
//!
//! Redis forgets by itself: a released session's key expires with the TTL; a held one expires
//! `hold_lease` after its holder last created, resumed or renewed it, so the sessions of a gateway
//! that was killed (and never released them) stay resumable for about a hold lease, then vanish.
//!
//! Every call is bounded by [`COMMAND_TIMEOUT`]: during a Redis outage the client reconnects in
//! the background and calls fail with [`SessionError::Unavailable`] instead of waiting.
//!
//! The default prefix `chorus:{sessions}` carries a hash tag, so a script's two keys share a slot
//! on a Redis Cluster.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fred::prelude::{Client, LuaInterface};
use uuid::Uuid;

use super::{Holder, SessionError, SessionLimits, SessionStore, millis};

/// The longest any session call waits for Redis.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// Key prefix of the sessions of a deployment.
pub const DEFAULT_PREFIX: &str = "chorus:{sessions}";

// KEYS: index, session. ARGV: now, max, user, holder, held-until, hold lease (ms), id.
const CREATE: &str = r#"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[2], 'user', ARGV[3], 'holder', ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
redis.call('ZADD', KEYS[1], ARGV[5], ARGV[7])
return 1
"#;

// KEYS: index, session. ARGV: now, user, holder, held-until, hold lease (ms), id.
const RESUME: &str = r#"
local record = redis.call('HMGET', KEYS[2], 'user', 'expires')
if record[1] ~= ARGV[2] then return 0 end
if record[2] and tonumber(record[2]) <= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[2], 'holder', ARGV[3])
redis.call('HDEL', KEYS[2], 'expires')
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[6])
return 1
"#;

// KEYS: index, session. ARGV: holder, expires-at, ttl (ms), id.
const RELEASE: &str = r#"
if redis.call('HGET', KEYS[2], 'holder') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], 'expires', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
return 1
"#;

// KEYS: index, session. ARGV: holder, id.
const FORGET: &str = r#"
if redis.call('HGET', KEYS[2], 'holder') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[2])
return 1
"#;

// KEYS: index, session. ARGV: holder, held-until, hold lease (ms), id.
const RENEW: &str = r#"
if redis.call('HGET', KEYS[2], 'holder') ~= ARGV[1] then return 0 end
if redis.call('HEXISTS', KEYS[2], 'expires') == 1 then return 0 end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
return 1
"#;

/// Sessions shared through Redis.
#[derive(Clone)]
pub struct RedisSessions {
    client: Client,
    limits: SessionLimits,
    prefix: String,
}

impl RedisSessions {
    /// Connects (failing after 5 s if Redis cannot be reached; reconnecting forever afterwards).
    pub async fn connect(url: &str, limits: SessionLimits) -> Result<Self, SessionError> {
        let client = chorus_cluster::redis::connect(url)
            .await
            .map_err(SessionError::Unavailable)?;
        Ok(RedisSessions {
            client,
            limits,
            prefix: DEFAULT_PREFIX.to_string(),
        })
    }

    /// The same Redis under another key prefix: deployments (or tests) sharing one Redis keep
    /// their sessions apart. Include a `{hash tag}` for Redis Cluster.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The key holding `session`'s record.
    pub fn key(&self, session: Uuid) -> String {
        format!("{}:{session}", self.prefix)
    }

    fn keys(&self, session: Uuid) -> Vec<String> {
        vec![format!("{}:index", self.prefix), self.key(session)]
    }

    fn hold_lease_ms(&self) -> i64 {
        self.limits.hold_lease.as_millis() as i64
    }

    async fn script(
        &self,
        script: &str,
        session: Uuid,
        args: Vec<String>,
    ) -> Result<i64, SessionError> {
        let call = self
            .client
            .eval::<i64, _, _, _>(script, self.keys(session), args);
        match tokio::time::timeout(COMMAND_TIMEOUT, call).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(err)) => Err(SessionError::Unavailable(err.to_string())),
            Err(_) => Err(SessionError::Unavailable(format!(
                "no answer from Redis within {} s",
                COMMAND_TIMEOUT.as_secs()
            ))),
        }
    }
}

#[async_trait]
impl SessionStore for RedisSessions {
    async fn create(
        &self,
        user_id: Uuid,
        holder: Holder,
        now: DateTime<Utc>,
    ) -> Result<Uuid, SessionError> {
        let (id, now) = (Uuid::new_v4(), millis(now));
        let args = vec![
            now.to_string(),
            self.limits.max.to_string(),
            user_id.to_string(),
            holder.to_string(),
            (now + self.hold_lease_ms()).to_string(),
            self.hold_lease_ms().to_string(),
            id.to_string(),
        ];
        match self.script(CREATE, id, args).await? {
            1 => Ok(id),
            _ => Err(SessionError::Full),
        }
    }

    async fn resume(
        &self,
        session: Uuid,
        user_id: Uuid,
        holder: Holder,
        now: DateTime<Utc>,
    ) -> Result<(), SessionError> {
        let now = millis(now);
        let args = vec![
            now.to_string(),
            user_id.to_string(),
            holder.to_string(),
            (now + self.hold_lease_ms()).to_string(),
            self.hold_lease_ms().to_string(),
            session.to_string(),
        ];
        match self.script(RESUME, session, args).await? {
            1 => Ok(()),
            _ => Err(SessionError::Unknown),
        }
    }

    async fn release(
        &self,
        session: Uuid,
        holder: Holder,
        now: DateTime<Utc>,
    ) -> Result<(), SessionError> {
        let ttl = self.limits.ttl.as_millis() as i64;
        let args = vec![
            holder.to_string(),
            (millis(now) + ttl).to_string(),
            ttl.to_string(),
            session.to_string(),
        ];
        self.script(RELEASE, session, args).await.map(drop)
    }

    async fn forget(&self, session: Uuid, holder: Holder) -> Result<(), SessionError> {
        let args = vec![holder.to_string(), session.to_string()];
        self.script(FORGET, session, args).await.map(drop)
    }

    fn hold_lease(&self) -> Option<Duration> {
        Some(self.limits.hold_lease)
    }

    async fn renew(
        &self,
        session: Uuid,
        holder: Holder,
        now: DateTime<Utc>,
    ) -> Result<(), SessionError> {
        let args = vec![
            holder.to_string(),
            (millis(now) + self.hold_lease_ms()).to_string(),
            self.hold_lease_ms().to_string(),
            session.to_string(),
        ];
        self.script(RENEW, session, args).await.map(drop)
    }
}
