//! Support for tests that need a real PostgreSQL: a private database per test, on the server named
//! by `CHORUS_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`). An
//! unreachable server fails the test — backend suites are never skipped.

use sqlx::{Connection, Executor, PgConnection};

/// The server tests create their databases on.
pub fn postgres_url() -> String {
    std::env::var("CHORUS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Creates an empty database and returns its URL. Panics (failing the test) if the server
/// cannot be reached.
pub async fn fresh_database(label: &str) -> String {
    let base = postgres_url();
    let mut admin = PgConnection::connect(&base)
        .await
        .unwrap_or_else(|err| panic!("PostgreSQL at {base} is required for this test: {err}"));
    let name = format!("chorus_test_{label}_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap_or_else(|err| panic!("cannot create test database {name}: {err}"));
    let (prefix, _) = base
        .rsplit_once('/')
        .expect("a database URL ends with /dbname");
    format!("{prefix}/{name}")
}

/// Drops a database made by [`fresh_database`], even while pools still hold connections to it.
pub async fn drop_database(url: &str) {
    let name = url.rsplit('/').next().unwrap_or_default().to_string();
    if let Ok(mut admin) = PgConnection::connect(&postgres_url()).await {
        let _ = admin
            .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
            .await;
    }
}
