//! Search without a text index: walk each channel newest first and keep what matches, then merge
//! the channels newest first. What the embedded store does (a chat's history on one machine is
//! small enough, and redb has no text index); a pure fold, so it is tested without I/O.
//!
//! An edit always has a higher seq than the message it edits, so a newest-first walk meets every
//! edit of a message before the message itself: remembering which targets an edit matched is
//! enough to match a message by any of its texts in one pass.

use std::collections::HashSet;

use chorus_protocol::{EventKind, MessageEvent};

use super::SearchQuery;

/// Case-insensitive containment, the way every store without SQL compares text.
pub(crate) fn contains_folded(text: &str, folded_needle: &str) -> bool {
    text.to_lowercase().contains(folded_needle)
}

/// The walk of one channel, fed its events newest first.
pub(crate) struct ChannelScan<'q> {
    query: &'q SearchQuery,
    /// `query.text`, lowercased once.
    needle: Option<String>,
    /// Messages one of whose edits contains the needle.
    edited_to_match: HashSet<u64>,
    found: Vec<MessageEvent>,
}

impl<'q> ChannelScan<'q> {
    pub(crate) fn new(query: &'q SearchQuery) -> Self {
        ChannelScan {
            query,
            needle: query.text.as_ref().map(|t| t.to_lowercase()),
            edited_to_match: HashSet::new(),
            found: Vec::new(),
        }
    }

    /// Takes the next older event; `false` once nothing older can be a candidate.
    pub(crate) fn push(&mut self, event: MessageEvent) -> bool {
        if self.found.len() >= self.query.limit {
            return false;
        }
        match event.kind {
            EventKind::Edit => {
                if let (Some(needle), Some(target)) = (&self.needle, event.target_seq)
                    && contains_folded(&event.text, needle)
                {
                    self.edited_to_match.insert(target);
                }
                true
            }
            EventKind::Message => {
                // A channel's timestamps never decrease with seq: everything older is older.
                if self.query.from.is_some_and(|from| event.created_at < from) {
                    return false;
                }
                if self.matches(&event) {
                    self.found.push(event);
                }
                self.found.len() < self.query.limit
            }
            EventKind::Delete | EventKind::ReactionAdd | EventKind::ReactionRemove => true,
        }
    }

    fn matches(&self, message: &MessageEvent) -> bool {
        let query = self.query;
        if query.to.is_some_and(|to| message.created_at >= to)
            || query
                .author
                .is_some_and(|author| message.author_id != author)
        {
            return false;
        }
        match &self.needle {
            None => true,
            Some(needle) => {
                contains_folded(&message.text, needle)
                    || self.edited_to_match.contains(&message.seq)
            }
        }
    }

    /// The candidates found, newest first.
    pub(crate) fn finish(self) -> Vec<MessageEvent> {
        self.found
    }
}

/// The newest `limit` of several channels' candidates (each newest first): by time, then seq,
/// then channel, the order every store returns.
pub(crate) fn merge_newest_first(
    per_channel: Vec<Vec<MessageEvent>>,
    limit: usize,
) -> Vec<MessageEvent> {
    let mut all: Vec<MessageEvent> = per_channel.into_iter().flatten().collect();
    all.sort_by(|a, b| {
        (b.created_at, b.seq, b.channel_id).cmp(&(a.created_at, a.seq, a.channel_id))
    });
    all.truncate(limit);
    all
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use uuid::Uuid;

    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    fn message(seq: u64, author: Uuid, text: &str) -> MessageEvent {
        MessageEvent::new_message(
            Uuid::nil(),
            seq,
            Uuid::now_v7(),
            author,
            text,
            at(seq as i64),
            "n",
        )
    }

    fn edit(seq: u64, author: Uuid, target: u64, text: &str) -> MessageEvent {
        MessageEvent {
            kind: EventKind::Edit,
            target_seq: Some(target),
            ..message(seq, author, text)
        }
    }

    fn query(text: Option<&str>, limit: usize) -> SearchQuery {
        SearchQuery {
            channels: vec![Uuid::nil()],
            text: text.map(str::to_string),
            author: None,
            from: None,
            to: None,
            limit,
        }
    }

    /// Feeds `events` (given oldest first) newest first, as a store walks them.
    fn scan(query: &SearchQuery, events: &[MessageEvent]) -> Vec<u64> {
        let mut scan = ChannelScan::new(query);
        for event in events.iter().rev() {
            if !scan.push(event.clone()) {
                break;
            }
        }
        scan.finish().iter().map(|m| m.seq).collect()
    }

    #[test]
    fn text_matches_case_insensitively_and_through_edits() {
        let alice = Uuid::now_v7();
        let events = [
            message(1, alice, "Lunch at noon?"),
            message(2, alice, "typo: lnch"),
            edit(3, alice, 2, "fixed: LUNCH"),
            message(4, alice, "unrelated"),
            // A reaction or deletion never matches by itself.
            MessageEvent {
                kind: EventKind::Delete,
                target_seq: Some(4),
                ..message(5, alice, "lunch")
            },
        ];
        assert_eq!(scan(&query(Some("lunch"), 10), &events), vec![2, 1]);
        assert_eq!(scan(&query(None, 10), &events), vec![4, 2, 1]);
        assert_eq!(scan(&query(Some("lunch"), 1), &events), vec![2]);
        assert!(scan(&query(Some("lunch"), 0), &events).is_empty());
    }

    #[test]
    fn author_and_dates_filter_the_message() {
        let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
        let events = [
            message(1, alice, "a"),
            message(2, bob, "b"),
            message(3, alice, "c"),
            message(4, alice, "d"),
        ];
        let by_alice = SearchQuery {
            author: Some(alice),
            ..query(None, 10)
        };
        assert_eq!(scan(&by_alice, &events), vec![4, 3, 1]);
        // `from` is inclusive, `to` exclusive.
        let window = SearchQuery {
            from: Some(at(2)),
            to: Some(at(4)),
            ..query(None, 10)
        };
        assert_eq!(scan(&window, &events), vec![3, 2]);
    }

    #[test]
    fn channels_merge_newest_first() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let in_channel = |channel, seq, time| MessageEvent {
            channel_id: channel,
            created_at: at(time),
            ..message(seq, Uuid::nil(), "x")
        };
        let merged = merge_newest_first(
            vec![
                vec![in_channel(a, 2, 30), in_channel(a, 1, 10)],
                vec![in_channel(b, 1, 20)],
            ],
            2,
        );
        let order: Vec<_> = merged.iter().map(|m| (m.channel_id, m.seq)).collect();
        assert_eq!(order, vec![(a, 2), (b, 1)]);
    }
}
