//! A channel node of a cluster: one transport endpoint, the control group, and a replica of every
//! shard the cluster map places on this node.
//!
//! Start-up: the node opens its transport and its control-group replica. The seed with the lowest
//! id initializes the control group with every seed as a voter (a group that exists is left as it
//! is), and whichever node leads it creates the cluster map (shard count, replication, nodes) if
//! there is none yet. A node started with `join` is not a seed: it asks the seeds to add it
//! (`membership.rs`) and receives the map as a learner of the control group. Every node watches
//! the applied map, starts the replicas placed on it and stops (and deletes) those moved away;
//! the first replica of a shard placed at the cluster's creation — its preferred leader —
//! initializes the shard's group, and a replica placed later joins the running group as a
//! learner. The rebalancer (`rebalancer.rs`) runs on every node and acts while it leads the
//! control group.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chorus_cluster::rpc::{MembershipRequest, NODE_GROUP, method};
use chorus_cluster::transport::{QuicEndpoint, TlsFiles, TransportLimits};
use chorus_cluster::{CONTROL_GROUP, ClusterMap, DrainReason, FanoutBus, shard_group};
use chorus_core::MessageStore;
use openraft::error::{InitializeError, RaftError};
use openraft::{BasicNode, Config, Raft, RaftMetrics, ServerState, SnapshotPolicy};
use tokio::sync::watch;

use crate::control::{ControlCommand, ControlConfig, ControlStateMachine};
use crate::log_file::LogFile;
use crate::log_store::LogStore;
use crate::quic_network::{QuicNetwork, QuicProbes};
use crate::raft_service::Dispatch;
use crate::raft_types::{NodeId, TypeConfig};
use crate::rebalancer::RebalanceSettings;
use crate::shard::{CoordinatedElections, RaftTiming, ShardError, ShardReplica, ShardSettings};
use crate::state::StateLimits;

/// Settings of a cluster channel node.
#[derive(Clone, Debug)]
pub struct ClusterNodeConfig {
    pub node_id: NodeId,
    pub data_dir: PathBuf,
    /// Where the transport listens (UDP); peers reach this node at `seeds[node_id]`.
    pub listen: SocketAddr,
    /// The channel nodes that create the cluster, this one included.
    pub seeds: BTreeMap<NodeId, SocketAddr>,
    pub shard_count: u32,
    pub replication: usize,
    pub tls: TlsFiles,
    pub limits: StateLimits,
    pub max_in_flight: usize,
    pub snapshot_every: u64,
    /// Raft timing of every group on this node (the control group and the shards).
    pub timing: RaftTiming,
    /// Join a running cluster (this node is not among `seeds`, which name the nodes to ask).
    pub join: bool,
    /// The transport address peers reach this node at, when it is not a seed (default: `listen`).
    pub advertise: Option<SocketAddr>,
    pub rebalance: RebalanceSettings,
}

