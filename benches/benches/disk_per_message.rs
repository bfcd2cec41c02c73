//! Bytes on disk per message, and write amplification, for every message store.
//!
//! `cargo bench -p chorus-benches --bench disk_per_message` writes 100-byte messages the way the
//! channel service does and reports, as the median and range of `RUNS` fresh runs, bytes per
//! message both as the files' apparent length and as the blocks the filesystem allocated, and the
//! bytes this process wrote to disk (`/proc/self/io` `write_bytes`) per byte of message text:
//! - **embedded node**: a real `ChannelService` (Raft log `channels/raft.redb` + snapshot, redb
//!   history `messages.redb`) in a temporary directory, fed by a window of 16 submits in flight.
//!   The Raft log is measured after snapshots purged it (the default cadence) and, in a second
//!   node that never snapshots, before any purge. The node is then restarted, which re-applies its
//!   log and rewrites the history it had not confirmed: the history file must not grow;
//! - **redb history** alone, one small replayable write after another, then the same history
//!   written again (what re-applies do): the growth of the file on the rewrite;
//! - **PostgreSQL history** in a fresh database on `CHORUS_TEST_POSTGRES_URL`
//!   (`pg_total_relation_size` of `messages`: table, indexes, TOAST); write amplification from the
//!   WAL the server wrote meanwhile (`pg_stat_wal`, the whole server's);
//! - **ScyllaDB** when `SCYLLA_URI` is set: written, but its disk use is the cluster's and is not
//!   read from here (`nodetool tablestats`).
//!
//! Where redb's bytes go (data, B-tree bookkeeping, unused space) is printed per run.
//!
//! Settings (environment): `MESSAGES` (default 100,000), `BATCH` (messages per write of the store
//! rows, default 1: a quiet node's worst case), `RUNS` (default 3), `SNAPSHOT_EVERY` (the embedded
//! node's Raft entries between snapshots, default that of `ChannelNodeConfig`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chorus_channel_node::{ChannelNodeConfig, ChannelService};
use chorus_cluster::{ChannelRouter, FanoutBus, LocalBus, PublishRequest};
use chorus_core::messages::RedbSpace;
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

/// A file's (or a directory's files') length and the blocks the filesystem allocated for it.
#[derive(Clone, Copy, Debug, Default)]
struct Size {
    apparent: u64,
    allocated: u64,
}

impl Size {
    fn of(path: &Path) -> Size {
        use std::os::unix::fs::MetadataExt;
        let Ok(meta) = std::fs::metadata(path) else {
            return Size::default();
        };
        if meta.is_dir() {
            std::fs::read_dir(path)
                .map(|entries| {
                    entries.flatten().map(|e| Size::of(&e.path())).fold(
                        Size::default(),
                        |sum, s| Size {
                            apparent: sum.apparent + s.apparent,
                            allocated: sum.allocated + s.allocated,
                        },
                    )
                })
                .unwrap_or_default()
        } else {
            Size {
                apparent: meta.len(),
                allocated: meta.blocks() * 512,
            }
        }
    }

