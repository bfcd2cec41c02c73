//! WebSocket close codes.
//!
//! Codes are grouped in ranges so a client can decide what to do without knowing every code:
//! `4000..=4099` mean "reconnect (with backoff) and resume"; `4100..=4199` mean "do not reconnect
//! until something changes" (new credentials, a fixed client). Standard codes 1000 (normal), 1001
//! (going away), 1008 (policy: forbidden Origin is refused during the handshake instead) and 1009
//! (message too big) are used with their RFC 6455 meaning.

use serde::{Deserialize, Serialize};

/// Why the server closed a connection. The numeric value is the WebSocket close code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "u16", try_from = "u16")]
#[repr(u16)]
pub enum CloseCode {
    /// The server hit an unexpected internal error. Reconnect and resume.
    InternalError = 4000,
    /// No frame arrived from the client within the heartbeat deadline. Reconnect and resume.
    HeartbeatTimeout = 4001,
    /// The client read too slowly and its outbound queue overflowed. Reconnect and resume.
    SlowConsumer = 4002,
    /// The node is shutting down or restarting. Reconnect (elsewhere) and resume.
    ServerRestart = 4003,
    /// The client kept sending after being told it was rate-limited. Reconnect after a backoff.
    RateLimited = 4004,
    /// A `resume` named a session this gateway cannot find: expired, or issued by a gateway that
    /// shares no session store (`session_url`) with this one.
    /// Reconnect and `identify` afresh, then subscribe with `since_seq`.
    SessionInvalid = 4005,
    /// The token was missing, malformed, expired or revoked. Refresh credentials before reconnecting.
    AuthenticationFailed = 4100,
    /// The client sent a frame other than `identify`/`resume` first, or none within the deadline.
    NotAuthenticated = 4101,
    /// The client sent `identify` or `resume` on an already authenticated connection.
    AlreadyAuthenticated = 4102,
    /// The client broke the protocol in a way that cannot be answered with an error frame
    /// (binary frames, too many invalid frames in a row).
    ProtocolViolation = 4103,
}

impl CloseCode {
    /// Every close code, for documentation and tests.
    pub const ALL: [CloseCode; 10] = [
        CloseCode::InternalError,
        CloseCode::HeartbeatTimeout,
        CloseCode::SlowConsumer,
        CloseCode::ServerRestart,
        CloseCode::RateLimited,
        CloseCode::SessionInvalid,
        CloseCode::AuthenticationFailed,
        CloseCode::NotAuthenticated,
        CloseCode::AlreadyAuthenticated,
        CloseCode::ProtocolViolation,
    ];

    /// The numeric WebSocket close code.
    pub fn code(self) -> u16 {
        self as u16
    }

    /// Whether a client should reconnect on its own after this close.
    pub fn should_reconnect(self) -> bool {
        (4000..4100).contains(&self.code())
    }

    /// A short reason sent in the close frame.
    pub fn reason(self) -> &'static str {
        match self {
            CloseCode::InternalError => "internal error",
            CloseCode::HeartbeatTimeout => "heartbeat timeout",
            CloseCode::SlowConsumer => "slow consumer",
            CloseCode::ServerRestart => "server restart",
            CloseCode::RateLimited => "rate limited",
            CloseCode::SessionInvalid => "session invalid",
            CloseCode::AuthenticationFailed => "authentication failed",
            CloseCode::NotAuthenticated => "not authenticated",
            CloseCode::AlreadyAuthenticated => "already authenticated",
            CloseCode::ProtocolViolation => "protocol violation",
        }
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> u16 {
        code.code()
    }
}

impl TryFrom<u16> for CloseCode {
    type Error = u16;

    fn try_from(value: u16) -> Result<Self, Self::Error> {
        CloseCode::ALL
            .into_iter()
            .find(|c| c.code() == value)
            .ok_or(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_ranges_hold() {
        for code in CloseCode::ALL {
            assert_eq!(CloseCode::try_from(code.code()), Ok(code));
            assert_eq!(code.should_reconnect(), code.code() < 4100, "{code:?}");
        }
        assert_eq!(CloseCode::try_from(1000), Err(1000));
    }
}
