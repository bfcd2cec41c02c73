//! The control group: a Raft group over every channel node whose state is the [`ClusterMap`] —
//! which nodes exist, the shard count, the replication factor. Membership and shape live here,
//! replicated and agreed, rather than in config files that could disagree or a hand-made gossip.
//! Each node watches the applied map and starts the shard replicas it is placed on; gateways and
//! the API read the map from any node.

mod state_machine;

use std::io::Cursor;
use std::net::SocketAddr;

use chorus_cluster::placement::{NodeId, ShardId};
use chorus_cluster::rebalance::check_drain;
use chorus_cluster::{ClusterMap, DrainReason, ShardMove, ShardReplicas};
use serde::{Deserialize, Serialize};

pub use state_machine::ControlStateMachine;

/// A change to the cluster map.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlCommand {
    /// Creates the cluster with this map; ignored once a cluster exists (the first one wins, so
    /// two nodes racing to create it agree).
    Create(ClusterMap),
    /// A channel node joins (it is already a learner of the control group); the rebalancer then
    /// moves replicas onto it.
    AddNode { node: NodeId, addr: SocketAddr },
    /// Moves the node's replicas away (and, for a decommission, removes it once it holds none).
    Drain { node: NodeId, reason: DrainReason },
    /// Takes a drained node back: the rebalancer moves replicas onto it again.
    Undrain { node: NodeId },
    /// The rebalancer starts moving a shard (the new replicas start as learners).
    StartMove(ShardMove),
    /// The shard's leader committed the move's new voters: they become the shard's replicas.
    FinishMove { shard: ShardId },
    /// A decommissioned node that holds no replica leaves the cluster; its id is never reused.
    RemoveNode { node: NodeId },
}

/// The map after a command, and why the command changed nothing, if it was refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlOutcome {
    pub map: ClusterMap,
    pub refused: Option<String>,
}

openraft::declare_raft_types!(
    /// The control group's Raft types.
    pub ControlConfig:
        D = ControlCommand,
        R = ControlOutcome,
        SnapshotData = Cursor<Vec<u8>>,
);

