//! Which shard leaderships a channel node should hand to another replica, and to whom: pure
//! functions, so the node's leadership task (channel-node `leadership.rs`) and the tests reach
//! the same answers.
//!
//! A shard's **preferred leader** is one of its replicas that is not draining, chosen so that
//! every node is preferred by about as many shards as any other ([`preferred_leaders`]: shard by
//! shard, the replica preferred least often so far, ties going to the ring's order). The ring's
//! first replica alone would not do: on 3 nodes and 16 shards it is 2, 6 and 8 shards. A cluster
//! is created with every shard led by its preferred leader (it initializes the group); failures
//! move leaderships to survivors, and nothing would move them back: after two nodes restart in
//! turn the third leads every shard. So a leader that is not its shard's preferred leader hands
//! the leadership over once the preferred replica has caught up with its log, after it has led
//! the shard for a settling time (a node that just came back should prove itself before it
//! takes work, and a flapping one should not pull leaderships to and fro). A leader on a
//! **draining** node hands over at once, to the first caught-up replica that is not draining:
//! its replicas are about to move away, and a hand-over pauses the shard's writes for less than
//! a removal's election does.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::cluster_map::ClusterMap;
use crate::placement::{NodeId, ShardId};

/// What a node knows about a shard it leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedShard {
    pub shard: ShardId,
    /// The group's voters.
    pub voters: BTreeSet<NodeId>,
    /// The voters whose log matches the leader's last entry.
    pub caught_up: BTreeSet<NodeId>,
    /// How long this node has led the shard without interruption.
    pub led_for: Duration,
}

/// A leadership to hand over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandOver {
    pub shard: ShardId,
    pub to: NodeId,
}

/// Each shard's preferred leader (index: shard), the same on every node that holds the same map:
/// in shard order, the shard's replica (not draining) that is preferred by the fewest shards so
/// far, ties going to the first in the assignment (the ring's order). `None` for a shard whose
/// replicas all drain.
pub fn preferred_leaders(map: &ClusterMap) -> Vec<Option<NodeId>> {
    let mut counts: BTreeMap<NodeId, usize> = BTreeMap::new();
    map.current_assignment()
        .iter()
        .map(|assigned| {
            let chosen = assigned
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, node)| !map.draining.contains_key(node))
                .min_by_key(|(position, node)| (counts.get(node).copied().unwrap_or(0), *position))
                .map(|(_, node)| *node)?;
            *counts.entry(chosen).or_insert(0) += 1;
            Some(chosen)
        })
        .collect()
}

/// The next leadership `me` should hand over, if any (at most one at a time: each pauses its
/// shard's writes for about a lease). Shards in a move are left to the move. `settle` is how
/// long a leader keeps a shard before handing it to its preferred leader; zero turns that off
/// (a draining node still hands over).
pub fn next_hand_over(
    me: NodeId,
    map: &ClusterMap,
    led: &[LedShard],
    settle: Duration,
) -> Option<HandOver> {
    let assignment = map.current_assignment();
    let preferred = preferred_leaders(map);
    let draining = map.draining.contains_key(&me);
    let eligible = |node: &NodeId, shard: &LedShard| {
        *node != me
            && shard.voters.contains(node)
            && shard.caught_up.contains(node)
            && !map.draining.contains_key(node)
    };
    led.iter()
        .filter(|shard| map.moving.as_ref().is_none_or(|m| m.shard != shard.shard))
        .find_map(|shard| {
            let assigned = &assignment.get(shard.shard as usize)?.nodes;
            if draining {
                // Anyone not draining will do; the assignment's order still decides among them.
                let to = assigned
                    .iter()
                    .chain(shard.voters.iter())
                    .find(|node| eligible(node, shard))?;
                return Some(HandOver {
                    shard: shard.shard,
                    to: *to,
                });
            }
            if settle.is_zero() || shard.led_for < settle {
                return None;
            }
            let to = (*preferred.get(shard.shard as usize)?)?;
            eligible(&to, shard).then_some(HandOver {
                shard: shard.shard,
                to,
            })
        })
}

