//! How the ScyllaDB store reads: which partitions (buckets) a read visits, in which order, and
//! how it walks past events it does not want. Pure planning, separate from the driver calls, so
//! it is tested without a server.

use std::collections::BTreeMap;
use std::future::Future;

use chorus_protocol::MessageEvent;

use super::HistoryQuery;
use crate::StoreError;

/// Sequence numbers per partition.
pub const BUCKET_SIZE: u64 = 10_000;

/// Rows asked for per query when a read filters by kind: enough to walk past a burst of
/// reactions in one round trip, few enough to stay a small read.
pub(crate) const FILTERED_CHUNK: usize = 500;

/// Values per `IN (…)`: ScyllaDB refuses more than 100 clustering-key restrictions per query.
pub(crate) const MAX_IN_VALUES: usize = 100;

/// The partition bucket of a sequence number.
pub fn bucket_of(seq: u64) -> i64 {
    (seq / BUCKET_SIZE) as i64
}

/// One step of a page read: which bucket, and the bound on `seq` inside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageStep {
    /// `seq < bound`, newest first.
    Below { bucket: i64, bound: i64 },
    /// `seq > bound`, oldest first.
    Above { bucket: i64, bound: i64 },
}

impl PageStep {
    /// The same step, continuing after the row `seq` (in the step's direction).
    fn past(self, seq: u64) -> PageStep {
        let bound = seq.min(i64::MAX as u64) as i64;
        match self {
            PageStep::Below { bucket, .. } => PageStep::Below { bucket, bound },
            PageStep::Above { bucket, .. } => PageStep::Above { bucket, bound },
        }
    }
}

/// The buckets a page read visits, in order, given the channel's newest bucket. The reader stops
/// as soon as it has `limit` rows.
pub fn plan(query: HistoryQuery, last_bucket: i64) -> Vec<PageStep> {
    match query {
        HistoryQuery::Before { before, .. } => {
            let (first, bound) = match before {
                Some(0) => return Vec::new(),
                Some(before) => (
                    bucket_of(before - 1).min(last_bucket),
                    before.min(i64::MAX as u64) as i64,
                ),
                None => (last_bucket, i64::MAX),
            };
            (0..=first)
                .rev()
                .map(|bucket| PageStep::Below { bucket, bound })
                .collect()
        }
        HistoryQuery::After { after, .. } => {
            let Some(start) = after.checked_add(1) else {
                return Vec::new();
            };
            let bound = after.min(i64::MAX as u64) as i64;
            (bucket_of(start)..=last_bucket)
                .map(|bucket| PageStep::Above { bucket, bound })
                .collect()
        }
    }
}

/// Follows `steps` until `limit` events that `keep` accepts are found. `fetch(step, want)` reads at
/// most `want` rows of the step's bucket beyond its bound, in its direction; a short answer means
/// the bucket is exhausted. Without filtering (`chunk` 0) each bucket costs one query, asking for
/// exactly what is missing; with filtering the walk asks for at least `chunk` rows at a time and
/// continues inside a bucket after the last row it saw.
pub(crate) async fn walk<F, Fut>(
    steps: Vec<PageStep>,
    limit: usize,
    chunk: usize,
    keep: impl Fn(&MessageEvent) -> bool,
    mut fetch: F,
) -> Result<Vec<MessageEvent>, StoreError>
where
    F: FnMut(PageStep, usize) -> Fut,
    Fut: Future<Output = Result<Vec<MessageEvent>, StoreError>>,
{
    let mut page = Vec::new();
    for mut step in steps {
        while page.len() < limit {
            let want = (limit - page.len()).max(chunk).min(i32::MAX as usize);
            let rows = fetch(step, want).await?;
            let exhausted = rows.len() < want;
            for event in rows {
                step = step.past(event.seq);
                if keep(&event) {
                    page.push(event);
                    if page.len() == limit {
                        return Ok(page);
                    }
                }
            }
            if exhausted {
                break;
            }
        }
    }
    Ok(page)
}

