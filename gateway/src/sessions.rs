//! Sessions that can be resumed after a reconnect.
//!
//! A session lives while a connection holds it and for `session_ttl` after that connection
//! closes. The registry is bounded: when full, expired sessions are dropped, and if it is still
//! full a new session is refused rather than growing without bound.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use uuid::Uuid;

#[derive(Clone, Copy, Debug)]
struct Record {
    user_id: Uuid,
    /// The connection that holds (or last held) the session: only it may release it, so an old
    /// connection closing late cannot expire a session a newer one has resumed.
    holder: u64,
    /// `None` while a connection holds the session.
    expires_at: Option<Instant>,
}

/// Resumable sessions of this gateway.
pub struct SessionRegistry {
    sessions: Mutex<HashMap<Uuid, Record>>,
    ttl: Duration,
    max: usize,
}

/// Why a session could not be created or resumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionError {
    Unknown,
    Full,
}

impl SessionRegistry {
    pub fn new(ttl: Duration, max: usize) -> Self {
        SessionRegistry {
            sessions: Mutex::new(HashMap::new()),
            ttl,
            max,
        }
    }

    /// A new session held by a connection of `user_id`.
    pub fn create(&self, user_id: Uuid, holder: u64, now: Instant) -> Result<Uuid, SessionError> {
        let mut sessions = self.sessions.lock();
        if sessions.len() >= self.max {
            sessions.retain(|_, r| r.expires_at.is_none_or(|at| at > now));
            if sessions.len() >= self.max {
                return Err(SessionError::Full);
            }
        }
        let id = Uuid::new_v4();
        sessions.insert(
            id,
            Record {
                user_id,
                holder,
                expires_at: None,
            },
        );
        Ok(id)
    }

    /// Takes over a session of `user_id` that has not expired.
    pub fn resume(
        &self,
        session: Uuid,
        user_id: Uuid,
        holder: u64,
        now: Instant,
    ) -> Result<(), SessionError> {
        let mut sessions = self.sessions.lock();
        match sessions.get_mut(&session) {
            Some(record)
                if record.user_id == user_id && record.expires_at.is_none_or(|at| at > now) =>
            {
                record.expires_at = None;
                record.holder = holder;
                Ok(())
            }
            _ => Err(SessionError::Unknown),
        }
    }

    /// The connection holding the session closed: it stays resumable for the TTL.
    pub fn release(&self, session: Uuid, holder: u64, now: Instant) {
        if let Some(record) = self.sessions.lock().get_mut(&session)
            && record.holder == holder
        {
            record.expires_at = Some(now + self.ttl);
        }
    }

    /// Ends a session for good (authentication failure), if `holder` still holds it.
    pub fn forget(&self, session: Uuid, holder: u64) {
        let mut sessions = self.sessions.lock();
        if sessions.get(&session).is_some_and(|r| r.holder == holder) {
            sessions.remove(&session);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_released_session_resumes_until_its_ttl() {
        let registry = SessionRegistry::new(Duration::from_secs(60), 10);
        let (user, t0) = (Uuid::new_v4(), Instant::now());
        let session = registry.create(user, 1, t0).unwrap();
        registry.release(session, 1, t0);
        assert_eq!(
            registry.resume(session, Uuid::new_v4(), 2, t0),
            Err(SessionError::Unknown),
            "another user cannot take the session"
        );
        assert_eq!(
            registry.resume(session, user, 2, t0 + Duration::from_secs(59)),
            Ok(())
        );
        registry.release(session, 2, t0 + Duration::from_secs(59));
        assert_eq!(
            registry.resume(session, user, 3, t0 + Duration::from_secs(200)),
            Err(SessionError::Unknown)
        );
    }

    #[test]
    fn a_late_close_of_the_old_connection_does_not_expire_a_resumed_session() {
        let registry = SessionRegistry::new(Duration::from_secs(60), 10);
        let (user, t0) = (Uuid::new_v4(), Instant::now());
        let session = registry.create(user, 1, t0).unwrap();
        // Connection 2 resumes before the server noticed connection 1 is gone.
        registry.resume(session, user, 2, t0).unwrap();
        registry.release(session, 1, t0);
        registry.forget(session, 1);
        // Long after the TTL the session is still held by connection 2.
        let later = t0 + Duration::from_secs(600);
        assert_eq!(registry.resume(session, user, 3, later), Ok(()));
    }

    #[test]
    fn a_full_registry_drops_expired_sessions_first_then_refuses() {
        let registry = SessionRegistry::new(Duration::from_secs(1), 2);
        let (user, t0) = (Uuid::new_v4(), Instant::now());
        let old = registry.create(user, 1, t0).unwrap();
        registry.release(old, 1, t0);
        registry.create(user, 2, t0).unwrap();
        let later = t0 + Duration::from_secs(5);
        registry.create(user, 3, later).unwrap();
        assert_eq!(registry.create(user, 4, later), Err(SessionError::Full));
    }
}
