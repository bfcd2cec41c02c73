//! Online/offline by connection count, with last-seen times (RF-06.1, RF-06.2).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// What a connect or disconnect changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// The user's first connection opened.
    CameOnline,
    /// The user's last connection closed.
    WentOffline,
    /// The user was and stays online (another connection opened or closed).
    Unchanged,
}

/// Open connections per user and when each user was last seen.
#[derive(Debug, Default)]
pub struct OnlineTracker {
    connections: HashMap<Uuid, u32>,
    last_seen: HashMap<Uuid, DateTime<Utc>>,
}

impl OnlineTracker {
    pub fn connected(&mut self, user: Uuid, now: DateTime<Utc>) -> Transition {
        let count = self.connections.entry(user).or_insert(0);
        *count += 1;
        self.last_seen.insert(user, now);
        if *count == 1 {
            Transition::CameOnline
        } else {
            Transition::Unchanged
        }
    }

    pub fn disconnected(&mut self, user: Uuid, now: DateTime<Utc>) -> Transition {
        self.last_seen.insert(user, now);
        match self.connections.get_mut(&user) {
            Some(count) if *count > 1 => {
                *count -= 1;
                Transition::Unchanged
            }
            Some(_) => {
                self.connections.remove(&user);
                Transition::WentOffline
            }
            None => Transition::Unchanged,
        }
    }

    pub fn is_online(&self, user: Uuid) -> bool {
        self.connections.contains_key(&user)
    }

    pub fn last_seen(&self, user: Uuid) -> Option<DateTime<Utc>> {
        self.last_seen.get(&user).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn online_while_any_connection_is_open() {
        let mut tracker = OnlineTracker::default();
        let user = Uuid::new_v4();
        let t = DateTime::from_timestamp(1_000, 0).unwrap();
        assert_eq!(tracker.connected(user, t), Transition::CameOnline);
        assert_eq!(tracker.connected(user, t), Transition::Unchanged);
        assert_eq!(tracker.disconnected(user, t), Transition::Unchanged);
        assert!(tracker.is_online(user));
        let later = DateTime::from_timestamp(2_000, 0).unwrap();
        assert_eq!(tracker.disconnected(user, later), Transition::WentOffline);
        assert!(!tracker.is_online(user));
        assert_eq!(tracker.last_seen(user), Some(later));
        assert_eq!(tracker.disconnected(user, later), Transition::Unchanged);
    }
}
