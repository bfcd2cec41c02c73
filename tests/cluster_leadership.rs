//! Where shard leaderships go, end to end on a real local cluster: a channel node killed with
//! `kill -9` loses its leaderships to the survivors; back, it gets its preferred shards handed
//! back (after `leader_settle_secs`, 2 s here) — no node keeps every shard; a node stopped with
//! SIGTERM hands its leaderships over before it exits. Posts are made through all of it, and
//! every acknowledged one must be in history once, in order.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chorus_cluster::ClusterMap;
use chorus_cluster::leadership::preferred_leaders;
use common::cluster::{LocalCluster, history_nonces, owner_with_channels, post_until};

const SHARDS: u32 = 8;

/// Each shard's preferred leader in the cluster's map.
async fn preferred(cluster: &LocalCluster) -> BTreeMap<u32, u64> {
    let map: ClusterMap = cluster.status(1).await.expect("node 1 answers").map;
    preferred_leaders(&map)
        .iter()
        .enumerate()
        .map(|(shard, node)| (shard as u32, node.expect("a preferred leader")))
        .collect()
}

/// A log line without its colours (the processes log for a terminal).
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Waits until `done` holds for the shards' leaders; returns how long that took.
async fn leaders_until(
    cluster: &LocalCluster,
    what: &str,
    within: Duration,
    done: impl Fn(&BTreeMap<u32, u64>) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let leaders = cluster.leaders().await;
        if done(&leaders) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{what}: not within {within:?}; leaders {leaders:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaderships_return_to_a_node_that_comes_back_and_leave_a_node_that_stops() {
    let mut cluster = LocalCluster::start_with(SHARDS, "leader_settle_secs = 2").await;
    cluster.keep_logs_if_asked();
    let rest = cluster.rest(0);
    let (alice, channels) = owner_with_channels(&rest, "l", 8).await;
    let preferred = preferred(&cluster).await;
    let counts = |leaders: &BTreeMap<u32, u64>| {
        let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
        for node in leaders.values() {
            *counts.entry(*node).or_default() += 1;
        }
        counts
    };
    let spread = counts(&preferred);
    assert!(
        spread.len() == 3 && spread.values().all(|&n| n >= 2),
        "preferred leaderships are spread: {spread:?}"
    );
    // A new cluster: each shard's first replica initialized it and leads it.
    leaders_until(&cluster, "a new cluster", Duration::from_secs(30), |l| {
        *l == preferred
    })
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(post_until(
        cluster.rest(1),
        alice.clone(),
        channels.clone(),
        stop.clone(),
    ));

    // kill -9 of the node preferred by the most shards: the survivors take them all.
    let victim = *counts(&preferred)
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(node, _)| node)
        .unwrap();
    cluster.nodes.get_mut(&victim).unwrap().kill().await;
    leaders_until(
        &cluster,
        "survivors lead every shard",
        Duration::from_secs(30),
        |l| l.len() == SHARDS as usize && !l.values().any(|&n| n == victim),
    )
    .await;
    // Back: once caught up and after the settling time, it gets its preferred shards back.
    cluster.nodes.get_mut(&victim).unwrap().spawn().await;
    let took = leaders_until(
        &cluster,
        "leaderships handed back",
        Duration::from_secs(60),
        |l| *l == preferred,
    )
    .await;
    eprintln!("node {victim} led its preferred shards again {took:?} after its restart");
    // How long each hand-over held its shard's writes, from the leaders' logs.
    let paused_ms: Vec<u64> = cluster
        .nodes
        .values()
        .flat_map(|n| n.log_text().lines().map(plain).collect::<Vec<_>>())
        .filter(|l| l.contains("leadership handed over"))
        .filter_map(|l| {
            let (_, rest) = l.split_once("paused_ms=")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .collect();
    eprintln!("hand-overs held writes for {paused_ms:?} ms");
    assert!(!paused_ms.is_empty(), "leaderships came back by hand-over");

    // SIGTERM: the node hands its leaderships over before it exits.
    let stopped = *preferred.values().next().unwrap();
    let led_before = cluster
        .leaders()
        .await
        .values()
        .filter(|&&n| n == stopped)
        .count();
    assert!(led_before > 0);
    cluster.nodes.get_mut(&stopped).unwrap().stop().await;
    let log = cluster.nodes[&stopped].log_text();
    let line = log
        .lines()
        .map(plain)
        .find(|l| l.contains("leaving: leaderships handed over"))
        .unwrap_or_else(|| panic!("node {stopped} logged no hand-over at its stop:\n{log}"));
    assert!(
        line.contains(&format!("moved={led_before}"))
            && line.contains(&format!("led={led_before}")),
        "every leadership of node {stopped} was handed over: {line}"
    );
    leaders_until(
        &cluster,
        "the others lead every shard",
        Duration::from_secs(10),
        |l| l.len() == SHARDS as usize,
    )
    .await;
    cluster.nodes.get_mut(&stopped).unwrap().spawn().await;

    stop.store(true, Ordering::Relaxed);
    let acked = writer.await.unwrap();
    let count: usize = acked.values().map(Vec::len).sum();
    eprintln!("{count} posts acknowledged meanwhile");
    assert!(count > 50, "the writer kept posting: {count}");
    for channel in &channels {
        let stored = history_nonces(&rest, &alice, *channel).await;
        let sent = acked.get(channel).cloned().unwrap_or_default();
        assert_eq!(
            stored, sent,
            "channel {channel}: history is what was acknowledged"
        );
    }
}
