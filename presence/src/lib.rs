//! Presence: who is online, idle or offline, what they say about themselves, and who is typing
//! where — and the feed that carries changes to every gateway.
//!
//! The rules — a typing indicator lasts 5 s unless refreshed, a refresh is re-broadcast at most
//! every 3 s, a user is online while at least one connection's lease is live and active, idle when
//! every live one is idle — are written once as clock-injected trackers ([`TypingTracker`],
//! [`OnlineTracker`]) for the in-process store ([`MemoryPresence`]), and once as Lua scripts for
//! the Redis store ([`RedisPresence`]) that the gateways of a cluster share. One conformance suite
//! ([`conformance`]) holds both to the rules.

pub mod conformance;
mod feed;
mod memory;
mod online;
mod redis;
mod store;
mod typing;
mod user_feed;

pub use feed::{PresenceSignal, PresenceUpdates};
pub use memory::MemoryPresence;
pub use online::{OnlineTracker, Transition};
pub use redis::RedisPresence;
pub use store::{
    CONNECTION_LEASE, EXPIRE_BATCH, PresenceError, PresenceStore, TYPING_REBROADCAST, TYPING_TTL,
};
pub use typing::TypingTracker;
pub use user_feed::{UserFrame, UserFrames};
