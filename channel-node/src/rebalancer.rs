//! The rebalancer: runs on every channel node and acts while the node leads the control group.
//! It carries out what `chorus_cluster::rebalance` decides, one step at a time:
//!
//! 1. keeps the control group's voters at 3 or 5 active nodes (the rest follow as learners);
//! 2. marks a node that has not answered for `replace_dead_after` as dead, so its replicas are
//!    replaced (only when a spare node can take them);
//! 3. moves one shard at a time towards the ring's placement over the active nodes: records the
//!    move in the map (the new replicas start, empty), asks the shard's leader to add them as
//!    learners, wait for their catch-up and change the voters (`SHARD_RECONFIGURE`), then records
//!    the new replica set (the old replicas stop and delete their data) — and pauses
//!    `move_pause` before the next move, so a rebalancing does not crowd out live traffic;
//! 4. removes decommissioned nodes that hold no replica, from the control group and the map.
//!
//! Every step is idempotent and its progress lives in the replicated map, so a new leader of the
//! control group picks up a move where the old one left it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use chorus_cluster::rebalance::{control_voters, dead_to_replace, next_move, ready_to_remove};
use chorus_cluster::rpc::{NODE_GROUP, method};
use chorus_cluster::transport::QuicEndpoint;
use chorus_cluster::{ClusterMap, DrainReason, RouteError, ShardMove, shard_group};
use openraft::{ChangeMembers, Raft, ServerState};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::control::{ControlCommand, ControlConfig};
use crate::membership::write;
use crate::raft_types::NodeId;

/// How often the rebalancer looks when nothing changes.
const LOOK_EVERY: Duration = Duration::from_millis(500);

/// How often the leader checks that every node answers.
const PING_EVERY: Duration = Duration::from_secs(1);

/// How long a new replica may take to catch up with its shard's leader.
const CATCH_UP: Duration = Duration::from_secs(60);

/// Settings of the rebalancer.
#[derive(Clone, Copy, Debug)]
pub struct RebalanceSettings {
    /// Pause after each shard move.
    pub move_pause: Duration,
    /// A node unreachable this long has its replicas replaced (zero: never).
    pub replace_dead_after: Duration,
    /// How long a node leads a shard before handing it to the shard's preferred leader, once
    /// that replica has caught up (zero: never; `chorus_cluster::leadership`).
    pub leader_settle: Duration,
}

/// Runs until the task is aborted.
pub(crate) async fn run(
    node: NodeId,
    control: Raft<ControlConfig>,
    mut map: watch::Receiver<ClusterMap>,
    endpoint: QuicEndpoint,
    settings: RebalanceSettings,
) {
    let mut liveness = Liveness::default();
    let mut heartbeats_stopped = false;
    loop {
        tokio::select! {
            _ = map.changed() => {}
            () = tokio::time::sleep(LOOK_EVERY) => {}
        }
        let (leading, voter) = {
            let metrics = control.metrics();
            let m = metrics.borrow();
            (
                m.state == ServerState::Leader && m.current_leader == Some(node),
                m.membership_config
                    .membership()
                    .voter_ids()
                    .any(|v| v == node),
            )
        };
        // openraft 0.9 lets a leader that the voters no longer include go on leading (as a
        // learner). It must hand over: it stops its heartbeats, the voters' election timers run
        // out, one of them is elected, and this node follows it.
        let step_aside = leading && !voter;
        if step_aside != heartbeats_stopped {
            control.runtime_config().heartbeat(!step_aside);
            heartbeats_stopped = step_aside;
            if step_aside {
                tracing::info!(
                    "no longer a voter of the control group; handing over its leadership"
                );
            }
        }
        if !leading || step_aside {
            liveness = Liveness::default();
            continue;
        }
        let current = map.borrow_and_update().clone();
        if !current.is_created() {
            continue;
        }
        if let Err(err) = step(node, &control, &current, &endpoint, &mut liveness, settings).await {
            tracing::warn!(error = %err, "rebalancing step failed; retrying");
            tokio::time::sleep(LOOK_EVERY).await;
        }
    }
}

/// One look at the map: at most one change.
async fn step(
    node: NodeId,
    control: &Raft<ControlConfig>,
    map: &ClusterMap,
    endpoint: &QuicEndpoint,
    liveness: &mut Liveness,
    settings: RebalanceSettings,
) -> Result<(), String> {
    if reconcile_control_voters(control, map).await? {
        return Ok(());
    }
    if !settings.replace_dead_after.is_zero() {
        liveness.ping(node, map, endpoint).await;
        if let Some(dead) =
            dead_to_replace(map, &liveness.unreachable(), settings.replace_dead_after)
        {
            tracing::warn!(node = dead, after = ?settings.replace_dead_after, "node unreachable; replacing its replicas");
            write(
                control,
                ControlCommand::Drain {
                    node: dead,
                    reason: DrainReason::Dead,
                },
            )
            .await?;
            return Ok(());
        }
    }
    // This node is never among them: a decommissioned node is not a voter, so it has handed over.
    if let Some(gone) = ready_to_remove(map).into_iter().find(|gone| *gone != node) {
        let members = control.metrics().borrow().membership_config.clone();
        if members.membership().get_node(&gone).is_some() {
            control
                .change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([gone])), true)
                .await
                .map_err(|err| err.to_string())?;
        }
        write(control, ControlCommand::RemoveNode { node: gone }).await?;
        tracing::info!(node = gone, "decommissioned node left the cluster");
        return Ok(());
    }
    let mv = match &map.moving {
        Some(mv) => mv.clone(),
        None => match next_move(map) {
            Some(mv) => {
                tracing::info!(shard = mv.shard, to = ?mv.to, "moving shard");
                write(control, ControlCommand::StartMove(mv.clone())).await?;
                mv
            }
            None => return Ok(()),
        },
    };
    carry_out(map, &mv, endpoint).await?;
    write(control, ControlCommand::FinishMove { shard: mv.shard }).await?;
    tracing::info!(shard = mv.shard, replicas = ?mv.to, "shard moved");
    tokio::time::sleep(settings.move_pause).await;
    Ok(())
}

