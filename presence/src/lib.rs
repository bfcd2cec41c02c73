//! Presence: who is online and who is typing where.
//!
//! The trackers here are decision logic with the clock passed in (`now`), so their rules — a typing
//! indicator lasts 5 s unless refreshed, a refresh is re-broadcast at most every 3 s, a user is
//! online while at least one connection is open — are tested without sleeping. [`Presence`] wraps
//! them for sharing between connection tasks. The Redis-backed store of a cluster implements the
//! same rules with key TTLs.

mod online;
mod typing;

pub use online::{OnlineTracker, Transition};
pub use typing::TypingTracker;

use std::time::{Duration, Instant};

use parking_lot::Mutex;
use uuid::Uuid;

/// How long a typing indicator lasts without a refresh (RF-04.2).
pub const TYPING_TTL: Duration = Duration::from_millis(chorus_protocol::limits::TYPING_TTL_MS);

/// A repeated "typing" from the same user in the same channel is re-broadcast at most this often.
pub const TYPING_REBROADCAST: Duration = Duration::from_secs(3);

/// The in-process presence service of a node.
pub struct Presence {
    typing: Mutex<TypingTracker>,
    online: Mutex<OnlineTracker>,
}

impl Default for Presence {
    fn default() -> Self {
        Presence {
            typing: Mutex::new(TypingTracker::new(TYPING_TTL, TYPING_REBROADCAST)),
            online: Mutex::new(OnlineTracker::default()),
        }
    }
}

impl Presence {
    /// Records that `user` is typing in `channel`; true when subscribers should be told.
    pub fn typing(&self, channel: Uuid, user: Uuid) -> bool {
        self.typing.lock().started(channel, user, Instant::now())
    }

    /// The user posted in the channel: their indicator ends with the message.
    pub fn stopped_typing(&self, channel: Uuid, user: Uuid) {
        self.typing.lock().stopped(channel, user);
    }

    /// Users typing in a channel now.
    pub fn typing_in(&self, channel: Uuid) -> Vec<Uuid> {
        self.typing.lock().typing_in(channel, Instant::now())
    }

    /// A connection of `user` was authenticated.
    pub fn connected(&self, user: Uuid) -> Transition {
        self.online.lock().connected(user, chrono::Utc::now())
    }

    /// A connection of `user` closed.
    pub fn disconnected(&self, user: Uuid) -> Transition {
        self.online.lock().disconnected(user, chrono::Utc::now())
    }

    pub fn is_online(&self, user: Uuid) -> bool {
        self.online.lock().is_online(user)
    }
}
