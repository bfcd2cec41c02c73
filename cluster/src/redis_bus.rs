//! The fan-out bus over Redis pub/sub (fred, RESP3).
//!
//! Each channel is a Redis pub/sub channel `chorus:ch:<uuid>`; a gateway subscribes to the channels
//! it has local subscribers in. Redis pub/sub is at-most-once: a message published while a
//! subscriber is disconnected, or dropped because the subscriber lagged, is gone. Chorus does not
//! rely on it being more: every message event carries its channel `seq`, and whenever the bus may
//! have lost something — after a reconnect, on lag, right after a new subscription took effect —
//! it raises [`BusEvent::Resync`], and the gateway catches its subscribers up from the channel
//! service's replay buffer. The result is every event once, in order, across Redis outages.
//!
//! Subscriptions are reconciled, not queued: `watch`/`unwatch` edit the desired set and wake a
//! task that brings Redis in line, so no queue grows with subscription churn.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fred::clients::SubscriberClient;
use fred::prelude::{Client, ClientLike, EventInterface, PubsubInterface};
use parking_lot::Mutex;
use tokio::sync::{Notify, broadcast, mpsc};
use uuid::Uuid;

use crate::bus::{BusEvent, FanoutBus};
use crate::bus_metrics::BUS;
use crate::bus_wire;

const KEY_PREFIX: &str = "chorus:ch:";

/// How long a batch of publishes may wait for Redis before its events are left to the resync path.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(1);

/// Events waiting to be published. Publishing never blocks the sequencer: when Redis is slow or
/// gone, events beyond this are dropped and recovered by the subscribers' resync.
const PUBLISH_QUEUE: usize = 65_536;

/// Publishes sent to Redis in one pipeline.
const PUBLISH_BATCH: usize = 512;

/// Why the bus could not start (the URL is invalid or Redis cannot be reached).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RedisBusError(pub String);

fn key(channel: Uuid) -> String {
    format!("{KEY_PREFIX}{channel}")
}

struct Shared {
    gateways: Mutex<Vec<mpsc::Sender<BusEvent>>>,
    /// Channels this process wants to receive.
    desired: Mutex<HashSet<Uuid>>,
    changed: Notify,
    queue_len: usize,
}

impl Shared {
    async fn deliver(&self, event: BusEvent) {
        let gateways = self.gateways.lock().clone();
        for gateway in &gateways {
            let _ = gateway.send(event.clone()).await;
        }
    }
}

/// Fan-out through Redis pub/sub.
pub struct RedisBus {
    outgoing: mpsc::Sender<(String, Vec<u8>)>,
    shared: Arc<Shared>,
}

impl RedisBus {
    /// Connects a publisher and a subscriber; fails fast (5 s) if Redis cannot be reached, and
    /// reconnects with backoff (forever) if it goes away later.
    pub async fn connect(url: &str, queue_len: usize) -> Result<Self, RedisBusError> {
        let publisher = crate::redis::connect(url).await.map_err(RedisBusError)?;
        let subscriber = crate::redis::connect_subscriber(url)
            .await
            .map_err(RedisBusError)?;
        let shared = Arc::new(Shared {
            gateways: Mutex::new(Vec::new()),
            desired: Mutex::new(HashSet::new()),
            changed: Notify::new(),
            queue_len,
        });
        tokio::spawn(receive(subscriber.clone(), shared.clone()));
        tokio::spawn(reconcile(subscriber, shared.clone()));
        let (outgoing, queued) = mpsc::channel(PUBLISH_QUEUE);
        tokio::spawn(publish_queued(publisher, queued));
        Ok(RedisBus { outgoing, shared })
    }
}

