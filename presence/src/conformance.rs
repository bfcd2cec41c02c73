//! The behaviour every [`PresenceStore`] must have, as test functions run against each
//! implementation (`presence/tests/`). Times are passed in, so nothing sleeps.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use chorus_protocol::{Activity, CustomStatus, FocusPresence, PresenceInfo, PresenceStatus};

use crate::store::{CONNECTION_LEASE, PresenceStore};
use crate::{PresenceSignal, Transition};

/// Every check, by name.
pub const ALL: &[&str] = &[
    "typing_expires_after_five_seconds",
    "refreshes_extend_and_rebroadcast_every_three_seconds",
    "posting_ends_the_indicator",
    "online_while_any_connection_counts",
    "expired_leases_stop_counting",
    "idle_only_when_every_connection_is_idle",
    "the_sweep_reports_a_lapsed_user_once",
    "custom_status_shows_until_it_expires",
    "focus_shows_until_it_ends",
    "announced_changes_reach_every_receiver",
];

/// Runs the check called `name`.
pub async fn run(name: &str, store: &dyn PresenceStore) {
    match name {
        "typing_expires_after_five_seconds" => typing_expires_after_five_seconds(store).await,
        "refreshes_extend_and_rebroadcast_every_three_seconds" => {
            refreshes_extend_and_rebroadcast_every_three_seconds(store).await
        }
        "posting_ends_the_indicator" => posting_ends_the_indicator(store).await,
        "online_while_any_connection_counts" => online_while_any_connection_counts(store).await,
        "expired_leases_stop_counting" => expired_leases_stop_counting(store).await,
        "idle_only_when_every_connection_is_idle" => {
            idle_only_when_every_connection_is_idle(store).await
        }
        "the_sweep_reports_a_lapsed_user_once" => the_sweep_reports_a_lapsed_user_once(store).await,
        "custom_status_shows_until_it_expires" => custom_status_shows_until_it_expires(store).await,
        "focus_shows_until_it_ends" => focus_shows_until_it_ends(store).await,
        "announced_changes_reach_every_receiver" => {
            announced_changes_reach_every_receiver(store).await
        }
        other => panic!("no presence check named {other}"),
    }
}

/// A base time near the real clock (stores may garbage-collect keys by real time), at ms precision.
fn base() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap()
}

fn ms(n: i64) -> Duration {
    Duration::milliseconds(n)
}

pub async fn typing_expires_after_five_seconds(store: &dyn PresenceStore) {
    let (channel, user, t0) = (Uuid::new_v4(), Uuid::new_v4(), base());
    assert!(store.typing(channel, user, t0).await.unwrap());
    assert_eq!(
        store.typing_in(channel, t0 + ms(4_999)).await.unwrap(),
        vec![user]
    );
    assert!(
        store
            .typing_in(channel, t0 + ms(5_000))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn refreshes_extend_and_rebroadcast_every_three_seconds(store: &dyn PresenceStore) {
    let (channel, user, t0) = (Uuid::new_v4(), Uuid::new_v4(), base());
    assert!(store.typing(channel, user, t0).await.unwrap());
    assert!(!store.typing(channel, user, t0 + ms(1_000)).await.unwrap());
    assert!(store.typing(channel, user, t0 + ms(3_000)).await.unwrap());
    assert_eq!(
        store.typing_in(channel, t0 + ms(7_000)).await.unwrap(),
        vec![user]
    );
    // After the indicator expired, a new start is broadcast at once.
    assert!(store.typing(channel, user, t0 + ms(20_000)).await.unwrap());
}

pub async fn posting_ends_the_indicator(store: &dyn PresenceStore) {
    let (channel, a, b, t0) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), base());
    store.typing(channel, a, t0).await.unwrap();
    store.typing(channel, b, t0).await.unwrap();
    store.stopped_typing(channel, a).await.unwrap();
    assert_eq!(store.typing_in(channel, t0).await.unwrap(), vec![b]);
    // And the next start is broadcast, not throttled.
    assert!(store.typing(channel, a, t0 + ms(100)).await.unwrap());
}

