//! The channels' replicated state: a deterministic state machine with no I/O.
//!
//! Every replica applies the same [`Command`]s in the same order and reaches the same state, so
//! all decisions here depend only on the command and the state: sequence numbers, timestamps
//! (kept monotonic per channel), nonce deduplication, whether the seqs an edit, deletion,
//! reaction or thread reply refers to exist (every replica rejects the same ones), and — where the
//! replay buffer still holds the events concerned — whether a thread parent is a live top-level
//! message and whether a reaction is already in the state asked for. The replay buffer is part of
//! the state for this: every replica holds the same newest events, and a restored one refills it
//! from history before applying anything. The Raft glue in `state_machine.rs` feeds it committed
//! entries and writes what it returns to storage and to the bus.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use chorus_protocol::{EventKind, MessageEvent};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How much each channel remembers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateLimits {
    /// Recent messages kept per channel for resume. Older gaps are answered with "resync".
    pub replay_buffer: usize,
    /// Recent (author, nonce) pairs remembered per channel for deduplication.
    pub dedup_window: usize,
}

impl Default for StateLimits {
    fn default() -> Self {
        StateLimits {
            replay_buffer: 512,
            dedup_window: 1024,
        }
    }
}

/// A log entry's payload.
///
/// The two variants carry the same event and differ in the rules it is applied by. A log must
/// replay to the same seqs after an upgrade, so entries keep the rules they were proposed under:
/// a new check comes with a new variant, never as a change to an old one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Checked against the channel's newest seq only: the rules of entries logged before the
    /// replay-buffer checks existed.
    Publish(PublishCommand),
    /// Checked against the newest seq and, where the replay buffer shows them, against the events
    /// it names: a thread reply needs a live top-level parent, and a reaction already in the state
    /// asked for changes nothing ([`Outcome::Unchanged`]).
    PublishChecked(PublishCommand),
    /// Several events, applied in order by the rules of `PublishChecked`; the outcome is an
    /// [`Outcome::Batch`] with one outcome per event. What the channel service proposes: a log
    /// entry is one fsync, so submits that arrive while one is being written share the next.
    PublishBatch(Vec<PublishCommand>),
    /// The shard's leader has written every event sequenced at or before log index `through` to
    /// the message store (durably): replicas drop them from their pending history
    /// (`pending_history.rs`). Changes nothing in the channels' state.
    HistoryWritten { through: u64 },
    /// The channel was archived (or unarchived) in the metadata store: from this entry on, every
    /// event proposed to it is refused ([`Outcome::Archived`]) until it is unarchived. Checked
    /// where events are sequenced, so that no send the gateway let through before hearing of the
    /// archive lands after it: the archive's place in the channel's order decides, not timing.
    SetArchived { channel_id: Uuid, archived: bool },
}

/// An event to sequence: a message, or an edit, deletion or reaction of one. `message_id` and
/// `proposed_at` are chosen by the proposer so that every replica stores the same values.
///
/// The fields after `proposed_at` came with event kinds; they default so that log entries and
/// snapshots written before them still decode (as plain messages).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishCommand {
    pub channel_id: Uuid,
    pub author_id: Uuid,
    pub nonce: String,
    pub text: String,
    pub message_id: Uuid,
    pub proposed_at: DateTime<Utc>,
    #[serde(default)]
    pub kind: EventKind,
    #[serde(default)]
    pub target_seq: Option<u64>,
    #[serde(default)]
    pub parent_seq: Option<u64>,
    #[serde(default)]
    pub emoji: Option<String>,
    #[serde(default)]
    pub mentions: Vec<Uuid>,
    /// A focus mode auto-reply (`MessageEvent::automatic`). Sequenced like any message, so
    /// entries logged before it decode as `false` and replay to the same seqs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub automatic: bool,
}

/// The result of applying one entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// A new message was sequenced.
    Published(MessageEvent),
    /// The (author, nonce) pair was already committed; this is the original.
    Duplicate {
        message_id: Uuid,
        seq: u64,
        created_at: DateTime<Utc>,
    },
    /// The command names a target or parent the channel does not have, or one its kind cannot
    /// have; nothing changed and no seq was consumed. The text says why, for the caller.
    Rejected(String),
    /// The event would change nothing: its author's reaction is already added (or already taken
    /// back), as the replay buffer shows. No seq was consumed, nothing is stored or published;
    /// the fields are those of the event that put the reaction in that state.
    Unchanged {
        message_id: Uuid,
        seq: u64,
        created_at: DateTime<Utc>,
    },
    /// A Raft-internal entry (blank or membership) with no application effect.
    Internal,
    /// The outcomes of a [`Command::PublishBatch`], in its order.
    Batch(Vec<Outcome>),
    /// The channel is archived ([`Command::SetArchived`]); nothing changed and no seq was consumed.
    Archived,
}

/// Events after a position, from the replay buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BufferedReplay {
    Events(Vec<Arc<MessageEvent>>),
    TooOld { last_seq: u64 },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct NonceRecord {
    message_id: Uuid,
    seq: u64,
    created_at: DateTime<Utc>,
}

