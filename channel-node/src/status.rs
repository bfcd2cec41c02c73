//! What a channel node reports about its Raft groups (`chorus cluster status`).

use chorus_cluster::rpc::{GroupStatus, NodeStatus, ShardStatus};
use openraft::{BasicNode, RaftMetrics};

use crate::raft_service::Dispatch;
use crate::raft_types::NodeId;

/// One group's state from its metrics.
pub fn group_status(m: &RaftMetrics<NodeId, BasicNode>) -> GroupStatus {
    GroupStatus {
        state: format!("{:?}", m.state),
        term: m.current_term,
        leader: m.current_leader,
        voters: m.membership_config.membership().voter_ids().collect(),
        last_log_index: m.last_log_index,
        // openraft 0.9 reports what is applied; a replica applies only committed entries.
        commit_index: m.last_applied.map(|l| l.index),
        applied_index: m.last_applied.map(|l| l.index),
    }
}

pub fn node_status(dispatch: &Dispatch) -> NodeStatus {
    let map = dispatch
        .map
        .get()
        .map(|m| m.borrow().clone())
        .unwrap_or_default();
    let control = dispatch
        .control
        .get()
        .map(|raft| group_status(&raft.metrics().borrow()))
        .unwrap_or_else(|| GroupStatus {
            state: "NotStarted".into(),
            term: 0,
            leader: None,
            voters: Vec::new(),
            last_log_index: None,
            commit_index: None,
            applied_index: None,
        });
    let mut shards: Vec<ShardStatus> = dispatch
        .shards
        .read()
        .iter()
        .map(|(shard, replica)| ShardStatus {
            shard: *shard,
            group: group_status(&replica.raft().metrics().borrow()),
        })
        .collect();
    shards.sort_by_key(|s| s.shard);
    NodeStatus {
        node_id: dispatch.node_id,
        map,
        control,
        shards,
    }
}
