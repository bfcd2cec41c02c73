//! The load tester's own payloads, and a cheap look at the frames it receives most.
//!
//! The load tester shares the machine with the server, and a fan-out run receives well over
//! 100,000 `message` frames a second (a `presence` run as many `presence` frames): decoding each
//! fully (`ServerFrame`, with its UUIDs and timestamps) would take CPU the server needs. [`Peek`]
//! borrows the few fields a receiver checks; every other frame is decoded properly with
//! `chorus_protocol`.

use std::borrow::Cow;

use serde::Deserialize;

/// The fields of a server frame that receivers look at, borrowed from the frame's text.
#[derive(Deserialize, Debug)]
pub struct Peek<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default, borrow)]
    pub channel_id: Option<Cow<'a, str>>,
    #[serde(default)]
    pub seq: Option<u64>,
    #[serde(default, borrow)]
    pub text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub nonce: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub user_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub status: Option<Cow<'a, str>>,
}

impl<'a> Peek<'a> {
    pub fn parse(text: &'a str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    /// `(channel_id, seq, text)` when this is a `message` event.
    pub fn message(&self) -> Option<(&str, u64, &str)> {
        if self.kind != "message" {
            return None;
        }
        Some((
            self.channel_id.as_deref()?,
            self.seq?,
            self.text.as_deref()?,
        ))
    }

    /// `(user_id, status)` when this is a `presence` event.
    pub fn presence(&self) -> Option<(&str, &str)> {
        if self.kind != "presence" {
            return None;
        }
        Some((self.user_id.as_deref()?, self.status.as_deref()?))
    }
}

/// A message text that starts with its send time: `µs since the run's origin`, a space, then
/// filler up to `size` bytes (at least the stamp and one filler byte).
pub fn stamped_text(sent_micros: u64, size: usize) -> String {
    let mut text = format!("{sent_micros} ");
    let fill = size.saturating_sub(text.len()).max(1);
    text.extend(std::iter::repeat_n('x', fill));
    text
}

/// Microseconds since the Unix epoch: the stamp of messages whose sender and receivers are
/// different processes (on one machine, so one clock).
pub fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The send time a [`stamped_text`] carries.
pub fn sent_micros(text: &str) -> Option<u64> {
    text.split(' ').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_event_is_peeked_and_its_stamp_read() {
        let frame = r#"{"type":"message","channel_id":"5d1c","seq":92,"id":"0192",
            "author_id":"9a7e","text":"123456 xxxx","created_at":"2026-11-24T12:00:00.123Z",
            "nonce":"n"}"#;
        let peek = Peek::parse(frame).unwrap();
        let (channel, seq, text) = peek.message().unwrap();
        assert_eq!((channel, seq), ("5d1c", 92));
        assert_eq!(sent_micros(text), Some(123456));
        let ack = Peek::parse(r#"{"type":"ack","nonce":"n","seq":3}"#).unwrap();
        assert!(ack.message().is_none());
    }

    #[test]
    fn a_presence_event_is_peeked() {
        let frame = r#"{"type":"presence","user_id":"8a2d","status":"idle",
            "last_seen":"2026-12-04T07:00:00.000Z","custom_status":null}"#;
        let peek = Peek::parse(frame).unwrap();
        assert_eq!(peek.presence(), Some(("8a2d", "idle")));
        assert!(peek.message().is_none());
    }

    #[test]
    fn stamped_texts_have_the_asked_size() {
        let text = stamped_text(987_654_321, 100);
        assert_eq!(text.len(), 100);
        assert_eq!(sent_micros(&text), Some(987_654_321));
        assert!(stamped_text(5, 1).len() >= 3, "never only a stamp");
    }
}