/// Forwards Redis messages to the attached gateways, and turns reconnects and lag into resyncs.
async fn receive(subscriber: SubscriberClient, shared: Arc<Shared>) {
    let mut messages = subscriber.message_rx();
    let mut reconnects = subscriber.reconnect_rx();
    loop {
        tokio::select! {
            message = messages.recv() => match message {
                Ok(message) => {
                    let Some(bytes) = message.value.as_bytes() else { continue };
                    match bus_wire::decode(bytes) {
                        Ok(event) => shared.deliver(event).await,
                        Err(err) => tracing::warn!(error = %err, channel = %message.channel, "undecodable bus event"),
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "redis bus lagged; resyncing every channel");
                    BUS.resyncs_lag.increment(1);
                    shared.deliver(BusEvent::Resync { channel_id: None }).await;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            reconnect = reconnects.recv() => match reconnect {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Resubscribe first, then resync: anything published before the subscription
                    // is back is recovered by the catch-up, anything after arrives live.
                    if let Err(err) = subscriber.resubscribe_all().await {
                        tracing::warn!(error = %err, "redis resubscribe failed");
                    }
                    tracing::info!("redis bus reconnected; resyncing every channel");
                    BUS.resyncs_reconnect.increment(1);
                    shared.deliver(BusEvent::Resync { channel_id: None }).await;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

/// Publishes queued events in order, pipelining what has accumulated.
async fn publish_queued(publisher: Client, mut queued: mpsc::Receiver<(String, Vec<u8>)>) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    while queued.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        if !publisher.is_connected() {
            // Waiting would only delay what comes after; the subscribers resync on reconnect.
            tracing::warn!(dropped = batch.len(), "redis is down; bus events dropped");
            BUS.dropped_redis_down.increment(batch.len() as u64);
            batch.clear();
            continue;
        }
        let pipeline = publisher.pipeline();
        for (key, payload) in batch.drain(..) {
            // Queuing into a pipeline only buffers the command.
            let _: Result<(), _> = pipeline.publish(key, payload).await;
        }
        let started = std::time::Instant::now();
        match tokio::time::timeout(PUBLISH_TIMEOUT, pipeline.all::<fred::types::Value>()).await {
            Ok(Ok(_)) => BUS.publish_seconds.record(started.elapsed().as_secs_f64()),
            Ok(Err(err)) => {
                BUS.publish_errors.increment(1);
                tracing::warn!(error = %err, "redis publish failed");
            }
            Err(_) => {
                BUS.publish_errors.increment(1);
                tracing::warn!("redis publish timed out");
            }
        }
    }
}

/// Brings the Redis subscriptions in line with the desired set whenever it changes.
async fn reconcile(subscriber: SubscriberClient, shared: Arc<Shared>) {
    let mut subscribed: HashSet<Uuid> = HashSet::new();
    loop {
        let desired = shared.desired.lock().clone();
        let added: Vec<Uuid> = desired.difference(&subscribed).copied().collect();
        let removed: Vec<Uuid> = subscribed.difference(&desired).copied().collect();
        if !removed.is_empty() {
            let keys: Vec<String> = removed.iter().map(|c| key(*c)).collect();
            if let Err(err) = subscriber.unsubscribe(keys).await {
                tracing::warn!(error = %err, "redis unsubscribe failed");
            }
            for channel in &removed {
                subscribed.remove(channel);
            }
        }
        if !added.is_empty() {
            let keys: Vec<String> = added.iter().map(|c| key(*c)).collect();
            match subscriber.subscribe(keys).await {
                Ok(()) => {
                    for channel in added {
                        subscribed.insert(channel);
                        // Events published before the subscription took effect were missed.
                        shared
                            .deliver(BusEvent::Resync {
                                channel_id: Some(channel),
                            })
                            .await;
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "redis subscribe failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            }
        }
        if *shared.desired.lock() == subscribed {
            shared.changed.notified().await;
        }
    }
}

#[async_trait]
impl FanoutBus for RedisBus {
    async fn publish(&self, event: BusEvent) {
        let Some((channel, payload)) = bus_wire::encode(&event) else {
            return;
        };
        let payload = match payload {
            Ok(payload) => payload,
            Err(err) => {
                tracing::error!(error = %err, "cannot encode bus event");
                return;
            }
        };
        if self.outgoing.try_send((key(channel), payload)).is_ok() {
            BUS.published_redis.increment(1);
        } else {
            BUS.dropped_queue_full.increment(1);
            // The message is committed; subscribers recover it by sequence.
            tracing::warn!(%channel, "bus publish queue full; event dropped");
        }
    }

    fn attach(&self) -> mpsc::Receiver<BusEvent> {
        let (tx, rx) = mpsc::channel(self.shared.queue_len);
        self.shared.gateways.lock().push(tx);
        rx
    }

    fn watch(&self, channel: Uuid) {
        if self.shared.desired.lock().insert(channel) {
            self.shared.changed.notify_one();
        }
    }

    fn unwatch(&self, channel: Uuid) {
        if self.shared.desired.lock().remove(&channel) {
            self.shared.changed.notify_one();
        }
    }
}
