//! The bus conformance suite against a real Redis (`CHORUS_TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379`; an unreachable Redis fails the test, it is never skipped).

use chorus_cluster::{RedisBus, bus_conformance};

fn url() -> String {
    std::env::var("CHORUS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

#[tokio::test]
async fn redis_bus_passes_the_conformance_suite() {
    let bus = RedisBus::connect(&url(), 1024)
        .await
        .unwrap_or_else(|err| panic!("Redis is required for this test: {err}"));
    bus_conformance::watched_channels_receive_events_in_order(&bus).await;
    bus_conformance::every_watching_gateway_receives(&bus).await;
    bus_conformance::every_event_kind_arrives_intact(&bus).await;
}

#[tokio::test]
async fn an_unreachable_redis_fails_fast_with_a_clear_message() {
    let err = RedisBus::connect("redis://127.0.0.1:1", 16)
        .await
        .err()
        .expect("nothing listens on port 1");
    assert!(err.to_string().contains("cannot reach Redis"), "{err}");
}
