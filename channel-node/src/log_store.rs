//! The Raft log and vote of one group, as tables in a node's shared log file (`log_file.rs`).
//! Every append and vote is fsynced before it is reported done, which is what makes an
//! acknowledged message durable; the groups of a node share those fsyncs.
//!
//! redb is synchronous; writes run on the log file's writer thread and reads on the caller's, so
//! an fsync never stalls a runtime worker thread.

use std::fmt::Debug;
use std::marker::PhantomData;
use std::ops::RangeBounds;
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{Entry, LogId, RaftTypeConfig, StorageError, StorageIOError, Vote};
use redb::{ReadableTable, TableDefinition};

use crate::log_file::LogFile;
use crate::raft_types::NodeId;

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";

/// The names of a group's two tables. The unnamed group keeps the names the embedded node's log
/// had when it was a file of its own, so its existing data directories open unchanged.
#[derive(Clone)]
struct Tables {
    log: Arc<str>,
    meta: Arc<str>,
}

impl Tables {
    fn of(group: &str) -> Self {
        if group.is_empty() {
            Tables {
                log: "raft_log".into(),
                meta: "raft_meta".into(),
            }
        } else {
            Tables {
                log: format!("raft_log/{group}").into(),
                meta: format!("raft_meta/{group}").into(),
            }
        }
    }

    fn log(&self) -> TableDefinition<'_, u64, &'static [u8]> {
        TableDefinition::new(&self.log)
    }

    fn meta(&self) -> TableDefinition<'_, &'static str, &'static [u8]> {
        TableDefinition::new(&self.meta)
    }
}

/// The log of one Raft group (a shard's, or the control group's: `C` is its type config).
pub struct LogStore<C> {
    file: LogFile,
    tables: Tables,
    config: PhantomData<fn() -> C>,
}

impl<C> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        LogStore {
            file: self.file.clone(),
            tables: self.tables.clone(),
            config: PhantomData,
        }
    }
}

fn read_err(err: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::read_logs(&err).into()
}

fn write_err(err: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_logs(&err).into()
}

fn write_failed(message: String) -> StorageError<NodeId> {
    write_err(std::io::Error::other(message))
}

impl<C> LogStore<C>
where
    C: RaftTypeConfig<NodeId = NodeId, Entry = Entry<C>>,
{
    /// The log of `group` in `file` (created on first use); `""` names the embedded node's group.
    pub async fn open(file: &LogFile, group: &str) -> Result<Self, StorageError<NodeId>> {
        let store = LogStore {
            file: file.clone(),
            tables: Tables::of(group),
            config: PhantomData,
        };
        store
            .write(true, |txn, tables| {
                txn.open_table(tables.log()).map_err(|e| e.to_string())?;
                txn.open_table(tables.meta()).map_err(|e| e.to_string())?;
                Ok(())
            })
            .await?;
        Ok(store)
    }

    /// Deletes the log of `group` from `file` (its vote included): the replica left the group
    /// for good, and a replica placed here again later must start empty, as a new learner.
    pub async fn destroy(file: &LogFile, group: &str) -> Result<(), String> {
        let tables = Tables::of(group);
        file.write(true, move |txn| {
            txn.delete_table(tables.log()).map_err(|e| e.to_string())?;
            txn.delete_table(tables.meta()).map_err(|e| e.to_string())?;
            Ok(())
        })
        .await
    }

    fn read_meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, StorageError<NodeId>> {
        let txn = self.file.db().begin_read().map_err(read_err)?;
        let table = txn.open_table(self.tables.meta()).map_err(read_err)?;
        match table.get(key).map_err(read_err)? {
            None => Ok(None),
            Some(value) => serde_json::from_slice(value.value())
                .map(Some)
                .map_err(read_err),
        }
    }

    /// Applies `f` to this group's tables in the log file's next round.
    async fn write<F>(&self, durable: bool, f: F) -> Result<(), StorageError<NodeId>>
    where
        F: FnOnce(&redb::WriteTransaction, &Tables) -> Result<(), String> + Send + 'static,
    {
        let tables = self.tables.clone();
        self.file
            .write(durable, move |txn| f(txn, &tables))
            .await
            .map_err(write_failed)
    }

    async fn write_meta<T: serde::Serialize>(
        &self,
        key: &'static str,
        value: &T,
        durable: bool,
    ) -> Result<(), StorageError<NodeId>> {
        let bytes = serde_json::to_vec(value).map_err(write_err)?;
        self.write(durable, move |txn, tables| {
            let mut table = txn.open_table(tables.meta()).map_err(|e| e.to_string())?;
            table
                .insert(key, bytes.as_slice())
                .map_err(|e| e.to_string())?;
            Ok(())
        })
        .await
    }
}