/// A running cluster channel node.
pub struct ClusterChannelNode {
    dispatch: Arc<Dispatch>,
    endpoint: QuicEndpoint,
    control: Raft<ControlConfig>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn raft_err(err: impl std::fmt::Display) -> ShardError {
    ShardError::Raft(err.to_string())
}

fn members(nodes: impl IntoIterator<Item = (NodeId, SocketAddr)>) -> BTreeMap<NodeId, BasicNode> {
    nodes
        .into_iter()
        .map(|(id, addr)| (id, BasicNode::new(addr.to_string())))
        .collect()
}

impl ClusterChannelNode {
    pub async fn start(
        config: ClusterNodeConfig,
        messages: Arc<dyn MessageStore>,
        bus: Arc<dyn FanoutBus>,
    ) -> Result<Self, ShardError> {
        let advertised = match (config.seeds.get(&config.node_id), config.join) {
            (Some(addr), _) => *addr,
            (None, true) => config.advertise.unwrap_or(config.listen),
            (None, false) => {
                return Err(ShardError::Raft(format!(
                    "node {} is not among the seeds {:?} (start it with join to add it to a running cluster)",
                    config.node_id, config.seeds
                )));
            }
        };
        tracing::info!(node = config.node_id, %advertised, listen = %config.listen, "starting channel node");
        let dispatch = Arc::new(Dispatch {
            node_id: config.node_id,
            ..Dispatch::default()
        });
        let endpoint = QuicEndpoint::server(
            config.listen,
            &config.tls,
            dispatch.clone(),
            TransportLimits::default(),
        )
        .map_err(raft_err)?;
        let _ = dispatch.endpoint.set(endpoint.clone());

        let control_dir = config.data_dir.join("control");
        std::fs::create_dir_all(&control_dir)?;
        refuse_per_group_logs(&config.data_dir)?;
        let log_file = LogFile::open(&config.data_dir.join(LOG_FILE))?;
        let control_sm = ControlStateMachine::open(&control_dir).map_err(raft_err)?;
        let control_log = LogStore::<ControlConfig>::open(&log_file, "control")
            .await
            .map_err(raft_err)?;
        let timing = config.timing;
        let control_config = Config {
            cluster_name: "chorus-control".into(),
            heartbeat_interval: timing.heartbeat_ms,
            election_timeout_min: timing.election_min_ms,
            election_timeout_max: timing.election_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(1_000),
            ..Config::default()
        }
        .validate()
        .map_err(raft_err)?;
        let control = Raft::new(
            config.node_id,
            Arc::new(control_config),
            QuicNetwork::new(endpoint.clone(), CONTROL_GROUP),
            control_log,
            control_sm.clone(),
        )
        .await
        .map_err(raft_err)?;
        let _ = dispatch.control.set(control.clone());
        let _ = dispatch.map.set(control_sm.map());

        let first_seed = config.seeds.keys().next().copied();
        if first_seed == Some(config.node_id) && !config.join {
            match control.initialize(members(config.seeds.clone())).await {
                Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(err) => return Err(raft_err(err)),
            }
        }
        let new_map =
            ClusterMap::create(config.shard_count, config.replication, config.seeds.clone())
                .map_err(raft_err)?;
        let mut tasks = vec![
            tokio::spawn(create_cluster(control.clone(), control_sm.map(), new_map)),
            tokio::spawn(crate::rebalancer::run(
                config.node_id,
                control.clone(),
                control_sm.map(),
                endpoint.clone(),
                config.rebalance,
            )),
        ];
        tasks.push(tokio::spawn(crate::leadership::run(
            config.node_id,
            dispatch.clone(),
            control_sm.map(),
            config.rebalance.leader_settle,
        )));
        if config.join {
            tasks.push(tokio::spawn(join_cluster(
                endpoint.clone(),
                config.node_id,
                advertised,
                config.seeds.values().copied().collect(),
            )));
        }
        tasks.push(tokio::spawn(place_replicas(
            config,
            dispatch.clone(),
            endpoint.clone(),
            log_file,
            Watches {
                map: control_sm.map(),
                control: control.metrics(),
            },
            messages,
            bus,
        )));
        Ok(ClusterChannelNode {
            dispatch,
            endpoint,
            control,
            tasks,
        })
    }

    /// The transport address this node listens on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// The shard replicas running on this node.
    pub fn replicas(&self) -> HashMap<u32, ShardReplica> {
        self.dispatch.shards.read().clone()
    }