/// One channel's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct ChannelState {
    last_seq: u64,
    last_created_at: Option<DateTime<Utc>>,
    /// The newest messages, oldest first, at most `replay_buffer` of them.
    recent: VecDeque<Arc<MessageEvent>>,
    nonces: HashMap<(Uuid, String), NonceRecord>,
    /// Insertion order of `nonces`, for eviction of the oldest.
    nonce_order: VecDeque<(Uuid, String)>,
    /// Read-only: events are refused ([`Command::SetArchived`]).
    archived: bool,
}

/// The state of every channel a shard sequences.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelsState {
    limits: StateLimits,
    channels: HashMap<Uuid, ChannelState>,
}

/// The part of the state written to a snapshot. Replay buffers are not in it: they are reloaded
/// from the message store, which is made durable before any snapshot is taken.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateSnapshot {
    pub channels: Vec<ChannelSnapshot>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelSnapshot {
    pub channel_id: Uuid,
    pub last_seq: u64,
    pub last_created_at: Option<DateTime<Utc>>,
    nonces: Vec<(Uuid, String, NonceRecord)>,
    /// Defaults so that snapshots taken before archiving was sequenced still decode.
    #[serde(default)]
    pub archived: bool,
}

/// Checks a command's references against the channel's newest seq. Only what the state machine
/// knows is checked — that the seqs exist; whether a target is a message of the right author is
/// the caller's business (it reads history), and would make the state machine depend on it.
fn validate(
    kind: EventKind,
    target_seq: Option<u64>,
    parent_seq: Option<u64>,
    last_seq: u64,
) -> Result<(), String> {
    let exists = |seq: u64| (1..=last_seq).contains(&seq);
    match (kind, target_seq) {
        (EventKind::Message, Some(_)) => {
            return Err("a message has no target_seq".into());
        }
        (EventKind::Message, None) => {}
        (_, None) => return Err(format!("{} needs a target_seq", kind.as_str())),
        (_, Some(target)) if !exists(target) => {
            return Err(format!(
                "target_seq {target} is not an event of this channel (last seq {last_seq})"
            ));
        }
        (_, Some(_)) => {}
    }
    match parent_seq {
        Some(_) if kind != EventKind::Message => {
            Err(format!("{} cannot have a parent_seq", kind.as_str()))
        }
        Some(parent) if !exists(parent) => Err(format!(
            "parent_seq {parent} is not an event of this channel (last seq {last_seq})"
        )),
        _ => Ok(()),
    }
}

/// Checks a command against the events the replay buffer still holds (`recent`, oldest first).
/// What the buffer no longer holds is not judged: the range check of [`validate`] is all there is.
fn check_buffered(
    recent: &VecDeque<Arc<MessageEvent>>,
    kind: EventKind,
    (target_seq, parent_seq): (Option<u64>, Option<u64>),
    author: Uuid,
    emoji: Option<&str>,
) -> Result<(), Outcome> {
    match (kind, target_seq, parent_seq) {
        (EventKind::ReactionAdd | EventKind::ReactionRemove, Some(target), _) => {
            // The newest add or remove of this reaction says whether it is in effect.
            let last = recent
                .iter()
                .rev()
                .take_while(|e| e.seq > target)
                .find(|e| {
                    matches!(e.kind, EventKind::ReactionAdd | EventKind::ReactionRemove)
                        && e.target_seq == Some(target)
                        && e.author_id == author
                        && e.emoji.as_deref() == emoji
                });
            match last {
                Some(event) if event.kind == kind => Err(Outcome::Unchanged {
                    message_id: event.id,
                    seq: event.seq,
                    created_at: event.created_at,
                }),
                _ => Ok(()),
            }
        }
        (EventKind::Message, _, Some(parent)) => {
            let Ok(at) = recent.binary_search_by_key(&parent, |e| e.seq) else {
                return Ok(());
            };
            let event = &recent[at];
            let why = if event.kind != EventKind::Message {
                format!(
                    "parent_seq {parent} is not a message (kind {})",
                    event.kind.as_str()
                )
            } else if event.parent_seq.is_some() {
                format!("parent_seq {parent} is a thread reply; threads are one level deep")
            } else if recent
                .range(at + 1..)
                .any(|e| e.kind == EventKind::Delete && e.target_seq == Some(parent))
            {
                format!("parent_seq {parent} was deleted")
            } else {
                return Ok(());
            };
            Err(Outcome::Rejected(why))
        }
        _ => Ok(()),
    }
}

impl ChannelsState {
    pub fn new(limits: StateLimits) -> Self {
        ChannelsState {
            limits,
            channels: HashMap::new(),
        }
    }

