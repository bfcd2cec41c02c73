//! openraft's own storage test suite (`openraft::testing::Suite`) run against the log store and
//! both state machines: a shard's (channels) and the control group's (cluster map). It checks
//! what openraft relies on — vote and log persistence, purge and truncate, membership tracking,
//! snapshot build and install — on the real redb files, not a model of them.

use std::sync::Arc;

use chorus_core::RedbMessageStore;
use openraft::StorageError;
use openraft::testing::{StoreBuilder, Suite};
use tempfile::TempDir;

use crate::control::{ControlConfig, ControlStateMachine};
use crate::log_file::LogFile;
use crate::log_store::LogStore;
use crate::raft_types::{NodeId, TypeConfig};
use crate::state::StateLimits;
use crate::state_machine::StateMachineStore;

/// Fresh stores of a shard in a directory of their own, removed with the guard.
struct ShardStores;

impl StoreBuilder<TypeConfig, LogStore<TypeConfig>, StateMachineStore, TempDir> for ShardStores {
    async fn build(
        &self,
    ) -> Result<(TempDir, LogStore<TypeConfig>, StateMachineStore), StorageError<NodeId>> {
        let dir = tempfile::tempdir().unwrap();
        let file = LogFile::open(&dir.path().join("raft-log.redb")).unwrap();
        let log = LogStore::open(&file, "shard-0").await?;
        let messages = Arc::new(RedbMessageStore::open(&dir.path().join("messages.redb")).unwrap());
        let machine = StateMachineStore::open(dir.path(), StateLimits::default(), messages).await?;
        Ok((dir, log, machine))
    }
}

/// Fresh stores of the control group.
struct ControlStores;

impl StoreBuilder<ControlConfig, LogStore<ControlConfig>, ControlStateMachine, TempDir>
    for ControlStores
{
    async fn build(
        &self,
    ) -> Result<(TempDir, LogStore<ControlConfig>, ControlStateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().unwrap();
        let file = LogFile::open(&dir.path().join("raft-log.redb")).unwrap();
        let log = LogStore::open(&file, "control").await?;
        let machine = ControlStateMachine::open(dir.path())?;
        Ok((dir, log, machine))
    }
}

// The suite starts its own runtimes, so these are plain tests.

#[test]
fn the_shard_log_and_state_machine_pass_openraft_storage_suite() {
    Suite::test_all(ShardStores).unwrap();
}

#[test]
fn the_control_log_and_state_machine_pass_openraft_storage_suite() {
    Suite::test_all(ControlStores).unwrap();
}
