//! The behaviour every [`MessageStore`] must have, as test functions run against each backend
//! (`core/tests/message_stores.rs`). Every check uses fresh channel ids, so it can share a
//! database with other runs.

use chorus_protocol::{EventKind, MessageEvent};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{HistoryQuery, MessageStore, SearchQuery};
use crate::StoreError;

/// Every check, by name.
pub const ALL: &[&str] = &[
    "pages_both_ways_in_order",
    "appends_are_idempotent",
    "channels_are_isolated",
    "empty_and_out_of_range_pages_are_empty",
    "large_batches_append",
    "message_pages_skip_other_kinds",
    "events_are_read_by_seq",
    "related_events_of_given_messages",
    "search_matches_text_author_dates_and_channels",
    "count_messages_after_counts_messages_up_to_cap",
    "delete_before_deletes_exactly_the_older_events",
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
        "message_pages_skip_other_kinds" => message_pages_skip_other_kinds(store).await,
        "events_are_read_by_seq" => events_are_read_by_seq(store).await,
        "related_events_of_given_messages" => related_events_of_given_messages(store).await,
        "search_matches_text_author_dates_and_channels" => {
            search_matches_text_author_dates_and_channels(store).await
        }
        "count_messages_after_counts_messages_up_to_cap" => {
            count_messages_after_counts_messages_up_to_cap(store).await
        }
        "delete_before_deletes_exactly_the_older_events" => {
            delete_before_deletes_exactly_the_older_events(store).await
        }
        other => panic!("no message-store check named {other}"),
    }
}

/// Messages 1..=n of a channel, with millisecond timestamps every backend keeps exactly.
pub fn messages(channel: Uuid, seqs: std::ops::RangeInclusive<u64>) -> Vec<MessageEvent> {
    let author = Uuid::new_v4();
    seqs.map(|seq| {
        MessageEvent::new_message(
            channel,
            seq,
            Uuid::now_v7(),
            author,
            format!("message {seq} ✓"),
            at(seq as i64),
            format!("n{seq}"),
        )
    })
    .collect()
}

/// A timestamp `millis` after a fixed origin, exact in every backend.
fn at(millis: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(1_700_000_000_000 + millis).unwrap()
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

/// Event builders for the checks of event kinds: `seq` is also the time, in milliseconds.
fn post(channel: Uuid, seq: u64, author: Uuid, text: &str) -> MessageEvent {
    MessageEvent::new_message(
        channel,
        seq,
        Uuid::now_v7(),
        author,
        text,
        at(seq as i64),
        format!("n{seq}"),
    )
}

fn reply(channel: Uuid, seq: u64, author: Uuid, parent: u64, text: &str) -> MessageEvent {
    MessageEvent {
        parent_seq: Some(parent),
        ..post(channel, seq, author, text)
    }
}

fn acting(channel: Uuid, seq: u64, author: Uuid, kind: EventKind, target: u64) -> MessageEvent {
    MessageEvent {
        kind,
        target_seq: Some(target),
        ..post(channel, seq, author, "")
    }
}

fn edit(channel: Uuid, seq: u64, author: Uuid, target: u64, text: &str) -> MessageEvent {
    MessageEvent {
        text: text.into(),
        ..acting(channel, seq, author, EventKind::Edit, target)
    }
}

fn reaction(channel: Uuid, seq: u64, author: Uuid, kind: EventKind, target: u64) -> MessageEvent {
    MessageEvent {
        emoji: Some("tada".into()),
        ..acting(channel, seq, author, kind, target)
    }
}

/// A channel with every kind: messages 1, 2, 5, 9 and reply 7 (to 1); 3 edits 1, 4 and 6 react
/// to 2, 8 deletes 5; 2 is an automatic reply (focus mode), which history keeps as such.
fn mixed_channel(channel: Uuid) -> Vec<MessageEvent> {
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    vec![
        MessageEvent {
            mentions: vec![bob],
            ..post(channel, 1, alice, "hello <@bob>")
        },
        MessageEvent {
            automatic: true,
            ..post(channel, 2, bob, "hi, I am focusing")
        },
        MessageEvent {
            mentions: vec![bob],
            ..edit(channel, 3, alice, 1, "hello again <@bob>")
        },
        reaction(channel, 4, alice, EventKind::ReactionAdd, 2),
        post(channel, 5, bob, "oops"),
        reaction(channel, 6, alice, EventKind::ReactionRemove, 2),
        reply(channel, 7, bob, 1, "in a thread"),
        acting(channel, 8, bob, EventKind::Delete, 5),
        post(channel, 9, alice, "last"),
    ]
}

/// The value of a call a store may not support: `None`, after saying so, on
/// `StoreError::Unsupported`.
fn supported<T>(check: &str, result: Result<T, StoreError>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(StoreError::Unsupported(why)) => {
            println!("SKIPPED: {check}: this store does not support it ({why})");
            None
        }
        Err(err) => panic!("{check}: {err}"),
    }
}

