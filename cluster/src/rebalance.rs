//! What the cluster should look like after nodes join, drain or die, and the next step towards
//! it: pure functions of the [`ClusterMap`], so the control group's leader (which carries the
//! steps out) and the tests reach the same answers.
//!
//! - The **target** replica set of a shard is the consistent-hash ring's over the nodes that are
//!   not draining ([`crate::placement::Ring`]): a joining node takes about R/N of the replicas,
//!   and a draining node's replicas go where the ring sends them.
//! - **One shard moves at a time** ([`next_move`]): the shard's leader adds the new replicas as
//!   learners, waits until they caught up, then changes the voters — so a move never leaves a
//!   shard short of a quorum of caught-up replicas, and live traffic shares the machine with at
//!   most one catch-up.
//! - The **control group's voters** ([`control_voters`]) are 3 or 5 of the active nodes (all of
//!   them below 3): enough to survive one or two losses, few enough that every change of the map
//!   commits quickly. The others follow it as learners, so every node holds the map.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::cluster_map::{ClusterMap, DrainReason, ShardMove};
use crate::placement::{NodeId, Ring};

/// Each shard's target replicas, or `None` when the active nodes are fewer than the replication
/// factor: then no shard moves (moving would shrink replica sets and weaken every quorum).
pub fn target(map: &ClusterMap) -> Option<Vec<Vec<NodeId>>> {
    let active = map.active_nodes();
    if !map.is_created() || active.len() < map.replication {
        return None;
    }
    let ring = Ring::new(active);
    Some(
        (0..map.shard_count)
            .map(|shard| ring.replicas(shard, map.replication))
            .collect(),
    )
}

/// The next shard to move and where to, if any: `None` while a move runs or when every shard has
/// its target replicas. Shards are taken in order, so every leader of the control group picks
/// the same next move.
pub fn next_move(map: &ClusterMap) -> Option<ShardMove> {
    if map.moving.is_some() {
        return None;
    }
    let target = target(map)?;
    let current = map.current_assignment();
    (0..map.shard_count).find_map(|shard| {
        let want = &target[shard as usize];
        let have: BTreeSet<NodeId> = current[shard as usize].nodes.iter().copied().collect();
        let want_set: BTreeSet<NodeId> = want.iter().copied().collect();
        (have != want_set).then(|| ShardMove {
            shard,
            to: want.clone(),
        })
    })
}

/// How many replicas the placement would gain on other nodes if every shard reached its target
/// (what a join costs in copies).
pub fn replicas_to_move(map: &ClusterMap) -> usize {
    let Some(target) = target(map) else { return 0 };
    map.current_assignment()
        .iter()
        .zip(&target)
        .map(|(have, want)| moved_replicas(&have.nodes, want))
        .sum()
}

/// The control group's voters: the current voters that are still active, topped up from the
/// other active nodes by id, to 5 when there are 5 active nodes, else 3, else every active node.
/// Keeping the current ones avoids needless membership changes.
pub fn control_voters(current: &BTreeSet<NodeId>, map: &ClusterMap) -> BTreeSet<NodeId> {
    let active = map.active_nodes();
    if active.is_empty() {
        return current.clone();
    }
    let want = match active.len() {
        n if n >= 5 => 5,
        n if n >= 3 => 3,
        n => n,
    };
    let mut voters: BTreeSet<NodeId> = current
        .iter()
        .copied()
        .filter(|node| active.contains(node))
        .collect();
    while voters.len() > want {
        let last = *voters.iter().next_back().expect("not empty");
        voters.remove(&last);
    }
    for node in active {
        if voters.len() >= want {
            break;
        }
        voters.insert(node);
    }
    voters
}

/// The decommissioned nodes that hold no replica any more and may leave the cluster.
pub fn ready_to_remove(map: &ClusterMap) -> Vec<NodeId> {
    let placement = map.placement();
    map.draining
        .iter()
        .filter(|(_, reason)| **reason == DrainReason::Decommission)
        .map(|(node, _)| *node)
        .filter(|node| placement.shards_of(*node).is_empty())
        .collect()
}

/// A node to replace because it has not answered for `after` (how long each node has been
/// unreachable is `unreachable`), if replacing it keeps every shard at full replication: there
/// must be a spare active node to take its replicas. One at a time.
pub fn dead_to_replace(
    map: &ClusterMap,
    unreachable: &BTreeMap<NodeId, Duration>,
    after: Duration,
) -> Option<NodeId> {
    if after.is_zero() || map.draining.values().any(|r| *r == DrainReason::Dead) {
        return None;
    }
    let active = map.active_nodes();
    if active.len() <= map.replication {
        return None;
    }
    active
        .into_iter()
        .find(|node| unreachable.get(node).is_some_and(|down| *down >= after))
}

/// Whether the operator may drain `node` (`Err` says why not): the nodes left active must still
/// hold every shard's replicas.
pub fn check_drain(map: &ClusterMap, node: NodeId) -> Result<(), String> {
    if !map.nodes.contains_key(&node) {
        return Err(format!("node {node} is not in the cluster"));
    }
    let left = map
        .active_nodes()
        .into_iter()
        .filter(|n| *n != node)
        .count();
    if !map.draining.contains_key(&node) && left < map.replication {
        return Err(format!(
            "draining node {node} would leave {left} active nodes for replication {}: add a node first",
            map.replication
        ));
    }
    Ok(())
}

