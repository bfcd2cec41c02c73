//! The session conformance suite against a real Redis (`CHORUS_TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379`; an unreachable Redis fails the test — it is never skipped), and what
//! only a shared store has: keys that Redis forgets by itself, and leases renewed by the holder.

use std::time::Duration;

use chorus_gateway::sessions::conformance;
use chorus_gateway::{Holder, RedisSessions, SessionLimits, SessionStore};
use fred::prelude::KeysInterface;
use uuid::Uuid;

fn redis_url() -> String {
    std::env::var("CHORUS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A store in a key namespace of its own, so checks never see each other's sessions.
async fn fresh_store(limits: SessionLimits) -> RedisSessions {
    let url = redis_url();
    RedisSessions::connect(&url, limits)
        .await
        .unwrap_or_else(|err| panic!("Redis at {url} is required for this test: {err}"))
        .with_prefix(format!(
            "chorus-test:{{sessions-{}}}",
            Uuid::new_v4().simple()
        ))
}

/// Milliseconds Redis will keep `key` (negative: no TTL, or no key).
async fn pttl(key: &str) -> i64 {
    let client = chorus_cluster::redis::connect(&redis_url()).await.unwrap();
    client.pttl(key).await.unwrap()
}

#[tokio::test]
async fn redis_sessions_pass_the_conformance_suite() {
    for check in conformance::ALL {
        conformance::run(check, |limits| async move {
            Box::new(fresh_store(limits).await) as Box<dyn SessionStore>
        })
        .await;
    }
}

#[tokio::test]
async fn redis_forgets_sessions_by_itself() {
    let limits = SessionLimits {
        ttl: Duration::from_secs(60),
        max: 10,
        hold_lease: Duration::from_secs(300),
    };
    let store = fresh_store(limits).await;
    let holder = Holder {
        gateway: 1,
        connection: 1,
    };
    let now = chrono::Utc::now();
    let session = store.create(Uuid::new_v4(), holder, now).await.unwrap();

    // Held: it lives a hold lease unless renewed (a killed gateway never releases it).
    let held = pttl(&store.key(session)).await;
    assert!(held > 60_000 && held <= 300_000, "held for {held} ms");

    // Released: it lives the TTL.
    store.release(session, holder, now).await.unwrap();
    let released = pttl(&store.key(session)).await;
    assert!(
        released > 0 && released <= 60_000,
        "released for {released} ms"
    );

    // Forgotten: gone at once.
    let other = store.create(Uuid::new_v4(), holder, now).await.unwrap();
    store.forget(other, holder).await.unwrap();
    assert_eq!(pttl(&store.key(other)).await, -2, "no such key");
}

#[tokio::test]
async fn only_the_holder_renews_and_only_while_it_holds() {
    let limits = SessionLimits {
        ttl: Duration::from_secs(60),
        max: 10,
        hold_lease: Duration::from_secs(300),
    };
    let store = fresh_store(limits).await;
    assert_eq!(store.hold_lease(), Some(Duration::from_secs(300)));
    let (user, now) = (Uuid::new_v4(), chrono::Utc::now());
    let (a, b) = (
        Holder {
            gateway: 0xa,
            connection: 1,
        },
        Holder {
            gateway: 0xb,
            connection: 1,
        },
    );
    let session = store.create(user, a, now).await.unwrap();
    store.resume(session, user, b, now).await.unwrap();
    store.release(session, b, now).await.unwrap();

    // A's renewal (it lost the session) and B's (it released it) leave the TTL alone.
    store.renew(session, a, now).await.unwrap();
    store.renew(session, b, now).await.unwrap();
    let left = pttl(&store.key(session)).await;
    assert!(left > 0 && left <= 60_000, "still the TTL: {left} ms");
}