pub async fn message_pages_skip_other_kinds(store: &dyn MessageStore) {
    let channel = Uuid::new_v4();
    let written = mixed_channel(channel);
    store.append(&written).await.unwrap();
    let page = |query| async move { store.message_page(channel, query).await.unwrap() };
    let newest = page(HistoryQuery::Before {
        before: None,
        limit: 3,
    })
    .await;
    assert_eq!(seqs(&newest), vec![9, 7, 5], "limits count messages only");
    assert_eq!(
        newest[1], written[6],
        "a reply is a message, every field kept"
    );
    let older = page(HistoryQuery::Before {
        before: Some(5),
        limit: 10,
    })
    .await;
    assert_eq!(seqs(&older), vec![2, 1]);
    assert_eq!(older[1], written[0], "the original text, with its mentions");
    let oldest = page(HistoryQuery::After { after: 0, limit: 2 }).await;
    assert_eq!(seqs(&oldest), vec![1, 2]);
    let next = page(HistoryQuery::After { after: 2, limit: 2 }).await;
    assert_eq!(seqs(&next), vec![5, 7]);
    assert!(
        page(HistoryQuery::After { after: 9, limit: 5 })
            .await
            .is_empty()
    );
    assert!(
        page(HistoryQuery::Before {
            before: Some(1),
            limit: 5
        })
        .await
        .is_empty()
    );
    // `page` still returns every kind, every field intact.
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

pub async fn events_are_read_by_seq(store: &dyn MessageStore) {
    let channel = Uuid::new_v4();
    let written = mixed_channel(channel);
    store.append(&written).await.unwrap();
    for event in &written {
        assert_eq!(
            store.event(channel, event.seq).await.unwrap().as_ref(),
            Some(event)
        );
    }
    assert_eq!(store.event(channel, 10).await.unwrap(), None);
    assert_eq!(store.event(channel, 0).await.unwrap(), None);
    assert_eq!(store.event(Uuid::new_v4(), 1).await.unwrap(), None);
}

pub async fn related_events_of_given_messages(store: &dyn MessageStore) {
    let (channel, other) = (Uuid::new_v4(), Uuid::new_v4());
    let written = mixed_channel(channel);
    store.append(&written).await.unwrap();
    // Another channel with the same seqs must not leak in.
    store.append(&mixed_channel(other)).await.unwrap();
    // Written again, as after a crash: still one of each.
    store.append_replayable(&written).await.unwrap();
    store.sync().await.unwrap();
    let related = |of: Vec<u64>| async move { store.related(channel, &of).await.unwrap() };
    let of_one = related(vec![1]).await;
    assert_eq!(seqs(&of_one), vec![3, 7], "its edit and its reply");
    assert_eq!(of_one, vec![written[2].clone(), written[6].clone()]);
    assert_eq!(seqs(&related(vec![2]).await), vec![4, 6], "its reactions");
    assert_eq!(
        seqs(&related(vec![5, 2, 1, 1]).await),
        vec![3, 4, 6, 7, 8],
        "in seq order, each once"
    );
    assert!(related(vec![9]).await.is_empty());
    assert!(related(vec![7, 42]).await.is_empty());
    assert!(related(Vec::new()).await.is_empty());
    assert!(
        store
            .related(Uuid::new_v4(), &[1, 2])
            .await
            .unwrap()
            .is_empty(),
        "nothing for another channel"
    );
    assert!(
        related(vec![1])
            .await
            .iter()
            .all(|e| e.channel_id == channel)
    );
}

pub async fn search_matches_text_author_dates_and_channels(store: &dyn MessageStore) {
    const CHECK: &str = "search_matches_text_author_dates_and_channels";
    let (a, b, unlisted) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    // Times (ms) interleave the channels; each channel's own times grow with seq.
    let timed = |event: MessageEvent, millis: i64| MessageEvent {
        created_at: at(millis),
        ..event
    };
    let in_a = vec![
        timed(post(a, 1, alice, "Lunch at noon?"), 10),
        timed(post(a, 2, bob, "no thanks"), 20),
        timed(post(a, 3, alice, "lnch typo"), 30),
        timed(edit(a, 4, alice, 3, "LUNCH, fixed"), 40),
        timed(post(a, 5, bob, "dinner 100%"), 50),
        timed(reaction(a, 6, bob, EventKind::ReactionAdd, 1), 60),
    ];
    let in_b = vec![
        timed(post(b, 1, bob, "lunch tomorrow"), 35),
        timed(post(b, 2, alice, "other"), 45),
    ];
    let elsewhere = vec![timed(post(unlisted, 1, alice, "lunch"), 70)];
    for events in [&in_a, &in_b, &elsewhere] {
        store.append(events).await.unwrap();
    }
    let base = SearchQuery {
        channels: vec![a, b],
        text: None,
        author: None,
        from: None,
        to: None,
        limit: 50,
    };
    let search = |query: SearchQuery| async move { store.search(&query).await };
    let found = |events: Vec<MessageEvent>| -> Vec<(Uuid, u64)> {
        events.iter().map(|e| (e.channel_id, e.seq)).collect()
    };
    let text = |t: &str| SearchQuery {
        text: Some(t.into()),
        ..base.clone()
    };
    let Some(lunch) = supported(CHECK, search(text("lunch")).await) else {
        return;
    };
    assert_eq!(
        found(lunch.clone()),
        vec![(b, 1), (a, 3), (a, 1)],
        "newest first, case-insensitive, a message matching through its edit"
    );
    assert_eq!(
        lunch[1], in_a[2],
        "the message itself, with its original text"
    );
    assert!(lunch.iter().all(|e| e.kind == EventKind::Message));
    assert_eq!(
        found(search(text("LUNCH")).await.unwrap()),
        found(lunch.clone())
    );
    assert_eq!(
        found(
            search(SearchQuery {
                limit: 2,
                ..text("lunch")
            })
            .await
            .unwrap()
        ),
        vec![(b, 1), (a, 3)]
    );
    assert_eq!(
        found(
            search(SearchQuery {
                channels: vec![b],
                ..text("lunch")
            })
            .await
            .unwrap()
        ),
        vec![(b, 1)],
        "only the given channels"
    );
    assert_eq!(found(search(text("100%")).await.unwrap()), vec![(a, 5)]);
    assert!(
        search(text("%")).await.unwrap().len() == 1,
        "text is literal, not a pattern"
    );
    assert!(search(text("breakfast")).await.unwrap().is_empty());
    assert_eq!(
        found(
            search(SearchQuery {
                author: Some(alice),
                ..base.clone()
            })
            .await
            .unwrap()
        ),
        vec![(b, 2), (a, 3), (a, 1)],
        "by author, without text"
    );
    assert_eq!(
        found(
            search(SearchQuery {
                from: Some(at(30)),
                to: Some(at(45)),
                ..base.clone()
            })
            .await
            .unwrap()
        ),
        vec![(b, 1), (a, 3)],
        "from inclusive, to exclusive"
    );
    assert_eq!(
        found(
            search(SearchQuery {
                author: Some(bob),
                from: Some(at(20)),
                ..text("lunch")
            })
            .await
            .unwrap()
        ),
        vec![(b, 1)],
        "filters combine"
    );
    assert!(
        search(SearchQuery {
            channels: Vec::new(),
            ..text("lunch")
        })
        .await
        .unwrap()
        .is_empty()
    );
}

pub async fn count_messages_after_counts_messages_up_to_cap(store: &dyn MessageStore) {
    const CHECK: &str = "count_messages_after_counts_messages_up_to_cap";
    let channel = Uuid::new_v4();
    store.append(&mixed_channel(channel)).await.unwrap();
    let count = |after, cap| async move { store.count_messages_after(channel, after, cap).await };
    let Some(all) = supported(CHECK, count(0, 100).await) else {
        return;
    };
    assert_eq!(all, 5, "messages 1, 2, 5, 9 and reply 7");
    assert_eq!(count(2, 100).await.unwrap(), 3);
    assert_eq!(count(7, 100).await.unwrap(), 1);
    assert_eq!(count(0, 2).await.unwrap(), 2, "at most cap");
    assert_eq!(count(0, 0).await.unwrap(), 0);
    assert_eq!(count(9, 100).await.unwrap(), 0);
    assert_eq!(count(u64::MAX, 100).await.unwrap(), 0);
    assert_eq!(
        store
            .count_messages_after(Uuid::new_v4(), 0, 100)
            .await
            .unwrap(),
        0
    );
    let pairs = [
        (channel, 2),
        (Uuid::new_v4(), 0),
        (channel, 0),
        (channel, u64::MAX),
    ];
    assert_eq!(
        store.count_messages_after_each(&pairs, 100).await.unwrap(),
        vec![3, 0, 5, 0],
        "one count per pair, in order"
    );
    assert_eq!(
        store.count_messages_after_each(&pairs, 4).await.unwrap(),
        vec![3, 0, 4, 0],
        "each at most cap"
    );
    assert_eq!(
        store.count_messages_after_each(&[], 100).await.unwrap(),
        Vec::<u64>::new()
    );
}

/// Retention: events created before the cutoff go (with what points at them from the index),
/// the rest stay, other channels are untouched, and a second pass deletes nothing.
pub async fn delete_before_deletes_exactly_the_older_events(store: &dyn MessageStore) {
    let (channel, other) = (Uuid::new_v4(), Uuid::new_v4());
    let mut events = messages(channel, 1..=20);
    // A reaction (seq 21, created at 21 ms) on message 3, and a reply (22) to message 15.
    let author = events[0].author_id;
    events.push(MessageEvent {
        kind: EventKind::ReactionAdd,
        target_seq: Some(3),
        emoji: Some("tada".into()),
        text: String::new(),
        ..MessageEvent::new_message(channel, 21, Uuid::now_v7(), author, "", at(21), "r21")
    });
    events.push(MessageEvent {
        parent_seq: Some(15),
        ..MessageEvent::new_message(channel, 22, Uuid::now_v7(), author, "re", at(22), "r22")
    });
    store.append(&events).await.unwrap();
    store.append(&messages(other, 1..=20)).await.unwrap();

    // Created strictly before 13 ms: seqs 1..=12.
    assert_eq!(store.delete_before(channel, at(13)).await.unwrap(), 12);
    let left = store
        .page(
            channel,
            HistoryQuery::After {
                after: 0,
                limit: 100,
            },
        )
        .await
        .unwrap();
    assert_eq!(seqs(&left), (13..=22).collect::<Vec<_>>());
    assert_eq!(store.event(channel, 12).await.unwrap(), None);
    // The reply to a kept message is still found through the index.
    let related = store.related(channel, &[15]).await.unwrap();
    assert_eq!(seqs(&related), [22]);
    assert_eq!(store.delete_before(channel, at(13)).await.unwrap(), 0);
    let untouched = store
        .page(
            other,
            HistoryQuery::After {
                after: 0,
                limit: 100,
            },
        )
        .await
        .unwrap();
    assert_eq!(untouched.len(), 20);
    // Everything, reaction and reply included.
    assert_eq!(store.delete_before(channel, at(1_000)).await.unwrap(), 10);
    assert_eq!(
        store.count_messages_after(channel, 0, 100).await.unwrap(),
        0
    );
}
