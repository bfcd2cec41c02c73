//! The cluster map: which channel nodes exist, how many shards there are, and how many replicas
//! each shard has. It is the state of the control group (a Raft group over the channel nodes), so
//! every process that reads it from a node sees a value the whole cluster agreed on.
//!
//! The map holds each shard's current replica set (`assignment`): the consistent-hash ring's
//! placement when the cluster is created, then changed one shard at a time by moves as nodes join
//! and drain ([`rebalance`](crate::rebalance) decides them, the control group's leader carries
//! them out). While a move runs, both the old and the new replicas are part of the placement.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::placement::{NodeId, Ring, ShardId, shard_of};

/// Raft group id of the control group. Shard `s` is group `s + 1`.
pub const CONTROL_GROUP: u64 = 0;

/// The Raft group id of a shard.
pub fn shard_group(shard: ShardId) -> u64 {
    u64::from(shard) + 1
}

/// The shard of a Raft group id (`None` for the control group).
pub fn group_shard(group: u64) -> Option<ShardId> {
    group.checked_sub(1).and_then(|s| ShardId::try_from(s).ok())
}

/// Limits on the cluster's shape, checked when a cluster is created.
pub const MAX_SHARDS: u32 = 4_096;
pub const MAX_REPLICATION: usize = 5;

/// The agreed shape of the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMap {
    /// Number of shards, fixed at creation (0: the cluster is not created yet).
    pub shard_count: u32,
    /// Replicas per shard (1–5).
    pub replication: usize,
    /// Channel nodes and their transport (QUIC) addresses.
    pub nodes: BTreeMap<NodeId, SocketAddr>,
    /// Raised by every change, so a reader can tell a newer map from an older one.
    pub version: u64,
    /// The replicas of each shard (index: shard), preferred leader first. Empty in a map written
    /// before membership changes existed: the ring's placement over `nodes` stands for it then.
    #[serde(default)]
    pub assignment: Vec<ShardReplicas>,
    /// Nodes whose replicas are moving away (an operator's drain or decommission, or a node found
    /// dead): the target placement leaves them out.
    #[serde(default)]
    pub draining: BTreeMap<NodeId, DrainReason>,
    /// The one shard move in progress (moves run one at a time).
    #[serde(default)]
    pub moving: Option<ShardMove>,
    /// Ids of decommissioned nodes: ids are never reused, so a stale process with an old id is
    /// refused rather than taken for a new node.
    #[serde(default)]
    pub removed: BTreeSet<NodeId>,
}

/// One shard's replica set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardReplicas {
    /// Preferred leader first.
    pub nodes: Vec<NodeId>,
    /// Raised by every move of the shard. A replica placed at epoch 0 was placed when the cluster
    /// was created, and only such a group is initialized by its first replica; a later replica
    /// joins as a learner of the running group.
    pub epoch: u64,
}

/// Why a node is draining.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DrainReason {
    /// `chorus cluster drain`: moves its replicas away; the node stays a member.
    Drain,
    /// `chorus cluster decommission`: drains, then leaves the cluster for good.
    Decommission,
    /// Unreachable for longer than `[cluster] replace_dead_after_secs`: its replicas are
    /// replaced on the other nodes.
    Dead,
}

/// A change of one shard's replica set, carried out by the shard's leader (add the new replicas
/// as learners, let them catch up, change the voters, remove the old replicas).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardMove {
    pub shard: ShardId,
    /// The replica set after the move, preferred leader first.
    pub to: Vec<NodeId>,
}

/// Why a cluster shape is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    #[error("shard_count must be 1–{MAX_SHARDS}, not {0}")]
    ShardCount(u32),
    #[error("replication must be 1–{MAX_REPLICATION}, not {0}")]
    Replication(usize),
    #[error("replication {replication} needs at least as many channel nodes, not {nodes}")]
    TooFewNodes { replication: usize, nodes: usize },
}

impl ClusterMap {
    /// A new cluster's map, checked.
    pub fn create(
        shard_count: u32,
        replication: usize,
        nodes: BTreeMap<NodeId, SocketAddr>,
    ) -> Result<Self, MapError> {
        if shard_count == 0 || shard_count > MAX_SHARDS {
            return Err(MapError::ShardCount(shard_count));
        }
        if replication == 0 || replication > MAX_REPLICATION {
            return Err(MapError::Replication(replication));
        }
        if nodes.len() < replication {
            return Err(MapError::TooFewNodes {
                replication,
                nodes: nodes.len(),
            });
        }
        let ring = Ring::new(nodes.keys().copied());
        let assignment = (0..shard_count)
            .map(|shard| ShardReplicas {
                nodes: ring.replicas(shard, replication),
                epoch: 0,
            })
            .collect();
        Ok(ClusterMap {
            shard_count,
            replication,
            nodes,
            version: 1,
            assignment,
            draining: BTreeMap::new(),
            moving: None,
            removed: BTreeSet::new(),
        })
    }

