//! The channels' replicated state: a deterministic state machine with no I/O.
//!
//! Every replica applies the same [`Command`]s in the same order and reaches the same state, so
//! all decisions here depend only on the command and the state: sequence numbers, timestamps
//! (kept monotonic per channel) and nonce deduplication. The Raft glue in `state_machine.rs` feeds
//! it committed entries and writes what it returns to storage and to the bus.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use chorus_protocol::MessageEvent;
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Publish(PublishCommand),
}

/// A message to sequence. `message_id` and `proposed_at` are chosen by the proposer so that every
/// replica stores the same values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishCommand {
    pub channel_id: Uuid,
    pub author_id: Uuid,
    pub nonce: String,
    pub text: String,
    pub message_id: Uuid,
    pub proposed_at: DateTime<Utc>,
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
    /// A Raft-internal entry (blank or membership) with no application effect.
    Internal,
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
            Command::Publish(publish) => self.publish(publish),
        }
    }

    fn publish(&mut self, cmd: PublishCommand) -> Outcome {
        let limits = self.limits;
        let channel = self.channels.entry(cmd.channel_id).or_default();
        let key = (cmd.author_id, cmd.nonce);
        if let Some(record) = channel.nonces.get(&key) {
            return Outcome::Duplicate {
                message_id: record.message_id,
                seq: record.seq,
                created_at: record.created_at,
            };
        }
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

    /// The newest sequence number of a channel (0 if it has no message).
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

    fn publish(channel: Uuid, author: Uuid, nonce: &str, at: i64) -> Command {
        Command::Publish(PublishCommand {
            channel_id: channel,
            author_id: author,
            nonce: nonce.into(),
            text: format!("text {nonce}"),
            message_id: Uuid::new_v4(),
            proposed_at: DateTime::from_timestamp(at, 0).unwrap(),
        })
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
}
