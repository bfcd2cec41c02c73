//! Membership changes of a running cluster, end to end: a fourth channel node joins (`--join`)
//! and takes about a quarter of the shard replicas, one shard at a time; killed, it is replaced
//! on the others; back and undrained, it takes its share again; then a seed node is
//! decommissioned and leaves. Messages are posted through the whole of it, and every
//! acknowledged one must be in history once, in order.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chorus_cluster::rebalance::{moved_replicas, replicas_to_move};
use chorus_cluster::rpc::MembershipRequest;
use chorus_cluster::{ClusterMap, DrainReason};
use common::cluster::{LocalCluster, history_nonces, owner_with_channels, post_until};
use serde_json::json;

/// The default shard count: the share of replicas a join moves is checked on it.
const SHARDS: u32 = 16;

/// The newest map any node reports (a decommissioned node keeps the map it last saw).
async fn map(cluster: &LocalCluster) -> ClusterMap {
    let mut newest: Option<ClusterMap> = None;
    for id in cluster.transport.keys() {
        if cluster.nodes[id].is_running()
            && let Some(status) = cluster.status(*id).await
            && newest
                .as_ref()
                .is_none_or(|m| status.map.version > m.version)
        {
            newest = Some(status.map);
        }
    }
    newest.expect("no channel node answers")
}

/// Waits until the map satisfies `done` and no move runs or is left to do.
async fn settled(
    cluster: &LocalCluster,
    what: &str,
    done: impl Fn(&ClusterMap) -> bool,
) -> ClusterMap {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let map = map(cluster).await;
        if done(&map) && map.moving.is_none() && replicas_to_move(&map) == 0 {
            return map;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the cluster did not settle: moving {:?}, {} replicas to move, draining {:?}",
            map.moving,
            replicas_to_move(&map),
            map.draining
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_join_die_return_and_leave_while_every_acknowledged_post_stays() {
    let mut cluster = LocalCluster::start(SHARDS).await;
    cluster.keep_logs_if_asked();
    let rest = cluster.rest(0);
    let (alice, channels) = owner_with_channels(&rest, "m", 8).await;
    let before = map(&cluster).await;
    assert_eq!(replicas_to_move(&before), 0, "a new cluster is balanced");

    // Posts through the other gateway for the whole of the membership changes.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(post_until(
        cluster.rest(1),
        alice.clone(),
        channels.clone(),
        stop.clone(),
    ));

    // A fourth node joins: replicas move onto it, one shard at a time.
    cluster.join_node(4).await;
    let joined = settled(&cluster, "join", |m| {
        m.nodes.contains_key(&4) && !m.placement().shards_of(4).is_empty()
    })
    .await;
    let (old, new) = (before.current_assignment(), joined.current_assignment());
    let moved: usize = (0..SHARDS as usize)
        .map(|s| moved_replicas(&old[s].nodes, &new[s].nodes))
        .sum();
    let total = SHARDS as usize * 3;
    eprintln!("joining node 4 moved {moved} of {total} replicas");
    assert!(moved > 0);
    assert!(
        moved as f64 <= total as f64 * (0.25 + 0.05),
        "a join moves at most a quarter + 5 % of the replicas: {moved} of {total}"
    );
    // Node 4 runs a replica of every shard placed on it, as a voter of that shard's group.
    let status = cluster.status(4).await.expect("node 4 answers");
    let placed: BTreeSet<u32> = joined.placement().shards_of(4).into_iter().collect();
    let hosted: BTreeSet<u32> = status.shards.iter().map(|s| s.shard).collect();
    assert_eq!(hosted, placed);
    for shard in &status.shards {
        assert!(
            shard.group.voters.contains(&4),
            "shard {}: {:?}",
            shard.shard,
            shard.group
        );
    }

    // Node 4 dies: after `replace_dead_after_secs` (3 s in the tests) its replicas are replaced
    // on the other three. Back, and undrained, it takes its share again.
    cluster.nodes.get_mut(&4).unwrap().kill().await;
    let replaced = settled(&cluster, "replacing a dead node", |m| {
        m.draining.get(&4) == Some(&DrainReason::Dead) && m.placement().shards_of(4).is_empty()
    })
    .await;
    for shard in 0..SHARDS {
        assert_eq!(replaced.placement().replicas(shard).len(), 3);
    }
    cluster.nodes.get_mut(&4).unwrap().spawn().await;
    cluster
        .membership(3, &MembershipRequest::Undrain { node: 4 })
        .await
        .expect("undrain");
    let back = settled(&cluster, "undrain", |m| {
        !m.draining.contains_key(&4) && !m.placement().shards_of(4).is_empty()
    })
    .await;
    let nodes = |m: &ClusterMap| -> Vec<Vec<u64>> {
        m.current_assignment()
            .into_iter()
            .map(|a| a.nodes)
            .collect()
    };
    assert_eq!(
        nodes(&back),
        nodes(&joined),
        "the ring puts node 4's share back"
    );

    // Draining below the replication factor is refused; decommissioning a seed is not.
    let refused = cluster
        .membership(2, &MembershipRequest::Drain { node: 9 })
        .await
        .unwrap_err();
    assert!(refused.contains("not in the cluster"), "{refused}");
    cluster
        .membership(2, &MembershipRequest::Decommission { node: 1 })
        .await
        .expect("node 1 may be decommissioned: three nodes remain");
    let after = settled(&cluster, "decommission", |m| {
        !m.nodes.contains_key(&1) && m.removed.contains(&1)
    })
    .await;
    assert!(after.placement().shards_of(1).is_empty());
    let refused = cluster
        .membership(2, &MembershipRequest::Drain { node: 3 })
        .await
        .unwrap_err();
    assert!(refused.contains("add a node first"), "{refused}");
    // The decommissioned node runs no replica any more.
    let status = cluster.status(1).await.expect("node 1 still answers");
    assert!(status.shards.is_empty(), "{:?}", status.shards);
    cluster.nodes.get_mut(&1).unwrap().kill().await;

    stop.store(true, Ordering::Relaxed);
    let acked = writer.await.unwrap();
    let count: usize = acked.values().map(Vec::len).sum();
    eprintln!("{count} posts acknowledged during the changes");
    assert!(count > 50, "the writer kept posting: {count}");

    // Every acknowledged post is in history once, at its seq, in the order it was sent.
    for channel in &channels {
        let stored = history_nonces(&rest, &alice, *channel).await;
        let sent = acked.get(channel).cloned().unwrap_or_default();
        assert_eq!(
            stored, sent,
            "channel {channel}: history is what was acknowledged"
        );
    }
    // And the cluster still takes posts everywhere.
    for channel in &channels {
        let (status, body) = rest
            .post(
                &format!("/v1/channels/{channel}/messages"),
                Some(&alice),
                json!({"text": "after"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
}
