//! Messages, their edits, reactions and threads, raw channel events, and search.

use chorus_core::messages::MessageState;
use chorus_protocol::MessageEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A message as it is now: its latest text, edits, reactions and thread summary.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    pub channel_id: Uuid,
    /// Position in the channel's event order — use it as the pagination cursor. Edits,
    /// deletions and reactions take sequence numbers of their own, so a history page may skip some.
    pub seq: u64,
    pub id: Uuid,
    pub author_id: Uuid,
    /// The current text (empty once deleted).
    pub text: String,
    #[serde(with = "chorus_protocol::timestamp")]
    pub created_at: DateTime<Utc>,
    pub nonce: String,
    /// Set on thread replies: the `seq` of the thread's parent.
    pub parent_seq: Option<u64>,
    /// Users mentioned (`<@uuid>`) in the current text.
    pub mentions: Vec<Uuid>,
    /// Sent on the author's behalf, not typed by them: a focus mode auto-reply.
    pub automatic: bool,
    /// When the text was last edited; the edits are at `…/messages/{seq}/edits`.
    #[serde(with = "chorus_protocol::timestamp::option")]
    pub edited_at: Option<DateTime<Utc>>,
    pub edit_count: usize,
    pub deleted: bool,
    pub deleted_by: Option<Uuid>,
    #[serde(with = "chorus_protocol::timestamp::option")]
    pub deleted_at: Option<DateTime<Utc>>,
    pub reactions: Vec<ReactionView>,
    pub reply_count: u64,
    #[serde(with = "chorus_protocol::timestamp::option")]
    pub last_reply_at: Option<DateTime<Utc>>,
    /// The newest event `seq` reflected in this view.
    pub updated_seq: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReactionView {
    pub emoji: String,
    pub count: usize,
    /// Who reacted, in order.
    pub users: Vec<Uuid>,
}

impl From<MessageState> for MessageView {
    fn from(state: MessageState) -> Self {
        let message = state.message;
        MessageView {
            channel_id: message.channel_id,
            seq: message.seq,
            id: message.id,
            author_id: message.author_id,
            text: state.text,
            created_at: message.created_at,
            nonce: message.nonce,
            parent_seq: message.parent_seq,
            mentions: state.mentions,
            automatic: message.automatic,
            edited_at: state.edits.last().map(|e| e.edited_at),
            edit_count: state.edits.len(),
            deleted: state.deleted.is_some(),
            deleted_by: state.deleted.map(|(by, _)| by),
            deleted_at: state.deleted.map(|(_, at)| at),
            reactions: state
                .reactions
                .into_iter()
                .map(|r| ReactionView {
                    emoji: r.emoji,
                    count: r.count,
                    users: r.users,
                })
                .collect(),
            reply_count: state.reply_count,
            last_reply_at: state.last_reply_at,
            updated_seq: state.updated_seq,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryPage {
    /// In ascending `seq` order.
    pub messages: Vec<MessageView>,
    /// More messages exist beyond this page in the direction asked (older for `before`, newer for
    /// `after`; either side for `around`).
    pub has_more: bool,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// 1 to 200; default 50.
    pub limit: Option<usize>,
    /// Messages with `seq` below this (newest first page when no cursor is given).
    pub before: Option<u64>,
    /// Messages with `seq` above this.
    pub after: Option<u64>,
    /// The message with this `seq` and the messages around it (half the page on each side).
    pub around: Option<u64>,
}

/// One edit of a message.
#[derive(Debug, Serialize, ToSchema)]
pub struct EditView {
    /// The edit's own event `seq`.
    pub seq: u64,
    pub text: String,
    #[serde(with = "chorus_protocol::timestamp")]
    pub edited_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EditHistory {
    pub original_text: String,
    /// Oldest first; the last is the current text.
    pub edits: Vec<EditView>,
}

/// A channel event with the fields of the WebSocket `message` frame (without `type`). Here every
/// field is present (`kind` `message`, `null`, `[]`); the socket leaves out those with default values.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub channel_id: Uuid,
    pub seq: u64,
    pub id: Uuid,
    /// The author of a message; who acted for other kinds.
    pub author_id: Uuid,
    pub text: String,
    #[serde(with = "chorus_protocol::timestamp")]
    pub created_at: DateTime<Utc>,
    pub nonce: String,
    /// `message`, `edit`, `delete`, `reaction_add` or `reaction_remove`.
    pub kind: String,
    pub target_seq: Option<u64>,
    pub parent_seq: Option<u64>,
    pub emoji: Option<String>,
    pub mentions: Vec<Uuid>,
    /// A focus mode auto-reply, sent on the author's behalf.
    pub automatic: bool,
}

impl From<MessageEvent> for EventView {
    fn from(e: MessageEvent) -> Self {
        EventView {
            channel_id: e.channel_id,
            seq: e.seq,
            id: e.id,
            author_id: e.author_id,
            text: e.text,
            created_at: e.created_at,
            nonce: e.nonce,
            kind: e.kind.as_str().to_string(),
            target_seq: e.target_seq,
            parent_seq: e.parent_seq,
            emoji: e.emoji,
            mentions: e.mentions,
            automatic: e.automatic,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    /// Every event after the cursor, in `seq` order.
    pub events: Vec<EventView>,
    pub has_more: bool,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// Events with `seq` above this (required).
    pub after: u64,
    /// 1 to 200; default 200.
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RepliesParams {
    /// Replies with `seq` above this (oldest first).
    pub after: Option<u64>,
    /// 1 to 200; default 50.
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ThreadPage {
    pub parent: MessageView,
    /// Oldest first.
    pub replies: Vec<MessageView>,
    pub has_more: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PostMessageRequest {
    /// 1 to 4,000 characters. `<@user-uuid>` mentions a user.
    pub text: String,
    /// Chosen by the client (1 to 64 characters); the same nonce again returns the original
    /// message instead of posting twice. Generated when absent.
    pub nonce: Option<String>,
    /// Reply in the thread of this message.
    pub parent_seq: Option<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct EditMessageRequest {
    /// 1 to 4,000 characters.
    pub text: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Case-insensitive text to find (2 to 200 characters); optional if another filter is given.
    pub q: Option<String>,
    /// Only messages by this user.
    pub author: Option<Uuid>,
    /// Only this channel.
    pub channel: Option<Uuid>,
    /// Created at or after (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Created before (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// 1 to 100; default 20.
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    /// Newest first, only from channels the caller may read.
    pub messages: Vec<MessageView>,
}
