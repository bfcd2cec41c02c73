//! Where a channel lives: its shard, and the channel nodes that replicate that shard.
//!
//! Pure functions of their inputs, so every gateway, API process and channel node that holds the
//! same [`ClusterMap`](crate::ClusterMap) computes the same placement without asking anyone.
//!
//! - A channel's shard is `FNV-1a-64(the 16 bytes of its UUID) mod S`. S is fixed when the cluster
//!   is created (it is part of the replicated cluster map): changing it would move every channel.
//!   FNV over all 16 bytes rather than the UUID's leading bytes, because UUIDv7 ids begin with a
//!   timestamp and channels created together would otherwise crowd into few shards.
//! - A shard's replicas come from a consistent-hash ring (the `hashring` crate) over the channel
//!   nodes, each present as [`VIRTUAL_NODES`] points: walking the ring clockwise from the shard's
//!   point, the first R distinct nodes. Adding or removing a node moves only the shards whose
//!   walk meets it, about R/N of them, instead of reshuffling everything.

use std::collections::BTreeSet;

use hashring::HashRing;
use uuid::Uuid;

/// A shard number, `0..shard_count`.
pub type ShardId = u32;

/// A channel node's id: unique in the cluster, never reused.
pub type NodeId = u64;

/// Points per node on the ring. More points spread shards more evenly over few nodes; 64 keeps a
/// 3-node cluster within a few percent of an even share.
pub const VIRTUAL_NODES: u32 = 64;

/// The shard of a channel among `shard_count` shards.
pub fn shard_of(channel: Uuid, shard_count: u32) -> ShardId {
    assert!(shard_count > 0, "a cluster has at least one shard");
    (fnv1a64(channel.as_bytes()) % u64::from(shard_count)) as ShardId
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
    })
}

/// One point of a node on the ring.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct VirtualNode {
    node: NodeId,
    point: u32,
}

/// The ring point a shard starts its walk from.
#[derive(Hash)]
struct ShardKey(ShardId);

/// The consistent-hash ring of a set of channel nodes.
#[derive(Clone, Debug)]
pub struct Ring {
    ring: HashRing<VirtualNode>,
    nodes: usize,
}

impl Ring {
    pub fn new(nodes: impl IntoIterator<Item = NodeId>) -> Self {
        let nodes: BTreeSet<NodeId> = nodes.into_iter().collect();
        let mut ring = HashRing::new();
        ring.batch_add(
            nodes
                .iter()
                .flat_map(|&node| (0..VIRTUAL_NODES).map(move |point| VirtualNode { node, point }))
                .collect(),
        );
        Ring {
            ring,
            nodes: nodes.len(),
        }
    }

    /// The nodes that replicate `shard`: the first `replication` distinct nodes clockwise from the
    /// shard's point (fewer when the ring has fewer nodes). The first is the shard's preferred
    /// leader, which spreads leadership over the nodes as evenly as the ring spreads shards.
    pub fn replicas(&self, shard: ShardId, replication: usize) -> Vec<NodeId> {
        let want = replication.min(self.nodes);
        let mut replicas = Vec::with_capacity(want);
        let Some(walk) = self
            .ring
            .get_with_replicas(&ShardKey(shard), self.ring.len())
        else {
            return replicas;
        };
        for point in walk {
            if replicas.len() == want {
                break;
            }
            if !replicas.contains(&point.node) {
                replicas.push(point.node);
            }
        }
        replicas
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn a_channel_always_maps_to_the_same_shard() {
        let channel = Uuid::parse_str("0192f3a0-1c2d-7e3f-8a4b-5c6d7e8f9a0b").unwrap();
        let first = shard_of(channel, 64);
        assert!(first < 64);
        assert_eq!(shard_of(channel, 64), first);
        // Pinned: a change of the hash would silently move every channel of a running cluster.
        assert_eq!(
            shard_of(Uuid::nil(), 64),
            (0x8820_1fb9_60ff_6465_u64 % 64) as u32
        );
    }

    #[test]
    fn channels_created_together_spread_over_the_shards() {
        // UUIDv7: same timestamp prefix, so only the hash of the whole id spreads them.
        let mut counts = HashMap::new();
        for _ in 0..6_400 {
            *counts.entry(shard_of(Uuid::now_v7(), 64)).or_insert(0) += 1;
        }
        assert_eq!(counts.len(), 64, "every shard gets channels");
        assert!(
            counts.values().all(|&n| n > 40),
            "no shard starves: {counts:?}"
        );
    }

    #[test]
    fn replicas_are_distinct_nodes_and_stable() {
        let ring = Ring::new([1, 2, 3, 4, 5]);
        for shard in 0..64 {
            let replicas = ring.replicas(shard, 3);
            assert_eq!(replicas.len(), 3);
            let distinct: BTreeSet<_> = replicas.iter().collect();
            assert_eq!(distinct.len(), 3, "shard {shard}: {replicas:?}");
            assert_eq!(Ring::new([5, 4, 3, 2, 1]).replicas(shard, 3), replicas);
        }
    }

    #[test]
    fn fewer_nodes_than_replicas_gives_every_node() {
        assert_eq!(Ring::new([7]).replicas(3, 3), vec![7]);
        assert!(Ring::new([]).replicas(3, 3).is_empty());
    }

    #[test]
    fn leadership_preferences_spread_over_three_nodes() {
        let ring = Ring::new([1, 2, 3]);
        let mut preferred = HashMap::new();
        for shard in 0..64 {
            *preferred.entry(ring.replicas(shard, 3)[0]).or_insert(0) += 1;
        }
        assert_eq!(
            preferred.len(),
            3,
            "every node leads some shards: {preferred:?}"
        );
        assert!(preferred.values().all(|&n| n >= 10), "{preferred:?}");
    }

    #[test]
    fn adding_a_fourth_node_moves_few_replicas() {
        let (before, after) = (Ring::new([1, 2, 3]), Ring::new([1, 2, 3, 4]));
        let mut moved = 0;
        for shard in 0..256 {
            let old: BTreeSet<_> = before.replicas(shard, 3).into_iter().collect();
            let new: BTreeSet<_> = after.replicas(shard, 3).into_iter().collect();
            moved += new.difference(&old).count();
        }
        // Ideal: a quarter of the 768 replicas move to the new node.
        let share = moved as f64 / (256.0 * 3.0);
        assert!(
            share <= 0.25 + 0.05,
            "moved {moved} of 768 replicas ({share:.3})"
        );
    }
}