pub async fn online_while_any_connection_counts(store: &dyn PresenceStore) {
    let (user, c1, c2, t0) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), base());
    assert!(!store.is_online(user, t0).await.unwrap());
    assert_eq!(store.last_seen(user).await.unwrap(), None);
    assert_eq!(
        store.connected(user, c1, t0).await.unwrap(),
        Transition::CameOnline
    );
    assert_eq!(
        store.connected(user, c2, t0).await.unwrap(),
        Transition::Unchanged
    );
    assert_eq!(
        store.connected(user, c1, t0 + ms(10)).await.unwrap(),
        Transition::Unchanged,
        "a renewal"
    );
    assert_eq!(
        store.disconnected(user, c1, t0 + ms(20)).await.unwrap(),
        Transition::Unchanged
    );
    assert!(store.is_online(user, t0 + ms(20)).await.unwrap());
    assert_eq!(
        store.disconnected(user, c2, t0 + ms(30)).await.unwrap(),
        Transition::WentOffline
    );
    assert!(!store.is_online(user, t0 + ms(30)).await.unwrap());
    assert_eq!(store.last_seen(user).await.unwrap(), Some(t0 + ms(30)));
    assert_eq!(
        store.disconnected(user, c2, t0 + ms(40)).await.unwrap(),
        Transition::Unchanged
    );
}

pub async fn expired_leases_stop_counting(store: &dyn PresenceStore) {
    let (user, conn, t0) = (Uuid::new_v4(), Uuid::new_v4(), base());
    store.connected(user, conn, t0).await.unwrap();
    assert!(
        store
            .is_online(user, t0 + CONNECTION_LEASE - ms(1))
            .await
            .unwrap()
    );
    assert!(
        !store.is_online(user, t0 + CONNECTION_LEASE).await.unwrap(),
        "a dead gateway's connection expires"
    );
    // A connection after the lapse counts as coming online again.
    let other = Uuid::new_v4();
    assert_eq!(
        store
            .connected(user, other, t0 + CONNECTION_LEASE)
            .await
            .unwrap(),
        Transition::CameOnline
    );
}

async fn status(store: &dyn PresenceStore, user: Uuid, at: DateTime<Utc>) -> PresenceStatus {
    store.presence_of(&[user], at).await.unwrap()[0].status
}

pub async fn idle_only_when_every_connection_is_idle(store: &dyn PresenceStore) {
    let (user, phone, laptop, t0) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), base());
    store.connected(user, phone, t0).await.unwrap();
    store.connected(user, laptop, t0).await.unwrap();
    assert_eq!(
        store
            .activity(user, phone, Activity::Idle, t0 + ms(1))
            .await
            .unwrap(),
        Transition::Unchanged
    );
    assert_eq!(
        store
            .activity(user, laptop, Activity::Idle, t0 + ms(2))
            .await
            .unwrap(),
        Transition::BecameIdle
    );
    assert_eq!(status(store, user, t0 + ms(2)).await, PresenceStatus::Idle);
    assert_eq!(
        store
            .activity(user, laptop, Activity::Active, t0 + ms(3))
            .await
            .unwrap(),
        Transition::BecameActive
    );
    assert_eq!(
        status(store, user, t0 + ms(3)).await,
        PresenceStatus::Online
    );
    assert_eq!(
        store
            .activity(user, Uuid::new_v4(), Activity::Idle, t0 + ms(4))
            .await
            .unwrap(),
        Transition::Unchanged,
        "an unknown connection changes nothing"
    );
    assert_eq!(
        store.disconnected(user, laptop, t0 + ms(5)).await.unwrap(),
        Transition::BecameIdle,
        "the idle phone is what is left"
    );
    assert_eq!(
        store.disconnected(user, phone, t0 + ms(6)).await.unwrap(),
        Transition::WentOffline
    );
    let unknown = Uuid::new_v4();
    assert_eq!(
        store.presence_of(&[unknown], t0).await.unwrap(),
        vec![PresenceInfo {
            user_id: unknown,
            status: PresenceStatus::Offline,
            last_seen: None,
            custom_status: None,
            focus: None,
        }]
    );
}

