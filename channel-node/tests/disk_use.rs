//! An embedded node's history stays small (issue 18): it grows by well under a kilobyte on disk
//! per 100-byte message, and a restart — which re-applies the log and rewrites the history it had
//! not confirmed — does not grow the file. The figures themselves are benchmarked (`benches/benches/disk_per_message.rs`);
//! these bounds are loose on purpose and catch a return of the old growth (17–27 KB a message).

use std::collections::VecDeque;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use chorus_channel_node::{ChannelNodeConfig, ChannelService};
use chorus_cluster::{ChannelRouter, FanoutBus, LocalBus, PublishRequest};
use chorus_core::RedbMessageStore;
use uuid::Uuid;

const MESSAGES: u64 = 4_000;

/// Blocks the filesystem allocated for a file.
fn allocated(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().blocks() * 512
}

async fn start(dir: &Path, snapshot_every: u64) -> ChannelService {
    let messages = RedbMessageStore::open(&dir.join("messages.redb")).unwrap();
    let mut config = ChannelNodeConfig::new(dir.join("channels"));
    config.snapshot_every = snapshot_every;
    ChannelService::start(
        config,
        Arc::new(messages),
        Arc::new(LocalBus::new(1024)) as Arc<dyn FanoutBus>,
    )
    .await
    .unwrap()
}

/// Publishes `count` 100-byte messages over four channels, 16 in flight.
async fn publish(service: &ChannelService, count: u64) {
    let channels: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    let author = Uuid::new_v4();
    let mut tickets = VecDeque::new();
    for n in 0..count {
        let request = PublishRequest::message(
            channels[(n % 4) as usize],
            author,
            format!("n-{n}"),
            "x".repeat(100),
        );
        tickets.push_back(service.submit(request).await.unwrap());
        if tickets.len() >= 16 {
            tickets.pop_front().unwrap().await.unwrap();
        }
    }
    for ticket in tickets {
        ticket.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_grows_little_per_message_and_a_restart_does_not_grow_it() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("messages.redb");

    // What a message adds once the file is past its fixed start-up cost: the old growth was
    // 17–27 KB a message, now a few hundred bytes.
    let service = start(dir.path(), 2_000).await;
    publish(&service, MESSAGES).await;
    let first = allocated(&history);
    publish(&service, MESSAGES).await;
    service.shutdown().await;
    drop(service);
    let written = allocated(&history);
    let per_message = written.saturating_sub(first) / MESSAGES;
    assert!(
        per_message <= 1_024,
        "history grew by {per_message} bytes on disk per 100-byte message ({first} -> {written})"
    );

    // The restart re-applies the log; one more acknowledged message means whatever history was
    // unconfirmed has been rewritten (history is written in log order).
    let service = start(dir.path(), 2_000).await;
    publish(&service, 1).await;
    service.shutdown().await;
    drop(service);
    let restarted = allocated(&history);
    assert!(
        restarted <= written + written / 10 + 64 * 1024,
        "a restart grew the history from {written} to {restarted} bytes"
    );
}
