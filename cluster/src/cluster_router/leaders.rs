//! Which replica to ask: the leader of each shard as last learned, the replicas to pass over
//! because they recently did not answer, and the order to try the others in. Pure (no sockets;
//! the caller passes the time), so the routing rules are unit-tested on their own.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::placement::{NodeId, ShardId};
use crate::router::RouteError;

/// How long a replica that did not answer is passed over. Long enough to cover an election
/// (its followers keep naming it as leader until they elect another), short enough that a
/// replica that was only slow is soon asked again.
pub const SUSPECT_FOR: Duration = Duration::from_millis(1_500);

/// The leaders this router has learned, per shard, and the replicas it suspects are down.
#[derive(Clone, Debug, Default)]
pub struct LeaderCache {
    leaders: HashMap<ShardId, NodeId>,
    /// Replicas that did not answer, and until when they are passed over.
    suspects: HashMap<NodeId, Instant>,
}

impl LeaderCache {
    /// Whom to ask on `attempt` (0, 1, …): the known leader; else the replicas not under
    /// suspicion in turn, starting with the preferred leader (the first replica). When every
    /// replica is suspect, all of them are tried in turn: one may be back.
    pub fn candidate(
        &self,
        shard: ShardId,
        replicas: &[NodeId],
        attempt: usize,
        now: Instant,
    ) -> Option<NodeId> {
        if let Some(leader) = self.leaders.get(&shard)
            && replicas.contains(leader)
            && !self.is_suspect(*leader, now)
        {
            return Some(*leader);
        }
        let live: Vec<NodeId> = replicas
            .iter()
            .copied()
            .filter(|node| !self.is_suspect(*node, now))
            .collect();
        let pool = if live.is_empty() { replicas } else { &live };
        (!pool.is_empty()).then(|| pool[attempt % pool.len()])
    }

    /// `node` answered as the leader.
    pub fn confirm(&mut self, shard: ShardId, node: NodeId) {
        self.suspects.remove(&node);
        self.leaders.insert(shard, node);
    }

    /// `node` answered that it is not the leader; it named `hint` (or nobody, during an
    /// election). Returns whether the hint is worth following at once: a hint naming a suspect is
    /// the followers' memory of a leader that has died and is ignored.
    pub fn not_leader(
        &mut self,
        shard: ShardId,
        node: NodeId,
        hint: Option<NodeId>,
        now: Instant,
    ) -> bool {
        self.suspects.remove(&node);
        match hint {
            Some(leader) if leader != node && !self.is_suspect(leader, now) => {
                self.leaders.insert(shard, leader);
                true
            }
            _ => {
                self.leaders.remove(&shard);
                false
            }
        }
    }

    /// `node` did not answer (refused, timed out, connection lost): stop assuming it leads
    /// anything and pass it over for [`SUSPECT_FOR`].
    pub fn unreachable(&mut self, node: NodeId, now: Instant) {
        self.suspects.insert(node, now + SUSPECT_FOR);
        self.leaders.retain(|_, leader| *leader != node);
    }

    /// `node` answered something other than a routing answer (an error of the channel service):
    /// it is up, but do not assume it leads `shard`.
    pub fn forget(&mut self, shard: ShardId, node: NodeId) {
        if self.leaders.get(&shard) == Some(&node) {
            self.leaders.remove(&shard);
        }
    }

    pub fn known(&self, shard: ShardId) -> Option<NodeId> {
        self.leaders.get(&shard).copied()
    }

    fn is_suspect(&self, node: NodeId, now: Instant) -> bool {
        self.suspects.get(&node).is_some_and(|until| now < *until)
    }
}

/// Whether a submit's own failure, inside a batch the leader answered, should be sent again: the
/// replica stopped leading before it finished (`NotLeader`) or could not finish in time
/// (`Unavailable`). Retrying is safe because the nonce travels with it. Overload, refusal and
/// internal errors go back to the client.
pub fn worth_retrying(err: &RouteError) -> bool {
    matches!(
        err,
        RouteError::NotLeader { .. } | RouteError::Unavailable(_)
    )
}

