//! One SSE client's bounded queue of work, filled by the stream hub and drained by the client's
//! response body.
//!
//! Pushes never wait: the hub's one task serves every stream of the process, so a client that
//! reads slowly must not hold back the others. When a push finds the queue full the stream is
//! marked slow, its queue dropped, and the body ends it with a `close` event (code 4002, as the
//! WebSocket's slow-consumer close), after which the client resumes with `Last-Event-ID` and
//! misses nothing.

use std::collections::VecDeque;
use std::sync::Arc;

use chorus_protocol::{CloseCode, MessageEvent};
use parking_lot::Mutex;
use tokio::sync::Notify;
use uuid::Uuid;

/// Work for one stream.
#[derive(Clone, Debug)]
pub enum Item {
    /// A committed channel event from the bus.
    Event(Arc<MessageEvent>),
    /// The bus may have lost events of the channel: fetch what follows the stream's position.
    CatchUp(Uuid),
    /// The caller's rights may have changed: re-read the session and channel access.
    Recheck,
}

#[derive(Default)]
struct State {
    items: VecDeque<Item>,
    closed: Option<CloseCode>,
}

/// The queue between the hub and one stream's body.
pub struct StreamQueue {
    state: Mutex<State>,
    ready: Notify,
    capacity: usize,
}

impl StreamQueue {
    pub fn new(capacity: usize) -> Self {
        StreamQueue {
            state: Mutex::new(State::default()),
            ready: Notify::new(),
            capacity: capacity.max(1),
        }
    }

    /// Queues an item; false when the stream is closing (now, or already).
    pub fn push(&self, item: Item) -> bool {
        let mut state = self.state.lock();
        if state.closed.is_some() {
            return false;
        }
        if state.items.len() >= self.capacity {
            state.closed = Some(CloseCode::SlowConsumer);
            state.items = VecDeque::new();
            drop(state);
            self.ready.notify_one();
            return false;
        }
        state.items.push_back(item);
        drop(state);
        self.ready.notify_one();
        true
    }

    /// Asks the stream to end with `code` (the first reason wins).
    pub fn close(&self, code: CloseCode) {
        let mut state = self.state.lock();
        if state.closed.is_none() {
            state.closed = Some(code);
            state.items = VecDeque::new();
            drop(state);
            self.ready.notify_one();
        }
    }

    /// Everything queued, once there is something; the close reason once one is set.
    pub async fn next_batch(&self) -> Result<VecDeque<Item>, CloseCode> {
        loop {
            // Armed before looking, so a push between the look and the wait is not missed
            // (`notify_one` stores a permit when nobody waits).
            let notified = self.ready.notified();
            {
                let mut state = self.state.lock();
                if let Some(code) = state.closed {
                    return Err(code);
                }
                if !state.items.is_empty() {
                    return Ok(std::mem::take(&mut state.items));
                }
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    #[test]
    fn overflow_closes_the_stream_as_slow_and_drops_its_queue() {
        let queue = StreamQueue::new(2);
        assert!(queue.push(Item::Recheck));
        assert!(queue.push(Item::CatchUp(Uuid::nil())));
        assert!(!queue.push(Item::Recheck));
        let next = queue.next_batch().now_or_never().unwrap();
        assert_eq!(next.unwrap_err(), CloseCode::SlowConsumer);
        assert!(!queue.push(Item::Recheck), "a closed queue takes nothing");
    }

    #[tokio::test]
    async fn next_batch_waits_for_a_push_and_takes_everything() {
        let queue = Arc::new(StreamQueue::new(8));
        let waiter = tokio::spawn({
            let queue = queue.clone();
            async move { queue.next_batch().await.map(|items| items.len()) }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        queue.push(Item::Recheck);
        queue.push(Item::Recheck);
        let taken = waiter.await.unwrap().unwrap();
        assert!((1..=2).contains(&taken), "{taken}");
    }

    #[test]
    fn the_first_close_reason_wins() {
        let queue = StreamQueue::new(2);
        queue.close(CloseCode::ServerRestart);
        queue.close(CloseCode::SlowConsumer);
        let next = queue.next_batch().now_or_never().unwrap();
        assert_eq!(next.unwrap_err(), CloseCode::ServerRestart);
    }
}
