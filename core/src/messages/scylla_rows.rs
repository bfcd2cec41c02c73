//! How an event maps to rows of the ScyllaDB store, and back.
//!
//! Absent optional fields are written *unset*, not null: a null bound in an INSERT writes a
//! tombstone, one per empty column of every message, which reads then have to step over. A
//! message writes no `kind` either (like its JSON): rows without one, including every row written
//! before event kinds existed, are plain messages.

use chorus_protocol::{EventKind, MessageEvent};
use chrono::{DateTime, Utc};
use scylla::value::MaybeUnset;
use scylla::{DeserializeRow, SerializeRow};
use uuid::Uuid;

use super::scylla_reads::bucket_of;
use crate::StoreError;

/// The columns an event fills in both tables (the table's key columns aside).
#[derive(Clone, Debug, SerializeRow)]
pub(crate) struct EventValues {
    seq: i64,
    id: Uuid,
    author_id: Uuid,
    text: String,
    created_at: DateTime<Utc>,
    nonce: String,
    kind: MaybeUnset<&'static str>,
    target_seq: MaybeUnset<i64>,
    parent_seq: MaybeUnset<i64>,
    emoji: MaybeUnset<String>,
    mentions: MaybeUnset<Vec<Uuid>>,
    /// Written only when true, like `kind`: rows without it are messages their authors typed.
    automatic: MaybeUnset<bool>,
}

/// A row of `messages`.
#[derive(Clone, Debug, SerializeRow)]
pub(crate) struct MessageInsert {
    pub(crate) channel_id: Uuid,
    pub(crate) bucket: i64,
    #[scylla(flatten)]
    pub(crate) event: EventValues,
}

/// A row of `message_relations`: the event again, filed under the message it acts on or replies
/// to, so `related` reads one partition per bucket of messages instead of scanning history.
#[derive(Clone, Debug, SerializeRow)]
pub(crate) struct RelationInsert {
    pub(crate) channel_id: Uuid,
    pub(crate) related_bucket: i64,
    pub(crate) related_seq: i64,
    #[scylla(flatten)]
    pub(crate) event: EventValues,
}

fn db_seq(seq: u64) -> i64 {
    seq.min(i64::MAX as u64) as i64
}

impl EventValues {
    pub(crate) fn of(event: &MessageEvent) -> Self {
        EventValues {
            seq: db_seq(event.seq),
            id: event.id,
            author_id: event.author_id,
            text: event.text.clone(),
            created_at: event.created_at,
            nonce: event.nonce.clone(),
            kind: match event.kind {
                EventKind::Message => MaybeUnset::Unset,
                other => MaybeUnset::Set(other.as_str()),
            },
            target_seq: MaybeUnset::from_option(event.target_seq.map(db_seq)),
            parent_seq: MaybeUnset::from_option(event.parent_seq.map(db_seq)),
            emoji: MaybeUnset::from_option(event.emoji.clone()),
            mentions: if event.mentions.is_empty() {
                MaybeUnset::Unset
            } else {
                MaybeUnset::Set(event.mentions.clone())
            },
            automatic: if event.automatic {
                MaybeUnset::Set(true)
            } else {
                MaybeUnset::Unset
            },
        }
    }
}

impl MessageInsert {
    pub(crate) fn of(event: &MessageEvent) -> Self {
        MessageInsert {
            channel_id: event.channel_id,
            bucket: bucket_of(event.seq),
            event: EventValues::of(event),
        }
    }
}

/// The relation rows of an event: one per message it targets or replies to (usually none).
pub(crate) fn relation_inserts(event: &MessageEvent) -> Vec<RelationInsert> {
    [event.target_seq, event.parent_seq]
        .into_iter()
        .flatten()
        .map(|related| RelationInsert {
            channel_id: event.channel_id,
            related_bucket: bucket_of(related),
            related_seq: db_seq(related),
            event: EventValues::of(event),
        })
        .collect()
}

/// The event columns every read selects, in [`EventRow`]'s order.
pub(crate) const EVENT_COLUMNS: &str = "seq, id, author_id, text, created_at, nonce, kind, target_seq, parent_seq, emoji, mentions, \
     automatic";

/// An event as read from either table.
#[derive(Clone, Debug, Default, DeserializeRow)]
pub(crate) struct EventRow {
    pub(crate) seq: i64,
    pub(crate) id: Uuid,
    pub(crate) author_id: Uuid,
    pub(crate) text: String,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) nonce: String,
    pub(crate) kind: Option<String>,
    pub(crate) target_seq: Option<i64>,
    pub(crate) parent_seq: Option<i64>,
    pub(crate) emoji: Option<String>,
    pub(crate) mentions: Option<Vec<Uuid>>,
    pub(crate) automatic: Option<bool>,
}

