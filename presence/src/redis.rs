//! Presence in Redis, shared by every gateway (and API process) of a deployment.
//!
//! Typing indicators are a sorted set per channel (member: user, score: expiry in ms) plus a hash
//! of last broadcast times. Connections are a sorted set per user (member: connection, score:
//! lease expiry) with a set of the idle ones, and one sorted set of users by their latest lease,
//! so the sweep finds the users whose gateway died without scanning anything else. Each rule runs
//! as one Lua script, so concurrent gateways see a consistent decision — the sweep that takes a
//! user offline is the only one that reports it — and every decision uses the time the caller
//! passes in: the same rules as the in-process store. Key TTLs only garbage-collect idle keys.
//!
//! Changes travel on the pub/sub channel `<prefix>:presence` to every process's feed; a
//! reconnect of the subscriber (changes may have been missed) is a resync.
//!
//! The scripts touch several keys of one user (and the lease set), so a Redis Cluster would need
//! them in one hash slot; Chorus uses a single Redis (or a primary with replicas) for presence.

use async_trait::async_trait;
use chorus_protocol::{Activity, CustomStatus, FocusPresence, PresenceInfo, PresenceStatus};
use chrono::{DateTime, Utc};
use fred::clients::SubscriberClient;
use fred::prelude::{
    Client, EventInterface, Expiration, KeysInterface, LuaInterface, PubsubInterface,
    SortedSetsInterface,
};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::feed::LocalFeed;
use crate::store::{
    CONNECTION_LEASE, EXPIRE_BATCH, PresenceError, PresenceStore, TYPING_REBROADCAST, TYPING_TTL,
};
use crate::user_feed::LocalUserFeed;
use crate::{PresenceUpdates, Transition, UserFrame, UserFrames};

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

/// Shared by the connection scripts: the user's status (1 online, 2 idle, 3 offline, as
/// [`status_code`]), dropping lapsed connections, and keeping the lease set in step.
const HELPERS: &str = r#"
local function status(conns, idle, now)
  local live = redis.call('ZRANGEBYSCORE', conns, '(' .. now, '+inf')
  if #live == 0 then return 3 end
  for _, c in ipairs(live) do
    if redis.call('SISMEMBER', idle, c) == 0 then return 1 end
  end
  return 2
end
local function prune(conns, idle, now)
  local lapsed = redis.call('ZRANGEBYSCORE', conns, '-inf', now)
  if #lapsed > 0 then
    redis.call('ZREMRANGEBYSCORE', conns, '-inf', now)
    redis.call('SREM', idle, unpack(lapsed))
  end
end
local function track(conns, leases, user)
  local top = redis.call('ZRANGE', conns, -1, -1, 'WITHSCORES')
  if #top == 0 then
    redis.call('ZREM', leases, user)
  else
    redis.call('ZADD', leases, top[2], user)
  end
end
"#;

/// KEYS: conns, seen, idle, leases. ARGV: conn, now, lease until, key ttl, user.
const CONNECTED: &str = r#"
local now = tonumber(ARGV[2])
local before = status(KEYS[1], KEYS[3], now)
prune(KEYS[1], KEYS[3], now)
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
redis.call('SET', KEYS[2], now)
track(KEYS[1], KEYS[4], ARGV[5])
return {before, status(KEYS[1], KEYS[3], now)}
"#;

/// KEYS: conns, seen, idle, leases. ARGV: conn, now, user.
const DISCONNECTED: &str = r#"
local now = tonumber(ARGV[2])
local before = status(KEYS[1], KEYS[3], now)
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
prune(KEYS[1], KEYS[3], now)
redis.call('SET', KEYS[2], now)
track(KEYS[1], KEYS[4], ARGV[3])
return {before, status(KEYS[1], KEYS[3], now)}
"#;

