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
}

impl BusEvent {
    pub fn channel_id(&self) -> Uuid {
        match self {
            BusEvent::Message(message) => message.channel_id,
            BusEvent::Typing { channel_id, .. } => *channel_id,
        }
    }
}

/// Carries events to every attached gateway.
#[async_trait]
pub trait FanoutBus: Send + Sync + 'static {
    /// Delivers an event to every attached gateway, in publish order per publisher.
    async fn publish(&self, event: BusEvent);

    /// Attaches a gateway: it receives every event published from now on.
    fn attach(&self) -> mpsc::Receiver<BusEvent>;
}

/// The in-process bus of an embedded node.
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
