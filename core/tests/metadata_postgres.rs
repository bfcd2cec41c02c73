//! The metadata conformance suite against a real PostgreSQL.

use chorus_core::PostgresMetadataStore;
use chorus_core::metadata::conformance;
use chorus_core::testing;

#[tokio::test]
async fn postgres_passes_the_conformance_suite() {
    let url = testing::fresh_database("metadata").await;
    let store = PostgresMetadataStore::connect(&url).await.unwrap();
    for check in conformance::ALL {
        conformance::run(check, &store).await;
    }
    // Migrations are versioned: connecting again applies nothing twice.
    let other = PostgresMetadataStore::connect(&url).await.unwrap();
    conformance::updates_are_seen_through_other_connections(&store, &other).await;
    testing::drop_database(&url).await;
}

#[tokio::test]
async fn an_unreachable_server_fails_fast_with_a_clear_message() {
    let started = std::time::Instant::now();
    let err = PostgresMetadataStore::connect("postgres://postgres:secret@127.0.0.1:1/none")
        .await
        .err()
        .expect("nothing listens on port 1");
    let text = err.to_string();
    assert!(text.contains("cannot reach PostgreSQL"), "{text}");
    assert!(
        !text.contains("secret"),
        "the password is not shown: {text}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
