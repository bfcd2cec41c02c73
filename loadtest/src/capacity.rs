//! `ramp`: the fan-out capacity of a deployment. The fan-out of `fanout` (C channels × M member
//! connections, P publishers) is driven at a publish rate that grows step by step — each step
//! held for `--step-secs`, then drained — until a step fails: its send→receipt p99 crosses
//! `--max-p99-ms`, or a delivery is lost, repeated or out of order, or the server refuses sends or
//! closes receivers. The capacity is the last step that passed: its deliveries/s and its p99.
//!
//! The receivers stay connected through every step, so each step's loss is checked by
//! `(channel, seq)` against that step's acks, as `fanout` does for a whole run. Each step opens
//! fresh publisher connections with nonces unique to the step (a nonce reused within the dedup
//! window would be answered as a duplicate and create nothing).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use chorus_protocol::ClientFrame;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;

use crate::api::Api;
use crate::fanout::{Fleet, SeqSet, Shape};
use crate::net::Spread;
use crate::progress;
use crate::publisher::{Acks, Publishing, publish};
use crate::timeline::{Samples, Timeline};
use crate::wire::{Peek, sent_micros};
use crate::ws::Conn;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Channels (C).
    #[arg(long, default_value_t = 10)]
    pub channels: usize,
    /// Member connections per channel (M), each subscribed to its channel only.
    #[arg(long, default_value_t = 100)]
    pub members: usize,
    /// Distinct users per channel the member connections log in as.
    #[arg(long, default_value_t = 10)]
    pub users_per_channel: usize,
    /// Publisher connections (P); channels are dealt to publishers in turn.
    #[arg(long, default_value_t = 10)]
    pub publishers: usize,
    /// Total messages per second of the first step (each is delivered to M members).
    #[arg(long, default_value_t = 100)]
    pub start_rate: u64,
    /// Each step's rate is the previous one's times this.
    #[arg(long, default_value_t = 1.5)]
    pub growth: f64,
    /// Steps at most; the ramp also stops at the first step that fails.
    #[arg(long, default_value_t = 12)]
    pub max_steps: usize,
    /// Seconds each step publishes for.
    #[arg(long, default_value_t = 10)]
    pub step_secs: u64,
    /// A step whose send→receipt p99 is above this fails.
    #[arg(long, default_value_t = 100.0)]
    pub max_p99_ms: f64,
    /// Message size in bytes (S), send timestamp included.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// After a step's last ack, how long receivers may take to get everything before it counts
    /// as lost.
    #[arg(long, default_value_t = 5)]
    pub drain_secs: u64,
    /// Write the steps (rate, deliveries/s, latency) and the per-second series as a
    /// self-contained HTML page.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    #[command(flatten)]
    pub spread: Spread,
}

impl Default for Args {
    fn default() -> Self {
        crate::defaults()
    }
}

/// One receiver's record, shared with the step checker. The receiver takes the lock once per
/// delivery (uncontended but for the checker at the end of each step).
struct Record {
    seqs: SeqSet,
    previous: u64,
    duplicates: u64,
    order_violations: u64,
    foreign: u64,
    /// Fresh deliveries during the current step, and when the last one arrived (µs since origin).
    step_received: u64,
    step_last_receipt_us: u64,
    /// Send→receipt of the current step's deliveries (all filed under second 0: only the step's
    /// overall histogram is read).
    step_samples: Samples,
    /// Send→receipt by second of the run, for the plot.
    run_samples: Samples,
    closed_early: Option<String>,
}

/// A step's verdict and figures.
struct Step {
    row: Value,
    failures: Vec<String>,
}

