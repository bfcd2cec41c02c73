//! The behaviour every [`SessionStore`] must have, as checks run against each implementation:
//! the in-process store in its unit tests, Redis in `gateway/tests/redis_sessions.rs`. Times are
//! passed in, so nothing sleeps.
//!
//! Each check opens its own store with the limits it needs through `open`, so a shared backend
//! must give every opened store a namespace of its own.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::{Holder, SessionError, SessionLimits, SessionStore};

/// Every check, by name.
pub const ALL: &[&str] = &[
    "a_released_session_resumes_until_its_ttl",
    "a_late_close_of_the_old_connection_does_not_expire_a_resumed_session",
    "a_late_close_on_another_gateway_does_not_expire_a_resumed_session",
    "a_session_held_by_a_vanished_gateway_can_be_taken_over",
    "a_forgotten_session_cannot_be_resumed",
    "an_unknown_session_is_refused",
    "a_full_store_drops_expired_sessions_first_then_refuses",
];

/// Limits with a TTL in seconds and a maximum; the hold lease is irrelevant to the checks.
pub fn limits(ttl_secs: u64, max: usize) -> SessionLimits {
    SessionLimits {
        ttl: Duration::from_secs(ttl_secs),
        max,
        hold_lease: Duration::from_secs(600),
    }
}

/// Runs the check called `name` on stores made by `open`.
pub async fn run<F, Fut>(name: &str, open: F)
where
    F: Fn(SessionLimits) -> Fut,
    Fut: Future<Output = Box<dyn SessionStore>>,
{
    match name {
        "a_released_session_resumes_until_its_ttl" => {
            a_released_session_resumes_until_its_ttl(&*open(limits(60, 10)).await).await
        }
        "a_late_close_of_the_old_connection_does_not_expire_a_resumed_session" => {
            a_late_close_of_the_old_connection_does_not_expire_a_resumed_session(
                &*open(limits(60, 10)).await,
            )
            .await
        }
        "a_late_close_on_another_gateway_does_not_expire_a_resumed_session" => {
            a_late_close_on_another_gateway_does_not_expire_a_resumed_session(
                &*open(limits(60, 10)).await,
            )
            .await
        }
        "a_session_held_by_a_vanished_gateway_can_be_taken_over" => {
            a_session_held_by_a_vanished_gateway_can_be_taken_over(&*open(limits(60, 10)).await)
                .await
        }
        "a_forgotten_session_cannot_be_resumed" => {
            a_forgotten_session_cannot_be_resumed(&*open(limits(60, 10)).await).await
        }
        "an_unknown_session_is_refused" => {
            an_unknown_session_is_refused(&*open(limits(60, 10)).await).await
        }
        "a_full_store_drops_expired_sessions_first_then_refuses" => {
            a_full_store_drops_expired_sessions_first_then_refuses(&*open(limits(1, 2)).await).await
        }
        other => panic!("no session check named {other}"),
    }
}

/// A base time near the real clock (a store may garbage-collect by real time), at ms precision.
fn base() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap()
}

fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

/// Connection `n` of gateway `gateway`.
fn conn(gateway: u32, n: u64) -> Holder {
    Holder {
        gateway,
        connection: n,
    }
}

pub async fn a_released_session_resumes_until_its_ttl(store: &dyn SessionStore) {
    let (user, t0) = (Uuid::new_v4(), base());
    let session = store.create(user, conn(1, 1), t0).await.unwrap();
    store.release(session, conn(1, 1), t0).await.unwrap();
    assert_eq!(
        store.resume(session, Uuid::new_v4(), conn(1, 2), t0).await,
        Err(SessionError::Unknown),
        "another user cannot take the session"
    );
    assert_eq!(
        store.resume(session, user, conn(1, 2), t0 + secs(59)).await,
        Ok(())
    );
    store
        .release(session, conn(1, 2), t0 + secs(59))
        .await
        .unwrap();
    assert_eq!(
        store
            .resume(session, user, conn(1, 3), t0 + secs(200))
            .await,
        Err(SessionError::Unknown)
    );
}

