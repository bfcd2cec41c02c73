//! Error codes carried by `error` frames. The connection stays open after an error frame.

use serde::{Deserialize, Serialize};

/// A machine-readable reason in a [`crate::ServerFrame::Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame was not valid JSON.
    InvalidJson,
    /// The JSON had an unknown `type`.
    UnknownType,
    /// A field was missing or had the wrong type or value.
    InvalidFrame,
    /// Message text was empty or longer than [`crate::limits::MAX_MESSAGE_CHARS`].
    TextTooLong,
    /// The caller may not do this (not a member, channel archived, read-only role).
    Forbidden,
    /// The channel or session does not exist (or is not visible to the caller).
    NotFound,
    /// Too many frames too fast; `retry_after_ms` says when to try again.
    RateLimited,
    /// Too many sends are waiting for their acknowledgement on this connection.
    TooManyInFlight,
    /// The channel service could not take the request right now; retry with the same nonce.
    Unavailable,
    /// Something went wrong on the server; retry with the same nonce.
    Internal,
    /// A `presence_subscribe` named more users than
    /// [`crate::limits::MAX_PRESENCE_SUBSCRIPTIONS`]; the previous subscription stays.
    PresenceLimit,
    /// The send's workspace is over its plan's messages per minute (shared by every member, over
    /// REST and WebSocket); `retry_after_ms` says when to try again with the same nonce.
    WorkspaceMessageLimit,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_spelled_as_documented() {
        for (code, spelled) in [
            (ErrorCode::RateLimited, "\"rate_limited\""),
            (ErrorCode::PresenceLimit, "\"presence_limit\""),
            (
                ErrorCode::WorkspaceMessageLimit,
                "\"workspace_message_limit\"",
            ),
        ] {
            assert_eq!(serde_json::to_string(&code).unwrap(), spelled);
            assert_eq!(serde_json::from_str::<ErrorCode>(spelled).unwrap(), code);
        }
    }
}
