//! `hold`: N idle authenticated connections, each heartbeating; the server's RSS per connection.
//!
//! One process can hold only as many connections as its open-file limit allows (20,000 here), so
//! `--workers W` spreads the connections over W child processes (`workers.rs`); this process
//! then only sets up, reads the servers' memory and adds up what the workers report. With
//! `--gateways` the connections alternate between the gateways of a cluster, and `--server-pid`
//! takes every gateway's pid, so each one's memory per connection is reported.
//!
//! With `--publish-per-sec R`, once the idle memory is read, the run posts R messages a second
//! over REST for `--publish-secs` to the channels every connection is subscribed to: each
//! message reaches every held connection, through whichever gateway it is on. Receivers count
//! deliveries and their latency (post → receipt, from a wall-clock stamp in the text, since the
//! receivers are other processes); `lost` is what a held connection should have received and
//! did not.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chorus_protocol::ClientFrame;
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::api::{Api, User};
use crate::net::{Spread, check_open_files, rss_bytes};
use crate::report::percentiles_ms;
use crate::timeline::histogram;
use crate::wire::{Peek, sent_micros, stamped_text, unix_micros};
use crate::ws::Conn;
use crate::{progress, ramp, workers};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Connections to open.
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Distinct users the connections log in as (connections are spread over them).
    #[arg(long, default_value_t = 50)]
    pub users: usize,
    /// Channels each user is a member of (and so each connection is subscribed to).
    #[arg(long, default_value_t = 2)]
    pub channels: usize,
    /// How long to hold the connections once all are open.
    #[arg(long, default_value_t = 10)]
    pub hold_secs: u64,
    /// Heartbeat period of each connection.
    #[arg(long, default_value_t = 25)]
    pub heartbeat_secs: u64,
    /// PIDs of the servers the connections go to (comma-separated; one per gateway, in the
    /// order of --gateways), to read their resident memory before and after.
    #[arg(long = "server-pid", value_delimiter = ',')]
    pub server_pids: Vec<u32>,
    /// Messages per second posted (REST) once every connection is open and the idle memory read;
    /// 0 holds idle only.
    #[arg(long, default_value_t = 0.0)]
    pub publish_per_sec: f64,
    /// How long to post for.
    #[arg(long, default_value_t = 10)]
    pub publish_secs: u64,
    /// How long to wait for the last deliveries after posting stops.
    #[arg(long, default_value_t = 5)]
    pub drain_secs: u64,
    /// With --server-pid: seconds to wait after creating the users before reading the server's
    /// memory. Registration hashes passwords (19 MiB each) on blocking threads; the allocator
    /// returns that memory once those threads idle out (10 s), and an earlier reading would count
    /// it as baseline that connections then reuse, understating their cost.
    #[arg(long, default_value_t = 12)]
    pub settle_secs: u64,
    /// With --server-pid: open the connections in two halves, holding and reading the server's
    /// memory after each, and report also what the second half cost per connection. The growth
    /// from the first reading to the last is the slope per connection, free of the start-up
    /// memory that makes the reading before any connection vary between runs. One process only
    /// (not with --workers); the connect time is then that of both ramps together.
    #[arg(long)]
    pub midway: bool,
    /// Child processes to spread the connections over (each has its own open-file limit).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// The loadtest binary the workers run (default: this one).
    #[arg(long, hide = true)]
    pub worker_exe: Option<PathBuf>,
    #[command(flatten)]
    pub spread: Spread,
}

impl Default for Args {
    fn default() -> Self {
        crate::defaults()
    }
}

/// What connections need to be opened and held, by this process or by a worker.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Plan {
    /// Connection `n` logs in with `tokens[n % tokens.len()]`.
    pub tokens: Vec<String>,
    pub heartbeat_secs: u64,
    pub concurrency: usize,
    pub source_ips: u8,
    /// Gateways to spread the connections over (empty: the worker's --ws).
    #[serde(default)]
    pub gateways: Vec<std::net::SocketAddr>,
}

impl Plan {
    pub fn spread(&self) -> Spread {
        Spread {
            concurrency: self.concurrency,
            source_ips: self.source_ips,
            gateways: self.gateways.clone(),
        }
    }
}

