//! The runtime of coordinated elections (`election.rs` holds the rule): one task per shard
//! replica of a cluster, in place of openraft's own election timer.
//!
//! The task reads how long ago this replica last heard from a leader — openraft's own
//! `vote_last_modified`, the clock its leader lease runs on, so a replica suspects exactly when
//! its vote could be granted to someone else — and sleeps until that lease would run out, so a
//! follower of a live leader looks a few times per lease rather than every tick. Once it exceeds
//! the lease (`election_max_ms`), it probes the group's other voters in parallel (method
//! `RAFT_PROBE`, answered by [`probe_reply`] from local state), applies the rule, and calls
//! `trigger().elect()` when the rule names it. A replica that keeps suspecting without a leader
//! appearing elects anyway after a randomized fallback, as openraft's timer would have.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::join_all;
use openraft::storage::RaftLogStorage;
use openraft::{Raft, ServerState};
use tokio::time::Instant;

use crate::election::{Decision, OwnView, ProbeReply, decide};
use crate::log_store::LogStore;
use crate::raft_types::{NodeId, TypeConfig};
use crate::shard::RaftTiming;

/// Calls to the other voters of a replica's group, over the transport.
#[async_trait]
pub trait ProbePeers: Send + Sync + 'static {
    /// Another voter's [`ProbeReply`]; `None` when it does not answer in time.
    async fn probe(&self, addr: &str, timeout: Duration) -> Option<ProbeReply>;
    /// Asks another voter to stand for election once its lease has run out: this replica, its
    /// leader, hands the leadership over (`hand_over.rs`).
    async fn ask_to_stand(&self, addr: &str, timeout: Duration) -> Result<(), String>;
}

/// How long ago this replica's vote was last confirmed (by a leader's AppendEntries, a vote it
/// granted, or its own candidacy); `None` if never since it started.
async fn heard_leader_ago(raft: &Raft<TypeConfig>) -> Option<Duration> {
    raft.with_raft_state(|state| state.vote_last_modified())
        .await
        .ok()
        .flatten()
        .map(|at| Instant::now().saturating_duration_since(at))
}

/// This replica's answer to a probe. A leader answers from its metrics at once (its core may be
/// busy, and a slow answer would read as a dead leader); a follower also reads its log's end.
pub(crate) async fn probe_reply(
    raft: &Raft<TypeConfig>,
    log: &mut LogStore<TypeConfig>,
) -> Result<ProbeReply, String> {
    if raft.metrics().borrow().state == ServerState::Leader {
        return Ok(ProbeReply {
            leading: true,
            heard_leader_ms_ago: Some(0),
            last_log: None,
        });
    }
    let heard = heard_leader_ago(raft).await;
    let last_log = log
        .get_log_state()
        .await
        .map_err(|err| err.to_string())?
        .last_log_id;
    Ok(ProbeReply {
        leading: false,
        heard_leader_ms_ago: heard.map(|ago| u64::try_from(ago.as_millis()).unwrap_or(u64::MAX)),
        last_log,
    })
}

/// A random duration in `[low, high)` (jitter: replicas that lost a leader together should not
/// probe and fall back in lock step).
fn jitter(low: Duration, high: Duration) -> Duration {
    let span = high.saturating_sub(low).as_micros().max(1) as u64;
    low + Duration::from_micros(RandomState::new().hash_one(()) % span)
}

/// Runs until the replica shuts down.
pub(crate) async fn run(
    node: NodeId,
    group: u64,
    raft: Raft<TypeConfig>,
    mut log: LogStore<TypeConfig>,
    probes: Arc<dyn ProbePeers>,
    timing: RaftTiming,
    name: String,
) {
    let suspect_after = Duration::from_millis(timing.election_max_ms);
    let tick = Duration::from_millis((timing.heartbeat_ms / 4).clamp(5, 50));
    let probe_timeout = Duration::from_millis((timing.heartbeat_ms / 2).max(10));
    let election_min = Duration::from_millis(timing.election_min_ms);
    let election_max = Duration::from_millis(timing.election_max_ms);
    // When this replica elects on its own if no leader has appeared by then.
    let mut fallback_at: Option<Instant> = None;
    let mut pause = tick;
    loop {
        tokio::time::sleep(jitter(pause, pause + tick / 2)).await;
        pause = tick;
        let (state, membership) = {
            let metrics = raft.metrics();
            let m = metrics.borrow();
            (m.state, m.membership_config.clone())
        };
        match state {
            ServerState::Shutdown => return,
            ServerState::Leader | ServerState::Learner => {
                fallback_at = None;
                pause = suspect_after / 2;
                continue;
            }
            ServerState::Follower | ServerState::Candidate => {}
        }
        let membership = membership.membership();
        let voters: Vec<NodeId> = membership.voter_ids().collect();
        if !voters.contains(&node) {
            continue;
        }
        let heard = heard_leader_ago(&raft).await;
        if let Some(ago) = heard.filter(|ago| *ago < suspect_after) {
            // Nothing to do before the lease would run out: sleep until then (heartbeats keep
            // pushing it back, so a healthy follower looks a few times per lease, not per tick).
            fallback_at = None;
            pause = suspect_after - ago;
            continue;
        }
        let peers: Vec<(NodeId, String)> = voters
            .iter()
            .filter(|&&id| id != node)
            .filter_map(|&id| membership.get_node(&id).map(|n| (id, n.addr.clone())))
            .collect();
        let replies: Vec<(NodeId, Option<ProbeReply>)> =
            join_all(peers.iter().map(|(id, addr)| {
                let probes = probes.clone();
                async move { (*id, probes.probe(addr, probe_timeout).await) }
            }))
            .await;
        let last_log = match log.get_log_state().await {
            Ok(state) => state.last_log_id,
            Err(err) => {
                tracing::warn!(group = %name, error = %err, "cannot read the log's end; not standing");
                continue;
            }
        };
        let me = OwnView {
            node,
            heard_leader_ago: heard_leader_ago(&raft).await,
            last_log,
        };
        let decision = decide(me, &replies, voters.len(), suspect_after, group);
        let now = Instant::now();
        let fallback_due = match decision {
            Decision::LeaderAlive | Decision::Elect => {
                fallback_at = None;
                false
            }
            Decision::Defer(_) | Decision::NoQuorum => {
                let at = *fallback_at
                    .get_or_insert_with(|| now + election_max + jitter(election_min, election_max));
                at <= now
            }
        };
        if decision == Decision::Elect || fallback_due {
            tracing::info!(group = %name, ?decision, fallback = fallback_due, ?last_log, "standing for election");
            fallback_at = None;
            if raft.trigger().elect().await.is_err() {
                return;
            }
        } else {
            tracing::debug!(group = %name, ?decision, "not standing for election");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_its_range() {
        let (low, high) = (Duration::from_millis(20), Duration::from_millis(30));
        for _ in 0..1_000 {
            let j = jitter(low, high);
            assert!(j >= low && j < high, "{j:?}");
        }
        assert_eq!(jitter(low, low), low);
    }
}
