//! The behaviour every [`PresenceStore`] must have, as test functions run against each
//! implementation (`presence/tests/`). Times are passed in, so nothing sleeps.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::Transition;
use crate::store::{CONNECTION_LEASE, PresenceStore};

/// Every check, by name.
pub const ALL: &[&str] = &[
    "typing_expires_after_five_seconds",
    "refreshes_extend_and_rebroadcast_every_three_seconds",
    "posting_ends_the_indicator",
    "online_while_any_connection_counts",
    "expired_leases_stop_counting",
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