/// How many replicas a shard gains on nodes it did not have, going from `before` to `after`.
pub fn moved_replicas(before: &[NodeId], after: &[NodeId]) -> usize {
    after.iter().filter(|n| !before.contains(n)).count()
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    fn nodes(ids: impl IntoIterator<Item = NodeId>) -> BTreeMap<NodeId, SocketAddr> {
        ids.into_iter()
            .map(|id| (id, format!("127.0.0.1:{}", 7100 + id).parse().unwrap()))
            .collect()
    }

    /// Carries out every move the plan asks for, as the control leader would.
    fn settle(map: &mut ClusterMap) -> usize {
        let mut moved = 0;
        while let Some(mv) = next_move(map) {
            let assigned = &mut map.assignment[mv.shard as usize];
            moved += moved_replicas(&assigned.nodes, &mv.to);
            assigned.nodes = mv.to;
            assigned.epoch += 1;
            assert!(moved <= 10_000, "the plan never settles");
        }
        moved
    }

    #[test]
    fn a_new_cluster_is_already_where_the_ring_wants_it() {
        let map = ClusterMap::create(16, 3, nodes(1..=3)).unwrap();
        assert_eq!(next_move(&map), None);
        assert_eq!(replicas_to_move(&map), 0);
    }

    #[test]
    fn a_fourth_node_takes_about_a_quarter_of_the_replicas_one_shard_at_a_time() {
        for shards in [8, 16, 64, 256] {
            let mut map = ClusterMap::create(shards, 3, nodes(1..=3)).unwrap();
            map.nodes.insert(4, "127.0.0.1:7104".parse().unwrap());
            let first = next_move(&map).expect("the new node gets replicas");
            assert!(first.to.contains(&4));
            let expected = replicas_to_move(&map);
            let moved = settle(&mut map);
            assert_eq!(moved, expected);
            let share = moved as f64 / f64::from(shards * 3);
            assert!(
                share <= 0.25 + 0.05,
                "{shards} shards: moved {moved} replicas ({share:.3})"
            );
            assert!(!map.placement().shards_of(4).is_empty());
        }
    }

    #[test]
    fn a_drained_node_ends_with_no_replicas_and_no_shard_loses_one() {
        let mut map = ClusterMap::create(16, 3, nodes(1..=4)).unwrap();
        map.draining.insert(2, DrainReason::Decommission);
        assert_eq!(ready_to_remove(&map), Vec::<NodeId>::new());
        settle(&mut map);
        assert!(map.placement().shards_of(2).is_empty());
        for shard in 0..16 {
            assert_eq!(map.placement().replicas(shard).len(), 3);
        }
        assert_eq!(ready_to_remove(&map), vec![2]);
    }

    #[test]
    fn nothing_moves_when_too_few_nodes_are_active() {
        let mut map = ClusterMap::create(8, 3, nodes(1..=3)).unwrap();
        map.draining.insert(3, DrainReason::Dead);
        assert_eq!(target(&map), None);
        assert_eq!(next_move(&map), None);
    }

    #[test]
    fn one_move_at_a_time() {
        let mut map = ClusterMap::create(8, 3, nodes(1..=4)).unwrap();
        map.draining.insert(1, DrainReason::Drain);
        let mv = next_move(&map).unwrap();
        map.moving = Some(mv);
        assert_eq!(next_move(&map), None);
    }

    #[test]
    fn draining_below_the_replication_factor_is_refused() {
        let mut map = ClusterMap::create(8, 3, nodes(1..=4)).unwrap();
        assert_eq!(check_drain(&map, 1), Ok(()));
        map.draining.insert(1, DrainReason::Drain);
        let refused = check_drain(&map, 2).unwrap_err();
        assert!(refused.contains("add a node first"), "{refused}");
        assert_eq!(check_drain(&map, 1), Ok(()), "draining again is harmless");
        assert!(
            check_drain(&map, 9)
                .unwrap_err()
                .contains("not in the cluster")
        );
    }

    #[test]
    fn control_voters_are_kept_and_topped_up_to_three_or_five() {
        let mut map = ClusterMap::create(8, 3, nodes(1..=4)).unwrap();
        let current: BTreeSet<NodeId> = [1, 2, 3].into();
        assert_eq!(
            control_voters(&current, &map),
            current,
            "no needless change"
        );
        map.draining.insert(2, DrainReason::Decommission);
        assert_eq!(control_voters(&current, &map), [1, 3, 4].into());
        map.nodes.extend(nodes(5..=6));
        assert_eq!(control_voters(&current, &map), [1, 3, 4, 5, 6].into());
        let small = ClusterMap::create(8, 1, nodes(1..=2)).unwrap();
        assert_eq!(control_voters(&[1].into(), &small), [1, 2].into());
    }

    #[test]
    fn a_dead_node_is_replaced_only_when_a_spare_can_take_its_replicas() {
        let mut down = BTreeMap::new();
        down.insert(2, Duration::from_secs(600));
        let after = Duration::from_secs(300);
        let three = ClusterMap::create(8, 3, nodes(1..=3)).unwrap();
        assert_eq!(dead_to_replace(&three, &down, after), None, "no spare");
        let mut four = ClusterMap::create(8, 3, nodes(1..=4)).unwrap();
        assert_eq!(dead_to_replace(&four, &down, after), Some(2));
        assert_eq!(dead_to_replace(&four, &down, Duration::ZERO), None, "off");
        down.insert(2, Duration::from_secs(10));
        assert_eq!(
            dead_to_replace(&four, &down, after),
            None,
            "not long enough"
        );
        down.insert(2, Duration::from_secs(600));
        four.draining.insert(2, DrainReason::Dead);
        down.insert(3, Duration::from_secs(600));
        assert_eq!(
            dead_to_replace(&four, &down, after),
            None,
            "one replacement at a time"
        );
    }
}
