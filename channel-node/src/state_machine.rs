//! openraft's view of a shard's channel state: applies committed entries to [`ChannelsState`] and
//! takes snapshots. Applying has no side effect outside the state: the events an entry sequenced
//! join the replicated pending history (`pending_history.rs`), and the shard's leader writes them
//! to the message store and publishes them (`history_writer.rs`). Every replica of a group runs
//! `apply`; if it wrote or published, a group of three would do everything three times.
//!
//! Durability: the Raft log is fsynced before anything is acknowledged. A snapshot (which lets the
//! log be purged) carries the pending history, so it never covers an event that might be missing
//! from the message store, whatever the store's own durability. After a restart the pending
//! events are written again; message-store writes are idempotent by (channel, seq).

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chorus_core::{HistoryQuery, MessageStore};
use chorus_protocol::MessageEvent;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, RaftSnapshotBuilder, SnapshotMeta, StorageIOError};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::pending_history::{PendingEvent, PendingHistory};
use crate::raft_types::{Entry, LogId, NodeId, StorageError, StoredMembership, TypeConfig};
use crate::state::{BufferedReplay, ChannelsState, Command, Outcome, StateLimits, StateSnapshot};

/// What a snapshot file holds.
#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    last_applied: Option<LogId>,
    membership: StoredMembership,
    snapshot_id: String,
    state: StateSnapshot,
    /// Events not yet confirmed in the message store (absent in snapshots written before the
    /// pending history existed: those were taken only after the store was synced).
    #[serde(default)]
    pending: Vec<PendingEvent>,
}

/// The applied state and the log position it reflects, always changed together.
struct Applied {
    state: ChannelsState,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    pending: PendingHistory,
}

struct Shared {
    applied: RwLock<Applied>,
    /// The index of the last applied entry, for the history writer to wait on.
    applied_index: watch::Sender<u64>,
    /// Where replay buffers are refilled from after a restore.
    messages: Arc<dyn MessageStore>,
    snapshot_path: PathBuf,
}

/// The state machine; clones share the same state.
#[derive(Clone)]
pub struct StateMachineStore {
    shared: Arc<Shared>,
}

fn sm_read_err(err: impl std::fmt::Display) -> StorageError {
    StorageIOError::read_state_machine(&std::io::Error::other(err.to_string())).into()
}

fn sm_write_err(err: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_state_machine(&std::io::Error::other(err.to_string())).into()
}

