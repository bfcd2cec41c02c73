//! `latency`: one sender, one receiver, one message at a time; time from send to receipt.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::bail;
use chorus_protocol::{ClientFrame, ServerFrame};
use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::api::Api;
use crate::report::percentiles_ms;
use crate::ws::Conn;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Messages to send.
    #[arg(long, default_value_t = 1000)]
    pub messages: u64,
    /// Pause between messages.
    #[arg(long, default_value_t = 5)]
    pub interval_ms: u64,
    /// Message size in bytes.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
}

impl Default for Args {
    fn default() -> Self {
        crate::defaults()
    }
}

pub async fn run(api: &Api, ws: SocketAddr, args: Args) -> anyhow::Result<Value> {
    let sender_user = api.user("sender").await?;
    let receiver_user = api.user("receiver").await?;
    let workspace = api.workspace(&sender_user).await?;
    api.add_member(&sender_user, workspace, &receiver_user)
        .await?;
    let channel = api.channel(&sender_user, workspace, "latency").await?;
    api.join(&receiver_user, channel).await?;

    let mut sender = Conn::connect(ws, None).await?;
    sender.identify(&sender_user.token).await?;
    let mut receiver = Conn::connect(ws, None).await?;
    receiver.identify(&receiver_user.token).await?;

    let text = "x".repeat(args.size.max(1));
    let mut receipt = Histogram::<u64>::new(3)?;
    let mut ack = Histogram::<u64>::new(3)?;
    let started = Instant::now();
    for n in 0..args.messages {
        let nonce = format!("lat-{n}");
        let sent = Instant::now();
        sender
            .send(&ClientFrame::Send {
                channel_id: channel,
                nonce: nonce.clone(),
                text: text.clone(),
                parent_seq: None,
            })
            .await?;
        loop {
            match receiver.next().await? {
                ServerFrame::Message(event) if event.nonce == nonce => break,
                _ => continue,
            }
        }
        receipt.record(sent.elapsed().as_micros() as u64)?;
        loop {
            match sender.next().await? {
                ServerFrame::Ack { nonce: n, .. } if n == nonce => break,
                ServerFrame::Error { code, message, .. } => {
                    bail!("send failed: {code:?} {message}")
                }
                _ => continue,
            }
        }
        ack.record(sent.elapsed().as_micros() as u64)?;
        tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
    }
    Ok(json!({
        "scenario": "latency",
        "messages": args.messages,
        "size_bytes": args.size,
        "duration_s": started.elapsed().as_secs_f64(),
        "send_to_receipt_ms": percentiles_ms(&receipt),
        "send_to_ack_ms": percentiles_ms(&ack),
    }))
}
