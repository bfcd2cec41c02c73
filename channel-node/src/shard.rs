//! One replica of one shard: a Raft instance over the shard's log and state machine, the batcher
//! that group-commits submits into it, and the history writer that acts while it leads.
//!
//! The embedded node runs one of these as a group of one (`service.rs`); a channel node of a
//! cluster runs one per shard it replicates (`cluster_node.rs`). Reads are answered from the
//! applied state, and only by the leader: in a cluster after a read index
//! (`ensure_linearizable`), so a deposed leader cannot answer from a stale state.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chorus_cluster::{FanoutBus, PublishRequest, Replay, RouteError};
use chorus_core::MessageStore;
use chrono::{SubsecRound, Utc};
use openraft::error::{InitializeError, RaftError};
use openraft::network::RaftNetworkFactory;
use openraft::{BasicNode, Config, Raft, ServerState, SnapshotPolicy};
use parking_lot::Mutex;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::batcher::{self, Proposal};
use crate::election::ProbeReply;
use crate::election_guard::{self, ProbePeers};
use crate::hand_over::{self, HandOverGate, HandOverOutcome};
use crate::history_writer::{self, WriterStatus};
use crate::log_file::LogFile;
use crate::log_store::LogStore;
use crate::raft_types::{NodeId, TypeConfig};
use crate::read_index::ReadBarriers;
use crate::state::{BufferedReplay, Command, Outcome, PublishCommand, StateLimits};
use crate::state_machine::StateMachineStore;

/// Unconfirmed history a shard may accumulate (its message store is down or slow) before it
/// refuses new submits with `Overloaded`: the pending events are held in memory by every replica.
const MAX_PENDING_HISTORY: usize = 100_000;

/// The most log entries in one AppendEntries call. openraft 0.9 gives the whole call — encoding,
/// transfer, the follower's fsync — one heartbeat interval; its default of 300 entries (each a
/// batch of up to `batcher::MAX_BATCH` events, several megabytes) could not finish in time once a
/// follower fell behind under load, so the call was retried and timed out again while the group
/// stopped committing. A few entries per call keep every call short; a lagging follower catches
/// up in several.
const MAX_PAYLOAD_ENTRIES: u64 = 8;

/// Raft timing of a shard. A cluster wants a short election timeout (it bounds how long writes
/// pause when a leader dies); a group of one never elects after its start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RaftTiming {
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
}

impl RaftTiming {
    pub const EMBEDDED: RaftTiming = RaftTiming {
        heartbeat_ms: 250,
        election_min_ms: 500,
        election_max_ms: 1000,
    };
    /// The default of a cluster (`[cluster] raft_*` settings override it). A shard follower that
    /// has heard nothing from its leader for `election_max_ms` (openraft's lease) probes its
    /// group and stands if the coordinated rule names it (`election.rs`): 0.3–0.4 s after a
    /// leader dies, in one round. The heartbeat is also openraft 0.9's time limit for one
    /// AppendEntries call, fsync on the follower included. Before elections were coordinated,
    /// this timing collapsed one of two overloaded runs (followers that missed heartbeats
    /// unseated a live leader); the probe now keeps a live leader in place, and three overloaded
    /// runs kept every leader (docs/BENCHMARKS.md, "Coordinated elections").
    pub const CLUSTER: RaftTiming = RaftTiming {
        heartbeat_ms: 100,
        election_min_ms: 200,
        election_max_ms: 300,
    };

    /// Why these settings cannot run, if they cannot. A follower must hear from its leader
    /// several times within the shortest election timeout, or a live leader is unseated by
    /// every delayed heartbeat; the timeouts need a range to draw from, or two followers that
    /// lost their leader together call elections together and split the vote.
    pub fn check(&self) -> Result<(), String> {
        let RaftTiming {
            heartbeat_ms,
            election_min_ms,
            election_max_ms,
        } = *self;
        if heartbeat_ms < 10 {
            return Err(format!("raft_heartbeat_ms is {heartbeat_ms}: at least 10"));
        }
        if election_min_ms < heartbeat_ms.saturating_mul(2) {
            return Err(format!(
                "raft_election_min_ms ({election_min_ms}) must be at least twice raft_heartbeat_ms ({heartbeat_ms})"
            ));
        }
        if election_max_ms <= election_min_ms {
            return Err(format!(
                "raft_election_max_ms ({election_max_ms}) must be greater than raft_election_min_ms ({election_min_ms})"
            ));
        }
        Ok(())
    }
}

