//! Events that are committed but not yet confirmed in the message store, in log order.
//!
//! This queue is part of the replicated state (it travels in snapshots): applying an entry only
//! adds its new events here, on every replica alike. The shard's leader writes them to history
//! and publishes them (`history_writer.rs`), then proposes [`Command::HistoryWritten`]; applying
//! that entry drops what it covers, on every replica. So a new leader finds in its own queue
//! exactly what the old one may not have written, and writes it again — history writes are
//! idempotent by (channel, seq) — which makes history exactly-once per (channel, seq) across
//! leader changes without any replica doing I/O inside `apply`.
//!
//! [`Command::HistoryWritten`]: crate::state::Command::HistoryWritten

use std::collections::VecDeque;
use std::sync::Arc;

use chorus_protocol::MessageEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One committed event and the log index of the entry that sequenced it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingEvent {
    pub index: u64,
    pub event: Arc<MessageEvent>,
}

/// The unconfirmed events, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PendingHistory {
    events: VecDeque<PendingEvent>,
}

impl PendingHistory {
    pub fn from_events(events: Vec<PendingEvent>) -> Self {
        PendingHistory {
            events: events.into(),
        }
    }

    /// Adds the events an entry at `index` sequenced.
    pub fn push(&mut self, index: u64, events: impl IntoIterator<Item = Arc<MessageEvent>>) {
        self.events.extend(
            events
                .into_iter()
                .map(|event| PendingEvent { index, event }),
        );
    }

    /// History holds everything sequenced at or before `through`: forget it.
    pub fn confirm(&mut self, through: u64) {
        while self.events.front().is_some_and(|e| e.index <= through) {
            self.events.pop_front();
        }
    }

    /// Up to `max` events sequenced after `after` (every event with `after = None`), oldest first.
    /// A batch never splits an entry's events, so the last index returned is wholly included.
    pub fn after(&self, after: Option<u64>, max: usize) -> Vec<PendingEvent> {
        let start = match after {
            None => 0,
            Some(after) => self.events.partition_point(|e| e.index <= after),
        };
        let mut batch: Vec<PendingEvent> = Vec::new();
        for pending in self.events.iter().skip(start) {
            let same_entry = batch.last().is_some_and(|last| last.index == pending.index);
            if batch.len() >= max && !same_entry {
                break;
            }
            batch.push(pending.clone());
        }
        batch
    }

    /// Whether any event sequenced at or before `index` is still unconfirmed.
    pub fn has_unconfirmed_through(&self, index: u64) -> bool {
        self.events.front().is_some_and(|e| e.index <= index)
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The unconfirmed events of one channel, oldest first.
    pub fn of_channel(&self, channel: Uuid) -> impl Iterator<Item = &Arc<MessageEvent>> {
        self.events
            .iter()
            .filter(move |e| e.event.channel_id == channel)
            .map(|e| &e.event)
    }

    pub fn to_vec(&self) -> Vec<PendingEvent> {
        self.events.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use chorus_protocol::EventKind;
    use chrono::Utc;

    use super::*;

    fn event(seq: u64) -> Arc<MessageEvent> {
        Arc::new(MessageEvent {
            channel_id: Uuid::nil(),
            seq,
            id: Uuid::nil(),
            author_id: Uuid::nil(),
            text: format!("m{seq}"),
            created_at: Utc::now(),
            nonce: format!("n{seq}"),
            kind: EventKind::Message,
            target_seq: None,
            parent_seq: None,
            emoji: None,
            mentions: Vec::new(),
            automatic: false,
        })
    }

    fn seqs(batch: &[PendingEvent]) -> Vec<u64> {
        batch.iter().map(|e| e.event.seq).collect()
    }

    #[test]
    fn confirmed_events_leave_in_log_order() {
        let mut pending = PendingHistory::default();
        pending.push(5, [event(1), event(2)]);
        pending.push(7, [event(3)]);
        pending.confirm(5);
        assert_eq!(seqs(&pending.after(None, 10)), vec![3]);
        assert!(pending.has_unconfirmed_through(7));
        pending.confirm(9);
        assert!(pending.is_empty());
    }

    #[test]
    fn a_batch_resumes_after_a_position_and_never_splits_an_entry() {
        let mut pending = PendingHistory::default();
        pending.push(1, [event(1)]);
        pending.push(2, [event(2), event(3), event(4)]);
        pending.push(3, [event(5)]);
        assert_eq!(seqs(&pending.after(None, 2)), vec![1, 2, 3, 4]);
        assert_eq!(seqs(&pending.after(Some(1), 1)), vec![2, 3, 4]);
        assert_eq!(seqs(&pending.after(Some(2), 10)), vec![5]);
        assert!(pending.after(Some(3), 10).is_empty());
    }

    #[test]
    fn a_new_leader_starts_from_everything_unconfirmed() {
        let mut pending = PendingHistory::default();
        pending.push(4, [event(1)]);
        pending.push(6, [event(2)]);
        // The old leader wrote through index 4 but its confirmation never committed.
        assert_eq!(seqs(&pending.after(None, 10)), vec![1, 2]);
        assert!(!pending.has_unconfirmed_through(3));
    }
}
