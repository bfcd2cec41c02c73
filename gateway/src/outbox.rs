//! A connection's bounded queue of frames to write, and the half of its state others can see.
//!
//! Producers (the hub's fan-out, acknowledgement tasks, the connection's own replies) push
//! without waiting. When a push finds the queue full, the connection is marked slow and its task
//! is woken to close it with 4002: one slow reader never holds back a channel's other subscribers.
//!
//! The outbox also records when the client last sent a frame, so that one gateway-wide sweep
//! (`heartbeat.rs`) finds zombie connections instead of a timer per connection: a timer would be
//! re-armed on every wake-up of every connection, which at fan-out rates is a large share of the
//! gateway's CPU, and would live in each idle connection's memory.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use chorus_protocol::{CloseCode, EventKind};
use futures_util::task::AtomicWaker;
use parking_lot::Mutex;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use uuid::Uuid;

/// A frame waiting to be written.
#[derive(Clone, Debug)]
pub enum Outgoing {
    /// A sequenced channel event; the connection skips it if already delivered and fills gaps.
    Event {
        channel_id: Uuid,
        seq: u64,
        /// What kind of event, for connections that declared intents.
        kind: EventKind,
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
    /// The connection's task, woken when frames arrive or the connection must close (even while
    /// it is blocked writing). One task consumes an outbox, so one waker slot is enough: it is
    /// registered with two atomic operations and no lock, and the pushes that find it already
    /// taken (the task is awake and will drain them) cost no wake-up at all.
    waker: AtomicWaker,
    capacity: usize,
    /// When the client last sent a frame, in the gateway's clock (`Shared::now_ms`).
    last_inbound_ms: AtomicU64,
    /// The client's sends submitted and not yet acknowledged (their acks come back through this
    /// outbox); kept here rather than in an `Arc` of its own, which every connection would pay.
    sends_in_flight: AtomicUsize,
}

impl Outbox {
    pub fn new(capacity: usize) -> Self {
        Outbox {
            state: Mutex::new(State::default()),
            waker: AtomicWaker::new(),
            capacity,
            last_inbound_ms: AtomicU64::new(0),
            sends_in_flight: AtomicUsize::new(0),
        }
    }

    /// Sends waiting for their acknowledgement.
    pub fn sends_in_flight(&self) -> usize {
        self.sends_in_flight.load(Ordering::Relaxed)
    }

    /// A send was submitted; [`Outbox::send_done`] when its answer is queued.
    pub fn send_started(&self) {
        self.sends_in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub fn send_done(&self) {
        self.sends_in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Records that the client sent a frame at `now_ms`.
    pub fn touch(&self, now_ms: u64) {
        self.last_inbound_ms.store(now_ms, Ordering::Relaxed);
    }

    /// When the client last sent a frame (see [`Outbox::touch`]).
    pub fn last_inbound_ms(&self) -> u64 {
        self.last_inbound_ms.load(Ordering::Relaxed)
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
            self.waker.wake();
            return false;
        }
        state.queue.push_back(item);
        drop(state);
        self.waker.wake();
        true
    }

    /// Asks the connection to close with `code` (the first reason wins).
    pub fn close(&self, code: CloseCode) {
        let mut state = self.state.lock();
        if state.closed.is_none() {
            state.closed = Some(code);
            drop(state);
            self.waker.wake();
        }
    }

    /// Takes every queued frame once there is one; the close reason instead once one is set.
    ///
    /// The queue itself is handed over, so an idle connection's outbox holds no allocation and
    /// keeps none of its largest burst.
    pub fn poll_drain(&self, cx: &mut Context<'_>) -> Poll<Result<VecDeque<Outgoing>, CloseCode>> {
        // Register before looking, so a push after the look finds the waker.
        self.waker.register(cx.waker());
        let mut state = self.state.lock();
        if let Some(code) = state.closed {
            Poll::Ready(Err(code))
        } else if state.queue.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(Ok(std::mem::take(&mut state.queue)))
        }
    }

    /// Resolves once the connection must close.
    pub fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<CloseCode> {
        self.waker.register(cx.waker());
        match self.closed() {
            Some(code) => Poll::Ready(code),
            None => Poll::Pending,
        }
    }

    pub fn closed(&self) -> Option<CloseCode> {
        self.state.lock().closed
    }

    /// Resolves once the connection must close or its queue is half full: the cue to stop
    /// letting frames gather (`GatewayConfig::flush_interval`) and write what is there, so that a
    /// client that reads fast is never closed as slow because the gateway chose to wait.
    pub fn poll_pressing(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.waker.register(cx.waker());
        let state = self.state.lock();
        if state.closed.is_some() || state.queue.len() >= self.capacity.div_ceil(2) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// See [`Outbox::poll_pressing`].
    pub async fn pressing(&self) {
        std::future::poll_fn(|cx| self.poll_pressing(cx)).await
    }

    /// See [`Outbox::poll_drain`].
    pub async fn drain(&self) -> Result<VecDeque<Outgoing>, CloseCode> {
        std::future::poll_fn(|cx| self.poll_drain(cx)).await
    }

    /// See [`Outbox::poll_closed`].
    pub async fn killed(&self) -> CloseCode {
        std::future::poll_fn(|cx| self.poll_closed(cx)).await
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

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
        let drained = outbox.drain().now_or_never();
        assert_eq!(drained.unwrap().unwrap_err(), CloseCode::SlowConsumer);
        assert!(!outbox.push(frame("d")));
    }

    #[tokio::test]
    async fn draining_hands_over_the_queue_and_leaves_no_allocation() {
        let outbox = Outbox::new(8);
        for text in ["a", "b", "c"] {
            assert!(outbox.push(frame(text)));
        }
        let drained = outbox.drain().await.unwrap();
        let texts: Vec<String> = drained
            .into_iter()
            .map(|item| match item {
                Outgoing::Frame(frame) => frame.to_string(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(texts, ["a", "b", "c"]);
        assert_eq!(outbox.state.lock().queue.capacity(), 0);
    }

    #[tokio::test]
    async fn pressing_resolves_at_half_capacity_or_on_close() {
        let outbox = Outbox::new(4);
        outbox.push(frame("a"));
        assert!(
            outbox.pressing().now_or_never().is_none(),
            "one of four is not pressing"
        );
        outbox.push(frame("b"));
        assert!(outbox.pressing().now_or_never().is_some(), "half full is");
        let closing = Outbox::new(4);
        closing.close(CloseCode::ServerRestart);
        assert!(closing.pressing().now_or_never().is_some());
    }

    #[tokio::test]
    async fn drain_waits_for_a_push() {
        let outbox = std::sync::Arc::new(Outbox::new(8));
        let waiter = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.drain().await.map(|items| items.len()) }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "nothing queued yet");
        outbox.push(frame("a"));
        assert_eq!(waiter.await.unwrap(), Ok(1));
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
