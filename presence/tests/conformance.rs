//! The presence conformance suite against the in-process store and against a real Redis
//! (`CHORUS_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`; an unreachable Redis fails the
//! test — it is never skipped).

use chorus_presence::{MemoryPresence, RedisPresence, conformance};

#[tokio::test]
async fn memory_presence_passes_the_conformance_suite() {
    for check in conformance::ALL {
        conformance::run(check, &MemoryPresence::default()).await;
    }
}

#[tokio::test]
async fn redis_presence_passes_the_conformance_suite() {
    let url =
        std::env::var("CHORUS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    // A namespace of its own: the lease sweep must not take other tests' users offline.
    let prefix = format!("chorus-test:presence-{}", uuid::Uuid::new_v4().simple());
    let store = RedisPresence::connect_with_prefix(&url, &prefix)
        .await
        .unwrap_or_else(|err| panic!("Redis at {url} is required for this test: {err}"));
    for check in conformance::ALL {
        conformance::run(check, &store).await;
    }
}
