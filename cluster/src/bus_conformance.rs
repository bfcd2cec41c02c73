//! The behaviour every [`FanoutBus`] must have, run against each implementation
//! (`cluster/src/bus.rs` tests for the local bus, `cluster/tests/redis_bus.rs` for Redis).

use std::sync::Arc;
use std::time::Duration;

use chorus_protocol::{EventKind, MessageEvent};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::bus::{BusEvent, FanoutBus};

fn message(channel_id: Uuid, seq: u64) -> BusEvent {
    BusEvent::Message(Arc::new(MessageEvent::new_message(
        channel_id,
        seq,
        Uuid::new_v4(),
        Uuid::nil(),
        format!("m{seq}"),
        chrono::Utc::now(),
        format!("n{seq}"),
    )))
}

/// The next event that is not a resync (resyncs are always allowed).
async fn next_event(rx: &mut mpsc::Receiver<BusEvent>) -> BusEvent {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("an event within 5 s")
            .expect("the bus is open");
        if !matches!(event, BusEvent::Resync { .. }) {
            return event;
        }
    }
}

/// Waits until a watch has taken effect: a bus either raises a resync for the channel once its
/// subscription is live, or is live at once (the local bus), which a short wait covers.
async fn settle(rx: &mut mpsc::Receiver<BusEvent>, channel: Uuid) {
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while let Some(event) = rx.recv().await {
            if event
                == (BusEvent::Resync {
                    channel_id: Some(channel),
                })
            {
                return;
            }
        }
    })
    .await;
}

/// A watching gateway receives every event of the channel, in publish order.
pub async fn watched_channels_receive_events_in_order(bus: &dyn FanoutBus) {
    let mut gateway = bus.attach();
    let channel = Uuid::new_v4();
    bus.watch(channel);
    settle(&mut gateway, channel).await;
    for seq in 1..=200 {
        bus.publish(message(channel, seq)).await;
    }
    let user = Uuid::new_v4();
    bus.publish(BusEvent::Typing {
        channel_id: channel,
        user_id: user,
    })
    .await;
    for seq in 1..=200 {
        match next_event(&mut gateway).await {
            BusEvent::Message(m) => assert_eq!((m.channel_id, m.seq), (channel, seq)),
            other => panic!("expected message {seq}, got {other:?}"),
        }
    }
    assert_eq!(
        next_event(&mut gateway).await,
        BusEvent::Typing {
            channel_id: channel,
            user_id: user
        }
    );
}

/// Every attached gateway that watches a channel gets its events.
pub async fn every_watching_gateway_receives(bus: &dyn FanoutBus) {
    let mut first = bus.attach();
    let mut second = bus.attach();
    let channel = Uuid::new_v4();
    bus.watch(channel);
    settle(&mut first, channel).await;
    bus.publish(message(channel, 1)).await;
    for gateway in [&mut first, &mut second] {
        assert!(matches!(next_event(gateway).await, BusEvent::Message(m) if m.seq == 1));
    }
}

/// Edits, deletions, reactions and thread replies arrive with every field intact.
pub async fn every_event_kind_arrives_intact(bus: &dyn FanoutBus) {
    let mut gateway = bus.attach();
    let channel = Uuid::new_v4();
    bus.watch(channel);
    settle(&mut gateway, channel).await;
    let base = |seq: u64| {
        MessageEvent::new_message(
            channel,
            seq,
            Uuid::new_v4(),
            Uuid::new_v4(),
            format!("m{seq}"),
            chrono::DateTime::from_timestamp_millis(1_700_000_000_000).unwrap(),
            format!("n{seq}"),
        )
    };
    let events = [
        MessageEvent {
            mentions: vec![Uuid::new_v4()],
            ..base(1)
        },
        MessageEvent {
            kind: EventKind::Edit,
            target_seq: Some(1),
            ..base(2)
        },
        MessageEvent {
            kind: EventKind::ReactionAdd,
            target_seq: Some(1),
            emoji: Some("tada".into()),
            text: String::new(),
            ..base(3)
        },
        MessageEvent {
            kind: EventKind::ReactionRemove,
            target_seq: Some(1),
            emoji: Some("tada".into()),
            text: String::new(),
            ..base(4)
        },
        MessageEvent {
            parent_seq: Some(1),
            ..base(5)
        },
        MessageEvent {
            kind: EventKind::Delete,
            target_seq: Some(1),
            text: String::new(),
            ..base(6)
        },
    ];
    for event in &events {
        bus.publish(BusEvent::Message(Arc::new(event.clone())))
            .await;
    }
    for event in events {
        match next_event(&mut gateway).await {
            BusEvent::Message(received) => assert_eq!(*received, event),
            other => panic!("expected event {}, got {other:?}", event.seq),
        }
    }
}