impl StateMachineStore {
    /// Loads the latest snapshot from `dir` (if any) and refills replay buffers from `messages`.
    pub async fn open(
        dir: &Path,
        limits: StateLimits,
        messages: Arc<dyn MessageStore>,
    ) -> Result<Self, StorageError> {
        let snapshot_path = dir.join("state-snapshot.json");
        let applied = match std::fs::read(&snapshot_path) {
            Ok(bytes) => {
                let file: SnapshotFile = serde_json::from_slice(&bytes).map_err(sm_read_err)?;
                restore(limits, file, messages.as_ref()).await?
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Applied {
                state: ChannelsState::new(limits),
                last_applied: None,
                membership: StoredMembership::default(),
                pending: PendingHistory::default(),
            },
            Err(err) => return Err(sm_read_err(err)),
        };
        let (applied_index, _) = watch::channel(applied.last_applied.map_or(0, |l| l.index));
        Ok(StateMachineStore {
            shared: Arc::new(Shared {
                applied: RwLock::new(applied),
                applied_index,
                messages,
                snapshot_path,
            }),
        })
    }

    /// Up to `max` unconfirmed events sequenced after log index `after`, and the index of the last
    /// applied entry when they were read: once they are written, history is complete through it.
    pub fn pending_after(&self, after: Option<u64>, max: usize) -> (Vec<PendingEvent>, u64) {
        let applied = self.shared.applied.read();
        (
            applied.pending.after(after, max),
            applied.last_applied.map_or(0, |l| l.index),
        )
    }

    /// Whether an event sequenced at or before `index` is still unconfirmed.
    pub fn has_unconfirmed_through(&self, index: u64) -> bool {
        self.shared
            .applied
            .read()
            .pending
            .has_unconfirmed_through(index)
    }

    /// Unconfirmed events: how far history lags behind sequencing.
    pub fn pending_len(&self) -> usize {
        self.shared.applied.read().pending.len()
    }

    /// Changes whenever entries are applied (the value is the last applied index).
    pub fn applied_index(&self) -> watch::Receiver<u64> {
        self.shared.applied_index.subscribe()
    }

    pub fn last_seqs(&self, channels: &[uuid::Uuid]) -> Vec<u64> {
        let applied = self.shared.applied.read();
        channels
            .iter()
            .map(|c| applied.state.last_seq(*c))
            .collect()
    }

    pub fn replay(&self, channel: uuid::Uuid, after_seq: u64) -> BufferedReplay {
        self.shared.applied.read().state.replay(channel, after_seq)
    }

    fn read_snapshot_file(&self) -> Result<Option<(SnapshotFile, Vec<u8>)>, StorageError> {
        match std::fs::read(&self.shared.snapshot_path) {
            Ok(bytes) => {
                let file = serde_json::from_slice(&bytes).map_err(sm_read_err)?;
                Ok(Some((file, bytes)))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(sm_read_err(err)),
        }
    }
}

/// The applied state a snapshot file describes, replay buffers refilled.
async fn restore(
    limits: StateLimits,
    file: SnapshotFile,
    messages: &dyn MessageStore,
) -> Result<Applied, StorageError> {
    let mut state = ChannelsState::restore(limits, file.state);
    let pending = PendingHistory::from_events(file.pending);
    refill(&mut state, &pending, messages).await?;
    Ok(Applied {
        state,
        last_applied: file.last_applied,
        membership: file.membership,
        pending,
    })
}

/// Refills every replay buffer with the channel's newest events: those the message store holds
/// up to the channel's `last_seq`, completed by the pending ones it may not hold yet. Both are
/// functions of replicated state (history at or below `last_seq` is written once, identically, by
/// whichever leader writes it), so every replica refills the same buffer.
async fn refill(
    state: &mut ChannelsState,
    pending: &PendingHistory,
    messages: &dyn MessageStore,
) -> Result<(), StorageError> {
    let limit = state.limits().replay_buffer;
    for (channel, last_seq) in state.channels_to_refill() {
        let stored = messages
            .page(
                channel,
                HistoryQuery::Before {
                    before: Some(last_seq + 1),
                    limit,
                },
            )
            .await
            .map_err(sm_read_err)?;
        let mut newest: std::collections::BTreeMap<u64, MessageEvent> =
            stored.into_iter().map(|event| (event.seq, event)).collect();
        for event in pending.of_channel(channel) {
            newest.insert(event.seq, MessageEvent::clone(event));
        }
        state.refill(channel, newest.into_values().collect());
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically and durably: temp file, fsync, rename, fsync directory.
pub(crate) fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The events an outcome sequenced.
fn published(outcome: &Outcome) -> Vec<Arc<MessageEvent>> {
    match outcome {
        Outcome::Published(event) => vec![Arc::new(event.clone())],
        Outcome::Batch(batch) => batch.iter().flat_map(published).collect(),
        _ => Vec::new(),
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let shared = self.shared.clone();
        let file = {
            let applied = shared.applied.read();
            let snapshot_id = format!(
                "{}-{}",
                applied.last_applied.map_or(0, |l| l.index),
                chrono::Utc::now().timestamp_millis()
            );
            SnapshotFile {
                last_applied: applied.last_applied,
                membership: applied.membership.clone(),
                snapshot_id,
                state: applied.state.snapshot(),
                pending: applied.pending.to_vec(),
            }
        };
        let bytes = serde_json::to_vec(&file).map_err(sm_write_err)?;
        let path = shared.snapshot_path.clone();
        let data = bytes.clone();
        tokio::task::spawn_blocking(move || write_durably(&path, &data))
            .await
            .map_err(sm_write_err)?
            .map_err(sm_write_err)?;
        Ok(Snapshot {
            meta: SnapshotMeta {
                last_log_id: file.last_applied,
                last_membership: file.membership,
                snapshot_id: file.snapshot_id,
            },
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let applied = self.shared.applied.read();
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Outcome>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut outcomes = Vec::new();
        let last_index = {
            let mut applied = self.shared.applied.write();
            let applied = &mut *applied;
            for entry in entries {
                let index = entry.log_id.index;
                applied.last_applied = Some(entry.log_id);
                let outcome = match entry.payload {
                    EntryPayload::Blank => Outcome::Internal,
                    EntryPayload::Normal(Command::HistoryWritten { through }) => {
                        applied.pending.confirm(through);
                        Outcome::Internal
                    }
                    EntryPayload::Normal(command) => applied.state.apply(command),
                    EntryPayload::Membership(membership) => {
                        applied.membership = StoredMembership::new(Some(entry.log_id), membership);
                        Outcome::Internal
                    }
                };
                applied.pending.push(index, published(&outcome));
                outcomes.push(outcome);
            }
            applied.last_applied.map_or(0, |l| l.index)
        };
        self.shared.applied_index.send_replace(last_index);
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let bytes = snapshot.into_inner();
        let file: SnapshotFile = serde_json::from_slice(&bytes).map_err(sm_read_err)?;
        let shared = self.shared.clone();
        let limits = shared.applied.read().state.limits();
        let mut restored = restore(limits, file, shared.messages.as_ref()).await?;
        restored.last_applied = meta.last_log_id;
        restored.membership = meta.last_membership.clone();
        let path = shared.snapshot_path.clone();
        tokio::task::spawn_blocking(move || write_durably(&path, &bytes))
            .await
            .map_err(sm_write_err)?
            .map_err(sm_write_err)?;
        let last_index = restored.last_applied.map_or(0, |l| l.index);
        *shared.applied.write() = restored;
        shared.applied_index.send_replace(last_index);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(self.read_snapshot_file()?.map(|(file, bytes)| Snapshot {
            meta: SnapshotMeta {
                last_log_id: file.last_applied,
                last_membership: file.membership,
                snapshot_id: file.snapshot_id,
            },
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}