/// KEYS: conns, idle. ARGV: conn, now, 1 for idle, key ttl.
const ACTIVITY: &str = r#"
local now = tonumber(ARGV[2])
local before = status(KEYS[1], KEYS[2], now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return {before, before} end
if ARGV[3] == '1' then
  redis.call('SADD', KEYS[2], ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
else
  redis.call('SREM', KEYS[2], ARGV[1])
end
return {before, status(KEYS[1], KEYS[2], now)}
"#;

/// KEYS: leases. ARGV: now, batch, key prefix.
const EXPIRE: &str = r#"
local now = tonumber(ARGV[1])
local users = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local gone = {}
for _, user in ipairs(users) do
  local conns = ARGV[3] .. ':conns:' .. user
  local idle = ARGV[3] .. ':idle:' .. user
  prune(conns, idle, now)
  if redis.call('ZCARD', conns) == 0 then
    redis.call('ZREM', KEYS[1], user)
    redis.call('DEL', idle)
    table.insert(gone, user)
  else
    track(conns, KEYS[1], user)
  end
end
return gone
"#;

/// ARGV: now, key prefix, users… Returns status, last seen, custom status per user, as strings.
const SNAPSHOT: &str = r#"
local now = tonumber(ARGV[1])
local out = {}
for i = 3, #ARGV do
  local user = ARGV[i]
  local s = status(ARGV[2] .. ':conns:' .. user, ARGV[2] .. ':idle:' .. user, now)
  table.insert(out, tostring(s))
  table.insert(out, redis.call('GET', ARGV[2] .. ':seen:' .. user) or '')
  table.insert(out, redis.call('GET', ARGV[2] .. ':status:' .. user) or '')
  table.insert(out, redis.call('GET', ARGV[2] .. ':focus:' .. user) or '')
end
return out
"#;

fn err(e: impl std::fmt::Display) -> PresenceError {
    PresenceError(e.to_string())
}

fn ms(at: DateTime<Utc>) -> String {
    at.timestamp_millis().to_string()
}

/// The scripts' spelling of a status.
fn status_code(code: i64) -> PresenceStatus {
    match code {
        1 => PresenceStatus::Online,
        2 => PresenceStatus::Idle,
        _ => PresenceStatus::Offline,
    }
}

fn transition(codes: &[i64]) -> Transition {
    match codes {
        [before, after] => Transition::between(status_code(*before), status_code(*after)),
        _ => Transition::Unchanged,
    }
}

/// Presence shared through Redis.
#[derive(Clone)]
pub struct RedisPresence {
    client: Client,
    /// Every key and the pub/sub channel start with it (`chorus` unless a test asks otherwise),
    /// so tests sharing one Redis do not sweep each other's users.
    prefix: String,
    feed: LocalFeed,
    user_feed: LocalUserFeed,
}

impl RedisPresence {
    /// Connects (failing after 5 s if Redis cannot be reached; reconnecting forever afterwards).
    pub async fn connect(url: &str) -> Result<Self, PresenceError> {
        Self::connect_with_prefix(url, "chorus").await
    }

    /// The same with every key under `prefix`.
    pub async fn connect_with_prefix(url: &str, prefix: &str) -> Result<Self, PresenceError> {
        let client = chorus_cluster::redis::connect(url)
            .await
            .map_err(PresenceError)?;
        let subscriber = chorus_cluster::redis::connect_subscriber(url)
            .await
            .map_err(PresenceError)?;
        let channel = format!("{prefix}:presence");
        subscriber.subscribe(channel.clone()).await.map_err(err)?;
        subscriber
            .subscribe(format!("{prefix}:user"))
            .await
            .map_err(err)?;
        let feed = LocalFeed::default();
        let user_feed = LocalUserFeed::default();
        tokio::spawn(receive(subscriber, feed.clone(), user_feed.clone()));
        Ok(RedisPresence {
            client,
            prefix: prefix.to_string(),
            feed,
            user_feed,
        })
    }

    fn user_keys(&self, user: Uuid) -> Vec<String> {
        let p = &self.prefix;
        vec![
            format!("{p}:conns:{user}"),
            format!("{p}:seen:{user}"),
            format!("{p}:idle:{user}"),
            format!("{p}:leases"),
        ]
    }

    fn typing_keys(&self, channel: Uuid) -> Vec<String> {
        let p = &self.prefix;
        vec![
            format!("{p}:typing:{channel}"),
            format!("{p}:typing-bc:{channel}"),
        ]
    }

    async fn script<T: fred::types::FromValue>(
        &self,
        script: &str,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<T, PresenceError> {
        self.client
            .eval::<T, _, _, _>(script, keys, args)
            .await
            .map_err(err)
    }

    async fn connection_script(
        &self,
        body: &str,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<Transition, PresenceError> {
        let codes: Vec<i64> = self.script(&format!("{HELPERS}{body}"), keys, args).await?;
        Ok(transition(&codes))
    }
}

/// Forwards changes from Redis to this process's feed; a reconnect or lag is a resync. User
/// frames (`<prefix>:user`) go to the user feed.
async fn receive(subscriber: SubscriberClient, feed: LocalFeed, user_feed: LocalUserFeed) {
    let mut messages = subscriber.message_rx();
    let mut reconnects = subscriber.reconnect_rx();
    loop {
        tokio::select! {
            message = messages.recv() => match message {
                Ok(message) if message.channel.ends_with(":user") => {
                    match message.value.as_bytes().and_then(|b| serde_json::from_slice::<UserFrame>(b).ok()) {
                        Some(frame) => user_feed.send(frame),
                        None => tracing::warn!("undecodable user frame"),
                    }
                }
                Ok(message) => {
                    let parsed = message
                        .value
                        .as_bytes()
                        .and_then(|bytes| serde_json::from_slice::<PresenceInfo>(bytes).ok());
                    match parsed {
                        Some(info) => feed.send(info),
                        None => tracing::warn!("undecodable presence change"),
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => feed.resync(),
                Err(broadcast::error::RecvError::Closed) => return,
            },
            reconnect = reconnects.recv() => match reconnect {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    if let Err(err) = subscriber.resubscribe_all().await {
                        tracing::warn!(error = %err, "presence resubscribe failed");
                    }
                    feed.resync();
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
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
        Ok(self
            .script::<i64>(TYPING, self.typing_keys(channel), args)
            .await?
            == 1)
    }

    async fn stopped_typing(&self, channel: Uuid, user: Uuid) -> Result<(), PresenceError> {
        self.script::<i64>(STOPPED, self.typing_keys(channel), vec![user.to_string()])
            .await
            .map(drop)
    }

    async fn typing_in(
        &self,
        channel: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, PresenceError> {
        let key = self.typing_keys(channel).swap_remove(0);
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
            user.to_string(),
        ];
        self.connection_script(CONNECTED, self.user_keys(user), args)
            .await
    }

    async fn disconnected(
        &self,
        user: Uuid,
        conn: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Transition, PresenceError> {
        let args = vec![conn.to_string(), ms(now), user.to_string()];
        self.connection_script(DISCONNECTED, self.user_keys(user), args)
            .await
    }

    async fn activity(
        &self,
        user: Uuid,
        conn: Uuid,
        activity: Activity,
        now: DateTime<Utc>,
    ) -> Result<Transition, PresenceError> {
        let keys = self.user_keys(user);
        let keys = vec![keys[0].clone(), keys[2].clone()];
        let idle = if activity == Activity::Idle { "1" } else { "0" };
        let args = vec![
            conn.to_string(),
            ms(now),
            idle.to_string(),
            (CONNECTION_LEASE.num_milliseconds() * 2).to_string(),
        ];
        self.connection_script(ACTIVITY, keys, args).await
    }

    async fn expire(&self, now: DateTime<Utc>) -> Result<Vec<Uuid>, PresenceError> {
        let args = vec![ms(now), EXPIRE_BATCH.to_string(), self.prefix.clone()];
        let gone: Vec<String> = self
            .script(
                &format!("{HELPERS}{EXPIRE}"),
                vec![format!("{}:leases", self.prefix)],
                args,
            )
            .await?;
        Ok(gone
            .iter()
            .filter_map(|u| Uuid::parse_str(u).ok())
            .collect())
    }

    async fn is_online(&self, user: Uuid, now: DateTime<Utc>) -> Result<bool, PresenceError> {
        let key = format!("{}:conns:{user}", self.prefix);
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
            .get(format!("{}:seen:{user}", self.prefix))
            .await
            .map_err(err)?;
        Ok(seen.and_then(DateTime::from_timestamp_millis))
    }

    async fn set_custom_status(
        &self,
        user: Uuid,
        status: Option<CustomStatus>,
    ) -> Result<(), PresenceError> {
        let key = format!("{}:status:{user}", self.prefix);
        match status {
            None => self.client.del::<i64, _>(key).await.map(drop).map_err(err),
            Some(status) => {
                let json = serde_json::to_string(&status).map_err(err)?;
                let expiry = status
                    .expires_at
                    .map(|at| Expiration::PXAT(at.timestamp_millis()));
                self.client
                    .set::<(), _, _>(key, json, expiry, None, false)
                    .await
                    .map_err(err)
            }
        }
    }

    async fn set_focus(
        &self,
        user: Uuid,
        focus: Option<FocusPresence>,
    ) -> Result<(), PresenceError> {
        let key = format!("{}:focus:{user}", self.prefix);
        match focus {
            None => self.client.del::<i64, _>(key).await.map(drop).map_err(err),
            Some(focus) => {
                let json = serde_json::to_string(&focus).map_err(err)?;
                let expiry = focus
                    .until
                    .map(|at| Expiration::PXAT(at.timestamp_millis()));
                self.client
                    .set::<(), _, _>(key, json, expiry, None, false)
                    .await
                    .map_err(err)
            }
        }
    }

    async fn presence_of(
        &self,
        users: &[Uuid],
        now: DateTime<Utc>,
    ) -> Result<Vec<PresenceInfo>, PresenceError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec![ms(now), self.prefix.clone()];
        args.extend(users.iter().map(Uuid::to_string));
        let fields: Vec<String> = self
            .script(&format!("{HELPERS}{SNAPSHOT}"), Vec::new(), args)
            .await?;
        Ok(users
            .iter()
            .zip(fields.chunks(4))
            .map(|(&user_id, field)| PresenceInfo {
                user_id,
                status: status_code(field[0].parse().unwrap_or(3)),
                last_seen: field[1]
                    .parse()
                    .ok()
                    .and_then(DateTime::from_timestamp_millis),
                custom_status: serde_json::from_str::<CustomStatus>(&field[2])
                    .ok()
                    .filter(|status| status.is_live(now)),
                focus: serde_json::from_str::<FocusPresence>(&field[3])
                    .ok()
                    .filter(|focus| focus.is_live(now)),
            })
            .collect())
    }

    async fn announce(&self, info: PresenceInfo) {
        let channel = format!("{}:presence", self.prefix);
        let payload = match serde_json::to_string(&info) {
            Ok(payload) => payload,
            Err(e) => return tracing::warn!(error = %e, "presence change not encodable"),
        };
        if let Err(e) = self.client.publish::<i64, _, _>(channel, payload).await {
            // The receivers' own gateway still hears nothing; their next resync corrects them.
            tracing::warn!(error = %e, "presence change not published");
        }
    }

    fn updates(&self) -> PresenceUpdates {
        self.feed.subscribe()
    }

    async fn send_to_user(&self, frame: UserFrame) {
        let payload = match serde_json::to_string(&frame) {
            Ok(payload) => payload,
            Err(e) => return tracing::warn!(error = %e, "user frame not encodable"),
        };
        let channel = format!("{}:user", self.prefix);
        if let Err(e) = self.client.publish::<i64, _, _>(channel, payload).await {
            tracing::warn!(error = %e, "user frame not published");
        }
    }

    fn user_frames(&self) -> UserFrames {
        self.user_feed.subscribe()
    }
}