impl EventRow {
    pub(crate) fn into_event(self, channel_id: Uuid) -> Result<MessageEvent, StoreError> {
        let kind = match self.kind.as_deref() {
            None => EventKind::Message,
            Some(text) => EventKind::parse(text)
                .ok_or_else(|| StoreError::Backend(format!("unknown event kind {text:?}")))?,
        };
        let seq = |s: i64| s.max(0) as u64;
        Ok(MessageEvent {
            channel_id,
            seq: seq(self.seq),
            id: self.id,
            author_id: self.author_id,
            text: self.text,
            created_at: self.created_at,
            nonce: self.nonce,
            kind,
            target_seq: self.target_seq.map(seq),
            parent_seq: self.parent_seq.map(seq),
            emoji: self.emoji,
            mentions: self.mentions.unwrap_or_default(),
            automatic: self.automatic.unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(seq: u64) -> MessageEvent {
        MessageEvent::new_message(
            Uuid::from_u128(1),
            seq,
            Uuid::now_v7(),
            Uuid::from_u128(2),
            "hi",
            DateTime::from_timestamp_millis(1_700_000_000_123).unwrap(),
            "n",
        )
    }

    /// What a read returns for what was written: unset columns read as null.
    fn read_back(values: &EventValues) -> EventRow {
        let set = |v: &MaybeUnset<i64>| match v {
            MaybeUnset::Set(v) => Some(*v),
            MaybeUnset::Unset => None,
        };
        EventRow {
            seq: values.seq,
            id: values.id,
            author_id: values.author_id,
            text: values.text.clone(),
            created_at: values.created_at,
            nonce: values.nonce.clone(),
            kind: match values.kind {
                MaybeUnset::Set(kind) => Some(kind.to_string()),
                MaybeUnset::Unset => None,
            },
            target_seq: set(&values.target_seq),
            parent_seq: set(&values.parent_seq),
            emoji: match &values.emoji {
                MaybeUnset::Set(emoji) => Some(emoji.clone()),
                MaybeUnset::Unset => None,
            },
            mentions: match &values.mentions {
                MaybeUnset::Set(mentions) => Some(mentions.clone()),
                MaybeUnset::Unset => None,
            },
            automatic: match values.automatic {
                MaybeUnset::Set(automatic) => Some(automatic),
                MaybeUnset::Unset => None,
            },
        }
    }

    #[test]
    fn a_plain_message_writes_no_optional_column() {
        let values = EventValues::of(&message(3));
        assert!(matches!(values.kind, MaybeUnset::Unset));
        assert!(matches!(values.target_seq, MaybeUnset::Unset));
        assert!(matches!(values.parent_seq, MaybeUnset::Unset));
        assert!(matches!(values.emoji, MaybeUnset::Unset));
        assert!(matches!(values.mentions, MaybeUnset::Unset));
        assert!(matches!(values.automatic, MaybeUnset::Unset));
        assert!(relation_inserts(&message(3)).is_empty());
    }

    #[test]
    fn every_kind_round_trips_through_a_row() {
        let events = [
            MessageEvent {
                mentions: vec![Uuid::from_u128(9)],
                ..message(1)
            },
            MessageEvent {
                kind: EventKind::Edit,
                target_seq: Some(1),
                ..message(2)
            },
            MessageEvent {
                kind: EventKind::ReactionRemove,
                target_seq: Some(1),
                emoji: Some("eyes".into()),
                ..message(3)
            },
            MessageEvent {
                parent_seq: Some(1),
                ..message(4)
            },
            MessageEvent {
                automatic: true,
                ..message(5)
            },
        ];
        for event in events {
            let row = read_back(&EventValues::of(&event));
            assert_eq!(row.into_event(event.channel_id).unwrap(), event);
        }
    }

    #[test]
    fn rows_written_before_event_kinds_are_messages() {
        let row = EventRow {
            seq: 5,
            text: "old".into(),
            ..EventRow::default()
        };
        let event = row.into_event(Uuid::nil()).unwrap();
        assert_eq!((event.kind, event.mentions.len()), (EventKind::Message, 0));
        let unknown = EventRow {
            kind: Some("poll".into()),
            ..EventRow::default()
        };
        assert!(unknown.into_event(Uuid::nil()).is_err());
    }

    #[test]
    fn relations_are_filed_under_the_related_message_bucket() {
        let reaction = MessageEvent {
            kind: EventKind::ReactionAdd,
            target_seq: Some(9_999),
            emoji: Some("tada".into()),
            ..message(10_002)
        };
        let rows = relation_inserts(&reaction);
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].related_bucket, rows[0].related_seq), (0, 9_999));
        assert_eq!(MessageInsert::of(&reaction).bucket, 1);
    }
}
