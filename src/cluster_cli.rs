//! `chorus cluster …`: the operator's commands for a cluster — dev certificates, the status of
//! every channel node, shard, replica and leader as the nodes themselves report it, and
//! membership changes (drain, decommission, undrain), which any node forwards to the control
//! group's leader.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use chorus_cluster::ClusterMap;
use chorus_cluster::rpc::{MembershipRequest, NODE_GROUP, NodeStatus, method};
use chorus_cluster::transport::{QuicEndpoint, TlsFiles, TransportLimits, generate_dev_certs};

/// Writes a dev CA and a certificate per name into `dir` (the CA is reused when present).
pub fn certs(dir: &Path, names: &[String]) -> anyhow::Result<()> {
    generate_dev_certs(dir, names).context("cannot write certificates")?;
    for name in names {
        println!("{}", dir.join(format!("{name}.pem")).display());
    }
    Ok(())
}

/// Asks every node named by `seeds` (and every node in the map they report) for its status.
pub async fn status(tls: &TlsFiles, seeds: &[SocketAddr], json: bool) -> anyhow::Result<()> {
    let endpoint = QuicEndpoint::client(tls, TransportLimits::default())
        .context("cannot open the cluster transport")?;
    let mut targets: Vec<SocketAddr> = seeds.to_vec();
    let mut reports: BTreeMap<SocketAddr, Result<NodeStatus, String>> = BTreeMap::new();
    while let Some(addr) = targets.pop() {
        if reports.contains_key(&addr) {
            continue;
        }
        let report = endpoint
            .call(
                addr,
                NODE_GROUP,
                method::STATUS,
                Bytes::new(),
                Duration::from_secs(2),
            )
            .await
            .map_err(|err| err.to_string())
            .and_then(|body| {
                serde_json::from_slice::<NodeStatus>(&body).map_err(|e| e.to_string())
            });
        if let Ok(status) = &report {
            targets.extend(status.map.nodes.values().copied());
        }
        reports.insert(addr, report);
    }
    endpoint.close().await;
    if json {
        let as_json: BTreeMap<String, serde_json::Value> = reports
            .iter()
            .map(|(addr, report)| {
                let value = match report {
                    Ok(status) => serde_json::to_value(status).unwrap_or_default(),
                    Err(err) => serde_json::json!({ "error": err }),
                };
                (addr.to_string(), value)
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&as_json)?);
    } else {
        print!("{}", render(&reports));
    }
    Ok(())
}

/// Sends a membership change to the first seed that answers; prints what the cluster will do.
pub async fn membership(
    tls: &TlsFiles,
    seeds: &[SocketAddr],
    request: MembershipRequest,
) -> anyhow::Result<()> {
    let endpoint = QuicEndpoint::client(tls, TransportLimits::default())
        .context("cannot open the cluster transport")?;
    let body = Bytes::from(serde_json::to_vec(&request)?);
    let mut unreachable = Vec::new();
    let mut outcome = None;
    for seed in seeds {
        match endpoint
            .call(
                *seed,
                NODE_GROUP,
                method::MEMBERSHIP,
                body.clone(),
                Duration::from_secs(60),
            )
            .await
        {
            Ok(reply) => {
                outcome = Some(
                    serde_json::from_slice::<Result<ClusterMap, String>>(&reply)
                        .context("malformed reply")?,
                );
                break;
            }
            Err(err) => unreachable.push(format!("{seed}: {err}")),
        }
    }
    endpoint.close().await;
    match outcome {
        None => anyhow::bail!("no channel node answered: {}", unreachable.join("; ")),
        Some(Err(why)) => anyhow::bail!("refused: {why}"),
        Some(Ok(map)) => {
            let moves = chorus_cluster::rebalance::replicas_to_move(&map);
            println!(
                "accepted (map version {}): {} replica(s) to move, one shard at a time; \
                 `chorus cluster status` shows the progress",
                map.version, moves
            );
            Ok(())
        }
    }
}

