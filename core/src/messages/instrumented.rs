//! A message store that records, per backend and operation, how long each call took and whether
//! it failed: `chorus_store_operation_seconds{store,backend,operation}` and
//! `chorus_store_errors_total{store,backend,operation}` (docs/OPERATIONS.md).
//!
//! Wraps any [`MessageStore`]; the binary wraps whichever backend `messages_url` names. The
//! handles are resolved once when the wrapper is built (after the process installed its
//! recorder), so a call costs a clock read and two atomic operations.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chorus_protocol::MessageEvent;
use metrics::{Counter, Histogram, counter, histogram};
use uuid::Uuid;

use super::{HistoryQuery, MessageStore, SearchQuery};
use crate::StoreError;

/// Every operation of the trait, in declaration order.
const OPERATIONS: [&str; 10] = [
    "append",
    "append_replayable",
    "sync",
    "page",
    "message_page",
    "event",
    "related",
    "search",
    "count_messages_after",
    "delete_before",
];

#[derive(Clone, Copy)]
enum Op {
    Append,
    AppendReplayable,
    Sync,
    Page,
    MessagePage,
    Event,
    Related,
    Search,
    CountAfter,
    DeleteBefore,
}

/// `inner` with a latency histogram and an error counter per operation.
pub struct InstrumentedMessageStore {
    inner: Arc<dyn MessageStore>,
    seconds: [Histogram; OPERATIONS.len()],
    errors: [Counter; OPERATIONS.len()],
}

impl InstrumentedMessageStore {
    /// `backend` is a closed set: `redb`, `postgres`, `scylla`.
    pub fn new(inner: Arc<dyn MessageStore>, backend: &'static str) -> Self {
        InstrumentedMessageStore {
            inner,
            seconds: OPERATIONS.map(|op| {
                histogram!("chorus_store_operation_seconds",
                    "store" => "messages", "backend" => backend, "operation" => op)
            }),
            errors: OPERATIONS.map(|op| {
                counter!("chorus_store_errors_total",
                    "store" => "messages", "backend" => backend, "operation" => op)
            }),
        }
    }

    async fn timed<T>(
        &self,
        op: Op,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = call.await;
        self.seconds[op as usize].record(started.elapsed().as_secs_f64());
        if result.is_err() {
            self.errors[op as usize].increment(1);
        }
        result
    }
}

#[async_trait]
impl MessageStore for InstrumentedMessageStore {
    async fn append(&self, messages: &[MessageEvent]) -> Result<(), StoreError> {
        self.timed(Op::Append, self.inner.append(messages)).await
    }

    async fn append_replayable(&self, messages: &[MessageEvent]) -> Result<(), StoreError> {
        self.timed(Op::AppendReplayable, self.inner.append_replayable(messages))
            .await
    }

    async fn sync(&self) -> Result<(), StoreError> {
        self.timed(Op::Sync, self.inner.sync()).await
    }

    async fn page(
        &self,
        channel: Uuid,
        query: HistoryQuery,
    ) -> Result<Vec<MessageEvent>, StoreError> {
        self.timed(Op::Page, self.inner.page(channel, query)).await
    }

    async fn message_page(
        &self,
        channel: Uuid,
        query: HistoryQuery,
    ) -> Result<Vec<MessageEvent>, StoreError> {
        self.timed(Op::MessagePage, self.inner.message_page(channel, query))
            .await
    }

    async fn event(&self, channel: Uuid, seq: u64) -> Result<Option<MessageEvent>, StoreError> {
        self.timed(Op::Event, self.inner.event(channel, seq)).await
    }

    async fn related(&self, channel: Uuid, seqs: &[u64]) -> Result<Vec<MessageEvent>, StoreError> {
        self.timed(Op::Related, self.inner.related(channel, seqs))
            .await
    }

    async fn search(&self, query: &SearchQuery) -> Result<Vec<MessageEvent>, StoreError> {
        self.timed(Op::Search, self.inner.search(query)).await
    }

    async fn count_messages_after(
        &self,
        channel: Uuid,
        after: u64,
        cap: u64,
    ) -> Result<u64, StoreError> {
        self.timed(
            Op::CountAfter,
            self.inner.count_messages_after(channel, after, cap),
        )
        .await
    }

    async fn count_messages_after_each(
        &self,
        positions: &[(Uuid, u64)],
        cap: u64,
    ) -> Result<Vec<u64>, StoreError> {
        self.timed(
            Op::CountAfter,
            self.inner.count_messages_after_each(positions, cap),
        )
        .await
    }

    async fn delete_before(
        &self,
        channel: Uuid,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError> {
        self.timed(Op::DeleteBefore, self.inner.delete_before(channel, cutoff))
            .await
    }
}