/// The shards each node would lead if every shard were led by its preferred leader.
pub fn preferred_counts(map: &ClusterMap) -> BTreeMap<NodeId, usize> {
    let mut counts = BTreeMap::new();
    for node in preferred_leaders(map).into_iter().flatten() {
        *counts.entry(node).or_insert(0) += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster_map::{DrainReason, ShardMove};

    const SETTLE: Duration = Duration::from_secs(10);

    fn map(shards: u32) -> ClusterMap {
        let nodes = (1..=3)
            .map(|id| (id, format!("127.0.0.1:{}", 7000 + id).parse().unwrap()))
            .collect();
        ClusterMap::create(shards, 3, nodes).unwrap()
    }

    fn led(shard: ShardId, caught_up: &[NodeId], led_for: Duration) -> LedShard {
        LedShard {
            shard,
            voters: BTreeSet::from([1, 2, 3]),
            caught_up: caught_up.iter().copied().collect(),
            led_for,
        }
    }

    /// A shard whose preferred leader is not `me`, and that preferred leader.
    fn foreign_shard(map: &ClusterMap, me: NodeId) -> (ShardId, NodeId) {
        preferred_leaders(map)
            .iter()
            .enumerate()
            .find_map(|(shard, p)| (*p != Some(me)).then_some((shard as ShardId, p.unwrap())))
            .unwrap()
    }

    #[test]
    fn a_leader_hands_a_shard_back_to_its_caught_up_preferred_leader_after_settling() {
        let map = map(16);
        let (shard, preferred) = foreign_shard(&map, 1);
        let shards = [led(shard, &[1, 2, 3], SETTLE)];
        assert_eq!(
            next_hand_over(1, &map, &shards, SETTLE),
            Some(HandOver {
                shard,
                to: preferred
            })
        );
        let early = [led(shard, &[1, 2, 3], SETTLE / 2)];
        assert_eq!(next_hand_over(1, &map, &early, SETTLE), None, "settling");
        let behind = [led(shard, &[1], SETTLE)];
        assert_eq!(
            next_hand_over(1, &map, &behind, SETTLE),
            None,
            "the preferred leader has not caught up"
        );
        assert_eq!(
            next_hand_over(1, &map, &shards, Duration::ZERO),
            None,
            "turned off"
        );
    }

    #[test]
    fn a_preferred_leader_keeps_its_shards() {
        let map = map(16);
        let own: Vec<LedShard> = preferred_leaders(&map)
            .iter()
            .enumerate()
            .filter(|(_, p)| **p == Some(2))
            .map(|(shard, _)| led(shard as ShardId, &[1, 2, 3], SETTLE * 10))
            .collect();
        assert!(!own.is_empty());
        assert_eq!(next_hand_over(2, &map, &own, SETTLE), None);
    }

    #[test]
    fn a_draining_leader_hands_over_at_once_to_a_caught_up_replica_that_stays() {
        let mut map = map(16);
        map.draining.insert(1, DrainReason::Drain);
        let (shard, _) = map
            .current_assignment()
            .iter()
            .enumerate()
            .find(|(_, a)| a.nodes[0] == 1)
            .map(|(s, a)| (s as ShardId, a.nodes.clone()))
            .unwrap();
        let assigned = map.current_assignment()[shard as usize].nodes.clone();
        let expected = assigned.iter().copied().find(|&n| n != 1).unwrap();
        let shards = [led(shard, &[1, 2, 3], Duration::ZERO)];
        assert_eq!(
            next_hand_over(1, &map, &shards, SETTLE),
            Some(HandOver {
                shard,
                to: expected
            })
        );
        // The next in order has not caught up: the other one takes it.
        let other = if expected == 2 { 3 } else { 2 };
        let shards = [led(shard, &[1, other], Duration::ZERO)];
        assert_eq!(
            next_hand_over(1, &map, &shards, Duration::ZERO),
            Some(HandOver { shard, to: other })
        );
        let alone = [led(shard, &[1], Duration::ZERO)];
        assert_eq!(next_hand_over(1, &map, &alone, SETTLE), None);
    }

    #[test]
    fn a_draining_preferred_leader_is_skipped_and_a_moving_shard_is_left_alone() {
        let mut map = map(16);
        let (shard, preferred) = foreign_shard(&map, 1);
        map.draining.insert(preferred, DrainReason::Dead);
        let shards = [led(shard, &[1, 2, 3], SETTLE)];
        let next = preferred_leaders(&map)[shard as usize].unwrap();
        assert_ne!(next, preferred);
        let expected = (next != 1).then_some(HandOver { shard, to: next });
        assert_eq!(next_hand_over(1, &map, &shards, SETTLE), expected);

        map.moving = Some(ShardMove {
            shard,
            to: vec![1, 2, 3],
        });
        assert_eq!(next_hand_over(1, &map, &shards, SETTLE), None);
    }

    #[test]
    fn preferred_leaderships_are_spread_evenly_over_the_nodes() {
        for shards in [1, 3, 8, 16, 64] {
            let counts = preferred_counts(&map(shards));
            assert_eq!(counts.values().sum::<usize>(), shards as usize);
            let (min, max) = (
                counts.values().min().unwrap(),
                counts.values().max().unwrap(),
            );
            assert!(max - min <= 1 || shards < 3, "{shards} shards: {counts:?}");
        }
        // Five nodes, three replicas each: every node holds a shard's replica only for some
        // shards, and still gets its share.
        let nodes = (1..=5)
            .map(|id| (id, format!("127.0.0.1:{}", 7000 + id).parse().unwrap()))
            .collect();
        let five = ClusterMap::create(40, 3, nodes).unwrap();
        let counts = preferred_counts(&five);
        assert!(counts.values().all(|&n| (7..=9).contains(&n)), "{counts:?}");
    }

    #[test]
    fn a_draining_node_is_preferred_by_no_shard_and_the_others_share_its_part() {
        let mut map = map(16);
        map.draining.insert(3, DrainReason::Drain);
        let counts = preferred_counts(&map);
        assert_eq!(counts.get(&3), None);
        assert_eq!(counts.values().sum::<usize>(), 16);
        assert!(counts.values().all(|&n| n == 8), "{counts:?}");
    }
}