    fn plus(self, other: Size) -> Size {
        Size {
            apparent: self.apparent + other.apparent,
            allocated: self.allocated + other.allocated,
        }
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

/// One row of one run: bytes per message (apparent, allocated), bytes written per byte of text.
struct Figures {
    label: String,
    apparent: f64,
    allocated: f64,
    amplification: f64,
}

impl Figures {
    fn new(label: impl Into<String>, size: Size, count: u64, written: Option<u64>) -> Figures {
        Figures {
            label: label.into(),
            apparent: size.apparent as f64 / count as f64,
            allocated: size.allocated as f64 / count as f64,
            amplification: written.map_or(f64::NAN, |w| w as f64 / payload(count)),
        }
    }
}

fn payload(count: u64) -> f64 {
    (count as usize * TEXT_BYTES) as f64
}

/// Where a redb file's bytes go, per message.
fn describe(what: &str, space: &RedbSpace, count: u64) {
    let per = |bytes: u64| bytes as f64 / count as f64;
    eprintln!(
        "  {what}: per message {:.0} B of keys and values, {:.0} B of B-tree bookkeeping, \
         {:.0} B unused (slack in pages, free pages); {:.1} MB of pages in use",
        per(space.stored),
        per(space.metadata),
        per(space.unused),
        space.allocated as f64 / 1e6
    );
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

/// Starts an embedded node's channel service on `dir` (history in `dir/messages.redb`).
async fn start_node(dir: &Path, snapshot_every: u64) -> (ChannelService, Arc<RedbMessageStore>) {
    let path = dir.join("messages.redb");
    // A node stopped a moment ago may still be letting go of the file.
    let mut tries = 0;
    let messages = loop {
        match RedbMessageStore::open(&path) {
            Ok(store) => break Arc::new(store),
            Err(err) if tries < 100 => {
                tries += 1;
                eprintln!("  waiting for {}: {err}", path.display());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("open history: {err}"),
        }
    };
    let mut config = ChannelNodeConfig::new(dir.join("channels"));
    config.snapshot_every = snapshot_every;
    let service = ChannelService::start(
        config,
        messages.clone(),
        Arc::new(LocalBus::new(1024)) as Arc<dyn FanoutBus>,
    )
    .await
    .expect("start");
    (service, messages)
}

/// Publishes `count` messages over four channels, 16 in flight (what a few busy clients make).
async fn publish(service: &ChannelService, count: u64) {
    let channels: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    let author = Uuid::new_v4();
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
}

/// Opens a redb file the node just let go of (its last handles close as its tasks end).
async fn space_of_closed_file(path: &Path) -> RedbSpace {
    for _ in 0..100 {
        match redb::Database::open(path) {
            Ok(db) => return RedbSpace::of(&db).expect("space"),
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("{}: {err}", path.display()),
        }
    }
    panic!("{} is still open", path.display())
}

async fn embedded_node(count: u64, snapshot_every: u64) -> Vec<Figures> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let written_before = written_by_this_process();
    let (service, messages) = start_node(dir.path(), snapshot_every).await;
    publish(&service, count).await;
    service.shutdown().await;
    let written = written_by_this_process() - written_before;
    describe(
        "messages.redb",
        &messages.space().expect("history space"),
        count,
    );
    drop((service, messages));
    let history = Size::of(&dir.path().join("messages.redb"));
    let channels = Size::of(&dir.path().join("channels"));
    let raft = Size::of(&dir.path().join("channels/raft.redb"));
    describe(
        "channels/raft.redb",
        &space_of_closed_file(&dir.path().join("channels/raft.redb")).await,
        count,
    );
    // A restart re-applies the log since the snapshot and rewrites the history it had not
    // confirmed; one more acknowledged message means the rewrite is done (history is written in
    // log order).
    let (service, messages) = start_node(dir.path(), snapshot_every).await;
    publish(&service, 1).await;
    service.shutdown().await;
    drop((service, messages));
    let restarted = Size::of(&dir.path().join("messages.redb"));
    let growth = Size {
        apparent: restarted.apparent.saturating_sub(history.apparent),
        allocated: restarted.allocated.saturating_sub(history.allocated),
    };
    // The same node that never snapshots: its Raft log before any purge.
    let unpurged_dir = tempfile::tempdir().expect("temporary directory");
    let (service, messages) = start_node(unpurged_dir.path(), 1 << 40).await;
    publish(&service, count).await;
    service.shutdown().await;
    drop((service, messages));
    let unpurged = Size::of(&unpurged_dir.path().join("channels/raft.redb"));
    vec![
        Figures::new(
            "embedded node: history + Raft log + snapshot",
            history.plus(channels),
            count,
            Some(written),
        ),
        Figures::new(
            "embedded node: history (`messages.redb`)",
            history,
            count,
            None,
        ),
        Figures::new(
            format!("embedded node: Raft log after purges (snapshot every {snapshot_every})"),
            raft,
            count,
            None,
        ),
        Figures::new(
            "embedded node: Raft log before any purge (no snapshot)",
            unpurged,
            count,
            None,
        ),
        Figures::new(
            "embedded node: history growth on restart (re-applies)",
            growth,
            count,
            None,
        ),
    ]
}

async fn redb_history(count: u64, batch: u64) -> Vec<Figures> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("messages.redb");
    let store = RedbMessageStore::open(&path).expect("open");
    let batches = batches(count, batch);
    let written_before = written_by_this_process();
    write_all(&store, &batches).await;
    let written = written_by_this_process() - written_before;
    let size = Size::of(&path);
    describe("redb history alone", &store.space().expect("space"), count);
    write_all(&store, &batches).await;
    let rewritten = Size::of(&path);
    vec![
        Figures::new("redb history alone", size, count, Some(written)),
        Figures::new(
            "redb history alone: growth when rewritten",
            Size {
                apparent: rewritten.apparent.saturating_sub(size.apparent),
                allocated: rewritten.allocated.saturating_sub(size.allocated),
            },
            count,
            None,
        ),
    ]
}

async fn postgres_history(count: u64, batch: u64) -> Vec<Figures> {
    let url = chorus_core::testing::fresh_database("disk_bench").await;
    let store = PostgresMessageStore::connect(&url)
        .await
        .expect("PostgreSQL history");
    let mut db = PgConnection::connect(&url).await.expect("connect");
    let size_query = "SELECT pg_total_relation_size('messages')::float8";
    let wal_query = "SELECT wal_bytes::float8 FROM pg_stat_wal";
    let mut read = async |query: &str| -> f64 {
        sqlx::query(query)
            .fetch_one(&mut db)
            .await
            .expect(query)
            .get(0)
    };
    let (size_before, wal_before) = (read(size_query).await, read(wal_query).await);
    write_all(&store, &batches(count, batch)).await;
    let (size_after, wal_after) = (read(size_query).await, read(wal_query).await);
    drop(db);
    drop(store);
    chorus_core::testing::drop_database(&url).await;
    // PostgreSQL's pages are allocated as written: apparent and allocated are the same.
    let size = (size_after - size_before) as u64;
    vec![Figures::new(
        "PostgreSQL history (table, indexes; written: server WAL)",
        Size {
            apparent: size,
            allocated: size,
        },
        count,
        Some((wal_after - wal_before) as u64),
    )]
}

async fn scylla_history(uri: &str, count: u64, batch: u64) -> Vec<Figures> {
    let store = ScyllaMessageStore::connect(uri).await.expect("ScyllaDB");
    write_all(&store, &batches(count, batch)).await;
    vec![Figures {
        label: "ScyllaDB history (size: see nodetool)".into(),
        apparent: f64::NAN,
        allocated: f64::NAN,
        amplification: f64::NAN,
    }]
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
    let snapshot_every = setting(
        "SNAPSHOT_EVERY",
        ChannelNodeConfig::new("unused").snapshot_every,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let scylla = std::env::var("SCYLLA_URI").ok();
    // Per label: apparent, allocated, amplification of each run.
    let mut by_label: Vec<(String, [Vec<f64>; 3])> = Vec::new();
    for run in 1..=runs {
        eprintln!(
            "run {run} of {runs}: {count} messages of {TEXT_BYTES} bytes, batches of {batch}"
        );
        let mut rows = runtime.block_on(embedded_node(count, snapshot_every));
        rows.extend(runtime.block_on(redb_history(count, batch)));
        rows.extend(runtime.block_on(postgres_history(count, batch)));
        if let Some(uri) = &scylla {
            rows.extend(runtime.block_on(scylla_history(uri, count, batch)));
        }
        for row in rows {
            let figures = [row.apparent, row.allocated, row.amplification];
            match by_label.iter_mut().find(|(label, _)| *label == row.label) {
                Some((_, columns)) => {
                    for (column, figure) in columns.iter_mut().zip(figures) {
                        column.push(figure);
                    }
                }
                None => by_label.push((row.label, figures.map(|f| vec![f]))),
            }
        }
    }
    println!(
        "\n{count} messages of {TEXT_BYTES} bytes (store rows: batches of {batch}); \
         median [min–max] of {runs} runs"
    );
    println!(
        "| store | bytes per message (apparent) | bytes per message (allocated) | bytes written per byte of text |\n\
         | --- | ---: | ---: | ---: |"
    );
    for (label, [apparent, allocated, amplification]) in by_label {
        println!(
            "| {label} | {} | {} | {} |",
            median_and_range(apparent, 0),
            median_and_range(allocated, 0),
            median_and_range(amplification, 1)
        );
    }
    if scylla.is_none() {
        println!("(ScyllaDB not measured: set SCYLLA_URI)");
    }
}
