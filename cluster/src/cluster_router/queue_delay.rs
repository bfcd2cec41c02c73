//! When a shard's router queue is standing — offered more than the shard commits — so that new
//! submits are refused (`Overloaded`, with a time to retry) instead of waiting seconds for an ack.
//!
//! The test is CoDel's (Nichols and Jacobson, "Controlling Queue Delay", 2012): a queue is bad
//! when the time its items wait stays above a target for a whole interval — a burst that drains
//! is not refused, a queue that keeps its length is. CoDel drops packets at the head; a chat
//! client's send must not vanish, so the router refuses at the tail, before the send is queued,
//! and the client retries after `retry_after_ms`.
//!
//! Only waits behind a leader that answered are counted: a batch that had to find a new leader
//! (a failover) held its queue for reasons load shedding cannot help, and the clients of a
//! failover are promised a pause with their sends retried, not refusals
//! ([`QueueDelay::forgive`]).

use std::time::{Duration, Instant};

/// How long a submit may wait in its shard's router queue before the queue counts as too slow.
/// An unloaded shard's submits wait one commit (milliseconds); the cluster's acks at its
/// sustainable rate have p99 ~0.2 s (docs/BENCHMARKS.md).
pub const TARGET: Duration = Duration::from_millis(250);
/// How long the waits must stay above [`TARGET`] before submits are refused.
pub const INTERVAL: Duration = Duration::from_millis(500);

/// The state of one shard's queue, fed the wait of the oldest submit of every batch it sends.
#[derive(Debug, Default)]
pub struct QueueDelay {
    /// Since when every observed wait has been above [`TARGET`].
    above_since: Option<Instant>,
    standing: bool,
}

impl QueueDelay {
    /// The oldest submit of a batch about to be sent had waited `waited`.
    pub fn observe(&mut self, waited: Duration, now: Instant) {
        if waited < TARGET {
            self.forgive();
            return;
        }
        let since = *self.above_since.get_or_insert(now);
        self.standing = now.duration_since(since) >= INTERVAL;
    }

    /// The queue emptied, or its wait had another cause (a leader change): start over.
    pub fn forgive(&mut self) {
        self.above_since = None;
        self.standing = false;
    }

    /// Whether a new submit may join the queue.
    pub fn admits(&self) -> bool {
        !self.standing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn short_waits_never_refuse() {
        let mut queue = QueueDelay::default();
        let start = Instant::now();
        for i in 0..100 {
            queue.observe(TARGET - MS, start + i * 10 * MS);
            assert!(queue.admits());
        }
    }

    #[test]
    fn a_burst_that_drains_within_the_interval_is_not_refused() {
        let mut queue = QueueDelay::default();
        let start = Instant::now();
        queue.observe(TARGET * 3, start);
        queue.observe(TARGET * 2, start + INTERVAL - MS);
        assert!(
            queue.admits(),
            "above the target, but not for a whole interval"
        );
        queue.observe(TARGET / 10, start + INTERVAL + MS);
        queue.observe(TARGET * 2, start + INTERVAL * 2);
        assert!(queue.admits(), "a short wait started the interval over");
    }

    #[test]
    fn a_standing_queue_refuses_until_a_wait_is_short_again() {
        let mut queue = QueueDelay::default();
        let start = Instant::now();
        queue.observe(TARGET + MS, start);
        queue.observe(TARGET + MS, start + INTERVAL);
        assert!(!queue.admits());
        queue.observe(TARGET * 4, start + INTERVAL * 2);
        assert!(!queue.admits());
        queue.observe(TARGET - MS, start + INTERVAL * 3);
        assert!(queue.admits());
    }

    #[test]
    fn a_failover_or_an_empty_queue_is_forgiven() {
        let mut queue = QueueDelay::default();
        let start = Instant::now();
        queue.observe(TARGET * 2, start);
        queue.observe(TARGET * 2, start + INTERVAL);
        assert!(!queue.admits());
        queue.forgive();
        assert!(queue.admits());
        queue.observe(TARGET * 2, start + INTERVAL * 2);
        assert!(
            queue.admits(),
            "the interval starts again after a forgiven wait"
        );
    }
}
