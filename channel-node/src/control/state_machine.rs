//! The control group's state machine: the cluster map, kept whole in memory and in a snapshot
//! file (it is small), published on a watch channel for the node to act on.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chorus_cluster::ClusterMap;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, EntryPayload, LogId, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{ControlConfig, ControlOutcome, apply};
use crate::raft_types::NodeId;
use crate::state_machine::write_durably;

#[derive(Clone, Default, Serialize, Deserialize)]
struct Applied {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    map: ClusterMap,
    snapshot_id: String,
}

/// The control state; clones share it.
#[derive(Clone)]
pub struct ControlStateMachine {
    applied: Arc<RwLock<Applied>>,
    map: Arc<watch::Sender<ClusterMap>>,
    snapshot_path: PathBuf,
}

fn io_err(err: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::read_state_machine(&std::io::Error::other(err.to_string())).into()
}

impl ControlStateMachine {
    pub fn open(dir: &Path) -> Result<Self, StorageError<NodeId>> {
        let snapshot_path = dir.join("control-snapshot.json");
        let applied: Applied = match std::fs::read(&snapshot_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(io_err)?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Applied::default(),
            Err(err) => return Err(io_err(err)),
        };
        let (map, _) = watch::channel(applied.map.clone());
        Ok(ControlStateMachine {
            applied: Arc::new(RwLock::new(applied)),
            map: Arc::new(map),
            snapshot_path,
        })
    }

    /// The applied map, and every change to it.
    pub fn map(&self) -> watch::Receiver<ClusterMap> {
        self.map.subscribe()
    }

    fn snapshot_of(applied: &Applied) -> Result<Snapshot<ControlConfig>, StorageError<NodeId>> {
        Ok(Snapshot {
            meta: SnapshotMeta {
                last_log_id: applied.last_applied,
                last_membership: applied.membership.clone(),
                snapshot_id: applied.snapshot_id.clone(),
            },
            snapshot: Box::new(Cursor::new(serde_json::to_vec(applied).map_err(io_err)?)),
        })
    }
}

impl RaftSnapshotBuilder<ControlConfig> for ControlStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<ControlConfig>, StorageError<NodeId>> {
        let applied = {
            let mut applied = self.applied.write();
            applied.snapshot_id = format!("{}", applied.last_applied.map_or(0, |l| l.index));
            applied.clone()
        };
        let snapshot = Self::snapshot_of(&applied)?;
        let bytes = serde_json::to_vec(&applied).map_err(io_err)?;
        let path = self.snapshot_path.clone();
        tokio::task::spawn_blocking(move || write_durably(&path, &bytes))
            .await
            .map_err(io_err)?
            .map_err(io_err)?;
        Ok(snapshot)
    }
}

impl RaftStateMachine<ControlConfig> for ControlStateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>>
    {
        let applied = self.applied.read();
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ControlOutcome>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = openraft::Entry<ControlConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut outcomes = Vec::new();
        let map = {
            let mut applied = self.applied.write();
            for entry in entries {
                applied.last_applied = Some(entry.log_id);
                let mut refused = None;
                match entry.payload {
                    EntryPayload::Blank => {}
                    EntryPayload::Normal(command) => {
                        refused = apply(&mut applied.map, command).err();
                    }
                    EntryPayload::Membership(membership) => {
                        applied.membership = StoredMembership::new(Some(entry.log_id), membership);
                    }
                }
                outcomes.push(ControlOutcome {
                    map: applied.map.clone(),
                    refused,
                });
            }
            applied.map.clone()
        };
        self.map.send_if_modified(|current| {
            let changed = *current != map;
            *current = map;
            changed
        });
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let bytes = snapshot.into_inner();
        let mut applied: Applied = serde_json::from_slice(&bytes).map_err(io_err)?;
        applied.last_applied = meta.last_log_id;
        applied.membership = meta.last_membership.clone();
        let path = self.snapshot_path.clone();
        tokio::task::spawn_blocking(move || write_durably(&path, &bytes))
            .await
            .map_err(io_err)?
            .map_err(io_err)?;
        let map = applied.map.clone();
        *self.applied.write() = applied;
        self.map.send_replace(map);
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<ControlConfig>>, StorageError<NodeId>> {
        let applied = self.applied.read().clone();
        if applied.last_applied.is_none() {
            return Ok(None);
        }
        Self::snapshot_of(&applied).map(Some)
    }
}