/// How opening a share of the connections went.
#[derive(Serialize, Deserialize, Debug)]
pub struct Opened {
    pub open: usize,
    pub failures: usize,
    pub seconds: f64,
    /// The handshake histogram as (µs, count) pairs, so a parent can add workers' histograms.
    pub handshakes: Vec<(u64, u64)>,
}

impl Opened {
    pub fn histogram(&self) -> anyhow::Result<Histogram<u64>> {
        let mut h = histogram();
        add_pairs(&mut h, &self.handshakes);
        Ok(h)
    }
}

/// A histogram as (value, count) pairs: how workers send theirs to the parent.
fn to_pairs(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

/// Adds what [`to_pairs`] made to `total`.
fn add_pairs(total: &mut Histogram<u64>, pairs: &[(u64, u64)]) {
    for (value, count) in pairs {
        let _ = total.record_n(*value, *count);
    }
}

/// The stamped messages the held connections of one process received.
pub struct Deliveries {
    count: std::sync::atomic::AtomicU64,
    /// Post → receipt, µs.
    latency: std::sync::Mutex<Histogram<u64>>,
}

impl Deliveries {
    fn new() -> Self {
        Deliveries {
            count: std::sync::atomic::AtomicU64::new(0),
            latency: std::sync::Mutex::new(histogram()),
        }
    }

    fn record(&self, sent_micros: u64) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let latency = unix_micros().saturating_sub(sent_micros).max(1);
        if let Ok(mut h) = self.latency.lock() {
            // The histogram grows to fit (`record`); `saturating_record` would clamp every value
            // to its initial range of 1–2 µs.
            let _ = h.record(latency);
        }
    }
}

/// What one process's held connections received, in a form a parent can add up.
#[derive(Serialize, Deserialize, Debug, Default)]
pub struct Received {
    pub deliveries: u64,
    /// Post → receipt as (µs, count) pairs.
    pub latency: Vec<(u64, u64)>,
}

impl Received {
    pub fn add_to(&self, total: &mut Histogram<u64>) {
        add_pairs(total, &self.latency);
    }
}

/// Connections being held: each heartbeats and drains what the server sends, in its own task.
pub struct Held {
    tasks: Vec<JoinHandle<()>>,
    closed: Arc<AtomicUsize>,
    deliveries: Arc<Deliveries>,
}

impl Held {
    /// Connections that ended while held (closed by the server or failed).
    pub fn dropped(&self) -> usize {
        self.closed.load(Ordering::Relaxed)
    }

    /// Stops holding; how many connections ended while held and what they received.
    pub fn release(self) -> (usize, Received) {
        for task in &self.tasks {
            task.abort();
        }
        let latency = self
            .deliveries
            .latency
            .lock()
            .map(|h| to_pairs(&h))
            .unwrap_or_default();
        let received = Received {
            deliveries: self.deliveries.count.load(Ordering::Relaxed),
            latency,
        };
        (self.dropped(), received)
    }
}

/// Opens connections `first..first + count` of `plan` and starts holding them.
pub async fn open_and_hold(
    ws: SocketAddr,
    plan: &Plan,
    first: usize,
    count: usize,
    on_open: impl Fn(),
) -> anyhow::Result<(Opened, Held)> {
    let tokens = &plan.tokens;
    let closed = Arc::new(AtomicUsize::new(0));
    let deliveries = Arc::new(Deliveries::new());
    let heartbeat = Duration::from_secs(plan.heartbeat_secs.max(1));
    // Each connection is held (and heartbeats) from the moment it is ready: a ramp of 100,000
    // connections can take longer than the server's heartbeat timeout.
    let mut tasks = Vec::with_capacity(count);
    let ramp = ramp::open_each(
        ws,
        &plan.spread(),
        first,
        count,
        |n| tokens[n % tokens.len()].clone(),
        |c| {
            tasks.push(tokio::spawn(hold(
                c.conn,
                heartbeat,
                closed.clone(),
                deliveries.clone(),
            )));
            on_open();
        },
    )
    .await?;
    let opened = Opened {
        open: tasks.len(),
        failures: ramp.failures,
        seconds: ramp.seconds,
        handshakes: to_pairs(&ramp.handshakes),
    };
    Ok((
        opened,
        Held {
            tasks,
            closed,
            deliveries,
        },
    ))
}

