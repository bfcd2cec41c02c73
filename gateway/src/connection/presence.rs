//! A connection's part in presence: it counts its user online while open, reports `activity`,
//! and follows the presence of the users its client asks for (`presence_subscribe`).
//!
//! The decisions (how many users, which of them the caller may see, what changes in the table)
//! are pure functions in `presence_watch.rs` and `chorus_core::visibility`; this file only calls
//! the stores and answers the client.

use chorus_core::visibility::sharing_a_workspace;
use chorus_presence::Transition;
use chorus_protocol::limits::MAX_PRESENCE_SUBSCRIPTIONS;
use chorus_protocol::{Activity, ErrorCode, ServerFrame};
use uuid::Uuid;

use super::Connection;
use crate::presence_watch::{announce_change, distinct_within, plan};

impl Connection {
    /// Tells followers of this user, when the transition changed what they see.
    pub(super) async fn report_presence(&self, transition: Transition) {
        announce_change(self.shared.deps.presence.as_ref(), self.user, transition).await;
    }

    /// `activity`: this connection's user is active or idle.
    pub(super) async fn on_activity(&mut self, state: Activity) {
        let presence = &self.shared.deps.presence;
        match presence
            .activity(self.user, self.presence_id(), state, chrono::Utc::now())
            .await
        {
            Ok(transition) => self.report_presence(transition).await,
            Err(err) => tracing::warn!(error = %err, "presence update failed"),
        }
    }

    /// `presence_subscribe`: follow these users instead of the previous list, and answer with
    /// their presence now. Over the limit the previous list stays and the answer is
    /// `presence_limit`.
    pub(super) async fn on_presence_subscribe(&mut self, user_ids: Vec<Uuid>) {
        let Some(wanted) = distinct_within(&user_ids, MAX_PRESENCE_SUBSCRIPTIONS) else {
            self.reply(&ServerFrame::error(
                ErrorCode::PresenceLimit,
                format!("follow at most {MAX_PRESENCE_SUBSCRIPTIONS} users' presence"),
            ));
            return;
        };
        let shared = self.shared.clone();
        let visible =
            match sharing_a_workspace(shared.deps.store.as_ref(), self.user, &wanted).await {
                Ok(visible) => visible,
                Err(err) => {
                    tracing::error!(error = %err, "presence visibility check failed");
                    self.reply(&ServerFrame::error(ErrorCode::Internal, "internal error"));
                    return;
                }
            };
        let change = plan(self.occasional.following(), &visible);
        let watch = &shared.presence_watch;
        watch.unfollow(self.id, &change.unfollow);
        // Follow before reading, so a change between the two is not lost (it may arrive twice).
        watch.follow(self.id, &self.outbox, &change.follow);
        self.occasional.get_mut().following = visible;
        match shared
            .deps
            .presence
            .presence_of(self.occasional.following(), chrono::Utc::now())
            .await
        {
            Ok(presences) => self.reply(&ServerFrame::PresenceSubscribed { presences }),
            Err(err) => {
                tracing::warn!(error = %err, "presence read failed");
                self.reply(&ServerFrame::error(
                    ErrorCode::Unavailable,
                    "presence is unavailable; retry",
                ));
            }
        }
    }

    /// Stops following anyone (the connection ends).
    pub(super) fn unfollow_all(&mut self) {
        let following = self.occasional.take_following();
        self.shared.presence_watch.unfollow(self.id, &following);
    }
}
