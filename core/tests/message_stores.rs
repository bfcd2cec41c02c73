//! The message-store conformance suite against every backend: redb (embedded), PostgreSQL (the
//! machine's server, always), and ScyllaDB (only when `SCYLLA_URI` names a server — none can run
//! on the development machines — otherwise reported as not run, by name).

use chorus_core::messages::conformance;
use chorus_core::testing;
use chorus_core::{MessageStore, PostgresMessageStore, RedbMessageStore, ScyllaMessageStore};

async fn run_suite(store: &dyn MessageStore) {
    for check in conformance::ALL {
        conformance::run(check, store).await;
    }
}

#[tokio::test]
async fn redb_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbMessageStore::open(&dir.path().join("messages.redb")).unwrap();
    run_suite(&store).await;
}

#[tokio::test]
async fn postgres_passes_the_conformance_suite() {
    let url = testing::fresh_database("messages").await;
    let store = PostgresMessageStore::connect(&url).await.unwrap();
    run_suite(&store).await;
    testing::drop_database(&url).await;
}

#[tokio::test]
async fn scylla_passes_the_conformance_suite_when_a_server_is_given() {
    let Ok(uri) = std::env::var("SCYLLA_URI") else {
        println!(
            "NOT RUN: scylla_passes_the_conformance_suite (set SCYLLA_URI=scylla://host:9042/keyspace?replication_factor=1)"
        );
        return;
    };
    let store = ScyllaMessageStore::connect(&uri).await.unwrap();
    run_suite(&store).await;
}

/// Persisted messages per second for batches of 1,000 100-byte messages. A measurement, not a
/// test: `cargo test --release -p chorus-core --test message_stores -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "benchmark; run explicitly"]
async fn append_throughput_report() {
    let dir = tempfile::tempdir().unwrap();
    let redb = RedbMessageStore::open(&dir.path().join("bench.redb")).unwrap();
    let bench_db = testing::fresh_database("bench").await;
    let postgres = PostgresMessageStore::connect(&bench_db).await.unwrap();
    let mut stores: Vec<(&str, Box<dyn MessageStore>)> =
        vec![("redb", Box::new(redb)), ("postgres", Box::new(postgres))];
    if let Ok(uri) = std::env::var("SCYLLA_URI") {
        stores.push((
            "scylla",
            Box::new(ScyllaMessageStore::connect(&uri).await.unwrap()),
        ));
    }
    for (name, store) in stores {
        let channel = uuid::Uuid::new_v4();
        let mut batches = Vec::new();
        for b in 0..50u64 {
            let mut batch = conformance::messages(channel, b * 1_000 + 1..=(b + 1) * 1_000);
            for m in &mut batch {
                m.text = "x".repeat(100);
            }
            batches.push(batch);
        }
        let started = std::time::Instant::now();
        for batch in &batches {
            store.append(batch).await.unwrap();
        }
        let rate = 50_000.0 / started.elapsed().as_secs_f64();
        println!("{name}: {rate:.0} messages/s (50 durable batches of 1,000 × 100 B)");
    }
    testing::drop_database(&bench_db).await;
}
