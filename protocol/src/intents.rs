//! Intents: the kinds of events a connection asks for in `identify` or `resume` (bots above all,
//! as on Discord's gateway). A connection that declares none gets everything, as before.
//!
//! Filtering happens on the connection's side of fan-out: an event left out still moves the
//! connection's position in its channel, so leaving events out never looks like a gap, and a
//! resume replays only what the intents take.

use serde::{Deserialize, Serialize};

use crate::EventKind;

/// One kind of event a connection may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    /// New messages (thread replies included).
    Messages,
    /// Edits and deletions of messages.
    MessageChanges,
    /// Reactions added and taken back.
    Reactions,
    /// Typing indicators.
    Typing,
    /// `presence_subscribe` and the `presence` frames it brings.
    Presence,
}

/// A set of intents; `Intents::ALL` for a connection that declared none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Intents(u8);

impl Intents {
    pub const ALL: Intents = Intents(0b1_1111);

    /// The set declared in a frame; `None` (nothing declared) is everything.
    pub fn declared(intents: Option<&[Intent]>) -> Intents {
        match intents {
            None => Intents::ALL,
            Some(list) => Intents(list.iter().fold(0, |set, i| set | Self::bit(*i))),
        }
    }

    fn bit(intent: Intent) -> u8 {
        1 << (intent as u8)
    }

    pub fn contains(self, intent: Intent) -> bool {
        self.0 & Self::bit(intent) != 0
    }

    /// The intent a channel event belongs to.
    pub fn of_event(kind: EventKind) -> Intent {
        match kind {
            EventKind::Message => Intent::Messages,
            EventKind::Edit | EventKind::Delete => Intent::MessageChanges,
            EventKind::ReactionAdd | EventKind::ReactionRemove => Intent::Reactions,
        }
    }

    /// Whether a channel event of `kind` is sent to this connection.
    pub fn wants_event(self, kind: EventKind) -> bool {
        self.contains(Self::of_event(kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_gets_only_the_events_of_its_intents() {
        let messages = Intents::declared(Some(&[Intent::Messages]));
        assert!(messages.wants_event(EventKind::Message));
        for kind in [
            EventKind::Edit,
            EventKind::Delete,
            EventKind::ReactionAdd,
            EventKind::ReactionRemove,
        ] {
            assert!(!messages.wants_event(kind), "{kind:?}");
            assert!(Intents::ALL.wants_event(kind));
        }
        assert!(!messages.contains(Intent::Typing));
        let reactions = Intents::declared(Some(&[Intent::Reactions, Intent::Typing]));
        assert!(reactions.wants_event(EventKind::ReactionRemove));
        assert!(!reactions.wants_event(EventKind::Message));
        assert!(reactions.contains(Intent::Typing));
        assert_eq!(Intents::declared(None), Intents::ALL);
        assert!(!Intents::declared(Some(&[])).wants_event(EventKind::Message));
    }

    #[test]
    fn intents_are_spelled_in_snake_case() {
        let list: Vec<Intent> = serde_json::from_str(
            r#"["messages","message_changes","reactions","typing","presence"]"#,
        )
        .unwrap();
        assert_eq!(list.len(), 5);
        assert_eq!(Intents::declared(Some(&list)), Intents::ALL);
        assert!(serde_json::from_str::<Intent>(r#""everything""#).is_err());
    }
}
