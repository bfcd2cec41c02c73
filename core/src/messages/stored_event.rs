//! How the embedded store spells an event on disk: a compact binary record of its own, not the
//! wire JSON.
//!
//! The JSON of a 100-byte message is ~330 bytes (three UUIDs as 36-character strings, the field
//! names, an RFC 3339 timestamp), and redb's B-tree leaves are about half full when keys only
//! grow, so every value byte costs about two on disk. This record keeps what the key does not
//! already say (the channel and the seq are the key) in ~150 bytes for the same message, and a
//! wire change no longer reaches the file (a field the record does not know fails to compile here,
//! see [`encode`]).
//!
//! Records written before this format are JSON; they start with `{`, which no version byte is, so
//! [`decode`] reads both and a history never needs migrating.
//!
//! Version 1, in order: the version byte; `id` and `author_id` (16 bytes each); `created_at` in
//! milliseconds since the epoch (8 bytes, little-endian — the wire's precision); the kind (1 byte);
//! a byte of flags for the optional fields; `target_seq` and `parent_seq` when present (LEB128);
//! `text` and `nonce` (LEB128 length, then UTF-8); `emoji` when present; the mentions (LEB128
//! count, then 16 bytes each). The flag `AUTOMATIC` (a focus mode auto-reply) has no bytes of its
//! own; records written before it never set it, so they read as `automatic: false`, and a version
//! that does not know it refuses such a record as `UnknownFlags` rather than drop the mark.

use chorus_protocol::{EventKind, MessageEvent};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The format [`encode`] writes.
const VERSION_1: u8 = 1;

const HAS_TARGET: u8 = 1;
const HAS_PARENT: u8 = 2;
const HAS_EMOJI: u8 = 4;
const AUTOMATIC: u8 = 8;

/// Why a stored record could not be read: the file is damaged or was written by a newer version.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("stored event ends early")]
    Truncated,
    #[error("stored event has {0} bytes after its end")]
    TrailingBytes(usize),
    #[error("stored event format {0} is unknown (written by a newer version?)")]
    UnknownVersion(u8),
    #[error("stored event kind {0} is unknown")]
    UnknownKind(u8),
    #[error("stored event flags {0:#04x} are unknown")]
    UnknownFlags(u8),
    #[error("stored event text is not UTF-8")]
    NotUtf8,
    #[error("stored event timestamp {0} ms is out of range")]
    Timestamp(i64),
    #[error("stored event is neither a record nor JSON: {0}")]
    Json(String),
}

fn kind_code(kind: EventKind) -> u8 {
    match kind {
        EventKind::Message => 0,
        EventKind::Edit => 1,
        EventKind::Delete => 2,
        EventKind::ReactionAdd => 3,
        EventKind::ReactionRemove => 4,
    }
}

