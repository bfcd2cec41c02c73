//! Where an SSE client is in each of its channels, and how that travels in `Last-Event-ID`.
//!
//! A WebSocket client resumes with one `last_seq` per channel it names; an SSE client can only
//! hand back the `id` of the last event it saw. So every event's `id` carries the whole position
//! vector of the stream — each channel with the `seq` delivered last — and a reconnect with
//! `Last-Event-ID` resumes every channel exactly where it stopped, gap-free and without
//! repeats, whichever channel the last event was in.
//!
//! Spelling: `v1.` then unpadded base64url of, per channel in ascending id order, the 16 bytes of
//! the channel id followed by the `seq` as an unsigned LEB128 varint (1 byte below 128, 2 below
//! 16,384). About 24 characters per channel; `?channels=` narrows a stream (and its ids) to the
//! channels a tool needs. Everything here is pure: decoding never trusts the input's length
//! or order, and the per-event decision ([`Positions::step`]) is the same exact-once rule as the
//! WebSocket connection's.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

/// The version prefix of every event id.
const PREFIX: &str = "v1.";

/// The most channels one stream follows (so an id stays below ~24 KiB, well inside what
/// HTTP servers and proxies accept in a request header).
pub const MAX_STREAM_CHANNELS: usize = 1_000;

/// Why a `Last-Event-ID` was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PositionError {
    #[error("the event id does not start with v1.")]
    Version,
    #[error("the event id is not base64url")]
    Encoding,
    #[error("the event id is cut short")]
    Truncated,
    #[error("the event id names a channel twice or out of order")]
    Order,
    #[error("the event id names more than {MAX_STREAM_CHANNELS} channels")]
    TooMany,
}

/// What to do with a live event, given the stream's position in its channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The next event of the channel: send it (the position moves to it).
    Deliver,
    /// Already sent (a replay overlapped the live feed): drop it.
    Skip,
    /// Events between the position and this one never arrived: fetch them first.
    Gap,
    /// Not a channel of this stream.
    Unknown,
}

/// The `seq` delivered last in each channel of a stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Positions(BTreeMap<Uuid, u64>);

impl Positions {
    pub fn new() -> Self {
        Positions(BTreeMap::new())
    }

    pub fn get(&self, channel: Uuid) -> Option<u64> {
        self.0.get(&channel).copied()
    }

    pub fn set(&mut self, channel: Uuid, seq: u64) {
        self.0.insert(channel, seq);
    }

    pub fn remove(&mut self, channel: Uuid) {
        self.0.remove(&channel);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn channels(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.0.keys().copied()
    }

    /// The decision for an event `seq` of `channel`; moves the position on [`Step::Deliver`].
    pub fn step(&mut self, channel: Uuid, seq: u64) -> Step {
        let Some(position) = self.0.get_mut(&channel) else {
            return Step::Unknown;
        };
        if seq <= *position {
            Step::Skip
        } else if seq == *position + 1 {
            *position = seq;
            Step::Deliver
        } else {
            Step::Gap
        }
    }

    /// The event id that resumes this stream from here.
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(self.0.len() * 18);
        for (channel, seq) in &self.0 {
            bytes.extend_from_slice(channel.as_bytes());
            let mut rest = *seq;
            loop {
                let low = (rest & 0x7f) as u8;
                rest >>= 7;
                if rest == 0 {
                    bytes.push(low);
                    break;
                }
                bytes.push(low | 0x80);
            }
        }
        let mut id = String::with_capacity(PREFIX.len() + bytes.len().div_ceil(3) * 4);
        id.push_str(PREFIX);
        URL_SAFE_NO_PAD.encode_string(&bytes, &mut id);
        id
    }

    /// Reads an event id made by [`Positions::encode`].
    pub fn decode(id: &str) -> Result<Self, PositionError> {
        let body = id
            .trim()
            .strip_prefix(PREFIX)
            .ok_or(PositionError::Version)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| PositionError::Encoding)?;
        let mut positions = BTreeMap::new();
        let mut rest = bytes.as_slice();
        let mut previous: Option<Uuid> = None;
        while !rest.is_empty() {
            if positions.len() == MAX_STREAM_CHANNELS {
                return Err(PositionError::TooMany);
            }
            let (id, after) = rest.split_at_checked(16).ok_or(PositionError::Truncated)?;
            let channel = Uuid::from_slice(id).map_err(|_| PositionError::Truncated)?;
            if previous.is_some_and(|previous| channel <= previous) {
                return Err(PositionError::Order);
            }
            let (seq, after) = varint(after)?;
            positions.insert(channel, seq);
            previous = Some(channel);
            rest = after;
        }
        Ok(Positions(positions))
    }
}

