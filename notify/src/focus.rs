//! Focus mode's runtime: starting and ending sessions (with the digest, and `focus` in the
//! user's presence for teammates), and the tick that starts and ends sessions on time —
//! scheduled windows and sessions planned to end.
//!
//! Every decision is pure and lives in `chorus_core::focus` (`transition`: given the open
//! session, the schedule and now, what happens; `policy`: whether the user's workspaces' focus
//! hours allow a scheduled session to start); this module reads the state, applies the step
//! and sends what the user must hear. The clock is whatever `now` the caller passes: the node's
//! ticker passes the wall clock every `focus_tick_ms`, tests pass a test clock
//! (`chorus::Node::focus_tick`). Several processes may tick the same store: a session is opened
//! once per window and ended once (the store's guarantees), so a second ticker only repeats
//! reads.

use std::sync::Arc;
use std::time::Duration;

use chorus_core::focus::policy::check_all;
use chorus_core::focus::transition::{OpenSession, Transition, next_check, transition};
use chorus_core::focus::{FocusSession, schedule::FocusSource};
use chorus_core::{MetadataStore, StoreError};
use chorus_presence::PresenceStore;
use chorus_protocol::{FocusDigest, FocusPresence, ServerFrame};
use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::notifier::send;

/// Users one tick looks at, at most (the rest are still due at the next tick).
pub const TICK_BATCH: usize = 1_000;

/// Starts a session for `user` now, until `ends_at` (`None`: until ended) — or, when one is open
/// already, moves its planned end to `ends_at`. Returns the session as it is now.
pub async fn start_session(
    metadata: &dyn MetadataStore,
    presence: &dyn PresenceStore,
    user: Uuid,
    now: DateTime<Utc>,
    ends_at: Option<DateTime<Utc>>,
) -> Result<FocusSession, StoreError> {
    let focus = metadata.focus();
    let session = FocusSession {
        id: Uuid::now_v7(),
        user_id: user,
        source: FocusSource::Manual,
        started_at: now,
        ends_at,
        ended_at: None,
    };
    // Two tries: a session may end (or start) between the two statements.
    for _ in 0..2 {
        if focus.start_focus_session(&session, None).await? {
            show(presence, &session).await;
            return Ok(session);
        }
        if let Some(open) = focus.extend_focus_session(user, ends_at).await? {
            show(presence, &open).await;
            return Ok(open);
        }
    }
    Err(StoreError::Conflict(
        "the focus session changed twice meanwhile; retry".into(),
    ))
}

/// Ends `user`'s open session at `at` and sends its digest to every connection of theirs; the
/// digest, or `None` when no session was open. The digest is kept, so a client that was away
/// reads it over REST.
pub async fn end_session(
    metadata: &dyn MetadataStore,
    presence: &dyn PresenceStore,
    user: Uuid,
    at: DateTime<Utc>,
) -> Result<Option<FocusDigest>, StoreError> {
    let digest = metadata.focus().end_focus_session(user, at).await?;
    if let Some(digest) = &digest {
        announce(presence, user, None).await;
        send(presence, user, &ServerFrame::FocusDigest(digest.clone())).await;
    }
    Ok(digest)
}

/// Shows `session` in the user's presence (teammates following them get a `presence` frame).
async fn show(presence: &dyn PresenceStore, session: &FocusSession) {
    let focus = FocusPresence {
        since: session.started_at,
        until: session.ends_at,
    };
    announce(presence, session.user_id, Some(focus)).await;
}

/// Sets (or clears) `focus` in the user's presence and announces it to every gateway. Presence
/// is advisory: a failure is logged, the session stands.
async fn announce(presence: &dyn PresenceStore, user: Uuid, focus: Option<FocusPresence>) {
    if let Err(err) = presence.set_focus(user, focus).await {
        return tracing::warn!(error = %err, "focus not shown in presence");
    }
    match presence.presence_of(&[user], Utc::now()).await {
        Ok(mut infos) => {
            if let Some(info) = infos.pop() {
                presence.announce(info).await;
            }
        }
        Err(err) => tracing::warn!(error = %err, "presence read failed"),
    }
}

/// What one tick did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    pub started: usize,
    pub ended: usize,
}

/// The ticker's state: the stores it reads and writes.
pub struct FocusRuntime {
    metadata: Arc<dyn MetadataStore>,
    presence: Arc<dyn PresenceStore>,
}

impl FocusRuntime {
    pub fn new(metadata: Arc<dyn MetadataStore>, presence: Arc<dyn PresenceStore>) -> Self {
        FocusRuntime { metadata, presence }
    }

    /// Applies, at `now`, the step of every user that is due.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<TickReport, StoreError> {
        let focus = self.metadata.focus();
        let mut report = TickReport::default();
        for user in focus.due_focus_users(now, TICK_BATCH).await? {
            let settings = focus.focus_settings(user).await?;
            let schedule = settings
                .as_ref()
                .and_then(|s| s.schedule.as_ref().map(|schedule| (schedule, s.time_zone)));
            let open = focus.open_focus_session(user).await?;
            let mut step = transition(
                open.map(|o| OpenSession { ends_at: o.ends_at }),
                schedule,
                now,
            );
            // A workspace's focus hours bind scheduled sessions too: a window they do not allow
            // is skipped (looked at again when the schedule next changes).
            if let Transition::Start { ends_at, .. } = step
                && let Err((workspace, why)) =
                    check_all(&focus.focus_policies_for(user).await?, now, Some(ends_at))
            {
                tracing::debug!(%user, %workspace, ?why, "scheduled focus refused by policy");
                step = Transition::Stay;
            }
            match step {
                Transition::Stay => {}
                Transition::End { at } => {
                    if end_session(self.metadata.as_ref(), self.presence.as_ref(), user, at)
                        .await?
                        .is_some()
                    {
                        report.ended += 1;
                    }
                }
                Transition::Start {
                    window_start,
                    ends_at,
                } => {
                    let session = FocusSession {
                        id: Uuid::now_v7(),
                        user_id: user,
                        source: FocusSource::Schedule,
                        started_at: now,
                        ends_at: Some(ends_at),
                        ended_at: None,
                    };
                    if focus
                        .start_focus_session(&session, Some(window_start))
                        .await?
                    {
                        show(self.presence.as_ref(), &session).await;
                        report.started += 1;
                    }
                }
            }
            if settings.is_some() {
                // After a change, look again at the next tick (a session that ended inside a
                // window lets the window's own session start); otherwise at the schedule's next
                // start or end.
                let again = match step {
                    Transition::Stay => next_check(schedule, now),
                    _ => Some(now),
                };
                focus.set_next_focus_check(user, again).await?;
            }
        }
        Ok(report)
    }

    /// Ticks every `every` on the wall clock until `stop` turns true.
    pub fn spawn(
        self: Arc<Self>,
        every: Duration,
        mut stop: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = interval.tick() => {}
                    _ = stop.wait_for(|stop| *stop) => return,
                }
                if let Err(err) = self.tick(Utc::now()).await {
                    tracing::warn!(error = %err, "focus tick failed; retried at the next one");
                }
            }
        })
    }
}
