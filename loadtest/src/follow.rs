//! Following channels across reconnects, as the protocol asks a client to: track the last `seq`
//! seen per channel, `resume` with it, take the replay, and fetch over REST what a
//! `resync_required` says the replay buffer no longer holds.
//!
//! A [`Follower`] is one client's view. Every event it is given — live, replayed on resume or
//! fetched after a resync — is checked against the channel's position: a `seq` at or below it is a
//! repeat, one beyond the next is a gap. At the end, what is between the position and the
//! channel's final `seq` is missing. `storm` and `soak` both count loss and duplicates this way.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chorus_protocol::{ChannelPosition, ClientFrame, ServerFrame};
use futures_util::StreamExt;
use rand::Rng;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::api::{Api, Cursor};
use crate::wire::{Peek, sent_micros};
use crate::ws::Conn;

/// Where a client stands in one channel.
pub struct Position {
    pub id: Uuid,
    /// The id as it is spelled in frames, to compare without parsing.
    id_text: String,
    /// `last_seq` at `ready`: the client owes itself every seq after it.
    pub start: u64,
    pub last: u64,
}

/// How a client's events reached it, and what was wrong with them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tally {
    pub live: u64,
    pub replayed: u64,
    pub fetched: u64,
    /// Seqs skipped over (never seen) in the middle of a channel's stream.
    pub gaps: u64,
    /// Seqs seen again (at or below the last one seen).
    pub repeats: u64,
    pub resyncs: u64,
}

impl Tally {
    pub fn add(&mut self, other: &Tally) {
        self.live += other.live;
        self.replayed += other.replayed;
        self.fetched += other.fetched;
        self.gaps += other.gaps;
        self.repeats += other.repeats;
        self.resyncs += other.resyncs;
    }

    /// Events received, however they came.
    pub fn delivered(&self) -> u64 {
        self.live + self.replayed + self.fetched
    }
}

/// How an event reached the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Live,
    Replay,
    Fetch,
}

/// One client's positions in the channels it follows.
pub struct Follower {
    pub channels: Vec<Position>,
    pub tally: Tally,
}

impl Follower {
    /// Starts at each channel's `last_seq` in `ready` (0 for a channel `ready` did not list).
    pub fn new(channels: &[Uuid], ready: &[ChannelPosition]) -> Self {
        let channels = channels
            .iter()
            .map(|id| {
                let start = ready
                    .iter()
                    .find(|p| p.channel_id == *id)
                    .map_or(0, |p| p.last_seq);
                Position {
                    id: *id,
                    id_text: id.to_string(),
                    start,
                    last: start,
                }
            })
            .collect();
        Follower {
            channels,
            tally: Tally::default(),
        }
    }

    /// What to `resume` with.
    pub fn positions(&self) -> Vec<ChannelPosition> {
        self.channels
            .iter()
            .map(|p| ChannelPosition {
                channel_id: p.id,
                last_seq: p.last,
            })
            .collect()
    }

    /// Whether every channel has reached its final seq (`finals` in the order of `channels`).
    pub fn caught_up(&self, finals: &[u64]) -> bool {
        self.channels
            .iter()
            .zip(finals)
            .all(|(p, last)| p.last >= *last)
    }

    /// `(missing at the end, owed)`: seqs between each position and its channel's final seq, and
    /// every seq after `ready`.
    pub fn settle(&self, finals: &[u64]) -> (u64, u64) {
        self.channels
            .iter()
            .zip(finals)
            .fold((0, 0), |(missing, owed), (p, last)| {
                (
                    missing + last.saturating_sub(p.last),
                    owed + last.saturating_sub(p.start),
                )
            })
    }

    /// Takes one text frame. Returns the send stamp (`wire::stamped_text`) of a message event that
    /// was new to this client, for the caller's latency; fetches history on `resync_required`;
    /// fails on an `error` frame (a follower sends nothing that should be refused).
    pub async fn on_text(
        &mut self,
        api: &Api,
        token: &str,
        text: &str,
        via: Via,
    ) -> anyhow::Result<Option<u64>> {
        let Some(peek) = Peek::parse(text) else {
            return Ok(None);
        };
        if let Some((channel, seq, body)) = peek.message() {
            let fresh = match self.channels.iter().position(|p| p.id_text == channel) {
                Some(index) => self.on_event(index, seq, via),
                None => false,
            };
            return Ok(if fresh { sent_micros(body) } else { None });
        }
        match peek.kind.as_ref() {
            "resync_required" => {
                if let Ok(ServerFrame::ResyncRequired {
                    channel_id,
                    after_seq,
                    last_seq,
                }) = ServerFrame::parse(text)
                {
                    self.fetch(api, token, channel_id, after_seq, last_seq)
                        .await?;
                }
            }
            "error" => {
                if let Ok(ServerFrame::Error { code, message, .. }) = ServerFrame::parse(text) {
                    bail!("error frame: {code:?} {message}");
                }
            }
            _ => {}
        }
        Ok(None)
    }

    /// `resync_required`: what the replay buffer no longer holds comes from history, as the
    /// protocol tells a client to do.
    async fn fetch(
        &mut self,
        api: &Api,
        token: &str,
        channel: Uuid,
        after: u64,
        last: u64,
    ) -> anyhow::Result<()> {
        self.tally.resyncs += 1;
        let index = self
            .channels
            .iter()
            .position(|p| p.id == channel)
            .context("resync of an unknown channel")?;
        let mut cursor = after;
        while cursor < last {
            let page = api
                .history(token, channel, Cursor::After(cursor), 200)
                .await?;
            let Some(newest) = page.messages.last().map(|m| m.seq) else {
                break;
            };
            for message in page.messages.iter().filter(|m| m.seq <= last) {
                self.on_event(index, message.seq, Via::Fetch);
            }
            cursor = newest;
        }
        Ok(())
    }

