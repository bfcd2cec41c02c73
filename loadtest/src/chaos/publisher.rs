//! A chaos publisher: one user sending to its own channels at a steady rate, as a careful client
//! does when the cluster under it fails — every send has a nonce, and a send whose `ack` did not
//! arrive is sent again with the same nonce: after `unavailable` or `internal`, after a time-out,
//! and after a reconnect (to the next gateway, with a fresh `identify`).
//!
//! A connection is given up when nothing at all has come from it for [`SILENT_FOR`] although it
//! was sent heartbeats: that is how a client notices a frozen gateway (SIGSTOP keeps its sockets
//! open, so no close ever arrives).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chorus_protocol::{ClientFrame, ErrorCode, ServerFrame};
use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::checker::Ack;
use crate::wire::stamped_text;
use crate::ws::Conn;

/// Sends waiting for their ack, at most (the protocol allows 64 per connection).
const MAX_PENDING: usize = 32;
/// A send unanswered this long is sent again (the cluster's router gives up after 10 s).
const RESEND_AFTER: Duration = Duration::from_secs(12);
/// Heartbeats this often; a connection silent for [`SILENT_FOR`] is dead.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
pub const SILENT_FOR: Duration = Duration::from_secs(4);

pub struct Publisher {
    pub index: usize,
    pub token: String,
    /// (channel index, channel id)
    pub channels: Vec<(usize, Uuid)>,
    pub gateways: Vec<SocketAddr>,
    /// Messages per second.
    pub rate: f64,
    pub size: usize,
    pub origin: Instant,
    /// After the stop, how long to wait for the last acks.
    pub settle: Duration,
}

/// What one publisher did.
#[derive(Debug, Default)]
pub struct PublisherLog {
    /// (channel index, nonce) of every send, once per nonce.
    pub attempted: Vec<(usize, String)>,
    /// Every ack, with its arrival (µs since the origin).
    pub acks: Vec<(Ack, u64)>,
    /// Nonces never acknowledged when the publisher stopped.
    pub unacked: u64,
    /// Sends sent again (same nonce), for any reason.
    pub resent: u64,
    pub reconnects: u64,
    pub failed_connects: u64,
    /// Error frames by code.
    pub errors: BTreeMap<String, u64>,
    /// Sends refused for good (a code that says retrying will not help): must be 0.
    pub refused: u64,
}

struct Pending {
    channel: usize,
    channel_id: Uuid,
    sent_at: Instant,
    /// Set after an error frame: when to send it again.
    retry_at: Option<Instant>,
}

fn frame(nonce: &str, pending: &Pending, origin: Instant, size: usize) -> Message {
    let frame = ClientFrame::Send {
        channel_id: pending.channel_id,
        nonce: nonce.to_string(),
        text: stamped_text(origin.elapsed().as_micros() as u64, size),
        parent_seq: None,
    };
    Message::Text(frame.to_json().into())
}

