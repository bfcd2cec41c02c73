//! Notifications on the wire: what a user is told about, wherever they are looking — mentions,
//! direct messages, replies in their threads, invitations — and the per-channel counts behind
//! a client's badges.
//!
//! A [`Notification`] carries what a client needs to show a badge and open the place: the
//! workspace, the channel and the `seq` (and the thread's `parent_seq`), who did it and a short
//! preview. Its `id` is derived from (user, channel, seq), so a client can drop a repeat.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why the user is notified. When several reasons apply to one message, the first in this order
/// wins: `dm`, `mention`, `thread_reply`, `channel_mention`, `here_mention`, `message`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// A message in a direct-message channel the user is in.
    Dm,
    /// The message mentions the user (`<@user-uuid>`).
    Mention,
    /// A reply in the thread of one of the user's messages.
    ThreadReply,
    /// `@channel`: every member of the channel.
    ChannelMention,
    /// `@here`: the members online (not idle) when it was sent.
    HereMention,
    /// Any message, in a channel whose preference is `all`.
    Message,
    /// The user was added to a workspace.
    Invitation,
}

impl NotificationKind {
    /// Whether this kind counts as a mention for a channel's mention badge and for the
    /// `mentions` preference.
    pub fn is_mention(self) -> bool {
        matches!(
            self,
            NotificationKind::Mention
                | NotificationKind::ChannelMention
                | NotificationKind::HereMention
                | NotificationKind::ThreadReply
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Dm => "dm",
            NotificationKind::Mention => "mention",
            NotificationKind::ThreadReply => "thread_reply",
            NotificationKind::ChannelMention => "channel_mention",
            NotificationKind::HereMention => "here_mention",
            NotificationKind::Message => "message",
            NotificationKind::Invitation => "invitation",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            NotificationKind::Dm,
            NotificationKind::Mention,
            NotificationKind::ThreadReply,
            NotificationKind::ChannelMention,
            NotificationKind::HereMention,
            NotificationKind::Message,
            NotificationKind::Invitation,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }
}

/// One notification for one user (`notification` frame, and `GET /v1/notifications`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The same for every delivery of this notification (derived from user, channel and seq).
    pub id: Uuid,
    pub kind: NotificationKind,
    pub workspace_id: Uuid,
    /// The channel to open (absent for an invitation to a workspace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<Uuid>,
    /// The message's position in its channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The thread to open, for a reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_seq: Option<u64>,
    /// Who wrote the message, or who added the user.
    pub actor_id: Uuid,
    /// The start of the message text (at most [`PREVIEW_CHARS`] characters), or the workspace's
    /// name for an invitation.
    pub preview: String,
    #[serde(with = "crate::timestamp")]
    pub created_at: DateTime<Utc>,
}

/// Characters of message text a notification carries.
pub const PREVIEW_CHARS: usize = 140;

/// The first [`PREVIEW_CHARS`] characters of `text`.
pub fn preview(text: &str) -> String {
    text.chars().take(PREVIEW_CHARS).collect()
}

/// A channel's badge for one user: in `ready`, and as a `read_state` frame whenever the user's
/// read position changes (on any of their devices).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelUnread {
    pub channel_id: Uuid,
    /// The user's read position (the `seq` of the last message they read).
    pub last_read_seq: u64,
    /// Messages after `last_read_seq` (capped at [`UNREAD_CAP`]).
    pub unread_count: u64,
    /// Notifications that count as mentions after `last_read_seq`.
    pub mention_count: u64,
}

/// Unread counts stop here (a client shows "999+"), as over REST.
pub const UNREAD_CAP: u64 = 1_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_snake_case_and_parse_back() {
        for kind in [
            NotificationKind::Dm,
            NotificationKind::Mention,
            NotificationKind::ThreadReply,
            NotificationKind::ChannelMention,
            NotificationKind::HereMention,
            NotificationKind::Message,
            NotificationKind::Invitation,
        ] {
            assert_eq!(
                serde_json::to_string(&kind).unwrap(),
                format!("\"{}\"", kind.as_str())
            );
            assert_eq!(NotificationKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(NotificationKind::parse("shout"), None);
    }

    #[test]
    fn preview_counts_characters_not_bytes() {
        let long = "é".repeat(PREVIEW_CHARS + 10);
        assert_eq!(preview(&long).chars().count(), PREVIEW_CHARS);
        assert_eq!(preview("hi"), "hi");
    }
}
