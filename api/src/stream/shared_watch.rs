//! A fan-out bus shared by two readers in one process: the WebSocket gateway's hub and the SSE
//! stream hub.
//!
//! `FanoutBus::watch` / `unwatch` say which channels *this process* wants (the Redis bus keeps
//! one set per process). Each hub calls `watch` for its first subscriber of a channel and
//! `unwatch` when its last one leaves; without a count the SSE hub's last reader leaving would
//! stop the channel's events for the gateway's sockets too. This wrapper counts watchers per
//! channel and passes only the first `watch` and the last `unwatch` through. Publishing and
//! attaching pass straight through.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chorus_cluster::{BusEvent, FanoutBus};
use parking_lot::Mutex;
use tokio::sync::mpsc;
use uuid::Uuid;

/// A bus whose `watch`/`unwatch` are counted per channel.
pub struct SharedWatchBus {
    inner: Arc<dyn FanoutBus>,
    watchers: Mutex<HashMap<Uuid, usize>>,
}

impl SharedWatchBus {
    pub fn new(inner: Arc<dyn FanoutBus>) -> Self {
        SharedWatchBus {
            inner,
            watchers: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl FanoutBus for SharedWatchBus {
    async fn publish(&self, event: BusEvent) {
        self.inner.publish(event).await
    }

    fn attach(&self) -> mpsc::Receiver<BusEvent> {
        self.inner.attach()
    }

    fn watch(&self, channel: Uuid) {
        // The lock is held across the inner call so a concurrent last unwatch cannot reorder
        // with this first watch (the inner calls only edit a set and wake a task).
        let mut watchers = self.watchers.lock();
        let count = watchers.entry(channel).or_insert(0);
        *count += 1;
        if *count == 1 {
            self.inner.watch(channel);
        }
    }

    fn unwatch(&self, channel: Uuid) {
        let mut watchers = self.watchers.lock();
        let Some(count) = watchers.get_mut(&channel) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            watchers.remove(&channel);
            self.inner.unwatch(channel);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// Records the set of watched channels, like the Redis bus does.
    #[derive(Default)]
    struct SetBus(Mutex<HashSet<Uuid>>);

    #[async_trait]
    impl FanoutBus for SetBus {
        async fn publish(&self, _event: BusEvent) {}
        fn attach(&self) -> mpsc::Receiver<BusEvent> {
            mpsc::channel(1).1
        }
        fn watch(&self, channel: Uuid) {
            self.0.lock().insert(channel);
        }
        fn unwatch(&self, channel: Uuid) {
            self.0.lock().remove(&channel);
        }
    }

    #[test]
    fn a_channel_stays_watched_until_its_last_watcher_leaves() {
        let inner = Arc::new(SetBus::default());
        let bus = SharedWatchBus::new(inner.clone());
        let channel = Uuid::from_u128(7);
        bus.watch(channel); // the gateway's hub
        bus.watch(channel); // the SSE hub
        bus.unwatch(channel); // the SSE hub's last reader leaves
        assert!(
            inner.0.lock().contains(&channel),
            "the gateway still reads it"
        );
        bus.unwatch(channel);
        assert!(!inner.0.lock().contains(&channel));
        bus.unwatch(channel); // an extra unwatch is harmless
        assert!(bus.watchers.lock().is_empty());
    }
}
