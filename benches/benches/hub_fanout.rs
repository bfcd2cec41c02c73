//! Fan-out of one committed event through the gateway's hub to 1, 100 and 10,000 local
//! subscribers: the frame is serialised once, then pushed (a cheap clone of the bytes) to each
//! subscriber's outbox.
//!
//! Outboxes are bounded and a full one closes its connection, so they are drained between
//! batches of fan-outs, outside the timed part: only `Hub::fan_out` is measured.

use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use chorus_cluster::{BusEvent, LocalBus};
use chorus_gateway::internals::{Hub, Outbox};
use chorus_protocol::MessageEvent;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use uuid::Uuid;

/// The gateway's default outbox capacity (`[gateway] outbox_capacity`).
const OUTBOX_CAPACITY: usize = 1024;

/// Queued items held at once across all outboxes before they are drained (bounds the memory a
/// batch takes at 10,000 subscribers).
const QUEUED_AT_ONCE: usize = 200_000;

/// Empties an outbox as its connection task would, without a runtime: its queue is never empty
/// here, so the poll is ready at once. Returns how many items it held.
fn drain(outbox: &Outbox) -> usize {
    match outbox.poll_drain(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(queue)) => queue.len(),
        Poll::Ready(Err(code)) => panic!("an outbox was closed ({code:?}): it overflowed"),
        Poll::Pending => 0,
    }
}

fn hub_fan_out(c: &mut Criterion) {
    let channel = Uuid::new_v4();
    let event = BusEvent::Message(Arc::new(MessageEvent::new_message(
        channel,
        42,
        Uuid::now_v7(),
        Uuid::new_v4(),
        "x".repeat(100),
        chrono::Utc::now(),
        "c-0001",
    )));
    let mut group = c.benchmark_group("hub_fan_out");
    for subscribers in [1usize, 100, 10_000] {
        let hub = Hub::new(Arc::new(LocalBus::new(1024)));
        let outboxes: Vec<Arc<Outbox>> = (0..subscribers)
            .map(|conn| {
                let outbox = Arc::new(Outbox::new(OUTBOX_CAPACITY));
                hub.subscribe(channel, conn as u64, outbox.clone());
                outbox
            })
            .collect();
        // Fan-outs between drains: never more than an outbox holds.
        let batch = (QUEUED_AT_ONCE / subscribers).clamp(1, OUTBOX_CAPACITY / 2) as u64;
        group.throughput(Throughput::Elements(subscribers as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(subscribers),
            &subscribers,
            |b, _| {
                b.iter_custom(|iters| {
                    let mut timed = Duration::ZERO;
                    let mut done = 0;
                    while done < iters {
                        let now = batch.min(iters - done);
                        let started = Instant::now();
                        for _ in 0..now {
                            hub.fan_out(std::hint::black_box(&event));
                        }
                        timed += started.elapsed();
                        for outbox in &outboxes {
                            let drained = drain(outbox);
                            debug_assert_eq!(drained as u64, now);
                        }
                        done += now;
                    }
                    timed
                })
            },
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = hub_fan_out
}
criterion_main!(benches);
