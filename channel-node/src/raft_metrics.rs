//! Prometheus gauges and counters of one Raft group, from openraft's metrics channel.
//!
//! One task per replica (spawned by `shard.rs`) follows `Raft::metrics()` and mirrors it: term,
//! whether this replica leads, leader changes, last log / applied index, and the entries the log
//! holds beyond its last purge (the log's size). The `group` label is the group's name
//! (`chorus-channels`, `chorus-shard-N`): a bounded set, one per shard. openraft updates its
//! full metrics on every append and apply, so the task wakes only when the *server* metrics
//! change (vote, state, leader: rare) and otherwise samples the indexes every
//! [`SAMPLE_EVERY`]: nothing here costs the write path. The batcher's batch size and commit latency
//! are recorded in `batcher.rs` with the handles below.

use std::sync::LazyLock;
use std::time::Duration;

use metrics::{Histogram, counter, gauge, histogram};
use openraft::{BasicNode, Raft, RaftMetrics, ServerState};

use crate::raft_types::{NodeId, TypeConfig};

/// The batcher's handles: events per proposed entry, and time from proposal to commit + apply.
pub(crate) struct BatchMetrics {
    pub batch_events: Histogram,
    pub commit_seconds: Histogram,
}

pub(crate) static BATCH: LazyLock<BatchMetrics> = LazyLock::new(|| BatchMetrics {
    batch_events: histogram!("chorus_channel_batch_events"),
    commit_seconds: histogram!("chorus_raft_commit_seconds"),
});

/// How often the gauges follow openraft's metrics at most.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// Entries in the log after its purge point: what a restart would replay, what a snapshot cuts.
pub(crate) fn log_entries(m: &RaftMetrics<NodeId, BasicNode>) -> u64 {
    let last = m.last_log_index.unwrap_or(0);
    let purged = m.purged.map_or(0, |p| p.index);
    last.saturating_sub(purged)
}

/// Mirrors `metrics` into gauges labelled `group` until the replica shuts down.
pub(crate) async fn follow(raft: Raft<TypeConfig>, group: String) {
    let metrics = raft.metrics();
    let mut server = raft.server_metrics();
    drop(raft);
    let term = gauge!("chorus_raft_term", "group" => group.clone());
    let leading = gauge!("chorus_raft_is_leader", "group" => group.clone());
    let changes = counter!("chorus_raft_leader_changes_total", "group" => group.clone());
    let last_log = gauge!("chorus_raft_last_log_index", "group" => group.clone());
    let applied = gauge!("chorus_raft_applied_index", "group" => group.clone());
    let entries = gauge!("chorus_raft_log_entries", "group" => group.clone());
    let group_name = group;
    let mut leader = None;
    loop {
        {
            let m = metrics.borrow();
            if m.state == ServerState::Shutdown {
                leading.set(0.0);
                return;
            }
            if m.current_leader != leader {
                if m.current_leader.is_some() {
                    changes.increment(1);
                }
                // Rare (an election) and what an SRE reads a failover from.
                tracing::info!(group = %group_name, term = m.current_term, leader = ?m.current_leader, state = ?m.state, "raft leader changed");
                leader = m.current_leader;
            }
            term.set(m.current_term as f64);
            leading.set(if m.state == ServerState::Leader {
                1.0
            } else {
                0.0
            });
            last_log.set(m.last_log_index.unwrap_or(0) as f64);
            applied.set(m.last_applied.map_or(0, |l| l.index) as f64);
            entries.set(log_entries(&m) as f64);
        }
        tokio::select! {
            changed = server.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(SAMPLE_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, LogId};

    #[test]
    fn the_log_holds_what_follows_its_purge_point() {
        let mut m = RaftMetrics::<NodeId, BasicNode>::new_initial(1);
        assert_eq!(log_entries(&m), 0);
        m.last_log_index = Some(2_500);
        assert_eq!(log_entries(&m), 2_500);
        m.purged = Some(LogId::new(CommittedLeaderId::new(1, 1), 2_000));
        assert_eq!(log_entries(&m), 500);
    }
}
