//! Typing indicators with expiry and re-broadcast throttling, clock passed in.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

#[derive(Clone, Copy, Debug)]
struct Entry {
    expires_at: DateTime<Utc>,
    last_broadcast: DateTime<Utc>,
}

/// Who is typing where, as of a given instant.
#[derive(Debug)]
pub struct TypingTracker {
    ttl: Duration,
    rebroadcast: Duration,
    entries: HashMap<(Uuid, Uuid), Entry>,
    /// Entries are swept when the table has grown past this since the last sweep, so stale
    /// indicators never accumulate without bound.
    sweep_at: usize,
}

impl TypingTracker {
    pub fn new(ttl: Duration, rebroadcast: Duration) -> Self {
        TypingTracker {
            ttl,
            rebroadcast,
            entries: HashMap::new(),
            sweep_at: 1024,
        }
    }

    /// `user` is typing in `channel`. Returns whether to broadcast: the first time, after the
    /// previous indicator expired, or once the re-broadcast interval has passed.
    pub fn started(&mut self, channel: Uuid, user: Uuid, now: DateTime<Utc>) -> bool {
        if self.entries.len() >= self.sweep_at {
            self.sweep(now);
            self.sweep_at = (self.entries.len() * 2).max(1024);
        }
        let expires_at = now + self.ttl;
        match self.entries.get_mut(&(channel, user)) {
            Some(entry) if entry.expires_at > now => {
                entry.expires_at = expires_at;
                if now - entry.last_broadcast >= self.rebroadcast {
                    entry.last_broadcast = now;
                    true
                } else {
                    false
                }
            }
            _ => {
                self.entries.insert(
                    (channel, user),
                    Entry {
                        expires_at,
                        last_broadcast: now,
                    },
                );
                true
            }
        }
    }

    pub fn stopped(&mut self, channel: Uuid, user: Uuid) {
        self.entries.remove(&(channel, user));
    }

    /// Users whose indicator in `channel` has not expired at `now`, sorted.
    pub fn typing_in(&self, channel: Uuid, now: DateTime<Utc>) -> Vec<Uuid> {
        let mut users: Vec<Uuid> = self
            .entries
            .iter()
            .filter(|((c, _), entry)| *c == channel && entry.expires_at > now)
            .map(|((_, user), _)| *user)
            .collect();
        users.sort();
        users
    }

    /// Forgets expired indicators.
    pub fn sweep(&mut self, now: DateTime<Utc>) {
        self.entries.retain(|_, entry| entry.expires_at > now);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_000_000 + ms).unwrap()
    }

    #[test]
    fn sweeping_forgets_expired_indicators() {
        let mut tracker = TypingTracker::new(Duration::seconds(5), Duration::seconds(3));
        let (channel, a, b) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        tracker.started(channel, a, t(0));
        tracker.started(channel, b, t(4_000));
        tracker.sweep(t(6_000));
        assert_eq!(tracker.len(), 1);
        tracker.sweep(t(20_000));
        assert!(tracker.is_empty());
    }
}
