//! A connection's bounded queue of frames to write.
//!
//! Producers (the hub's fan-out, acknowledgement tasks, the connection's own replies) push
//! without waiting. When a push finds the queue full, the connection is marked slow and its task
//! is woken to close it with 4002: one slow reader never holds back a channel's other subscribers.

use std::collections::VecDeque;

use chorus_protocol::CloseCode;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use uuid::Uuid;

/// A frame waiting to be written.
#[derive(Clone, Debug)]
pub enum Outgoing {
    /// A sequenced channel event; the connection skips it if already delivered and fills gaps.
    Event {
        channel_id: Uuid,
        seq: u64,
        frame: Utf8Bytes,
    },
    /// A typing indicator; skipped for the typist's own connections.
    Typing { user_id: Uuid, frame: Utf8Bytes },
    /// A reply to this connection.
    Frame(Utf8Bytes),
    /// Events of the channel may have been lost on the bus: fetch what came after the last one
    /// delivered.
    CatchUp { channel_id: Uuid },
    /// The user's rights may have changed: re-read them from the metadata store.
    Recheck(Recheck),
}

/// What a connection re-reads when told that rights changed (`chorus_cluster::access`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recheck {
    /// Whether the connection's login session is still active (close 4100 if not).
    Session,
    /// Whether the user may still read (and post in) one subscribed channel.
    Channel(Uuid),
    /// Every subscribed channel.
    AllChannels,
    /// The session and every subscribed channel (notices may have been lost).
    Everything,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Outgoing>,
    closed: Option<CloseCode>,
}

/// The outbound queue of one connection.
pub struct Outbox {
    state: Mutex<State>,
    /// Wakes the connection when frames arrive.
    ready: Notify,
    /// Wakes the connection when it must close, even while it is blocked writing.
    kill: Notify,
    capacity: usize,
}

impl Outbox {
    pub fn new(capacity: usize) -> Self {
        Outbox {
            state: Mutex::new(State::default()),
            ready: Notify::new(),
            kill: Notify::new(),
            capacity,
        }
    }

    /// Queues a frame. Returns false if the connection is closing (now or already).
    pub fn push(&self, item: Outgoing) -> bool {
        let mut state = self.state.lock();
        if state.closed.is_some() {
            return false;
        }
        if state.queue.len() >= self.capacity {
            state.closed = Some(CloseCode::SlowConsumer);
            state.queue = VecDeque::new();
            drop(state);
            self.kill.notify_one();
            return false;
        }
        state.queue.push_back(item);
        drop(state);
        self.ready.notify_one();
        true
    }

    /// Asks the connection to close with `code` (the first reason wins).
    pub fn close(&self, code: CloseCode) {
        let mut state = self.state.lock();
        if state.closed.is_none() {
            state.closed = Some(code);
            drop(state);
            self.kill.notify_one();
        }
    }

    /// Moves every queued frame into `into`; returns the close reason if one was set.
    pub fn drain(&self, into: &mut Vec<Outgoing>) -> Option<CloseCode> {
        let mut state = self.state.lock();
        into.extend(state.queue.drain(..));
        // An idle connection should not keep the memory of its largest burst.
        if state.queue.capacity() > 64 {
            state.queue.shrink_to(16);
        }
        state.closed
    }

    pub fn closed(&self) -> Option<CloseCode> {
        self.state.lock().closed
    }

    pub async fn ready(&self) {
        self.ready.notified().await
    }

    pub async fn killed(&self) -> CloseCode {
        loop {
            if let Some(code) = self.closed() {
                return code;
            }
            self.kill.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &str) -> Outgoing {
        Outgoing::Frame(Utf8Bytes::from(text.to_string()))
    }

    #[test]
    fn overflow_marks_the_connection_slow_and_drops_its_queue() {
        let outbox = Outbox::new(2);
        assert!(outbox.push(frame("a")));
        assert!(outbox.push(frame("b")));
        assert!(!outbox.push(frame("c")));
        let mut drained = Vec::new();
        assert_eq!(outbox.drain(&mut drained), Some(CloseCode::SlowConsumer));
        assert!(drained.is_empty());
        assert!(!outbox.push(frame("d")));
    }

    #[test]
    fn the_first_close_reason_wins() {
        let outbox = Outbox::new(2);
        outbox.close(CloseCode::ServerRestart);
        outbox.close(CloseCode::SlowConsumer);
        assert_eq!(outbox.closed(), Some(CloseCode::ServerRestart));
    }

    #[tokio::test]
    async fn killed_wakes_on_close() {
        let outbox = std::sync::Arc::new(Outbox::new(1));
        let waiter = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.killed().await }
        });
        tokio::task::yield_now().await;
        outbox.close(CloseCode::HeartbeatTimeout);
        assert_eq!(waiter.await.unwrap(), CloseCode::HeartbeatTimeout);
    }
}
