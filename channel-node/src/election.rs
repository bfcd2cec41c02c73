//! When a shard replica of a cluster stands for election: the decision, without I/O.
//!
//! openraft 0.9 lets every follower call an election on its own random timer and has no pre-vote.
//! When a leader dies, the surviving followers' logs often differ by the dead leader's last
//! append; if the one with the shorter log stands first, the other refuses it, and a second round
//! costs another timeout (the slow failovers in docs/BENCHMARKS.md). So a cluster's shard
//! replicas do not use openraft's timer (`enable_elect` is off): each follower asks its group's
//! other voters how things stand (a *probe*, answered from local state) and only the replica all
//! of them would vote for stands, at once. The rule, given this replica's view and the replies:
//!
//! 1. It has heard from a leader within `suspect_after` → wait.
//! 2. Some voter that answered leads, or has heard from a leader within `suspect_after` → wait: the
//!    leader lives (this is what openraft 0.9's missing pre-vote would do, and it keeps a loaded
//!    but live leader in place).
//! 3. Fewer than a quorum of voters (this one included) answered and suspect → wait: no election
//!    could be won.
//! 4. Of the voters that suspect, the one with the greatest last log id stands (every voter would
//!    grant it), ties broken by [`tie_rank`], which spreads the leaderships of equal logs over the
//!    nodes shard by shard. If that is this replica → elect; otherwise wait for it.
//!
//! Every replica that suspects computes the same winner from the same replies, so one election
//! round usually suffices. The runtime (`election_guard.rs`) still elects on its own after a
//! randomized fallback time, so a disagreement or a lost reply can delay but never stall a shard.

use std::time::Duration;

use openraft::LogId;
use serde::{Deserialize, Serialize};

use crate::raft_types::NodeId;

/// What a voter says about its replica of a shard, answered from local state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReply {
    /// Its replica leads the group.
    pub leading: bool,
    /// Milliseconds since it last heard from a leader (an AppendEntries it accepted); `None` if it
    /// never has since it started.
    pub heard_leader_ms_ago: Option<u64>,
    /// The last entry of its log: a candidate with a smaller one would not get its vote.
    pub last_log: Option<LogId<NodeId>>,
}

/// This replica's own view.
#[derive(Clone, Copy, Debug)]
pub struct OwnView {
    pub node: NodeId,
    pub heard_leader_ago: Option<Duration>,
    pub last_log: Option<LogId<NodeId>>,
}

/// What the rule says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// This replica, or a voter that answered, still hears a leader (or is one).
    LeaderAlive,
    /// Too few voters answered for any election to be won.
    NoQuorum,
    /// Another voter should stand (it has the greater log, or wins the tie).
    Defer(NodeId),
    /// This replica should stand now.
    Elect,
}

fn suspects(heard_ago: Option<Duration>, suspect_after: Duration) -> bool {
    heard_ago.is_none_or(|ago| ago >= suspect_after)
}

