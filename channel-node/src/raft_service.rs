//! The receiving side of a channel node's transport: every request names a Raft group and a
//! method; this hands Raft RPCs to the group's Raft and client calls (submit, replay, last seqs,
//! map, status) to the shard replica or the node.

use std::collections::HashMap;
use std::sync::OnceLock;

use async_trait::async_trait;
use bytes::Bytes;
use chorus_cluster::rpc::{
    LastSeqsReply, LastSeqsRequest, MembershipRequest, NODE_GROUP, ReplayRequest,
    SetArchivedRequest, SubmitBatch, SubmitReply, method,
};
use chorus_cluster::transport::{QuicEndpoint, RpcHandler};
use chorus_cluster::{CONTROL_GROUP, ClusterMap, RouteError, group_shard};
use futures_util::future::join_all;
use openraft::{Raft, RaftTypeConfig};
use parking_lot::RwLock;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::control::ControlConfig;
use crate::raft_types::NodeId;
use crate::service::acknowledgement;
use crate::shard::ShardReplica;
use crate::status::node_status;

/// What a node serves; filled in as its groups start.
#[derive(Default)]
pub struct Dispatch {
    pub node_id: NodeId,
    pub control: OnceLock<Raft<ControlConfig>>,
    pub map: OnceLock<watch::Receiver<ClusterMap>>,
    pub shards: RwLock<HashMap<u32, ShardReplica>>,
    /// The node's transport, for the calls it forwards (set once it listens).
    pub endpoint: OnceLock<QuicEndpoint>,
}

/// How long a shard's leader lets new replicas catch up in one `SHARD_RECONFIGURE`.
const RECONFIGURE_CATCH_UP: std::time::Duration = std::time::Duration::from_secs(60);

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|err| format!("malformed request: {err}"))
}

fn encode<T: Serialize>(value: &T) -> Result<Bytes, String> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|err| err.to_string())
}

/// Hands one Raft RPC to `raft`; the reply is `Result<Response, RaftError>` as JSON.
async fn serve_raft<C>(raft: &Raft<C>, method: u16, body: &[u8]) -> Result<Bytes, String>
where
    C: RaftTypeConfig<NodeId = NodeId>,
{
    match method {
        method::RAFT_APPEND => encode(&raft.append_entries(decode(body)?).await),
        method::RAFT_VOTE => encode(&raft.vote(decode(body)?).await),
        method::RAFT_SNAPSHOT => encode(&raft.install_snapshot(decode(body)?).await),
        other => Err(format!("unknown Raft method {other}")),
    }
}

impl Dispatch {
    fn shard(&self, group: u64) -> Result<ShardReplica, RouteError> {
        group_shard(group)
            .and_then(|shard| self.shards.read().get(&shard).cloned())
            .ok_or(RouteError::NotLeader { leader_hint: None })
    }

    async fn submit(&self, group: u64, batch: SubmitBatch) -> SubmitReply {
        let shard = self.shard(group)?;
        let mut waiting = Vec::with_capacity(batch.requests.len());
        for (i, request) in batch.requests.into_iter().enumerate() {
            match shard.submit(request) {
                Ok(outcome) => waiting.push(Ok(outcome)),
                // Nothing of the batch was queued: send the caller to the leader.
                Err(err @ RouteError::NotLeader { .. }) if i == 0 => return Err(err),
                Err(err) => waiting.push(Err(err)),
            }
        }
        let mut acks = Vec::with_capacity(waiting.len());
        for outcome in waiting {
            acks.push(match outcome {
                Ok(receiver) => match receiver.await {
                    Ok(outcome) => outcome.and_then(acknowledgement),
                    Err(_) => Err(RouteError::Unavailable("raft stopped".into())),
                },
                Err(err) => Err(err),
            });
        }
        Ok(acks)
    }

    async fn last_seqs(&self, request: LastSeqsRequest) -> LastSeqsReply {
        join_all(request.shards.iter().map(|(shard, channels)| async move {
            let replica = self.shard(chorus_cluster::shard_group(*shard))?;
            replica.last_seqs(channels).await
        }))
        .await
    }
}

#[async_trait]
impl RpcHandler for Dispatch {
    async fn handle(&self, group: u64, method: u16, body: Bytes) -> Result<Bytes, String> {
        if method < 10 {
            return if group == CONTROL_GROUP {
                let control = self.control.get().ok_or("control group not started")?;
                serve_raft(control, method, &body).await
            } else {
                let shard = self
                    .shard(group)
                    .map_err(|_| format!("group {group} is not hosted here"))?;
                if method == method::RAFT_PROBE {
                    return encode(&shard.probe_reply().await?);
                }
                if method == method::RAFT_STAND {
                    return encode(&shard.stand());
                }
                serve_raft(shard.raft(), method, &body).await
            };
        }
        match (group, method) {
            (NODE_GROUP, method::LAST_SEQS) => {
                encode(&Ok::<_, RouteError>(self.last_seqs(decode(&body)?).await))
            }
            (NODE_GROUP, method::CLUSTER_MAP) => {
                let map = self.map.get().ok_or("control group not started")?;
                let map = map.borrow().clone();
                if !map.is_created() {
                    return Err("the cluster is not created yet".into());
                }
                encode(&map)
            }
            (NODE_GROUP, method::STATUS) => encode(&node_status(self)),
            (NODE_GROUP, method::MEMBERSHIP) => {
                let request: MembershipRequest = decode(&body)?;
                let outcome = crate::membership::handle(self, request.clone()).await;
                match &outcome {
                    Ok(_) => tracing::info!(?request, "membership change accepted"),
                    Err(why) => tracing::info!(?request, %why, "membership change refused"),
                }
                encode(&outcome)
            }
            (_, method::SHARD_RECONFIGURE) => {
                let voters: Vec<(NodeId, std::net::SocketAddr)> = decode(&body)?;
                let reply = match self.shard(group) {
                    Ok(shard) => shard.reconfigure(&voters, RECONFIGURE_CATCH_UP).await,
                    Err(err) => Err(err),
                };
                encode(&reply)
            }
            (_, method::SUBMIT) => encode(&self.submit(group, decode(&body)?).await),
            (_, method::SHARD_LAST_SEQS) => {
                let channels: Vec<uuid::Uuid> = decode(&body)?;
                let reply = match self.shard(group) {
                    Ok(shard) => shard.last_seqs(&channels).await,
                    Err(err) => Err(err),
                };
                encode(&reply)
            }
            (_, method::SET_ARCHIVED) => {
                let request: SetArchivedRequest = decode(&body)?;
                let reply = match self.shard(group) {
                    Ok(shard) => shard.set_archived(request.channel, request.archived).await,
                    Err(err) => Err(err),
                };
                encode(&reply)
            }
            (_, method::REPLAY) => {
                let request: ReplayRequest = decode(&body)?;
                let reply = match self.shard(group) {
                    Ok(shard) => shard.replay(request.channel, request.after_seq).await,
                    Err(err) => Err(err),
                };
                encode(&reply)
            }
            (group, method) => Err(format!("unknown call {method} to group {group}")),
        }
    }
}
