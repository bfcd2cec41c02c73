//! The in-process presence store of an embedded node.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use uuid::Uuid;

use crate::store::{
    CONNECTION_LEASE, PresenceError, PresenceStore, TYPING_REBROADCAST, TYPING_TTL,
};
use crate::{OnlineTracker, Transition, TypingTracker};

/// Presence kept in this process.
pub struct MemoryPresence {
    typing: Mutex<TypingTracker>,
    online: Mutex<OnlineTracker>,
}

impl Default for MemoryPresence {
    fn default() -> Self {
        MemoryPresence {
            typing: Mutex::new(TypingTracker::new(TYPING_TTL, TYPING_REBROADCAST)),
            online: Mutex::new(OnlineTracker::default()),
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

    async fn is_online(&self, user: Uuid, now: DateTime<Utc>) -> Result<bool, PresenceError> {
        Ok(self.online.lock().is_online(user, now))
    }

    async fn last_seen(&self, user: Uuid) -> Result<Option<DateTime<Utc>>, PresenceError> {
        Ok(self.online.lock().last_seen(user))
    }
}
