//! The channel service through its router interface, on a real Raft log on disk.

use std::sync::Arc;

use chorus_channel_node::{ChannelNodeConfig, ChannelService, StateLimits};
use chorus_cluster::{
    BusEvent, ChannelRouter, FanoutBus, LocalBus, PublishRequest, Replay, RouteError,
};
use chorus_core::{HistoryQuery, MessageStore, RedbMessageStore};
use chorus_protocol::EventKind;
use uuid::Uuid;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    async fn start(
        &self,
        limits: StateLimits,
        snapshot_every: u64,
    ) -> (ChannelService, RedbMessageStore, Arc<LocalBus>) {
        let messages = open_messages(&self.dir.path().join("messages.redb")).await;
        let bus = Arc::new(LocalBus::new(1024));
        let mut config = ChannelNodeConfig::new(self.dir.path().join("channels"));
        config.limits = limits;
        config.snapshot_every = snapshot_every;
        let service = ChannelService::start(
            config,
            Arc::new(messages.clone()),
            bus.clone() as Arc<dyn FanoutBus>,
        )
        .await
        .unwrap();
        (service, messages, bus)
    }
}

/// Opens the message store, waiting (boundedly) for a previous service in this process to let go
/// of it: openraft's state-machine task, which holds the store through the state machine, ends
/// shortly after `Raft::shutdown` returns rather than before (seen once in a full CI run as
/// "Database already open"). A process restart, the real case, releases it at exit.
async fn open_messages(path: &std::path::Path) -> RedbMessageStore {
    for _ in 0..100 {
        match RedbMessageStore::open(path) {
            Ok(store) => return store,
            Err(err) if err.to_string().contains("already open") => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(err) => panic!("cannot open {}: {err}", path.display()),
        }
    }
    panic!(
        "{} is still held by the previous service after 2 s",
        path.display()
    )
}

fn request(channel: Uuid, author: Uuid, nonce: &str) -> PublishRequest {
    PublishRequest::message(channel, author, nonce.into(), format!("message {nonce}"))
}

#[tokio::test]
async fn acknowledged_messages_are_sequenced_stored_and_published_in_order() {
    let fixture = Fixture::new();
    let (service, messages, bus) = fixture.start(StateLimits::default(), 20_000).await;
    let mut events = bus.attach();
    let (channel, author) = (Uuid::new_v4(), Uuid::new_v4());

    // Submit ten messages back to back (pipelined), then await their tickets.
    let mut tickets = Vec::new();
    for n in 0..10 {
        tickets.push(
            service
                .submit(request(channel, author, &n.to_string()))
                .await
                .unwrap(),
        );
    }
    let mut seqs = Vec::new();
    for ticket in tickets {
        seqs.push(ticket.await.unwrap().seq);
    }
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());

    for expected in 1..=10 {
        match events.recv().await.unwrap() {
            BusEvent::Message(message) => assert_eq!(message.seq, expected),
            other => panic!("unexpected {other:?}"),
        }
    }
    let stored = messages
        .page(
            channel,
            HistoryQuery::After {
                after: 0,
                limit: 100,
            },
        )
        .await
        .unwrap();
    assert_eq!(stored.iter().map(|m| m.seq).collect::<Vec<_>>(), seqs);
    service.shutdown().await;
}

#[tokio::test]
async fn a_burst_of_submits_is_group_committed_in_order_and_survives_a_restart() {
    let fixture = Fixture::new();
    let channels: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    let author = Uuid::new_v4();
    let per_channel = 400u64;
    {
        let (service, messages, _bus) = fixture.start(StateLimits::default(), 20_000).await;
        // 1,600 submits queued back to back: far more than one fsync's worth, so they are
        // sequenced in batches; a repeated nonce inside the burst is still one message.
        let mut tickets = Vec::new();
        for n in 0..per_channel {
            for channel in &channels {
                let nonce = format!("{n}");
                tickets.push(
                    service
                        .submit(request(*channel, author, &nonce))
                        .await
                        .unwrap(),
                );
            }
        }
        let repeat = service
            .submit(request(channels[0], author, "7"))
            .await
            .unwrap();
        let mut seen: Vec<Vec<u64>> = vec![Vec::new(); channels.len()];
        for (i, ticket) in tickets.into_iter().enumerate() {
            let ack = ticket.await.unwrap();
            assert!(!ack.duplicate);
            seen[i % channels.len()].push(ack.seq);
        }
        for seqs in &seen {
            assert_eq!(
                *seqs,
                (1..=per_channel).collect::<Vec<_>>(),
                "submit order is seq order"
            );
        }
        let repeat = repeat.await.unwrap();
        assert!(repeat.duplicate);
        assert_eq!(repeat.seq, 8);
        for channel in &channels {
            let stored = messages
                .page(
                    *channel,
                    HistoryQuery::After {
                        after: 0,
                        limit: 1_000,
                    },
                )
                .await
                .unwrap();
            assert_eq!(stored.len() as u64, per_channel);
        }
        service.shutdown().await;
    }
    let (service, _messages, _bus) = fixture.start(StateLimits::default(), 20_000).await;
    assert_eq!(
        service.last_seqs(&channels).await.unwrap(),
        vec![per_channel; channels.len()]
    );
    service.shutdown().await;
}

