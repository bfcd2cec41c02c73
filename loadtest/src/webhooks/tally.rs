//! The accounting of a `webhooks` run: which acknowledged messages were delivered, which were
//! delivered twice, and how long after the acknowledgement. Pure: the sink and the posters
//! record, this decides.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use uuid::Uuid;

/// A message's place: its channel and its `seq` there, as both the post's answer and the
/// delivery's body name it.
pub type Key = (Uuid, u64);

/// One well-signed delivery the sink answered 200.
#[derive(Clone, Copy, Debug)]
pub struct Arrival {
    pub key: Key,
    pub at: Instant,
}

/// What a run delivered, against what it acknowledged.
#[derive(Debug)]
pub struct Tally {
    pub acked: usize,
    /// Deliveries received, repeats included.
    pub received: usize,
    /// Acknowledged messages never delivered.
    pub missing: usize,
    /// Deliveries beyond the first of a message.
    pub duplicated: usize,
    /// Deliveries of messages this run did not acknowledge (a post that failed on the client's
    /// side but was committed).
    pub unexpected: usize,
    /// From the ack of a message to its first delivery, µs. A delivery that overtook the ack
    /// (the answer to the post is sent after the commit) counts as 0.
    pub latency_us: Histogram<u64>,
    /// From the first delivery to the last.
    pub span: Duration,
}

impl Tally {
    /// Deliveries per second from the first to the last (`received - 1` intervals).
    pub fn deliveries_per_sec(&self) -> f64 {
        let secs = self.span.as_secs_f64();
        if self.received < 2 || secs <= 0.0 {
            return 0.0;
        }
        (self.received - 1) as f64 / secs
    }
}

/// Acknowledged messages not yet delivered: what the run still waits for.
pub fn missing(acks: &HashMap<Key, Instant>, arrivals: &[Arrival]) -> usize {
    let delivered: std::collections::HashSet<Key> = arrivals.iter().map(|a| a.key).collect();
    acks.keys().filter(|key| !delivered.contains(key)).count()
}

/// Counts `arrivals` against `acks` (each message's ack time).
pub fn tally(acks: &HashMap<Key, Instant>, arrivals: &[Arrival]) -> Tally {
    let mut first: HashMap<Key, Instant> = HashMap::with_capacity(arrivals.len());
    let mut duplicated = 0;
    for arrival in arrivals {
        match first.get_mut(&arrival.key) {
            Some(earliest) => {
                duplicated += 1;
                *earliest = (*earliest).min(arrival.at);
            }
            None => {
                first.insert(arrival.key, arrival.at);
            }
        }
    }
    // Bounded (1 µs to 1 h) rather than auto-resizing: `saturating_record` does not resize, it
    // would clamp every value to the initial bound.
    let mut latency_us =
        Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds");
    let mut unexpected = 0;
    for (key, delivered_at) in &first {
        match acks.get(key) {
            Some(acked_at) => {
                let us = delivered_at
                    .saturating_duration_since(*acked_at)
                    .as_micros() as u64;
                latency_us.saturating_record(us);
            }
            None => unexpected += 1,
        }
    }
    let earliest = arrivals.iter().map(|a| a.at).min();
    let latest = arrivals.iter().map(|a| a.at).max();
    let span = match (earliest, latest) {
        (Some(earliest), Some(latest)) => latest - earliest,
        _ => Duration::ZERO,
    };
    Tally {
        acked: acks.len(),
        received: arrivals.len(),
        missing: acks.keys().filter(|key| !first.contains_key(key)).count(),
        duplicated,
        unexpected,
        latency_us,
        span,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(channel: &Uuid, seq: u64) -> Key {
        (*channel, seq)
    }

    #[test]
    fn every_ack_delivered_once_is_clean() {
        let channel = Uuid::new_v4();
        let t0 = Instant::now();
        let acks: HashMap<Key, Instant> = (1..=3).map(|seq| (key(&channel, seq), t0)).collect();
        let arrivals: Vec<Arrival> = (1..=3)
            .map(|seq| Arrival {
                key: key(&channel, seq),
                at: t0 + Duration::from_millis(10 * seq),
            })
            .collect();

        let tally = tally(&acks, &arrivals);

        assert_eq!(
            (tally.missing, tally.duplicated, tally.unexpected),
            (0, 0, 0)
        );
        assert_eq!(tally.span, Duration::from_millis(20));
        // Two intervals in 20 ms.
        assert!((tally.deliveries_per_sec() - 100.0).abs() < 1e-9);
        assert_eq!(tally.latency_us.max() / 1000, 30);
        assert_eq!(missing(&acks, &arrivals), 0);
    }

    #[test]
    fn a_lost_a_repeated_and_a_stray_delivery_are_each_counted() {
        let channel = Uuid::new_v4();
        let other = Uuid::new_v4();
        let t0 = Instant::now();
        let acks: HashMap<Key, Instant> = (1..=3).map(|seq| (key(&channel, seq), t0)).collect();
        let at = |ms| t0 + Duration::from_millis(ms);
        let arrivals = vec![
            Arrival {
                key: key(&channel, 1),
                at: at(5),
            },
            Arrival {
                key: key(&channel, 1),
                at: at(50),
            },
            Arrival {
                key: key(&channel, 2),
                at: at(7),
            },
            // Same seq in another channel: a different message.
            Arrival {
                key: key(&other, 3),
                at: at(9),
            },
        ];

        let tally = tally(&acks, &arrivals);

        assert_eq!(tally.received, 4);
        assert_eq!(tally.missing, 1, "seq 3 of the first channel never came");
        assert_eq!(tally.duplicated, 1);
        assert_eq!(tally.unexpected, 1);
        // Latency is to the first delivery of seq 1, not the repeat.
        assert_eq!(tally.latency_us.max() / 1000, 7);
        assert_eq!(missing(&acks, &arrivals), 1);
    }

    #[test]
    fn a_delivery_before_its_ack_counts_as_zero_latency() {
        let channel = Uuid::new_v4();
        let t0 = Instant::now();
        let acks = HashMap::from([(key(&channel, 1), t0 + Duration::from_millis(3))]);
        let arrivals = vec![Arrival {
            key: key(&channel, 1),
            at: t0,
        }];

        assert_eq!(tally(&acks, &arrivals).latency_us.max(), 0);
    }
}
