//! The Chorus wire protocol, version 1.
//!
//! This crate is the only place that knows how a WebSocket frame is spelled. The gateway, the load
//! tester, the tests and any Rust client encode and decode frames through these types; nothing else
//! builds JSON for the socket by hand. The human-readable description with an example of every frame
//! is `docs/PROTOCOL.md`; keep the two in step.
//!
//! Every frame is one JSON text message with a `type` tag. Client frames are [`ClientFrame`], server
//! frames are [`ServerFrame`]. Connection-ending conditions are [`CloseCode`]s; recoverable
//! problems are [`ServerFrame::Error`] frames carrying an [`ErrorCode`].

mod close;
mod command;
mod error;
mod focus;
mod frames;
mod intents;
pub mod limits;
mod notification;
mod presence;
pub mod timestamp;

pub use close::CloseCode;
pub use command::{CommandError, CommandInvocation, Ephemeral};
pub use error::ErrorCode;
pub use focus::{DIGEST_TOP, DigestChannel, FocusDigest};
pub use frames::*;
pub use intents::{Intent, Intents};
pub use notification::{
    ChannelUnread, Notification, NotificationKind, PREVIEW_CHARS, UNREAD_CAP, preview,
};
pub use presence::{
    Activity, CustomStatus, FocusPresence, PresenceInfo, PresenceStatus, StatusError,
};

/// The protocol version spoken by this crate, announced in [`ServerFrame::Hello`].
pub const PROTOCOL_VERSION: u32 = 1;