fn kind_of(code: u8) -> Result<EventKind, DecodeError> {
    Ok(match code {
        0 => EventKind::Message,
        1 => EventKind::Edit,
        2 => EventKind::Delete,
        3 => EventKind::ReactionAdd,
        4 => EventKind::ReactionRemove,
        other => return Err(DecodeError::UnknownKind(other)),
    })
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// The record of `event` (its channel and seq belong in the key).
pub fn encode(event: &MessageEvent) -> Vec<u8> {
    // Every field by name: a field added to the wire type fails to compile here until the record
    // keeps it (in a new version).
    let MessageEvent {
        channel_id: _,
        seq: _,
        id,
        author_id,
        text,
        created_at,
        nonce,
        kind,
        target_seq,
        parent_seq,
        emoji,
        mentions,
        automatic,
    } = event;
    let mut out = Vec::with_capacity(48 + text.len() + nonce.len() + 16 * mentions.len());
    out.push(VERSION_1);
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(author_id.as_bytes());
    out.extend_from_slice(&created_at.timestamp_millis().to_le_bytes());
    out.push(kind_code(*kind));
    let flags = [
        (target_seq.is_some(), HAS_TARGET),
        (parent_seq.is_some(), HAS_PARENT),
        (emoji.is_some(), HAS_EMOJI),
        (*automatic, AUTOMATIC),
    ]
    .into_iter()
    .filter(|(present, _)| *present)
    .fold(0, |flags, (_, bit)| flags | bit);
    out.push(flags);
    for seq in [target_seq, parent_seq].into_iter().flatten() {
        put_varint(&mut out, *seq);
    }
    put_str(&mut out, text);
    put_str(&mut out, nonce);
    if let Some(emoji) = emoji {
        put_str(&mut out, emoji);
    }
    put_varint(&mut out, mentions.len() as u64);
    for mention in mentions {
        out.extend_from_slice(mention.as_bytes());
    }
    out
}

/// The event stored under (`channel`, `seq`): a record, or the JSON of an older version.
pub fn decode(channel: Uuid, seq: u64, bytes: &[u8]) -> Result<MessageEvent, DecodeError> {
    match bytes.first() {
        Some(b'{') => {
            serde_json::from_slice(bytes).map_err(|err| DecodeError::Json(err.to_string()))
        }
        Some(&VERSION_1) => decode_v1(channel, seq, &bytes[1..]),
        Some(&other) => Err(DecodeError::UnknownVersion(other)),
        None => Err(DecodeError::Truncated),
    }
}

/// Reads a record front to back.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn uuid(&mut self) -> Result<Uuid, DecodeError> {
        let bytes: [u8; 16] = self
            .take(16)?
            .try_into()
            .map_err(|_| DecodeError::Truncated)?;
        Ok(Uuid::from_bytes(bytes))
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            n |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(DecodeError::Truncated)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let len = usize::try_from(self.varint()?).map_err(|_| DecodeError::Truncated)?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::NotUtf8)
    }
}

