//! The process's SSE subscription table and its feed from the bus and the access notices.
//!
//! One task reads the fan-out bus and pushes each committed event to the queue of every local
//! stream of its channel; another turns access notices into re-checks of the streams of the
//! users concerned. Both are started by the first stream, so a process that never serves one
//! never attaches. Pushes never wait (`queue.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Once};

use chorus_cluster::access::{AccessNotice, AccessNotifier, AccessSignal};
use chorus_cluster::{BusEvent, FanoutBus};
use parking_lot::RwLock;
use uuid::Uuid;

use super::queue::{Item, StreamQueue};

/// A process-unique stream number.
pub type StreamId = u64;

type Subscribers = HashMap<StreamId, Arc<StreamQueue>>;

/// Which streams of this process read which channel, and whose they are.
pub struct StreamHub {
    bus: Arc<dyn FanoutBus>,
    access: Arc<dyn AccessNotifier>,
    channels: RwLock<HashMap<Uuid, Subscribers>>,
    users: RwLock<HashMap<Uuid, Subscribers>>,
    started: Once,
    next_id: AtomicU64,
    open: AtomicUsize,
    max_streams: usize,
    /// Set by shutdown: no new stream is registered.
    closed: AtomicBool,
}

/// A stream's place in the hub; leaving it (drop) unsubscribes every channel and frees the slot.
pub struct Registration {
    hub: Arc<StreamHub>,
    pub id: StreamId,
    user: Uuid,
    pub queue: Arc<StreamQueue>,
    channels: Vec<Uuid>,
}

impl StreamHub {
    pub fn new(
        bus: Arc<dyn FanoutBus>,
        access: Arc<dyn AccessNotifier>,
        max_streams: usize,
    ) -> Self {
        StreamHub {
            bus,
            access,
            channels: RwLock::new(HashMap::new()),
            users: RwLock::new(HashMap::new()),
            started: Once::new(),
            next_id: AtomicU64::new(1),
            open: AtomicUsize::new(0),
            max_streams,
            closed: AtomicBool::new(false),
        }
    }

    /// Streams open in this process.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Registers a stream of `user` with a queue of `capacity`; `None` when the process already
    /// serves `max_streams`.
    pub fn register(self: &Arc<Self>, user: Uuid, capacity: usize) -> Option<Registration> {
        self.start();
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        if self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.max_streams).then_some(open + 1)
            })
            .is_err()
        {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let queue = Arc::new(StreamQueue::new(capacity));
        self.users
            .write()
            .entry(user)
            .or_default()
            .insert(id, queue.clone());
        if self.closed.load(Ordering::Acquire) {
            // Shutdown began while this one registered: it ends at once.
            queue.close(chorus_protocol::CloseCode::ServerRestart);
        }
        Some(Registration {
            hub: self.clone(),
            id,
            user,
            queue,
            channels: Vec::new(),
        })
    }

    /// Ends every stream with `code` and refuses new ones (shutdown).
    pub fn close_all(&self, code: chorus_protocol::CloseCode) {
        self.closed.store(true, Ordering::Release);
        for streams in self.users.read().values() {
            for queue in streams.values() {
                queue.close(code);
            }
        }
    }

    /// Starts the bus and access feeds, once.
    fn start(self: &Arc<Self>) {
        self.started.call_once(|| {
            let mut events = self.bus.attach();
            let hub = Arc::downgrade(self);
            tokio::spawn(async move {
                while let Some(event) = events.recv().await {
                    let Some(hub) = hub.upgrade() else { break };
                    hub.fan_out(&event);
                }
            });
            let mut notices = self.access.subscribe();
            let hub = Arc::downgrade(self);
            tokio::spawn(async move {
                while let Some(signal) = notices.recv().await {
                    let Some(hub) = hub.upgrade() else { break };
                    hub.on_access(signal);
                }
            });
        });
    }

    fn fan_out(&self, event: &BusEvent) {
        let channels = self.channels.read();
        match event {
            BusEvent::Message(message) => {
                if let Some(subscribers) = channels.get(&message.channel_id) {
                    for queue in subscribers.values() {
                        queue.push(Item::Event(message.clone()));
                    }
                }
            }
            // Streams carry sequenced events only; typing is for sockets.
            BusEvent::Typing { .. } => {}
            BusEvent::Resync {
                channel_id: Some(channel),
            } => {
                if let Some(subscribers) = channels.get(channel) {
                    for queue in subscribers.values() {
                        queue.push(Item::CatchUp(*channel));
                    }
                }
            }
            BusEvent::Resync { channel_id: None } => {
                for (channel, subscribers) in channels.iter() {
                    for queue in subscribers.values() {
                        queue.push(Item::CatchUp(*channel));
                    }
                }
            }
        }
    }

    fn on_access(&self, signal: AccessSignal) {
        let user = match signal {
            AccessSignal::Notice(AccessNotice::Sessions { user_id, .. })
            | AccessSignal::Notice(AccessNotice::User { user_id })
            | AccessSignal::Notice(AccessNotice::Channel {
                user_id: Some(user_id),
                ..
            }) => Some(user_id),
            AccessSignal::Notice(AccessNotice::Channel {
                channel_id,
                user_id: None,
            }) => {
                if let Some(subscribers) = self.channels.read().get(&channel_id) {
                    for queue in subscribers.values() {
                        queue.push(Item::Recheck);
                    }
                }
                return;
            }
            AccessSignal::RecheckAll => None,
        };
        let users = self.users.read();
        let queues = match user {
            Some(user) => users.get(&user).into_iter().flatten().collect::<Vec<_>>(),
            None => users.values().flatten().collect(),
        };
        for (_, queue) in queues {
            queue.push(Item::Recheck);
        }
    }
}

