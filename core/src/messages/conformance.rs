//! The behaviour every [`MessageStore`] must have, as test functions run against each backend
//! (`core/tests/message_stores.rs`). Every check uses fresh channel ids, so it can share a
//! database with other runs.

use chorus_protocol::MessageEvent;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{HistoryQuery, MessageStore};

/// Every check, by name.
pub const ALL: &[&str] = &[
    "pages_both_ways_in_order",
    "appends_are_idempotent",
    "channels_are_isolated",
    "empty_and_out_of_range_pages_are_empty",
    "large_batches_append",
];

/// Runs the check called `name`.
pub async fn run(name: &str, store: &dyn MessageStore) {
    match name {
        "pages_both_ways_in_order" => pages_both_ways_in_order(store).await,
        "appends_are_idempotent" => appends_are_idempotent(store).await,
        "channels_are_isolated" => channels_are_isolated(store).await,
        "empty_and_out_of_range_pages_are_empty" => {
            empty_and_out_of_range_pages_are_empty(store).await
        }
        "large_batches_append" => large_batches_append(store).await,
        other => panic!("no message-store check named {other}"),
    }
}

/// Messages 1..=n of a channel, with millisecond timestamps every backend keeps exactly.
pub fn messages(channel: Uuid, seqs: std::ops::RangeInclusive<u64>) -> Vec<MessageEvent> {
    let author = Uuid::new_v4();
    seqs.map(|seq| MessageEvent {
        channel_id: channel,
        seq,
        id: Uuid::now_v7(),
        author_id: author,
        text: format!("message {seq} ✓"),
        created_at: DateTime::<Utc>::from_timestamp_millis(1_700_000_000_000 + seq as i64).unwrap(),
        nonce: format!("n{seq}"),
    })
    .collect()
}

fn seqs(page: &[MessageEvent]) -> Vec<u64> {
    page.iter().map(|m| m.seq).collect()
}

pub async fn pages_both_ways_in_order(store: &dyn MessageStore) {
    let channel = Uuid::new_v4();
    let written = messages(channel, 1..=30);
    store.append(&written).await.unwrap();
    let newest = store
        .page(
            channel,
            HistoryQuery::Before {
                before: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        seqs(&newest),
        (21..=30).rev().collect::<Vec<_>>(),
        "newest first"
    );
    assert_eq!(newest[0], written[29], "every field round-trips");
    let older = store
        .page(
            channel,
            HistoryQuery::Before {
                before: Some(21),
                limit: 5,
            },
        )
        .await
        .unwrap();
    assert_eq!(seqs(&older), vec![20, 19, 18, 17, 16]);
    let oldest = store
        .page(channel, HistoryQuery::After { after: 0, limit: 3 })
        .await
        .unwrap();
    assert_eq!(seqs(&oldest), vec![1, 2, 3]);
    let tail = store
        .page(
            channel,
            HistoryQuery::After {
                after: 27,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(seqs(&tail), vec![28, 29, 30]);
}

pub async fn appends_are_idempotent(store: &dyn MessageStore) {
    let channel = Uuid::new_v4();
    let written = messages(channel, 1..=5);
    store.append(&written).await.unwrap();
    store.append(&written[2..]).await.unwrap();
    store.append_replayable(&written).await.unwrap();
    store.sync().await.unwrap();
    let all = store
        .page(
            channel,
            HistoryQuery::After {
                after: 0,
                limit: 100,
            },
        )
        .await
        .unwrap();
    assert_eq!(all, written);
}

pub async fn channels_are_isolated(store: &dyn MessageStore) {
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    store.append(&messages(a, 1..=3)).await.unwrap();
    store.append(&messages(b, 1..=2)).await.unwrap();
    let in_b = store
        .page(
            b,
            HistoryQuery::After {
                after: 0,
                limit: 100,
            },
        )
        .await
        .unwrap();
    assert_eq!(seqs(&in_b), vec![1, 2]);
    assert!(in_b.iter().all(|m| m.channel_id == b));
}

pub async fn empty_and_out_of_range_pages_are_empty(store: &dyn MessageStore) {
    let channel = Uuid::new_v4();
    assert!(
        store
            .page(
                channel,
                HistoryQuery::Before {
                    before: None,
                    limit: 10
                }
            )
            .await
            .unwrap()
            .is_empty()
    );
    store.append(&messages(channel, 1..=3)).await.unwrap();
    assert!(
        store
            .page(
                channel,
                HistoryQuery::After {
                    after: 3,
                    limit: 10
                }
            )
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .page(
                channel,
                HistoryQuery::After {
                    after: u64::MAX,
                    limit: 10
                }
            )
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .page(
                channel,
                HistoryQuery::Before {
                    before: Some(1),
                    limit: 10
                }
            )
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .page(
                channel,
                HistoryQuery::Before {
                    before: Some(0),
                    limit: 10
                }
            )
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn large_batches_append(store: &dyn MessageStore) {
    let channel = Uuid::new_v4();
    store.append(&messages(channel, 1..=12_000)).await.unwrap();
    let newest = store
        .page(
            channel,
            HistoryQuery::Before {
                before: None,
                limit: 200,
            },
        )
        .await
        .unwrap();
    assert_eq!(newest.first().map(|m| m.seq), Some(12_000));
    assert_eq!(newest.len(), 200);
    let across = store
        .page(
            channel,
            HistoryQuery::After {
                after: 9_990,
                limit: 20,
            },
        )
        .await
        .unwrap();
    assert_eq!(seqs(&across), (9_991..=10_010).collect::<Vec<_>>());
}
