//! Handing a shard's leadership to a named replica (a leader transfer), on openraft 0.9, which
//! has none.
//!
//! What openraft 0.9 does give: a voter grants its vote to a candidate with a higher term and a
//! log at least as long as its own, unless its leader's lease (`election_max_ms`) still runs on
//! its clock — renewed, on a follower, by every AppendEntries; on the leader itself, only when
//! it became leader. So:
//!
//! 1. The leader closes its [`HandOverGate`]: nothing more enters its log (the batcher holds new
//!    submits — they queue, and are answered `not_leader` with the new leader's id once it
//!    changed, which the router follows with the same nonces; the history writer holds its
//!    confirmations; reads wait, a read index being a round of heartbeats), and it turns its
//!    heartbeats off.
//! 2. It waits until the target's log matches its own: the target now has the longest log of the
//!    group, and keeps it, since nothing is appended any more.
//! 3. It makes sure its own lease has run out (it has led for longer than a lease) and asks the
//!    target to stand (`RAFT_STAND`).
//! 4. The target stands at once when it and the old leader are a majority (a group of up to
//!    three voters): the old leader grants the vote and steps down, and the target wins in one
//!    round trip. In a larger group it also needs the vote of a follower, whose lease the old
//!    leader renewed until step 1, so it first waits until a lease has passed since the request
//!    and since it last heard from the leader.
//! 5. The old leader waits for the change (or gives up after a bound), then turns its heartbeats
//!    back on and opens the gate. If the target did not win, it carries on as before.
//!
//! Meanwhile a follower whose lease runs out probes its group, and the old leader still answers
//! that it leads, so nobody else stands. In a group of three a hand-over holds the shard's
//! writes for a few round trips (the catch-up, the vote, the new leader's first commit); in a
//! group of five, for about a lease.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use openraft::{LogId, Raft, ServerState};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::raft_types::{NodeId, TypeConfig};

/// Closed while this replica hands its leadership over: whatever would send an AppendEntries
/// (and so renew the followers' leases) waits for it to open.
#[derive(Clone)]
pub(crate) struct HandOverGate {
    closed: Arc<watch::Sender<bool>>,
    running: Arc<AtomicBool>,
}

impl Default for HandOverGate {
    fn default() -> Self {
        HandOverGate {
            closed: Arc::new(watch::Sender::new(false)),
            running: Arc::default(),
        }
    }
}

impl HandOverGate {
    pub(crate) fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Returns once the gate is open.
    pub(crate) async fn wait_open(&self) {
        if !self.is_closed() {
            return; // every batch and read passes here: no receiver to make when open
        }
        let mut rx = self.closed.subscribe();
        // The sender lives in `self`: `wait_for` cannot fail.
        let _ = rx.wait_for(|closed| !*closed).await;
    }

    fn close(&self) {
        self.closed.send_replace(true);
    }

    fn open(&self) {
        self.closed.send_replace(false);
    }
}

/// How a hand-over ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandOverOutcome {
    /// The leadership moved (to `leader`, normally the target) after `paused` of held writes.
    Moved {
        leader: Option<NodeId>,
        paused: Duration,
    },
    /// This replica still leads (or never did); writes resumed.
    Kept(String),
}

/// Whether `node`'s log matches the leader's last entry, from the leader's replication metrics.
pub(crate) fn matches_leader(
    replication: Option<&BTreeMap<NodeId, Option<LogId<NodeId>>>>,
    last_log_index: Option<u64>,
    node: NodeId,
) -> bool {
    let matched = replication
        .and_then(|r| r.get(&node).copied().flatten())
        .map(|log| log.index);
    matched.is_some() && matched == last_log_index
}

/// Whether a replica asked to stand wins with its own vote and the old leader's alone (they are
/// a majority of `voters`), rather than needing a follower whose lease must run out first.
pub(crate) fn wins_with_old_leader(voters: usize) -> bool {
    2 > voters / 2
}

/// How much longer a replica asked to stand must wait before the other voters' leases have run
/// out: until `lease` plus `margin` have passed since both the request and the last word from a
/// leader (a heartbeat sent just before the leader fell quiet may arrive after the request).
/// `None`: give up — a leader is still speaking when standing would be later than `give_up`
/// after the request (the hand-over was called off).
pub(crate) fn stand_wait(
    since_request: Duration,
    heard_leader_ago: Option<Duration>,
    lease: Duration,
    margin: Duration,
    give_up: Duration,
) -> Option<Duration> {
    let quiet_for = heard_leader_ago.map_or(since_request, |ago| ago.min(since_request));
    let wait = (lease + margin).saturating_sub(quiet_for);
    if !wait.is_zero() && since_request + wait > give_up {
        return None;
    }
    Some(wait)
}