    /// Applies one command.
    pub fn apply(&mut self, command: Command) -> Outcome {
        match command {
            Command::Publish(publish) => self.publish(publish, false),
            Command::PublishChecked(publish) => self.publish(publish, true),
            Command::PublishBatch(batch) => Outcome::Batch(
                batch
                    .into_iter()
                    .map(|publish| self.publish(publish, true))
                    .collect(),
            ),
            Command::HistoryWritten { .. } => Outcome::Internal,
            Command::SetArchived {
                channel_id,
                archived,
            } => {
                match self.channels.get_mut(&channel_id) {
                    Some(channel) => channel.archived = archived,
                    // A channel with no event yet needs an entry only to remember the archive.
                    None if archived => {
                        self.channels.insert(
                            channel_id,
                            ChannelState {
                                archived,
                                ..ChannelState::default()
                            },
                        );
                    }
                    None => {}
                }
                Outcome::Internal
            }
        }
    }

    fn publish(&mut self, cmd: PublishCommand, check_buffer: bool) -> Outcome {
        let limits = self.limits;
        let key = (cmd.author_id, cmd.nonce);
        let existing = self.channels.get(&cmd.channel_id);
        // A retry of something already committed is answered before validation: its target
        // existed then, and it still does (seqs only grow).
        if let Some(record) = existing.and_then(|c| c.nonces.get(&key)) {
            return Outcome::Duplicate {
                message_id: record.message_id,
                seq: record.seq,
                created_at: record.created_at,
            };
        }
        if existing.is_some_and(|c| c.archived) {
            return Outcome::Archived;
        }
        let last_seq = existing.map_or(0, |c| c.last_seq);
        if let Err(why) = validate(cmd.kind, cmd.target_seq, cmd.parent_seq, last_seq) {
            // Not even an empty channel entry: a rejection leaves the state exactly as it was.
            return Outcome::Rejected(why);
        }
        if check_buffer && let Some(channel) = existing {
            // A no-op or a rejection: no seq, no nonce remembered, nothing changed.
            let refs = (cmd.target_seq, cmd.parent_seq);
            let emoji = cmd.emoji.as_deref();
            if let Err(outcome) = check_buffered(&channel.recent, cmd.kind, refs, key.0, emoji) {
                return outcome;
            }
        }
        let channel = self.channels.entry(cmd.channel_id).or_default();
        // Clocks of proposers may disagree; a channel's timestamps never go backwards.
        let created_at = match channel.last_created_at {
            Some(last) if last > cmd.proposed_at => last,
            _ => cmd.proposed_at,
        };
        channel.last_seq += 1;
        channel.last_created_at = Some(created_at);
        let event = MessageEvent {
            channel_id: cmd.channel_id,
            seq: channel.last_seq,
            id: cmd.message_id,
            author_id: key.0,
            text: cmd.text,
            created_at,
            nonce: key.1.clone(),
            kind: cmd.kind,
            target_seq: cmd.target_seq,
            parent_seq: cmd.parent_seq,
            emoji: cmd.emoji,
            mentions: cmd.mentions,
            automatic: cmd.automatic,
        };
        channel.nonces.insert(
            key.clone(),
            NonceRecord {
                message_id: event.id,
                seq: event.seq,
                created_at,
            },
        );
        channel.nonce_order.push_back(key);
        while channel.nonce_order.len() > limits.dedup_window {
            if let Some(old) = channel.nonce_order.pop_front() {
                channel.nonces.remove(&old);
            }
        }
        channel.recent.push_back(Arc::new(event.clone()));
        while channel.recent.len() > limits.replay_buffer {
            channel.recent.pop_front();
        }
        Outcome::Published(event)
    }

    /// The newest sequence number of a channel (0 if it has no event).
    pub fn last_seq(&self, channel: Uuid) -> u64 {
        self.channels.get(&channel).map_or(0, |c| c.last_seq)
    }

    /// The events of `channel` after `after_seq`, if the buffer still holds all of them.
    pub fn replay(&self, channel: Uuid, after_seq: u64) -> BufferedReplay {
        let Some(state) = self.channels.get(&channel) else {
            return BufferedReplay::Events(Vec::new());
        };
        if after_seq >= state.last_seq {
            return BufferedReplay::Events(Vec::new());
        }
        let oldest = state.recent.front().map_or(state.last_seq + 1, |m| m.seq);
        if after_seq + 1 < oldest {
            return BufferedReplay::TooOld {
                last_seq: state.last_seq,
            };
        }
        let skip = (after_seq + 1 - oldest) as usize;
        BufferedReplay::Events(state.recent.iter().skip(skip).cloned().collect())
    }

    /// Channels whose buffers must be refilled from the message store after a restore.
    pub fn channels_to_refill(&self) -> Vec<(Uuid, u64)> {
        self.channels
            .iter()
            .filter(|(_, c)| c.recent.is_empty() && c.last_seq > 0)
            .map(|(id, c)| (*id, c.last_seq))
            .collect()
    }