/// The `related` queries: for each bucket of the given seqs (in order), the distinct seqs in it, at
/// most [`MAX_IN_VALUES`] per query.
pub(crate) fn relation_queries(seqs: &[u64]) -> Vec<(i64, Vec<i64>)> {
    let mut by_bucket: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for &seq in seqs {
        by_bucket
            .entry(bucket_of(seq))
            .or_default()
            .push(seq.min(i64::MAX as u64) as i64);
    }
    let mut queries = Vec::new();
    for (bucket, mut in_bucket) in by_bucket {
        in_bucket.sort_unstable();
        in_bucket.dedup();
        for chunk in in_bucket.chunks(MAX_IN_VALUES) {
            queries.push((bucket, chunk.to_vec()));
        }
    }
    queries
}

/// Several queries' relations as one answer: in seq order, each event once.
pub(crate) fn in_seq_order(mut events: Vec<MessageEvent>) -> Vec<MessageEvent> {
    events.sort_by_key(|e| e.seq);
    events.dedup_by_key(|e| e.seq);
    events
}

#[cfg(test)]
mod tests {
    use chorus_protocol::EventKind;
    use uuid::Uuid;

    use super::*;

    #[test]
    fn buckets_hold_ten_thousand_sequence_numbers() {
        assert_eq!(
            (
                bucket_of(1),
                bucket_of(9_999),
                bucket_of(10_000),
                bucket_of(25_000)
            ),
            (0, 0, 1, 2)
        );
    }

    #[test]
    fn pages_walk_buckets_towards_their_direction() {
        let newest = plan(
            HistoryQuery::Before {
                before: None,
                limit: 50,
            },
            2,
        );
        assert_eq!(
            newest,
            vec![
                PageStep::Below {
                    bucket: 2,
                    bound: i64::MAX
                },
                PageStep::Below {
                    bucket: 1,
                    bound: i64::MAX
                },
                PageStep::Below {
                    bucket: 0,
                    bound: i64::MAX
                },
            ]
        );
        // `before` 10,000 means seq ≤ 9,999: bucket 0 only.
        assert_eq!(
            plan(
                HistoryQuery::Before {
                    before: Some(10_000),
                    limit: 50
                },
                2
            ),
            vec![PageStep::Below {
                bucket: 0,
                bound: 10_000
            }]
        );
        assert!(
            plan(
                HistoryQuery::Before {
                    before: Some(0),
                    limit: 50
                },
                2
            )
            .is_empty()
        );
        assert_eq!(
            plan(
                HistoryQuery::After {
                    after: 9_999,
                    limit: 50
                },
                2
            ),
            vec![
                PageStep::Above {
                    bucket: 1,
                    bound: 9_999
                },
                PageStep::Above {
                    bucket: 2,
                    bound: 9_999
                },
            ]
        );
        assert!(
            plan(
                HistoryQuery::After {
                    after: 30_000,
                    limit: 50
                },
                2
            )
            .is_empty()
        );
        assert!(
            plan(
                HistoryQuery::After {
                    after: u64::MAX,
                    limit: 50
                },
                2
            )
            .is_empty()
        );
    }

    /// A channel held in memory, read the way the statements read a bucket.
    struct FakeChannel {
        events: Vec<MessageEvent>,
        queries: std::cell::Cell<usize>,
    }

    impl FakeChannel {
        /// Seqs 1..=n; every seq divisible by `reaction_every` is a reaction.
        fn new(n: u64, reaction_every: u64) -> Self {
            let events = (1..=n)
                .map(|seq| {
                    let mut event = MessageEvent::new_message(
                        Uuid::nil(),
                        seq,
                        Uuid::nil(),
                        Uuid::nil(),
                        "",
                        chrono::DateTime::from_timestamp(0, 0).unwrap(),
                        "",
                    );
                    if seq % reaction_every == 0 {
                        event.kind = EventKind::ReactionAdd;
                        event.target_seq = Some(1);
                    }
                    event
                })
                .collect();
            FakeChannel {
                events,
                queries: std::cell::Cell::new(0),
            }
        }

