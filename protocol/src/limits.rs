//! Limits that both sides of the socket need to know.

/// Longest message text, counted in Unicode scalar values (RF-03.1).
pub const MAX_MESSAGE_CHARS: usize = 4_000;

/// Longest client nonce, in bytes. Nonces are opaque to the server.
pub const MAX_NONCE_BYTES: usize = 64;

/// Largest WebSocket message the gateway accepts, in bytes. A 4,000-character text of 4-byte
/// characters JSON-escaped stays well below this.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// How long a typing indicator stays visible unless refreshed (RF-04.2).
pub const TYPING_TTL_MS: u64 = 5_000;

/// Users one connection may follow the presence of at once (`presence_subscribe`): the members in
/// a client's view, not a whole workspace.
pub const MAX_PRESENCE_SUBSCRIPTIONS: usize = 100;

/// Longest custom status text, in Unicode scalar values (RF-06.3).
pub const MAX_STATUS_TEXT_CHARS: usize = 100;

/// Longest custom status emoji, in bytes (a character or a short name).
pub const MAX_STATUS_EMOJI_BYTES: usize = 64;
