//! Membership requests — a node joining, an operator's drain, decommission or undrain — as the
//! control group's leader carries them out. Any channel node takes them (`MEMBERSHIP` calls from
//! `chorus cluster …` or a joining node) and forwards them to the leader it knows.
//!
//! A join adds the node to the control group as a learner first (so it receives the map), then
//! records it in the map; moving replicas onto it is the rebalancer's work (`rebalancer.rs`).
//! Whether a request fits the map is decided when the command is applied (`control::apply`),
//! against the agreed map, and a refusal comes back as the error.

use std::time::Duration;

use bytes::Bytes;
use chorus_cluster::rpc::{MembershipRequest, NODE_GROUP, method};
use chorus_cluster::{ClusterMap, DrainReason};
use openraft::{BasicNode, Raft, ServerState};

use crate::control::{ControlCommand, ControlConfig, apply};
use crate::raft_service::Dispatch;

/// How long a joining node may take to copy the control group's log.
const JOIN_CATCH_UP: Duration = Duration::from_secs(30);

/// How long a request waits for the control group to have a leader.
const LEADER_WAIT: Duration = Duration::from_secs(5);

/// How long a forwarded request may take at the leader (a join waits for its catch-up).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(45);

/// Carries out `request` here if this node leads the control group, else forwards it.
pub(crate) async fn handle(
    dispatch: &Dispatch,
    request: MembershipRequest,
) -> Result<ClusterMap, String> {
    let control = dispatch.control.get().ok_or("control group not started")?;
    // Between two leaders (an election, or a leader that left the voters hands over) wait for
    // one that the voters include.
    let _ = control
        .wait(Some(LEADER_WAIT))
        .metrics(
            |m| {
                m.current_leader.is_some_and(|leader| {
                    m.membership_config
                        .membership()
                        .voter_ids()
                        .any(|v| v == leader)
                })
            },
            "a control leader among the voters",
        )
        .await;
    let (leading, leader, leader_addr) = {
        let metrics = control.metrics();
        let m = metrics.borrow();
        let leader_addr = m.current_leader.and_then(|leader| {
            m.membership_config
                .membership()
                .get_node(&leader)
                .map(|node| node.addr.clone())
        });
        let voter = m
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == dispatch.node_id);
        (
            m.state == ServerState::Leader && m.current_leader == Some(dispatch.node_id) && voter,
            m.current_leader,
            leader_addr,
        )
    };
    if !leading && leader == Some(dispatch.node_id) {
        return Err("this node is handing the control group's leadership over; try again".into());
    }
    if !leading {
        let addr = leader_addr
            .ok_or("the control group has no leader at the moment; try again")?
            .parse()
            .map_err(|err| format!("the control leader's address: {err}"))?;
        let endpoint = dispatch.endpoint.get().ok_or("transport not started")?;
        let body = serde_json::to_vec(&request).map_err(|err| err.to_string())?;
        let reply = endpoint
            .call(
                addr,
                NODE_GROUP,
                method::MEMBERSHIP,
                Bytes::from(body),
                FORWARD_TIMEOUT,
            )
            .await
            .map_err(|err| format!("forwarding to the control leader at {addr}: {err}"))?;
        return serde_json::from_slice::<Result<ClusterMap, String>>(&reply)
            .map_err(|err| format!("malformed reply from the control leader: {err}"))?;
    }
    let command = match request {
        MembershipRequest::Join { node, addr } => {
            let command = ControlCommand::AddNode { node, addr };
            // Refuse a join the map would refuse before making the node a learner.
            let mut trial = dispatch
                .map
                .get()
                .map(|m| m.borrow().clone())
                .unwrap_or_default();
            apply(&mut trial, command.clone())?;
            let added = control.add_learner(node, BasicNode::new(addr.to_string()), true);
            match tokio::time::timeout(JOIN_CATCH_UP, added).await {
                Err(_) => {
                    return Err(format!(
                        "node {node} did not copy the control log within {JOIN_CATCH_UP:?}"
                    ));
                }
                Ok(Err(err)) => return Err(err.to_string()),
                Ok(Ok(_)) => {}
            }
            command
        }
        MembershipRequest::Drain { node } => ControlCommand::Drain {
            node,
            reason: DrainReason::Drain,
        },
        MembershipRequest::Decommission { node } => ControlCommand::Drain {
            node,
            reason: DrainReason::Decommission,
        },
        MembershipRequest::Undrain { node } => ControlCommand::Undrain { node },
    };
    write(control, command).await
}

/// Commits a command to the control group (this node must lead it); the map after it, or why the
/// map refused it.
pub(crate) async fn write(
    control: &Raft<ControlConfig>,
    command: ControlCommand,
) -> Result<ClusterMap, String> {
    let response = control
        .client_write(command)
        .await
        .map_err(|err| err.to_string())?;
    match response.data.refused {
        Some(why) => Err(why),
        None => Ok(response.data.map),
    }
}
