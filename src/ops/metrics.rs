//! The process's Prometheus recorder: installed once, before any role starts, and rendered by
//! `GET /metrics` on the ops listener (`ops/mod.rs`).
//!
//! Each crate defines its own metrics next to the code that records them (`gateway/src/metrics.rs`,
//! `cluster/src/bus_metrics.rs`, `channel-node/src/raft_metrics.rs`, `api/src/request_log.rs`,
//! `core/src/messages/instrumented.rs`) and resolves its handles on first use, which is after
//! [`install`]. docs/OPERATIONS.md lists every series; a test checks that each series a node
//! exports after traffic is documented there.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Bucket bounds of every `*_seconds` histogram: 0.5 ms to 10 s.
const SECONDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Bucket bounds of the count histograms (events per Raft entry, items per outbox drain).
const COUNTS: [f64; 11] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// How often histograms fold their recent samples (the exporter's upkeep; scraping does it too).
const UPKEEP: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the recorder (once per process) and returns the handle that renders it.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_events".into()), &COUNTS))
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_items".into()), &COUNTS))
                .expect("bucket bounds are valid constants");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                // Another recorder owns the process (an embedding program): /metrics stays empty.
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP);
                        upkeep.run_upkeep();
                    }
                })
                .expect("spawn the metrics upkeep thread");
            handle
        })
        .clone()
}