    /// Hands over the leaderships this node holds, stops every group and closes the transport.
    pub async fn shutdown(self) {
        for task in &self.tasks {
            task.abort();
        }
        crate::leadership::hand_over_all(self.dispatch.node_id, &self.dispatch).await;
        let replicas: Vec<ShardReplica> = self.dispatch.shards.read().values().cloned().collect();
        for replica in replicas {
            replica.shutdown().await;
        }
        if let Err(err) = self.control.shutdown().await {
            tracing::warn!(error = %err, "control group shutdown");
        }
        self.endpoint.close().await;
    }
}

/// Creates the cluster map once this node leads the control group and no map exists.
async fn create_cluster(
    control: Raft<ControlConfig>,
    mut map: watch::Receiver<ClusterMap>,
    new_map: ClusterMap,
) {
    let mut metrics = control.metrics();
    loop {
        if map.borrow_and_update().is_created() {
            return;
        }
        let leading = metrics.borrow_and_update().state == ServerState::Leader;
        if leading {
            match control
                .client_write(ControlCommand::Create(new_map.clone()))
                .await
            {
                Ok(_) => tracing::info!(
                    shards = new_map.shard_count,
                    replication = new_map.replication,
                    "cluster created"
                ),
                Err(err) => {
                    tracing::debug!(error = %err, "creating the cluster map failed; retrying")
                }
            }
            continue;
        }
        tokio::select! {
            _ = map.changed() => {}
            _ = metrics.changed() => {}
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// Asks the seeds, in turn, to add this node to the cluster, until one accepts.
async fn join_cluster(
    endpoint: QuicEndpoint,
    node: NodeId,
    addr: SocketAddr,
    seeds: Vec<SocketAddr>,
) {
    let request = MembershipRequest::Join { node, addr };
    let body = bytes::Bytes::from(serde_json::to_vec(&request).expect("a request serializes"));
    loop {
        for seed in &seeds {
            let reply = endpoint
                .call(
                    *seed,
                    NODE_GROUP,
                    method::MEMBERSHIP,
                    body.clone(),
                    Duration::from_secs(60),
                )
                .await;
            match reply.map(|bytes| serde_json::from_slice::<Result<ClusterMap, String>>(&bytes)) {
                Ok(Ok(Ok(_))) => {
                    tracing::info!(node, %addr, via = %seed, "joined the cluster");
                    return;
                }
                Ok(Ok(Err(why))) => {
                    tracing::error!(node, %seed, %why, "the cluster refused this node");
                }
                Ok(Err(err)) => tracing::warn!(%seed, error = %err, "malformed join reply"),
                Err(err) => tracing::info!(%seed, error = %err, "cannot reach seed to join"),
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// What placing replicas follows: the applied map, and the control replica's progress.
struct Watches {
    map: watch::Receiver<ClusterMap>,
    control: watch::Receiver<RaftMetrics<NodeId, BasicNode>>,
}

/// Starts the replicas the map places on this node and stops those it no longer places here
/// (keeps doing so as the map changes).
async fn place_replicas(
    config: ClusterNodeConfig,
    dispatch: Arc<Dispatch>,
    endpoint: QuicEndpoint,
    log_file: LogFile,
    watches: Watches,
    messages: Arc<dyn MessageStore>,
    bus: Arc<dyn FanoutBus>,
) {
    let Watches { mut map, control } = watches;
    let mut said_decommissioned = false;
    loop {
        // Act only on a map at least as new as the one this node last acted on before a
        // restart: its control replica has applied its whole log and hears a leader. Earlier,
        // the map from the control snapshot could be older than the replicas on disk, and
        // deleting what it does not place would delete a live voter's log.
        if !caught_up(&control.borrow()) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let current = map.borrow_and_update().clone();
        if current.is_created() {
            let placement = current.placement();
            let preferred = chorus_cluster::leadership::preferred_leaders(&current);
            let placed = placement.shards_of(config.node_id);
            if placed.is_empty()
                && current.draining.get(&config.node_id) == Some(&DrainReason::Decommission)
                && !said_decommissioned
            {
                said_decommissioned = true;
                tracing::info!(
                    "this node is decommissioned and holds no replica: stop it once `chorus cluster status` no longer lists it"
                );
            }
            let running: Vec<u32> = dispatch.shards.read().keys().copied().collect();
            for shard in running.into_iter().filter(|s| !placed.contains(s)) {
                remove_replica(&config, &dispatch, &log_file, shard).await;
            }
            // Replicas moved away while this node was down left their data behind. The map
            // applied here is at least as new as the one that placed them (replica data is only
            // made for a placement this node applied), so what it does not place is gone.
            for shard in stale_replica_dirs(&config, &placed) {
                delete_replica_data(&config, &log_file, shard).await;
            }
            for shard in placed {
                if dispatch.shards.read().contains_key(&shard) {
                    continue;
                }
                // A replica a move is adding here joins as a new learner: whatever an earlier
                // replica of this shard left on disk (moved away while this node was down) goes.
                let incoming = current
                    .moving
                    .as_ref()
                    .is_some_and(|m| m.shard == shard && m.to.contains(&config.node_id))
                    && !current.current_assignment()[shard as usize]
                        .nodes
                        .contains(&config.node_id);
                if incoming && shard_dir(&config, shard).exists() {
                    delete_replica_data(&config, &log_file, shard).await;
                }
                let settings = ShardSettings {
                    node_id: config.node_id,
                    dir: shard_dir(&config, shard),
                    log_file: log_file.clone(),
                    log_group: log_group(shard),
                    limits: config.limits,
                    max_in_flight: config.max_in_flight,
                    snapshot_every: config.snapshot_every,
                    timing: config.timing,
                    name: format!("chorus-shard-{shard}"),
                    elections: Some(CoordinatedElections {
                        group: shard_group(shard),
                        probes: Arc::new(QuicProbes::new(endpoint.clone(), shard_group(shard))),
                    }),
                };
                let network = QuicNetwork::new(endpoint.clone(), shard_group(shard));
                let replica =
                    match ShardReplica::start(settings, network, messages.clone(), bus.clone())
                        .await
                    {
                        Ok(replica) => replica,
                        Err(err) => {
                            tracing::error!(shard, error = %err, "cannot start shard replica");
                            continue;
                        }
                    };
                let replicas = placement.replicas(shard);
                // Only a group placed at the cluster's creation is created here, by its
                // preferred leader (which then leads it); a replica placed by a move is added to
                // the running group by its leader.
                if current.epoch(shard) == 0
                    && current.moving.as_ref().is_none_or(|m| m.shard != shard)
                    && preferred.get(shard as usize).copied().flatten() == Some(config.node_id)
                {
                    let group = members(
                        replicas
                            .iter()
                            .filter_map(|id| current.addr(*id).map(|addr| (*id, addr))),
                    );
                    if let Err(err) = replica.initialize(group).await {
                        tracing::error!(shard, error = %err, "cannot initialize shard group");
                    }
                }
                dispatch.shards.write().insert(shard, replica);
            }
        }
        tokio::select! {
            changed = map.changed() => if changed.is_err() { return },
            // Look again now and then: the sweep of stale replica data waits for a catch-up.
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

/// Whether the control replica has applied everything in its log and hears a leader.
fn caught_up(m: &RaftMetrics<NodeId, BasicNode>) -> bool {
    m.current_leader.is_some() && m.last_applied.map(|l| l.index) >= m.last_log_index
}

fn shard_dir(config: &ClusterNodeConfig, shard: u32) -> PathBuf {
    config.data_dir.join("shards").join(shard.to_string())
}

fn log_group(shard: u32) -> String {
    format!("shard-{shard}")
}

/// Stops a replica the map moved away from this node and deletes its log and snapshot: the group
/// committed voters without it, and if the shard is placed here again it must join as a new,
/// empty learner rather than come back with a stale log and vote.
async fn remove_replica(
    config: &ClusterNodeConfig,
    dispatch: &Dispatch,
    log_file: &LogFile,
    shard: u32,
) {
    let Some(replica) = dispatch.shards.write().remove(&shard) else {
        return;
    };
    replica.shutdown().await;
    delete_replica_data(config, log_file, shard).await;
    tracing::info!(
        shard,
        "replica moved away from this node; stopped and deleted"
    );
}

/// The shards with a snapshot directory on this node that the map does not place here.
fn stale_replica_dirs(config: &ClusterNodeConfig, placed: &[u32]) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(config.data_dir.join("shards")) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|shard| !placed.contains(shard))
        .collect()
}

/// Deletes a stopped replica's log and snapshot directory.
async fn delete_replica_data(config: &ClusterNodeConfig, log_file: &LogFile, shard: u32) {
    if let Err(err) = LogStore::<TypeConfig>::destroy(log_file, &log_group(shard)).await {
        tracing::error!(shard, error = %err, "cannot delete the log of a removed replica");
    }
    let dir = shard_dir(config, shard);
    if let Err(err) = std::fs::remove_dir_all(&dir)
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::error!(shard, dir = %dir.display(), error = %err, "cannot delete a removed replica's state");
    }
    tracing::info!(
        shard,
        "deleted the data of a replica not placed on this node"
    );
}

/// The node's Raft log file: the logs of the control group and of every shard replica.
const LOG_FILE: &str = "raft-log.redb";

/// A data directory from before the logs were shared keeps each group's log (and vote) in a file
/// of its own; starting over it would forget the votes this node cast. Refuse, and say so.
fn refuse_per_group_logs(data_dir: &std::path::Path) -> Result<(), ShardError> {
    let old = data_dir.join("control").join("raft.redb");
    if old.exists() {
        return Err(ShardError::Raft(format!(
            "{} holds a Raft log in the per-group layout of an earlier version; this version keeps \
             every group's log in {}. Start the node with an empty data directory (its replicas \
             are copied from the other nodes)",
            old.display(),
            data_dir.join(LOG_FILE).display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_directory_with_per_group_logs_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            refuse_per_group_logs(dir.path()).is_ok(),
            "an empty directory"
        );
        std::fs::create_dir_all(dir.path().join("control")).unwrap();
        std::fs::write(dir.path().join("control").join("raft.redb"), b"old").unwrap();
        let refused = refuse_per_group_logs(dir.path()).unwrap_err().to_string();
        assert!(refused.contains("empty data directory"), "{refused}");
    }
}
