//! The openraft type configuration of a channel shard.

use std::io::Cursor;

use crate::state::{Command, Outcome};

openraft::declare_raft_types!(
    /// Log entries carry [`Command`]s; applying one yields an [`Outcome`].
    pub TypeConfig:
        D = Command,
        R = Outcome,
        SnapshotData = Cursor<Vec<u8>>,
);

pub type NodeId = u64;
pub type LogId = openraft::LogId<NodeId>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;
