//! Conformance checks of the outgoing webhooks' tables (`crate::outgoing::SubscriptionStore`):
//! subscriptions with their channels, cursors moved by compare-and-set with the deliveries they
//! cover (each (subscription, channel, seq) once), claims that lease, attempts recorded, the log
//! newest first.

use chorus_protocol::EventKind;
use chrono::Duration;
use uuid::Uuid;

use super::{channel, now_ms, user};
use crate::MetadataStore;
use crate::model::ChannelKind;
use crate::outgoing::{AttemptRecord, DeliveryStatus, EventSubscription, NewDelivery};

fn delivery(channel: Uuid, seq: u64) -> NewDelivery {
    NewDelivery {
        id: Uuid::now_v7(),
        channel_id: channel,
        seq,
        kind: EventKind::Message,
        body: format!("{{\"seq\":{seq}}}"),
    }
}

/// A workspace with one channel, and a subscription (not stored) to `events` in it.
async fn subscription_in_new_workspace(
    store: &dyn MetadataStore,
    owner: &str,
    events: Vec<EventKind>,
) -> (Uuid, EventSubscription) {
    let owner = user(store, owner).await;
    let workspace = store.create_workspace("Acme", owner).await.unwrap();
    let general = store
        .create_channel(&channel(
            workspace.id,
            "general",
            ChannelKind::Public,
            owner,
        ))
        .await
        .unwrap();
    let sub = EventSubscription {
        id: Uuid::now_v7(),
        workspace_id: workspace.id,
        url: "https://example.com/hook".into(),
        secret: "whsec_test".into(),
        events,
        channel_ids: vec![general.id],
        created_by: owner,
        created_at: now_ms(),
    };
    (general.id, sub)
}