/// Everything a shard replica needs to start.
pub struct ShardSettings {
    pub node_id: NodeId,
    /// Directory of this replica's state snapshots.
    pub dir: PathBuf,
    /// The file its log lives in (shared by the groups of a node) and its group's name there.
    pub log_file: LogFile,
    pub log_group: String,
    pub limits: StateLimits,
    pub max_in_flight: usize,
    pub snapshot_every: u64,
    pub timing: RaftTiming,
    /// Used in log lines and the Raft cluster name.
    pub name: String,
    /// `None`: openraft's own election timer (a group of one). A cluster's replicas elect by the
    /// coordinated rule of `election.rs`, probing their peers through this.
    pub elections: Option<CoordinatedElections>,
}

/// What a replica needs to take part in coordinated elections.
pub struct CoordinatedElections {
    /// The group's id on the transport; it also varies the tie-break between equal logs.
    pub group: u64,
    pub probes: Arc<dyn ProbePeers>,
}

/// A running shard replica; clones share it.
#[derive(Clone)]
pub struct ShardReplica {
    node_id: NodeId,
    raft: Raft<TypeConfig>,
    /// A second handle on the log, read to answer election probes.
    log: LogStore<TypeConfig>,
    state: StateMachineStore,
    in_flight: Arc<Semaphore>,
    /// Read-index rounds shared by concurrent reads (`read_index.rs`).
    reads: Arc<ReadBarriers>,
    proposals: mpsc::UnboundedSender<Proposal>,
    writer: watch::Receiver<WriterStatus>,
    /// The history writer's task, awaited at shutdown: it holds the message store, which a
    /// restart in the same process must be able to open again.
    writer_task: Arc<Mutex<Option<JoinHandle<()>>>>,
    /// A group of one needs no read index: nobody else can have been elected.
    single: bool,
    /// Closed while this replica hands its leadership over (`hand_over.rs`).
    gate: HandOverGate,
    /// The group's other voters, for hand-overs (a cluster's replicas only).
    peers: Option<Arc<dyn ProbePeers>>,
    /// openraft's leader lease (`election_max_ms`): how long a hand-over pauses writes.
    lease: Duration,
    name: String,
}

/// Why a replica could not start.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("cannot open the Raft log: {0}")]
    Log(#[from] redb::Error),
    #[error("cannot create the data directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("Raft failed: {0}")]
    Raft(String),
}

fn raft_err(err: impl std::fmt::Display) -> ShardError {
    ShardError::Raft(err.to_string())
}

