//! The behaviour every [`FanoutBus`] must have, run against each implementation
//! (`cluster/src/bus.rs` tests for the local bus, `cluster/tests/redis_bus.rs` for Redis).

use std::sync::Arc;
use std::time::Duration;

use chorus_protocol::MessageEvent;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::bus::{BusEvent, FanoutBus};

fn message(channel_id: Uuid, seq: u64) -> BusEvent {
    BusEvent::Message(Arc::new(MessageEvent {
        channel_id,
        seq,
        id: Uuid::new_v4(),
        author_id: Uuid::nil(),
        text: format!("m{seq}"),
        created_at: chrono::Utc::now(),
        nonce: format!("n{seq}"),
    }))
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
