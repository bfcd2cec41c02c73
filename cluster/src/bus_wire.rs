//! How bus events are spelled between processes (the Redis bus payload): one JSON object whose
//! `kind` says what it is.
//!
//! A message event already has a `kind` of its own (`message`, `edit`, `delete`, …), so the wire
//! cannot wrap it in a second `kind` tag: an edit would carry the field twice and fail to decode.
//! Instead the object *is* the event, with `kind` always written — `message` included, which the
//! event itself omits — and `typing` is the one kind that is not a channel event. A plain message
//! is therefore spelled exactly as before event kinds existed, so processes of both versions
//! understand each other's messages and typing indicators; an older process logs and drops the new
//! kinds, which it could not show anyway.

use std::sync::Arc;

use chorus_protocol::MessageEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::bus::BusEvent;

/// The tagged spelling, for what the event does not tag itself.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Tagged<'a> {
    /// Only for `EventKind::Message`, whose `kind` the event omits.
    Message(&'a MessageEvent),
    Typing {
        channel_id: Uuid,
        user_id: Uuid,
    },
}

/// What can arrive. Typing is tried first: it needs `"kind": "typing"`, which no event has.
#[derive(Deserialize)]
#[serde(untagged)]
enum Incoming {
    Typing {
        #[serde(rename = "kind")]
        _kind: TypingTag,
        channel_id: Uuid,
        user_id: Uuid,
    },
    Message(MessageEvent),
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum TypingTag {
    Typing,
}

/// The channel and payload of an event to publish; `None` for a resync, which is never published.
pub(crate) fn encode(event: &BusEvent) -> Option<(Uuid, serde_json::Result<Vec<u8>>)> {
    match event {
        BusEvent::Message(message) if message.kind.is_message() => Some((
            message.channel_id,
            serde_json::to_vec(&Tagged::Message(message)),
        )),
        // Every other kind writes its own `kind` field.
        BusEvent::Message(message) => Some((message.channel_id, serde_json::to_vec(&**message))),
        BusEvent::Typing {
            channel_id,
            user_id,
        } => Some((
            *channel_id,
            serde_json::to_vec(&Tagged::Typing {
                channel_id: *channel_id,
                user_id: *user_id,
            }),
        )),
        BusEvent::Resync { .. } => None,
    }
}

/// The event a payload carries.
pub(crate) fn decode(bytes: &[u8]) -> serde_json::Result<BusEvent> {
    Ok(match serde_json::from_slice::<Incoming>(bytes)? {
        Incoming::Typing {
            channel_id,
            user_id,
            ..
        } => BusEvent::Typing {
            channel_id,
            user_id,
        },
        Incoming::Message(event) => BusEvent::Message(Arc::new(event)),
    })
}

#[cfg(test)]
mod tests {
    use chorus_protocol::EventKind;
    use chrono::DateTime;

    use super::*;

    fn message(seq: u64) -> MessageEvent {
        MessageEvent::new_message(
            Uuid::new_v4(),
            seq,
            Uuid::now_v7(),
            Uuid::new_v4(),
            "hi",
            DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            "n",
        )
    }

    fn round_trip(event: BusEvent) -> (serde_json::Value, BusEvent) {
        let (channel, payload) = encode(&event).unwrap();
        let payload = payload.unwrap();
        assert_eq!(Some(channel), event.channel_id());
        let json = serde_json::from_slice(&payload).unwrap();
        (json, decode(&payload).unwrap())
    }

    #[test]
    fn every_kind_round_trips() {
        let plain = message(1);
        let edit = MessageEvent {
            kind: EventKind::Edit,
            target_seq: Some(1),
            ..message(2)
        };
        let reaction = MessageEvent {
            kind: EventKind::ReactionAdd,
            target_seq: Some(1),
            emoji: Some("tada".into()),
            text: String::new(),
            ..message(3)
        };
        let reply = MessageEvent {
            parent_seq: Some(1),
            ..message(4)
        };
        for (event, kind) in [
            (plain, "message"),
            (edit, "edit"),
            (reaction, "reaction_add"),
            (reply, "message"),
        ] {
            let sent = BusEvent::Message(Arc::new(event));
            let (json, received) = round_trip(sent.clone());
            assert_eq!(json["kind"], kind);
            assert_eq!(received, sent);
        }
        let typing = BusEvent::Typing {
            channel_id: Uuid::new_v4(),
            user_id: Uuid::new_v4(),
        };
        let (json, received) = round_trip(typing.clone());
        assert_eq!(json["kind"], "typing");
        assert_eq!(received, typing);
        assert!(encode(&BusEvent::Resync { channel_id: None }).is_none());
    }

    #[test]
    fn payloads_of_processes_without_event_kinds_still_decode() {
        let channel = Uuid::new_v4();
        let old_message = format!(
            r#"{{"kind":"message","channel_id":"{channel}","seq":3,"id":"{channel}",
                "author_id":"{channel}","text":"hi","created_at":"2024-01-01T00:00:00Z","nonce":"n"}}"#
        );
        match decode(old_message.as_bytes()).unwrap() {
            BusEvent::Message(event) => {
                assert_eq!((event.seq, event.kind), (3, EventKind::Message));
            }
            other => panic!("expected a message, got {other:?}"),
        }
        let old_typing =
            format!(r#"{{"kind":"typing","channel_id":"{channel}","user_id":"{channel}"}}"#);
        assert!(matches!(
            decode(old_typing.as_bytes()).unwrap(),
            BusEvent::Typing { channel_id, .. } if channel_id == channel
        ));
        assert!(decode(br#"{"kind":"dance"}"#).is_err());
    }
}