        async fn fetch(
            &self,
            step: PageStep,
            want: usize,
        ) -> Result<Vec<MessageEvent>, StoreError> {
            self.queries.set(self.queries.get() + 1);
            let in_bucket = |e: &&MessageEvent, bucket| bucket_of(e.seq) == bucket;
            Ok(match step {
                PageStep::Below { bucket, bound } => self
                    .events
                    .iter()
                    .rev()
                    .filter(|e| in_bucket(e, bucket) && (e.seq as i64) < bound)
                    .take(want)
                    .cloned()
                    .collect(),
                PageStep::Above { bucket, bound } => self
                    .events
                    .iter()
                    .filter(|e| in_bucket(e, bucket) && (e.seq as i64) > bound)
                    .take(want)
                    .cloned()
                    .collect(),
            })
        }

        async fn read(&self, query: HistoryQuery, limit: usize, messages_only: bool) -> Vec<u64> {
            let chunk = if messages_only { 7 } else { 0 };
            let last_bucket = bucket_of(self.events.len() as u64);
            let page = walk(
                plan(query, last_bucket),
                limit,
                chunk,
                |e| !messages_only || e.kind == EventKind::Message,
                |step, want| self.fetch(step, want),
            )
            .await
            .unwrap();
            page.iter().map(|e| e.seq).collect()
        }
    }

    fn block_on<T>(future: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn an_unfiltered_walk_costs_one_query_per_bucket() {
        let channel = FakeChannel::new(25_000, u64::MAX);
        let after = HistoryQuery::After {
            after: 9_990,
            limit: 20,
        };
        assert_eq!(
            block_on(channel.read(after, 20, false)),
            (9_991..=10_010).collect::<Vec<_>>()
        );
        assert_eq!(channel.queries.get(), 2);
    }

    #[test]
    fn a_filtered_walk_skips_other_kinds_inside_and_across_buckets() {
        // Every third event is a reaction.
        let channel = FakeChannel::new(20_010, 3);
        let newest = HistoryQuery::Before {
            before: None,
            limit: 10,
        };
        let expected: Vec<u64> = (1..=20_010).rev().filter(|s| s % 3 != 0).take(10).collect();
        assert_eq!(block_on(channel.read(newest, 10, true)), expected);
        let across = HistoryQuery::After {
            after: 9_995,
            limit: 6,
        };
        assert_eq!(
            block_on(channel.read(across, 6, true)),
            vec![9_997, 9_998, 10_000, 10_001, 10_003, 10_004]
        );
        // A bucket with nothing wanted is walked through, not given up on.
        let reactions_only = FakeChannel::new(30, 1);
        let everything = HistoryQuery::After { after: 0, limit: 5 };
        assert!(block_on(reactions_only.read(everything, 5, true)).is_empty());
        assert_eq!(reactions_only.queries.get(), 5, "30 rows, 7 at a time");
    }

    #[test]
    fn relation_queries_group_by_bucket_and_respect_the_in_limit() {
        assert_eq!(
            relation_queries(&[10_001, 3, 3, 1]),
            vec![(0, vec![1, 3]), (1, vec![10_001])]
        );
        let many: Vec<u64> = (1..=250).collect();
        let queries = relation_queries(&many);
        assert_eq!(
            queries
                .iter()
                .map(|(b, s)| (*b, s.len()))
                .collect::<Vec<_>>(),
            vec![(0, 100), (0, 100), (0, 50)]
        );
        assert!(relation_queries(&[]).is_empty());
    }

    #[test]
    fn relations_come_back_once_in_seq_order() {
        let event = |seq| {
            MessageEvent::new_message(
                Uuid::nil(),
                seq,
                Uuid::nil(),
                Uuid::nil(),
                "",
                chrono::DateTime::from_timestamp(0, 0).unwrap(),
                "",
            )
        };
        let merged = in_seq_order(vec![event(9), event(4), event(9), event(6)]);
        assert_eq!(
            merged.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![4, 6, 9]
        );
    }
}
