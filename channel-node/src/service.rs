//! [`ChannelService`]: the channel router of an embedded node, backed by a local Raft group of one.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use chorus_cluster::{
    ChannelRouter, FanoutBus, PublishAck, PublishRequest, PublishTicket, Replay, RouteError,
};
use chorus_core::MessageStore;
use tracing::Instrument;
use uuid::Uuid;

use crate::log_file::LogFile;
use crate::network::NoPeers;
use crate::shard::{RaftTiming, ShardError, ShardReplica, ShardSettings};
use crate::state::{Outcome, StateLimits};

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
            snapshot_every: 2_000,
        }
    }
}

/// Why the channel service could not start.
pub type ChannelNodeError = ShardError;

/// Sequences messages of every channel through one Raft group of one member.
#[derive(Clone)]
pub struct ChannelService {
    shard: ShardReplica,
    /// The log file and its directory, for [`ChannelService::backup`].
    log_file: LogFile,
    dir: PathBuf,
}

impl ChannelService {
    /// Opens the log and the last snapshot, starts Raft, becomes leader of the single-member group
    /// and applies every committed entry before returning.
    pub async fn start(
        config: ChannelNodeConfig,
        messages: Arc<dyn MessageStore>,
        bus: Arc<dyn FanoutBus>,
    ) -> Result<Self, ChannelNodeError> {
        std::fs::create_dir_all(&config.data_dir).map_err(ShardError::from)?;
        let log_file = LogFile::open(&config.data_dir.join(crate::backup::LOG_FILE))
            .map_err(ShardError::from)?;
        let dir = config.data_dir.clone();
        let settings = ShardSettings {
            node_id: EMBEDDED_NODE_ID,
            log_file: log_file.clone(),
            log_group: String::new(),
            dir: config.data_dir,
            limits: config.limits,
            max_in_flight: config.max_in_flight,
            snapshot_every: config.snapshot_every,
            timing: RaftTiming::EMBEDDED,
            name: "chorus-channels".into(),
            elections: None,
        };
        let mut shard = ShardReplica::start(settings, NoPeers, messages, bus).await?;
        shard.become_single_leader().await?;
        Ok(ChannelService {
            shard,
            log_file,
            dir,
        })
    }

    /// Copies the Raft log and state snapshot, consistent with each other, into `dest` while the
    /// service runs (`backup.rs`). Everything acknowledged before the call is in the copy.
    pub async fn backup(&self, dest: &std::path::Path) -> Result<(), String> {
        let (log_file, dir, dest) = (self.log_file.clone(), self.dir.clone(), dest.to_owned());
        tokio::task::spawn_blocking(move || {
            crate::backup::copy_channel_state(log_file.db(), &dir, &dest)
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// Stops Raft. Entries already acknowledged are on disk; nothing else needs flushing.
    pub async fn shutdown(&self) {
        self.shard.shutdown().await;
    }
}

#[async_trait]
impl ChannelRouter for ChannelService {
    async fn submit(&self, request: PublishRequest) -> Result<PublishTicket, RouteError> {
        // From submit to commit, a child of the caller's span (a REST request's, say).
        let span = tracing::info_span!("channel_commit", channel_id = %request.channel_id, kind = ?request.kind);
        let outcome = self.shard.submit(request)?;
        Ok(PublishTicket::new(
            async move {
                match outcome.await {
                    Ok(outcome) => acknowledgement(outcome?),
                    Err(_) => Err(RouteError::Unavailable("raft stopped".into())),
                }
            }
            .instrument(span),
        ))
    }

    async fn replay(&self, channel: Uuid, after_seq: u64) -> Result<Replay, RouteError> {
        self.shard.replay(channel, after_seq).await
    }

    async fn last_seqs(&self, channels: &[Uuid]) -> Result<Vec<u64>, RouteError> {
        self.shard.last_seqs(channels).await
    }

    async fn set_archived(&self, channel: Uuid, archived: bool) -> Result<(), RouteError> {
        self.shard.set_archived(channel, archived).await
    }
}

/// What a submit's outcome means to its caller.
pub(crate) fn acknowledgement(outcome: Outcome) -> Result<PublishAck, RouteError> {
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
        Outcome::Archived => Err(RouteError::Archived),
        Outcome::Internal | Outcome::Batch(_) => Err(RouteError::Internal(
            "publish applied as an unexpected entry".into(),
        )),
    }
}