async fn hold(
    mut conn: Conn,
    heartbeat: Duration,
    closed: Arc<AtomicUsize>,
    deliveries: Arc<Deliveries>,
) {
    let mut tick = tokio::time::interval(heartbeat);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if conn.send(&ClientFrame::Heartbeat).await.is_err() {
                    break;
                }
            }
            message = conn.ws.next() => {
                match message {
                    Some(Ok(Message::Text(text))) => {
                        let stamp = Peek::parse(&text)
                            .and_then(|peek| peek.message().and_then(|(_, _, t)| sent_micros(t)));
                        if let Some(sent) = stamp {
                            deliveries.record(sent);
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                }
            }
        }
    }
    closed.fetch_add(1, Ordering::Relaxed);
}

pub async fn run(api: &Api, ws: SocketAddr, args: Args) -> anyhow::Result<Value> {
    let workers = args.workers.max(1);
    if args.midway && (workers > 1 || args.server_pids.is_empty()) {
        anyhow::bail!(
            "--midway reads the server's memory in one process: give --server-pid, not --workers"
        );
    }
    let share = args.connections.div_ceil(workers);
    check_open_files(
        share,
        &format!(
            "split the run over more worker processes (--workers {})",
            (args.connections as u64)
                .div_ceil(19_000)
                .max(workers as u64 + 1)
        ),
    )?;
    let setup = progress::spinner("creating users and channels");
    let owner = api.user("owner").await?;
    let workspace = api.workspace(&owner).await?;
    let mut channels = Vec::new();
    for n in 0..args.channels {
        channels.push(api.channel(&owner, workspace, &format!("hold-{n}")).await?);
    }
    let users = api.users("holder", args.users.max(1)).await?;
    api.enroll(&owner, workspace, &users, &channels).await?;
    setup.finish_and_clear();
    let plan = Plan {
        tokens: users.into_iter().map(|u| u.token).collect(),
        heartbeat_secs: args.heartbeat_secs,
        concurrency: args.spread.concurrency,
        source_ips: args.spread.source_ips,
        gateways: args.spread.gateways.clone(),
    };
    if !args.server_pids.is_empty() && args.settle_secs > 0 {
        let settle = progress::spinner("letting the server return setup memory");
        tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
        settle.finish_and_clear();
    }
    let pids = args.server_pids.clone();
    let rss_before = read_rss(&pids)?;

    let hold_for = Duration::from_secs(args.hold_secs);
    let publishing = Publishing {
        owner: &owner,
        channels: &channels,
        per_sec: args.publish_per_sec,
        secs: args.publish_secs,
        drain: Duration::from_secs(args.drain_secs),
    };
    let mut rss_midway = None;
    let (opened, dropped, rss_after, published, received) = if workers > 1 {
        let exe = match &args.worker_exe {
            Some(exe) => exe.clone(),
            None => std::env::current_exe()?,
        };
        let outcome = workers::run_parent(
            &exe,
            ws,
            &plan,
            args.connections,
            workers,
            hold_for,
            || read_rss(&pids),
            publishing.run(api),
        )
        .await?;
        (
            outcome.opened,
            outcome.dropped,
            outcome.rss_after,
            outcome.published,
            outcome.received,
        )
    } else {
        let bar = progress::bar(args.connections as u64, "connecting");
        let mut opened = Vec::new();
        let mut holds = Vec::new();
        for (n, (first, count)) in ramps(args.connections, args.midway).into_iter().enumerate() {
            if n > 0 {
                rss_midway = Some(read_rss(&pids)?);
            }
            let (share, held) = open_and_hold(ws, &plan, first, count, || bar.inc(1)).await?;
            eprintln!(
                "{} connections open in {:.1}s ({} failed); holding {}s",
                share.open, share.seconds, share.failures, args.hold_secs
            );
            opened.push(share);
            holds.push(held);
            tokio::time::sleep(hold_for).await;
        }
        bar.finish_and_clear();
        let rss_after = read_rss(&pids)?;
        let published = publishing.run(api).await;
        let (mut dropped, mut received) = (0, Vec::new());
        for held in holds {
            let (lost, got) = held.release();
            dropped += lost;
            received.push(got);
        }
        (opened, dropped, rss_after, published, received)
    };

    let open: usize = opened.iter().map(|o| o.open).sum();
    let failures: usize = opened.iter().map(|o| o.failures).sum();
    // Workers ramp in parallel: the ramp took as long as the slowest; the halves of a --midway
    // run ramp one after the other.
    let connect_secs = if args.midway {
        opened.iter().map(|o| o.seconds).sum()
    } else {
        opened.iter().map(|o| o.seconds).fold(0.0, f64::max)
    };
    let mut handshakes = Histogram::<u64>::new(3)?;
    for o in &opened {
        handshakes.add(o.histogram()?)?;
    }
    let servers = memory_per_server(&pids, &rss_before, &rss_after, open);
    let sum = |rss: &[u64]| (!rss.is_empty()).then(|| rss.iter().sum::<u64>());
    let per_connection = match (sum(&rss_before), sum(&rss_after)) {
        (Some(before), Some(after)) if open > 0 => {
            Some((after.saturating_sub(before)) as f64 / open as f64)
        }
        _ => None,
    };
    let mut result = json!({
        "scenario": "hold",
        "workers": workers,
        "connections_requested": args.connections,
        "connections_open": open,
        "connection_failures": failures,
        "dropped_while_holding": dropped,
        "channels_per_connection": args.channels,
        "connect_seconds": connect_secs,
        "connect_rate_per_s": open as f64 / connect_secs.max(1e-9),
        "handshake_plus_identify_ms": percentiles_ms(&handshakes),
        "server_rss_before_bytes": sum(&rss_before),
        "server_rss_after_bytes": sum(&rss_after),
        "server_bytes_per_connection": per_connection,
        "server_rss_midway_bytes": rss_midway.as_deref().and_then(sum),
        "server_bytes_per_connection_second_half": rss_midway
            .as_deref()
            .and_then(|midway| second_half_cost(sum(midway)?, sum(&rss_after)?, opened.last()?.open)),
        "servers": servers,
    });
    if args.publish_per_sec > 0.0 {
        result["fanout"] = fanout_report(&published, &received, open - dropped.min(open))?;
    }
    Ok(result)
}

