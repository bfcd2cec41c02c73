//! Client and server frames.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Activity, ChannelUnread, ErrorCode, FocusDigest, Notification, PresenceInfo};

/// A frame sent by the client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// First frame of a new session: authenticate with an access token (never in the URL).
    /// `intents` (optional): the kinds of events wanted (docs/PROTOCOL.md, "Intents"); absent
    /// means every kind.
    Identify {
        token: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        intents: Option<Vec<crate::Intent>>,
    },
    /// First frame after a reconnect: authenticate and continue a session, replaying what was missed
    /// on each listed channel after `last_seq`.
    Resume {
        token: String,
        session_id: Uuid,
        channels: Vec<ChannelPosition>,
        /// As in `identify`: intents are the connection's, declared again on each resume.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        intents: Option<Vec<crate::Intent>>,
    },
    /// Keeps the connection alive; answered by `heartbeat_ack`.
    Heartbeat,
    /// Start receiving a channel's events. With `since_seq`, every event after it is replayed first.
    Subscribe {
        channel_id: Uuid,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since_seq: Option<u64>,
    },
    /// Stop receiving a channel's events.
    Unsubscribe { channel_id: Uuid },
    /// Post a message. `nonce` is chosen by the client; resending the same nonce to the same channel
    /// yields the same acknowledgement and never a second message.
    Send {
        channel_id: Uuid,
        nonce: String,
        text: String,
        /// Reply in the thread of this message (its `seq`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_seq: Option<u64>,
    },
    /// The user is typing in a channel.
    Typing { channel_id: Uuid },
    /// Follow the presence of these users (the members in view), replacing the previous list;
    /// an empty list stops following. At most `MAX_PRESENCE_SUBSCRIPTIONS` users.
    PresenceSubscribe { user_ids: Vec<Uuid> },
    /// The user's attention on this connection: idle after a while without input, active again on
    /// input. The user is idle when every connection of theirs is.
    Activity { state: Activity },
}

/// The `type` tags of [`ClientFrame`], used to tell an unknown type from a malformed frame.
pub const CLIENT_FRAME_TYPES: [&str; 9] = [
    "identify",
    "resume",
    "heartbeat",
    "subscribe",
    "unsubscribe",
    "send",
    "typing",
    "presence_subscribe",
    "activity",
];

/// Where a client stands in one channel: the last sequence number it has seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelPosition {
    pub channel_id: Uuid,
    pub last_seq: u64,
}

/// The authenticated user, as told in `ready`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub id: Uuid,
    pub display_name: String,
}

/// A committed message, as pushed to subscribers and replayed on resume.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageEvent {
    pub channel_id: Uuid,
    /// Position in the channel: 1, 2, 3, … with no gaps. Total order of the channel.
    pub seq: u64,
    pub id: Uuid,
    pub author_id: Uuid,
    pub text: String,
    #[serde(with = "crate::timestamp")]
    pub created_at: DateTime<Utc>,
    /// The nonce the author sent with the message, so the author's client can match its echo.
    pub nonce: String,
    /// What the event does; absent means `message` (a new message).
    #[serde(default, skip_serializing_if = "EventKind::is_message")]
    pub kind: EventKind,
    /// For `edit`, `delete`, `reaction_add`, `reaction_remove`: the `seq` of the message acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_seq: Option<u64>,
    /// For a thread reply (`message`): the `seq` of the thread's parent message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_seq: Option<u64>,
    /// For `reaction_add` and `reaction_remove`: the emoji (a short name such as `thumbsup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emoji: Option<String>,
    /// For `message` and `edit`: the users mentioned in `text` (as `<@user-uuid>`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<Uuid>,
    /// Sent by the server on the author's behalf, not typed by them: a focus mode auto-reply.
    /// Absent means `false`, so frames of clients and processes that predate it are unchanged.
    #[serde(default, skip_serializing_if = "is_false")]
    pub automatic: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// What a channel event does. Every kind takes its own `seq` in the channel's total order, so
/// edits, deletions and reactions reach every subscriber in channel order and are replayed on
/// resume like messages. For every kind but `message`, `author_id` is who acted, and `text` is the
/// new text (`edit`) or empty.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A new message (a thread reply when `parent_seq` is set).
    #[default]
    Message,
    /// The author changed the text of message `target_seq`.
    Edit,
    /// Message `target_seq` was deleted (soft: its history keeps a tombstone).
    Delete,
    /// `author_id` reacted to message `target_seq` with `emoji`.
    ReactionAdd,
    /// `author_id` took back their `emoji` reaction to message `target_seq`.
    ReactionRemove,
}

