//! Latency samples over a run: one overall HDR histogram and one per second, for the summary
//! and for the time series that `--plot` draws.
//!
//! Hundreds of tasks record at once, so each records into its own small [`Samples`] buffer and
//! takes the shared lock once per batch: the lock is taken a few thousand times a second instead
//! of once per delivery, and no task keeps a histogram per second of its own.

use std::sync::{Arc, Mutex};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// Samples buffered by a task before it takes the lock.
const BATCH: usize = 256;

/// All samples of a run.
pub struct Timeline {
    pub overall: Histogram<u64>,
    /// One histogram per second since the run's start, by when the sample was taken.
    seconds: Vec<Histogram<u64>>,
}

/// A task's handle: buffers samples and adds them to the shared timeline in batches (and when
/// dropped).
pub struct Samples {
    shared: Arc<Mutex<Timeline>>,
    buffer: Vec<(u64, u64)>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            overall: histogram(),
            seconds: Vec::new(),
        }
    }
}

/// A histogram of microseconds with 3 significant digits that grows as needed.
pub fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits is valid")
}

impl Timeline {
    pub fn shared() -> Arc<Mutex<Timeline>> {
        Arc::new(Mutex::new(Timeline::default()))
    }

    /// One sample: `value` µs, taken `at` µs after the run's start.
    pub fn record(&mut self, at: u64, value: u64) {
        let second = (at / 1_000_000) as usize;
        if self.seconds.len() <= second {
            self.seconds.resize_with(second + 1, histogram);
        }
        // Auto-resizing histograms take any value a u64 holds (`saturating_record` would not
        // resize: it clamps to the current range, which hides the tail).
        self.overall.record(value).ok();
        self.seconds[second].record(value).ok();
    }

    /// Per second: how many samples (`count`, the throughput) and their percentiles in ms.
    pub fn series(&self) -> Value {
        let ms = |v: u64| v as f64 / 1000.0;
        Value::Array(
            self.seconds
                .iter()
                .enumerate()
                .map(|(second, h)| {
                    json!({
                        "second": second,
                        "count": h.len(),
                        "p50_ms": ms(h.value_at_quantile(0.50)),
                        "p90_ms": ms(h.value_at_quantile(0.90)),
                        "p99_ms": ms(h.value_at_quantile(0.99)),
                        "max_ms": ms(h.max()),
                    })
                })
                .collect(),
        )
    }
}

impl Samples {
    pub fn new(shared: &Arc<Mutex<Timeline>>) -> Self {
        Samples {
            shared: shared.clone(),
            buffer: Vec::with_capacity(BATCH),
        }
    }

    pub fn record(&mut self, at: u64, value: u64) {
        self.buffer.push((at, value));
        if self.buffer.len() >= BATCH {
            self.flush();
        }
    }

    pub fn flush(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let mut timeline = self.shared.lock().expect("timeline lock");
        for (at, value) in self.buffer.drain(..) {
            timeline.record(at, value);
        }
    }
}

impl Drop for Samples {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_land_in_their_second_and_overall() {
        let shared = Timeline::shared();
        {
            let mut samples = Samples::new(&shared);
            samples.record(100, 1_000);
            samples.record(2_500_000, 9_000);
        }
        let timeline = shared.lock().unwrap();
        assert_eq!(timeline.overall.len(), 2);
        let series = timeline.series();
        assert_eq!(series.as_array().unwrap().len(), 3);
        assert_eq!(series[0]["count"], 1);
        assert_eq!(series[1]["count"], 0);
        assert_eq!(series[2]["count"], 1);
    }
}