/// The connection ranges (first, count) opened one after the other: all at once, or in two
/// halves with a memory reading between them.
fn ramps(connections: usize, midway: bool) -> Vec<(usize, usize)> {
    let half = connections / 2;
    if midway && half > 0 {
        vec![(0, half), (half, connections - half)]
    } else {
        vec![(0, connections)]
    }
}

/// Bytes per connection of the second half: the memory growth while it opened and was held.
fn second_half_cost(midway: u64, after: u64, second_half_open: usize) -> Option<f64> {
    (second_half_open > 0).then(|| after.saturating_sub(midway) as f64 / second_half_open as f64)
}

/// The resident memory of each server, in order (empty without pids).
fn read_rss(pids: &[u32]) -> anyhow::Result<Vec<u64>> {
    pids.iter().map(|&pid| rss_bytes(pid)).collect()
}

/// Each server's memory before and after, and per connection it held — the connections alternate
/// over the servers (`Spread::gateway`), so each holds `open / servers` of them.
fn memory_per_server(pids: &[u32], before: &[u64], after: &[u64], open: usize) -> Vec<Value> {
    let each = open as f64 / pids.len().max(1) as f64;
    pids.iter()
        .zip(before.iter().zip(after))
        .map(|(pid, (before, after))| {
            json!({
                "pid": pid,
                "rss_before_bytes": before,
                "rss_after_bytes": after,
                "connections": each.round(),
                "bytes_per_connection": (each > 0.0).then(|| after.saturating_sub(*before) as f64 / each),
            })
        })
        .collect()
}

