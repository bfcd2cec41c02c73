//! Admission control: how many submits a shard leader takes in before it refuses more.
//!
//! A fixed cap on submits in flight either refuses a burst the shard could have absorbed (cap too
//! low) or, offered more than the shard can commit, lets a queue grow until every acknowledgement
//! waits seconds (cap too high: at twice its capacity a shard with a cap of 50,000 acknowledged
//! after 12 s at p99). So the cap follows the shard's latency, the way TCP's window follows its
//! round-trip time (additive increase, multiplicative decrease, as in Netflix's
//! concurrency-limits `AIMDLimit`): while batches commit within [`AdmissionConfig::target`], a
//! batch that found the cap half used raises it by the batch's size; a batch slower than the
//! target lowers it by a quarter, at most once per target interval, so a slow batch already in
//! flight does not lower it again for the same congestion. Submits beyond the cap are refused at
//! once with `Overloaded` — the client is told to retry (same nonce) rather than kept waiting —
//! so in overload a shard keeps about `throughput × target` in flight and what it acknowledges
//! is acknowledged within about the target.
//!
//! Pure: time is passed in, the caller holds it behind a lock (`shard.rs`).

use std::time::{Duration, Instant};

/// Bounds and goal of a shard's admission limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdmissionConfig {
    /// Commit latency (admission → outcome) above which the limit shrinks.
    pub target: Duration,
    /// The limit never goes below this: a burst of this many is always admitted.
    pub min_limit: usize,
    /// Nor above this: the memory a shard's pending submits may take.
    pub max_limit: usize,
}

impl AdmissionConfig {
    /// The default of a cluster's shards and of the embedded node: 250 ms keeps an overloaded
    /// shard's acknowledgements near a quarter of a second while leaving several fsync and
    /// replication rounds of slack at normal load (tens of milliseconds each).
    pub const DEFAULT: AdmissionConfig = AdmissionConfig {
        target: Duration::from_millis(250),
        min_limit: 256,
        max_limit: 50_000,
    };

    /// The limit a shard starts with: one full router batch (1,024 submits) and then some, so a
    /// fresh leader takes a burst; the limit adapts from there.
    fn initial_limit(&self) -> usize {
        2_048.clamp(self.min_limit, self.max_limit.max(self.min_limit))
    }
}

/// A shard's current limit and the submits it counts against it.
#[derive(Debug)]
pub struct AdmissionLimit {
    config: AdmissionConfig,
    limit: usize,
    in_flight: usize,
    last_decrease: Option<Instant>,
}

impl AdmissionLimit {
    pub fn new(config: AdmissionConfig) -> Self {
        AdmissionLimit {
            limit: config.initial_limit(),
            config,
            in_flight: 0,
            last_decrease: None,
        }
    }

    /// Takes one submit in if the limit allows it.
    pub fn try_admit(&mut self) -> bool {
        if self.in_flight >= self.limit {
            return false;
        }
        self.in_flight += 1;
        true
    }

    /// Submits that have their outcome (committed, refused or failed) leave the count.
    pub fn release(&mut self, submits: usize) {
        self.in_flight = self.in_flight.saturating_sub(submits);
    }

    /// Adapts the limit to a batch of `events` that took `latency` from the admission of its
    /// oldest submit to its outcome. Call before releasing the batch's submits.
    pub fn on_batch(&mut self, events: usize, latency: Duration, now: Instant) {
        if latency > self.config.target {
            let decreased_lately = self
                .last_decrease
                .is_some_and(|at| now.saturating_duration_since(at) < self.config.target);
            if !decreased_lately {
                self.limit = (self.limit - self.limit / 4).max(self.config.min_limit);
                self.last_decrease = Some(now);
            }
        } else if self.in_flight.saturating_mul(2) >= self.limit {
            self.limit =
                (self.limit + events).min(self.config.max_limit.max(self.config.min_limit));
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: AdmissionConfig = AdmissionConfig {
        target: Duration::from_millis(250),
        min_limit: 10,
        max_limit: 1_000,
    };

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Admits `n` submits, returning how many were taken in.
    fn admit(limit: &mut AdmissionLimit, n: usize) -> usize {
        (0..n).filter(|_| limit.try_admit()).count()
    }

    #[test]
    fn admits_up_to_the_limit_and_refuses_beyond_it() {
        let mut limit = AdmissionLimit::new(CONFIG);
        assert_eq!(
            limit.limit(),
            1_000,
            "the initial limit is clamped to the maximum"
        );
        assert_eq!(admit(&mut limit, 1_200), 1_000);
        assert!(!limit.try_admit());
        limit.release(1);
        assert!(limit.try_admit(), "a released place is free again");
    }

    #[test]
    fn a_slow_batch_shrinks_the_limit_by_a_quarter_once_per_target_interval() {
        let mut limit = AdmissionLimit::new(CONFIG);
        let t0 = Instant::now();
        limit.on_batch(100, ms(400), t0);
        assert_eq!(limit.limit(), 750);
        // The next slow batch was already in flight during the same congestion.
        limit.on_batch(100, ms(400), t0 + ms(100));
        assert_eq!(limit.limit(), 750);
        limit.on_batch(100, ms(400), t0 + ms(250));
        assert_eq!(limit.limit(), 563);
    }

    #[test]
    fn the_limit_never_drops_below_its_minimum() {
        let mut limit = AdmissionLimit::new(CONFIG);
        let t0 = Instant::now();
        for round in 0..100 {
            limit.on_batch(1, ms(1_000), t0 + ms(300) * round);
        }
        assert_eq!(limit.limit(), 10);
        assert_eq!(admit(&mut limit, 20), 10);
    }

    #[test]
    fn fast_batches_raise_a_limit_in_use_by_their_size_up_to_the_maximum() {
        let mut limit = AdmissionLimit::new(CONFIG);
        let t0 = Instant::now();
        limit.on_batch(1, ms(1_000), t0);
        limit.on_batch(1, ms(1_000), t0 + ms(300));
        assert_eq!(limit.limit(), 563);
        admit(&mut limit, 500);
        limit.on_batch(128, ms(20), t0 + ms(400));
        assert_eq!(limit.limit(), 691);
        for _ in 0..10 {
            limit.on_batch(128, ms(20), t0 + ms(500));
        }
        assert_eq!(limit.limit(), 1_000);
    }

    #[test]
    fn fast_batches_leave_an_idle_limit_alone() {
        // Raising a limit nobody comes near would let a later burst queue past the target.
        let mut limit = AdmissionLimit::new(CONFIG);
        limit.on_batch(1, ms(1_000), Instant::now());
        admit(&mut limit, 10);
        limit.on_batch(10, ms(5), Instant::now());
        assert_eq!(limit.limit(), 750);
    }

    #[test]
    fn the_defaults_start_above_one_router_batch() {
        let limit = AdmissionLimit::new(AdmissionConfig::DEFAULT);
        assert_eq!(limit.limit(), 2_048);
        assert_eq!(limit.in_flight, 0);
    }
}
