//! [`ChannelService`]: the channel router of an embedded node, backed by a local Raft group.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chorus_cluster::{
    ChannelRouter, FanoutBus, PublishAck, PublishRequest, PublishTicket, Replay, RouteError,
};
use chorus_core::MessageStore;
use chrono::Utc;
use openraft::error::{InitializeError, RaftError};
use openraft::{BasicNode, Config, Raft, SnapshotPolicy};
use tokio::sync::{Semaphore, mpsc, oneshot};
use uuid::Uuid;

use crate::batcher::{self, Proposal};
use crate::log_store::LogStore;
use crate::network::NoPeers;
use crate::raft_types::TypeConfig;
use crate::state::{BufferedReplay, Outcome, PublishCommand, StateLimits};
use crate::state_machine::StateMachineStore;

/// The node id of the only member of an embedded node's group.
const EMBEDDED_NODE_ID: u64 = 1;

/// Settings of the channel service.
#[derive(Clone, Debug)]
pub struct ChannelNodeConfig {
    /// Directory for the Raft log (`raft.redb`) and state snapshots.
    pub data_dir: PathBuf,
    pub limits: StateLimits,
    /// Messages submitted but not yet committed, node-wide; beyond it submits fail fast with
    /// `RouteError::Overloaded` instead of queueing without bound.
    pub max_in_flight: usize,
    /// Take a state snapshot (and purge the log before it) every this many entries.
    pub snapshot_every: u64,
}

impl ChannelNodeConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        ChannelNodeConfig {
            data_dir: data_dir.into(),
            limits: StateLimits::default(),
            max_in_flight: 50_000,
            snapshot_every: 20_000,
        }
    }
}

/// Why the channel service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ChannelNodeError {
    #[error("cannot open the Raft log: {0}")]
    Log(#[from] redb::Error),
    #[error("cannot create the data directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("Raft failed to start: {0}")]
    Raft(String),
}

/// Sequences messages of every channel through one Raft group.
#[derive(Clone)]
pub struct ChannelService {
    raft: Raft<TypeConfig>,
    state: StateMachineStore,
    in_flight: Arc<Semaphore>,
    /// Submits on their way into the log (`batcher.rs`).
    proposals: mpsc::UnboundedSender<Proposal>,
}

impl ChannelService {
    /// Opens the log and the last snapshot, starts Raft, becomes leader of the single-member group
    /// and applies every committed entry before returning.
    pub async fn start(
        config: ChannelNodeConfig,
        messages: Arc<dyn MessageStore>,
        bus: Arc<dyn FanoutBus>,
    ) -> Result<Self, ChannelNodeError> {
        std::fs::create_dir_all(&config.data_dir)?;
        let log = LogStore::open(&config.data_dir.join("raft.redb"))?;
        let state = StateMachineStore::open(&config.data_dir, config.limits, messages, bus)
            .await
            .map_err(|err| ChannelNodeError::Raft(err.to_string()))?;
        let raft_config = Config {
            cluster_name: "chorus-channels".into(),
            heartbeat_interval: 250,
            election_timeout_min: 500,
            election_timeout_max: 1000,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every),
            max_in_snapshot_log_to_keep: 1_000,
            ..Config::default()
        }
        .validate()
        .map_err(|err| ChannelNodeError::Raft(err.to_string()))?;
        let raft = Raft::new(
            EMBEDDED_NODE_ID,
            Arc::new(raft_config),
            NoPeers,
            log,
            state.clone(),
        )
        .await
        .map_err(|err| ChannelNodeError::Raft(err.to_string()))?;

        let members = BTreeMap::from([(EMBEDDED_NODE_ID, BasicNode::default())]);
        match raft.initialize(members).await {
            Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
            Err(err) => return Err(ChannelNodeError::Raft(err.to_string())),
        }
        // Leader of a group of one, and every committed entry applied: history and sequences are
        // complete before anyone is served.
        raft.wait(Some(Duration::from_secs(30)))
            .state(
                openraft::ServerState::Leader,
                "embedded node becomes leader",
            )
            .await
            .map_err(|err| ChannelNodeError::Raft(err.to_string()))?;
        raft.ensure_linearizable()
            .await
            .map_err(|err| ChannelNodeError::Raft(err.to_string()))?;

        let (proposals, queue) = mpsc::unbounded_channel();
        tokio::spawn(batcher::run(raft.clone(), queue));
        Ok(ChannelService {
            raft,
            state,
            in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
            proposals,
        })
    }

    /// Stops Raft. Entries already acknowledged are on disk; nothing else needs flushing.
    pub async fn shutdown(&self) {
        if let Err(err) = self.raft.shutdown().await {
            tracing::warn!(error = %err, "raft shutdown");
        }
    }
}

#[async_trait]
impl ChannelRouter for ChannelService {
    async fn submit(&self, request: PublishRequest) -> Result<PublishTicket, RouteError> {
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
            proposed_at: Utc::now(),
            kind: request.kind,
            target_seq: request.target_seq,
            parent_seq: request.parent_seq,
            emoji: request.emoji,
            mentions: request.mentions,
        };
        // Queued now, so submits are sequenced in the order they are awaited. The queue holds
        // at most `max_in_flight` submits: each holds a permit until its outcome is known.
        let (reply, outcome) = oneshot::channel();
        self.proposals
            .send(Proposal { command, reply })
            .map_err(|_| RouteError::Unavailable("channel service stopped".into()))?;
        Ok(PublishTicket::new(async move {
            let _permit = permit;
            match outcome.await {
                Ok(outcome) => acknowledgement(outcome?),
                Err(_) => Err(RouteError::Unavailable("raft stopped".into())),
            }
        }))
    }

    async fn replay(&self, channel: Uuid, after_seq: u64) -> Result<Replay, RouteError> {
        Ok(match self.state.replay(channel, after_seq) {
            BufferedReplay::Events(events) => Replay::Events(events),
            BufferedReplay::TooOld { last_seq } => Replay::TooOld { last_seq },
        })
    }

    async fn last_seqs(&self, channels: &[Uuid]) -> Result<Vec<u64>, RouteError> {
        Ok(self.state.last_seqs(channels))
    }
}

/// What a submit's outcome means to its caller.
fn acknowledgement(outcome: Outcome) -> Result<PublishAck, RouteError> {
    match outcome {
        Outcome::Published(event) => Ok(PublishAck {
            message_id: event.id,
            seq: event.seq,
            created_at: event.created_at,
            duplicate: false,
        }),
        // A repeated nonce (the original), or nothing to sequence (the event already in effect).
        Outcome::Duplicate {
            message_id,
            seq,
            created_at,
        }
        | Outcome::Unchanged {
            message_id,
            seq,
            created_at,
        } => Ok(PublishAck {
            message_id,
            seq,
            created_at,
            duplicate: true,
        }),
        // Decided by the state machine, so every replica agrees: no seq was taken.
        Outcome::Rejected(why) => Err(RouteError::Rejected(why)),
        Outcome::Internal | Outcome::Batch(_) => Err(RouteError::Internal(
            "publish applied as an unexpected entry".into(),
        )),
    }
}
