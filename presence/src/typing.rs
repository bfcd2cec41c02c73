//! Typing indicators with expiry and re-broadcast throttling.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use uuid::Uuid;

#[derive(Clone, Copy, Debug)]
struct Entry {
    expires_at: Instant,
    last_broadcast: Instant,
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
    pub fn started(&mut self, channel: Uuid, user: Uuid, now: Instant) -> bool {
        if self.entries.len() >= self.sweep_at {
            self.sweep(now);
            self.sweep_at = (self.entries.len() * 2).max(1024);
        }
        let expires_at = now + self.ttl;
        match self.entries.get_mut(&(channel, user)) {
            Some(entry) if entry.expires_at > now => {
                entry.expires_at = expires_at;
                if now.duration_since(entry.last_broadcast) >= self.rebroadcast {
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
    pub fn typing_in(&self, channel: Uuid, now: Instant) -> Vec<Uuid> {
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
    pub fn sweep(&mut self, now: Instant) {
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

    const TTL: Duration = Duration::from_secs(5);
    const REBROADCAST: Duration = Duration::from_secs(3);

    #[test]
    fn an_indicator_expires_after_five_seconds() {
        let mut tracker = TypingTracker::new(TTL, REBROADCAST);
        let (channel, user) = (Uuid::new_v4(), Uuid::new_v4());
        let t0 = Instant::now();
        assert!(tracker.started(channel, user, t0));
        assert_eq!(
            tracker.typing_in(channel, t0 + Duration::from_millis(4_999)),
            vec![user]
        );
        assert!(tracker.typing_in(channel, t0 + TTL).is_empty());
    }

    #[test]
    fn refreshes_extend_but_rebroadcast_at_most_every_three_seconds() {
        let mut tracker = TypingTracker::new(TTL, REBROADCAST);
        let (channel, user) = (Uuid::new_v4(), Uuid::new_v4());
        let t0 = Instant::now();
        assert!(tracker.started(channel, user, t0));
        assert!(!tracker.started(channel, user, t0 + Duration::from_secs(1)));
        assert!(tracker.started(channel, user, t0 + Duration::from_secs(3)));
        // Refreshed at 3 s, so still typing at 7 s.
        assert_eq!(
            tracker.typing_in(channel, t0 + Duration::from_secs(7)),
            vec![user]
        );
        // After expiry a new start broadcasts at once.
        assert!(tracker.started(channel, user, t0 + Duration::from_secs(20)));
    }

    #[test]
    fn sending_a_message_ends_the_indicator_and_sweep_forgets_expired() {
        let mut tracker = TypingTracker::new(TTL, REBROADCAST);
        let (channel, a, b) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let t0 = Instant::now();
        tracker.started(channel, a, t0);
        tracker.started(channel, b, t0 + Duration::from_secs(4));
        tracker.stopped(channel, a);
        assert_eq!(tracker.typing_in(channel, t0), vec![b]);
        tracker.sweep(t0 + Duration::from_secs(10));
        assert!(tracker.is_empty());
    }
}