    pub fn is_created(&self) -> bool {
        self.shard_count > 0
    }

    /// The shard of a channel.
    pub fn shard_of(&self, channel: Uuid) -> ShardId {
        shard_of(channel, self.shard_count)
    }

    /// The replicas of every shard, indexed by shard: its assigned replicas, and during a move
    /// also the replicas it is moving to.
    pub fn placement(&self) -> Placement {
        let assignment = self.current_assignment();
        Placement {
            replicas: assignment
                .into_iter()
                .enumerate()
                .map(|(shard, assigned)| {
                    let mut replicas = assigned.nodes;
                    if let Some(moving) = self.moving.as_ref().filter(|m| m.shard as usize == shard)
                    {
                        for node in &moving.to {
                            if !replicas.contains(node) {
                                replicas.push(*node);
                            }
                        }
                    }
                    replicas
                })
                .collect(),
        }
    }

    /// Each shard's assigned replicas; for a map from before assignments were kept, the ring's.
    pub fn current_assignment(&self) -> Vec<ShardReplicas> {
        if self.assignment.len() == self.shard_count as usize {
            return self.assignment.clone();
        }
        let ring = Ring::new(self.nodes.keys().copied());
        (0..self.shard_count)
            .map(|shard| ShardReplicas {
                nodes: ring.replicas(shard, self.replication),
                epoch: 0,
            })
            .collect()
    }

    /// How many times `shard` has moved (0: it has its replicas from the cluster's creation).
    pub fn epoch(&self, shard: ShardId) -> u64 {
        self.assignment
            .get(shard as usize)
            .map_or(0, |assigned| assigned.epoch)
    }

    /// The nodes not draining, in id order.
    pub fn active_nodes(&self) -> Vec<NodeId> {
        self.nodes
            .keys()
            .copied()
            .filter(|node| !self.draining.contains_key(node))
            .collect()
    }

    pub fn addr(&self, node: NodeId) -> Option<SocketAddr> {
        self.nodes.get(&node).copied()
    }
}

/// Replica sets of every shard, as computed from a map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    replicas: Vec<Vec<NodeId>>,
}

impl Placement {
    /// The replicas of `shard`, preferred leader first.
    pub fn replicas(&self, shard: ShardId) -> &[NodeId] {
        self.replicas
            .get(shard as usize)
            .map_or(&[][..], Vec::as_slice)
    }

    /// The shards `node` replicates.
    pub fn shards_of(&self, node: NodeId) -> Vec<ShardId> {
        (0..self.replicas.len() as ShardId)
            .filter(|&shard| self.replicas(shard).contains(&node))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: u64) -> BTreeMap<NodeId, SocketAddr> {
        (1..=n)
            .map(|id| (id, format!("127.0.0.1:{}", 7100 + id).parse().unwrap()))
            .collect()
    }

    #[test]
    fn shapes_outside_the_limits_are_refused() {
        assert_eq!(
            ClusterMap::create(0, 3, nodes(3)),
            Err(MapError::ShardCount(0))
        );
        assert_eq!(
            ClusterMap::create(8, 6, nodes(6)),
            Err(MapError::Replication(6))
        );
        assert_eq!(
            ClusterMap::create(8, 3, nodes(2)),
            Err(MapError::TooFewNodes {
                replication: 3,
                nodes: 2
            })
        );
    }

    #[test]
    fn every_node_of_a_three_node_cluster_replicates_every_shard() {
        let map = ClusterMap::create(16, 3, nodes(3)).unwrap();
        let placement = map.placement();
        for node in 1..=3 {
            assert_eq!(placement.shards_of(node).len(), 16);
        }
    }

    #[test]
    fn group_ids_keep_the_control_group_apart() {
        assert_eq!(shard_group(0), 1);
        assert_eq!(group_shard(1), Some(0));
        assert_eq!(group_shard(CONTROL_GROUP), None);
        assert_eq!(group_shard(shard_group(4_095)), Some(4_095));
    }
}