impl Registration {
    /// Starts delivering `channel`'s events to this stream.
    pub fn subscribe(&mut self, channel: Uuid) {
        if self.channels.contains(&channel) {
            return;
        }
        let mut channels = self.hub.channels.write();
        let subscribers = channels.entry(channel).or_default();
        if subscribers.is_empty() {
            self.hub.bus.watch(channel);
        }
        subscribers.insert(self.id, self.queue.clone());
        self.channels.push(channel);
    }

    /// Stops delivering `channel`'s events to this stream.
    pub fn unsubscribe(&mut self, channel: Uuid) {
        self.channels.retain(|c| *c != channel);
        let mut channels = self.hub.channels.write();
        if let Some(subscribers) = channels.get_mut(&channel) {
            subscribers.remove(&self.id);
            if subscribers.is_empty() {
                channels.remove(&channel);
                self.hub.bus.unwatch(channel);
            }
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        for channel in std::mem::take(&mut self.channels) {
            self.unsubscribe(channel);
        }
        let mut users = self.hub.users.write();
        if let Some(streams) = users.get_mut(&self.user) {
            streams.remove(&self.id);
            if streams.is_empty() {
                users.remove(&self.user);
            }
        }
        self.hub.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use chorus_cluster::LocalBus;
    use chorus_cluster::access::LocalAccessNotifier;
    use futures_util::FutureExt;

    use super::*;

    fn hub(max: usize) -> Arc<StreamHub> {
        Arc::new(StreamHub::new(
            Arc::new(LocalBus::new(16)),
            Arc::new(LocalAccessNotifier::default()),
            max,
        ))
    }

    #[tokio::test]
    async fn streams_beyond_the_limit_are_refused_and_a_dropped_one_frees_its_slot() {
        let hub = hub(2);
        let a = hub.register(Uuid::nil(), 4).unwrap();
        let _b = hub.register(Uuid::nil(), 4).unwrap();
        assert!(hub.register(Uuid::nil(), 4).is_none());
        drop(a);
        assert_eq!(hub.open(), 1);
        assert!(hub.register(Uuid::nil(), 4).is_some());
    }

    #[tokio::test]
    async fn an_access_notice_reaches_only_its_users_streams() {
        let hub = hub(8);
        let (alice, bob) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let a = hub.register(alice, 4).unwrap();
        let b = hub.register(bob, 4).unwrap();
        hub.on_access(AccessSignal::Notice(AccessNotice::User { user_id: alice }));
        assert!(a.queue.next_batch().now_or_never().is_some());
        assert!(b.queue.next_batch().now_or_never().is_none());
    }

    #[tokio::test]
    async fn a_dropped_stream_leaves_no_subscription_behind() {
        let hub = hub(8);
        let channel = Uuid::from_u128(9);
        let mut a = hub.register(Uuid::nil(), 4).unwrap();
        a.subscribe(channel);
        a.subscribe(channel);
        assert_eq!(hub.channels.read().get(&channel).map(|s| s.len()), Some(1));
        drop(a);
        assert!(hub.channels.read().is_empty());
        assert!(hub.users.read().is_empty());
    }
}
