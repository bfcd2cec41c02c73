//! [`ClusterRouter`]: the channel router of a gateway or API process in a cluster.
//!
//! It reads the cluster map from any channel node (and keeps it current), computes each channel's
//! shard and replicas ([`placement`](crate::placement)), and talks to the shard's leader over the
//! transport, following `NotLeader` hints and retrying with bounded, jittered backoff until a
//! deadline, after which the caller gets `Unavailable`.
//!
//! Submits keep their order: each shard has one pipeline task that sends everything queued as one
//! batch and waits for its outcomes before sending the next, so two submits queued one after the
//! other are sequenced in that order, and a batch retried after a leader change is retried whole,
//! with the same nonces (the new leader answers what was committed as duplicates); so are the
//! submits of a batch that its leader took but could not finish. Last-seq
//! lookups (identify, resume) are grouped per node and sent in parallel.

mod leaders;
mod queue_delay;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;
use uuid::Uuid;

pub use leaders::{LeaderCache, retry_delay, worth_retrying};
use queue_delay::QueueDelay;

use crate::cluster_map::{ClusterMap, Placement, shard_group};
use crate::placement::{NodeId, ShardId};
use crate::router::{ChannelRouter, PublishAck, PublishRequest, PublishTicket, Replay, RouteError};
use crate::rpc::{
    LastSeqsReply, LastSeqsRequest, NODE_GROUP, ReplayRequest, SetArchivedRequest, SubmitBatch,
    method,
};
use crate::transport::{QuicEndpoint, TransportError};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

/// Submits waiting per shard before `submit` answers `Overloaded` (it answers so sooner when
/// they wait too long: `queue_delay.rs`).
const SHARD_QUEUE: usize = 16 * 1024;
/// The most submits sent in one call.
const MAX_SUBMIT_BATCH: usize = 1024;
/// How long one call may take before the replica is presumed dead. A commit takes milliseconds;
/// this bounds how long a leader killed mid-call holds its callers before they move on.
const CALL_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a call to a shard's leader may go unanswered before the router also asks the other
/// replicas whether they have elected someone else (see [`Inner::call_presumed_leader`]).
const ASK_OTHERS_AFTER: Duration = Duration::from_millis(100);
/// How long one round of asking the other replicas may take.
const ASK_OTHERS_TIMEOUT: Duration = Duration::from_millis(100);
/// How long the router keeps trying before answering `Unavailable`.
const DEADLINE: Duration = Duration::from_secs(10);
/// How often the cluster map is re-read.
const MAP_REFRESH: Duration = Duration::from_secs(2);

/// The map and the placement computed from it.
struct View {
    map: ClusterMap,
    placement: Placement,
}

struct Inner {
    endpoint: QuicEndpoint,
    seeds: Vec<SocketAddr>,
    view: watch::Sender<Arc<View>>,
    leaders: Mutex<LeaderCache>,
    pipelines: Mutex<HashMap<ShardId, Pipeline>>,
}

/// A shard's queue of submits, and how long they have been waiting in it.
#[derive(Clone)]
struct Pipeline {
    queue: mpsc::Sender<Queued>,
    delay: Arc<Mutex<QueueDelay>>,
}

/// A submit waiting in its shard's pipeline.
struct Queued {
    request: PublishRequest,
    reply: oneshot::Sender<Result<PublishAck, RouteError>>,
    enqueued: Instant,
}

/// Routes to the channel nodes of a cluster; clones share everything.
#[derive(Clone)]
pub struct ClusterRouter {
    inner: Arc<Inner>,
}

