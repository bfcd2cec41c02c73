//! Sessions in this gateway's memory: the embedded default.
//!
//! One map behind a mutex, one 40-byte record per session. It is bounded: when full, expired
//! sessions are dropped, and if it is still full a new session is refused rather than growing
//! without bound. Holding needs no renewal (the map dies with its gateway), so an idle connection
//! never calls it.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use uuid::Uuid;

use super::{Holder, SessionError, SessionLimits, SessionRecord, SessionStore, millis};

/// Resumable sessions of one gateway.
pub struct MemorySessions {
    sessions: Mutex<HashMap<Uuid, SessionRecord>>,
    limits: SessionLimits,
}

impl MemorySessions {
    pub fn new(limits: SessionLimits) -> Self {
        MemorySessions {
            sessions: Mutex::new(HashMap::new()),
            limits,
        }
    }
}

#[async_trait]
impl SessionStore for MemorySessions {
    async fn create(
        &self,
        user_id: Uuid,
        holder: Holder,
        now: DateTime<Utc>,
    ) -> Result<Uuid, SessionError> {
        let now = millis(now);
        let mut sessions = self.sessions.lock();
        if sessions.len() >= self.limits.max {
            sessions.retain(|_, record| record.is_live(now));
            if sessions.len() >= self.limits.max {
                return Err(SessionError::Full);
            }
        }
        let id = Uuid::new_v4();
        sessions.insert(id, SessionRecord::held(user_id, holder));
        Ok(id)
    }

    async fn resume(
        &self,
        session: Uuid,
        user_id: Uuid,
        holder: Holder,
        now: DateTime<Utc>,
    ) -> Result<(), SessionError> {
        match self.sessions.lock().get_mut(&session) {
            Some(record) if record.resumable_by(user_id, millis(now)) => {
                record.take_over(holder);
                Ok(())
            }
            _ => Err(SessionError::Unknown),
        }
    }

    async fn release(
        &self,
        session: Uuid,
        holder: Holder,
        now: DateTime<Utc>,
    ) -> Result<(), SessionError> {
        if let Some(record) = self.sessions.lock().get_mut(&session)
            && record.is_held_by(holder)
        {
            record.release(self.limits.ttl, millis(now));
        }
        Ok(())
    }

    async fn forget(&self, session: Uuid, holder: Holder) -> Result<(), SessionError> {
        let mut sessions = self.sessions.lock();
        if sessions.get(&session).is_some_and(|r| r.is_held_by(holder)) {
            sessions.remove(&session);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::conformance;

    #[tokio::test]
    async fn memory_sessions_pass_the_conformance_suite() {
        for check in conformance::ALL {
            conformance::run(check, |limits| async move {
                Box::new(MemorySessions::new(limits)) as Box<dyn SessionStore>
            })
            .await;
        }
    }

    #[test]
    fn holding_a_session_needs_no_renewal() {
        let store = MemorySessions::new(conformance::limits(60, 10));
        assert_eq!(store.hold_lease(), None);
    }
}