pub async fn run(me: Publisher, mut stop: watch::Receiver<bool>) -> PublisherLog {
    let mut log = PublisherLog::default();
    let mut pending: HashMap<String, Pending> = HashMap::new();
    let mut gateway = me.index;
    let mut next = 0u64;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / me.rate.max(0.01)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut stopping: Option<Instant> = None;
    let mut backoff = Duration::from_millis(50);
    'connection: loop {
        if stopping.is_some_and(|at| at.elapsed() > me.settle) {
            break;
        }
        let addr = me.gateways[gateway % me.gateways.len()];
        let mut conn = match connect(addr, &me.token).await {
            Ok(conn) => conn,
            Err(_) => {
                log.failed_connects += 1;
                gateway += 1;
                let wait = rand::thread_rng().gen_range(0..=backoff.as_millis() as u64);
                tokio::time::sleep(Duration::from_millis(wait)).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        // Whatever was not acknowledged goes again, same nonces, in the order it was first sent.
        let mut again: Vec<(&String, &mut Pending)> = pending.iter_mut().collect();
        again.sort_by_key(|(nonce, _)| nonce_number(nonce));
        for (nonce, p) in again {
            if conn
                .ws
                .send(frame(nonce, p, me.origin, me.size))
                .await
                .is_err()
            {
                break;
            }
            p.sent_at = Instant::now();
            p.retry_at = None;
            log.resent += 1;
        }
        let mut last_heard = Instant::now();
        let mut heartbeat = tokio::time::interval(HEARTBEAT_EVERY);
        let mut check = tokio::time::interval(Duration::from_millis(50));
        loop {
            if let Some(at) = stopping
                && (pending.is_empty() || at.elapsed() > me.settle)
            {
                break 'connection;
            }
            tokio::select! {
                _ = tick.tick(), if stopping.is_none() && pending.len() < MAX_PENDING => {
                    let (channel, channel_id) = me.channels[next as usize % me.channels.len()];
                    let nonce = format!("p{}-{next}", me.index);
                    next += 1;
                    let p = Pending { channel, channel_id, sent_at: Instant::now(), retry_at: None };
                    log.attempted.push((channel, nonce.clone()));
                    let message = frame(&nonce, &p, me.origin, me.size);
                    pending.insert(nonce, p);
                    if conn.ws.send(message).await.is_err() {
                        break;
                    }
                }
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > SILENT_FOR {
                        break;
                    }
                    let beat = Message::Text(ClientFrame::Heartbeat.to_json().into());
                    if conn.ws.send(beat).await.is_err() {
                        break;
                    }
                }
                _ = check.tick() => {
                    let now = Instant::now();
                    let mut failed = false;
                    for (nonce, p) in pending.iter_mut() {
                        let due = p.retry_at.map_or(now - p.sent_at > RESEND_AFTER, |at| at <= now);
                        if due {
                            if conn.ws.send(frame(nonce, p, me.origin, me.size)).await.is_err() {
                                failed = true;
                                break;
                            }
                            p.sent_at = now;
                            p.retry_at = None;
                            log.resent += 1;
                        }
                    }
                    if failed {
                        break;
                    }
                }
                changed = stop.changed(), if stopping.is_none() => {
                    if changed.is_err() || *stop.borrow() {
                        stopping = Some(Instant::now());
                    }
                }
                message = conn.ws.next() => {
                    let text = match message {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                        Some(Ok(_)) => { last_heard = Instant::now(); continue; }
                    };
                    last_heard = Instant::now();
                    match ServerFrame::parse(&text) {
                        Ok(ServerFrame::Ack { nonce, seq, .. }) => {
                            if let Some(p) = pending.remove(&nonce) {
                                let at = me.origin.elapsed().as_micros() as u64;
                                log.acks.push((Ack { channel: p.channel, nonce, seq }, at));
                            }
                        }
                        Ok(ServerFrame::Error { nonce: Some(nonce), code, retry_after_ms, .. }) => {
                            *log.errors.entry(format!("{code:?}")).or_default() += 1;
                            let retry = matches!(code, ErrorCode::Unavailable | ErrorCode::Internal
                                | ErrorCode::TooManyInFlight | ErrorCode::RateLimited);
                            if retry {
                                if let Some(p) = pending.get_mut(&nonce) {
                                    let wait = retry_after_ms.unwrap_or(0)
                                        + rand::thread_rng().gen_range(50..200);
                                    p.retry_at = Some(Instant::now() + Duration::from_millis(wait));
                                }
                            } else if pending.remove(&nonce).is_some() {
                                log.refused += 1;
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        // The connection is gone (closed, failed, or silent): the next gateway.
        log.reconnects += 1;
        gateway += 1;
    }
    log.unacked = pending.len() as u64;
    log
}

/// Connects, reads `hello`, identifies and waits for `ready`.
async fn connect(addr: SocketAddr, token: &str) -> anyhow::Result<Conn> {
    tokio::time::timeout(Duration::from_secs(5), async {
        let mut conn = Conn::connect(addr, None).await?;
        conn.identify(token).await?;
        anyhow::Ok(conn)
    })
    .await?
}

/// The number in a nonce `p{index}-{n}`, to resend in the original order.
fn nonce_number(nonce: &str) -> u64 {
    nonce
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