impl ClusterRouter {
    /// Reads the cluster map from the first seed that answers (waiting up to `wait` for the
    /// cluster to be created) and keeps it current in the background.
    pub async fn connect(
        endpoint: QuicEndpoint,
        seeds: Vec<SocketAddr>,
        wait: Duration,
    ) -> Result<Self, RouteError> {
        let started = Instant::now();
        let map = loop {
            match fetch_map(&endpoint, &seeds).await {
                Ok(map) => break map,
                Err(err) if started.elapsed() >= wait => return Err(err),
                Err(err) => {
                    tracing::info!(error = %err, "waiting for the cluster map");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        };
        let (view, _) = watch::channel(Arc::new(View {
            placement: map.placement(),
            map,
        }));
        let router = ClusterRouter {
            inner: Arc::new(Inner {
                endpoint,
                seeds,
                view,
                leaders: Mutex::new(LeaderCache::default()),
                pipelines: Mutex::new(HashMap::new()),
            }),
        };
        tokio::spawn(refresh_map(Arc::downgrade(&router.inner)));
        Ok(router)
    }

    /// The cluster map as last read.
    pub fn map(&self) -> ClusterMap {
        self.inner.view.borrow().map.clone()
    }

    fn shard_of(&self, channel: Uuid) -> ShardId {
        self.inner.view.borrow().map.shard_of(channel)
    }

    /// A shard's pipeline, started on first use.
    fn pipeline(&self, shard: ShardId) -> Pipeline {
        let mut pipelines = self.inner.pipelines.lock();
        pipelines
            .entry(shard)
            .or_insert_with(|| {
                let (sender, queue) = mpsc::channel(SHARD_QUEUE);
                let delay = Arc::new(Mutex::new(QueueDelay::default()));
                tokio::spawn(run_pipeline(
                    Arc::downgrade(&self.inner),
                    shard,
                    queue,
                    delay.clone(),
                ));
                Pipeline {
                    queue: sender,
                    delay,
                }
            })
            .clone()
    }
}

impl Inner {
    /// One call to `node`, decoded as `Result<T, RouteError>`; a transport failure (the node did
    /// not answer) is `Err(Unreachable)`, kept apart so the leader cache can suspect the node.
    async fn call_node<Req: Serialize, T: DeserializeOwned>(
        &self,
        node: NodeId,
        group: u64,
        method: u16,
        request: &Req,
    ) -> Result<T, CallError> {
        let addr = self.view.borrow().map.addr(node).ok_or_else(|| {
            CallError::Answered(RouteError::Unavailable(format!(
                "node {node} is not in the map"
            )))
        })?;
        let body = serde_json::to_vec(request)
            .map_err(|e| CallError::Answered(RouteError::Internal(e.to_string())))?;
        let reply = self
            .endpoint
            .call(addr, group, method, Bytes::from(body), CALL_TIMEOUT)
            .await
            .map_err(|err| match err {
                TransportError::Remote(_) => CallError::Answered(transport_error(err)),
                err => CallError::Unreachable(err),
            })?;
        serde_json::from_slice::<Result<T, RouteError>>(&reply)
            .map_err(|e| {
                CallError::Answered(RouteError::Internal(format!(
                    "malformed reply from node {node}: {e}"
                )))
            })?
            .map_err(CallError::Answered)
    }

    /// A call to the leader of `shard`, retried across replicas and leader changes until it
    /// succeeds, fails for good, or the deadline passes.
    async fn call_leader<Req: Serialize, T: DeserializeOwned>(
        &self,
        shard: ShardId,
        group: u64,
        method: u16,
        request: &Req,
    ) -> Result<T, RouteError> {
        self.call_leader_counting(shard, group, method, request)
            .await
            .map(|(value, _)| value)
    }

    /// [`Inner::call_leader`], also telling how many times the call was sent.
    async fn call_leader_counting<Req: Serialize, T: DeserializeOwned>(
        &self,
        shard: ShardId,
        group: u64,
        method: u16,
        request: &Req,
    ) -> Result<(T, u32), RouteError> {
        let started = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            let replicas = self.view.borrow().placement.replicas(shard).to_vec();
            let candidate =
                self.leaders
                    .lock()
                    .candidate(shard, &replicas, attempt as usize, Instant::now());
            let Some(node) = candidate else {
                return Err(RouteError::Unavailable(format!(
                    "shard {shard} has no replicas"
                )));
            };
            let outcome = self
                .call_presumed_leader(shard, node, &replicas, group, method, request)
                .await;
            if let Err(err) = &outcome {
                tracing::debug!(shard, node, attempt, elapsed = ?started.elapsed(), error = %err, "call to a shard leader failed");
            }
            let mut followed_hint = false;
            let last_error = match outcome {
                Ok(value) => {
                    self.leaders.lock().confirm(shard, node);
                    if attempt > 0 {
                        // After a failover: how long this shard's callers waited.
                        tracing::info!(shard, node, attempts = attempt + 1, waited = ?started.elapsed(), "shard leader answered after retries");
                    }
                    return Ok((value, attempt + 1));
                }
                Err(CallError::Answered(RouteError::NotLeader { leader_hint })) => {
                    followed_hint =
                        self.leaders
                            .lock()
                            .not_leader(shard, node, leader_hint, Instant::now());
                    RouteError::NotLeader { leader_hint }
                }
                Err(CallError::Unreachable(err)) => {
                    self.leaders.lock().unreachable(node, Instant::now());
                    transport_error(err)
                }
                Err(CallError::Answered(err @ RouteError::Unavailable(_))) => {
                    self.leaders.lock().forget(shard, node);
                    err
                }
                Err(CallError::Answered(err)) => return Err(err),
            };
            let jitter = rand::random::<f64>();
            match retry_delay(attempt, followed_hint, started.elapsed(), DEADLINE, jitter) {
                Some(delay) => tokio::time::sleep(delay).await,
                None => {
                    return Err(RouteError::Unavailable(format!(
                        "shard {shard}: no leader answered within {DEADLINE:?} ({last_error})"
                    )));
                }
            }
            attempt += 1;
        }
    }
}

impl Inner {
    /// A call to `node`, presumed to lead `shard`, that ends early when another replica names a
    /// different leader while it waits. A leader killed mid-call never answers (QUIC learns of a
    /// dead peer only by its silence), so without this its callers would wait out
    /// [`CALL_TIMEOUT`] even after the survivors have elected a new leader. Giving up on the call
    /// is safe: the caller sends it again to the new leader, and a submit carries its nonce, so
    /// one the old leader did commit is answered as the duplicate it is.
    async fn call_presumed_leader<Req: Serialize, T: DeserializeOwned>(
        &self,
        shard: ShardId,
        node: NodeId,
        replicas: &[NodeId],
        group: u64,
        method: u16,
        request: &Req,
    ) -> Result<T, CallError> {
        let call = self.call_node(node, group, method, request);
        tokio::pin!(call);
        let others: Vec<NodeId> = replicas.iter().copied().filter(|&r| r != node).collect();
        if others.is_empty() {
            return call.await;
        }
        tokio::select! {
            outcome = &mut call => outcome,
            leader = self.wait_for_another_leader(shard, node, &others) => {
                tracing::debug!(shard, node, leader, "another replica leads; leaving the call");
                Err(CallError::Answered(RouteError::NotLeader { leader_hint: Some(leader) }))
            }
        }
    }