#[tokio::test]
async fn a_repeated_nonce_is_acknowledged_with_the_original() {
    let fixture = Fixture::new();
    let (service, messages, _bus) = fixture.start(StateLimits::default(), 20_000).await;
    let (channel, author) = (Uuid::new_v4(), Uuid::new_v4());
    let first = service
        .submit(request(channel, author, "same"))
        .await
        .unwrap()
        .await
        .unwrap();
    let again = service
        .submit(request(channel, author, "same"))
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!((again.message_id, again.seq), (first.message_id, first.seq));
    let stored = messages
        .page(
            channel,
            HistoryQuery::After {
                after: 0,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    service.shutdown().await;
}

#[tokio::test]
async fn a_restarted_node_keeps_sequences_nonces_and_replay_buffers() {
    let fixture = Fixture::new();
    let limits = StateLimits {
        replay_buffer: 8,
        dedup_window: 64,
    };
    let (channel, author) = (Uuid::new_v4(), Uuid::new_v4());
    {
        // Snapshot every 5 entries, so the restart goes through snapshot + log replay.
        let (service, _messages, _bus) = fixture.start(limits, 5).await;
        for n in 1..=12 {
            service
                .submit(request(channel, author, &n.to_string()))
                .await
                .unwrap()
                .await
                .unwrap();
        }
        service.shutdown().await;
    }
    let (service, messages, _bus) = fixture.start(limits, 5).await;
    assert_eq!(service.last_seqs(&[channel]).await.unwrap(), vec![12]);
    let again = service
        .submit(request(channel, author, "12"))
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(again.duplicate, "nonces survive a restart");
    let next = service
        .submit(request(channel, author, "13"))
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(next.seq, 13);
    match service.replay(channel, 9).await.unwrap() {
        Replay::Events(events) => {
            assert_eq!(
                events.iter().map(|e| e.seq).collect::<Vec<_>>(),
                vec![10, 11, 12, 13]
            );
        }
        other => panic!("expected events, got {other:?}"),
    }
    assert_eq!(
        service.replay(channel, 2).await.unwrap(),
        Replay::TooOld { last_seq: 13 }
    );
    let stored = messages
        .page(
            channel,
            HistoryQuery::After {
                after: 0,
                limit: 100,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        stored.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=13).collect::<Vec<_>>()
    );
    service.shutdown().await;
}

#[tokio::test]
async fn edits_and_reactions_are_validated_sequenced_and_replayed() {
    let fixture = Fixture::new();
    let (service, messages, _bus) = fixture.start(StateLimits::default(), 20_000).await;
    let (channel, alice, bob) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let submit = |request: PublishRequest| {
        let service = service.clone();
        async move { service.submit(request).await.unwrap().await }
    };
    let first = submit(request(channel, alice, "m1")).await.unwrap();
    assert_eq!(first.seq, 1);

    // An edit of a seq the channel does not have is refused, and takes no seq.
    let edit_of_nothing = PublishRequest {
        kind: EventKind::Edit,
        target_seq: Some(7),
        ..request(channel, alice, "e1")
    };
    assert!(matches!(
        submit(edit_of_nothing).await,
        Err(RouteError::Rejected(why)) if why.contains('7')
    ));
    assert_eq!(service.last_seqs(&[channel]).await.unwrap(), vec![1]);

    let reaction = PublishRequest {
        kind: EventKind::ReactionAdd,
        target_seq: Some(1),
        emoji: Some("tada".into()),
        text: String::new(),
        ..request(channel, bob, "r1")
    };
    let ack = submit(reaction).await.unwrap();
    assert_eq!((ack.seq, ack.duplicate), (2, false));

    match service.replay(channel, 1).await.unwrap() {
        Replay::Events(events) => {
            assert_eq!(events.len(), 1);
            let event = &events[0];
            assert_eq!(
                (event.seq, event.kind, event.target_seq, event.author_id),
                (2, EventKind::ReactionAdd, Some(1), bob)
            );
            assert_eq!(event.emoji.as_deref(), Some("tada"));
        }
        other => panic!("expected events, got {other:?}"),
    }
    let stored = messages.event(channel, 2).await.unwrap().expect("stored");
    assert_eq!(stored.kind, EventKind::ReactionAdd);
    assert_eq!(
        messages.related(channel, &[1]).await.unwrap().len(),
        1,
        "the reaction is related to its message"
    );
    service.shutdown().await;
}

#[tokio::test]
async fn racing_identical_reactions_are_sequenced_once() {
    let fixture = Fixture::new();
    let (service, messages, _bus) = fixture.start(StateLimits::default(), 20_000).await;
    let (channel, alice, bob) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let first = service
        .submit(request(channel, alice, "m1"))
        .await
        .unwrap()
        .await
        .unwrap();
    let add = |nonce: &str| PublishRequest {
        kind: EventKind::ReactionAdd,
        target_seq: Some(first.seq),
        emoji: Some("tada".into()),
        text: String::new(),
        ..request(channel, bob, nonce)
    };

    // Two requests that both found no reaction, submitted before either is applied.
    let one = service.submit(add("r1")).await.unwrap();
    let two = service.submit(add("r2")).await.unwrap();
    let (one, two) = (one.await.unwrap(), two.await.unwrap());

    assert_eq!((one.seq, one.duplicate), (2, false));
    assert_eq!(
        (two.seq, two.message_id, two.duplicate),
        (2, one.message_id, true),
        "the second is acknowledged with the reaction already in effect"
    );
    assert_eq!(service.last_seqs(&[channel]).await.unwrap(), vec![2]);
    assert_eq!(
        messages.related(channel, &[first.seq]).await.unwrap().len(),
        1
    );
    service.shutdown().await;
}

#[tokio::test]
async fn a_thread_reply_to_a_reply_is_rejected() {
    let fixture = Fixture::new();
    let (service, _messages, _bus) = fixture.start(StateLimits::default(), 20_000).await;
    let (channel, alice) = (Uuid::new_v4(), Uuid::new_v4());
    let submit = |request: PublishRequest| {
        let service = service.clone();
        async move { service.submit(request).await.unwrap().await }
    };
    let reply = |nonce: &str, parent: u64| PublishRequest {
        parent_seq: Some(parent),
        ..request(channel, alice, nonce)
    };
    submit(request(channel, alice, "m1")).await.unwrap();
    assert_eq!(submit(reply("t2", 1)).await.unwrap().seq, 2);
    assert!(matches!(
        submit(reply("t3", 2)).await,
        Err(RouteError::Rejected(why)) if why.contains("thread reply")
    ));
    assert_eq!(service.last_seqs(&[channel]).await.unwrap(), vec![2]);
    service.shutdown().await;
}

/// A message store that refuses writes until told to recover, like a database during an outage.
struct FlakyStore {
    inner: RedbMessageStore,
    down: std::sync::atomic::AtomicBool,
    refused: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl MessageStore for FlakyStore {
    async fn append(
        &self,
        messages: &[chorus_protocol::MessageEvent],
    ) -> Result<(), chorus_core::StoreError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            self.refused
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            return Err(chorus_core::StoreError::Backend(
                "connection refused".into(),
            ));
        }
        self.inner.append(messages).await
    }

    async fn page(
        &self,
        channel: Uuid,
        query: HistoryQuery,
    ) -> Result<Vec<chorus_protocol::MessageEvent>, chorus_core::StoreError> {
        self.inner.page(channel, query).await
    }

    async fn message_page(
        &self,
        channel: Uuid,
        query: HistoryQuery,
    ) -> Result<Vec<chorus_protocol::MessageEvent>, chorus_core::StoreError> {
        self.inner.message_page(channel, query).await
    }

    async fn event(
        &self,
        channel: Uuid,
        seq: u64,
    ) -> Result<Option<chorus_protocol::MessageEvent>, chorus_core::StoreError> {
        self.inner.event(channel, seq).await
    }

    async fn related(
        &self,
        channel: Uuid,
        seqs: &[u64],
    ) -> Result<Vec<chorus_protocol::MessageEvent>, chorus_core::StoreError> {
        self.inner.related(channel, seqs).await
    }

    async fn search(
        &self,
        query: &chorus_core::messages::SearchQuery,
    ) -> Result<Vec<chorus_protocol::MessageEvent>, chorus_core::StoreError> {
        self.inner.search(query).await
    }

    async fn count_messages_after(
        &self,
        channel: Uuid,
        after: u64,
        cap: u64,
    ) -> Result<u64, chorus_core::StoreError> {
        self.inner.count_messages_after(channel, after, cap).await
    }
}

#[tokio::test]
async fn a_message_store_outage_pauses_sequencing_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let flaky = Arc::new(FlakyStore {
        inner: RedbMessageStore::open(&dir.path().join("messages.redb")).unwrap(),
        down: std::sync::atomic::AtomicBool::new(true),
        refused: std::sync::atomic::AtomicUsize::new(0),
    });
    let service = ChannelService::start(
        ChannelNodeConfig::new(dir.path().join("channels")),
        flaky.clone(),
        Arc::new(LocalBus::new(64)),
    )
    .await
    .unwrap();
    let (channel, author) = (Uuid::new_v4(), Uuid::new_v4());
    let mut tickets = Vec::new();
    for n in 0..5 {
        tickets.push(
            service
                .submit(request(channel, author, &n.to_string()))
                .await
                .unwrap(),
        );
    }
    // The store refuses writes for a while; then it comes back.
    while flaky.refused.load(std::sync::atomic::Ordering::SeqCst) < 2 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    flaky.down.store(false, std::sync::atomic::Ordering::SeqCst);
    let mut seqs = Vec::new();
    for ticket in tickets {
        seqs.push(
            ticket
                .await
                .expect("acknowledged once the store is back")
                .seq,
        );
    }
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    let stored = flaky
        .page(
            channel,
            HistoryQuery::After {
                after: 0,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        stored.len(),
        5,
        "nothing acknowledged is missing from history"
    );
    service.shutdown().await;
}

/// Archiving is decided where events are sequenced: once `set_archived` returns, a submit is
/// refused whoever sent it (one still in the pipeline when it was called may be refused too,
/// never lost: its sender gets the refusal), and the archive survives a restart of the node (it
/// is in the Raft log and in snapshots).
#[tokio::test]
async fn an_archived_channel_refuses_submits_until_unarchived_across_restarts() {
    let fixture = Fixture::new();
    let (channel, author) = (Uuid::new_v4(), Uuid::new_v4());
    {
        let (service, _, _) = fixture.start(StateLimits::default(), 3).await;
        let before = service
            .submit(request(channel, author, "before"))
            .await
            .unwrap();
        assert_eq!(before.await.unwrap().seq, 1);
        service.set_archived(channel, true).await.unwrap();
        for nonce in ["a", "b", "c", "d"] {
            let refused = service
                .submit(request(channel, author, nonce))
                .await
                .unwrap();
            assert_eq!(refused.await, Err(RouteError::Archived));
        }
        // Setting it again is harmless; another channel is unaffected.
        service.set_archived(channel, true).await.unwrap();
        let other = service
            .submit(request(Uuid::new_v4(), author, "other"))
            .await
            .unwrap();
        assert_eq!(other.await.unwrap().seq, 1);
        service.shutdown().await;
    }
    let (service, _, _) = fixture.start(StateLimits::default(), 3).await;
    let refused = service.submit(request(channel, author, "e")).await.unwrap();
    assert_eq!(refused.await, Err(RouteError::Archived), "after a restart");
    service.set_archived(channel, false).await.unwrap();
    let accepted = service.submit(request(channel, author, "f")).await.unwrap();
    assert_eq!(
        accepted.await.unwrap().seq,
        2,
        "no seq was taken while archived"
    );
    service.shutdown().await;
}
