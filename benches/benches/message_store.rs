//! Appending batches of 1, 10 and 100 events to the embedded message store (redb), in a temporary
//! directory, through the `MessageStore` trait as its callers use it.
//!
//! `append` commits with an fsync: it measures the disk more than the code, and a batch of 100
//! costs about what a batch of 1 does. `append_replayable` — what the channel service writes with
//! (the Raft log already holds the entries) — commits without one; its cost is the code's.

use std::time::Duration;

use chorus_core::{MessageStore, RedbMessageStore};
use chorus_protocol::MessageEvent;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use uuid::Uuid;

/// `count` new events of one channel, from `next_seq` on.
fn events(channel: Uuid, next_seq: &mut u64, count: usize) -> Vec<MessageEvent> {
    let author = Uuid::new_v4();
    (0..count)
        .map(|n| {
            *next_seq += 1;
            MessageEvent::new_message(
                channel,
                *next_seq,
                Uuid::now_v7(),
                author,
                "x".repeat(100),
                chrono::Utc::now(),
                format!("c-{n}"),
            )
        })
        .collect()
}

fn append(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = RedbMessageStore::open(&dir.path().join("messages.redb")).expect("open store");
    let channel = Uuid::new_v4();
    let mut next_seq = 0;

    let mut group = c.benchmark_group("redb_append_fsync");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(3));
    for batch in [1usize, 10, 100] {
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, &batch| {
            b.iter_batched(
                || events(channel, &mut next_seq, batch),
                |events| runtime.block_on(store.append(&events)).expect("append"),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();

    let mut group = c.benchmark_group("redb_append_replayable");
    for batch in [1usize, 10, 100] {
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, &batch| {
            b.iter_batched(
                || events(channel, &mut next_seq, batch),
                |events| {
                    runtime
                        .block_on(store.append_replayable(&events))
                        .expect("append")
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = append
}
criterion_main!(benches);
