//! Presence in Redis, shared by every gateway of a deployment.
//!
//! Typing indicators are a sorted set per channel (member: user, score: expiry in ms) plus a hash
//! of last broadcast times; connections are a sorted set per user (member: connection, score:
//! lease expiry). Each rule runs as one Lua script, so concurrent gateways see a consistent
//! decision, and every decision uses the time the caller passes in — the same rules as the
//! in-process store. Key TTLs only garbage-collect idle keys.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fred::prelude::{Client, KeysInterface, LuaInterface, SortedSetsInterface};
use uuid::Uuid;

use crate::Transition;
use crate::store::{
    CONNECTION_LEASE, PresenceError, PresenceStore, TYPING_REBROADCAST, TYPING_TTL,
};

const TYPING: &str = r#"
local now = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local previous = redis.call('ZSCORE', KEYS[1], ARGV[1])
local active = previous and tonumber(previous) > now
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl * 4)
local last = redis.call('HGET', KEYS[2], ARGV[1])
if active and last and now - tonumber(last) < tonumber(ARGV[4]) then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[1], now)
redis.call('PEXPIRE', KEYS[2], ttl * 4)
return 1
"#;

const STOPPED: &str = r#"
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 0
"#;

const CONNECTED: &str = r#"
local now = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local before = redis.call('ZCARD', KEYS[1])
local added = redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SET', KEYS[2], now)
if before == 0 then return 1 end
return 0
"#;

const DISCONNECTED: &str = r#"
local now = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local before = redis.call('ZCARD', KEYS[1])
redis.call('ZREM', KEYS[1], ARGV[1])
local after = redis.call('ZCARD', KEYS[1])
redis.call('SET', KEYS[2], now)
if before > 0 and after == 0 then return 1 end
return 0
"#;

fn typing_keys(channel: Uuid) -> Vec<String> {
    vec![
        format!("chorus:typing:{channel}"),
        format!("chorus:typing-bc:{channel}"),
    ]
}

fn user_keys(user: Uuid) -> Vec<String> {
    vec![
        format!("chorus:conns:{user}"),
        format!("chorus:seen:{user}"),
    ]
}

fn err(e: impl std::fmt::Display) -> PresenceError {
    PresenceError(e.to_string())
}

/// Presence shared through Redis.
#[derive(Clone)]
pub struct RedisPresence {
    client: Client,
}

impl RedisPresence {
    /// Connects (failing after 5 s if Redis cannot be reached; reconnecting forever afterwards).
    pub async fn connect(url: &str) -> Result<Self, PresenceError> {
        Ok(RedisPresence {
            client: chorus_cluster::redis::connect(url)
                .await
                .map_err(PresenceError)?,
        })
    }

    async fn script(
        &self,
        script: &str,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<i64, PresenceError> {
        self.client
            .eval::<i64, _, _, _>(script, keys, args)
            .await
            .map_err(err)
    }
}

fn ms(at: DateTime<Utc>) -> String {
    at.timestamp_millis().to_string()
}

fn transition(flag: i64, on: Transition) -> Transition {
    if flag == 1 { on } else { Transition::Unchanged }
}

#[async_trait]
impl PresenceStore for RedisPresence {
    async fn typing(
        &self,
        channel: Uuid,
        user: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, PresenceError> {
        let args = vec![
            user.to_string(),
            ms(now),
            TYPING_TTL.num_milliseconds().to_string(),
            TYPING_REBROADCAST.num_milliseconds().to_string(),
        ];
        Ok(self.script(TYPING, typing_keys(channel), args).await? == 1)
    }

    async fn stopped_typing(&self, channel: Uuid, user: Uuid) -> Result<(), PresenceError> {
        self.script(STOPPED, typing_keys(channel), vec![user.to_string()])
            .await
            .map(drop)
    }

    async fn typing_in(
        &self,
        channel: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, PresenceError> {
        let key = format!("chorus:typing:{channel}");
        let members: Vec<String> = self
            .client
            .zrangebyscore(
                key,
                format!("({}", now.timestamp_millis()),
                "+inf",
                false,
                None,
            )
            .await
            .map_err(err)?;
        let mut users: Vec<Uuid> = members
            .iter()
            .filter_map(|m| Uuid::parse_str(m).ok())
            .collect();
        users.sort();
        Ok(users)
    }

    async fn connected(
        &self,
        user: Uuid,
        conn: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Transition, PresenceError> {
        let args = vec![
            conn.to_string(),
            ms(now),
            ms(now + CONNECTION_LEASE),
            (CONNECTION_LEASE.num_milliseconds() * 2).to_string(),
        ];
        Ok(transition(
            self.script(CONNECTED, user_keys(user), args).await?,
            Transition::CameOnline,
        ))
    }

    async fn disconnected(
        &self,
        user: Uuid,
        conn: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Transition, PresenceError> {
        let args = vec![conn.to_string(), ms(now)];
        Ok(transition(
            self.script(DISCONNECTED, user_keys(user), args).await?,
            Transition::WentOffline,
        ))
    }

    async fn is_online(&self, user: Uuid, now: DateTime<Utc>) -> Result<bool, PresenceError> {
        let key = format!("chorus:conns:{user}");
        let live: i64 = self
            .client
            // Scores are whole milliseconds, so "after now" is "at least now + 1".
            .zcount(key, (now.timestamp_millis() + 1) as f64, f64::INFINITY)
            .await
            .map_err(err)?;
        Ok(live > 0)
    }

    async fn last_seen(&self, user: Uuid) -> Result<Option<DateTime<Utc>>, PresenceError> {
        let seen: Option<i64> = self
            .client
            .get(format!("chorus:seen:{user}"))
            .await
            .map_err(err)?;
        Ok(seen.and_then(DateTime::from_timestamp_millis))
    }
}