    /// Refills a channel's replay buffer with its newest stored messages (oldest first).
    pub fn refill(&mut self, channel: Uuid, messages: Vec<MessageEvent>) {
        let limit = self.limits.replay_buffer;
        if let Some(state) = self.channels.get_mut(&channel) {
            let skip = messages.len().saturating_sub(limit);
            state.recent = messages
                .into_iter()
                .skip(skip)
                .filter(|m| m.seq <= state.last_seq)
                .map(Arc::new)
                .collect();
        }
    }

    /// The replay buffer capacity per channel.
    pub fn limits(&self) -> StateLimits {
        self.limits
    }

    pub fn snapshot(&self) -> StateSnapshot {
        let mut channels: Vec<ChannelSnapshot> = self
            .channels
            .iter()
            .map(|(id, c)| ChannelSnapshot {
                channel_id: *id,
                last_seq: c.last_seq,
                last_created_at: c.last_created_at,
                archived: c.archived,
                nonces: c
                    .nonce_order
                    .iter()
                    .filter_map(|key| {
                        c.nonces
                            .get(key)
                            .map(|record| (key.0, key.1.clone(), record.clone()))
                    })
                    .collect(),
            })
            .collect();
        channels.sort_by_key(|c| c.channel_id);
        StateSnapshot { channels }
    }