impl EventKind {
    pub fn is_message(&self) -> bool {
        matches!(self, EventKind::Message)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Message => "message",
            EventKind::Edit => "edit",
            EventKind::Delete => "delete",
            EventKind::ReactionAdd => "reaction_add",
            EventKind::ReactionRemove => "reaction_remove",
        }
    }

    pub fn parse(text: &str) -> Option<EventKind> {
        match text {
            "message" => Some(EventKind::Message),
            "edit" => Some(EventKind::Edit),
            "delete" => Some(EventKind::Delete),
            "reaction_add" => Some(EventKind::ReactionAdd),
            "reaction_remove" => Some(EventKind::ReactionRemove),
            _ => None,
        }
    }
}

impl MessageEvent {
    /// A new top-level message with no mentions (tests, benchmarks, load tools).
    pub fn new_message(
        channel_id: Uuid,
        seq: u64,
        id: Uuid,
        author_id: Uuid,
        text: impl Into<String>,
        created_at: DateTime<Utc>,
        nonce: impl Into<String>,
    ) -> Self {
        MessageEvent {
            channel_id,
            seq,
            id,
            author_id,
            text: text.into(),
            created_at,
            nonce: nonce.into(),
            kind: EventKind::Message,
            target_seq: None,
            parent_seq: None,
            emoji: None,
            mentions: Vec::new(),
            automatic: false,
        }
    }
}

/// A frame sent by the server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// First frame on every connection.
    Hello {
        protocol: u32,
        /// Send a frame (at least a `heartbeat`) at least this often.
        heartbeat_interval_ms: u64,
        max_frame_bytes: usize,
        max_message_chars: usize,
    },
    /// Answer to `identify`: the session and every channel it is subscribed to.
    Ready {
        session_id: Uuid,
        user: UserInfo,
        channels: Vec<ChannelPosition>,
        /// Unread and mention counts of every channel in `channels`, in the same order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        unreads: Vec<ChannelUnread>,
    },
    /// Answer to `resume`, sent after every replayed event (and `resync_required`) of the session.
    Resumed {
        session_id: Uuid,
        replayed: u64,
    },
    HeartbeatAck,
    /// Answer to `subscribe`, sent after any replayed events.
    Subscribed {
        channel_id: Uuid,
        last_seq: u64,
    },
    Unsubscribed {
        channel_id: Uuid,
    },
    /// A send was durably committed. Sent only after the message is on stable storage.
    Ack {
        nonce: String,
        channel_id: Uuid,
        message_id: Uuid,
        seq: u64,
        #[serde(with = "crate::timestamp")]
        created_at: DateTime<Utc>,
        /// True when this nonce had been committed before and this is the original's acknowledgement.
        duplicate: bool,
    },
    /// A message committed to a subscribed channel.
    Message(MessageEvent),
    /// Someone is typing; hide the indicator after `expires_in_ms` unless refreshed.
    Typing {
        channel_id: Uuid,
        user_id: Uuid,
        expires_in_ms: u64,
    },
    /// Answer to `presence_subscribe`: the present state of every followed user the caller shares
    /// a workspace with (the others are left out). Changes follow as `presence` frames.
    PresenceSubscribed {
        presences: Vec<PresenceInfo>,
    },
    /// A followed user's presence changed; replaces what the client had for `user_id`.
    Presence(PresenceInfo),
    /// Something the user should be told about (a mention, a DM, a reply in their thread, an
    /// invitation), sent once to every connection of the user.
    Notification(Notification),
    /// The user's read position in a channel changed (on this or another device): the
    /// channel's badge as it is now.
    ReadState(ChannelUnread),
    /// A focus session ended: what it held back, grouped by channel (sent once to every
    /// connection of the user; also `GET /v1/users/me/focus/digests`).
    FocusDigest(FocusDigest),
    /// For a bot: a member invoked one of its slash commands (docs/BOTS.md, "Slash commands").
    /// Sent to every connection of the bot whatever its intents.
    Command(crate::CommandInvocation),
    /// For the user who invoked a slash command, and no one else: the handler's private answer
    /// or the command's error. Sent to every connection of that user.
    Ephemeral(crate::Ephemeral),
    /// The events after `after_seq` are older than the node's replay buffer. Fetch
    /// `GET /v1/channels/{channel_id}/messages?after=<after_seq>` up to `last_seq`; live events after
    /// `last_seq` follow on this connection.
    ResyncRequired {
        channel_id: Uuid,
        after_seq: u64,
        last_seq: u64,
    },
    /// Something the client sent could not be done. The connection stays open.
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel_id: Option<Uuid>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
}