fn decode_v1(channel_id: Uuid, seq: u64, bytes: &[u8]) -> Result<MessageEvent, DecodeError> {
    let mut r = Reader(bytes);
    let id = r.uuid()?;
    let author_id = r.uuid()?;
    let millis = i64::from_le_bytes(r.take(8)?.try_into().map_err(|_| DecodeError::Truncated)?);
    let created_at: DateTime<Utc> =
        DateTime::from_timestamp_millis(millis).ok_or(DecodeError::Timestamp(millis))?;
    let kind = kind_of(r.byte()?)?;
    let flags = r.byte()?;
    if flags & !(HAS_TARGET | HAS_PARENT | HAS_EMOJI | AUTOMATIC) != 0 {
        return Err(DecodeError::UnknownFlags(flags));
    }
    let target_seq = (flags & HAS_TARGET != 0).then(|| r.varint()).transpose()?;
    let parent_seq = (flags & HAS_PARENT != 0).then(|| r.varint()).transpose()?;
    let text = r.string()?;
    let nonce = r.string()?;
    let emoji = (flags & HAS_EMOJI != 0).then(|| r.string()).transpose()?;
    let count = r.varint()?;
    // Each mention takes 16 bytes: a count beyond what is left is damage, not an allocation.
    if count > (r.0.len() / 16) as u64 {
        return Err(DecodeError::Truncated);
    }
    let mentions = (0..count).map(|_| r.uuid()).collect::<Result<_, _>>()?;
    if !r.0.is_empty() {
        return Err(DecodeError::TrailingBytes(r.0.len()));
    }
    Ok(MessageEvent {
        channel_id,
        seq,
        id,
        author_id,
        text,
        created_at,
        nonce,
        kind,
        target_seq,
        parent_seq,
        emoji,
        mentions,
        automatic: flags & AUTOMATIC != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &str) -> MessageEvent {
        MessageEvent::new_message(
            Uuid::new_v4(),
            42,
            Uuid::now_v7(),
            Uuid::new_v4(),
            text,
            DateTime::from_timestamp_millis(1_764_000_000_123).unwrap(),
            "nonce-1",
        )
    }

    fn round_trip(event: &MessageEvent) -> MessageEvent {
        decode(event.channel_id, event.seq, &encode(event)).unwrap()
    }

    #[test]
    fn every_field_of_every_kind_survives() {
        let plain = message("hello");
        assert_eq!(round_trip(&plain), plain);
        let reply = MessageEvent {
            parent_seq: Some(7),
            mentions: vec![Uuid::new_v4(), Uuid::new_v4()],
            text: "ünïcødé <@x> \u{1f600}".into(),
            ..message("")
        };
        assert_eq!(round_trip(&reply), reply);
        let reaction = MessageEvent {
            kind: EventKind::ReactionAdd,
            target_seq: Some(u64::MAX),
            emoji: Some("thumbsup".into()),
            ..message("")
        };
        assert_eq!(round_trip(&reaction), reaction);
        for kind in [
            EventKind::Edit,
            EventKind::Delete,
            EventKind::ReactionRemove,
        ] {
            let event = MessageEvent {
                kind,
                target_seq: Some(1),
                ..message("x")
            };
            assert_eq!(round_trip(&event), event);
        }
        let automatic = MessageEvent {
            automatic: true,
            ..message("heads down until 11:30")
        };
        assert_eq!(round_trip(&automatic), automatic);
        // A record without the flag is a message typed by its author.
        assert!(!round_trip(&plain).automatic);
    }

    /// The store keeps what the wire shows: milliseconds (see `chorus_protocol::timestamp`).
    #[test]
    fn timestamps_keep_the_wire_precision() {
        let mut event = message("x");
        event.created_at = DateTime::from_timestamp(1_764_000_000, 123_456_789).unwrap();
        let read = round_trip(&event);
        assert_eq!(read.created_at.timestamp_millis(), 1_764_000_000_123);
        assert_eq!(read.created_at.timestamp_subsec_nanos(), 123_000_000);
    }

    #[test]
    fn a_100_byte_message_takes_less_than_half_its_json() {
        let event = message(&"x".repeat(100));
        let record = encode(&event).len();
        let json = serde_json::to_vec(&event).unwrap().len();
        assert!(record <= 160, "{record} bytes");
        assert!(record * 2 < json, "record {record} bytes, JSON {json}");
    }

    #[test]
    fn json_written_by_older_versions_still_reads() {
        let event = message("old");
        let json = serde_json::to_vec(&event).unwrap();
        assert_eq!(decode(event.channel_id, event.seq, &json).unwrap(), event);
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        let event = MessageEvent {
            mentions: vec![Uuid::new_v4()],
            emoji: Some("x".into()),
            target_seq: Some(300),
            ..message("text")
        };
        let record = encode(&event);
        let (channel, seq) = (event.channel_id, event.seq);
        // Every prefix is either truncated or (a prefix ending before the mentions) incomplete.
        for end in 0..record.len() {
            assert!(
                decode(channel, seq, &record[..end]).is_err(),
                "prefix {end}"
            );
        }
        let mut longer = record.clone();
        longer.push(0);
        assert_eq!(
            decode(channel, seq, &longer),
            Err(DecodeError::TrailingBytes(1))
        );
        let mut newer = record.clone();
        newer[0] = 9;
        assert_eq!(
            decode(channel, seq, &newer),
            Err(DecodeError::UnknownVersion(9))
        );
        let mut bad_kind = record.clone();
        bad_kind[1 + 32 + 8] = 200;
        assert_eq!(
            decode(channel, seq, &bad_kind),
            Err(DecodeError::UnknownKind(200))
        );
        let mut bad_flags = record;
        bad_flags[1 + 32 + 8 + 1] = 0x80;
        assert_eq!(
            decode(channel, seq, &bad_flags),
            Err(DecodeError::UnknownFlags(0x80))
        );
        assert!(matches!(
            decode(channel, seq, b"{not json"),
            Err(DecodeError::Json(_))
        ));
    }
}