    /// One event of channel `channel` (an index into `channels`); true when it was new.
    pub fn on_event(&mut self, channel: usize, seq: u64, via: Via) -> bool {
        let position = &mut self.channels[channel];
        if seq <= position.last {
            self.tally.repeats += 1;
            return false;
        }
        self.tally.gaps += seq - position.last - 1;
        position.last = seq;
        match via {
            Via::Live => self.tally.live += 1,
            Via::Replay => self.tally.replayed += 1,
            Via::Fetch => self.tally.fetched += 1,
        }
        true
    }
}

/// One attempt to come back: connect, `resume` with the follower's positions, and feed it the
/// replay. Returns the connection once `resumed` arrives.
pub async fn resume(
    ws: SocketAddr,
    source: Option<IpAddr>,
    api: &Api,
    token: &str,
    session_id: Uuid,
    follower: &mut Follower,
) -> anyhow::Result<Conn> {
    let mut conn = Conn::connect(ws, source).await?;
    conn.send(&ClientFrame::Resume {
        intents: None,
        token: token.to_string(),
        session_id,
        channels: follower.positions(),
    })
    .await?;
    loop {
        let message = conn.ws.next().await.context("connection ended")??;
        let text = match message {
            Message::Text(text) => text,
            Message::Close(frame) => bail!("resume refused: {frame:?}"),
            _ => continue,
        };
        if matches!(Peek::parse(&text), Some(p) if p.kind == "resumed") {
            return Ok(conn);
        }
        follower.on_text(api, token, &text, Via::Replay).await?;
    }
}

/// Where and as whom a client comes back.
pub struct Comeback<'a> {
    pub ws: SocketAddr,
    pub source: Option<IpAddr>,
    pub api: &'a Api,
    pub token: &'a str,
    pub session_id: Uuid,
    /// First backoff; each failed attempt doubles it, up to `backoff_cap`. Each wait is drawn
    /// uniformly from zero to the current backoff ("full jitter").
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Attempts stop when this much time has passed since the connection was lost.
    pub give_up_after: Duration,
}

/// Backs off, reconnects and resumes until it works or `give_up_after` has passed since `lost_at`.
/// Returns the connection and how long the successful attempt took (after its backoff);
/// `failed_attempts` counts the others.
pub async fn reconnect(
    comeback: &Comeback<'_>,
    follower: &mut Follower,
    lost_at: Instant,
    failed_attempts: &mut u64,
) -> anyhow::Result<(Conn, Duration)> {
    let mut attempt = 0u32;
    loop {
        let ceiling = comeback
            .backoff_base
            .saturating_mul(1 << attempt.min(20))
            .min(comeback.backoff_cap);
        let wait = rand::thread_rng().gen_range(0..=ceiling.as_micros() as u64);
        tokio::time::sleep(Duration::from_micros(wait)).await;
        let started = Instant::now();
        match resume(
            comeback.ws,
            comeback.source,
            comeback.api,
            comeback.token,
            comeback.session_id,
            follower,
        )
        .await
        {
            Ok(conn) => return Ok((conn, started.elapsed())),
            Err(err) => {
                *failed_attempts += 1;
                if lost_at.elapsed() > comeback.give_up_after {
                    return Err(err.context(format!("not resumed after {attempt} retries")));
                }
                attempt += 1;
            }
        }
    }
}

/// The end of a following run: tells every client each channel's newest acknowledged seq (from
/// the publisher's acks), waits up to `drain` for all of them to catch up and finish, then tells
/// the rest to stop. Returns the newest seq and the acknowledged seqs of each channel.
pub async fn settle_clients<T>(
    acked_seqs: &[(usize, u64)],
    channels: usize,
    finals_tx: &tokio::sync::watch::Sender<Option<std::sync::Arc<Vec<u64>>>>,
    stop_tx: &tokio::sync::watch::Sender<bool>,
    clients: &[tokio::task::JoinHandle<T>],
    drain: Duration,
) -> (Vec<u64>, Vec<Vec<u64>>) {
    let mut finals = vec![0u64; channels];
    let mut acked = vec![Vec::new(); channels];
    for &(channel, seq) in acked_seqs {
        finals[channel] = finals[channel].max(seq);
        acked[channel].push(seq);
    }
    let _ = finals_tx.send(Some(std::sync::Arc::new(finals.clone())));
    let draining = crate::progress::spinner("waiting for clients to catch up");
    let deadline = Instant::now() + drain;
    while Instant::now() < deadline && !clients.iter().all(|c| c.is_finished()) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    draining.finish_and_clear();
    let _ = stop_tx.send(true);
    (finals, acked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_repeats_and_the_tail_are_counted() {
        let channel = Uuid::new_v4();
        let ready = [ChannelPosition {
            channel_id: channel,
            last_seq: 3,
        }];
        let mut follower = Follower::new(&[channel], &ready);
        assert!(follower.on_event(0, 4, Via::Live));
        assert!(!follower.on_event(0, 4, Via::Replay), "a repeat");
        assert!(follower.on_event(0, 7, Via::Replay), "5 and 6 skipped");
        assert_eq!(follower.tally.gaps, 2);
        assert_eq!(follower.tally.repeats, 1);
        assert_eq!(follower.tally.delivered(), 2);
        assert!(!follower.caught_up(&[9]));
        assert_eq!(follower.settle(&[9]), (2, 6));
        assert_eq!(follower.positions()[0].last_seq, 7);
    }
}
