//! `fanout`: C channels, each with M subscribed connections and one publisher, at a total rate;
//! measures deliveries/s, loss, duplicates, order and end-to-end latency.
//!
//! Every message carries its send time (µs since a shared origin; senders and receivers are in
//! this process), so each receiver measures send→receipt without clock sync.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chorus_protocol::{ClientFrame, ServerFrame};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::api::Api;
use crate::report::percentiles_ms;
use crate::ws::Conn;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Channels.
    #[arg(long, default_value_t = 10)]
    channels: usize,
    /// Subscribed connections per channel.
    #[arg(long, default_value_t = 100)]
    members: usize,
    /// Distinct users per channel the member connections log in as.
    #[arg(long, default_value_t = 10)]
    users_per_channel: usize,
    /// Total messages per second over all publishers (one publisher per channel).
    #[arg(long, default_value_t = 1500)]
    rate: u64,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Message size in bytes (at least 20: the send timestamp).
    #[arg(long, default_value_t = 100)]
    size: usize,
}

/// What one receiver saw.
struct Seen {
    latency: Histogram<u64>,
    received: u64,
    duplicates: u64,
    out_of_order: u64,
    last_seq: u64,
}

pub async fn run(api: &Api, ws: SocketAddr, args: Args) -> anyhow::Result<Value> {
    let owner = api.user("fanout-owner").await?;
    let workspace = api.workspace(&owner).await?;
    let mut channels = Vec::new();
    for c in 0..args.channels {
        let channel = api
            .channel(&owner, workspace, &format!("fanout-{c}"))
            .await?;
        let mut users = Vec::new();
        for u in 0..args.users_per_channel.max(1) {
            let user = api.user(&format!("fan{c}x{u}")).await?;
            api.add_member(&owner, workspace, &user).await?;
            api.join(&user, channel).await?;
            users.push(user);
        }
        channels.push((channel, users));
    }
    eprintln!("setup done: {} channels", channels.len());

    // Receivers: every member connection reads until told to stop.
    let origin = Instant::now();
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut receivers = Vec::new();
    for (channel, users) in &channels {
        for m in 0..args.members {
            let mut conn = Conn::connect(ws, None).await?;
            conn.identify(&users[m % users.len()].token).await?;
            let (channel, stop) = (*channel, stop.clone());
            receivers.push(tokio::spawn(async move {
                let mut seen = Seen {
                    latency: Histogram::<u64>::new(3).expect("histogram"),
                    received: 0,
                    duplicates: 0,
                    out_of_order: 0,
                    last_seq: 0,
                };
                let stopped = stop.notified();
                tokio::pin!(stopped);
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        message = conn.ws.next() => {
                            let Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) = message else { break };
                            if let Ok(ServerFrame::Message(event)) = ServerFrame::parse(&text) {
                                if event.channel_id != channel { continue }
                                if event.seq <= seen.last_seq {
                                    if event.seq == seen.last_seq { seen.duplicates += 1 } else { seen.out_of_order += 1 }
                                    continue;
                                }
                                seen.last_seq = event.seq;
                                seen.received += 1;
                                if let Ok(sent) = event.text[..20].parse::<u64>() {
                                    let now = origin.elapsed().as_micros() as u64;
                                    let _ = seen.latency.record(now.saturating_sub(sent).max(1));
                                }
                            }
                        }
                    }
                }
                seen
            }));
        }
    }
    eprintln!("{} receivers connected", receivers.len());

    // Publishers: one per channel, each at rate / channels.
    let per_channel = (args.rate as f64 / args.channels as f64).max(0.1);
    let acks = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let mut publishers = Vec::new();
    for (channel, users) in &channels {
        let mut conn = Conn::connect(ws, None).await?;
        conn.identify(&users[0].token).await?;
        let (channel, acks, size, duration) = (
            *channel,
            acks.clone(),
            args.size.max(20),
            args.duration_secs,
        );
        publishers.push(tokio::spawn(async move {
            let (mut sink, mut stream) = conn.ws.split();
            let sent_at: Arc<std::sync::Mutex<std::collections::HashMap<String, u64>>> =
                Default::default();
            let reader = tokio::spawn({
                let (sent_at, acks) = (sent_at.clone(), acks.clone());
                async move {
                    while let Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) =
                        stream.next().await
                    {
                        if let Ok(ServerFrame::Ack { nonce, .. }) = ServerFrame::parse(&text) {
                            let sent = sent_at.lock().expect("lock").remove(&nonce);
                            if let Some(sent) = sent {
                                let now = origin.elapsed().as_micros() as u64;
                                let _ = acks.lock().await.record(now.saturating_sub(sent).max(1));
                            }
                        }
                    }
                }
            });
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_channel));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let end = Instant::now() + Duration::from_secs(duration);
            let mut sent = 0u64;
            while Instant::now() < end {
                tick.tick().await;
                let now = origin.elapsed().as_micros() as u64;
                let nonce = Uuid::new_v4().simple().to_string();
                let text = format!("{now:020}{}", "x".repeat(size - 20));
                sent_at.lock().expect("lock").insert(nonce.clone(), now);
                let frame = ClientFrame::Send {
                    channel_id: channel,
                    nonce,
                    text,
                };
                use futures_util::SinkExt;
                if sink
                    .send(tokio_tungstenite::tungstenite::Message::Text(
                        frame.to_json().into(),
                    ))
                    .await
                    .is_err()
                {
                    break;
                }
                sent += 1;
            }
            // Wait (up to 60 s) for every acknowledgement: a backlog is part of the result.
            let deadline = Instant::now() + Duration::from_secs(60);
            while !sent_at.lock().expect("lock").is_empty() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            reader.abort();
            let acked = sent - sent_at.lock().expect("lock").len() as u64;
            (sent, acked)
        }));
    }
    let started = Instant::now();
    let mut sent = 0;
    let mut acked = 0;
    for publisher in publishers {
        let (s, a) = publisher.await.context("publisher")?;
        sent += s;
        acked += a;
    }
    // From the first send to the last acknowledgement.
    let elapsed = started.elapsed().as_secs_f64();
    // Deliveries trail acknowledgements slightly; give receivers a moment to drain.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.notify_waiters();
    let mut latency = Histogram::<u64>::new(3)?;
    let (mut received, mut duplicates, mut out_of_order, mut missing) = (0, 0, 0, 0);
    for receiver in receivers {
        let seen = receiver.await?;
        latency.add(&seen.latency)?;
        received += seen.received;
        duplicates += seen.duplicates;
        out_of_order += seen.out_of_order;
        missing += seen.last_seq.saturating_sub(seen.received);
    }
    let expected = acked * args.members as u64;
    Ok(json!({
        "scenario": "fanout",
        "channels": args.channels,
        "members_per_channel": args.members,
        "target_rate_msg_s": args.rate,
        "message_bytes": args.size,
        "sent": sent,
        "acked": acked,
        "expected_deliveries": expected,
        "received_deliveries": received,
        "lost": expected.saturating_sub(received),
        "gaps_inside_streams": missing,
        "duplicates": duplicates,
        "order_violations": out_of_order,
        "deliveries_per_s": received as f64 / elapsed.max(1e-9),
        "send_to_receipt_ms": percentiles_ms(&latency),
        "send_to_ack_ms": percentiles_ms(&*acks.lock().await),
    }))
}
