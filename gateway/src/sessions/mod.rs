//! Sessions that can be resumed after a reconnect, behind one trait so that every gateway of a
//! deployment can resume every session.
//!
//! A session lives while a connection holds it and for the TTL after that connection closes.
//! The record is small on purpose — whose it is, which connection holds it, when it expires —
//! because the client carries its own per-channel positions in `resume`. Connections enter
//! through [`SessionStore`]: `create` on `identify`, `resume` on `resume`, `release` when the
//! holding connection closes and `forget` when its authentication failed.
//!
//! The rules are written once here as clock-free decisions on [`SessionRecord`] (time is passed
//! in, as milliseconds since the Unix epoch), used directly by [`MemorySessions`] (the embedded
//! default) and mirrored by the Lua scripts of [`RedisSessions`] (shared by the gateways of a
//! cluster). The [`conformance`] suite holds both to the same behaviour.
//!
//! Holders are globally unique ([`Holder`]: a random id per gateway process plus its connection
//! counter), so a late close of an old connection — on this gateway or on another one — never
//! expires a session that a newer connection has resumed.

pub mod conformance;
mod memory;
mod redis;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use memory::MemorySessions;
pub use redis::RedisSessions;

/// The connection that holds a session, unique across the deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Holder {
    /// Random per gateway process (see [`Holder::random_gateway`]): connection counters restart
    /// at 1 in every process, so the counter alone would collide between gateways.
    pub gateway: u32,
    /// The gateway's connection counter.
    pub connection: u64,
}

impl Holder {
    /// A fresh gateway instance id. 32 random bits: two holders collide only if two gateway
    /// processes draw the same id *and* hand out the same connection number to the same session.
    pub fn random_gateway() -> u32 {
        Uuid::new_v4().as_u64_pair().0 as u32
    }

    /// This connection's id in the presence store, made from the login session (`login`, random)
    /// it authenticated with, so a connection need not keep one more id. Connections of one login
    /// differ in their holder, which is mixed into bits the login's version and variant do not
    /// use; connections of different logins collide only if their random bits do.
    pub fn presence_id(self, login: Uuid) -> Uuid {
        let holder = (u128::from(self.gateway) << 96) | u128::from(self.connection);
        Uuid::from_u128(login.as_u128() ^ holder)
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}-{}", self.gateway, self.connection)
    }
}

/// How long sessions live and how many are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// How long a released session stays resumable.
    pub ttl: Duration,
    /// Sessions kept; beyond it expired ones are dropped, then new ones refused.
    pub max: usize,
    /// How long a held session survives in a store shared between gateways if its holder stops
    /// renewing it (its gateway was killed): the holder renews it while the connection lives
    /// ([`SessionStore::renew`]). Ignored by the in-process store, which dies with its gateway.
    pub hold_lease: Duration,
}

/// Why a session could not be created or resumed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// No such session, another user's, or expired.
    #[error("unknown or expired session")]
    Unknown,
    /// The store holds its maximum of live sessions.
    #[error("too many sessions")]
    Full,
    /// The store could not be reached in time (a Redis outage).
    #[error("session store unavailable: {0}")]
    Unavailable(String),
}

/// Where resumable sessions live. Every decision uses the time the caller passes in.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// A new session of `user_id`, held by `holder`. Refused with [`SessionError::Full`] when the
    /// store is full even after dropping expired sessions.
    async fn create(
        &self,
        user_id: Uuid,
        holder: Holder,
        now: DateTime<Utc>,
    ) -> Result<Uuid, SessionError>;

    /// Takes over a session of `user_id` that has not expired, whoever held it: `holder` is its
    /// holder from now on.
    async fn resume(
        &self,
        session: Uuid,
        user_id: Uuid,
        holder: Holder,
        now: DateTime<Utc>,
    ) -> Result<(), SessionError>;

    /// The connection holding the session closed: the session stays resumable for the TTL.
    /// Does nothing if `holder` no longer holds it.
    async fn release(
        &self,
        session: Uuid,
        holder: Holder,
        now: DateTime<Utc>,
    ) -> Result<(), SessionError>;

    /// Ends a session for good (authentication failure), if `holder` still holds it.
    async fn forget(&self, session: Uuid, holder: Holder) -> Result<(), SessionError>;

    /// How often a holder must call [`SessionStore::renew`] at most apart; `None` when holding
    /// needs no renewal (the in-process store), which keeps idle connections free of store calls.
    fn hold_lease(&self) -> Option<Duration> {
        None
    }

    /// Keeps a held session alive for another `hold_lease`, if `holder` still holds it.
    async fn renew(
        &self,
        _session: Uuid,
        _holder: Holder,
        _now: DateTime<Utc>,
    ) -> Result<(), SessionError> {
        Ok(())
    }
}