impl<C> RaftLogReader<C> for LogStore<C>
where
    C: RaftTypeConfig<NodeId = NodeId, Entry = Entry<C>>,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<C>>, StorageError<NodeId>> {
        let txn = self.file.db().begin_read().map_err(read_err)?;
        let table = txn.open_table(self.tables.log()).map_err(read_err)?;
        table
            .range(range)
            .map_err(read_err)?
            .map(|item| {
                let (_, value) = item.map_err(read_err)?;
                serde_json::from_slice(value.value()).map_err(read_err)
            })
            .collect()
    }
}

impl<C> RaftLogStorage<C> for LogStore<C>
where
    C: RaftTypeConfig<NodeId = NodeId, Entry = Entry<C>>,
{
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<NodeId>> {
        let last_purged_log_id: Option<LogId<NodeId>> = self.read_meta(LAST_PURGED)?;
        let last = {
            let txn = self.file.db().begin_read().map_err(read_err)?;
            let table = txn.open_table(self.tables.log()).map_err(read_err)?;
            match table.last().map_err(read_err)? {
                None => None,
                Some((_, value)) => {
                    let entry: Entry<C> =
                        serde_json::from_slice(value.value()).map_err(read_err)?;
                    Some(entry.log_id)
                }
            }
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last.or(last_purged_log_id),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.write_meta(VOTE, vote, true).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.read_meta(VOTE)
    }

    /// The committed index only saves work on restart (entries are re-applied from it without
    /// waiting for an election), so it rides along with the next fsynced append.
    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        self.write_meta(COMMITTED, &committed, false).await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self
            .read_meta::<Option<LogId<NodeId>>>(COMMITTED)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<C>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<C>> + Send,
        I::IntoIter: Send,
    {
        let encoded = entries
            .into_iter()
            .map(|entry| serde_json::to_vec(&entry).map(|bytes| (entry.log_id.index, bytes)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(write_err)?;
        let result = self
            .write(true, move |txn, tables| {
                let mut table = txn.open_table(tables.log()).map_err(|e| e.to_string())?;
                for (index, bytes) in &encoded {
                    table
                        .insert(*index, bytes.as_slice())
                        .map_err(|e| e.to_string())?;
                }
                Ok(())
            })
            .await;
        match &result {
            Ok(()) => callback.log_io_completed(Ok(())),
            Err(err) => callback.log_io_completed(Err(std::io::Error::other(err.to_string()))),
        }
        result
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.write(true, move |txn, tables| {
            let mut table = txn.open_table(tables.log()).map_err(|e| e.to_string())?;
            table
                .retain_in(log_id.index.., |_, _| false)
                .map_err(|e| e.to_string())?;
            Ok(())
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let bytes = serde_json::to_vec(&log_id).map_err(write_err)?;
        self.write(true, move |txn, tables| {
            let mut meta = txn.open_table(tables.meta()).map_err(|e| e.to_string())?;
            meta.insert(LAST_PURGED, bytes.as_slice())
                .map_err(|e| e.to_string())?;
            let mut table = txn.open_table(tables.log()).map_err(|e| e.to_string())?;
            table
                .retain_in(..=log_id.index, |_, _| false)
                .map_err(|e| e.to_string())?;
            Ok(())
        })
        .await
    }
}