pub async fn subscriptions_enqueue_once_and_lease_deliveries(store: &dyn MetadataStore) {
    let (general, sub) = subscription_in_new_workspace(
        store,
        "ada",
        vec![EventKind::Message, EventKind::ReactionAdd],
    )
    .await;
    let workspace = sub.workspace_id;
    let subs = store.subscriptions();
    let now = sub.created_at;
    subs.create_subscription(&sub, &[(general, 3)])
        .await
        .unwrap();
    assert_eq!(subs.subscription(sub.id).await.unwrap(), Some(sub.clone()));
    assert_eq!(
        subs.subscriptions_of(workspace).await.unwrap(),
        vec![sub.clone()]
    );
    assert!(
        subs.update_subscription(sub.id, Some("https://example.com/v2"), None)
            .await
            .unwrap()
    );
    let changed = subs.subscription(sub.id).await.unwrap().unwrap();
    assert_eq!(
        (changed.url.as_str(), changed.events.clone()),
        ("https://example.com/v2", sub.events.clone())
    );

    // The cursor starts where it was created and moves only from where it is.
    let cursors = subs.subscription_cursors().await.unwrap();
    let mine: Vec<_> = cursors
        .iter()
        .filter(|c| c.subscription_id == sub.id)
        .collect();
    assert_eq!(mine.len(), 1);
    assert_eq!((mine[0].channel_id, mine[0].seq), (general, 3));
    let (four, five) = (delivery(general, 4), delivery(general, 5));
    assert!(
        subs.enqueue_deliveries(sub.id, general, 3, 5, &[four.clone(), five.clone()], now)
            .await
            .unwrap()
    );
    assert!(
        !subs
            .enqueue_deliveries(sub.id, general, 3, 5, std::slice::from_ref(&four), now)
            .await
            .unwrap(),
        "a second enqueuer from the same cursor stores nothing"
    );
    // A repeated (subscription, channel, seq) is skipped even when the cursor moves.
    assert!(
        subs.enqueue_deliveries(sub.id, general, 5, 6, &[delivery(general, 5)], now)
            .await
            .unwrap()
    );
    let log = subs.deliveries(sub.id, None, 10).await.unwrap();
    assert_eq!(
        log.iter().map(|d| d.seq).collect::<Vec<_>>(),
        vec![5, 4],
        "newest first, once each"
    );
    assert!(log.iter().all(|d| d.status == DeliveryStatus::Pending));

    // Claims lease: a second claim before the lease ends gets nothing.
    let due = subs.due_endpoints(now, 100).await.unwrap();
    assert!(due.iter().any(|e| e.subscription_id == sub.id));
    let lease = now + Duration::seconds(30);
    let claimed = subs.claim_deliveries(sub.id, now, lease, 10).await.unwrap();
    assert_eq!(
        claimed.iter().map(|d| d.seq).collect::<Vec<_>>(),
        vec![4, 5]
    );
    assert_eq!(claimed[0].body, four.body);
    assert!(
        subs.claim_deliveries(sub.id, now, lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !subs
            .due_endpoints(now, 100)
            .await
            .unwrap()
            .iter()
            .any(|e| e.subscription_id == sub.id)
    );
    // A lease that ran out (a sender that died) gives the delivery back.
    let later = lease + Duration::seconds(1);
    assert_eq!(
        subs.claim_deliveries(sub.id, later, later + Duration::seconds(30), 1)
            .await
            .unwrap()
            .len(),
        1
    );

    // Attempts are recorded: a retry is due at its time, a delivered one is done.
    let retry_at = now + Duration::seconds(60);
    subs.record_attempt(
        four.id,
        &AttemptRecord {
            attempts: 1,
            status: DeliveryStatus::Pending,
            next_attempt_at: retry_at,
            status_code: Some(500),
            error: Some("HTTP 500".into()),
            at: now,
        },
    )
    .await
    .unwrap();
    subs.record_attempt(
        five.id,
        &AttemptRecord {
            attempts: 1,
            status: DeliveryStatus::Delivered,
            next_attempt_at: now,
            status_code: Some(204),
            error: None,
            at: now,
        },
    )
    .await
    .unwrap();
    let log = subs.deliveries(sub.id, None, 10).await.unwrap();
    let (five_log, four_log) = (&log[0], &log[1]);
    assert_eq!(
        (
            five_log.status,
            five_log.attempts,
            five_log.last_status_code
        ),
        (DeliveryStatus::Delivered, 1, Some(204))
    );
    assert_eq!(five_log.next_attempt_at, None);
    assert_eq!(
        (four_log.status, four_log.last_status_code),
        (DeliveryStatus::Pending, Some(500))
    );
    assert_eq!(four_log.next_attempt_at, Some(retry_at));
    assert_eq!(four_log.last_error.as_deref(), Some("HTTP 500"));
    assert!(
        subs.claim_deliveries(sub.id, now, lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "not due before its time, even though its lease ended"
    );
    assert_eq!(
        subs.claim_deliveries(sub.id, retry_at, retry_at + Duration::seconds(30), 10)
            .await
            .unwrap()
            .iter()
            .map(|d| (d.seq, d.attempts))
            .collect::<Vec<_>>(),
        vec![(4, 1)]
    );
    // Pages of the log.
    let older = subs.deliveries(sub.id, Some(five.id), 10).await.unwrap();
    assert_eq!(older.iter().map(|d| d.seq).collect::<Vec<_>>(), vec![4]);

    assert!(subs.delete_subscription(sub.id).await.unwrap());
    assert!(!subs.delete_subscription(sub.id).await.unwrap());
    assert!(subs.deliveries(sub.id, None, 10).await.unwrap().is_empty());
    assert!(
        !subs
            .subscription_cursors()
            .await
            .unwrap()
            .iter()
            .any(|c| c.subscription_id == sub.id)
    );
}

pub async fn settled_deliveries_are_pruned_by_age_and_pending_ones_kept(store: &dyn MetadataStore) {
    let (general, sub) =
        subscription_in_new_workspace(store, "ada-prune", vec![EventKind::Message]).await;
    let subs = store.subscriptions();
    let now = sub.created_at;
    subs.create_subscription(&sub, &[(general, 0)])
        .await
        .unwrap();
    let deliveries: Vec<NewDelivery> = (1..=5).map(|seq| delivery(general, seq)).collect();
    assert!(
        subs.enqueue_deliveries(sub.id, general, 0, 5, &deliveries, now)
            .await
            .unwrap()
    );
    let old = now - Duration::days(40);
    let settle = |status, at| AttemptRecord {
        attempts: 1,
        status,
        next_attempt_at: at,
        status_code: Some(500),
        error: None,
        at,
    };
    // 1 delivered and 2 failed long ago; 3 still pending after an old attempt; 4 delivered
    // recently; 5 never attempted.
    for (seq, record) in [
        (1, settle(DeliveryStatus::Delivered, old)),
        (2, settle(DeliveryStatus::Failed, old)),
        (3, settle(DeliveryStatus::Pending, old)),
        (4, settle(DeliveryStatus::Delivered, now)),
    ] {
        subs.record_attempt(deliveries[seq - 1].id, &record)
            .await
            .unwrap();
    }
    let cutoff = now - Duration::days(30);
    assert_eq!(
        subs.prune_deliveries(cutoff, 1).await.unwrap(),
        1,
        "at most the limit"
    );
    assert_eq!(subs.prune_deliveries(cutoff, 100).await.unwrap(), 1);
    assert_eq!(subs.prune_deliveries(cutoff, 100).await.unwrap(), 0);
    let mut left: Vec<u64> = subs
        .deliveries(sub.id, None, 10)
        .await
        .unwrap()
        .iter()
        .map(|d| d.seq)
        .collect();
    left.sort_unstable();
    assert_eq!(left, vec![3, 4, 5], "pending and recent deliveries stay");
    assert!(subs.delete_subscription(sub.id).await.unwrap());
}
