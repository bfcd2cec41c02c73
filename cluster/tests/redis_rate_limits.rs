//! The rate-limit conformance check against a real Redis (`CHORUS_TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379`; an unreachable Redis fails the test, it is never skipped).

use chorus_cluster::rate_limit::{RedisRateLimits, conformance};

#[tokio::test]
async fn redis_limits_conform_and_are_shared_between_clients() {
    let url =
        std::env::var("CHORUS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let store = RedisRateLimits::connect(&url)
        .await
        .unwrap_or_else(|err| panic!("Redis at {url} is required for this test: {err}"));
    conformance::bursts_then_limits_per_key(&store).await;

    // Two nodes (two clients) count against the same limit.
    use chorus_cluster::rate_limit::RateLimitStore;
    let other_node = RedisRateLimits::connect(&url).await.unwrap();
    let name = format!("shared-{}", uuid::Uuid::new_v4().simple());
    let (a, b) = (store.limiter(&name, 2), other_node.limiter(&name, 2));
    assert!(a.check("ip").await.is_ok());
    assert!(b.check("ip").await.is_ok());
    assert!(
        a.check("ip").await.is_err(),
        "the third login from the same IP is limited on any node"
    );
}
