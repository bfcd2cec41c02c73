//! The channel service's bus, seen by the notifier: a decorator of the real fan-out bus.
//!
//! Only the channel service's leader path (the history writer, after an event is committed and
//! in history) publishes messages on the bus it was given, so wrapping that bus — and only that
//! one; gateways keep the plain bus — puts the notifier exactly after commit, on the leader,
//! without the channel service knowing about notifications.
//!
//! The notifier must never slow the sequencer: new messages wait for it in a bounded queue, and
//! when the queue is full (a metadata store far behind) the notification of that message is
//! dropped and counted (`chorus_notifications_dropped_total`) — the message itself is delivered
//! as always, and badges still count it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chorus_cluster::{BusEvent, FanoutBus};
use chorus_protocol::{EventKind, MessageEvent};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::Notifier;

/// New messages waiting for the notifier.
pub const NOTIFY_QUEUE: usize = 10_000;

/// Messages the notifier takes from the queue at once (all that are waiting, up to this): their
/// channels' facts are read once per batch.
pub const NOTIFY_BATCH: usize = 512;

/// Publishes on `inner`, and hands every new message to the notifier.
pub struct NotifyingBus {
    inner: Arc<dyn FanoutBus>,
    queue: mpsc::Sender<Arc<MessageEvent>>,
    /// Messages whose notifications were dropped so far (for the log; the metric counts too).
    dropped: AtomicU64,
}

impl NotifyingBus {
    /// Wraps `inner` and starts the notifier's task (it ends when the bus is dropped).
    pub fn new(inner: Arc<dyn FanoutBus>, notifier: Notifier) -> Self {
        let (queue, mut events) = mpsc::channel::<Arc<MessageEvent>>(NOTIFY_QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(NOTIFY_BATCH);
            while events.recv_many(&mut batch, NOTIFY_BATCH).await > 0 {
                notifier.notify_batch(&batch).await;
                batch.clear();
            }
        });
        NotifyingBus {
            inner,
            queue,
            dropped: AtomicU64::new(0),
        }
    }
}

#[async_trait]
impl FanoutBus for NotifyingBus {
    async fn publish(&self, event: BusEvent) {
        let new_message = match &event {
            BusEvent::Message(message) if message.kind == EventKind::Message => {
                Some(message.clone())
            }
            _ => None,
        };
        self.inner.publish(event).await;
        if let Some(message) = new_message
            && self.queue.try_send(message).is_err()
        {
            metrics::counter!("chorus_notifications_dropped_total").increment(1);
            // A full queue drops thousands a second: log the 1st, 2nd, 4th, 8th… drop, not each.
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(
                    dropped,
                    "notification queue full; messages' notifications are dropped"
                );
            }
        }
    }

    fn attach(&self) -> mpsc::Receiver<BusEvent> {
        self.inner.attach()
    }

    fn watch(&self, channel: Uuid) {
        self.inner.watch(channel);
    }

    fn unwatch(&self, channel: Uuid) {
        self.inner.unwatch(channel);
    }
}
