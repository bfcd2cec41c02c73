//! The faults of a chaos run: which, on what, and how the scenario tells the cluster.
//!
//! The scenario never touches processes or the network itself: it runs a control command (`--ctl`,
//! e.g. `scripts/netns-cluster.sh`) with one of these verbs, so the same scenario drives any
//! deployment that has such a command:
//!
//! | verb | does | prints |
//! | --- | --- | --- |
//! | `kill NAME` / `restart NAME` | SIGKILL; start again and wait until it serves | — |
//! | `pause NAME` / `resume NAME` | SIGSTOP; SIGCONT | — |
//! | `stop NAME` | SIGTERM, wait for the exit (rolling restarts) | — |
//! | `partition leader` | cut the node leading the most shards off from the other nodes | its name |
//! | `heal` | undo every partition | — |
//! | `status --json` | `chorus cluster status --json` | the status |
//!
//! The plan (which fault, which target) is a pure function of a seed, so a failing run can be
//! repeated.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::Value;

use crate::checker::IsolatedShard;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// kill -9 a random channel node or gateway, restart it after --fault-secs.
    Kill,
    /// SIGSTOP a random process, SIGCONT after --fault-secs.
    Pause,
    /// Cut the leader of the most shards off from its followers; heal after --fault-secs.
    Partition,
    /// Graceful stop (SIGTERM) and start: what a rolling restart does to each process.
    Restart,
}

/// One planned fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    pub kind: Kind,
    /// The process; `leader` for a partition (the control command picks the node).
    pub target: String,
}

/// `count` faults drawn from `kinds` and `targets` with `seed`. A partition's target is `leader`.
pub fn random_plan(kinds: &[Kind], targets: &[String], count: usize, seed: u64) -> Vec<Planned> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let kind = kinds[rng.gen_range(0..kinds.len())];
            let target = match kind {
                Kind::Partition => "leader".to_string(),
                _ => targets[rng.gen_range(0..targets.len())].clone(),
            };
            Planned { kind, target }
        })
        .collect()
}

/// One `KIND:TARGET` of `--plan`.
pub fn parse_planned(text: &str) -> Result<Planned, String> {
    let (kind, target) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}` is not KIND:TARGET"))?;
    let kind = <Kind as clap::ValueEnum>::from_str(kind, true)?;
    if target.is_empty() || target.contains(char::is_whitespace) {
        return Err(format!("`{text}`: no target"));
    }
    Ok(Planned {
        kind,
        target: target.to_string(),
    })
}

/// A rolling restart: every target once, in the order given, each stopped and started.
pub fn rolling_plan(targets: &[String]) -> Vec<Planned> {
    targets
        .iter()
        .map(|target| Planned {
            kind: Kind::Restart,
            target: target.clone(),
        })
        .collect()
}

/// The shards `node_id` leads in a `status --json` answer, with their commit index. The answer
/// maps each seed address to a node's status (or to an error for a node that did not answer).
pub fn led_shards(status: &Value, node_id: u64) -> Vec<(u32, u64)> {
    let Some(nodes) = status.as_object() else {
        return Vec::new();
    };
    nodes
        .values()
        .filter(|node| node["node_id"].as_u64() == Some(node_id))
        .flat_map(|node| node["shards"].as_array().cloned().unwrap_or_default())
        .filter(|shard| shard["group"]["state"] == "Leader")
        .filter_map(|shard| {
            Some((
                shard["shard"].as_u64()? as u32,
                shard["group"]["commit_index"].as_u64().unwrap_or(0),
            ))
        })
        .collect()
}

/// The shards led at the cut, with their commit index then and in `at_heal` (what the isolated
/// node reports just before the heal; a shard it no longer reports keeps its cut-time index).
pub fn isolated_shards(at_cut: &[(u32, u64)], at_heal: &Value, node_id: u64) -> Vec<IsolatedShard> {
    let heal: std::collections::HashMap<u32, u64> =
        all_shards(at_heal, node_id).into_iter().collect();
    at_cut
        .iter()
        .map(|&(shard, commit)| IsolatedShard {
            shard,
            commit_at_cut: commit,
            commit_at_heal: heal.get(&shard).copied().unwrap_or(commit),
        })
        .collect()
}

/// Every shard `node_id` reports, whatever its role, with its commit index.
fn all_shards(status: &Value, node_id: u64) -> Vec<(u32, u64)> {
    let Some(nodes) = status.as_object() else {
        return Vec::new();
    };
    nodes
        .values()
        .filter(|node| node["node_id"].as_u64() == Some(node_id))
        .flat_map(|node| node["shards"].as_array().cloned().unwrap_or_default())
        .filter_map(|shard| {
            Some((
                shard["shard"].as_u64()? as u32,
                shard["group"]["commit_index"].as_u64().unwrap_or(0),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_plan_is_repeatable_and_partitions_target_the_leader() {
        let targets: Vec<String> = ["node-1", "gateway-1"].map(String::from).into();
        let kinds = [Kind::Kill, Kind::Pause, Kind::Partition];
        let plan = random_plan(&kinds, &targets, 30, 7);
        assert_eq!(plan, random_plan(&kinds, &targets, 30, 7));
        assert!(plan.iter().any(|p| p.kind == Kind::Partition));
        for p in &plan {
            match p.kind {
                Kind::Partition => assert_eq!(p.target, "leader"),
                _ => assert!(targets.contains(&p.target)),
            }
        }
        assert_eq!(
            parse_planned("pause:gateway-2"),
            Ok(Planned {
                kind: Kind::Pause,
                target: "gateway-2".into()
            })
        );
        assert!(parse_planned("explode:node-1").is_err());
        assert!(parse_planned("kill").is_err());
        let rolling = rolling_plan(&targets);
        assert_eq!(rolling.len(), 2);
        assert!(rolling.iter().all(|p| p.kind == Kind::Restart));
    }

    #[test]
    fn the_isolated_node_s_led_shards_and_their_commits_are_read_from_status() {
        let shard = |n: u64, state: &str, commit: u64| {
            json!({"shard": n, "group": {"state": state, "term": 3, "leader": 2, "voters": [1, 2, 3],
                   "last_log_index": commit, "commit_index": commit, "applied_index": commit}})
        };
        let at_cut = json!({
            "10.77.0.11:7101": {"node_id": 1, "shards": [shard(0, "Follower", 5)]},
            "10.77.0.12:7101": {"node_id": 2, "shards": [shard(0, "Leader", 5), shard(1, "Leader", 9), shard(2, "Follower", 1)]},
            "10.77.0.13:7101": {"error": "no answer"},
        });
        assert_eq!(led_shards(&at_cut, 2), vec![(0, 5), (1, 9)]);
        assert_eq!(led_shards(&at_cut, 3), vec![]);
        let at_heal = json!({
            "10.77.0.12:7101": {"node_id": 2, "shards": [shard(0, "Leader", 5), shard(1, "Leader", 10)]},
        });
        let isolated = isolated_shards(&led_shards(&at_cut, 2), &at_heal, 2);
        assert_eq!(
            crate::checker::minority_commits(&isolated),
            1,
            "{isolated:?}"
        );
    }
}