/// The fan-out phase: what was posted, what the held connections received, what they missed.
fn fanout_report(
    published: &Published,
    received: &[Received],
    held: usize,
) -> anyhow::Result<Value> {
    let mut latency = histogram();
    for r in received {
        r.add_to(&mut latency);
    }
    let delivered: u64 = received.iter().map(|r| r.deliveries).sum();
    let expected = published.posted * held as u64;
    Ok(json!({
        "posted": published.posted,
        "post_failures": published.failed,
        "post_seconds": published.seconds,
        "receiving_connections": held,
        "deliveries_expected": expected,
        "deliveries": delivered,
        "lost": expected.saturating_sub(delivered),
        "deliveries_per_s": delivered as f64 / published.seconds.max(1e-9),
        "post_to_delivery_ms": percentiles_ms(&latency),
    }))
}

/// What the fan-out phase posted.
#[derive(Debug, Default)]
pub struct Published {
    pub posted: u64,
    pub failed: u64,
    pub seconds: f64,
}

/// The fan-out phase's settings.
struct Publishing<'a> {
    owner: &'a User,
    channels: &'a [Uuid],
    per_sec: f64,
    secs: u64,
    drain: Duration,
}

impl Publishing<'_> {
    /// Posts `per_sec` stamped messages a second over REST to the channels in turn, then waits
    /// for the last deliveries. Does nothing when `per_sec` is 0.
    async fn run(self, api: &Api) -> Published {
        if self.per_sec <= 0.0 || self.channels.is_empty() {
            return Published::default();
        }
        let total = (self.per_sec * self.secs as f64).round() as u64;
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / self.per_sec));
        let mut posts = tokio::task::JoinSet::new();
        let started = std::time::Instant::now();
        let run = Uuid::new_v4().simple().to_string();
        for k in 0..total {
            tick.tick().await;
            let (api, owner) = (api.clone(), self.owner.clone());
            let channel = self.channels[k as usize % self.channels.len()];
            let nonce = format!("hold-{}-{k}", &run[..8]);
            posts.spawn(async move {
                let text = stamped_text(unix_micros(), 100);
                api.post_message(&owner, channel, &text, &nonce).await
            });
        }
        let mut published = Published::default();
        while let Some(post) = posts.join_next().await {
            match post {
                Ok(Ok(())) => published.posted += 1,
                Ok(Err(err)) => {
                    published.failed += 1;
                    eprintln!("a post failed: {err:#}");
                }
                Err(_) => published.failed += 1,
            }
        }
        published.seconds = started.elapsed().as_secs_f64();
        tokio::time::sleep(self.drain).await;
        published
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_latency_of_seconds_is_reported_in_seconds() {
        let deliveries = Deliveries::new();
        deliveries.record(unix_micros() - 1_500_000);
        deliveries.record(unix_micros() - 20_000);
        let pairs = to_pairs(&deliveries.latency.lock().unwrap());
        let received = Received {
            deliveries: 2,
            latency: pairs,
        };
        let mut total = histogram();
        received.add_to(&mut total);
        let max_ms = total.max() as f64 / 1000.0;
        let min_ms = total.min() as f64 / 1000.0;
        assert!((1_500.0..1_600.0).contains(&max_ms), "max {max_ms} ms");
        assert!((20.0..100.0).contains(&min_ms), "min {min_ms} ms");
    }

    #[test]
    fn midway_opens_two_halves_that_cover_every_connection() {
        assert_eq!(ramps(10_000, false), vec![(0, 10_000)]);
        assert_eq!(ramps(10_001, true), vec![(0, 5_000), (5_000, 5_001)]);
        assert_eq!(ramps(1, true), vec![(0, 1)]);
    }

    #[test]
    fn the_second_half_costs_its_growth_divided_by_its_connections() {
        assert_eq!(second_half_cost(100_000, 130_000, 10), Some(3_000.0));
        assert_eq!(second_half_cost(100_000, 90_000, 10), Some(0.0));
        assert_eq!(second_half_cost(100_000, 130_000, 0), None);
    }
}
