//! The in-process presence store of an embedded node.

use std::collections::HashMap;

use async_trait::async_trait;
use chorus_protocol::{Activity, CustomStatus, FocusPresence, PresenceInfo};
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use uuid::Uuid;

use crate::feed::LocalFeed;
use crate::store::{
    CONNECTION_LEASE, PresenceError, PresenceStore, TYPING_REBROADCAST, TYPING_TTL,
};
use crate::user_feed::LocalUserFeed;
use crate::{OnlineTracker, PresenceUpdates, Transition, TypingTracker, UserFrame, UserFrames};

/// Presence kept in this process. Custom statuses are kept in memory too: an embedded node's
/// restart clears them (as it takes everyone offline).
pub struct MemoryPresence {
    typing: Mutex<TypingTracker>,
    online: Mutex<OnlineTracker>,
    statuses: Mutex<HashMap<Uuid, CustomStatus>>,
    /// Users in a focus session (kept like custom statuses: a restart clears them).
    focus: Mutex<HashMap<Uuid, FocusPresence>>,
    feed: LocalFeed,
    user_feed: LocalUserFeed,
}

impl Default for MemoryPresence {
    fn default() -> Self {
        MemoryPresence {
            typing: Mutex::new(TypingTracker::new(TYPING_TTL, TYPING_REBROADCAST)),
            online: Mutex::new(OnlineTracker::default()),
            statuses: Mutex::new(HashMap::new()),
            focus: Mutex::new(HashMap::new()),
            feed: LocalFeed::default(),
            user_feed: LocalUserFeed::default(),
        }
    }
}

#[async_trait]
impl PresenceStore for MemoryPresence {
    async fn typing(
        &self,
        channel: Uuid,
        user: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, PresenceError> {
        Ok(self.typing.lock().started(channel, user, now))
    }

    async fn stopped_typing(&self, channel: Uuid, user: Uuid) -> Result<(), PresenceError> {
        self.typing.lock().stopped(channel, user);
        Ok(())
    }

    async fn typing_in(
        &self,
        channel: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, PresenceError> {
        Ok(self.typing.lock().typing_in(channel, now))
    }

    async fn connected(
        &self,
        user: Uuid,
        conn: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Transition, PresenceError> {
        Ok(self
            .online
            .lock()
            .connected(user, conn, now, now + CONNECTION_LEASE))
    }

    async fn disconnected(
        &self,
        user: Uuid,
        conn: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Transition, PresenceError> {
        Ok(self.online.lock().disconnected(user, conn, now))
    }

    async fn activity(
        &self,
        user: Uuid,
        conn: Uuid,
        activity: Activity,
        now: DateTime<Utc>,
    ) -> Result<Transition, PresenceError> {
        Ok(self.online.lock().activity(user, conn, activity, now))
    }

    async fn expire(&self, now: DateTime<Utc>) -> Result<Vec<Uuid>, PresenceError> {
        // One process and one lock: no batch needed, every lapsed user is reported at once.
        Ok(self.online.lock().expire(now))
    }

    async fn is_online(&self, user: Uuid, now: DateTime<Utc>) -> Result<bool, PresenceError> {
        Ok(self.online.lock().is_online(user, now))
    }

    async fn last_seen(&self, user: Uuid) -> Result<Option<DateTime<Utc>>, PresenceError> {
        Ok(self.online.lock().last_seen(user))
    }

    async fn set_custom_status(
        &self,
        user: Uuid,
        status: Option<CustomStatus>,
    ) -> Result<(), PresenceError> {
        let mut statuses = self.statuses.lock();
        match status {
            Some(status) => statuses.insert(user, status),
            None => statuses.remove(&user),
        };
        Ok(())
    }

    async fn set_focus(
        &self,
        user: Uuid,
        focus: Option<FocusPresence>,
    ) -> Result<(), PresenceError> {
        let mut all = self.focus.lock();
        match focus {
            Some(focus) => all.insert(user, focus),
            None => all.remove(&user),
        };
        Ok(())
    }

    async fn presence_of(
        &self,
        users: &[Uuid],
        now: DateTime<Utc>,
    ) -> Result<Vec<PresenceInfo>, PresenceError> {
        let online = self.online.lock();
        let statuses = self.statuses.lock();
        let focus = self.focus.lock();
        Ok(users
            .iter()
            .map(|&user_id| PresenceInfo {
                user_id,
                status: online.status(user_id, now),
                last_seen: online.last_seen(user_id),
                custom_status: statuses
                    .get(&user_id)
                    .filter(|status| status.is_live(now))
                    .cloned(),
                focus: focus.get(&user_id).filter(|f| f.is_live(now)).copied(),
            })
            .collect())
    }

    async fn announce(&self, info: PresenceInfo) {
        self.feed.send(info);
    }

    fn updates(&self) -> PresenceUpdates {
        self.feed.subscribe()
    }

    async fn send_to_user(&self, frame: UserFrame) {
        self.user_feed.send(frame);
    }

    fn user_frames(&self) -> UserFrames {
        self.user_feed.subscribe()
    }
}