    /// Asks `others` every 25–50 ms, from [`ASK_OTHERS_AFTER`] on, who leads `shard`; returns
    /// the first replica other than `waiting_on` that serves a linearizable read (so leads now).
    /// Never returns while they name `waiting_on` or nobody (the caller's call settles it then).
    async fn wait_for_another_leader(
        &self,
        shard: ShardId,
        waiting_on: NodeId,
        others: &[NodeId],
    ) -> NodeId {
        tokio::time::sleep(ASK_OTHERS_AFTER).await;
        let no_channels: Vec<Uuid> = Vec::new();
        loop {
            let mut answers: FuturesUnordered<_> = others
                .iter()
                .map(|&other| {
                    let ask = self.call_node::<_, Vec<u64>>(
                        other,
                        shard_group(shard),
                        method::SHARD_LAST_SEQS,
                        &no_channels,
                    );
                    async move { (other, ask.await) }
                })
                .collect();
            let round = async {
                while let Some((other, answer)) = answers.next().await {
                    match other_leader(waiting_on, other, &answer) {
                        Some(leader) if leader == other => return Some(leader),
                        // A follower's hint may be stale (it missed a leader change): leave
                        // the call only for a replica that proves it leads by serving a read.
                        Some(leader) => {
                            let proof = self
                                .call_node::<_, Vec<u64>>(
                                    leader,
                                    shard_group(shard),
                                    method::SHARD_LAST_SEQS,
                                    &no_channels,
                                )
                                .await;
                            if proof.is_ok() {
                                return Some(leader);
                            }
                        }
                        None => {}
                    }
                }
                None
            };
            if let Ok(Some(leader)) = tokio::time::timeout(ASK_OTHERS_TIMEOUT, round).await {
                return leader;
            }
            let jitter = rand::random::<f64>();
            tokio::time::sleep(Duration::from_millis(25).mul_f64(1.0 + jitter)).await;
        }
    }
}

/// What `other`'s answer to "who leads?" says about a leader other than `waiting_on`: a read
/// it served makes it the leader; a not-leader answer names its leader (or nobody, mid-election).
fn other_leader<T>(
    waiting_on: NodeId,
    other: NodeId,
    answer: &Result<T, CallError>,
) -> Option<NodeId> {
    let named = match answer {
        Ok(_) => Some(other),
        Err(CallError::Answered(RouteError::NotLeader { leader_hint })) => *leader_hint,
        Err(_) => None,
    };
    named.filter(|&leader| leader != waiting_on)
}

/// Why one call to one node failed.
#[derive(Debug)]
enum CallError {
    /// The node did not answer: refused, timed out, or the connection was lost.
    Unreachable(TransportError),
    /// The node (or the request's own encoding) answered with an error.
    Answered(RouteError),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unreachable(err) => write!(f, "unreachable: {err}"),
            CallError::Answered(err) => err.fmt(f),
        }
    }
}