/// Changes the control group's voters if `control_voters` wants others; whether it did.
async fn reconcile_control_voters(
    control: &Raft<ControlConfig>,
    map: &ClusterMap,
) -> Result<bool, String> {
    let membership = control.metrics().borrow().membership_config.clone();
    let membership = membership.membership();
    let current: BTreeSet<NodeId> = membership.voter_ids().collect();
    let wanted = control_voters(&current, map);
    // Only nodes that already follow as learners can become voters (a joining node is added as
    // one before it enters the map).
    if wanted == current || wanted.iter().any(|n| membership.get_node(n).is_none()) {
        return Ok(false);
    }
    tracing::info!(from = ?current, to = ?wanted, "changing the control group's voters");
    control
        .change_membership(wanted, true)
        .await
        .map_err(|err| err.to_string())?;
    Ok(true)
}

/// Asks the shard's leader to make `mv.to` its voters, following leader hints among the
/// shard's old and new replicas.
async fn carry_out(
    map: &ClusterMap,
    mv: &ShardMove,
    endpoint: &QuicEndpoint,
) -> Result<(), String> {
    let voters: Vec<(NodeId, SocketAddr)> = mv
        .to
        .iter()
        .map(|id| map.addr(*id).map(|addr| (*id, addr)))
        .collect::<Option<_>>()
        .ok_or("a node of the move is not in the map")?;
    let body = Bytes::from(serde_json::to_vec(&voters).map_err(|err| err.to_string())?);
    let replicas = map.placement().replicas(mv.shard).to_vec();
    // Draining nodes last: a dead one would cost a connect timeout per move.
    let mut ask: Vec<NodeId> = replicas.clone();
    ask.sort_by_key(|node| map.draining.contains_key(node));
    let mut last_error = String::from("no replica answered");
    for _attempt in 0..(replicas.len() * 3) {
        let Some(target) = ask.first().copied() else {
            break;
        };
        ask.rotate_left(1);
        let Some(addr) = map.addr(target) else {
            continue;
        };
        let reply = endpoint
            .call(
                addr,
                shard_group(mv.shard),
                method::SHARD_RECONFIGURE,
                body.clone(),
                CATCH_UP + Duration::from_secs(30),
            )
            .await;
        match reply.map_err(|err| err.to_string()).and_then(|bytes| {
            serde_json::from_slice::<Result<(), RouteError>>(&bytes).map_err(|e| e.to_string())
        }) {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(RouteError::NotLeader {
                leader_hint: Some(leader),
            })) if replicas.contains(&leader) => {
                ask.retain(|n| *n != leader);
                ask.insert(0, leader);
                last_error = format!("node {target} sent us to node {leader}");
            }
            Ok(Err(err)) => last_error = format!("node {target}: {err}"),
            Err(err) => last_error = format!("node {target}: {err}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("shard {} did not move: {last_error}", mv.shard))
}

/// When each node last answered the leader.
#[derive(Default)]
struct Liveness {
    last_answer: HashMap<NodeId, Instant>,
    last_ping: Option<Instant>,
}

impl Liveness {
    async fn ping(&mut self, me: NodeId, map: &ClusterMap, endpoint: &QuicEndpoint) {
        let now = Instant::now();
        if self.last_ping.is_some_and(|at| now - at < PING_EVERY) {
            return;
        }
        self.last_ping = Some(now);
        let calls = map
            .nodes
            .iter()
            .filter(|(id, _)| **id != me)
            .map(|(id, addr)| async move {
                let answered = endpoint
                    .call(
                        *addr,
                        NODE_GROUP,
                        method::CLUSTER_MAP,
                        Bytes::new(),
                        PING_EVERY,
                    )
                    .await
                    .is_ok();
                (*id, answered)
            });
        for (id, answered) in futures_util::future::join_all(calls).await {
            // A node first seen now counts from now: a new leader waits the whole period.
            let entry = self.last_answer.entry(id).or_insert(now);
            if answered {
                *entry = now;
            }
        }
        self.last_answer.insert(me, now);
        self.last_answer.retain(|id, _| map.nodes.contains_key(id));
    }

    fn unreachable(&self) -> BTreeMap<NodeId, Duration> {
        let now = Instant::now();
        self.last_answer
            .iter()
            .map(|(id, at)| (*id, now - *at))
            .collect()
    }
}
