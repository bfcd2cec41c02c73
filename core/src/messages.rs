//! The message store: every committed message, for history. Written only by the channel service.

pub mod conformance;
mod postgres_store;
mod redb_store;
mod scylla_store;

use async_trait::async_trait;
use chorus_protocol::MessageEvent;
use uuid::Uuid;

use crate::StoreError;

pub use postgres_store::PostgresMessageStore;
pub use redb_store::RedbMessageStore;
pub use scylla_store::{ScyllaMessageStore, ScyllaUri, parse_uri as parse_scylla_uri};

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
}
