//! How a connection's failures reach the client: close codes for the connection's end, error frames
//! for a channel or a send, with `retry_after_ms` where waiting helps.

use chorus_cluster::RouteError;
use chorus_core::model::ChannelAccess;
use chorus_protocol::{CloseCode, ErrorCode, ServerFrame};
use uuid::Uuid;

use super::End;
use crate::sessions::SessionError;

/// How a session the connection could not open ends it: an unknown session is 4005 (identify
/// afresh), a full store 4003 (try another gateway), an unreachable store 4000 (back off and
/// retry: the session is likely still there once the store is back).
pub(super) fn session_end(err: SessionError) -> End {
    match err {
        SessionError::Unknown => End::Close(CloseCode::SessionInvalid),
        SessionError::Full => End::Close(CloseCode::ServerRestart),
        SessionError::Unavailable(_) => internal("session store", err),
    }
}

pub(super) fn internal(what: &str, err: impl std::fmt::Display) -> End {
    tracing::error!(error = %err, "{what} failed");
    End::Close(CloseCode::InternalError)
}

pub(super) fn channel_error(code: ErrorCode, message: &str, channel: Uuid) -> ServerFrame {
    ServerFrame::Error {
        code,
        message: message.into(),
        nonce: None,
        channel_id: Some(channel),
        retry_after_ms: None,
    }
}

/// The answer for a channel whose access could not be read (the store failed; logged where read).
pub(super) fn access_unknown(channel: Uuid) -> ServerFrame {
    channel_error(ErrorCode::Internal, "internal error", channel)
}

pub(super) fn access_error(access: ChannelAccess, channel: Uuid) -> ServerFrame {
    match access {
        ChannelAccess::Invisible => channel_error(ErrorCode::NotFound, "no such channel", channel),
        _ => channel_error(
            ErrorCode::Forbidden,
            "you are not a member of this channel",
            channel,
        ),
    }
}

pub(super) fn route_error(
    err: RouteError,
    nonce: Option<String>,
    channel: Option<Uuid>,
) -> ServerFrame {
    let (code, message) = match &err {
        RouteError::Overloaded => (ErrorCode::Unavailable, "channel service overloaded; retry"),
        RouteError::Unavailable(_) | RouteError::NotLeader { .. } => {
            (ErrorCode::Unavailable, "channel service unavailable; retry")
        }
        RouteError::Archived => (ErrorCode::Forbidden, "the channel is archived"),
        RouteError::Rejected(_) => (
            ErrorCode::NotFound,
            "parent_seq names no message of this channel",
        ),
        RouteError::Internal(_) => {
            tracing::error!(error = %err, "channel service error");
            (
                ErrorCode::Internal,
                "internal error; retry with the same nonce",
            )
        }
    };
    // An overloaded shard says when a retry is likely to be taken.
    let retry_after_ms = matches!(err, RouteError::Overloaded)
        .then(|| u64::try_from(chorus_cluster::OVERLOADED_RETRY_AFTER.as_millis()).unwrap_or(250));
    ServerFrame::Error {
        code,
        message: message.into(),
        nonce,
        channel_id: channel,
        retry_after_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(end: End) -> Option<u16> {
        match end {
            End::Close(code) => Some(code.code()),
            _ => None,
        }
    }

    #[test]
    fn a_session_the_store_refuses_or_cannot_reach_ends_with_its_close_code() {
        assert_eq!(code(session_end(SessionError::Unknown)), Some(4005));
        assert_eq!(code(session_end(SessionError::Full)), Some(4003));
        assert_eq!(
            code(session_end(SessionError::Unavailable("timed out".into()))),
            Some(4000),
            "retry later: the session is likely still there"
        );
    }

    #[test]
    fn an_overloaded_shard_says_when_to_retry_and_other_refusals_do_not() {
        let retry_after = |err| match route_error(err, Some("n-1".into()), None) {
            ServerFrame::Error {
                code,
                retry_after_ms,
                nonce,
                ..
            } => {
                assert_eq!(code, ErrorCode::Unavailable);
                assert_eq!(nonce.as_deref(), Some("n-1"), "the refused send is named");
                retry_after_ms
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(retry_after(RouteError::Overloaded), Some(250));
        assert_eq!(retry_after(RouteError::Unavailable("down".into())), None);
    }
}