pub async fn run(api: &Api, ws: SocketAddr, args: Args) -> anyhow::Result<Value> {
    let shape = Shape {
        channels: args.channels,
        members: args.members,
        users_per_channel: args.users_per_channel,
        publishers: args.publishers,
    };
    let mut fleet = Fleet::assemble(api, ws, shape, &args.spread, "ramp").await?;
    let (c, m, p) = (
        fleet.channels.len(),
        fleet.members,
        fleet.publisher_users.len(),
    );

    let origin = Instant::now();
    let received = Arc::new(AtomicU64::new(0));
    let run_timeline = Timeline::shared();
    let channel_ids: Vec<String> = fleet.channels.iter().map(|id| id.to_string()).collect();
    let mut records = Vec::new();
    let mut stops = Vec::new();
    let mut receiving = Vec::new();
    for r in std::mem::take(&mut fleet.receivers.conns) {
        let channel = r.index / m;
        let record = Arc::new(Mutex::new(Record {
            seqs: SeqSet::default(),
            previous: 0,
            duplicates: 0,
            order_violations: 0,
            foreign: 0,
            step_received: 0,
            step_last_receipt_us: 0,
            step_samples: Samples::new(&Timeline::shared()),
            run_samples: Samples::new(&run_timeline),
            closed_early: None,
        }));
        let (stop, stopped) = oneshot::channel();
        stops.push(stop);
        receiving.push(tokio::spawn(receive(
            r.conn,
            channel_ids[channel].clone(),
            record.clone(),
            received.clone(),
            origin,
            stopped,
        )));
        records.push((channel, record));
    }

    let mut steps = Vec::new();
    let mut capacity = Value::Null;
    let mut stopped_because = format!("{} steps passed", args.max_steps.max(1));
    let mut rate = args.start_rate.max(1) as f64;
    for step in 0..args.max_steps.max(1) {
        let outcome = run_step(step, rate, &fleet, ws, &args, &records, &received, origin).await?;
        eprintln!(
            "step {step}: {:.0} msg/s → {:.0} deliveries/s, p99 {:.1} ms{}",
            rate,
            outcome.row["deliveries_per_s"].as_f64().unwrap_or(0.0),
            outcome.row["p99_ms"].as_f64().unwrap_or(0.0),
            if outcome.failures.is_empty() {
                String::new()
            } else {
                format!(": failed ({})", outcome.failures.join(", "))
            }
        );
        let passed = outcome.failures.is_empty();
        if passed {
            capacity = json!({
                "step": step,
                "rate_msg_s": outcome.row["rate_msg_s"],
                "deliveries_per_s": outcome.row["deliveries_per_s"],
                "p99_ms": outcome.row["p99_ms"],
            });
        } else {
            stopped_because = format!("step {step} failed: {}", outcome.failures.join(", "));
        }
        steps.push(outcome.row);
        if !passed {
            break;
        }
        rate = (rate * args.growth).max(rate + 1.0);
    }

    for stop in stops {
        let _ = stop.send(());
    }
    for receiver in receiving {
        receiver.await.context("receiver")?;
    }
    // Every receiver's samples are in once its task has ended and its record is dropped here.
    drop(records);
    let timeline = run_timeline.lock().expect("timeline lock");
    Ok(json!({
        "scenario": "ramp",
        "channels": c,
        "members_per_channel": m,
        "publishers": p,
        "receivers_connected": fleet.connected.iter().sum::<u64>(),
        "connection_failures": fleet.receivers.failures,
        "start_rate_msg_s": args.start_rate,
        "growth": args.growth,
        "step_secs": args.step_secs,
        "max_p99_ms": args.max_p99_ms,
        "message_bytes": args.size,
        "capacity": capacity,
        "stopped_because": stopped_because,
        "steps": steps,
        "timeseries_counts": "deliveries",
        "timeseries": timeline.series(),
    }))
}