impl ServerFrame {
    /// An error frame with only a code and a message.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerFrame::Error {
            code,
            message: message.into(),
            nonce: None,
            channel_id: None,
            retry_after_ms: None,
        }
    }

    /// The JSON text of this frame.
    pub fn to_json(&self) -> String {
        // Serialising these types cannot fail: every field is a plain string, number or UUID.
        serde_json::to_string(self).expect("server frames always serialise")
    }

    /// Parse a server frame (for clients).
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

impl ClientFrame {
    /// The JSON text of this frame (for clients).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("client frames always serialise")
    }

    /// Parse a client frame, telling bad JSON, an unknown `type` and a malformed frame apart.
    pub fn parse(text: &str) -> Result<Self, DecodeError> {
        serde_json::from_str(text).map_err(|err| classify(text, err))
    }
}

/// Why a client frame could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("frame is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("unknown frame type `{0}`")]
    UnknownType(String),
    #[error("invalid frame: {0}")]
    InvalidFrame(String),
}

impl DecodeError {
    /// The error code to answer with.
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::InvalidJson(_) => ErrorCode::InvalidJson,
            DecodeError::UnknownType(_) => ErrorCode::UnknownType,
            DecodeError::InvalidFrame(_) => ErrorCode::InvalidFrame,
        }
    }
}

