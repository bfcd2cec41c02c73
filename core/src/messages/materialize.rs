//! A message as it is now: its original event folded with the later events that act on it.
//!
//! History stores events (a message, then maybe edits, a deletion, reactions, thread replies),
//! each with its own channel `seq`. Readers want messages: current text, edit history, reaction
//! counts, reply count. [`materialize`] is that fold, a pure function of the message and its
//! related events, so every message store gives the same answer and it is tested without I/O.

use chorus_protocol::{EventKind, MessageEvent};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One edit of a message: the text it had after the edit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    pub seq: u64,
    pub text: String,
    pub edited_at: DateTime<Utc>,
}

/// One emoji on a message: how many users reacted with it, and who.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reaction {
    pub emoji: String,
    pub count: usize,
    /// In the order they reacted.
    pub users: Vec<Uuid>,
}

/// A message as a reader sees it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageState {
    /// The original `message` event (its `text` is the original text).
    pub message: MessageEvent,
    /// The current text: the last edit's, the original's, or empty once deleted.
    pub text: String,
    /// Mentions of the current text.
    pub mentions: Vec<Uuid>,
    /// Every edit, oldest first (the edit history, RF-05.2).
    pub edits: Vec<Edit>,
    /// Who deleted it and when (a soft delete keeps the message's place, RF-05.3).
    pub deleted: Option<(Uuid, DateTime<Utc>)>,
    /// Reactions in the order each emoji first appeared; emoji no one holds any more are left out.
    pub reactions: Vec<Reaction>,
    /// Thread replies to this message.
    pub reply_count: u64,
    pub last_reply_at: Option<DateTime<Utc>>,
    /// The seq of the newest event folded in: a client that has seen it has seen this state.
    pub updated_seq: u64,
}

/// Folds `related` (any events; only those acting on or replying to `message` count, in seq
/// order) into the state of `message`. Events after a deletion change nothing but the reply
/// count; a reaction added twice by the same user counts once.
pub fn materialize(message: MessageEvent, related: &[MessageEvent]) -> MessageState {
    let mut events: Vec<&MessageEvent> = related
        .iter()
        .filter(|e| e.channel_id == message.channel_id && e.seq > message.seq)
        .filter(|e| e.target_seq == Some(message.seq) || e.parent_seq == Some(message.seq))
        .collect();
    events.sort_by_key(|e| e.seq);
    events.dedup_by_key(|e| e.seq);

    let mut state = MessageState {
        text: message.text.clone(),
        mentions: message.mentions.clone(),
        edits: Vec::new(),
        deleted: None,
        reactions: Vec::new(),
        reply_count: 0,
        last_reply_at: None,
        updated_seq: message.seq,
        message,
    };
    // (emoji, users in reaction order)
    let mut reactions: Vec<(String, Vec<Uuid>)> = Vec::new();
    for event in events {
        if event.kind == EventKind::Message {
            if event.parent_seq == Some(state.message.seq) {
                state.reply_count += 1;
                state.last_reply_at = Some(event.created_at);
                state.updated_seq = event.seq;
            }
            continue;
        }
        if event.target_seq != Some(state.message.seq) || state.deleted.is_some() {
            continue;
        }
        state.updated_seq = event.seq;
        match event.kind {
            EventKind::Message => {}
            EventKind::Edit => {
                state.text = event.text.clone();
                state.mentions = event.mentions.clone();
                state.edits.push(Edit {
                    seq: event.seq,
                    text: event.text.clone(),
                    edited_at: event.created_at,
                });
            }
            EventKind::Delete => {
                state.deleted = Some((event.author_id, event.created_at));
                state.text.clear();
                state.mentions.clear();
                reactions.clear();
            }
            EventKind::ReactionAdd | EventKind::ReactionRemove => {
                let Some(emoji) = event.emoji.as_deref() else {
                    continue;
                };
                let slot = match reactions.iter().position(|(e, _)| e == emoji) {
                    Some(slot) => slot,
                    None => {
                        reactions.push((emoji.to_string(), Vec::new()));
                        reactions.len() - 1
                    }
                };
                let users = &mut reactions[slot].1;
                let held = users.contains(&event.author_id);
                if event.kind == EventKind::ReactionAdd && !held {
                    users.push(event.author_id);
                } else if event.kind == EventKind::ReactionRemove && held {
                    users.retain(|u| *u != event.author_id);
                }
            }
        }
    }
    state.reactions = reactions
        .into_iter()
        .filter(|(_, users)| !users.is_empty())
        .map(|(emoji, users)| Reaction {
            emoji,
            count: users.len(),
            users,
        })
        .collect();
    state
}

