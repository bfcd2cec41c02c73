//! The fan-out bus: committed events travel from the channel service to every gateway.
//!
//! Publishing awaits room in each gateway's bounded queue, so a gateway that falls behind slows
//! the sequencer down instead of losing events (the bus itself never drops). Slow *clients* are the
//! gateway's business: it disconnects them (close code 4002) rather than letting them push back.

use std::sync::Arc;

use async_trait::async_trait;
use chorus_protocol::MessageEvent;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use uuid::Uuid;

/// An event for the subscribers of a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BusEvent {
    /// A committed message; carries its channel sequence.
    Message(Arc<MessageEvent>),
    /// An ephemeral typing indicator (not sequenced, not stored).
    Typing { channel_id: Uuid, user_id: Uuid },
    /// Events may have been lost in transit (a bus reconnect, a lagging subscriber, a fresh
    /// subscription): subscribers of the channel — of every channel when `None` — must catch up
    /// from the channel service. Raised by the bus itself, never published.
    Resync { channel_id: Option<Uuid> },
}

impl BusEvent {
    /// The channel the event is about (`None` for a resync of every channel).
    pub fn channel_id(&self) -> Option<Uuid> {
        match self {
            BusEvent::Message(message) => Some(message.channel_id),
            BusEvent::Typing { channel_id, .. } => Some(*channel_id),
            BusEvent::Resync { channel_id } => *channel_id,
        }
    }
}

/// Carries events to every attached gateway.
#[async_trait]
pub trait FanoutBus: Send + Sync + 'static {
    /// Delivers an event to every attached gateway that watches its channel, in publish order per
    /// publisher. Never fails: an event lost in transit is recovered by the gateways' sequence
    /// checks and the resyncs the bus raises.
    async fn publish(&self, event: BusEvent);

    /// Attaches a gateway: it receives the events of the channels it watches from now on.
    fn attach(&self) -> mpsc::Receiver<BusEvent>;

    /// The gateway has subscribers in `channel` now (called when the first one arrives).
    fn watch(&self, _channel: Uuid) {}

    /// The gateway's last subscriber of `channel` left.
    fn unwatch(&self, _channel: Uuid) {}
}

/// The in-process bus of an embedded node: every attached gateway gets every event (they all
/// live in this process, so watching is not needed to route).
pub struct LocalBus {
    gateways: Mutex<Vec<mpsc::Sender<BusEvent>>>,
    queue_len: usize,
}

impl LocalBus {
    /// `queue_len` bounds the events waiting for each gateway.
    pub fn new(queue_len: usize) -> Self {
        LocalBus {
            gateways: Mutex::new(Vec::new()),
            queue_len,
        }
    }
}

#[async_trait]
impl FanoutBus for LocalBus {
    async fn publish(&self, event: BusEvent) {
        crate::bus_metrics::BUS.published_local.increment(1);
        let gateways = self.gateways.lock().clone();
        let mut closed = false;
        for gateway in &gateways {
            closed |= gateway.send(event.clone()).await.is_err();
        }
        if closed {
            self.gateways.lock().retain(|gateway| !gateway.is_closed());
        }
    }

    fn attach(&self) -> mpsc::Receiver<BusEvent> {
        let (tx, rx) = mpsc::channel(self.queue_len);
        self.gateways.lock().push(tx);
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_attached_gateway_gets_every_event_in_order() {
        let bus = LocalBus::new(4);
        let mut a = bus.attach();
        let mut b = bus.attach();
        let channel_id = Uuid::new_v4();
        for n in 0..3u128 {
            bus.publish(BusEvent::Typing {
                channel_id,
                user_id: Uuid::from_u128(n),
            })
            .await;
        }
        for rx in [&mut a, &mut b] {
            for n in 0..3u128 {
                let event = rx.recv().await.unwrap();
                assert_eq!(
                    event,
                    BusEvent::Typing {
                        channel_id,
                        user_id: Uuid::from_u128(n)
                    }
                );
            }
        }
    }

    #[tokio::test]
    async fn local_bus_passes_the_conformance_suite() {
        crate::bus_conformance::watched_channels_receive_events_in_order(&LocalBus::new(1024))
            .await;
        crate::bus_conformance::every_watching_gateway_receives(&LocalBus::new(1024)).await;
        crate::bus_conformance::every_event_kind_arrives_intact(&LocalBus::new(1024)).await;
    }

    #[tokio::test]
    async fn a_detached_gateway_is_forgotten() {
        let bus = LocalBus::new(1);
        drop(bus.attach());
        let mut live = bus.attach();
        let event = BusEvent::Typing {
            channel_id: Uuid::nil(),
            user_id: Uuid::nil(),
        };
        bus.publish(event.clone()).await;
        assert_eq!(live.recv().await, Some(event));
        assert_eq!(bus.gateways.lock().len(), 1);
    }
}
