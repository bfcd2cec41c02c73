//! The gateway's subscription table and its fan-out from the bus.
//!
//! One task reads the bus and, for each event, serialises the frame once and pushes it to the
//! outbox of every local subscriber of the channel. Pushes never wait (see `outbox.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use chorus_cluster::{BusEvent, FanoutBus};
use chorus_protocol::ServerFrame;
use chorus_protocol::limits::TYPING_TTL_MS;
use parking_lot::RwLock;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use uuid::Uuid;

use crate::metrics::GATEWAY;
use crate::outbox::{Outbox, Outgoing};

/// A process-unique connection number.
pub type ConnId = u64;

/// Which connections of this gateway are subscribed to which channel. The bus is told which
/// channels have local subscribers, so it only brings this gateway what someone here reads.
pub struct Hub {
    channels: RwLock<HashMap<Uuid, HashMap<ConnId, Arc<Outbox>>>>,
    bus: Arc<dyn FanoutBus>,
}

impl Hub {
    pub fn new(bus: Arc<dyn FanoutBus>) -> Self {
        Hub {
            channels: RwLock::new(HashMap::new()),
            bus,
        }
    }

    pub fn subscribe(&self, channel: Uuid, conn: ConnId, outbox: Arc<Outbox>) {
        let mut channels = self.channels.write();
        let subscribers = channels.entry(channel).or_default();
        if subscribers.is_empty() {
            self.bus.watch(channel);
        }
        subscribers.insert(conn, outbox);
    }

    pub fn unsubscribe(&self, channel: Uuid, conn: ConnId) {
        let mut channels = self.channels.write();
        if let Some(subscribers) = channels.get_mut(&channel) {
            subscribers.remove(&conn);
            if subscribers.is_empty() {
                channels.remove(&channel);
                self.bus.unwatch(channel);
            }
        }
    }

    /// Pushes `item` to every local subscriber of `channel`.
    pub fn push_to_channel(&self, channel: Uuid, item: Outgoing) {
        if let Some(subscribers) = self.channels.read().get(&channel) {
            for outbox in subscribers.values() {
                outbox.push(item.clone());
            }
        }
    }

    /// Delivers one bus event to the local subscribers of its channel.
    pub fn fan_out(&self, event: &BusEvent) {
        let channels = self.channels.read();
        let channel_id = match event {
            BusEvent::Resync { channel_id: None } => {
                GATEWAY.bus_resyncs.increment(1);
                // Every subscriber of every channel checks what it may have missed.
                for (channel_id, subscribers) in channels.iter() {
                    for outbox in subscribers.values() {
                        outbox.push(Outgoing::CatchUp {
                            channel_id: *channel_id,
                        });
                    }
                }
                return;
            }
            BusEvent::Resync {
                channel_id: Some(channel_id),
            }
            | BusEvent::Typing { channel_id, .. } => *channel_id,
            BusEvent::Message(message) => message.channel_id,
        };
        let Some(subscribers) = channels.get(&channel_id) else {
            return;
        };
        let item = match event {
            BusEvent::Resync { .. } => Outgoing::CatchUp { channel_id },
            BusEvent::Message(message) => Outgoing::Event {
                channel_id: message.channel_id,
                seq: message.seq,
                kind: message.kind,
                frame: Utf8Bytes::from(ServerFrame::Message((**message).clone()).to_json()),
            },
            BusEvent::Typing {
                channel_id,
                user_id,
            } => Outgoing::Typing {
                user_id: *user_id,
                frame: Utf8Bytes::from(
                    ServerFrame::Typing {
                        channel_id: *channel_id,
                        user_id: *user_id,
                        expires_in_ms: TYPING_TTL_MS,
                    }
                    .to_json(),
                ),
            },
        };
        if matches!(item, Outgoing::Event { .. }) {
            // One add per event, not per subscriber.
            GATEWAY.deliveries.increment(subscribers.len() as u64);
        }
        for outbox in subscribers.values() {
            outbox.push(item.clone());
        }
    }

    /// Runs the fan-out until the bus closes.
    pub async fn run(self: Arc<Self>, mut events: mpsc::Receiver<BusEvent>) {
        while let Some(event) = events.recv().await {
            self.fan_out(&event);
        }
    }
}
