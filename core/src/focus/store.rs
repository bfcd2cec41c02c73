//! Where focus mode keeps its state ([`FocusStore`], implemented by both metadata backends in
//! their `focus.rs`): each user's settings, their sessions, the notifications an open session
//! holds back, the digests of ended sessions and the automatic replies already sent.
//!
//! Holding and ending are the two operations that must not lose anything: a notification is
//! held only while its session is still open (checked in the same transaction that records it),
//! and ending a session takes every held notification into the digest in one transaction, so a
//! crash either keeps both or neither and a restart finds the held items still there.

use async_trait::async_trait;
use chorus_protocol::{FocusDigest, Notification};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::policy::FocusPolicy;
use super::priority::FocusRules;
use super::schedule::{FocusSource, WeeklySchedule};
use crate::StoreError;

/// Longest automatic reply, in characters.
pub const MAX_AUTO_REPLY_CHARS: usize = 500;

/// What a user set for focus mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FocusSettings {
    /// The zone the schedule's local times are in.
    pub time_zone: Tz,
    pub schedule: Option<WeeklySchedule>,
    pub rules: FocusRules,
    /// Sent (once per sender per session) in reply to a DM received in focus; `None`: none.
    pub auto_reply: Option<String>,
}

impl Default for FocusSettings {
    fn default() -> Self {
        FocusSettings {
            time_zone: Tz::UTC,
            schedule: None,
            rules: FocusRules::default(),
            auto_reply: None,
        }
    }
}

/// One focus session, open or ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FocusSession {
    pub id: Uuid,
    pub user_id: Uuid,
    pub source: FocusSource,
    pub started_at: DateTime<Utc>,
    /// The planned end; `None`: until the user ends it.
    pub ends_at: Option<DateTime<Utc>>,
    /// When it ended; `None` while open.
    pub ended_at: Option<DateTime<Utc>>,
}

/// A user in focus now, with what the notifier needs to decide for them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InFocus {
    pub session: FocusSession,
    pub rules: FocusRules,
    pub auto_reply: Option<String>,
}

/// A notification to hold for `user` in their open `session`.
#[derive(Clone, Debug)]
pub struct HoldRequest {
    pub user: Uuid,
    pub session: Uuid,
    pub priority: u8,
    pub notification: Notification,
}

/// What became of a [`HoldRequest`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldOutcome {
    /// Recorded and held for the digest.
    Held,
    /// Recorded before (delivered or held already): nothing to do.
    Duplicate,
    /// Recorded now, but the session had ended meanwhile: deliver it at once.
    Deliver,
}