/// An unsigned LEB128 `u64` at the start of `bytes`, and what follows it.
fn varint(bytes: &[u8]) -> Result<(u64, &[u8]), PositionError> {
    let mut value = 0u64;
    for (index, byte) in bytes.iter().enumerate() {
        let shift = 7 * index as u32;
        // The tenth byte may hold only the top bit of a u64.
        if shift > 63 || (shift == 63 && byte & 0x7e != 0) {
            return Err(PositionError::Encoding);
        }
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok((value, &bytes[index + 1..]));
        }
    }
    Err(PositionError::Truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn an_id_round_trips_every_position() {
        let mut positions = Positions::new();
        for (n, seq) in [(3, 0), (1, 127), (2, 128), (9, u64::MAX), (4, 16_384)] {
            positions.set(ch(n), seq);
        }
        let id = positions.encode();
        assert!(id.starts_with("v1."), "{id}");
        assert_eq!(Positions::decode(&id), Ok(positions));
        assert_eq!(Positions::decode("v1."), Ok(Positions::new()));
    }

    #[test]
    fn an_id_costs_about_24_characters_per_channel() {
        let mut positions = Positions::new();
        for n in 0..100 {
            positions.set(Uuid::new_v4(), 1_000 + n);
        }
        let id = positions.encode();
        assert!(id.len() < 100 * 25, "{}", id.len());
    }

    #[test]
    fn malformed_ids_are_refused_with_a_reason() {
        let mut one = Positions::new();
        one.set(ch(1), 300);
        let good = one.encode();
        assert_eq!(Positions::decode("1:5"), Err(PositionError::Version));
        assert_eq!(Positions::decode("v1.***"), Err(PositionError::Encoding));
        // Cut inside the varint, and inside the channel id.
        assert_eq!(
            Positions::decode(&good[..good.len() - 1]),
            Err(PositionError::Truncated)
        );
        let short = URL_SAFE_NO_PAD.encode([0u8; 10]);
        assert_eq!(
            Positions::decode(&format!("v1.{short}")),
            Err(PositionError::Truncated)
        );
        // The same channel twice.
        let mut twice = ch(1).as_bytes().to_vec();
        twice.push(1);
        twice.extend_from_slice(ch(1).as_bytes());
        twice.push(2);
        let twice = URL_SAFE_NO_PAD.encode(twice);
        assert_eq!(
            Positions::decode(&format!("v1.{twice}")),
            Err(PositionError::Order)
        );
        // A varint longer than a u64.
        let mut long = ch(1).as_bytes().to_vec();
        long.extend_from_slice(&[0xff; 10]);
        long.push(1);
        let long = URL_SAFE_NO_PAD.encode(long);
        assert_eq!(
            Positions::decode(&format!("v1.{long}")),
            Err(PositionError::Encoding)
        );
    }

    #[test]
    fn too_many_channels_are_refused() {
        let mut positions = Positions::new();
        for n in 0..=MAX_STREAM_CHANNELS as u128 {
            positions.set(ch(n), 1);
        }
        assert_eq!(
            Positions::decode(&positions.encode()),
            Err(PositionError::TooMany)
        );
    }

    #[test]
    fn step_delivers_the_next_skips_the_old_and_reports_gaps() {
        let mut positions = Positions::new();
        positions.set(ch(1), 5);
        assert_eq!(positions.step(ch(1), 5), Step::Skip);
        assert_eq!(positions.step(ch(1), 3), Step::Skip);
        assert_eq!(positions.step(ch(1), 8), Step::Gap);
        assert_eq!(positions.get(ch(1)), Some(5), "a gap does not move it");
        assert_eq!(positions.step(ch(1), 6), Step::Deliver);
        assert_eq!(positions.get(ch(1)), Some(6));
        assert_eq!(positions.step(ch(2), 1), Step::Unknown);
    }
}
