//! The fan-out bus's metrics (docs/OPERATIONS.md): events published, events dropped (and so left
//! to the subscribers' resync), resyncs raised, and how long a Redis publish pipeline takes.
//!
//! Handles are resolved once, so a publish costs one atomic add. Labels are closed sets.

use std::sync::LazyLock;

use metrics::{Counter, Histogram, counter, histogram};

pub(crate) struct BusMetrics {
    pub published_local: Counter,
    pub published_redis: Counter,
    pub dropped_queue_full: Counter,
    pub dropped_redis_down: Counter,
    pub resyncs_lag: Counter,
    pub resyncs_reconnect: Counter,
    pub publish_seconds: Histogram,
    pub publish_errors: Counter,
}

pub(crate) static BUS: LazyLock<BusMetrics> = LazyLock::new(|| BusMetrics {
    published_local: counter!("chorus_bus_published_total", "bus" => "local"),
    published_redis: counter!("chorus_bus_published_total", "bus" => "redis"),
    dropped_queue_full: counter!("chorus_bus_dropped_total", "reason" => "queue_full"),
    dropped_redis_down: counter!("chorus_bus_dropped_total", "reason" => "redis_down"),
    resyncs_lag: counter!("chorus_bus_resyncs_total", "reason" => "lag"),
    resyncs_reconnect: counter!("chorus_bus_resyncs_total", "reason" => "reconnect"),
    publish_seconds: histogram!("chorus_bus_publish_seconds"),
    publish_errors: counter!("chorus_bus_publish_errors_total"),
});
