//! The embedded message store: one redb table keyed by (channel id, seq).
//!
//! The channel service writes through `append_replayable`: a commit without an fsync
//! ([`Durability::None`]), made durable by `sync` before any snapshot lets the Raft log forget the
//! entries. If the node dies first, the entries are still in the Raft log and are applied (and
//! written) again on restart.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chorus_protocol::MessageEvent;
use redb::{Database, Durability, TableDefinition};
use uuid::Uuid;

use super::{HistoryQuery, MessageStore};
use crate::StoreError;

/// One item of a range over the messages table.
type RangeItem<'a> = Result<
    (
        redb::AccessGuard<'a, ([u8; 16], u64)>,
        redb::AccessGuard<'a, &'static [u8]>,
    ),
    redb::StorageError,
>;

const MESSAGES: TableDefinition<([u8; 16], u64), &[u8]> = TableDefinition::new("messages");

/// History of every channel in a redb file.
#[derive(Clone)]
pub struct RedbMessageStore {
    db: Arc<Database>,
}

impl RedbMessageStore {
    /// Opens (or creates) a store in its own file.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(StoreError::backend)?;
        Self::from_database(Arc::new(db))
    }

    /// A store inside a database shared with other tables.
    pub fn from_database(db: Arc<Database>) -> Result<Self, StoreError> {
        let txn = db.begin_write().map_err(StoreError::backend)?;
        txn.open_table(MESSAGES).map_err(StoreError::backend)?;
        txn.commit().map_err(StoreError::backend)?;
        Ok(RedbMessageStore { db })
    }

    /// Writes messages in one transaction with the given durability (blocking).
    pub fn write_batch<'a>(
        &self,
        messages: impl IntoIterator<Item = &'a MessageEvent>,
        durability: Durability,
    ) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().map_err(StoreError::backend)?;
        txn.set_durability(durability);
        {
            let mut table = txn.open_table(MESSAGES).map_err(StoreError::backend)?;
            for message in messages {
                let value = serde_json::to_vec(message).map_err(StoreError::backend)?;
                table
                    .insert(
                        (*message.channel_id.as_bytes(), message.seq),
                        value.as_slice(),
                    )
                    .map_err(StoreError::backend)?;
            }
        }
        txn.commit().map_err(StoreError::backend)
    }

    /// Makes every earlier non-durable write durable (blocking, one fsync).
    pub fn sync(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(StoreError::backend)?;
        txn.commit().map_err(StoreError::backend)
    }

    /// Reads one page (blocking; reads are short and need no fsync).
    pub fn read_page(
        &self,
        channel: Uuid,
        query: HistoryQuery,
    ) -> Result<Vec<MessageEvent>, StoreError> {
        let txn = self.db.begin_read().map_err(StoreError::backend)?;
        let table = txn.open_table(MESSAGES).map_err(StoreError::backend)?;
        let key = *channel.as_bytes();
        let decode = |entry: RangeItem<'_>| {
            let (_, value) = entry.map_err(StoreError::backend)?;
            serde_json::from_slice::<MessageEvent>(value.value()).map_err(StoreError::backend)
        };
        match query {
            HistoryQuery::Before { before, limit } => {
                let end = before.unwrap_or(u64::MAX);
                table
                    .range((key, 0)..(key, end))
                    .map_err(StoreError::backend)?
                    .rev()
                    .take(limit)
                    .map(decode)
                    .collect()
            }
            HistoryQuery::After { after, limit } => {
                let Some(start) = after.checked_add(1) else {
                    return Ok(Vec::new());
                };
                table
                    .range((key, start)..=(key, u64::MAX))
                    .map_err(StoreError::backend)?
                    .take(limit)
                    .map(decode)
                    .collect()
            }
        }
    }
}

#[async_trait]
impl MessageStore for RedbMessageStore {
    async fn append(&self, messages: &[MessageEvent]) -> Result<(), StoreError> {
        let store = self.clone();
        let messages = messages.to_vec();
        tokio::task::spawn_blocking(move || store.write_batch(&messages, Durability::Immediate))
            .await
            .map_err(StoreError::backend)?
    }

    /// Without an fsync of its own: it rides on the next durable commit (see the module docs).
    async fn append_replayable(&self, messages: &[MessageEvent]) -> Result<(), StoreError> {
        let store = self.clone();
        let messages = messages.to_vec();
        tokio::task::spawn_blocking(move || store.write_batch(&messages, Durability::None))
            .await
            .map_err(StoreError::backend)?
    }

    async fn sync(&self) -> Result<(), StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || RedbMessageStore::sync(&store))
            .await
            .map_err(StoreError::backend)?
    }

    async fn page(
        &self,
        channel: Uuid,
        query: HistoryQuery,
    ) -> Result<Vec<MessageEvent>, StoreError> {
        self.read_page(channel, query)
    }
}
