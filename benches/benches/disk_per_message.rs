//! Bytes on disk per message, and write amplification, for every message store.
//!
//! `cargo bench -p chorus-benches --bench disk_per_message` writes 100-byte messages the way the
//! channel service does — one small `append_replayable` batch after another, `sync` at the end —
//! and reports, as the median and range of `RUNS` fresh runs:
//! - **embedded node**: a real `ChannelService` (Raft log + redb history, snapshots every 20,000
//!   entries) in a temporary directory; bytes on disk of `messages.redb` and of the Raft log
//!   directory, and bytes this process wrote to disk (`/proc/self/io` `write_bytes`) per byte of
//!   message text;
//! - **redb history** alone, the same way;
//! - **PostgreSQL history** in a fresh database on `CHORUS_TEST_POSTGRES_URL` (the server's
//!   `pg_total_relation_size` of the history tables; write amplification from the WAL bytes the
//!   server wrote meanwhile, `pg_stat_wal`, which counts the whole server);
//! - **ScyllaDB** when `SCYLLA_URI` is set: written, but its disk use is the cluster's and is not
//!   read from here (`nodetool tablestats`).
//!
//! Settings (environment): `MESSAGES` (default 100,000), `BATCH` (messages per write, default 1:
//! a quiet node's worst case), `RUNS` (default 3), `SNAPSHOT_EVERY` (the embedded node's Raft
//! entries between snapshots, default that of `ChannelNodeConfig`).

use std::path::Path;
use std::sync::Arc;

use chorus_channel_node::{ChannelNodeConfig, ChannelService};
use chorus_cluster::{ChannelRouter, FanoutBus, LocalBus, PublishRequest};
use chorus_core::{MessageStore, PostgresMessageStore, RedbMessageStore, ScyllaMessageStore};
use chorus_protocol::MessageEvent;
use sqlx::{Connection, PgConnection, Row};
use uuid::Uuid;

const TEXT_BYTES: usize = 100;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace(['_', ','], "").parse().ok())
        .unwrap_or(default)
}

/// Bytes allocated on disk for a file, or for every file under a directory.
fn disk_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return 0;
    };
    if meta.is_dir() {
        std::fs::read_dir(path)
            .map(|entries| entries.flatten().map(|e| disk_bytes(&e.path())).sum())
            .unwrap_or(0)
    } else {
        meta.blocks() * 512
    }
}