impl ShardReplica {
    /// Opens the replica's log and snapshot and starts Raft, the batcher and the history writer.
    pub async fn start<N>(
        settings: ShardSettings,
        network: N,
        messages: Arc<dyn MessageStore>,
        bus: Arc<dyn FanoutBus>,
    ) -> Result<Self, ShardError>
    where
        N: RaftNetworkFactory<TypeConfig>,
    {
        std::fs::create_dir_all(&settings.dir)?;
        let log = LogStore::open(&settings.log_file, &settings.log_group)
            .await
            .map_err(raft_err)?;
        let state = StateMachineStore::open(&settings.dir, settings.limits, messages.clone())
            .await
            .map_err(raft_err)?;
        let raft_config = Config {
            cluster_name: settings.name.clone(),
            heartbeat_interval: settings.timing.heartbeat_ms,
            election_timeout_min: settings.timing.election_min_ms,
            election_timeout_max: settings.timing.election_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(settings.snapshot_every),
            max_in_snapshot_log_to_keep: 1_000,
            max_payload_entries: MAX_PAYLOAD_ENTRIES,
            enable_elect: settings.elections.is_none(),
            ..Config::default()
        }
        .validate()
        .map_err(raft_err)?;
        let raft = Raft::new(
            settings.node_id,
            Arc::new(raft_config),
            network,
            log.clone(),
            state.clone(),
        )
        .await
        .map_err(raft_err)?;
        let peers = settings.elections.as_ref().map(|e| e.probes.clone());
        if let Some(elections) = settings.elections {
            tokio::spawn(election_guard::run(
                settings.node_id,
                elections.group,
                raft.clone(),
                log.clone(),
                elections.probes,
                settings.timing,
                settings.name.clone(),
            ));
        }
        let gate = HandOverGate::default();
        let (status, writer) = watch::channel(WriterStatus::default());
        let writer_task = tokio::spawn(history_writer::run(
            settings.node_id,
            raft.clone(),
            state.clone(),
            messages,
            bus,
            status,
            gate.clone(),
        ));
        tokio::spawn(crate::raft_metrics::follow(
            raft.clone(),
            settings.name.clone(),
        ));
        let (proposals, queue) = mpsc::unbounded_channel();
        tokio::spawn(batcher::run(
            raft.clone(),
            queue,
            writer.clone(),
            gate.clone(),
        ));
        Ok(ShardReplica {
            node_id: settings.node_id,
            raft,
            log,
            state,
            in_flight: Arc::new(Semaphore::new(settings.max_in_flight)),
            reads: Arc::default(),
            proposals,
            writer,
            writer_task: Arc::new(Mutex::new(Some(writer_task))),
            single: false,
            gate,
            peers,
            lease: Duration::from_millis(settings.timing.election_max_ms),
            name: settings.name,
        })
    }

    /// Makes this replica a group of one (the embedded node), waits until it leads and has
    /// applied every committed entry.
    pub async fn become_single_leader(&mut self) -> Result<(), ShardError> {
        self.single = true;
        self.initialize(BTreeMap::from([(self.node_id, BasicNode::default())]))
            .await?;
        self.raft
            .wait(Some(Duration::from_secs(30)))
            .state(ServerState::Leader, "the only member becomes leader")
            .await
            .map_err(raft_err)?;
        self.raft.ensure_linearizable().await.map_err(raft_err)?;
        Ok(())
    }

    /// Creates the group with these members; a group that exists already is left as it is.
    pub async fn initialize(&self, members: BTreeMap<NodeId, BasicNode>) -> Result<(), ShardError> {
        match self.raft.initialize(members).await {
            Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(err) => Err(raft_err(err)),
        }
    }

    pub fn raft(&self) -> &Raft<TypeConfig> {
        &self.raft
    }

    /// This replica's answer to a peer's election probe (`election.rs`).
    pub async fn probe_reply(&self) -> Result<ProbeReply, String> {
        election_guard::probe_reply(&self.raft, &mut self.log.clone()).await
    }

    /// Queues a submit for the log. Submits queued one after the other are sequenced in that
    /// order. Refused at once when this replica does not lead (with the leader it knows of).
    pub fn submit(
        &self,
        request: PublishRequest,
    ) -> Result<oneshot::Receiver<Result<Outcome, RouteError>>, RouteError> {
        self.check_leader()?;
        if self.state.pending_len() > MAX_PENDING_HISTORY {
            return Err(RouteError::Overloaded);
        }
        let permit = self
            .in_flight
            .clone()
            .try_acquire_owned()
            .map_err(|_| RouteError::Overloaded)?;
        let command = PublishCommand {
            channel_id: request.channel_id,
            author_id: request.author_id,
            nonce: request.nonce,
            text: request.text,
            message_id: Uuid::now_v7(),
            // Milliseconds: the precision every store keeps and the wire shows
            // (`chorus_protocol::timestamp`), so a message's time reads the same from all of them.
            proposed_at: Utc::now().trunc_subsecs(3),
            kind: request.kind,
            target_seq: request.target_seq,
            parent_seq: request.parent_seq,
            emoji: request.emoji,
            mentions: request.mentions,
            automatic: request.automatic,
        };
        let (reply, outcome) = oneshot::channel();
        self.proposals
            .send(Proposal {
                command,
                reply,
                permit,
            })
            .map_err(|_| RouteError::Unavailable("channel service stopped".into()))?;
        Ok(outcome)
    }