/// A deterministic order among voters with equal logs, different for each group, so that the
/// shards a dead node led are not all taken over by the same survivor. (SplitMix64's finalizer:
/// every node computes the same value, whatever its platform.)
pub fn tie_rank(group: u64, node: NodeId) -> u64 {
    let mut z = group ^ node.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Applies the rule of the module doc. `voters` is the number of voters in the group (this one
/// included); `replies` holds one entry per other voter, `None` for one that did not answer.
pub fn decide(
    me: OwnView,
    replies: &[(NodeId, Option<ProbeReply>)],
    voters: usize,
    suspect_after: Duration,
    group: u64,
) -> Decision {
    if !suspects(me.heard_leader_ago, suspect_after) {
        return Decision::LeaderAlive;
    }
    let answered: Vec<(NodeId, ProbeReply)> = replies
        .iter()
        .filter_map(|(node, reply)| reply.map(|reply| (*node, reply)))
        .collect();
    let leader_alive = answered.iter().any(|(_, reply)| {
        reply.leading
            || !suspects(
                reply.heard_leader_ms_ago.map(Duration::from_millis),
                suspect_after,
            )
    });
    if leader_alive {
        return Decision::LeaderAlive;
    }
    if answered.len() + 1 < voters / 2 + 1 {
        return Decision::NoQuorum;
    }
    let key = |node: NodeId, last_log: Option<LogId<NodeId>>| (last_log, tie_rank(group, node));
    let best = answered
        .iter()
        .map(|(node, reply)| (key(*node, reply.last_log), *node))
        .chain(std::iter::once((key(me.node, me.last_log), me.node)))
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, node)| node)
        .unwrap_or(me.node);
    if best == me.node {
        Decision::Elect
    } else {
        Decision::Defer(best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::CommittedLeaderId;

    const SUSPECT: Duration = Duration::from_millis(300);
    const GROUP: u64 = 7;

    fn log(term: u64, index: u64) -> Option<LogId<NodeId>> {
        Some(LogId::new(CommittedLeaderId::new(term, 1), index))
    }

    fn me(node: NodeId, heard_ms: u64, last_log: Option<LogId<NodeId>>) -> OwnView {
        OwnView {
            node,
            heard_leader_ago: Some(Duration::from_millis(heard_ms)),
            last_log,
        }
    }

    fn follower(heard_ms: u64, last_log: Option<LogId<NodeId>>) -> Option<ProbeReply> {
        Some(ProbeReply {
            leading: false,
            heard_leader_ms_ago: Some(heard_ms),
            last_log,
        })
    }

    #[test]
    fn a_replica_that_hears_its_leader_never_stands() {
        let decision = decide(
            me(2, 100, log(1, 50)),
            &[(1, None), (3, None)],
            3,
            SUSPECT,
            GROUP,
        );
        assert_eq!(decision, Decision::LeaderAlive);
    }

    #[test]
    fn the_survivor_with_the_longer_log_stands_and_the_other_waits_for_it() {
        // Node 1 led and died; node 3 got its last append, node 2 did not.
        let replies_to_2 = [(1, None), (3, follower(320, log(1, 51)))];
        let replies_to_3 = [(1, None), (2, follower(330, log(1, 50)))];
        assert_eq!(
            decide(me(2, 330, log(1, 50)), &replies_to_2, 3, SUSPECT, GROUP),
            Decision::Defer(3)
        );
        assert_eq!(
            decide(me(3, 320, log(1, 51)), &replies_to_3, 3, SUSPECT, GROUP),
            Decision::Elect
        );
    }

    #[test]
    fn equal_logs_agree_on_one_winner_and_the_winner_varies_by_group() {
        let winners: Vec<NodeId> = (0..32u64)
            .map(|group| {
                let two = decide(
                    me(2, 400, log(1, 9)),
                    &[(1, None), (3, follower(400, log(1, 9)))],
                    3,
                    SUSPECT,
                    group,
                );
                let three = decide(
                    me(3, 400, log(1, 9)),
                    &[(1, None), (2, follower(400, log(1, 9)))],
                    3,
                    SUSPECT,
                    group,
                );
                match (two, three) {
                    (Decision::Elect, Decision::Defer(2)) => 2,
                    (Decision::Defer(3), Decision::Elect) => 3,
                    other => panic!("group {group}: the two disagree: {other:?}"),
                }
            })
            .collect();
        assert!(winners.contains(&2) && winners.contains(&3), "{winners:?}");
    }

    #[test]
    fn a_live_leader_or_a_voter_that_still_hears_one_keeps_everyone_waiting() {
        let leader = Some(ProbeReply {
            leading: true,
            heard_leader_ms_ago: None,
            last_log: log(1, 60),
        });
        assert_eq!(
            decide(
                me(2, 900, log(1, 60)),
                &[(1, leader), (3, None)],
                3,
                SUSPECT,
                GROUP
            ),
            Decision::LeaderAlive,
            "a leader that is only slow to send heartbeats keeps its place"
        );
        assert_eq!(
            decide(
                me(2, 900, log(1, 60)),
                &[(1, None), (3, follower(40, log(1, 60)))],
                3,
                SUSPECT,
                GROUP
            ),
            Decision::LeaderAlive,
            "a replica cut off from a live leader does not unseat it"
        );
    }

    #[test]
    fn without_a_quorum_that_answers_nobody_stands() {
        assert_eq!(
            decide(
                me(2, 900, log(1, 60)),
                &[(1, None), (3, None)],
                3,
                SUSPECT,
                GROUP
            ),
            Decision::NoQuorum
        );
        let five = [
            (1, None),
            (3, follower(900, log(1, 1))),
            (4, None),
            (5, None),
        ];
        assert_eq!(
            decide(me(2, 900, log(1, 60)), &five, 5, SUSPECT, GROUP),
            Decision::NoQuorum
        );
    }

    #[test]
    fn a_replica_that_never_heard_a_leader_suspects() {
        let fresh = OwnView {
            node: 2,
            heard_leader_ago: None,
            last_log: log(1, 5),
        };
        let replies = [(3, follower(1_000, log(1, 4)))];
        assert_eq!(decide(fresh, &replies, 3, SUSPECT, GROUP), Decision::Elect);
    }

    #[test]
    fn tie_ranks_are_stable_numbers() {
        assert_eq!(tie_rank(1, 2), tie_rank(1, 2));
        assert_ne!(tie_rank(1, 2), tie_rank(1, 3));
        assert_ne!(tie_rank(1, 2), tie_rank(2, 2));
    }
}
