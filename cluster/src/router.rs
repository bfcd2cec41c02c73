//! The channel router: submit messages to a channel's sequencer and read its recent events.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use chorus_protocol::{EventKind, MessageEvent};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A message to sequence. The caller has already checked that the author may post.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishRequest {
    pub channel_id: Uuid,
    /// The author of a message, or who acts for the other kinds.
    pub author_id: Uuid,
    pub nonce: String,
    pub text: String,
    /// What to sequence: a message, or an edit, deletion or reaction of `target_seq`.
    pub kind: EventKind,
    /// The message acted on (every kind but `Message`). The caller has checked that it is a
    /// message of this channel and that the author may act on it.
    pub target_seq: Option<u64>,
    /// A thread reply's parent message.
    pub parent_seq: Option<u64>,
    pub emoji: Option<String>,
    pub mentions: Vec<Uuid>,
    /// Sent by the server on the author's behalf (a focus mode auto-reply): the event says so.
    /// Defaults so that requests of processes that predate it still decode.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub automatic: bool,
}

impl PublishRequest {
    /// A new top-level message.
    pub fn message(channel_id: Uuid, author_id: Uuid, nonce: String, text: String) -> Self {
        PublishRequest {
            channel_id,
            author_id,
            nonce,
            text,
            kind: EventKind::Message,
            target_seq: None,
            parent_seq: None,
            emoji: None,
            mentions: Vec::new(),
            automatic: false,
        }
    }
}

/// The acknowledgement of a durably committed message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishAck {
    pub message_id: Uuid,
    pub seq: u64,
    pub created_at: DateTime<Utc>,
    /// Nothing new was sequenced: the (author, nonce) pair had been committed before (this is the
    /// original's acknowledgement), or the event would have changed nothing — a reaction already
    /// added or already taken back (this acknowledges the event that made it so).
    pub duplicate: bool,
}

/// What a channel can tell about the events after a position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Replay {
    /// Every event after the position, in order (empty when nothing was missed).
    Events(Vec<Arc<MessageEvent>>),
    /// Some events after the position have left the channel's replay buffer; read them from
    /// history. `last_seq` is the channel's newest sequence number.
    TooOld { last_seq: u64 },
}

/// How long a client refused with [`RouteError::Overloaded`] should wait before it retries: a
/// full queue drains in a fraction of a second when the overload was a burst, and a client that
/// retries at once only adds to a lasting one.
pub const OVERLOADED_RETRY_AFTER: std::time::Duration = std::time::Duration::from_millis(250);

/// Why the router could not do what was asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum RouteError {
    /// The channel's shard takes no more submits for now (its queue is full); retry after
    /// [`OVERLOADED_RETRY_AFTER`] with the same nonce.
    #[error("channel service overloaded")]
    Overloaded,
    /// The channel's owner cannot be reached or is not the leader; retry with the same nonce.
    #[error("channel service unavailable: {0}")]
    Unavailable(String),
    /// The node asked does not lead the channel's shard; `leader_hint` is the leader it knows of.
    /// A router follows the hint and retries with the same nonce; callers treat it as
    /// `Unavailable`.
    #[error("not the leader of the channel's shard (leader hint: {leader_hint:?})")]
    NotLeader { leader_hint: Option<u64> },
    /// The request names a target the channel does not have (a `target_seq` or `parent_seq`
    /// beyond the channel's newest event), or a thread parent that is not a live top-level
    /// message; the text says which.
    #[error("rejected: {0}")]
    Rejected(String),
    /// The channel is archived: it takes no events until it is unarchived.
    #[error("the channel is archived")]
    Archived,
    /// An unexpected failure; the text is for logs only.
    #[error("channel service error: {0}")]
    Internal(String),
}

/// A submitted message waiting for its commit. Resolves once the message is durable (or failed).
pub struct PublishTicket {
    commit: Pin<Box<dyn Future<Output = Result<PublishAck, RouteError>> + Send>>,
}

impl PublishTicket {
    /// A ticket that resolves when `commit` does.
    pub fn new(
        commit: impl Future<Output = Result<PublishAck, RouteError>> + Send + 'static,
    ) -> Self {
        PublishTicket {
            commit: Box::pin(commit),
        }
    }
}

impl std::fmt::Debug for PublishTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PublishTicket")
    }
}

impl Future for PublishTicket {
    type Output = Result<PublishAck, RouteError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.commit.as_mut().poll(cx)
    }
}

/// Access to channel sequencers.
#[async_trait]
pub trait ChannelRouter: Send + Sync + 'static {
    /// Submits a message. Two submits awaited one after the other by the same caller are
    /// sequenced in that order, even though their tickets are awaited later (pipelining).
    async fn submit(&self, request: PublishRequest) -> Result<PublishTicket, RouteError>;

    /// The events of `channel` after `after_seq`, from the channel's replay buffer.
    async fn replay(&self, channel: Uuid, after_seq: u64) -> Result<Replay, RouteError>;

    /// The newest sequence number of each channel (0 for a channel with no message yet).
    async fn last_seqs(&self, channels: &[Uuid]) -> Result<Vec<u64>, RouteError>;

    /// Archives (or unarchives) a channel where its events are sequenced. Once this returns,
    /// every event submitted to the channel is refused with [`RouteError::Archived`] (or
    /// accepted again), whatever any gateway believes yet.
    async fn set_archived(&self, channel: Uuid, archived: bool) -> Result<(), RouteError>;
}