/// How long to wait before the next attempt: none after a leader hint (the hint is news),
/// exponential from 10 ms up to 50 ms otherwise, with `jitter` in [0, 1) spreading retries of
/// many callers apart. `None` once the deadline would pass. While a shard elects, its followers
/// are asked every 25–50 ms: the first answer naming the new leader ends the pause, so a longer
/// wait would only add to it (one small call per shard per wait is cheap beside an election).
pub fn retry_delay(
    attempt: u32,
    followed_hint: bool,
    elapsed: Duration,
    deadline: Duration,
    jitter: f64,
) -> Option<Duration> {
    const BASE: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_millis(50);
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
        let now = Instant::now();
        let replicas = [3, 1, 2];
        let tried: Vec<_> = (0..4)
            .map(|attempt| cache.candidate(7, &replicas, attempt, now).unwrap())
            .collect();
        assert_eq!(tried, vec![3, 1, 2, 3]);
        assert_eq!(cache.candidate(7, &[], 0, now), None);
    }

    #[test]
    fn a_hint_redirects_and_a_leader_that_says_no_is_forgotten() {
        let mut cache = LeaderCache::default();
        let now = Instant::now();
        let replicas = [1, 2, 3];
        assert!(cache.not_leader(5, 1, Some(2), now));
        assert_eq!(cache.candidate(5, &replicas, 0, now), Some(2));
        cache.forget(5, 3); // not the cached leader: no effect
        assert_eq!(cache.known(5), Some(2));
        assert!(
            !cache.not_leader(5, 2, None, now),
            "an election: nobody to follow"
        );
        assert_eq!(cache.known(5), None);
        assert_eq!(
            cache.candidate(5, &replicas, 1, now),
            Some(2),
            "back to turns"
        );
    }

    #[test]
    fn a_cached_leader_that_left_the_replica_set_is_not_asked() {
        let mut cache = LeaderCache::default();
        let now = Instant::now();
        cache.confirm(1, 9);
        assert_eq!(cache.candidate(1, &[1, 2, 3], 0, now), Some(1));
    }

    #[test]
    fn a_dead_leader_is_passed_over_and_hints_naming_it_are_ignored() {
        let mut cache = LeaderCache::default();
        let now = Instant::now();
        let replicas = [3, 1, 2];
        cache.confirm(4, 3);
        cache.confirm(8, 3);
        cache.unreachable(3, now);
        assert_eq!(cache.known(4), None, "it led nothing we can count on");
        assert_eq!(cache.known(8), None);
        // The followers still name the dead leader until they elect another.
        let tried: Vec<_> = (0..4)
            .map(|attempt| cache.candidate(4, &replicas, attempt, now).unwrap())
            .collect();
        assert_eq!(tried, vec![1, 2, 1, 2]);
        assert!(!cache.not_leader(4, 1, Some(3), now), "stale hint");
        assert_eq!(cache.known(4), None);
        // Once they have elected, their hint is followed.
        assert!(cache.not_leader(4, 1, Some(2), now));
        assert_eq!(cache.candidate(4, &replicas, 0, now), Some(2));
    }

    #[test]
    fn suspicion_ends_with_time_or_an_answer() {
        let mut cache = LeaderCache::default();
        let now = Instant::now();
        let replicas = [3, 1, 2];
        cache.unreachable(3, now);
        assert_eq!(cache.candidate(9, &replicas, 0, now), Some(1));
        let later = now + SUSPECT_FOR;
        assert_eq!(cache.candidate(9, &replicas, 0, later), Some(3));
        cache.unreachable(1, now);
        cache.confirm(9, 1);
        assert_eq!(
            cache.candidate(9, &replicas, 0, now),
            Some(1),
            "it answered"
        );
    }

    #[test]
    fn when_every_replica_is_suspect_all_are_tried() {
        let mut cache = LeaderCache::default();
        let now = Instant::now();
        for node in [1, 2, 3] {
            cache.unreachable(node, now);
        }
        let tried: Vec<_> = (0..3)
            .map(|attempt| cache.candidate(2, &[1, 2, 3], attempt, now).unwrap())
            .collect();
        assert_eq!(tried, vec![1, 2, 3]);
    }

    #[test]
    fn only_leadership_and_availability_failures_are_retried() {
        assert!(worth_retrying(&RouteError::NotLeader { leader_hint: None }));
        assert!(worth_retrying(&RouteError::Unavailable(
            "raft stopped".into()
        )));
        assert!(!worth_retrying(&RouteError::Overloaded));
        assert!(!worth_retrying(&RouteError::Rejected("no parent".into())));
        assert!(!worth_retrying(&RouteError::Internal("bug".into())));
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
                <= Duration::from_millis(50)
        );
        assert_eq!(
            retry_delay(0, false, Duration::from_millis(4_995), deadline, 0.5),
            None
        );
    }
}