pub async fn the_sweep_reports_a_lapsed_user_once(store: &dyn PresenceStore) {
    let (user, conn, t0) = (Uuid::new_v4(), Uuid::new_v4(), base());
    let (other, other_conn) = (Uuid::new_v4(), Uuid::new_v4());
    store.connected(user, conn, t0).await.unwrap();
    store
        .connected(other, other_conn, t0 + ms(10))
        .await
        .unwrap();
    assert!(
        !store
            .expire(t0 + CONNECTION_LEASE - ms(1))
            .await
            .unwrap()
            .contains(&user)
    );
    assert_eq!(
        status(store, user, t0 + CONNECTION_LEASE).await,
        PresenceStatus::Offline,
        "reading sees the lapse before the sweep"
    );
    let swept = store.expire(t0 + CONNECTION_LEASE).await.unwrap();
    assert!(
        swept.contains(&user),
        "the dead gateway's user goes offline"
    );
    assert!(!swept.contains(&other), "a user whose lease is live stays");
    assert!(
        !store
            .expire(t0 + CONNECTION_LEASE + ms(5))
            .await
            .unwrap()
            .contains(&user),
        "reported once"
    );
    assert_eq!(store.last_seen(user).await.unwrap(), Some(t0));
    // A renewal keeps a user out of the sweep.
    store
        .connected(other, other_conn, t0 + ms(20))
        .await
        .unwrap();
    assert!(
        !store
            .expire(t0 + CONNECTION_LEASE + ms(15))
            .await
            .unwrap()
            .contains(&other)
    );
    store
        .disconnected(other, other_conn, t0 + ms(30))
        .await
        .unwrap();
    assert!(
        !store
            .expire(t0 + CONNECTION_LEASE * 3)
            .await
            .unwrap()
            .contains(&other),
        "a user who said goodbye was already reported by the disconnect"
    );
}

pub async fn custom_status_shows_until_it_expires(store: &dyn PresenceStore) {
    let (user, t0) = (Uuid::new_v4(), base());
    let lunch = CustomStatus {
        text: "lunch".into(),
        emoji: Some("🍜".into()),
        // Near real time (the Redis store lets the key expire by the server's clock), in whole
        // milliseconds as the wire keeps it.
        expires_at: Some(t0 + Duration::minutes(10)),
    };
    store
        .set_custom_status(user, Some(lunch.clone()))
        .await
        .unwrap();
    let shown = store.presence_of(&[user], t0).await.unwrap();
    assert_eq!(shown[0].custom_status, Some(lunch.clone()));
    let later = lunch.expires_at.unwrap();
    assert_eq!(
        store.presence_of(&[user], later).await.unwrap()[0].custom_status,
        None,
        "hidden from its expiry on"
    );
    store.set_custom_status(user, None).await.unwrap();
    assert_eq!(
        store.presence_of(&[user], t0).await.unwrap()[0].custom_status,
        None
    );
}

pub async fn focus_shows_until_it_ends(store: &dyn PresenceStore) {
    let (user, t0) = (Uuid::new_v4(), base());
    let focus = FocusPresence {
        since: t0,
        until: Some(t0 + Duration::minutes(25)),
    };
    store.set_focus(user, Some(focus)).await.unwrap();
    assert_eq!(
        store.presence_of(&[user], t0).await.unwrap()[0].focus,
        Some(focus)
    );
    assert_eq!(
        store
            .presence_of(&[user], focus.until.unwrap())
            .await
            .unwrap()[0]
            .focus,
        None,
        "hidden from its planned end on"
    );
    let open_ended = FocusPresence {
        since: t0,
        until: None,
    };
    store.set_focus(user, Some(open_ended)).await.unwrap();
    assert_eq!(
        store
            .presence_of(&[user], t0 + Duration::days(2))
            .await
            .unwrap()[0]
            .focus,
        Some(open_ended)
    );
    store.set_focus(user, None).await.unwrap();
    assert_eq!(store.presence_of(&[user], t0).await.unwrap()[0].focus, None);
}

pub async fn announced_changes_reach_every_receiver(store: &dyn PresenceStore) {
    let mut first = store.updates();
    let mut second = store.updates();
    let info = PresenceInfo {
        user_id: Uuid::new_v4(),
        status: PresenceStatus::Online,
        last_seen: Some(base()),
        custom_status: None,
        focus: None,
    };
    store.announce(info.clone()).await;
    for receiver in [&mut first, &mut second] {
        let signal = tokio::time::timeout(std::time::Duration::from_secs(10), receiver.recv())
            .await
            .expect("the change arrives");
        assert_eq!(signal, Some(PresenceSignal::Update(info.clone())));
    }
}