/// How long the leader waits for the target's log to match its own before giving up.
const CATCH_UP: Duration = Duration::from_millis(500);
/// What the target adds to the lease before standing (the last append to another voter may
/// have left a little after the one to the target).
const STAND_MARGIN: Duration = Duration::from_millis(15);

/// The leader's side: hands the leadership of `raft` to `target` (see the module doc).
/// `ask_to_stand` sends the target its `RAFT_STAND`.
pub(crate) async fn hand_over<F>(
    raft: &Raft<TypeConfig>,
    me: NodeId,
    gate: &HandOverGate,
    target: NodeId,
    lease: Duration,
    ask_to_stand: F,
) -> HandOverOutcome
where
    F: std::future::Future<Output = Result<(), String>>,
{
    let leading = |m: &openraft::RaftMetrics<NodeId, openraft::BasicNode>| {
        m.state == ServerState::Leader && m.current_leader == Some(me)
    };
    let term = {
        let metrics = raft.metrics();
        let m = metrics.borrow();
        if !leading(&m) {
            return HandOverOutcome::Kept("not leading".into());
        }
        if target == me
            || !m
                .membership_config
                .membership()
                .voter_ids()
                .any(|v| v == target)
        {
            return HandOverOutcome::Kept(format!("node {target} is not another voter"));
        }
        m.current_term
    };
    if gate.running.swap(true, Ordering::AcqRel) {
        return HandOverOutcome::Kept("a hand-over is already running".into());
    }
    let started = Instant::now();
    gate.close();
    raft.runtime_config().heartbeat(false);
    let outcome = async {
        let mut metrics = raft.metrics();
        // (Each wait reads what it needs from the metrics at once: a borrowed value held
        // across an await would block openraft's metrics updates.)
        let caught_up = tokio::time::timeout(
            CATCH_UP,
            metrics.wait_for(|m| {
                !leading(m)
                    || m.current_term != term
                    || matches_leader(m.replication.as_ref(), m.last_log_index, target)
            }),
        )
        .await
        .map(|seen| seen.map(|m| (leading(&m) && m.current_term == term, m.current_leader)));
        match caught_up {
            Err(_) => return HandOverOutcome::Kept(format!("node {target} did not catch up")),
            Ok(Err(_)) => return HandOverOutcome::Kept("raft stopped".into()),
            Ok(Ok((false, leader))) if leader == Some(me) => {
                return HandOverOutcome::Kept("led again, in a later term".into());
            }
            Ok(Ok((false, leader))) => {
                return HandOverOutcome::Moved {
                    leader,
                    paused: started.elapsed(),
                };
            }
            Ok(Ok((true, _))) => {}
        }
        // Its own vote must be grantable: its lease runs from when it became leader.
        let led_for = raft
            .with_raft_state(|state| state.vote_last_modified())
            .await
            .ok()
            .flatten()
            .map(|at| Instant::now().saturating_duration_since(at));
        if let Some(led_for) = led_for {
            tokio::time::sleep((lease + STAND_MARGIN).saturating_sub(led_for)).await;
        }
        if let Err(err) = ask_to_stand.await {
            return HandOverOutcome::Kept(format!("node {target} would not stand: {err}"));
        }
        // The target stands at once, or after a lease in a larger group; give its election as
        // long again. Any new term ends the wait: this replica voted for someone — or, if the
        // target's election failed and another followed, may lead again, and must not lead with
        // its heartbeats off and its gate closed.
        let changed = tokio::time::timeout(
            lease * 3 + CATCH_UP,
            metrics.wait_for(|m| {
                !leading(m) || m.current_term != term || m.state == ServerState::Shutdown
            }),
        )
        .await
        .map(|seen| seen.map(|m| (leading(&m), m.current_term)));
        match changed {
            Ok(Ok((true, now))) => {
                return HandOverOutcome::Kept(format!("led again, in term {now}"));
            }
            Ok(Ok((false, _))) => {}
            Ok(Err(_)) => return HandOverOutcome::Kept("raft stopped".into()),
            Err(_) => {
                return HandOverOutcome::Kept(format!("node {target} was not elected in time"));
            }
        }
        // Stepped down. Held submits are answered once the new leader is known (a few round
        // trips at most), so that their `not_leader` names it; should this replica lead again
        // meanwhile, its gate opens at once.
        let known = tokio::time::timeout(
            lease,
            metrics.wait_for(|m| m.current_leader.is_some() || m.state == ServerState::Shutdown),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .and_then(|m| m.current_leader);
        if known == Some(me) {
            return HandOverOutcome::Kept("led again".into());
        }
        HandOverOutcome::Moved {
            leader: known,
            paused: started.elapsed(),
        }
    }
    .await;
    raft.runtime_config().heartbeat(true);
    gate.open();
    gate.running.store(false, Ordering::Release);
    outcome
}

/// The target's side of `RAFT_STAND`: stands for election — at once in a group of up to three
/// voters, else once every voter's lease has run out, unless a leader is heard from meanwhile.
/// Returns at once; refused when this replica is not a follower voter.
pub(crate) fn stand_when_lease_ends(
    raft: &Raft<TypeConfig>,
    me: NodeId,
    lease: Duration,
    name: String,
) -> Result<(), String> {
    let voters = {
        let metrics = raft.metrics();
        let m = metrics.borrow();
        let voters: Vec<NodeId> = m.membership_config.membership().voter_ids().collect();
        if m.state != ServerState::Follower || !voters.contains(&me) {
            return Err(format!("not a follower voter ({:?})", m.state));
        }
        voters.len()
    };
    let raft = raft.clone();
    tokio::spawn(async move {
        let asked = Instant::now();
        while !wins_with_old_leader(voters) {
            let heard = raft
                .with_raft_state(|state| state.vote_last_modified())
                .await
                .ok()
                .flatten()
                .map(|at| Instant::now().saturating_duration_since(at));
            match stand_wait(asked.elapsed(), heard, lease, STAND_MARGIN, lease * 2) {
                None => {
                    tracing::info!(group = %name, "hand-over called off: the leader spoke again");
                    return;
                }
                Some(wait) if wait.is_zero() => break,
                Some(wait) => tokio::time::sleep(wait).await,
            }
        }
        if raft.metrics().borrow().state != ServerState::Follower {
            return;
        }
        tracing::info!(group = %name, "standing for election: the leader hands over");
        let _ = raft.trigger().elect().await;
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::CommittedLeaderId;

    fn log(index: u64) -> Option<LogId<NodeId>> {
        Some(LogId::new(CommittedLeaderId::new(3, 1), index))
    }

    #[test]
    fn the_target_and_the_old_leader_are_a_majority_of_three_but_not_of_five() {
        assert!(wins_with_old_leader(2));
        assert!(wins_with_old_leader(3));
        assert!(!wins_with_old_leader(4));
        assert!(!wins_with_old_leader(5));
    }

    #[test]
    fn a_follower_matches_when_its_replicated_index_is_the_leaders_last() {
        let replication = BTreeMap::from([(2, log(40)), (3, log(38)), (4, None)]);
        assert!(matches_leader(Some(&replication), Some(40), 2));
        assert!(!matches_leader(Some(&replication), Some(40), 3));
        assert!(!matches_leader(Some(&replication), Some(40), 4));
        assert!(!matches_leader(Some(&replication), Some(40), 9));
        assert!(!matches_leader(None, Some(40), 2), "not a leader's metrics");
        assert!(!matches_leader(Some(&replication), None, 4));
    }

    #[test]
    fn the_target_waits_out_the_lease_from_the_request_or_the_last_word_whichever_is_later() {
        let ms = Duration::from_millis;
        let wait = |since, heard| stand_wait(since, heard, ms(300), ms(15), ms(600));
        // Asked just now, last heard from the leader before the request.
        assert_eq!(wait(ms(0), Some(ms(50))), Some(ms(315)));
        assert_eq!(wait(ms(200), Some(ms(260))), Some(ms(115)));
        assert_eq!(wait(ms(400), Some(ms(450))), Some(ms(0)));
        assert_eq!(wait(ms(100), None), Some(ms(215)));
        // A heartbeat that left before the leader fell quiet, arriving after the request.
        assert_eq!(wait(ms(100), Some(ms(90))), Some(ms(225)));
    }

    #[test]
    fn a_leader_that_keeps_speaking_calls_the_stand_off() {
        let ms = Duration::from_millis;
        assert_eq!(
            stand_wait(ms(500), Some(ms(30)), ms(300), ms(15), ms(600)),
            None
        );
        assert_eq!(
            stand_wait(ms(700), Some(ms(400)), ms(300), ms(15), ms(600)),
            Some(ms(0)),
            "quiet long enough: stand, however late"
        );
    }

    #[tokio::test]
    async fn the_gate_holds_waiters_until_it_opens() {
        let gate = HandOverGate::default();
        assert!(!gate.is_closed());
        gate.wait_open().await;
        gate.close();
        assert!(gate.is_closed());
        let waiter = tokio::spawn({
            let gate = gate.clone();
            async move { gate.wait_open().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "a closed gate holds");
        gate.open();
        waiter.await.unwrap();
    }
}