fn transport_error(err: TransportError) -> RouteError {
    RouteError::Unavailable(format!("transport: {err}"))
}

/// Sends a shard's queued submits, one batch at a time, in queue order, and tells `delay` how
/// long they waited (`queue_delay.rs`).
async fn run_pipeline(
    inner: std::sync::Weak<Inner>,
    shard: ShardId,
    mut queue: mpsc::Receiver<Queued>,
    delay: Arc<Mutex<QueueDelay>>,
) {
    while let Some(first) = queue.recv().await {
        delay
            .lock()
            .observe(first.enqueued.elapsed(), Instant::now());
        let mut batch = vec![first];
        while batch.len() < MAX_SUBMIT_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let Some(inner) = inner.upgrade() else { return };
        let waiting = batch.into_iter().map(|q| (q.request, q.reply)).collect();
        let resent = submit_until_settled(&inner, shard, waiting).await;
        if resent || queue.is_empty() {
            delay.lock().forgive();
        }
    }
}

/// Submits `waiting` to the shard's leader and answers each submit. A submit the leader took but
/// could not finish — it lost the leadership mid-batch, or history was slow — is sent again with
/// its nonce (the new leader answers a committed one as a duplicate) until the deadline, rather
/// than handed back to the client as `unavailable`. Tells whether it had to send anything twice
/// (a leader change or a time-out).
async fn submit_until_settled(
    inner: &Inner,
    shard: ShardId,
    mut waiting: Vec<(
        PublishRequest,
        oneshot::Sender<Result<PublishAck, RouteError>>,
    )>,
) -> bool {
    let started = Instant::now();
    let mut round: u32 = 0;
    let mut resent_any = false;
    while !waiting.is_empty() {
        let requests = waiting.iter().map(|(request, _)| request.clone()).collect();
        let (acks, sent) = match inner
            .call_leader_counting::<_, Vec<Result<PublishAck, RouteError>>>(
                shard,
                shard_group(shard),
                method::SUBMIT,
                &SubmitBatch { requests },
            )
            .await
        {
            Ok((acks, sent)) if acks.len() == waiting.len() => (acks, sent),
            Ok((acks, _)) => {
                let err = RouteError::Internal(format!(
                    "{} outcomes for a batch of {}",
                    acks.len(),
                    waiting.len()
                ));
                answer_all(waiting, &err);
                return true;
            }
            Err(err) => {
                answer_all(waiting, &err);
                return true;
            }
        };
        resent_any |= round > 0 || sent > 1;
        let mut again = Vec::new();
        for ((request, reply), ack) in waiting.into_iter().zip(acks) {
            match ack {
                Err(err) if worth_retrying(&err) && started.elapsed() < DEADLINE => {
                    again.push((request, reply));
                }
                ack => {
                    let resent = round > 0 || sent > 1;
                    let _ = reply.send(ack.map(|ack| own_retry_is_no_duplicate(ack, resent)));
                }
            }
        }
        waiting = again;
        if !waiting.is_empty() {
            let jitter = rand::random::<f64>();
            let delay = retry_delay(round, false, started.elapsed(), DEADLINE, jitter)
                .unwrap_or(Duration::ZERO);
            tokio::time::sleep(delay).await;
            round += 1;
        }
    }
    resent_any
}

/// A submit this router sent more than once (a call that timed out, a leader that changed) may
/// find its own earlier attempt committed: the leader answers `duplicate`, though the client sent
/// it once. The client is told `duplicate: false` then — the seq and id are the original's either
/// way; docs/PROTOCOL.md says that `duplicate` is only a hint.
fn own_retry_is_no_duplicate(mut ack: PublishAck, resent: bool) -> PublishAck {
    if resent {
        ack.duplicate = false;
    }
    ack
}

