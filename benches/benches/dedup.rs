//! Nonce deduplication in the channel state machine, at a realistic table size: 100 channels,
//! each with its full dedup window of (author, nonce) pairs (`StateLimits::default()`, 1,024).
//!
//! The table is private to `ChannelsState`, so it is reached the way a retry reaches it: applying
//! a `PublishCommand`. A hit (a repeated nonce) answers the original and changes nothing; a miss
//! sequences a new message — the lookup, then the publish itself, including the eviction of the
//! oldest nonce that a full window makes.

use std::time::Duration;

use chorus_channel_node::StateLimits;
use chorus_channel_node::state::{ChannelsState, Command, Outcome, PublishCommand};
use chorus_protocol::EventKind;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use uuid::Uuid;

const CHANNELS: usize = 100;
const AUTHORS_PER_CHANNEL: usize = 16;

fn publish(channel: Uuid, author: Uuid, nonce: String) -> Command {
    Command::Publish(PublishCommand {
        channel_id: channel,
        author_id: author,
        nonce,
        text: "x".repeat(100),
        message_id: Uuid::now_v7(),
        proposed_at: chrono::Utc::now(),
        kind: EventKind::Message,
        target_seq: None,
        parent_seq: None,
        emoji: None,
        mentions: Vec::new(),
        automatic: false,
    })
}

fn dedup(c: &mut Criterion) {
    let limits = StateLimits::default();
    let mut state = ChannelsState::new(limits);
    let channels: Vec<Uuid> = (0..CHANNELS).map(|_| Uuid::new_v4()).collect();
    let authors: Vec<Uuid> = (0..AUTHORS_PER_CHANNEL).map(|_| Uuid::new_v4()).collect();
    for channel in &channels {
        for n in 0..limits.dedup_window {
            let author = authors[n % authors.len()];
            let outcome = state.apply(publish(*channel, author, format!("c-{n:06}")));
            assert!(matches!(outcome, Outcome::Published(_)));
        }
    }
    // A retry of a message in the middle of its channel's window.
    let target = channels[CHANNELS / 2];
    let middle = limits.dedup_window / 2;
    let retry = publish(
        target,
        authors[middle % authors.len()],
        format!("c-{middle:06}"),
    );

    let mut group = c.benchmark_group("nonce_dedup");
    group.throughput(Throughput::Elements(1));
    group.bench_function("hit_repeated_nonce", |b| {
        b.iter_batched(
            || retry.clone(),
            |command| {
                let outcome = state.apply(command);
                debug_assert!(matches!(outcome, Outcome::Duplicate { .. }));
                outcome
            },
            BatchSize::SmallInput,
        )
    });
    let mut fresh = 0u64;
    group.bench_function("miss_new_nonce_publishes", |b| {
        b.iter_batched(
            || {
                fresh += 1;
                publish(target, authors[0], format!("fresh-{fresh}"))
            },
            |command| {
                let outcome = state.apply(command);
                debug_assert!(matches!(outcome, Outcome::Published(_)));
                outcome
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = dedup
}
criterion_main!(benches);