#[cfg(test)]
mod tests {
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
            format!("n{seq}"),
        )
    }

    fn acting(seq: u64, kind: EventKind, who: Uuid, target: u64) -> MessageEvent {
        MessageEvent {
            kind,
            target_seq: Some(target),
            text: String::new(),
            ..message(seq, who, "")
        }
    }

    fn reaction(seq: u64, kind: EventKind, who: Uuid, target: u64, emoji: &str) -> MessageEvent {
        MessageEvent {
            emoji: Some(emoji.into()),
            ..acting(seq, kind, who, target)
        }
    }

    #[test]
    fn a_message_with_nothing_related_is_itself() {
        let alice = Uuid::now_v7();
        let state = materialize(message(3, alice, "hi"), &[]);
        assert_eq!(state.text, "hi");
        assert!(state.edits.is_empty() && state.reactions.is_empty());
        assert_eq!((state.reply_count, state.updated_seq), (0, 3));
    }

    #[test]
    fn edits_replace_the_text_and_are_kept_in_order() {
        let alice = Uuid::now_v7();
        let edit = |seq, text: &str| MessageEvent {
            text: text.into(),
            ..acting(seq, EventKind::Edit, alice, 1)
        };
        // Out of order and with an unrelated event: the fold sorts and filters.
        let related = vec![
            edit(5, "third"),
            edit(2, "second"),
            message(3, alice, "other"),
        ];
        let state = materialize(message(1, alice, "first"), &related);
        assert_eq!(state.text, "third");
        let history: Vec<_> = state.edits.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(history, ["second", "third"]);
        assert_eq!(state.message.text, "first");
        assert_eq!(state.updated_seq, 5);
    }

    #[test]
    fn reactions_count_once_per_user_and_emoji() {
        let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
        let related = vec![
            reaction(2, EventKind::ReactionAdd, alice, 1, "tada"),
            reaction(3, EventKind::ReactionAdd, bob, 1, "tada"),
            reaction(4, EventKind::ReactionAdd, alice, 1, "tada"),
            reaction(5, EventKind::ReactionAdd, bob, 1, "eyes"),
            reaction(6, EventKind::ReactionRemove, bob, 1, "eyes"),
            reaction(7, EventKind::ReactionRemove, alice, 1, "heart"),
        ];
        let state = materialize(message(1, alice, "party"), &related);
        assert_eq!(
            state.reactions,
            vec![Reaction {
                emoji: "tada".into(),
                count: 2,
                users: vec![alice, bob],
            }]
        );
    }

    #[test]
    fn a_deleted_message_loses_its_text_and_ignores_later_changes() {
        let (alice, admin) = (Uuid::now_v7(), Uuid::now_v7());
        let related = vec![
            reaction(2, EventKind::ReactionAdd, alice, 1, "tada"),
            acting(3, EventKind::Delete, admin, 1),
            MessageEvent {
                text: "too late".into(),
                ..acting(4, EventKind::Edit, alice, 1)
            },
        ];
        let state = materialize(message(1, alice, "secret"), &related);
        assert_eq!(state.deleted, Some((admin, at(3))));
        assert_eq!(state.text, "");
        assert!(state.reactions.is_empty() && state.edits.is_empty());
    }

    #[test]
    fn replies_are_counted_with_the_time_of_the_last() {
        let alice = Uuid::now_v7();
        let reply = |seq| MessageEvent {
            parent_seq: Some(1),
            ..message(seq, alice, "re")
        };
        let state = materialize(message(1, alice, "q"), &[reply(4), reply(2)]);
        assert_eq!(state.reply_count, 2);
        assert_eq!(state.last_reply_at, Some(at(4)));
    }
}