pub async fn a_late_close_of_the_old_connection_does_not_expire_a_resumed_session(
    store: &dyn SessionStore,
) {
    let (user, t0) = (Uuid::new_v4(), base());
    let session = store.create(user, conn(1, 1), t0).await.unwrap();
    // Connection 2 resumes before the server noticed connection 1 is gone.
    store.resume(session, user, conn(1, 2), t0).await.unwrap();
    store.release(session, conn(1, 1), t0).await.unwrap();
    store.forget(session, conn(1, 1)).await.unwrap();
    // Long after the TTL the session is still held by connection 2.
    let later = t0 + secs(600);
    assert_eq!(store.resume(session, user, conn(1, 3), later).await, Ok(()));
}

pub async fn a_late_close_on_another_gateway_does_not_expire_a_resumed_session(
    store: &dyn SessionStore,
) {
    let (user, t0) = (Uuid::new_v4(), base());
    // Both gateways number their connections from 1: only the gateway id tells them apart.
    let session = store.create(user, conn(0xa, 1), t0).await.unwrap();
    store.resume(session, user, conn(0xb, 1), t0).await.unwrap();
    store.release(session, conn(0xa, 1), t0).await.unwrap();
    store.forget(session, conn(0xa, 1)).await.unwrap();
    let later = t0 + secs(600);
    assert_eq!(
        store.resume(session, user, conn(0xb, 2), later).await,
        Ok(())
    );
}

pub async fn a_session_held_by_a_vanished_gateway_can_be_taken_over(store: &dyn SessionStore) {
    let (user, t0) = (Uuid::new_v4(), base());
    // Gateway A was killed: it never released the session.
    let session = store.create(user, conn(0xa, 1), t0).await.unwrap();
    assert_eq!(
        store
            .resume(session, user, conn(0xb, 9), t0 + secs(1))
            .await,
        Ok(())
    );
    // From now on the new holder's close is the one that counts.
    store
        .release(session, conn(0xb, 9), t0 + secs(2))
        .await
        .unwrap();
    assert_eq!(
        store
            .resume(session, user, conn(0xc, 1), t0 + secs(62))
            .await,
        Err(SessionError::Unknown),
        "released at +2 s with a 60 s TTL"
    );
}

pub async fn a_forgotten_session_cannot_be_resumed(store: &dyn SessionStore) {
    let (user, t0) = (Uuid::new_v4(), base());
    let session = store.create(user, conn(1, 1), t0).await.unwrap();
    store.forget(session, conn(1, 1)).await.unwrap();
    assert_eq!(
        store.resume(session, user, conn(1, 2), t0).await,
        Err(SessionError::Unknown)
    );
}

pub async fn an_unknown_session_is_refused(store: &dyn SessionStore) {
    let (user, t0) = (Uuid::new_v4(), base());
    assert_eq!(
        store.resume(Uuid::new_v4(), user, conn(1, 1), t0).await,
        Err(SessionError::Unknown)
    );
    // Releasing or forgetting it is harmless.
    store.release(Uuid::new_v4(), conn(1, 1), t0).await.unwrap();
    store.forget(Uuid::new_v4(), conn(1, 1)).await.unwrap();
}

pub async fn a_full_store_drops_expired_sessions_first_then_refuses(store: &dyn SessionStore) {
    // Limits: a 1 s TTL and at most 2 sessions.
    let (user, t0) = (Uuid::new_v4(), base());
    let old = store.create(user, conn(1, 1), t0).await.unwrap();
    store.release(old, conn(1, 1), t0).await.unwrap();
    store.create(user, conn(1, 2), t0).await.unwrap();
    let later = t0 + secs(5);
    store.create(user, conn(1, 3), later).await.unwrap();
    assert_eq!(
        store.create(user, conn(1, 4), later).await,
        Err(SessionError::Full)
    );
}