    /// Archives or unarchives a channel in the replicated state; returns once committed and
    /// applied, so every later submit is judged by it.
    pub async fn set_archived(&self, channel: Uuid, archived: bool) -> Result<(), RouteError> {
        self.gate.wait_open().await;
        self.check_leader()?;
        self.raft
            .client_write(Command::SetArchived {
                channel_id: channel,
                archived,
            })
            .await
            .map(|_| ())
            .map_err(|err| match err.forward_to_leader() {
                Some(forward) => RouteError::NotLeader {
                    leader_hint: forward.leader_id,
                },
                None => RouteError::Unavailable(err.to_string()),
            })
    }

    /// The events of a channel after a position, as the leader knows them.
    pub async fn replay(&self, channel: Uuid, after_seq: u64) -> Result<Replay, RouteError> {
        self.read_barrier().await?;
        Ok(match self.state.replay(channel, after_seq) {
            BufferedReplay::Events(events) => Replay::Events(events),
            BufferedReplay::TooOld { last_seq } => Replay::TooOld { last_seq },
        })
    }

    /// The newest seq of each channel, as the leader knows it.
    pub async fn last_seqs(&self, channels: &[Uuid]) -> Result<Vec<u64>, RouteError> {
        self.read_barrier().await?;
        Ok(self.state.last_seqs(channels))
    }

