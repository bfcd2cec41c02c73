//! The message store: every committed message, for history. Written only by the channel service.

pub mod conformance;
mod instrumented;
mod materialize;
mod postgres_store;
mod redb_space;
mod redb_store;
mod scylla_reads;
mod scylla_rows;
mod scylla_schema;
mod scylla_store;
mod search_scan;
mod stored_event;

use async_trait::async_trait;
use chorus_protocol::MessageEvent;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::StoreError;

pub use instrumented::InstrumentedMessageStore;
pub use materialize::{Edit, MessageState, Reaction, materialize};
pub use postgres_store::PostgresMessageStore;
pub use redb_space::RedbSpace;
pub use redb_store::RedbMessageStore;
pub use scylla_store::{ScyllaMessageStore, ScyllaUri, parse_uri as parse_scylla_uri};

/// What to search for (RF-08.3). Every filter is optional but `channels`, which the caller has
/// already narrowed to the channels the searcher may read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchQuery {
    pub channels: Vec<Uuid>,
    /// Case-insensitive substring of the text.
    pub text: Option<String>,
    pub author: Option<Uuid>,
    /// Created at or after.
    pub from: Option<DateTime<Utc>>,
    /// Created strictly before.
    pub to: Option<DateTime<Utc>>,
    pub limit: usize,
}

/// Which page of a channel's history to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryQuery {
    /// The newest `limit` messages with `seq < before` (or the newest of all when `None`), returned
    /// newest first.
    Before { before: Option<u64>, limit: usize },
    /// The oldest `limit` messages with `seq > after`, returned oldest first.
    After { after: u64, limit: usize },
}

/// Durable history of every channel, keyed by (channel, seq).
#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    /// Stores messages durably. Idempotent: writing a (channel, seq) that exists leaves one copy.
    async fn append(&self, messages: &[MessageEvent]) -> Result<(), StoreError>;

    /// Stores messages that the caller can write again after a crash (the channel service, whose
    /// Raft log holds them): a store may defer their durability until [`MessageStore::sync`].
    async fn append_replayable(&self, messages: &[MessageEvent]) -> Result<(), StoreError> {
        self.append(messages).await
    }

    /// Makes every earlier `append_replayable` durable.
    async fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Reads one page of a channel's history.
    async fn page(
        &self,
        channel: Uuid,
        query: HistoryQuery,
    ) -> Result<Vec<MessageEvent>, StoreError>;

    /// Like [`MessageStore::page`] but counting and returning only events of kind `message`
    /// (top-level messages and thread replies). `before`/`after` are channel seqs like any other:
    /// the events of other kinds in between are walked past, not counted.
    async fn message_page(
        &self,
        channel: Uuid,
        query: HistoryQuery,
    ) -> Result<Vec<MessageEvent>, StoreError>;

    /// One event by its sequence number.
    async fn event(&self, channel: Uuid, seq: u64) -> Result<Option<MessageEvent>, StoreError>;

    /// Every event of `channel` that acts on or replies to one of `seqs` — whose `target_seq` or
    /// `parent_seq` is in `seqs` — in seq order. What [`materialize`] needs to show those
    /// messages as they are now.
    async fn related(&self, channel: Uuid, seqs: &[u64]) -> Result<Vec<MessageEvent>, StoreError>;

    /// Candidates for a search: `message` events in `query.channels` matching the author and
    /// date filters whose own text, or the text of one of their `edit` events, contains
    /// `query.text` (case-insensitive), newest first, at most `query.limit`. The caller
    /// materialises them and drops those whose current text no longer matches or that are
    /// deleted. Newest first means by `created_at`, then `seq`, then channel id, all descending,
    /// so every store breaks ties alike. `StoreError::Unsupported` from a store that cannot search.
    async fn search(&self, query: &SearchQuery) -> Result<Vec<MessageEvent>, StoreError>;

    /// How many `message` events of `channel` have `seq > after`, counting at most `cap` (a
    /// store may stop reading there: "99+" needs no exact count).
    async fn count_messages_after(
        &self,
        channel: Uuid,
        after: u64,
        cap: u64,
    ) -> Result<u64, StoreError>;

    /// [`MessageStore::count_messages_after`] for several `(channel, after)` pairs, in order:
    /// the unread counts of a connection's channels at identify. A store should answer in one
    /// round trip (this default asks channel by channel).
    async fn count_messages_after_each(
        &self,
        positions: &[(Uuid, u64)],
        cap: u64,
    ) -> Result<Vec<u64>, StoreError> {
        let mut counts = Vec::with_capacity(positions.len());
        for &(channel, after) in positions {
            counts.push(self.count_messages_after(channel, after, cap).await?);
        }
        Ok(counts)
    }

    /// Retention (issue 16): deletes every event of `channel` created strictly before `cutoff`,
    /// and returns how many it deleted. A channel's `created_at` never decreases with its `seq`
    /// (the state machine clamps it), so what is deleted is always a prefix of the channel's
    /// history: a store may walk up from the oldest event and stop at the first it keeps.
    /// Deleting again deletes nothing more. `StoreError::Unsupported` from a store that cannot.
    async fn delete_before(&self, channel: Uuid, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let _ = (channel, cutoff);
        Err(StoreError::Unsupported(
            "this message store cannot delete history".into(),
        ))
    }
}
