//! Which replica to ask: the leader of each shard as last learned, and the order to try the
//! others in when it is unknown. Pure (no sockets, no clock), so the routing rules are
//! unit-tested on their own.

use std::collections::HashMap;
use std::time::Duration;

use crate::placement::{NodeId, ShardId};

/// The leaders this router has learned, per shard.
#[derive(Clone, Debug, Default)]
pub struct LeaderCache {
    leaders: HashMap<ShardId, NodeId>,
}

impl LeaderCache {
    /// Whom to ask on `attempt` (0, 1, …): the known leader; else the replicas in turn, starting
    /// with the preferred leader (the first replica), which leads most of the time.
    pub fn candidate(&self, shard: ShardId, replicas: &[NodeId], attempt: usize) -> Option<NodeId> {
        match self.leaders.get(&shard) {
            Some(leader) if replicas.contains(leader) => Some(*leader),
            _ if replicas.is_empty() => None,
            _ => Some(replicas[attempt % replicas.len()]),
        }
    }

    /// `node` answered as the leader.
    pub fn confirm(&mut self, shard: ShardId, node: NodeId) {
        self.leaders.insert(shard, node);
    }

    /// `node` is not the leader; it named `hint` (or nobody, during an election).
    pub fn not_leader(&mut self, shard: ShardId, node: NodeId, hint: Option<NodeId>) {
        match hint {
            Some(leader) if leader != node => {
                self.leaders.insert(shard, leader);
            }
            _ => self.forget(shard, node),
        }
    }

    /// `node` did not answer: stop assuming it leads.
    pub fn forget(&mut self, shard: ShardId, node: NodeId) {
        if self.leaders.get(&shard) == Some(&node) {
            self.leaders.remove(&shard);
        }
    }

    pub fn known(&self, shard: ShardId) -> Option<NodeId> {
        self.leaders.get(&shard).copied()
    }
}

/// How long to wait before the next attempt: none after a leader hint (the hint is news),
/// exponential from `base` up to `max` otherwise, with `jitter` in [0, 1) spreading retries of
/// many callers apart. `None` once the deadline would pass.
pub fn retry_delay(
    attempt: u32,
    followed_hint: bool,
    elapsed: Duration,
    deadline: Duration,
    jitter: f64,
) -> Option<Duration> {
    const BASE: Duration = Duration::from_millis(20);
    const MAX: Duration = Duration::from_millis(500);
    let delay = if followed_hint {
        Duration::ZERO
    } else {
        let exp = BASE.saturating_mul(1 << attempt.min(10)).min(MAX);
        exp.mul_f64(0.5 + jitter / 2.0)
    };
    (elapsed + delay < deadline).then_some(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_known_leader_the_replicas_are_tried_in_turn() {
        let cache = LeaderCache::default();
        let replicas = [3, 1, 2];
        let tried: Vec<_> = (0..4)
            .map(|attempt| cache.candidate(7, &replicas, attempt).unwrap())
            .collect();
        assert_eq!(tried, vec![3, 1, 2, 3]);
        assert_eq!(cache.candidate(7, &[], 0), None);
    }

    #[test]
    fn a_hint_redirects_and_a_silent_leader_is_forgotten() {
        let mut cache = LeaderCache::default();
        let replicas = [1, 2, 3];
        cache.not_leader(5, 1, Some(2));
        assert_eq!(cache.candidate(5, &replicas, 0), Some(2));
        cache.forget(5, 3); // not the cached leader: no effect
        assert_eq!(cache.known(5), Some(2));
        cache.forget(5, 2);
        assert_eq!(cache.candidate(5, &replicas, 1), Some(2), "back to turns");
        cache.not_leader(5, 1, None);
        assert_eq!(cache.known(5), None);
    }

    #[test]
    fn a_cached_leader_that_left_the_replica_set_is_not_asked() {
        let mut cache = LeaderCache::default();
        cache.confirm(1, 9);
        assert_eq!(cache.candidate(1, &[1, 2, 3], 0), Some(1));
    }

    #[test]
    fn retries_back_off_and_stop_at_the_deadline() {
        let deadline = Duration::from_secs(5);
        assert_eq!(
            retry_delay(3, true, Duration::ZERO, deadline, 0.5),
            Some(Duration::ZERO)
        );
        let first = retry_delay(0, false, Duration::ZERO, deadline, 0.0).unwrap();
        let later = retry_delay(4, false, Duration::ZERO, deadline, 0.0).unwrap();
        assert!(first < later);
        assert!(
            retry_delay(20, false, Duration::ZERO, deadline, 0.99).unwrap()
                <= Duration::from_millis(500)
        );
        assert_eq!(
            retry_delay(0, false, Duration::from_millis(4_995), deadline, 0.5),
            None
        );
    }
}