    /// Refuses when this replica does not lead, naming the leader it knows of.
    fn check_leader(&self) -> Result<(), RouteError> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        if m.state == ServerState::Leader && m.current_leader == Some(self.node_id) {
            Ok(())
        } else {
            Err(RouteError::NotLeader {
                leader_hint: m.current_leader.filter(|&l| l != self.node_id),
            })
        }
    }

    async fn read_barrier(&self) -> Result<(), RouteError> {
        // A read index renews the followers' leases: not while handing over (after it, this
        // replica most likely no longer leads and says so).
        self.gate.wait_open().await;
        self.check_leader()?;
        if self.single {
            return Ok(());
        }
        let raft = self.raft.clone();
        self.reads
            .wait(move || {
                let raft = raft.clone();
                async move {
                    raft.ensure_linearizable().await.map(drop).map_err(|err| {
                        match err.forward_to_leader() {
                            Some(forward) => RouteError::NotLeader {
                                leader_hint: forward.leader_id,
                            },
                            None => RouteError::Unavailable(err.to_string()),
                        }
                    })
                }
            })
            .await
    }

    /// Makes `voters` (preferred leader first) the group's voters, as the leader: adds the ones
    /// that are new as learners, waits until each caught up (or `catch_up` passes), then changes
    /// the voters through joint consensus, removing the ones left out. Done when the new voters
    /// are committed; asking again for the voters the group has is a no-op, so a move that was
    /// interrupted (a leader change, a lost reply) is simply asked for again.
    pub async fn reconfigure(
        &self,
        voters: &[(NodeId, std::net::SocketAddr)],
        catch_up: Duration,
    ) -> Result<(), RouteError> {
        self.gate.wait_open().await;
        self.check_leader()?;
        let unavailable = |err: &dyn std::fmt::Display| RouteError::Unavailable(err.to_string());
        let wanted: std::collections::BTreeSet<NodeId> = voters.iter().map(|(id, _)| *id).collect();
        let membership = self.raft.metrics().borrow().membership_config.clone();
        let membership = membership.membership();
        let current: std::collections::BTreeSet<NodeId> = membership.voter_ids().collect();
        if current == wanted && membership.get_joint_config().len() == 1 {
            return Ok(());
        }
        for (id, addr) in voters {
            if current.contains(id) {
                continue;
            }
            let added = self
                .raft
                .add_learner(*id, BasicNode::new(addr.to_string()), true);
            match tokio::time::timeout(catch_up, added).await {
                Err(_) => {
                    return Err(RouteError::Unavailable(format!(
                        "node {id} did not catch up within {catch_up:?}"
                    )));
                }
                Ok(Err(err)) => {
                    return Err(match err.forward_to_leader() {
                        Some(forward) => RouteError::NotLeader {
                            leader_hint: forward.leader_id,
                        },
                        None => unavailable(&err),
                    });
                }
                Ok(Ok(_)) => {}
            }
        }
        self.raft
            .change_membership(wanted, false)
            .await
            .map(|_| ())
            .map_err(|err| match err.forward_to_leader() {
                Some(forward) => RouteError::NotLeader {
                    leader_hint: forward.leader_id,
                },
                None => unavailable(&err),
            })
    }

    /// Hands this replica's leadership to the voter `target`, reachable at `addr`
    /// (`hand_over.rs`): the shard's writes pause for about a lease.
    pub async fn hand_over(&self, target: NodeId, addr: &str) -> HandOverOutcome {
        let Some(peers) = self.peers.clone() else {
            return HandOverOutcome::Kept("not a replica of a cluster".into());
        };
        let lease = self.lease;
        let ask = async move { peers.ask_to_stand(addr, lease).await };
        let outcome =
            hand_over::hand_over(&self.raft, self.node_id, &self.gate, target, lease, ask).await;
        match &outcome {
            HandOverOutcome::Moved { leader, paused } => tracing::info!(
                group = %self.name, to = target, leader = ?leader, paused_ms = paused.as_millis() as u64,
                "leadership handed over"
            ),
            HandOverOutcome::Kept(why) => tracing::info!(
                group = %self.name, to = target, %why, "leadership kept"
            ),
        }
        outcome
    }

    /// Answers a leader's hand-over: stand for election once the lease has run out.
    pub fn stand(&self) -> Result<(), String> {
        if self.peers.is_none() {
            return Err("not a replica of a cluster".into());
        }
        hand_over::stand_when_lease_ends(&self.raft, self.node_id, self.lease, self.name.clone())
    }

    /// What the leadership task needs of a shard this replica leads: its voters and the ones
    /// whose log matches this leader's. `None` when it does not lead.
    pub fn led_view(
        &self,
    ) -> Option<(
        std::collections::BTreeSet<NodeId>,
        std::collections::BTreeSet<NodeId>,
    )> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        if m.state != ServerState::Leader || m.current_leader != Some(self.node_id) {
            return None;
        }
        let voters: std::collections::BTreeSet<NodeId> =
            m.membership_config.membership().voter_ids().collect();
        let caught_up = voters
            .iter()
            .copied()
            .filter(|&v| {
                v == self.node_id
                    || hand_over::matches_leader(m.replication.as_ref(), m.last_log_index, v)
            })
            .collect();
        Some((voters, caught_up))
    }

    /// What the history writer has done (tests and status).
    pub fn written_through(&self) -> u64 {
        self.writer.borrow().written_through
    }

    /// Stops Raft and waits for the history writer to let go of the message store.
    pub async fn shutdown(&self) {
        if let Err(err) = self.raft.shutdown().await {
            tracing::warn!(error = %err, "raft shutdown");
        }
        let writer = self.writer_task.lock().take();
        if let Some(writer) = writer {
            let _ = writer.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RaftTiming;

    #[test]
    fn the_shipped_timings_are_accepted() {
        assert_eq!(RaftTiming::CLUSTER.check(), Ok(()));
        assert_eq!(RaftTiming::EMBEDDED.check(), Ok(()));
    }

    #[test]
    fn timings_that_would_unseat_live_leaders_or_split_votes_are_refused() {
        let timing = |heartbeat_ms, election_min_ms, election_max_ms| RaftTiming {
            heartbeat_ms,
            election_min_ms,
            election_max_ms,
        };
        assert!(
            timing(5, 100, 200)
                .check()
                .unwrap_err()
                .contains("at least 10")
        );
        assert!(timing(100, 150, 300).check().unwrap_err().contains("twice"));
        assert!(
            timing(100, 300, 300)
                .check()
                .unwrap_err()
                .contains("greater")
        );
        assert!(
            timing(u64::MAX, 1, 2).check().is_err(),
            "no overflow on absurd input"
        );
        assert_eq!(timing(100, 200, 300).check(), Ok(()));
    }
}
