//! A chaos subscriber: one user in every channel of the run, recording every `message` event it
//! is given — live, replayed on `resume`, or fetched over REST after `resync_required` — raw, in
//! arrival order, for the checker. It does not drop repeats or mend gaps: that is the checker's
//! to see. When its connection fails (closed, refused, or silent for [`SILENT_FOR`] despite
//! heartbeats) it backs off and `resume`s on the next gateway with the highest seq it has of each
//! channel, as the protocol tells a client to.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chorus_protocol::{ChannelPosition, ClientFrame, ServerFrame};
use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use super::publisher::{HEARTBEAT_EVERY, SILENT_FOR};
use crate::api::Api;
use crate::checker::{Event, Stream};
use crate::wire::Peek;
use crate::ws::Conn;

/// A subscriber that cannot resume for this long has failed (sessions live 2 minutes).
const GIVE_UP_AFTER: Duration = Duration::from_secs(90);

pub struct Subscriber {
    pub index: usize,
    pub token: String,
    pub channels: Vec<Uuid>,
    pub gateways: Vec<SocketAddr>,
    /// REST APIs to fetch from after `resync_required`, tried in turn.
    pub apis: Vec<Api>,
    /// Told once the first `identify` has been answered (or has failed): publishers start only
    /// then, so every stream starts before the first message.
    pub identified: tokio::sync::mpsc::UnboundedSender<()>,
}

#[derive(Debug, Default)]
pub struct SubscriberLog {
    pub streams: Vec<Stream>,
    pub reconnects: u64,
    pub failed_resumes: u64,
    pub resyncs: u64,
    /// Why it stopped early, if it did.
    pub failure: Option<String>,
}

struct State<'a> {
    me: &'a Subscriber,
    index_of: HashMap<String, usize>,
    highest: Vec<u64>,
    log: SubscriberLog,
}

impl State<'_> {
    fn record(&mut self, channel: usize, seq: u64, nonce: &str) {
        self.log.streams[channel]
            .events
            .push(Event::new(seq, nonce));
        self.highest[channel] = self.highest[channel].max(seq);
    }

    /// One text frame: a message event is recorded; `resync_required` fetches over REST.
    async fn on_text(&mut self, text: &str) -> anyhow::Result<()> {
        let Some(peek) = Peek::parse(text) else {
            return Ok(());
        };
        if let Some((channel, seq, _)) = peek.message() {
            if let Some(&index) = self.index_of.get(channel) {
                let nonce = peek.nonce.as_deref().unwrap_or_default().to_string();
                self.record(index, seq, &nonce);
            }
            return Ok(());
        }
        if peek.kind == "resync_required"
            && let Ok(ServerFrame::ResyncRequired {
                channel_id,
                after_seq,
                last_seq,
            }) = ServerFrame::parse(text)
        {
            self.log.resyncs += 1;
            let index = *self
                .index_of
                .get(&channel_id.to_string())
                .context("resync of an unknown channel")?;
            let mut cursor = after_seq;
            while cursor < last_seq {
                let page = self.fetch(channel_id, cursor).await?;
                let Some(&(newest, _)) = page.last() else {
                    break;
                };
                for (seq, nonce) in page.iter().filter(|(seq, _)| *seq <= last_seq) {
                    self.record(index, *seq, nonce);
                }
                cursor = newest;
            }
        }
        Ok(())
    }

    /// One page of events after `after`, from whichever API answers (a few rounds).
    async fn fetch(&self, channel: Uuid, after: u64) -> anyhow::Result<Vec<(u64, String)>> {
        let mut last_error = None;
        for round in 0..20u64 {
            for api in &self.me.apis {
                match api.events(&self.me.token, channel, after, 200).await {
                    Ok(page) => return Ok(page),
                    Err(err) => last_error = Some(err),
                }
            }
            tokio::time::sleep(Duration::from_millis(100 * (round + 1))).await;
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no API to fetch from")))
    }

    fn caught_up(&self, finals: &[u64]) -> bool {
        self.highest
            .iter()
            .zip(finals)
            .all(|(have, want)| have >= want)
    }

    fn positions(&self) -> Vec<ChannelPosition> {
        self.me
            .channels
            .iter()
            .zip(&self.highest)
            .map(|(id, seq)| ChannelPosition {
                channel_id: *id,
                last_seq: *seq,
            })
            .collect()
    }
}