/// Focus state, in the metadata database.
#[async_trait]
pub trait FocusStore: Send + Sync + 'static {
    /// Replaces the user's settings; the schedule is looked at again at the next tick.
    async fn set_focus_settings(
        &self,
        user: Uuid,
        settings: &FocusSettings,
    ) -> Result<(), StoreError>;
    async fn focus_settings(&self, user: Uuid) -> Result<Option<FocusSettings>, StoreError>;
    /// The user's open session, if any.
    async fn open_focus_session(&self, user: Uuid) -> Result<Option<FocusSession>, StoreError>;
    /// Opens `session` (its `ended_at` is ignored); `window_start` names the scheduled window it
    /// is opened for. False when the user has an open session already, or the window was
    /// entered before.
    async fn start_focus_session(
        &self,
        session: &FocusSession,
        window_start: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError>;
    /// Changes the planned end of the user's open session (it becomes a manual one); the
    /// session as it is now, or `None` when none is open.
    async fn extend_focus_session(
        &self,
        user: Uuid,
        ends_at: Option<DateTime<Utc>>,
    ) -> Result<Option<FocusSession>, StoreError>;
    /// The users of `users` with an open session, with their rules.
    async fn in_focus(&self, users: &[Uuid]) -> Result<Vec<InFocus>, StoreError>;
    /// Records each notification (once per id, like `record_notifications`) and holds it when
    /// its session is still open; outcomes in order.
    async fn hold_notifications(
        &self,
        requests: &[HoldRequest],
    ) -> Result<Vec<HoldOutcome>, StoreError>;
    /// Ends the user's open session at `ended_at` and turns everything it held into a digest
    /// (kept, and returned); `None` when no session was open.
    async fn end_focus_session(
        &self,
        user: Uuid,
        ended_at: DateTime<Utc>,
    ) -> Result<Option<FocusDigest>, StoreError>;
    /// The user's digests, newest first.
    async fn focus_digests(&self, user: Uuid, limit: usize)
    -> Result<Vec<FocusDigest>, StoreError>;
    /// Users the runtime must look at by `now`: a schedule whose next check has come, or an
    /// open session whose planned end has passed. At most `limit`.
    async fn due_focus_users(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Uuid>, StoreError>;
    /// When the user's schedule next needs a look (`None`: never by itself).
    async fn set_next_focus_check(
        &self,
        user: Uuid,
        at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError>;
    /// Records that `sender` got the automatic reply of `session`; false when they had already.
    async fn record_auto_reply(&self, session: Uuid, sender: Uuid) -> Result<bool, StoreError>;
    /// The open sessions of the members of `workspace`.
    async fn open_focus_sessions_in(
        &self,
        workspace: Uuid,
    ) -> Result<Vec<FocusSession>, StoreError>;
    /// The user's sessions that started at or after `since`, oldest first (statistics).
    async fn focus_sessions_of(
        &self,
        user: Uuid,
        since: DateTime<Utc>,
    ) -> Result<Vec<FocusSession>, StoreError>;
    /// Sets the focus policy of `workspace`; `None` removes it (members focus at any time).
    async fn set_focus_policy(
        &self,
        workspace: Uuid,
        policy: Option<&FocusPolicy>,
    ) -> Result<(), StoreError>;
    async fn focus_policy(&self, workspace: Uuid) -> Result<Option<FocusPolicy>, StoreError>;
    /// The policies of the workspaces `user` is a member of, by workspace id (ordered by it).
    async fn focus_policies_for(&self, user: Uuid) -> Result<Vec<(Uuid, FocusPolicy)>, StoreError>;
}

impl FocusSource {
    pub fn as_str(self) -> &'static str {
        match self {
            FocusSource::Manual => "manual",
            FocusSource::Schedule => "schedule",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [FocusSource::Manual, FocusSource::Schedule]
            .into_iter()
            .find(|source| source.as_str() == text)
    }
}

/// The settings' columns: time zone name, schedule JSON, rules JSON (shared by both backends).
pub(crate) fn settings_columns(
    settings: &FocusSettings,
) -> Result<(String, Option<String>, String), StoreError> {
    let schedule = settings
        .schedule
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(StoreError::backend)?;
    let rules = serde_json::to_string(&settings.rules).map_err(StoreError::backend)?;
    Ok((settings.time_zone.name().to_string(), schedule, rules))
}

/// Settings read back from their columns.
pub(crate) fn settings_from_columns(
    time_zone: &str,
    schedule: Option<&str>,
    rules: &str,
    auto_reply: Option<String>,
) -> Result<FocusSettings, StoreError> {
    Ok(FocusSettings {
        time_zone: time_zone
            .parse()
            .map_err(|_| StoreError::Backend(format!("unknown time zone {time_zone}")))?,
        schedule: schedule
            .map(serde_json::from_str)
            .transpose()
            .map_err(StoreError::backend)?,
        rules: serde_json::from_str(rules).map_err(StoreError::backend)?,
        auto_reply,
    })
}

/// A policy's columns: time zone name and the hours' JSON (shared by both backends).
pub(crate) fn policy_columns(policy: &FocusPolicy) -> Result<(String, String), StoreError> {
    let hours = serde_json::to_string(&policy.hours).map_err(StoreError::backend)?;
    Ok((policy.time_zone.name().to_string(), hours))
}

/// A policy read back from its columns.
pub(crate) fn policy_from_columns(time_zone: &str, hours: &str) -> Result<FocusPolicy, StoreError> {
    Ok(FocusPolicy {
        time_zone: time_zone
            .parse()
            .map_err(|_| StoreError::Backend(format!("unknown time zone {time_zone}")))?,
        hours: serde_json::from_str(hours).map_err(StoreError::backend)?,
    })
}

pub(crate) fn source_from(text: &str) -> Result<FocusSource, StoreError> {
    FocusSource::parse(text).ok_or_else(|| StoreError::Backend(format!("unknown source {text}")))
}