fn answer_all(
    waiting: Vec<(
        PublishRequest,
        oneshot::Sender<Result<PublishAck, RouteError>>,
    )>,
    err: &RouteError,
) {
    for (_, reply) in waiting {
        let _ = reply.send(Err(err.clone()));
    }
}

/// Re-reads the map every [`MAP_REFRESH`] while the router lives.
async fn refresh_map(inner: std::sync::Weak<Inner>) {
    loop {
        tokio::time::sleep(MAP_REFRESH).await;
        let Some(inner) = inner.upgrade() else { return };
        let mut peers: Vec<SocketAddr> = inner.view.borrow().map.nodes.values().copied().collect();
        peers.extend(inner.seeds.iter().copied());
        match fetch_map(&inner.endpoint, &peers).await {
            Ok(map) => {
                inner.view.send_if_modified(|view| {
                    if map.version > view.map.version {
                        *view = Arc::new(View {
                            placement: map.placement(),
                            map,
                        });
                        true
                    } else {
                        false
                    }
                });
            }
            Err(err) => tracing::warn!(error = %err, "cannot refresh the cluster map"),
        }
    }
}

/// The map from the first of `peers` that answers.
async fn fetch_map(
    endpoint: &QuicEndpoint,
    peers: &[SocketAddr],
) -> Result<ClusterMap, RouteError> {
    let mut last = RouteError::Unavailable("no channel node to ask".into());
    for &peer in peers {
        match endpoint
            .call(
                peer,
                NODE_GROUP,
                method::CLUSTER_MAP,
                Bytes::new(),
                CALL_TIMEOUT,
            )
            .await
        {
            Ok(body) => {
                return serde_json::from_slice(&body)
                    .map_err(|e| RouteError::Internal(format!("malformed map from {peer}: {e}")));
            }
            Err(err) => last = transport_error(err),
        }
    }
    Err(last)
}

#[async_trait]
impl ChannelRouter for ClusterRouter {
    async fn submit(&self, request: PublishRequest) -> Result<PublishTicket, RouteError> {
        let shard = self.shard_of(request.channel_id);
        // From submit to commit on the shard's leader, a child of the caller's span.
        let span = tracing::info_span!("channel_commit", channel_id = %request.channel_id,
            kind = ?request.kind, shard);
        let pipeline = self.pipeline(shard);
        if !pipeline.delay.lock().admits() {
            return Err(RouteError::Overloaded);
        }
        let (reply, outcome) = oneshot::channel();
        pipeline
            .queue
            .try_send(Queued {
                request,
                reply,
                enqueued: Instant::now(),
            })
            .map_err(|err| match err {
                mpsc::error::TrySendError::Full(_) => RouteError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => {
                    RouteError::Unavailable("router stopped".into())
                }
            })?;
        Ok(PublishTicket::new(
            async move {
                outcome
                    .await
                    .unwrap_or_else(|_| Err(RouteError::Unavailable("router stopped".into())))
            }
            .instrument(span),
        ))
    }

    async fn replay(&self, channel: Uuid, after_seq: u64) -> Result<Replay, RouteError> {
        let shard = self.shard_of(channel);
        let request = ReplayRequest { channel, after_seq };
        self.inner
            .call_leader(shard, shard_group(shard), method::REPLAY, &request)
            .await
    }

    async fn set_archived(&self, channel: Uuid, archived: bool) -> Result<(), RouteError> {
        let shard = self.shard_of(channel);
        let request = SetArchivedRequest { channel, archived };
        self.inner
            .call_leader(shard, shard_group(shard), method::SET_ARCHIVED, &request)
            .await
    }