/// Bytes this process has caused to be written to storage (`/proc/self/io`).
fn written_by_this_process() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|io| {
            io.lines()
                .find_map(|line| line.strip_prefix("write_bytes: "))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The events of `count` 100-byte messages over four channels, in batches of `batch`.
fn batches(count: u64, batch: u64) -> Vec<Vec<MessageEvent>> {
    let channels: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    let events: Vec<MessageEvent> = (0..count)
        .map(|n| {
            let channel = channels[(n % 4) as usize];
            MessageEvent::new_message(
                channel,
                n / 4 + 1,
                Uuid::now_v7(),
                Uuid::new_v4(),
                "x".repeat(TEXT_BYTES),
                chrono::Utc::now(),
                format!("c-{n}"),
            )
        })
        .collect();
    events
        .chunks(batch.max(1) as usize)
        .map(<[MessageEvent]>::to_vec)
        .collect()
}

async fn write_all(store: &dyn MessageStore, batches: &[Vec<MessageEvent>]) {
    for batch in batches {
        store.append_replayable(batch).await.expect("append");
    }
    store.sync().await.expect("sync");
}

/// One run's figures: (label, bytes on disk per message, bytes written per byte of text).
type Figures = Vec<(String, f64, f64)>;

async fn embedded_node(count: u64) -> Figures {
    let dir = tempfile::tempdir().expect("temporary directory");
    let messages =
        Arc::new(RedbMessageStore::open(&dir.path().join("messages.redb")).expect("open history"));
    let written_before = written_by_this_process();
    let mut config = ChannelNodeConfig::new(dir.path().join("channels"));
    config.snapshot_every = setting("SNAPSHOT_EVERY", config.snapshot_every);
    let service = ChannelService::start(
        config,
        messages.clone(),
        Arc::new(LocalBus::new(1024)) as Arc<dyn FanoutBus>,
    )
    .await
    .expect("start");
    let channels: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    let author = Uuid::new_v4();
    // A window of 16 submits in flight: what a few busy clients make.
    let mut tickets = std::collections::VecDeque::new();
    for n in 0..count {
        let request = PublishRequest::message(
            channels[(n % 4) as usize],
            author,
            format!("c-{n}"),
            "x".repeat(TEXT_BYTES),
        );
        tickets.push_back(service.submit(request).await.expect("submit"));
        if tickets.len() >= 16 {
            tickets.pop_front().unwrap().await.expect("ack");
        }
    }
    for ticket in tickets {
        ticket.await.expect("ack");
    }
    service.shutdown().await;
    let written = written_by_this_process() - written_before;
    let history = disk_bytes(&dir.path().join("messages.redb"));
    let raft = disk_bytes(&dir.path().join("channels"));
    for entry in std::fs::read_dir(dir.path().join("channels"))
        .expect("channels directory")
        .flatten()
    {
        eprintln!(
            "  {}: {} bytes on disk",
            entry.path().display(),
            disk_bytes(&entry.path())
        );
    }
    let payload = (count as usize * TEXT_BYTES) as f64;
    let per = |bytes: u64| bytes as f64 / count as f64;
    vec![
        (
            "embedded node: history + Raft log".into(),
            per(history + raft),
            written as f64 / payload,
        ),
        (
            "embedded node: history (messages.redb)".into(),
            per(history),
            f64::NAN,
        ),
        (
            "embedded node: Raft log and snapshots".into(),
            per(raft),
            f64::NAN,
        ),
    ]
}

async fn redb_history(count: u64, batch: u64) -> Figures {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("messages.redb");
    let store = RedbMessageStore::open(&path).expect("open");
    let written_before = written_by_this_process();
    write_all(&store, &batches(count, batch)).await;
    let written = written_by_this_process() - written_before;
    vec![(
        "redb history".into(),
        disk_bytes(&path) as f64 / count as f64,
        written as f64 / (count as usize * TEXT_BYTES) as f64,
    )]
}

async fn postgres_history(count: u64, batch: u64) -> Figures {
    let url = chorus_core::testing::fresh_database("disk_bench").await;
    let store = PostgresMessageStore::connect(&url)
        .await
        .expect("PostgreSQL history");
    let mut db = PgConnection::connect(&url).await.expect("connect");
    let wal = |row: sqlx::postgres::PgRow| row.get::<f64, _>(0);
    let size_query = "SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0)::bigint \
                      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                      WHERE n.nspname = 'public' AND c.relkind = 'r' \
                      AND c.relname IN ('messages', 'message_relations')";
    let size_before: i64 = sqlx::query(size_query)
        .fetch_one(&mut db)
        .await
        .expect("size")
        .get(0);
    let wal_query = "SELECT wal_bytes::float8 FROM pg_stat_wal";
    let wal_before = wal(sqlx::query(wal_query)
        .fetch_one(&mut db)
        .await
        .expect("wal"));
    write_all(&store, &batches(count, batch)).await;
    let size_after: i64 = sqlx::query(size_query)
        .fetch_one(&mut db)
        .await
        .expect("size")
        .get(0);
    let wal_after = wal(sqlx::query(wal_query)
        .fetch_one(&mut db)
        .await
        .expect("wal"));
    drop(db);
    drop(store);
    chorus_core::testing::drop_database(&url).await;
    let wal_bytes = wal_after - wal_before;
    vec![(
        "PostgreSQL history (tables + indexes)".into(),
        (size_after - size_before) as f64 / count as f64,
        wal_bytes / (count as usize * TEXT_BYTES) as f64,
    )]
}

async fn scylla_history(uri: &str, count: u64, batch: u64) -> Figures {
    let store = ScyllaMessageStore::connect(uri).await.expect("ScyllaDB");
    write_all(&store, &batches(count, batch)).await;
    vec![(
        "ScyllaDB history (size: see nodetool)".into(),
        f64::NAN,
        f64::NAN,
    )]
}

/// "median [min–max]" with `decimals` digits after the point; "n/a" when nothing was measured.
fn median_and_range(mut values: Vec<f64>, decimals: usize) -> String {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return "n/a".into();
    }
    values.sort_by(f64::total_cmp);
    let median = values[values.len() / 2];
    format!(
        "{median:.decimals$} [{:.decimals$}–{:.decimals$}]",
        values[0],
        values[values.len() - 1]
    )
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken from the command line.
    let count = setting("MESSAGES", 100_000);
    let batch = setting("BATCH", 1);
    let runs = setting("RUNS", 3).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let scylla = std::env::var("SCYLLA_URI").ok();
    let mut by_label: Vec<(String, Vec<f64>, Vec<f64>)> = Vec::new();
    for run in 1..=runs {
        eprintln!(
            "run {run} of {runs}: {count} messages of {TEXT_BYTES} bytes, batches of {batch}"
        );
        let mut figures = runtime.block_on(embedded_node(count));
        figures.extend(runtime.block_on(redb_history(count, batch)));
        figures.extend(runtime.block_on(postgres_history(count, batch)));
        if let Some(uri) = &scylla {
            figures.extend(runtime.block_on(scylla_history(uri, count, batch)));
        }
        for (label, per_message, amplification) in figures {
            match by_label.iter_mut().find(|(l, _, _)| *l == label) {
                Some((_, sizes, ratios)) => {
                    sizes.push(per_message);
                    ratios.push(amplification);
                }
                None => by_label.push((label, vec![per_message], vec![amplification])),
            }
        }
    }
    println!(
        "\n{count} messages of {TEXT_BYTES} bytes, batches of {batch}; median [min–max] of {runs} runs"
    );
    println!(
        "| store | bytes on disk per message | bytes written per byte of text |\n| --- | ---: | ---: |"
    );
    for (label, sizes, ratios) in by_label {
        println!(
            "| {label} | {} | {} |",
            median_and_range(sizes, 0),
            median_and_range(ratios, 1)
        );
    }
    if scylla.is_none() {
        println!("(ScyllaDB not measured: set SCYLLA_URI)");
    }
}