    /// The state a snapshot describes, with empty replay buffers (see [`Self::refill`]).
    pub fn restore(limits: StateLimits, snapshot: StateSnapshot) -> Self {
        let mut channels = HashMap::with_capacity(snapshot.channels.len());
        for c in snapshot.channels {
            let mut state = ChannelState {
                last_seq: c.last_seq,
                last_created_at: c.last_created_at,
                archived: c.archived,
                ..ChannelState::default()
            };
            let mut seen = HashSet::new();
            for (author, nonce, record) in c.nonces {
                let key = (author, nonce);
                if seen.insert(key.clone()) {
                    state.nonce_order.push_back(key.clone());
                    state.nonces.insert(key, record);
                }
            }
            channels.insert(c.channel_id, state);
        }
        ChannelsState { limits, channels }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message_command(channel: Uuid, author: Uuid, nonce: &str, at: i64) -> PublishCommand {
        PublishCommand {
            channel_id: channel,
            author_id: author,
            nonce: nonce.into(),
            text: format!("text {nonce}"),
            message_id: Uuid::new_v4(),
            proposed_at: DateTime::from_timestamp(at, 0).unwrap(),
            kind: EventKind::Message,
            target_seq: None,
            parent_seq: None,
            emoji: None,
            mentions: Vec::new(),
            automatic: false,
        }
    }

    /// What the channel service proposes.
    fn publish(channel: Uuid, author: Uuid, nonce: &str, at: i64) -> Command {
        Command::PublishChecked(message_command(channel, author, nonce, at))
    }

    /// An event of `kind` acting on `target` (a reaction is `tada`).
    fn acting_command(
        channel: Uuid,
        author: Uuid,
        nonce: &str,
        kind: EventKind,
        target: u64,
    ) -> PublishCommand {
        PublishCommand {
            kind,
            target_seq: Some(target),
            emoji: matches!(kind, EventKind::ReactionAdd | EventKind::ReactionRemove)
                .then(|| "tada".to_string()),
            ..message_command(channel, author, nonce, 0)
        }
    }

    fn acting(channel: Uuid, author: Uuid, nonce: &str, kind: EventKind, target: u64) -> Command {
        Command::PublishChecked(acting_command(channel, author, nonce, kind, target))
    }

    /// A reaction with `emoji` by `author` on `target`.
    fn reaction(
        channel: Uuid,
        author: Uuid,
        nonce: &str,
        kind: EventKind,
        target: u64,
        emoji: &str,
    ) -> Command {
        Command::PublishChecked(PublishCommand {
            emoji: Some(emoji.into()),
            ..acting_command(channel, author, nonce, kind, target)
        })
    }

    fn reply_command(channel: Uuid, author: Uuid, nonce: &str, parent: u64) -> PublishCommand {
        PublishCommand {
            parent_seq: Some(parent),
            ..message_command(channel, author, nonce, 0)
        }
    }

    fn reply(channel: Uuid, author: Uuid, nonce: &str, parent: u64) -> Command {
        Command::PublishChecked(reply_command(channel, author, nonce, parent))
    }

    fn rejected(outcome: Outcome) -> String {
        match outcome {
            Outcome::Rejected(why) => why,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    fn published(outcome: Outcome) -> MessageEvent {
        match outcome {
            Outcome::Published(event) => event,
            other => panic!("expected a new message, got {other:?}"),
        }
    }

    #[test]
    fn sequences_are_per_channel_and_gapless() {
        let mut state = ChannelsState::new(StateLimits::default());
        let (a, b, user) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(published(state.apply(publish(a, user, "1", 0))).seq, 1);
        assert_eq!(published(state.apply(publish(a, user, "2", 0))).seq, 2);
        assert_eq!(published(state.apply(publish(b, user, "3", 0))).seq, 1);
        assert_eq!((state.last_seq(a), state.last_seq(b)), (2, 1));
    }

    #[test]
    fn a_repeated_nonce_returns_the_original() {
        let mut state = ChannelsState::new(StateLimits::default());
        let (channel, alice, bob) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let first = published(state.apply(publish(channel, alice, "n", 0)));
        assert_eq!(
            state.apply(publish(channel, alice, "n", 5)),
            Outcome::Duplicate {
                message_id: first.id,
                seq: 1,
                created_at: first.created_at
            }
        );
        // Another author may use the same nonce.
        assert_eq!(published(state.apply(publish(channel, bob, "n", 0))).seq, 2);
    }

    #[test]
    fn the_dedup_window_forgets_the_oldest_nonces() {
        let limits = StateLimits {
            replay_buffer: 8,
            dedup_window: 2,
        };
        let mut state = ChannelsState::new(limits);
        let (channel, user) = (Uuid::new_v4(), Uuid::new_v4());
        for nonce in ["a", "b", "c"] {
            published(state.apply(publish(channel, user, nonce, 0)));
        }
        assert!(matches!(
            state.apply(publish(channel, user, "c", 0)),
            Outcome::Duplicate { seq: 3, .. }
        ));
        assert_eq!(
            published(state.apply(publish(channel, user, "a", 0))).seq,
            4
        );
    }

    #[test]
    fn timestamps_never_go_backwards_in_a_channel() {
        let mut state = ChannelsState::new(StateLimits::default());
        let (channel, user) = (Uuid::new_v4(), Uuid::new_v4());
        let late = published(state.apply(publish(channel, user, "1", 100)));
        let early = published(state.apply(publish(channel, user, "2", 50)));
        assert_eq!(early.created_at, late.created_at);
    }

    #[test]
    fn replay_serves_the_buffer_and_reports_older_gaps() {
        let limits = StateLimits {
            replay_buffer: 3,
            dedup_window: 16,
        };
        let mut state = ChannelsState::new(limits);
        let (channel, user) = (Uuid::new_v4(), Uuid::new_v4());
        for n in 1..=5 {
            published(state.apply(publish(channel, user, &n.to_string(), 0)));
        }
        let seqs = |replay: BufferedReplay| match replay {
            BufferedReplay::Events(events) => events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            BufferedReplay::TooOld { .. } => panic!("expected events"),
        };
        assert_eq!(seqs(state.replay(channel, 2)), vec![3, 4, 5]);
        assert_eq!(seqs(state.replay(channel, 4)), vec![5]);
        assert_eq!(seqs(state.replay(channel, 5)), Vec::<u64>::new());
        assert_eq!(seqs(state.replay(channel, 9)), Vec::<u64>::new());
        assert_eq!(
            state.replay(channel, 1),
            BufferedReplay::TooOld { last_seq: 5 }
        );
        assert_eq!(seqs(state.replay(Uuid::new_v4(), 0)), Vec::<u64>::new());
    }

    #[test]
    fn an_archived_channel_refuses_events_until_unarchived() {
        let (channel, other, author) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut state = ChannelsState::new(StateLimits::default());
        published(state.apply(publish(channel, author, "n1", 1)));
        let archive = |archived| Command::SetArchived {
            channel_id: channel,
            archived,
        };
        assert_eq!(state.apply(archive(true)), Outcome::Internal);
        assert_eq!(
            state.apply(publish(channel, author, "n2", 2)),
            Outcome::Archived
        );
        assert_eq!(
            state.apply(acting(channel, author, "r1", EventKind::ReactionAdd, 1)),
            Outcome::Archived,
            "every kind of event"
        );
        // A retry of what was committed before the archive still gets its acknowledgement.
        assert!(matches!(
            state.apply(publish(channel, author, "n1", 3)),
            Outcome::Duplicate { seq: 1, .. }
        ));
        assert_eq!(state.last_seq(channel), 1, "no seq was consumed");
        published(state.apply(publish(other, author, "n3", 4)));
        // The archive survives a snapshot, then unarchiving makes the channel writable again.
        let mut state = ChannelsState::new(StateLimits::default());
        state.apply(archive(true));
        let mut restored = ChannelsState::restore(StateLimits::default(), state.snapshot());
        assert_eq!(
            restored.apply(publish(channel, author, "n4", 5)),
            Outcome::Archived
        );
        restored.apply(archive(false));
        assert_eq!(
            published(restored.apply(publish(channel, author, "n4", 6))).seq,
            1
        );
    }

    #[test]
    fn unarchiving_a_channel_with_no_events_leaves_no_entry() {
        let mut state = ChannelsState::new(StateLimits::default());
        state.apply(Command::SetArchived {
            channel_id: Uuid::new_v4(),
            archived: false,
        });
        assert!(state.snapshot().channels.is_empty());
    }

    #[test]
    fn a_snapshot_from_before_archiving_decodes_as_not_archived() {
        let json = r#"{"channels":[{"channel_id":"00000000-0000-0000-0000-000000000001",
            "last_seq":3,"last_created_at":null,"nonces":[]}]}"#;
        let snapshot: StateSnapshot = serde_json::from_str(json).unwrap();
        assert!(!snapshot.channels[0].archived);
    }