/// Only runs on the error path, so the second parse costs nothing in the common case.
fn classify(text: &str, err: serde_json::Error) -> DecodeError {
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(_) => return DecodeError::InvalidJson(err.to_string()),
    };
    match value.get("type").and_then(|t| t.as_str()) {
        None => DecodeError::InvalidFrame("missing string field `type`".into()),
        Some(kind) if !CLIENT_FRAME_TYPES.contains(&kind) => {
            DecodeError::UnknownType(kind.chars().take(64).collect())
        }
        Some(_) => DecodeError::InvalidFrame(err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn automatic_is_on_the_wire_only_when_true() {
        let typed = MessageEvent::new_message(
            Uuid::nil(),
            1,
            Uuid::nil(),
            Uuid::nil(),
            "hi",
            DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            "n",
        );
        let json = serde_json::to_value(&typed).unwrap();
        assert!(json.get("automatic").is_none(), "{json}");
        let reply = MessageEvent {
            automatic: true,
            ..typed.clone()
        };
        let json = serde_json::to_value(&reply).unwrap();
        assert_eq!(json["automatic"], true);
        assert_eq!(serde_json::from_value::<MessageEvent>(json).unwrap(), reply);
    }

    #[test]
    fn send_frame_has_documented_spelling() {
        let id = Uuid::nil();
        let frame = ClientFrame::Send {
            channel_id: id,
            nonce: "n1".into(),
            text: "hi".into(),
            parent_seq: None,
        };
        let json: serde_json::Value = serde_json::from_str(&frame.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "send", "channel_id": id, "nonce": "n1", "text": "hi"})
        );
        assert_eq!(ClientFrame::parse(&frame.to_json()).unwrap(), frame);
    }

    #[test]
    fn message_event_is_flattened_into_the_frame() {
        let event = MessageEvent::new_message(
            Uuid::nil(),
            7,
            Uuid::nil(),
            Uuid::nil(),
            "x",
            DateTime::from_timestamp(0, 0).unwrap(),
            "n",
        );
        let json: serde_json::Value =
            serde_json::from_str(&ServerFrame::Message(event.clone()).to_json()).unwrap();
        assert_eq!(json["type"], "message");
        assert_eq!(json["seq"], 7);
        assert_eq!(
            ServerFrame::parse(&json.to_string()).unwrap(),
            ServerFrame::Message(event)
        );
    }

    #[test]
    fn a_plain_message_omits_the_event_fields() {
        let event = MessageEvent::new_message(
            Uuid::nil(),
            1,
            Uuid::nil(),
            Uuid::nil(),
            "hi",
            DateTime::from_timestamp(0, 0).unwrap(),
            "n",
        );
        let json: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
        // Clients written before event kinds see exactly the frame they know.
        for absent in ["kind", "target_seq", "parent_seq", "emoji", "mentions"] {
            assert!(json.get(absent).is_none(), "{absent} should be omitted");
        }
        let old = r#"{"channel_id":"00000000-0000-0000-0000-000000000000","seq":1,
            "id":"00000000-0000-0000-0000-000000000000","author_id":"00000000-0000-0000-0000-000000000000",
            "text":"hi","created_at":"1970-01-01T00:00:00Z","nonce":"n"}"#;
        assert_eq!(serde_json::from_str::<MessageEvent>(old).unwrap(), event);
    }

    #[test]
    fn an_edit_event_names_its_kind_and_target() {
        let mentioned = Uuid::from_u128(9);
        let edit = MessageEvent {
            kind: EventKind::Edit,
            target_seq: Some(3),
            mentions: vec![mentioned],
            ..MessageEvent::new_message(
                Uuid::nil(),
                4,
                Uuid::nil(),
                Uuid::nil(),
                "fixed",
                DateTime::from_timestamp(0, 0).unwrap(),
                "n",
            )
        };
        let frame = ServerFrame::Message(edit.clone()).to_json();
        let json: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(json["type"], "message");
        assert_eq!(json["kind"], "edit");
        assert_eq!(json["target_seq"], 3);
        assert_eq!(json["mentions"], serde_json::json!([mentioned]));
        assert!(json.get("parent_seq").is_none() && json.get("emoji").is_none());
        assert_eq!(
            ServerFrame::parse(&frame).unwrap(),
            ServerFrame::Message(edit)
        );
    }

    #[test]
    fn reaction_kinds_are_snake_case() {
        for kind in [
            EventKind::Message,
            EventKind::Edit,
            EventKind::Delete,
            EventKind::ReactionAdd,
            EventKind::ReactionRemove,
        ] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("shout"), None);
    }

    #[test]
    fn a_send_may_name_a_thread_parent() {
        let frame = ClientFrame::parse(
            r#"{"type":"send","channel_id":"00000000-0000-0000-0000-000000000000","nonce":"n","text":"re","parent_seq":5}"#,
        )
        .unwrap();
        assert!(matches!(
            frame,
            ClientFrame::Send {
                parent_seq: Some(5),
                ..
            }
        ));
    }

    #[test]
    fn presence_frames_have_their_documented_spelling() {
        let frame = ClientFrame::parse(
            r#"{"type":"presence_subscribe","user_ids":["00000000-0000-0000-0000-000000000000"]}"#,
        )
        .unwrap();
        assert_eq!(
            frame,
            ClientFrame::PresenceSubscribe {
                user_ids: vec![Uuid::nil()]
            }
        );
        assert_eq!(
            ClientFrame::parse(r#"{"type":"activity","state":"idle"}"#).unwrap(),
            ClientFrame::Activity {
                state: Activity::Idle
            }
        );
        let presence = ServerFrame::Presence(PresenceInfo {
            user_id: Uuid::nil(),
            status: crate::PresenceStatus::Online,
            last_seen: None,
            custom_status: None,
            focus: None,
        });
        let json: serde_json::Value = serde_json::from_str(&presence.to_json()).unwrap();
        assert_eq!(json["type"], "presence");
        assert_eq!(json["status"], "online");
        assert_eq!(ServerFrame::parse(&presence.to_json()).unwrap(), presence);
    }

    #[test]
    fn decode_errors_are_told_apart() {
        assert!(matches!(
            ClientFrame::parse("{not json"),
            Err(DecodeError::InvalidJson(_))
        ));
        assert!(matches!(
            ClientFrame::parse(r#"{"type":"dance"}"#),
            Err(DecodeError::UnknownType(t)) if t == "dance"
        ));
        assert!(matches!(
            ClientFrame::parse(r#"{"type":"send","text":"no channel"}"#),
            Err(DecodeError::InvalidFrame(_))
        ));
        assert!(matches!(
            ClientFrame::parse(r#"[1,2]"#),
            Err(DecodeError::InvalidFrame(_))
        ));
        assert_eq!(
            ClientFrame::parse(r#"{"type":"heartbeat"}"#),
            Ok(ClientFrame::Heartbeat)
        );
    }
}