/// Publishes at `rate` for a step, drains, and checks every receiver against the step's acks.
#[allow(clippy::too_many_arguments)]
async fn run_step(
    step: usize,
    rate: f64,
    fleet: &Fleet,
    ws: SocketAddr,
    args: &Args,
    records: &[(usize, Arc<Mutex<Record>>)],
    received: &AtomicU64,
    origin: Instant,
) -> anyhow::Result<Step> {
    let c = fleet.channels.len();
    let p = fleet.publisher_users.len();
    let step_timeline = Timeline::shared();
    let (mut duplicates_before, mut order_before) = (0, 0);
    for (_, record) in records {
        let mut record = record.lock().expect("record lock");
        record.step_samples = Samples::new(&step_timeline);
        record.step_received = 0;
        record.step_last_receipt_us = 0;
        duplicates_before += record.duplicates;
        order_before += record.order_violations;
    }
    let received_before = received.load(Ordering::Relaxed);

    let publishers = fleet.open_publishers(ws, &args.spread).await?;
    let started_us = origin.elapsed().as_micros() as u64;
    let publishing: Vec<_> = publishers
        .conns
        .into_iter()
        .enumerate()
        .map(|(k, publisher)| {
            let what = Publishing {
                // Unique per step: `p{tag}-{n}` must not repeat a nonce of an earlier step.
                tag: step * p + k,
                channels: fleet.publishing_to(k),
                rate: rate / p as f64,
                size: args.size,
                origin,
            };
            let until = tokio::time::sleep(Duration::from_secs(args.step_secs));
            tokio::spawn(publish(publisher.conn, what, until))
        })
        .collect();
    let bar = progress::seconds(args.step_secs, &format!("step {step}"));
    bar.set_message(format!("{rate:.0} msg/s"));
    let ticking = tokio::spawn({
        let bar = bar.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                bar.inc(1);
            }
        }
    });
    let (mut sent, mut acks) = (0, Acks::default());
    for publisher in publishing {
        let (s, a) = publisher.await.context("publisher")??;
        sent += s;
        acks.seqs.extend(a.seqs);
        for (code, n) in a.errors {
            *acks.errors.entry(code).or_default() += n;
        }
    }
    ticking.abort();
    bar.finish_and_clear();

    let mut acked = vec![Vec::new(); c];
    for (channel, seq) in &acks.seqs {
        acked[*channel].push(*seq);
    }
    for seqs in &mut acked {
        seqs.sort_unstable();
        seqs.dedup();
    }
    let expected: u64 = (0..c)
        .map(|n| acked[n].len() as u64 * fleet.connected[n])
        .sum();
    let deadline = Instant::now() + Duration::from_secs(args.drain_secs);
    while received.load(Ordering::Relaxed) - received_before < expected && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let (mut step_received, mut last_receipt_us, mut lost) = (0, started_us, 0);
    let (mut duplicates, mut order_violations, mut foreign, mut closed_early) = (0, 0, 0, 0);
    let mut close_reason = None;
    for (channel, record) in records {
        let mut record = record.lock().expect("record lock");
        record.step_samples.flush();
        step_received += record.step_received;
        last_receipt_us = last_receipt_us.max(record.step_last_receipt_us);
        lost += acked[*channel]
            .iter()
            .filter(|seq| !record.seqs.has(**seq))
            .count() as u64;
        duplicates += record.duplicates;
        order_violations += record.order_violations;
        foreign += record.foreign;
        closed_early += u64::from(record.closed_early.is_some());
        if close_reason.is_none() {
            close_reason.clone_from(&record.closed_early);
        }
    }
    let duplicates = duplicates - duplicates_before;
    let order_violations = order_violations - order_before;
    let latency = step_timeline.lock().expect("timeline lock").overall.clone();
    let ms = |v: u64| v as f64 / 1000.0;
    let p99_ms = ms(latency.value_at_quantile(0.99));
    let errors: u64 = acks.errors.values().sum();
    let unanswered = sent.saturating_sub(acks.seqs.len() as u64 + errors);
    let delivery_secs = (last_receipt_us - started_us) as f64 / 1e6;

    let mut failures = Vec::new();
    if p99_ms > args.max_p99_ms {
        failures.push(format!("p99 {p99_ms:.1} ms > {} ms", args.max_p99_ms));
    }
    for (n, what) in [
        (lost, "lost"),
        (duplicates, "duplicated"),
        (order_violations, "out of order"),
        (foreign, "foreign"),
        (errors, "sends refused"),
        (unanswered, "sends unanswered"),
        (closed_early, "receivers closed"),
    ] {
        if n > 0 {
            failures.push(format!("{n} {what}"));
        }
    }
    if acks.seqs.is_empty() {
        failures.push("nothing acknowledged".into());
    }
    let row = json!({
        "step": step,
        "rate_msg_s": rate,
        "sent": sent,
        "acked": acks.seqs.len(),
        "send_errors": errors,
        "expected_deliveries": expected,
        "received_deliveries": step_received,
        "offered_deliveries_per_s": expected as f64 / args.step_secs.max(1) as f64,
        "deliveries_per_s": step_received as f64 / delivery_secs.max(1e-9),
        "lost": lost,
        "duplicates": duplicates,
        "order_violations": order_violations,
        "receivers_closed": closed_early,
        "first_close_reason": close_reason,
        "p50_ms": ms(latency.value_at_quantile(0.50)),
        "p90_ms": ms(latency.value_at_quantile(0.90)),
        "p99_ms": p99_ms,
        "max_ms": ms(latency.max()),
        "passed": failures.is_empty(),
    });
    Ok(Step { row, failures })
}

/// One member connection: reads until told to stop, recording each event of its channel.
async fn receive(
    mut conn: Conn,
    channel_id: String,
    record: Arc<Mutex<Record>>,
    received: Arc<AtomicU64>,
    origin: Instant,
    mut stop: oneshot::Receiver<()>,
) {
    let mut heartbeat = tokio::time::interval(Duration::from_secs(20));
    heartbeat.tick().await;
    let closed_early = loop {
        tokio::select! {
            biased;
            _ = &mut stop => break None,
            message = conn.ws.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(frame))) => break Some(format!("closed by server: {frame:?}")),
                    Some(Ok(_)) => continue,
                    Some(Err(err)) => break Some(err.to_string()),
                    None => break Some("connection ended".into()),
                };
                let Some(peek) = Peek::parse(&text) else { continue };
                let Some((event_channel, seq, body)) = peek.message() else { continue };
                let now = origin.elapsed().as_micros() as u64;
                let mut record = record.lock().expect("record lock");
                if event_channel != channel_id {
                    record.foreign += 1;
                    continue;
                }
                if seq <= record.previous {
                    record.order_violations += 1;
                }
                record.previous = seq;
                if !record.seqs.insert(seq) {
                    record.duplicates += 1;
                    continue;
                }
                record.step_received += 1;
                record.step_last_receipt_us = now;
                if let Some(sent) = sent_micros(body) {
                    let latency = now.saturating_sub(sent);
                    record.step_samples.record(0, latency);
                    record.run_samples.record(now, latency);
                }
                drop(record);
                received.fetch_add(1, Ordering::Relaxed);
            }
            _ = heartbeat.tick() => {
                if let Err(err) = conn.send(&ClientFrame::Heartbeat).await {
                    break Some(format!("{err:#}"));
                }
            }
        }
    };
    if closed_early.is_some() {
        record.lock().expect("record lock").closed_early = closed_early;
    }
}