/// Runs until it has every channel's final seq (`finals`, in channel order) or `stop`.
pub async fn run(
    me: Subscriber,
    mut finals: watch::Receiver<Option<Arc<Vec<u64>>>>,
    mut stop: watch::Receiver<bool>,
) -> SubscriberLog {
    let mut state = State {
        me: &me,
        index_of: me
            .channels
            .iter()
            .enumerate()
            .map(|(i, id)| (id.to_string(), i))
            .collect(),
        highest: vec![0; me.channels.len()],
        log: SubscriberLog::default(),
    };
    let mut gateway = me.index;
    let first = identify(&mut state, me.gateways[gateway % me.gateways.len()]).await;
    let _ = me.identified.send(());
    let (mut conn, session_id) = match first {
        Ok(found) => found,
        Err(err) => {
            state.log.failure = Some(format!("identify: {err:#}"));
            return state.log;
        }
    };
    loop {
        // Read until the connection fails, the run is over, or this subscriber has everything.
        let mut last_heard = Instant::now();
        let mut heartbeat = tokio::time::interval(HEARTBEAT_EVERY);
        let done = loop {
            let want = finals.borrow().clone();
            if want.is_some_and(|want| state.caught_up(&want)) {
                break true;
            }
            tokio::select! {
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > SILENT_FOR {
                        break false;
                    }
                    let beat = Message::Text(ClientFrame::Heartbeat.to_json().into());
                    if conn.ws.send(beat).await.is_err() {
                        break false;
                    }
                }
                _ = finals.changed() => {}
                _ = stop.changed() => break true,
                message = conn.ws.next() => {
                    let text = match message {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break false,
                        Some(Ok(_)) => { last_heard = Instant::now(); continue; }
                    };
                    last_heard = Instant::now();
                    if let Err(err) = state.on_text(&text).await {
                        state.log.failure = Some(format!("{err:#}"));
                        break true;
                    }
                }
            }
        };
        if done {
            break;
        }
        state.log.reconnects += 1;
        let lost_at = Instant::now();
        let mut backoff = Duration::from_millis(50);
        conn = loop {
            if *stop.borrow() {
                return finish(state);
            }
            gateway += 1;
            let wait = rand::thread_rng().gen_range(0..=backoff.as_millis() as u64);
            tokio::time::sleep(Duration::from_millis(wait)).await;
            match resume(
                &mut state,
                me.gateways[gateway % me.gateways.len()],
                session_id,
            )
            .await
            {
                Ok(conn) => break conn,
                Err(err) => {
                    state.log.failed_resumes += 1;
                    if lost_at.elapsed() > GIVE_UP_AFTER {
                        state.log.failure = Some(format!("no resume: {err:#}"));
                        return finish(state);
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        };
    }
    finish(state)
}

fn finish(state: State<'_>) -> SubscriberLog {
    state.log
}

/// Connects, identifies; the `ready` positions are where each stream starts.
async fn identify(state: &mut State<'_>, addr: SocketAddr) -> anyhow::Result<(Conn, Uuid)> {
    let mut conn = Conn::connect(addr, None).await?;
    let ready = conn.identify(&state.me.token).await?;
    let ServerFrame::Ready {
        session_id,
        channels,
        ..
    } = ready
    else {
        bail!("expected ready");
    };
    state.log.streams = state
        .me
        .channels
        .iter()
        .enumerate()
        .map(|(index, id)| Stream {
            channel: index,
            start_after: channels
                .iter()
                .find(|p| p.channel_id == *id)
                .map_or(0, |p| p.last_seq),
            events: Vec::new(),
        })
        .collect();
    state.highest = state.log.streams.iter().map(|s| s.start_after).collect();
    Ok((conn, session_id))
}

/// Connects and resumes from the highest seq of each channel; records the replay.
async fn resume(state: &mut State<'_>, addr: SocketAddr, session_id: Uuid) -> anyhow::Result<Conn> {
    let mut conn = Conn::connect(addr, None).await?;
    conn.send(&ClientFrame::Resume {
        intents: None,
        token: state.me.token.clone(),
        session_id,
        channels: state.positions(),
    })
    .await?;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), conn.ws.next())
            .await
            .context("resume answered nothing")?
            .context("connection ended")??;
        let text = match message {
            Message::Text(text) => text,
            Message::Close(frame) => bail!("resume refused: {frame:?}"),
            _ => continue,
        };
        if matches!(Peek::parse(&text), Some(p) if p.kind == "resumed") {
            return Ok(conn);
        }
        state.on_text(&text).await?;
    }
}