    async fn last_seqs(&self, channels: &[Uuid]) -> Result<Vec<u64>, RouteError> {
        // Group by shard, then by the node believed to lead it: one call per node, in parallel.
        let mut by_shard: HashMap<ShardId, Vec<(usize, Uuid)>> = HashMap::new();
        for (i, &channel) in channels.iter().enumerate() {
            by_shard
                .entry(self.shard_of(channel))
                .or_default()
                .push((i, channel));
        }
        let mut by_node: HashMap<NodeId, Vec<ShardId>> = HashMap::new();
        {
            let view = self.inner.view.borrow();
            let leaders = self.inner.leaders.lock();
            let now = Instant::now();
            for &shard in by_shard.keys() {
                if let Some(node) = leaders.candidate(shard, view.placement.replicas(shard), 0, now)
                {
                    by_node.entry(node).or_default().push(shard);
                }
            }
        }
        let calls = by_node.into_iter().map(|(node, shards)| {
            let request = LastSeqsRequest {
                shards: shards
                    .iter()
                    .map(|s| (*s, by_shard[s].iter().map(|(_, c)| *c).collect()))
                    .collect(),
            };
            let inner = self.inner.clone();
            async move {
                let reply: Result<LastSeqsReply, CallError> = inner
                    .call_node(node, NODE_GROUP, method::LAST_SEQS, &request)
                    .await;
                (node, shards, reply)
            }
        });
        let mut seqs = vec![0u64; channels.len()];
        let mut retry: Vec<ShardId> = Vec::new();
        for (node, shards, reply) in futures_util::future::join_all(calls).await {
            let per_shard = match reply {
                Ok(per_shard) if per_shard.len() == shards.len() => per_shard,
                Err(CallError::Unreachable(_)) => {
                    self.inner.leaders.lock().unreachable(node, Instant::now());
                    retry.extend(shards);
                    continue;
                }
                _ => {
                    let mut leaders = self.inner.leaders.lock();
                    for &shard in &shards {
                        leaders.forget(shard, node);
                    }
                    retry.extend(shards);
                    continue;
                }
            };
            for (shard, result) in shards.into_iter().zip(per_shard) {
                match result {
                    Ok(values) => {
                        self.inner.leaders.lock().confirm(shard, node);
                        for ((i, _), seq) in by_shard[&shard].iter().zip(values) {
                            seqs[*i] = seq;
                        }
                    }
                    Err(RouteError::NotLeader { leader_hint }) => {
                        self.inner.leaders.lock().not_leader(
                            shard,
                            node,
                            leader_hint,
                            Instant::now(),
                        );
                        retry.push(shard);
                    }
                    // The leader could not confirm its leadership in time (a read-index round
                    // without a quorum: a busy or partitioned replica set); the retry below
                    // asks again with backoff rather than fail the client's identify.
                    Err(RouteError::Unavailable(reason)) => {
                        tracing::debug!(shard, node, %reason, "last seqs: retrying a shard");
                        retry.push(shard);
                    }
                    Err(err) => return Err(err),
                }
            }
        }
        // Shards whose leader moved: one at a time, with the full retry policy.
        for shard in retry {
            let entries = &by_shard[&shard];
            let shard_channels: Vec<Uuid> = entries.iter().map(|(_, c)| *c).collect();
            let values: Vec<u64> = self
                .inner
                .call_leader(
                    shard,
                    shard_group(shard),
                    method::SHARD_LAST_SEQS,
                    &shard_channels,
                )
                .await?;
            for ((i, _), seq) in entries.iter().zip(values) {
                seqs[*i] = seq;
            }
        }
        Ok(seqs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duplicate_the_router_may_have_caused_itself_is_not_reported_to_the_client() {
        let ack = PublishAck {
            message_id: Uuid::nil(),
            seq: 7,
            created_at: chrono::Utc::now(),
            duplicate: true,
        };
        assert!(
            own_retry_is_no_duplicate(ack, false).duplicate,
            "sent once: a real duplicate"
        );
        let resent = own_retry_is_no_duplicate(ack, true);
        assert!(!resent.duplicate);
        assert_eq!(resent.seq, 7, "the original's seq either way");
    }

    #[test]
    fn only_an_answer_naming_a_different_leader_ends_the_wait() {
        let read_served: Result<Vec<u64>, CallError> = Ok(vec![]);
        assert_eq!(
            other_leader(1, 2, &read_served),
            Some(2),
            "it serves reads: it leads"
        );
        let names = |hint| -> Result<Vec<u64>, CallError> {
            Err(CallError::Answered(RouteError::NotLeader {
                leader_hint: hint,
            }))
        };
        assert_eq!(other_leader(1, 2, &names(Some(3))), Some(3));
        assert_eq!(
            other_leader(1, 2, &names(Some(1))),
            None,
            "still the one we wait on"
        );
        assert_eq!(other_leader(1, 2, &names(None)), None, "mid-election");
        let silent: Result<Vec<u64>, CallError> =
            Err(CallError::Unreachable(TransportError::Timeout));
        assert_eq!(other_leader(1, 2, &silent), None);
    }
}
