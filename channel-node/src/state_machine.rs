//! openraft's view of the channel state: applies committed entries to [`ChannelsState`], writes the
//! new events (messages, edits, deletions, reactions) to the message store, publishes them on the
//! bus, and takes snapshots. Entries the state machine rejects or deduplicates write nothing.
//!
//! Durability: messages go to the message store with `append_replayable`, which lets a store skip
//! its own fsync (the embedded redb store does). They are already fsynced in the Raft log, and a
//! snapshot — the only thing that lets the log be purged — is taken only after the message store
//! has been synced. After a crash the entries since the last snapshot are applied again;
//! message-store writes are idempotent by (channel, seq), and nothing is published to clients
//! during that catch-up because no gateway is attached yet.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chorus_cluster::{BusEvent, FanoutBus};
use chorus_core::{HistoryQuery, MessageStore};
use chorus_protocol::MessageEvent;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, RaftSnapshotBuilder, SnapshotMeta, StorageIOError};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::raft_types::{Entry, LogId, NodeId, StorageError, StoredMembership, TypeConfig};
use crate::state::{BufferedReplay, ChannelsState, Outcome, StateLimits, StateSnapshot};

/// What a snapshot file holds.
#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    last_applied: Option<LogId>,
    membership: StoredMembership,
    snapshot_id: String,
    state: StateSnapshot,
}

/// The applied state and the log position it reflects, always changed together.
struct Applied {
    state: ChannelsState,
    last_applied: Option<LogId>,
    membership: StoredMembership,
}

struct Shared {
    applied: RwLock<Applied>,
    /// Held from the start of an apply until its messages are in the message store, and while a
    /// snapshot captures the state, so a snapshot never covers a message the store lacks.
    persist: tokio::sync::Mutex<()>,
    messages: Arc<dyn MessageStore>,
    bus: Arc<dyn FanoutBus>,
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
        bus: Arc<dyn FanoutBus>,
    ) -> Result<Self, StorageError> {
        let snapshot_path = dir.join("state-snapshot.json");
        let applied = match std::fs::read(&snapshot_path) {
            Ok(bytes) => {
                let file: SnapshotFile = serde_json::from_slice(&bytes).map_err(sm_read_err)?;
                let mut state = ChannelsState::restore(limits, file.state);
                refill(&mut state, messages.as_ref()).await?;
                Applied {
                    state,
                    last_applied: file.last_applied,
                    membership: file.membership,
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Applied {
                state: ChannelsState::new(limits),
                last_applied: None,
                membership: StoredMembership::default(),
            },
            Err(err) => return Err(sm_read_err(err)),
        };
        Ok(StateMachineStore {
            shared: Arc::new(Shared {
                applied: RwLock::new(applied),
                persist: tokio::sync::Mutex::new(()),
                messages,
                bus,
                snapshot_path,
            }),
        })
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

/// Refills every replay buffer from the newest stored messages.
async fn refill(
    state: &mut ChannelsState,
    messages: &dyn MessageStore,
) -> Result<(), StorageError> {
    let limit = state.limits().replay_buffer;
    for (channel, last_seq) in state.channels_to_refill() {
        let mut newest = messages
            .page(
                channel,
                HistoryQuery::Before {
                    before: Some(last_seq + 1),
                    limit,
                },
            )
            .await
            .map_err(sm_read_err)?;
        newest.reverse();
        state.refill(channel, newest);
    }
    Ok(())
}

/// Writes applied messages to the message store, retrying with backoff while it is unavailable.
///
/// Failing the apply would stop Raft; the messages are safe in the log meanwhile, so the right
/// answer to a history backend outage is to wait for it (sequencing pauses, nothing is lost).
async fn write_history(messages: &dyn MessageStore, published: &[MessageEvent]) {
    let mut delay = std::time::Duration::from_millis(50);
    loop {
        match messages.append_replayable(published).await {
            Ok(()) => return,
            Err(err) => {
                tracing::error!(error = %err, retry_in_ms = delay.as_millis() as u64, "message store write failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(5));
            }
        }
    }
}

/// Writes `bytes` to `path` atomically and durably: temp file, fsync, rename, fsync directory.
fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let shared = self.shared.clone();
        let _persist = shared.persist.lock().await;
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
            }
        };
        let bytes = serde_json::to_vec(&file).map_err(sm_write_err)?;
        // The store must hold every message the snapshot covers before the log can be purged.
        shared.messages.sync().await.map_err(sm_write_err)?;
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
        let shared = self.shared.clone();
        let persist = shared.persist.lock().await;
        let mut outcomes = Vec::new();
        let mut published: Vec<MessageEvent> = Vec::new();
        {
            let mut applied = shared.applied.write();
            for entry in entries {
                applied.last_applied = Some(entry.log_id);
                let outcome = match entry.payload {
                    EntryPayload::Blank => Outcome::Internal,
                    EntryPayload::Normal(command) => applied.state.apply(command),
                    EntryPayload::Membership(membership) => {
                        applied.membership = StoredMembership::new(Some(entry.log_id), membership);
                        Outcome::Internal
                    }
                };
                match &outcome {
                    Outcome::Published(event) => published.push(event.clone()),
                    Outcome::Batch(batch) => {
                        published.extend(batch.iter().filter_map(|outcome| match outcome {
                            Outcome::Published(event) => Some(event.clone()),
                            _ => None,
                        }))
                    }
                    _ => {}
                }
                outcomes.push(outcome);
            }
        }
        if !published.is_empty() {
            write_history(shared.messages.as_ref(), &published).await;
        }
        drop(persist);
        for event in published {
            shared.bus.publish(BusEvent::Message(Arc::new(event))).await;
        }
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
        let _persist = shared.persist.lock().await;
        let limits = shared.applied.read().state.limits();
        let mut state = ChannelsState::restore(limits, file.state);
        refill(&mut state, shared.messages.as_ref()).await?;
        let path = shared.snapshot_path.clone();
        tokio::task::spawn_blocking(move || write_durably(&path, &bytes))
            .await
            .map_err(sm_write_err)?
            .map_err(sm_write_err)?;
        *shared.applied.write() = Applied {
            state,
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
        };
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
