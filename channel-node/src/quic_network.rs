//! Raft traffic between channel nodes over the cluster transport (QUIC with mutual TLS).
//!
//! Every Raft group of a node — the control group and each shard replica — gets a
//! [`QuicNetwork`] naming its group id; all of them share the node's one [`QuicEndpoint`], so two
//! nodes keep one connection between them whatever the number of shards, and each RPC is a
//! stream on it. Bodies are openraft's own request and response types as JSON. The receiving
//! side is `raft_service.rs`, which hands each request to the group it names.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use chorus_cluster::rpc::method;
use chorus_cluster::transport::{QuicEndpoint, TransportError};
use openraft::BasicNode;
use openraft::RaftTypeConfig;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::election::ProbeReply;
use crate::election_guard::ProbePeers;
use crate::raft_types::NodeId;

/// Connects a group's Raft to its peers. `BasicNode::addr` is the peer's transport address.
#[derive(Clone)]
pub struct QuicNetwork {
    endpoint: QuicEndpoint,
    group: u64,
}

impl QuicNetwork {
    pub fn new(endpoint: QuicEndpoint, group: u64) -> Self {
        QuicNetwork { endpoint, group }
    }
}

/// A connection to one peer of one group.
pub struct QuicPeer {
    endpoint: QuicEndpoint,
    group: u64,
    target: NodeId,
    addr: Result<SocketAddr, String>,
}

impl<C> RaftNetworkFactory<C> for QuicNetwork
where
    C: RaftTypeConfig<NodeId = NodeId, Node = BasicNode>,
{
    type Network = QuicPeer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> QuicPeer {
        QuicPeer {
            endpoint: self.endpoint.clone(),
            group: self.group,
            target,
            addr: node
                .addr
                .parse()
                .map_err(|err| format!("node {target} has a bad address {:?}: {err}", node.addr)),
        }
    }
}

impl QuicPeer {
    /// One call: the request as JSON out, `Result<Resp, E>` as JSON back.
    async fn call<Req, Resp, E>(
        &self,
        method: u16,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let addr = self
            .addr
            .clone()
            .map_err(|why| RPCError::Unreachable(Unreachable::new(&std::io::Error::other(why))))?;
        let body = serde_json::to_vec(request)
            .map_err(|err| RPCError::Network(NetworkError::new(&err)))?;
        let reply = self
            .endpoint
            .call(addr, self.group, method, Bytes::from(body), timeout)
            .await
            .map_err(|err| match err {
                TransportError::Connect(_) | TransportError::Closed(_) => {
                    RPCError::Unreachable(Unreachable::new(&err))
                }
                other => RPCError::Network(NetworkError::new(&other)),
            })?;
        let result: Result<Resp, E> = serde_json::from_slice(&reply)
            .map_err(|err| RPCError::Network(NetworkError::new(&err)))?;
        result.map_err(|err| RPCError::RemoteError(RemoteError::new(self.target, err)))
    }
}

impl<C> RaftNetwork<C> for QuicPeer
where
    C: RaftTypeConfig<NodeId = NodeId, Node = BasicNode>,
{
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<C>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(method::RAFT_APPEND, &rpc, option.hard_ttl())
            .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<C>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call(method::RAFT_SNAPSHOT, &rpc, option.hard_ttl())
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(method::RAFT_VOTE, &rpc, option.hard_ttl()).await
    }
}

/// Election probes of one shard group to its peers (`election_guard.rs`), on the same endpoint.
pub struct QuicProbes {
    endpoint: QuicEndpoint,
    group: u64,
}

impl QuicProbes {
    pub fn new(endpoint: QuicEndpoint, group: u64) -> Self {
        QuicProbes { endpoint, group }
    }
}

#[async_trait::async_trait]
impl ProbePeers for QuicProbes {
    async fn probe(&self, addr: &str, timeout: Duration) -> Option<ProbeReply> {
        let addr: SocketAddr = addr.parse().ok()?;
        // The whole call, dialling included: a dead peer's connection may be re-dialled, and
        // the transport bounds that by its (much longer) connect timeout.
        let call = self
            .endpoint
            .call(addr, self.group, method::RAFT_PROBE, Bytes::new(), timeout);
        let reply = tokio::time::timeout(timeout, call).await.ok()?.ok()?;
        serde_json::from_slice(&reply).ok()
    }

    async fn ask_to_stand(&self, addr: &str, timeout: Duration) -> Result<(), String> {
        let addr: SocketAddr = addr.parse().map_err(|_| format!("bad address {addr}"))?;
        let call = self
            .endpoint
            .call(addr, self.group, method::RAFT_STAND, Bytes::new(), timeout);
        let reply = tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| "no answer".to_string())?
            .map_err(|err| err.to_string())?;
        serde_json::from_slice::<Result<(), String>>(&reply).map_err(|err| err.to_string())?
    }
}
