//! A publisher connection: sends stamped messages to its channels in turn at a steady rate, and
//! collects what the acks say (which seqs exist, send→ack latency, refusals).
//!
//! Pacing is a `tokio::time::interval` with `MissedTickBehavior::Burst`: a publisher that falls
//! behind (a slow server, a busy load generator) catches up, so the offered rate is the asked
//! rate rather than silently lower.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chorus_protocol::{ClientFrame, ServerFrame};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::timeline::histogram;
use crate::wire::{Peek, stamped_text};
use crate::ws::Conn;

/// What one publisher's connection was told.
#[derive(Default)]
pub struct Acks {
    /// (channel index, seq) of every acknowledged send.
    pub seqs: Vec<(usize, u64)>,
    /// When each of `seqs` was acknowledged, µs since the run's origin (same order).
    pub acked_at: Vec<u64>,
    /// Send → ack, µs.
    pub latency: Option<Histogram<u64>>,
    /// Refused sends by error code.
    pub errors: BTreeMap<String, u64>,
}

/// What a publisher sends.
#[derive(Clone, Debug)]
pub struct Publishing {
    /// Names the publisher in its nonces (`p{tag}-{k}`), which are unique per run.
    pub tag: usize,
    /// (the caller's index of the channel, its id), posted to in turn.
    pub channels: Vec<(usize, Uuid)>,
    /// Messages per second.
    pub rate: f64,
    /// Bytes per message, send stamp included.
    pub size: usize,
    /// The run's origin: messages are stamped with µs since it.
    pub origin: Instant,
}

/// Sends until `stop` resolves, then waits (up to 30 s) for every ack. Returns the number sent
/// and what the acks said.
pub async fn publish(
    conn: Conn,
    what: Publishing,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<(u64, Acks)> {
    let Publishing {
        tag: publisher,
        channels,
        rate,
        size,
        origin,
    } = what;
    let (mut sink, mut stream) = conn.ws.split();
    // Send time of send `k` (its nonce is `p{publisher}-{k}`), and how many have been answered.
    let sent_at = Arc::new(Mutex::new(Vec::<u64>::new()));
    let answered = Arc::new(AtomicU64::new(0));
    let acks = Arc::new(Mutex::new(Acks {
        latency: Some(histogram()),
        ..Acks::default()
    }));
    let reader = tokio::spawn({
        let (sent_at, answered, acks) = (sent_at.clone(), answered.clone(), acks.clone());
        let channels = channels.clone();
        async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                // Message echoes of its own channels are the bulk of what a publisher gets.
                if Peek::parse(&text).is_some_and(|p| p.kind == "message") {
                    continue;
                }
                let frame = ServerFrame::parse(&text);
                let now = origin.elapsed().as_micros() as u64;
                let (nonce, outcome) = match frame {
                    Ok(ServerFrame::Ack {
                        nonce,
                        channel_id,
                        seq,
                        ..
                    }) => (nonce, Ok((channel_id, seq))),
                    Ok(ServerFrame::Error {
                        nonce: Some(nonce),
                        code,
                        ..
                    }) => (nonce, Err(format!("{code:?}"))),
                    _ => continue,
                };
                let Some(k) = nonce
                    .rsplit('-')
                    .next()
                    .and_then(|k| k.parse::<usize>().ok())
                else {
                    continue;
                };
                let sent = sent_at.lock().expect("lock").get(k).copied();
                let mut acks = acks.lock().expect("lock");
                match outcome {
                    Ok((channel_id, seq)) => {
                        if let Some(&(n, _)) = channels.iter().find(|(_, id)| *id == channel_id) {
                            acks.seqs.push((n, seq));
                            acks.acked_at.push(now);
                        }
                        if let (Some(sent), Some(h)) = (sent, acks.latency.as_mut()) {
                            h.record(now.saturating_sub(sent)).ok();
                        }
                    }
                    Err(code) => *acks.errors.entry(code).or_default() += 1,
                }
                answered.fetch_add(1, Ordering::Relaxed);
            }
        }
    });

    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.001)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = 0u64;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        let now = origin.elapsed().as_micros() as u64;
        let (_, channel_id) = channels[sent as usize % channels.len()];
        sent_at.lock().expect("lock").push(now);
        let frame = ClientFrame::Send {
            channel_id,
            nonce: format!("p{publisher}-{sent}"),
            text: stamped_text(now, size),
            parent_seq: None,
        };
        if sink
            .send(Message::Text(frame.to_json().into()))
            .await
            .is_err()
        {
            break;
        }
        sent += 1;
    }
    // A backlog of acks is part of the result: wait for it, within reason.
    let deadline = Instant::now() + Duration::from_secs(30);
    while answered.load(Ordering::Relaxed) < sent && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    reader.abort();
    let acks = std::mem::take(&mut *acks.lock().expect("lock"));
    Ok((sent, acks))
}