/// Applies a command to the map: pure, so every replica reaches the same map. A command that
/// does not fit the map it meets (checked here, against the agreed map, not by the proposer
/// against the map it last saw) changes nothing and says why.
pub fn apply(map: &mut ClusterMap, command: ControlCommand) -> Result<(), String> {
    if let ControlCommand::Create(new) = command {
        if !map.is_created() {
            *map = new;
        }
        return Ok(());
    }
    if !map.is_created() {
        return Err("the cluster is not created yet".into());
    }
    match command {
        ControlCommand::Create(_) => unreachable!("handled above"),
        ControlCommand::AddNode { node, addr } => {
            if map.removed.contains(&node) {
                return Err(format!(
                    "node id {node} belonged to a decommissioned node; ids are never reused"
                ));
            }
            match map.nodes.get(&node) {
                Some(known) if *known == addr => return Ok(()),
                Some(known) => {
                    return Err(format!("node {node} is already in the cluster at {known}"));
                }
                None => {}
            }
            if let Some((other, _)) = map.nodes.iter().find(|(_, a)| **a == addr) {
                return Err(format!("{addr} is the address of node {other}"));
            }
            map.nodes.insert(node, addr);
        }
        ControlCommand::Drain { node, reason } => {
            if reason != DrainReason::Dead {
                check_drain(map, node)?;
            } else if !map.nodes.contains_key(&node) {
                return Err(format!("node {node} is not in the cluster"));
            }
            if map.draining.get(&node) == Some(&reason) {
                return Ok(());
            }
            map.draining.insert(node, reason);
        }
        ControlCommand::Undrain { node } => {
            if map.draining.remove(&node).is_none() {
                return Ok(());
            }
        }
        ControlCommand::StartMove(mv) => {
            if map.moving.as_ref() == Some(&mv) {
                return Ok(());
            }
            if let Some(other) = &map.moving {
                return Err(format!("shard {} is moving", other.shard));
            }
            if mv.shard >= map.shard_count {
                return Err(format!("there is no shard {}", mv.shard));
            }
            if let Some(unknown) = mv.to.iter().find(|n| !map.nodes.contains_key(n)) {
                return Err(format!("node {unknown} is not in the cluster"));
            }
            if map.assignment.len() != map.shard_count as usize {
                map.assignment = map.current_assignment();
            }
            map.moving = Some(mv);
        }
        ControlCommand::FinishMove { shard } => {
            let Some(mv) = map.moving.take_if(|mv| mv.shard == shard) else {
                return Err(format!("shard {shard} is not moving"));
            };
            let assigned = &mut map.assignment[shard as usize];
            *assigned = ShardReplicas {
                nodes: mv.to,
                epoch: assigned.epoch + 1,
            };
        }
        ControlCommand::RemoveNode { node } => {
            if map.draining.get(&node) != Some(&DrainReason::Decommission) {
                return Err(format!("node {node} is not being decommissioned"));
            }
            if !map.placement().shards_of(node).is_empty() {
                return Err(format!("node {node} still holds replicas"));
            }
            map.nodes.remove(&node);
            map.draining.remove(&node);
            map.removed.insert(node);
        }
    }
    map.version += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three_nodes() -> ClusterMap {
        ClusterMap::create(
            4,
            3,
            (1..=3)
                .map(|id| (id, format!("127.0.0.1:{}", 7100 + id).parse().unwrap()))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn a_node_joins_once_and_an_id_or_address_is_never_taken_twice() {
        let mut map = three_nodes();
        let addr: SocketAddr = "127.0.0.1:7104".parse().unwrap();
        apply(&mut map, ControlCommand::AddNode { node: 4, addr }).unwrap();
        let version = map.version;
        apply(&mut map, ControlCommand::AddNode { node: 4, addr }).unwrap();
        assert_eq!(map.version, version, "joining again changes nothing");
        let moved = "127.0.0.1:9".parse().unwrap();
        assert!(
            apply(
                &mut map,
                ControlCommand::AddNode {
                    node: 4,
                    addr: moved
                }
            )
            .unwrap_err()
            .contains("already in the cluster")
        );
        assert!(
            apply(&mut map, ControlCommand::AddNode { node: 5, addr })
                .unwrap_err()
                .contains("address of node 4")
        );
    }

    #[test]
    fn a_move_replaces_the_replicas_and_raises_the_epoch() {
        let mut map = three_nodes();
        let addr = "127.0.0.1:7104".parse().unwrap();
        apply(&mut map, ControlCommand::AddNode { node: 4, addr }).unwrap();
        let mv = ShardMove {
            shard: 2,
            to: vec![1, 2, 4],
        };
        apply(&mut map, ControlCommand::StartMove(mv.clone())).unwrap();
        assert_eq!(map.placement().replicas(2).len(), 4, "old and new replicas");
        let other = ShardMove {
            shard: 1,
            to: vec![1, 2, 4],
        };
        assert!(apply(&mut map, ControlCommand::StartMove(other)).is_err());
        assert!(apply(&mut map, ControlCommand::FinishMove { shard: 1 }).is_err());
        apply(&mut map, ControlCommand::FinishMove { shard: 2 }).unwrap();
        assert_eq!(map.placement().replicas(2), &[1, 2, 4]);
        assert_eq!(map.epoch(2), 1);
        assert_eq!(map.moving, None);
    }

    #[test]
    fn only_an_emptied_decommissioned_node_is_removed_for_good() {
        let mut map = three_nodes();
        let addr = "127.0.0.1:7104".parse().unwrap();
        apply(&mut map, ControlCommand::AddNode { node: 4, addr }).unwrap();
        assert!(apply(&mut map, ControlCommand::RemoveNode { node: 3 }).is_err());
        let decommission = ControlCommand::Drain {
            node: 3,
            reason: DrainReason::Decommission,
        };
        apply(&mut map, decommission).unwrap();
        assert!(
            apply(&mut map, ControlCommand::RemoveNode { node: 3 })
                .unwrap_err()
                .contains("still holds")
        );
        for shard in 0..4 {
            map.assignment[shard].nodes.retain(|n| *n != 3);
            map.assignment[shard].nodes.push(4);
        }
        apply(&mut map, ControlCommand::RemoveNode { node: 3 }).unwrap();
        assert!(!map.nodes.contains_key(&3));
        let back = "127.0.0.1:7103".parse().unwrap();
        assert!(
            apply(
                &mut map,
                ControlCommand::AddNode {
                    node: 3,
                    addr: back
                }
            )
            .unwrap_err()
            .contains("never reused")
        );
    }

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
        apply(&mut map, ControlCommand::Create(first.clone())).unwrap();
        apply(&mut map, ControlCommand::Create(second)).unwrap();
        assert_eq!(map, first);
    }
}
