//! Focus mode's automatic reply: whether a DM to a user in focus is answered on their behalf,
//! and how that answer is spelled. Pure; the notifier (`chorus_notify`) calls it for each DM
//! notification to a user in focus, records the answer once per (session, sender) in the store
//! (`FocusStore::record_auto_reply`, which makes it once per sender per session), and submits it
//! to the channel service as a message of the user in focus, marked `automatic`.
//!
//! Rules: the user in focus has set a reply text; the sender is someone else; and the DM is not
//! itself automatic — two users in focus would otherwise answer each other's answers.

use uuid::Uuid;

/// A DM that reached (or was held for) a user in a focus session.
#[derive(Clone, Copy, Debug)]
pub struct DmInFocus<'a> {
    /// The user in focus, to whom the DM was sent.
    pub recipient: Uuid,
    /// Their open session.
    pub session: Uuid,
    /// Their reply text (`FocusSettings::auto_reply`).
    pub auto_reply: Option<&'a str>,
    pub sender: Uuid,
    /// The DM channel.
    pub channel: Uuid,
    /// Whether the DM is itself an automatic reply.
    pub automatic: bool,
}

/// The reply to send: a message by `from` in `channel`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AutoReply {
    pub session: Uuid,
    pub channel: Uuid,
    /// The user in focus, its author.
    pub from: Uuid,
    /// The sender it answers (recorded so they get one per session).
    pub to: Uuid,
    pub text: String,
    /// Derived from the session and the sender, so a submit repeated after a failure or a new
    /// leader is answered as a duplicate by the channel's nonce table rather than sent twice.
    pub nonce: String,
}

/// The reply `dm` gets, if any (before the once-per-sender-per-session record).
pub fn auto_reply(dm: &DmInFocus<'_>) -> Option<AutoReply> {
    let text = dm.auto_reply.map(str::trim).filter(|t| !t.is_empty())?;
    if dm.automatic || dm.sender == dm.recipient {
        return None;
    }
    Some(AutoReply {
        session: dm.session,
        channel: dm.channel,
        from: dm.recipient,
        to: dm.sender,
        text: text.to_string(),
        nonce: auto_reply_nonce(dm.session, dm.sender),
    })
}

/// `auto-reply-` and 32 hex digits (43 bytes, within the protocol's 64-byte nonces): the session
/// and the sender mixed, so each pair has its own.
pub fn auto_reply_nonce(session: Uuid, sender: Uuid) -> String {
    let mixed = session.as_u128() ^ sender.as_u128().rotate_left(64);
    format!("auto-reply-{}", Uuid::from_u128(mixed).simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dm(text: Option<&str>) -> DmInFocus<'_> {
        DmInFocus {
            recipient: Uuid::from_u128(1),
            session: Uuid::from_u128(2),
            auto_reply: text,
            sender: Uuid::from_u128(3),
            channel: Uuid::from_u128(4),
            automatic: false,
        }
    }

    #[test]
    fn a_dm_from_someone_else_gets_the_reply_text_from_the_user_in_focus() {
        let reply = auto_reply(&dm(Some("  heads down until 11:30 "))).unwrap();
        assert_eq!(reply.text, "heads down until 11:30");
        assert_eq!(
            (reply.from, reply.to),
            (Uuid::from_u128(1), Uuid::from_u128(3))
        );
        assert_eq!(reply.channel, Uuid::from_u128(4));
        assert_eq!(reply.session, Uuid::from_u128(2));
    }

    #[test]
    fn no_text_an_automatic_dm_or_oneself_get_no_reply() {
        assert_eq!(auto_reply(&dm(None)), None);
        assert_eq!(auto_reply(&dm(Some("   "))), None);
        let automatic = DmInFocus {
            automatic: true,
            ..dm(Some("busy"))
        };
        assert_eq!(auto_reply(&automatic), None, "never answer an answer");
        let own = DmInFocus {
            sender: Uuid::from_u128(1),
            ..dm(Some("busy"))
        };
        assert_eq!(auto_reply(&own), None);
    }

    #[test]
    fn the_nonce_is_fixed_per_session_and_sender_and_fits_the_protocol() {
        let (session, alice, bob) = (Uuid::now_v7(), Uuid::new_v4(), Uuid::new_v4());
        let nonce = auto_reply_nonce(session, alice);
        assert_eq!(nonce, auto_reply_nonce(session, alice));
        assert_ne!(nonce, auto_reply_nonce(session, bob));
        assert_ne!(nonce, auto_reply_nonce(Uuid::now_v7(), alice));
        assert!(nonce.len() <= chorus_protocol::limits::MAX_NONCE_BYTES);
    }
}
