//! The calls gateways and the REST API make to channel nodes, as they travel over the transport.
//!
//! Each call is one transport request: a Raft group id (a shard's group, or [`NODE_GROUP`] for
//! calls about the node as a whole), a method number from [`method`], and a JSON body. The Raft
//! RPCs between channel nodes use the same transport with their own method numbers; their bodies
//! are openraft's types and are defined in the channel-node crate.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cluster_map::ClusterMap;
use crate::placement::{NodeId, ShardId};
use crate::router::{PublishAck, PublishRequest, RouteError};

/// Group id of calls addressed to a node rather than to one of its Raft groups.
pub const NODE_GROUP: u64 = u64::MAX;

/// Method numbers. Raft's own RPCs are below 10, client calls from 10.
pub mod method {
    pub const RAFT_APPEND: u16 = 1;
    pub const RAFT_VOTE: u16 = 2;
    pub const RAFT_SNAPSHOT: u16 = 3;
    /// (empty) → a shard replica's election probe reply (channel-node `election.rs`), between
    /// channel nodes, to a shard's group.
    pub const RAFT_PROBE: u16 = 4;
    /// (empty) → `Result<(), String>`, from a shard's leader to the replica it hands the
    /// leadership to: stand for election once the lease runs out (channel-node `hand_over.rs`).
    pub const RAFT_STAND: u16 = 5;
    /// [`super::SubmitBatch`] → [`super::SubmitReply`], to a shard's group.
    pub const SUBMIT: u16 = 10;
    /// [`super::ReplayRequest`] → [`super::ReplayReply`], to a shard's group.
    pub const REPLAY: u16 = 11;
    /// [`super::LastSeqsRequest`] → `Result<`[`super::LastSeqsReply`]`, RouteError>`, to
    /// [`super::NODE_GROUP`]: several shards led by one node in one call.
    pub const LAST_SEQS: u16 = 12;
    /// `Vec<Uuid>` → `Result<Vec<u64>, RouteError>`, to a shard's group.
    pub const SHARD_LAST_SEQS: u16 = 13;
    /// [`super::SetArchivedRequest`] → `Result<(), RouteError>`, to a shard's group.
    pub const SET_ARCHIVED: u16 = 14;
    /// `Vec<(NodeId, SocketAddr)>` (the voters wanted, preferred leader first) →
    /// `Result<(), RouteError>`, to a shard's group: its leader adds the new voters as learners,
    /// waits until they caught up, and changes the voters (a shard move, `rebalance.rs`).
    pub const SHARD_RECONFIGURE: u16 = 15;
    /// (empty) → [`crate::ClusterMap`], to [`super::NODE_GROUP`].
    pub const CLUSTER_MAP: u16 = 20;
    /// (empty) → [`super::NodeStatus`], to [`super::NODE_GROUP`].
    pub const STATUS: u16 = 21;
    /// [`super::MembershipRequest`] → `Result<`[`crate::ClusterMap`]`, String>`, to
    /// [`super::NODE_GROUP`] of any channel node (it forwards to the control group's leader).
    pub const MEMBERSHIP: u16 = 22;
}

/// An operator's (or a joining node's) change to the cluster's membership.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum MembershipRequest {
    /// A new channel node, reachable at `addr`, asks to join.
    Join { node: NodeId, addr: SocketAddr },
    /// Move every replica off `node`; it stays a member.
    Drain { node: NodeId },
    /// Drain `node`, then remove it from the cluster for good.
    Decommission { node: NodeId },
    /// Let replicas move back onto a drained node.
    Undrain { node: NodeId },
}

/// Submits to one shard, sequenced in this order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubmitBatch {
    pub requests: Vec<PublishRequest>,
}

/// The outcome of each submit of a batch, in order, or why the shard took none of them
/// (`RouteError::NotLeader` sends the caller to the leader).
pub type SubmitReply = Result<Vec<Result<PublishAck, RouteError>>, RouteError>;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetArchivedRequest {
    pub channel: Uuid,
    pub archived: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReplayRequest {
    pub channel: Uuid,
    pub after_seq: u64,
}

/// The events after the position (each a protocol `MessageEvent`), or `TooOld`.
pub type ReplayReply = Result<crate::router::Replay, RouteError>;

/// Last sequence numbers of channels, grouped by shard; the node answers for the shards it leads.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LastSeqsRequest {
    pub shards: Vec<(ShardId, Vec<Uuid>)>,
}

/// Per shard of the request, in its order: the channels' last seqs, or why not (not the leader).
pub type LastSeqsReply = Vec<Result<Vec<u64>, RouteError>>;

/// What a channel node says about itself (`chorus cluster status`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeStatus {
    pub node_id: NodeId,
    pub map: ClusterMap,
    pub control: GroupStatus,
    pub shards: Vec<ShardStatus>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShardStatus {
    pub shard: ShardId,
    pub group: GroupStatus,
}

/// One Raft group's state as this node sees it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GroupStatus {
    /// `Leader`, `Follower`, `Candidate`, `Learner` or `Shutdown`.
    pub state: String,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub voters: Vec<NodeId>,
    pub last_log_index: Option<u64>,
    pub commit_index: Option<u64>,
    pub applied_index: Option<u64>,
}
