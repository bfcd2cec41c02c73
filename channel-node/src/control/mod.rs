//! The control group: a Raft group over every channel node whose state is the [`ClusterMap`] —
//! which nodes exist, the shard count, the replication factor. Membership and shape live here,
//! replicated and agreed, rather than in config files that could disagree or a hand-made gossip.
//! Each node watches the applied map and starts the shard replicas it is placed on; gateways and
//! the API read the map from any node.

mod state_machine;

use std::io::Cursor;

use chorus_cluster::ClusterMap;
use serde::{Deserialize, Serialize};

pub use state_machine::ControlStateMachine;

/// A change to the cluster map.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlCommand {
    /// Creates the cluster with this map; ignored once a cluster exists (the first one wins, so
    /// two nodes racing to create it agree).
    Create(ClusterMap),
}

/// The map after a command.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlOutcome {
    pub map: ClusterMap,
}

openraft::declare_raft_types!(
    /// The control group's Raft types.
    pub ControlConfig:
        D = ControlCommand,
        R = ControlOutcome,
        SnapshotData = Cursor<Vec<u8>>,
);

/// Applies a command to the map: pure, so every replica reaches the same map.
pub fn apply(map: &mut ClusterMap, command: ControlCommand) {
    match command {
        ControlCommand::Create(new) if !map.is_created() => *map = new,
        ControlCommand::Create(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_create_wins() {
        let first = ClusterMap::create(
            8,
            1,
            [(1, "127.0.0.1:1".parse().unwrap())].into_iter().collect(),
        )
        .unwrap();
        let mut second = first.clone();
        second.shard_count = 16;
        let mut map = ClusterMap::default();
        apply(&mut map, ControlCommand::Create(first.clone()));
        apply(&mut map, ControlCommand::Create(second));
        assert_eq!(map, first);
    }
}
