//! The metadata conformance suite against SQLite, in memory and in a file.

use chorus_core::metadata::conformance;
use chorus_core::{MetadataStore, SqliteMetadataStore};

#[tokio::test]
async fn sqlite_in_memory_passes_the_conformance_suite() {
    for check in conformance::ALL {
        let store = SqliteMetadataStore::in_memory().await.unwrap();
        conformance::run(check, &store).await;
    }
    // A private in-memory database has no second way in.
    let store = SqliteMetadataStore::in_memory().await.unwrap();
    conformance::updates_are_seen_through_other_connections(&store, &store).await;
}

#[tokio::test]
async fn sqlite_file_passes_the_conformance_suite_and_keeps_data_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metadata.db");
    let store = SqliteMetadataStore::open(&path).await.unwrap();
    for check in conformance::ALL {
        conformance::run(check, &store).await;
    }
    let other = SqliteMetadataStore::open(&path).await.unwrap();
    conformance::updates_are_seen_through_other_connections(&store, &other).await;
    drop(other);
    let ada = store
        .create_user("reopen@example.com", "Ada", "hash")
        .await
        .unwrap();
    drop(store);
    let reopened = SqliteMetadataStore::open(&path).await.unwrap();
    assert_eq!(reopened.user(ada.id).await.unwrap(), Some(ada));
}