/// "Held": a session with this expiry never expires by time.
const HELD: i64 = i64::MAX;

/// One session, and the rules that decide what may happen to it. Times are milliseconds since
/// the Unix epoch, as the Redis scripts store them.
///
/// The holder's two parts are separate fields so the record stays at 40 bytes, what the
/// registry's record cost before holders were made global: one is kept per connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    user_id: Uuid,
    gateway: u32,
    connection: u64,
    /// When it stops being resumable; [`HELD`] while a connection holds it.
    expires_at_ms: i64,
}

impl SessionRecord {
    /// A session just created (or taken over) by `holder`.
    pub fn held(user_id: Uuid, holder: Holder) -> Self {
        SessionRecord {
            user_id,
            gateway: holder.gateway,
            connection: holder.connection,
            expires_at_ms: HELD,
        }
    }

    pub fn holder(&self) -> Holder {
        Holder {
            gateway: self.gateway,
            connection: self.connection,
        }
    }

    /// Held, or released less than the TTL ago.
    pub fn is_live(&self, now_ms: i64) -> bool {
        self.expires_at_ms > now_ms
    }

    /// Whether `user_id` may take the session over at `now_ms`.
    pub fn resumable_by(&self, user_id: Uuid, now_ms: i64) -> bool {
        self.user_id == user_id && self.is_live(now_ms)
    }

    /// Only the current holder may release or forget a session.
    pub fn is_held_by(&self, holder: Holder) -> bool {
        self.holder() == holder
    }

    /// `holder` takes the session over: held again, by it.
    pub fn take_over(&mut self, holder: Holder) {
        *self = SessionRecord::held(self.user_id, holder);
    }

    /// The holder's connection closed at `now_ms`: resumable until `now_ms + ttl`.
    pub fn release(&mut self, ttl: Duration, now_ms: i64) {
        self.expires_at_ms = now_ms.saturating_add(ttl.as_millis() as i64);
    }
}

/// Milliseconds since the Unix epoch: the one clock of session decisions.
pub fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_of_one_login_have_distinct_presence_ids_of_its_version() {
        let login = Uuid::new_v4();
        let ids: std::collections::HashSet<Uuid> =
            [(1, 1), (1, 2), (2, 1), (u32::MAX, u64::from(u32::MAX))]
                .into_iter()
                .map(|(gateway, connection)| {
                    Holder {
                        gateway,
                        connection,
                    }
                    .presence_id(login)
                })
                .collect();
        assert_eq!(ids.len(), 4);
        assert!(
            ids.iter()
                .all(|id| id.get_version_num() == 4 && id.get_variant() == login.get_variant())
        );
        let again = Holder {
            gateway: 1,
            connection: 1,
        }
        .presence_id(login);
        assert!(
            ids.contains(&again),
            "the same holder and login give the same id"
        );
    }

    const ALICE_ON_A: Holder = Holder {
        gateway: 0xa,
        connection: 7,
    };
    const ALICE_ON_B: Holder = Holder {
        gateway: 0xb,
        connection: 7,
    };

    #[test]
    fn a_held_session_never_expires_by_time() {
        let alice = Uuid::new_v4();
        let record = SessionRecord::held(alice, ALICE_ON_A);
        assert!(record.resumable_by(alice, i64::MAX - 1));
        assert!(!record.resumable_by(Uuid::new_v4(), 0), "another user's");
    }

    #[test]
    fn a_released_session_is_resumable_for_the_ttl_then_not() {
        let alice = Uuid::new_v4();
        let mut record = SessionRecord::held(alice, ALICE_ON_A);
        record.release(Duration::from_secs(60), 1_000);
        assert!(record.resumable_by(alice, 60_999));
        assert!(!record.resumable_by(alice, 61_000));
    }

    #[test]
    fn holders_with_the_same_counter_on_two_gateways_are_different() {
        let mut record = SessionRecord::held(Uuid::new_v4(), ALICE_ON_A);
        record.take_over(ALICE_ON_B);
        assert!(!record.is_held_by(ALICE_ON_A));
        assert!(record.is_held_by(ALICE_ON_B));
    }

    #[test]
    fn a_record_costs_no_more_than_before_holders_were_global() {
        assert_eq!(std::mem::size_of::<SessionRecord>(), 40);
    }
}
