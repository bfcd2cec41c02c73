//! The presence store interface shared by the in-process and the Redis implementation.

use async_trait::async_trait;
use chorus_protocol::{Activity, CustomStatus, FocusPresence, PresenceInfo};
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::{PresenceUpdates, Transition, UserFrame, UserFrames};

/// How long a typing indicator lasts without a refresh (RF-04.2).
pub const TYPING_TTL: Duration =
    Duration::milliseconds(chorus_protocol::limits::TYPING_TTL_MS as i64);

/// A repeated "typing" from the same user in the same channel is re-broadcast at most this often.
pub const TYPING_REBROADCAST: Duration = Duration::seconds(3);

/// How long a connection counts as online without its gateway renewing it.
pub const CONNECTION_LEASE: Duration = Duration::seconds(90);

/// Users whose leases lapsed that one [`PresenceStore::expire`] call takes offline at most; the
/// rest wait for the next sweep, so one call stays short however many gateways died.
pub const EXPIRE_BATCH: usize = 1_000;

/// The store could not answer; presence is advisory, so callers log this and carry on.
#[derive(Debug, thiserror::Error)]
#[error("presence store error: {0}")]
pub struct PresenceError(pub String);

/// Who is online and who is typing, and the feed that tells every gateway when it changes. Every
/// method takes the current time, so the rules are the same — and testable — in every
/// implementation.
#[async_trait]
pub trait PresenceStore: Send + Sync + 'static {
    /// `user` is typing in `channel`; true when the channel's subscribers should be told.
    async fn typing(
        &self,
        channel: Uuid,
        user: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, PresenceError>;
    /// The user posted: their indicator ends.
    async fn stopped_typing(&self, channel: Uuid, user: Uuid) -> Result<(), PresenceError>;
    /// Users typing in `channel` at `now`, sorted.
    async fn typing_in(
        &self,
        channel: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, PresenceError>;
    /// Connection `conn` of `user` opened (active), or renews its lease (heartbeat).
    async fn connected(
        &self,
        user: Uuid,
        conn: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Transition, PresenceError>;
    /// Connection `conn` of `user` closed.
    async fn disconnected(
        &self,
        user: Uuid,
        conn: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Transition, PresenceError>;
    /// Connection `conn` of `user` reports the user active or idle.
    async fn activity(
        &self,
        user: Uuid,
        conn: Uuid,
        activity: Activity,
        now: DateTime<Utc>,
    ) -> Result<Transition, PresenceError>;
    /// Forgets connections whose lease lapsed by `now` (their gateway died); returns the users
    /// this took offline — each to exactly one caller, however many gateways sweep at once (the
    /// Redis store at most [`EXPIRE_BATCH`] per call).
    async fn expire(&self, now: DateTime<Utc>) -> Result<Vec<Uuid>, PresenceError>;
    async fn is_online(&self, user: Uuid, now: DateTime<Utc>) -> Result<bool, PresenceError>;
    async fn last_seen(&self, user: Uuid) -> Result<Option<DateTime<Utc>>, PresenceError>;
    /// Sets (or, with `None`, clears) the user's custom status; an expiring one clears itself.
    async fn set_custom_status(
        &self,
        user: Uuid,
        status: Option<CustomStatus>,
    ) -> Result<(), PresenceError>;
    /// Sets (or, with `None`, clears) that the user is in a focus session; one with a planned
    /// end clears itself then.
    async fn set_focus(
        &self,
        user: Uuid,
        focus: Option<FocusPresence>,
    ) -> Result<(), PresenceError>;
    /// The presence of each of `users` at `now`, in the order asked.
    async fn presence_of(
        &self,
        users: &[Uuid],
        now: DateTime<Utc>,
    ) -> Result<Vec<PresenceInfo>, PresenceError>;
    /// Tells every gateway (this process's and, for a shared store, every other's) that a user's
    /// presence changed. Never fails: a lost change is covered by the receivers' resync.
    async fn announce(&self, info: PresenceInfo);
    /// Starts receiving announced changes.
    fn updates(&self) -> PresenceUpdates;
    /// Sends a frame to every connection of one user, on every gateway (notifications, read
    /// state). At most once, like presence changes; never fails.
    async fn send_to_user(&self, frame: UserFrame);
    /// Starts receiving the frames sent to users (a gateway keeps those of its own users).
    fn user_frames(&self) -> UserFrames;
}