/// How many shards each node leads, beside how many prefer it (docs/CLUSTER.md, "Leadership"):
/// `leaderships (leading/preferred): node 1 5/6, node 2 6/5, node 3 5/5`.
fn leadership_line(
    map: &chorus_cluster::ClusterMap,
    reports: &BTreeMap<SocketAddr, Result<NodeStatus, String>>,
) -> String {
    let preferred = chorus_cluster::leadership::preferred_counts(map);
    let mut leading: BTreeMap<u64, usize> = BTreeMap::new();
    for status in reports.values().filter_map(|r| r.as_ref().ok()) {
        let led = status
            .shards
            .iter()
            .filter(|s| s.group.state == "Leader")
            .count();
        leading.insert(status.node_id, led);
    }
    let nodes: Vec<String> = map
        .nodes
        .keys()
        .map(|node| {
            let led = leading.get(node).map_or("?".into(), |n| n.to_string());
            let wanted = preferred.get(node).copied().unwrap_or(0);
            format!("node {node} {led}/{wanted}")
        })
        .collect();
    format!("leaderships (leading/preferred): {}", nodes.join(", "))
}

/// The status table a person reads.
fn render(reports: &BTreeMap<SocketAddr, Result<NodeStatus, String>>) -> String {
    let mut out = String::new();
    // The newest map: a node that was decommissioned keeps the last one it saw.
    let map = reports
        .values()
        .filter_map(|r| r.as_ref().ok())
        .map(|s| &s.map)
        .max_by_key(|map| map.version);
    if let Some(map) = map {
        let _ = writeln!(
            out,
            "cluster: {} shards, replication {}, {} channel nodes (map version {})",
            map.shard_count,
            map.replication,
            map.nodes.len(),
            map.version
        );
        for (node, reason) in &map.draining {
            let _ = writeln!(out, "node {node}: draining ({reason:?})");
        }
        if let Some(mv) = &map.moving {
            let _ = writeln!(out, "moving: shard {} to replicas {:?}", mv.shard, mv.to);
        }
        let pending = chorus_cluster::rebalance::replicas_to_move(map);
        if pending > 0 {
            let _ = writeln!(out, "rebalancing: {pending} replica(s) still to move");
        }
        let _ = writeln!(out, "{}", leadership_line(map, reports));
    }
    for (addr, report) in reports {
        match report {
            Err(err) => {
                let _ = writeln!(out, "\nnode at {addr}: UNREACHABLE ({err})");
            }
            Ok(status) => {
                let _ = writeln!(
                    out,
                    "\nnode {} at {addr}: control group {} (term {}, leader {:?})",
                    status.node_id,
                    status.control.state,
                    status.control.term,
                    status.control.leader
                );
                let _ = writeln!(
                    out,
                    "  {:>5}  {:<9}  {:>5}  {:>6}  {:>8}  {:>8}  replicas",
                    "shard", "state", "term", "leader", "commit", "applied"
                );
                for shard in &status.shards {
                    let g = &shard.group;
                    let _ = writeln!(
                        out,
                        "  {:>5}  {:<9}  {:>5}  {:>6}  {:>8}  {:>8}  {:?}",
                        shard.shard,
                        g.state,
                        g.term,
                        g.leader.map_or("-".into(), |l| l.to_string()),
                        g.commit_index.map_or("-".into(), |i| i.to_string()),
                        g.applied_index.map_or("-".into(), |i| i.to_string()),
                        g.voters
                    );
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_cluster::ClusterMap;
    use chorus_cluster::rpc::{GroupStatus, ShardStatus};

    fn group(state: &str) -> GroupStatus {
        GroupStatus {
            state: state.into(),
            term: 1,
            leader: None,
            voters: vec![1, 2, 3],
            last_log_index: None,
            commit_index: None,
            applied_index: None,
        }
    }

    #[test]
    fn the_leadership_line_counts_leaders_beside_preferred_shares() {
        let nodes = (1..=3)
            .map(|id| (id, SocketAddr::from(([127, 0, 0, 1], 7100 + id as u16))))
            .collect();
        let map = ClusterMap::create(6, 3, nodes).unwrap();
        let status = |node_id: u64, leads: &[u32]| NodeStatus {
            node_id,
            map: map.clone(),
            control: group("Follower"),
            shards: (0..6)
                .map(|shard| ShardStatus {
                    shard,
                    group: group(if leads.contains(&shard) {
                        "Leader"
                    } else {
                        "Follower"
                    }),
                })
                .collect(),
        };
        let reports = BTreeMap::from([
            (map.addr(1).unwrap(), Ok(status(1, &[0, 1, 2, 3, 4, 5]))),
            (map.addr(2).unwrap(), Ok(status(2, &[]))),
            (map.addr(3).unwrap(), Err("timed out".to_string())),
        ]);
        assert_eq!(
            leadership_line(&map, &reports),
            "leaderships (leading/preferred): node 1 6/2, node 2 0/2, node 3 ?/2"
        );
    }
}