    #[test]
    fn snapshot_restore_keeps_sequences_and_nonces() {
        let mut state = ChannelsState::new(StateLimits::default());
        let (channel, user) = (Uuid::new_v4(), Uuid::new_v4());
        let mut events = Vec::new();
        for n in 1..=3 {
            events.push(published(state.apply(publish(
                channel,
                user,
                &n.to_string(),
                n,
            ))));
        }
        let json = serde_json::to_string(&state.snapshot()).unwrap();
        let mut restored =
            ChannelsState::restore(StateLimits::default(), serde_json::from_str(&json).unwrap());
        assert_eq!(restored.channels_to_refill(), vec![(channel, 3)]);
        restored.refill(channel, events);
        assert_eq!(restored, state);
        assert!(matches!(
            restored.apply(publish(channel, user, "2", 9)),
            Outcome::Duplicate { seq: 2, .. }
        ));
        assert_eq!(
            published(restored.apply(publish(channel, user, "4", 9))).seq,
            4
        );
    }

    #[test]
    fn every_kind_takes_the_next_seq_and_keeps_its_fields() {
        let mut state = ChannelsState::new(StateLimits::default());
        let (channel, alice, bob) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        published(state.apply(publish(channel, alice, "m", 0)));
        let edit = published(state.apply(acting(channel, alice, "e", EventKind::Edit, 1)));
        let reaction = published(state.apply(acting(channel, bob, "r", EventKind::ReactionAdd, 1)));
        let unreact =
            published(state.apply(acting(channel, bob, "u", EventKind::ReactionRemove, 1)));
        let answer = published(state.apply(reply(channel, bob, "t", 1)));
        let delete = published(state.apply(acting(channel, alice, "d", EventKind::Delete, 1)));
        let seqs: Vec<u64> = [&edit, &reaction, &unreact, &answer, &delete]
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, vec![2, 3, 4, 5, 6]);
        assert_eq!((edit.kind, edit.target_seq), (EventKind::Edit, Some(1)));
        assert_eq!(
            (reaction.kind, reaction.emoji.as_deref(), reaction.author_id),
            (EventKind::ReactionAdd, Some("tada"), bob)
        );
        assert_eq!(
            (answer.kind, answer.parent_seq),
            (EventKind::Message, Some(1))
        );
        assert_eq!(delete.kind, EventKind::Delete);
        // Every kind is replayed like a message.
        match state.replay(channel, 1) {
            BufferedReplay::Events(events) => assert_eq!(events.len(), 5),
            other => panic!("expected events, got {other:?}"),
        }
    }

    #[test]
    fn mentions_are_carried_to_the_event() {
        let mut state = ChannelsState::new(StateLimits::default());
        let (channel, alice, bob) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let event = published(state.apply(Command::Publish(PublishCommand {
            mentions: vec![bob],
            ..message_command(channel, alice, "m", 0)
        })));
        assert_eq!(event.mentions, vec![bob]);
    }

    #[test]
    fn bad_targets_are_rejected_without_consuming_a_seq() {
        let mut state = ChannelsState::new(StateLimits::default());
        let (channel, user) = (Uuid::new_v4(), Uuid::new_v4());
        // On a channel with no event, even seq 1 does not exist — and no channel entry appears.
        let empty = state.clone();
        assert!(matches!(
            state.apply(acting(channel, user, "x", EventKind::Edit, 1)),
            Outcome::Rejected(_)
        ));
        assert_eq!(state, empty);

        published(state.apply(publish(channel, user, "1", 0)));
        published(state.apply(publish(channel, user, "2", 0)));
        let before = state.clone();
        let bad = [
            acting(channel, user, "a", EventKind::Edit, 3),
            acting(channel, user, "b", EventKind::Delete, 0),
            acting(channel, user, "c", EventKind::ReactionAdd, u64::MAX),
            Command::PublishChecked(PublishCommand {
                kind: EventKind::ReactionRemove,
                ..message_command(channel, user, "d", 0)
            }),
            reply(channel, user, "e", 3),
            reply(channel, user, "f", 0),
            Command::PublishChecked(PublishCommand {
                parent_seq: Some(1),
                ..acting_command(channel, user, "g", EventKind::Edit, 1)
            }),
            Command::PublishChecked(PublishCommand {
                target_seq: Some(1),
                ..message_command(channel, user, "h", 0)
            }),
        ];
        for command in bad {
            let outcome = state.apply(command.clone());
            assert!(
                matches!(&outcome, Outcome::Rejected(why) if !why.is_empty()),
                "{command:?} gave {outcome:?}"
            );
        }
        assert_eq!(state, before, "a rejection changes nothing");
        // The rejected nonces were not remembered: they may be used for a valid event.
        let edit = published(state.apply(acting(channel, user, "a", EventKind::Edit, 2)));
        assert_eq!(edit.seq, 3);
        assert_eq!(published(state.apply(reply(channel, user, "e", 2))).seq, 4);
    }

    #[test]
    fn a_repeated_nonce_of_any_kind_returns_the_original() {
        let mut state = ChannelsState::new(StateLimits::default());
        let (channel, user) = (Uuid::new_v4(), Uuid::new_v4());
        published(state.apply(publish(channel, user, "m", 0)));
        let reaction =
            published(state.apply(acting(channel, user, "r", EventKind::ReactionAdd, 1)));
        assert_eq!(
            state.apply(acting(channel, user, "r", EventKind::ReactionAdd, 1)),
            Outcome::Duplicate {
                message_id: reaction.id,
                seq: 2,
                created_at: reaction.created_at
            }
        );
        // The nonce is the key, whatever the retry carries.
        assert!(matches!(
            state.apply(publish(channel, user, "r", 0)),
            Outcome::Duplicate { seq: 2, .. }
        ));
        assert_eq!(state.last_seq(channel), 2);
    }

    #[test]
    fn commands_logged_before_event_kinds_still_decode() {
        let channel = Uuid::new_v4();
        let json = format!(
            r#"{{"Publish":{{"channel_id":"{channel}","author_id":"{channel}","nonce":"n",
                "text":"hi","message_id":"{channel}","proposed_at":"2024-01-01T00:00:00Z"}}}}"#
        );
        let Ok(Command::Publish(cmd)) = serde_json::from_str::<Command>(&json) else {
            panic!("an old entry decodes as a Publish command");
        };
        assert_eq!(cmd.kind, EventKind::Message);
        assert_eq!(
            (
                cmd.target_seq,
                cmd.parent_seq,
                cmd.emoji.as_deref(),
                cmd.mentions.len()
            ),
            (None, None, None, 0)
        );
        let mut state = ChannelsState::new(StateLimits::default());
        let event = published(state.apply(Command::Publish(cmd)));
        assert_eq!((event.seq, event.kind), (1, EventKind::Message));
    }

    #[test]
    fn a_reaction_already_in_effect_changes_nothing() {
        use EventKind::{ReactionAdd as Add, ReactionRemove as Remove};
        let mut state = ChannelsState::new(StateLimits::default());
        let (channel, alice, bob) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        published(state.apply(publish(channel, alice, "m1", 0)));
        published(state.apply(publish(channel, alice, "m2", 0)));
        let added = published(state.apply(reaction(channel, bob, "r1", Add, 1, "tada")));

        // Two racing requests both passed the API's check: the second one is answered, not sequenced.
        let before = state.clone();
        assert_eq!(
            state.apply(reaction(channel, bob, "r2", Add, 1, "tada")),
            Outcome::Unchanged {
                message_id: added.id,
                seq: added.seq,
                created_at: added.created_at
            }
        );
        assert_eq!(state, before, "no seq, no event, no nonce remembered");

        // Another author, emoji or message is another reaction.
        assert_eq!(
            published(state.apply(reaction(channel, alice, "r3", Add, 1, "tada"))).seq,
            4
        );
        assert_eq!(
            published(state.apply(reaction(channel, bob, "r4", Add, 1, "heart"))).seq,
            5
        );
        assert_eq!(
            published(state.apply(reaction(channel, bob, "r5", Add, 2, "tada"))).seq,
            6
        );

        // Taking it back twice: the second is unchanged; adding it again after that is a change.
        let removed = published(state.apply(reaction(channel, bob, "u1", Remove, 1, "tada")));
        assert!(matches!(
            state.apply(reaction(channel, bob, "u2", Remove, 1, "tada")),
            Outcome::Unchanged { seq, .. } if seq == removed.seq
        ));
        assert_eq!(
            published(state.apply(reaction(channel, bob, "r6", Add, 1, "tada"))).seq,
            removed.seq + 1
        );
        assert_eq!(state.last_seq(channel), 8);
    }

    #[test]
    fn reactions_the_buffer_no_longer_shows_are_sequenced() {
        use EventKind::{ReactionAdd as Add, ReactionRemove as Remove};
        let limits = StateLimits {
            replay_buffer: 2,
            dedup_window: 16,
        };
        let mut state = ChannelsState::new(limits);
        let (channel, alice, bob) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        published(state.apply(publish(channel, alice, "m1", 0)));
        published(state.apply(reaction(channel, bob, "r1", Add, 1, "tada")));
        published(state.apply(reaction(channel, bob, "u1", Remove, 1, "tada")));
        published(state.apply(publish(channel, alice, "m4", 0)));
        published(state.apply(publish(channel, alice, "m5", 0)));
        // Seqs 2 and 3 have left the buffer: the state machine cannot tell, the API's check stands.
        assert_eq!(
            published(state.apply(reaction(channel, bob, "u2", Remove, 1, "tada"))).seq,
            6
        );
    }

    #[test]
    fn thread_parents_in_the_buffer_must_be_live_top_level_messages() {
        let mut state = ChannelsState::new(StateLimits::default());
        let (channel, alice, bob) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        published(state.apply(publish(channel, alice, "m1", 0)));
        assert_eq!(published(state.apply(reply(channel, bob, "t2", 1))).seq, 2);
        published(state.apply(acting(channel, alice, "e3", EventKind::Edit, 1)));
        published(state.apply(acting(channel, bob, "r4", EventKind::ReactionAdd, 1)));
        published(state.apply(publish(channel, alice, "m5", 0)));
        published(state.apply(acting(channel, alice, "d6", EventKind::Delete, 5)));

        let before = state.clone();
        for (parent, why) in [
            (2, "thread reply"),
            (3, "edit"),
            (4, "reaction_add"),
            (6, "delete"),
            (5, "deleted"),
        ] {
            let refusal = rejected(state.apply(reply(channel, bob, "x", parent)));
            assert!(refusal.contains(why), "parent {parent}: {refusal}");
        }
        assert_eq!(state, before, "a rejection changes nothing");
        // An edited, reacted-to message is still a fine parent.
        assert_eq!(published(state.apply(reply(channel, bob, "x", 1))).seq, 7);
    }

    #[test]
    fn thread_parents_older_than_the_buffer_are_range_checked_only() {
        let limits = StateLimits {
            replay_buffer: 2,
            dedup_window: 16,
        };
        let mut state = ChannelsState::new(limits);
        let (channel, user) = (Uuid::new_v4(), Uuid::new_v4());
        published(state.apply(publish(channel, user, "m1", 0)));
        published(state.apply(reply(channel, user, "t2", 1)));
        published(state.apply(publish(channel, user, "m3", 0)));
        published(state.apply(publish(channel, user, "m4", 0)));
        // Seq 2 is a reply, but the buffer ([3, 4]) no longer shows it.
        assert_eq!(published(state.apply(reply(channel, user, "t5", 2))).seq, 5);
    }

    #[test]
    fn entries_logged_before_the_buffer_checks_keep_their_rules() {
        let mut state = ChannelsState::new(StateLimits::default());
        let (channel, user) = (Uuid::new_v4(), Uuid::new_v4());
        let old = |cmd: PublishCommand| Command::Publish(cmd);
        published(state.apply(old(message_command(channel, user, "m1", 0))));
        published(state.apply(old(reply_command(channel, user, "t2", 1))));
        let add = |nonce| acting_command(channel, user, nonce, EventKind::ReactionAdd, 1);
        published(state.apply(old(add("r3"))));
        // What an old log holds is sequenced as it was when first applied.
        assert_eq!(published(state.apply(old(add("r4")))).seq, 4);
        assert_eq!(
            published(state.apply(old(reply_command(channel, user, "t5", 2)))).seq,
            5
        );
    }

    #[test]
    fn a_restored_replica_decides_as_the_one_that_never_stopped() {
        let mut state = ChannelsState::new(StateLimits::default());
        let (channel, user) = (Uuid::new_v4(), Uuid::new_v4());
        let mut history = vec![published(state.apply(publish(channel, user, "m1", 0)))];
        history.push(published(state.apply(reply(channel, user, "t2", 1))));
        history.push(published(state.apply(acting(
            channel,
            user,
            "r3",
            EventKind::ReactionAdd,
            1,
        ))));
        let mut restored = ChannelsState::restore(StateLimits::default(), state.snapshot());
        restored.refill(channel, history);
        for command in [
            acting(channel, user, "r4", EventKind::ReactionAdd, 1),
            reply(channel, user, "t5", 2),
            acting(channel, user, "u6", EventKind::ReactionRemove, 1),
        ] {
            assert_eq!(restored.apply(command.clone()), state.apply(command));
        }
        assert_eq!(restored, state);
    }

    #[test]
    fn a_batch_applies_in_order_as_if_each_were_its_own_entry() {
        let (channel, author) = (Uuid::new_v4(), Uuid::new_v4());
        let commands = vec![
            message_command(channel, author, "1", 0),
            message_command(channel, author, "1", 0),
            reply_command(channel, author, "2", 1),
            reply_command(channel, author, "3", 3),
            message_command(channel, author, "4", 0),
        ];
        let mut one_by_one = ChannelsState::new(StateLimits::default());
        let expected: Vec<Outcome> = commands
            .iter()
            .map(|cmd| one_by_one.apply(Command::PublishChecked(cmd.clone())))
            .collect();
        let mut batched = ChannelsState::new(StateLimits::default());
        let Outcome::Batch(outcomes) = batched.apply(Command::PublishBatch(commands)) else {
            panic!("a batch answers with a batch");
        };
        assert_eq!(outcomes, expected);
        assert_eq!(batched, one_by_one);
        // 1 published, its repeat a duplicate, a reply, a reply to a reply refused, 4 published.
        assert!(matches!(outcomes[1], Outcome::Duplicate { seq: 1, .. }));
        assert!(matches!(outcomes[3], Outcome::Rejected(_)));
        assert_eq!(batched.last_seq(channel), 3);
    }
}
