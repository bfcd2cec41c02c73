//! Hot paths of a message: decoding the client frame, sequencing it in the channel state machine,
//! and encoding the event frame that is fanned out.

use chorus_channel_node::StateLimits;
use chorus_channel_node::state::{ChannelsState, Command, PublishCommand};
use chorus_protocol::{ClientFrame, EventKind, MessageEvent, ServerFrame};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use uuid::Uuid;

fn frames(c: &mut Criterion) {
    let send = ClientFrame::Send {
        channel_id: Uuid::new_v4(),
        nonce: "c-0001".into(),
        text: "x".repeat(100),
        parent_seq: None,
    }
    .to_json();
    let event = ServerFrame::Message(MessageEvent::new_message(
        Uuid::new_v4(),
        42,
        Uuid::now_v7(),
        Uuid::new_v4(),
        "x".repeat(100),
        chrono::Utc::now(),
        "c-0001",
    ));
    let mut group = c.benchmark_group("frame");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode_send_100B", |b| {
        b.iter(|| ClientFrame::parse(std::hint::black_box(&send)).unwrap())
    });
    group.bench_function("encode_message_100B", |b| {
        b.iter(|| std::hint::black_box(&event).to_json())
    });
    group.finish();
}

fn state_machine(c: &mut Criterion) {
    let channel = Uuid::new_v4();
    let author = Uuid::new_v4();
    let batch: Vec<Command> = (0..1000)
        .map(|n| {
            Command::Publish(PublishCommand {
                channel_id: channel,
                author_id: author,
                nonce: format!("n{n}"),
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
        })
        .collect();
    let mut group = c.benchmark_group("state_machine");
    group.throughput(Throughput::Elements(batch.len() as u64));
    group.bench_function("apply_1000_publishes", |b| {
        b.iter_batched(
            || (ChannelsState::new(StateLimits::default()), batch.clone()),
            |(mut state, batch)| {
                for command in batch {
                    std::hint::black_box(state.apply(command));
                }
                state
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, frames, state_machine);
criterion_main!(benches);
