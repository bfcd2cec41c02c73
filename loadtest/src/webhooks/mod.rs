//! `webhooks`: how many outgoing webhook deliveries per second a node sustains to one local
//! endpoint. The load tester runs the endpoint itself ([`sink`]), subscribes it to `message`
//! events in `--channels` channels, posts `--messages` messages over REST and waits until each
//! acknowledged one was delivered, well signed; then it counts what was missing or repeated
//! ([`tally`]) and the delivery latency after the ack.

pub mod signature;
pub mod sink;
pub mod tally;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use uuid::Uuid;

use crate::api::{Api, User};
use crate::net::cpu_seconds;
use crate::report::percentiles_ms;
use tally::Key;

/// Tries of one post: a post refused as `overloaded` is repeated with the same nonce, which
/// the server de-duplicates, so a retry never makes a second message.
const POST_TRIES: u32 = 3;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Channels the messages are spread over (round robin), all in one subscription.
    #[arg(long, default_value_t = 4)]
    pub channels: usize,
    /// Messages to post.
    #[arg(long, default_value_t = 20_000)]
    pub messages: u64,
    /// Posts in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Posts per second in total; 0 posts as fast as the acks come back.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Message size in bytes.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// The sink answers each delivery after this long (a slow receiver).
    #[arg(long, default_value_t = 0)]
    pub sink_delay_ms: u64,
    /// Give up waiting for the last deliveries after this long once posting is done.
    #[arg(long, default_value_t = 120)]
    pub drain_timeout_secs: u64,
    /// After the last expected delivery, keep listening this long for repeats.
    #[arg(long, default_value_t = 2_000)]
    pub grace_ms: u64,
    /// The node's process id, to report the CPU time it used during the run.
    #[arg(long)]
    pub server_pid: Option<u32>,
}

impl Default for Args {
    fn default() -> Self {
        crate::defaults()
    }
}

pub async fn run(api: &Api, args: Args) -> anyhow::Result<Value> {
    anyhow::ensure!(args.channels >= 1, "--channels must be at least 1");
    let (addr, sink) = sink::start(Duration::from_millis(args.sink_delay_ms)).await?;
    let admin = api.user("webhook-admin").await?;
    let workspace = api.workspace(&admin).await?;
    let mut channels = Vec::with_capacity(args.channels);
    for n in 0..args.channels {
        channels.push(
            api.channel(&admin, workspace, &format!("hooks-{n}"))
                .await?,
        );
    }
    let url = format!("http://{addr}{}", sink::PATH);
    let secret = api
        .subscribe(&admin, workspace, &url, &["message"], &channels)
        .await?;
    sink.set_secret(secret);
    eprintln!(
        "webhooks: sink at {url}, {} channels; posting {} messages",
        channels.len(),
        args.messages
    );

    let cpu_before = args.server_pid.map(cpu_seconds).transpose()?;
    let started = Instant::now();
    let posted = post_all(api, &admin, &channels, &args).await;
    let posting = started.elapsed();
    let (acks, failed_posts) = posted?;

    let deadline = Instant::now() + Duration::from_secs(args.drain_timeout_secs);
    while tally::missing(&acks, &sink.arrivals()) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained = started.elapsed();
    let cpu_after = args.server_pid.map(cpu_seconds).transpose()?;
    tokio::time::sleep(Duration::from_millis(args.grace_ms)).await;

    let counted = tally::tally(&acks, &sink.arrivals());
    let bad_signatures = sink.bad_signatures();
    let clean = counted.missing == 0 && counted.duplicated == 0 && bad_signatures == 0;
    let server_cpu = match (cpu_before, cpu_after) {
        (Some(before), Some(after)) => json!({
            "seconds": after - before,
            "cores": (after - before) / drained.as_secs_f64(),
        }),
        _ => Value::Null,
    };
    let latency = percentiles_ms(&counted.latency_us);
    eprintln!(
        "webhooks: {} acked, {} delivered, {} missing, {} duplicated, {} bad signatures; \
         {:.0} deliveries/s; after the ack p50 {} ms, p99 {} ms, max {} ms",
        counted.acked,
        counted.received,
        counted.missing,
        counted.duplicated,
        bad_signatures,
        counted.deliveries_per_sec(),
        latency["p50"],
        latency["p99"],
        latency["max"],
    );
    Ok(json!({
        "scenario": "webhooks",
        "params": {
            "channels": args.channels,
            "messages": args.messages,
            "concurrency": args.concurrency,
            "rate": args.rate,
            "size": args.size,
            "sink_delay_ms": args.sink_delay_ms,
        },
        "acked": counted.acked,
        "failed_posts": failed_posts,
        "posted_per_sec": counted.acked as f64 / posting.as_secs_f64(),
        "received": counted.received,
        "missing": counted.missing,
        "duplicated": counted.duplicated,
        "unexpected": counted.unexpected,
        "bad_signatures": bad_signatures,
        "deliveries_per_sec": counted.deliveries_per_sec(),
        "delivery_span_secs": counted.span.as_secs_f64(),
        "posting_secs": posting.as_secs_f64(),
        "drained_secs": drained.as_secs_f64(),
        "latency_after_ack_ms": latency,
        "server_cpu": server_cpu,
        "clean": clean,
    }))
}

/// Posts `args.messages` messages round robin over `channels` from `args.concurrency` tasks,
/// paced at `args.rate` when it is set; returns each acknowledged message's ack time and the
/// number of posts that failed every try.
async fn post_all(
    api: &Api,
    user: &User,
    channels: &[Uuid],
    args: &Args,
) -> anyhow::Result<(HashMap<Key, Instant>, u64)> {
    let next = Arc::new(AtomicU64::new(0));
    let text = "w".repeat(args.size.max(1));
    let start = tokio::time::Instant::now();
    let mut posters = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency.max(1) {
        let (api, user, channels, text, next) = (
            api.clone(),
            user.clone(),
            channels.to_vec(),
            text.clone(),
            next.clone(),
        );
        let (messages, rate) = (args.messages, args.rate);
        posters.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            let mut failed = 0u64;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= messages {
                    break;
                }
                if rate > 0 {
                    tokio::time::sleep_until(
                        start + Duration::from_secs_f64(n as f64 / rate as f64),
                    )
                    .await;
                }
                let channel = channels[n as usize % channels.len()];
                let nonce = format!("wh-{n}");
                let mut outcome = None;
                for _ in 0..POST_TRIES {
                    match api.post_message_seq(&user, channel, &text, &nonce).await {
                        Ok(seq) => {
                            outcome = Some(seq);
                            break;
                        }
                        Err(error) => {
                            eprintln!("post {n} failed: {error:#}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
                match outcome {
                    Some(seq) => acks.push(((channel, seq), Instant::now())),
                    None => failed += 1,
                }
            }
            (acks, failed)
        }));
    }
    let mut acks = HashMap::with_capacity(args.messages as usize);
    let mut failed = 0;
    for poster in posters {
        let (theirs, their_failed) = poster.await?;
        acks.extend(theirs);
        failed += their_failed;
    }
    Ok((acks, failed))
}
