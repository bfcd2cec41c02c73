//! A message store that records, per backend and operation, how long each call took and whether
//! it failed: `chorus_store_operation_seconds{store,backend,operation}` and
//! `chorus_store_errors_total{store,backend,operation}` (docs/OPERATIONS.md). Each call is also a
//! tracing span `store` (with `backend` and `operation`), the last link of a REST request's trace.
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
use tracing::Instrument;
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
    backend: &'static str,
    seconds: [Histogram; OPERATIONS.len()],
    errors: [Counter; OPERATIONS.len()],
}

impl InstrumentedMessageStore {
    /// `backend` is a closed set: `redb`, `postgres`, `scylla`.
    pub fn new(inner: Arc<dyn MessageStore>, backend: &'static str) -> Self {
        InstrumentedMessageStore {
            inner,
            backend,
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
        let span = tracing::info_span!(
            "store",
            store = "messages",
            backend = self.backend,
            operation = OPERATIONS[op as usize]
        );
        let result = call.instrument(span).await;
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tracing::span::{Attributes, Id};
    use tracing::subscriber::Subscriber;
    use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
    use tracing_subscriber::registry::LookupSpan;

    use super::*;
    use crate::messages::redb_store::RedbMessageStore;

    /// A span opened: its name, its parent's name and its fields as `Debug` text.
    #[derive(Clone, Debug)]
    struct Opened {
        name: String,
        parent: Option<String>,
        fields: String,
    }

    /// Every span opened.
    #[derive(Clone, Default)]
    struct Spans(Arc<Mutex<Vec<Opened>>>);

    impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Spans {
        fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
            let span = ctx.span(id).expect("the span just opened");
            let parent = span.parent().map(|p| p.name().to_string());
            let fields = format!("{:?}", attrs.values());
            self.0.lock().unwrap().push(Opened {
                name: span.name().to_string(),
                parent,
                fields,
            });
        }
    }

    #[tokio::test]
    async fn every_call_is_a_store_span_under_the_callers_span() {
        let dir = tempfile::tempdir().unwrap();
        let redb = RedbMessageStore::open(&dir.path().join("m.redb")).unwrap();
        let store = InstrumentedMessageStore::new(Arc::new(redb), "redb");
        let spans = Spans::default();
        let _guard =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(spans.clone()));
        let page = store.page(
            Uuid::new_v4(),
            HistoryQuery::Before {
                before: None,
                limit: 10,
            },
        );
        page.instrument(tracing::info_span!("request"))
            .await
            .unwrap();
        let seen = spans.0.lock().unwrap().clone();
        let store = seen
            .iter()
            .find(|s| s.name == "store")
            .expect("a store span");
        assert_eq!(store.parent.as_deref(), Some("request"), "{store:?}");
        assert!(store.fields.contains(r#"backend: "redb""#), "{store:?}");
        assert!(store.fields.contains(r#"operation: "page""#), "{store:?}");
    }
}
