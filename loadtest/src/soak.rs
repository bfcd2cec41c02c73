//! `soak`: a long mixed run that looks for leaks. N connections subscribed to C channels, P
//! publishers at a modest total rate, a share of the connections closed and resumed every churn
//! interval, and a few clients reading history over REST — for `--duration-secs`. Meanwhile the
//! server's resident memory and open file descriptors are sampled from /proc (`--server-pid`).
//!
//! Leaks show as growth that does not level off: the summary gives the RSS slope (least squares
//! over the samples after the warm-up) and the fd count at the start and the end, and flags either
//! when it passes its threshold. The end is sampled once every churned connection has resumed and
//! before anything is closed, so it holds the same connections as the start.
//!
//! Delivery is checked as in `storm` (`follow.rs`): every client must see each channel's events
//! after its `ready` exactly once and in order, live or replayed across its reconnects.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chorus_protocol::ClientFrame;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::api::{Api, Cursor};
use crate::follow::{Comeback, Follower, Tally, Via};
use crate::net::{Spread, check_open_files, open_fds, rss_bytes};
use crate::publisher::{Acks, Publishing, publish};
use crate::report::percentiles_ms;
use crate::timeline::{Samples, Timeline, histogram};
use crate::ws::Conn;
use crate::{follow, progress, ramp};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Connections (N), each subscribed to every channel.
    #[arg(long, default_value_t = 200)]
    pub connections: usize,
    /// Channels (C).
    #[arg(long, default_value_t = 4)]
    pub channels: usize,
    /// Distinct users the connections log in as.
    #[arg(long, default_value_t = 20)]
    pub users: usize,
    /// Publisher connections (P), each posting to every channel in turn.
    #[arg(long, default_value_t = 2)]
    pub publishers: usize,
    /// Total messages per second over all publishers (R).
    #[arg(long, default_value_t = 20)]
    pub rate: u64,
    /// Message size in bytes, send timestamp included.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Seconds of the mixed run.
    #[arg(long, default_value_t = 600)]
    pub duration_secs: u64,
    /// Every this many seconds, a share of the connections is closed and resumed.
    #[arg(long, default_value_t = 10)]
    pub churn_every_secs: u64,
    /// Share of the connections churned each interval (0 for none). Half the closes are clean
    /// (a close frame), half abrupt (the TCP stream dropped, as when a path dies).
    #[arg(long, default_value_t = 0.05)]
    pub churn_fraction: f64,
    /// Clients reading history over REST, each one page per `--history-every-ms`.
    #[arg(long, default_value_t = 2)]
    pub history_readers: usize,
    /// Milliseconds between one history reader's requests.
    #[arg(long, default_value_t = 500)]
    pub history_every_ms: u64,
    /// Page size of the history reads.
    #[arg(long, default_value_t = 50)]
    pub history_limit: usize,
    /// PID of the server, whose RSS and open fds are sampled (without it nothing is sampled and
    /// no leak verdict is given).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Seconds between samples of the server.
    #[arg(long, default_value_t = 5)]
    pub sample_secs: u64,
    /// Samples in the first this many seconds are left out of the RSS slope: allocator arenas,
    /// caches and buffers grow to their working size first, and the setup's password hashing
    /// (19 MiB per registration) is still being given back (so `rss_start_bytes` is high).
    #[arg(long, default_value_t = 60)]
    pub warmup_secs: u64,
    /// Open fds at the end may exceed the baseline (the first sample after the warm-up) by this
    /// many before it counts as a leak (HTTP keep-alive connections, files the stores open).
    #[arg(long, default_value_t = 32)]
    pub fd_slack: u64,
    /// An RSS slope above this (KiB per minute) counts as a leak. The embedded node's redb caches
    /// grow with the history written (see `written_bytes_per_min`): compare before concluding.
    #[arg(long, default_value_t = 1024)]
    pub max_rss_slope_kib_per_min: u64,
    /// First reconnect backoff (full jitter, doubling up to 2 s).
    #[arg(long, default_value_t = 50)]
    pub backoff_base_ms: u64,
    /// A churned connection that has not resumed this long after its close fails.
    #[arg(long, default_value_t = 60)]
    pub resume_timeout_secs: u64,
    /// After the last ack, how long clients may take to reach the final seqs.
    #[arg(long, default_value_t = 10)]
    pub drain_secs: u64,
    /// Write the per-second latency and deliveries, and the server's RSS and fds over time, as a
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

/// One reading of the server.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Sample {
    /// Seconds since the mixed run started.
    pub second: f64,
    pub rss_bytes: u64,
    pub fds: u64,
    /// Client connections open at the time (churned ones are briefly away).
    pub connected: usize,
}

/// Shared by every client.
struct Live {
    origin: Instant,
    connected: AtomicUsize,
    /// Fresh live deliveries so far (for the progress bar).
    delivered: AtomicU64,
    /// Whether churn notifications are still acted on (off at the end, so the final sample sees
    /// every connection).
    churning: AtomicBool,
    timeline: Arc<Mutex<Timeline>>,
}

/// One client's account of the run.
#[derive(Default)]
struct Account {
    tally: Tally,
    tail_missing: u64,
    owed: u64,
    churned: u64,
    failed_attempts: u64,
    /// Attempt start → `resumed` of each successful resume, µs.
    resume_us: Vec<u64>,
    failure: Option<String>,
}

struct Client {
    comeback: ComebackOwned,
    follower: Follower,
    churn: Arc<Notify>,
    /// Whether the client holds a connection (it does not while it comes back from a churn).
    online: bool,
    live: Arc<Live>,
    account: Account,
}

/// What a client needs to come back (owned; a `Comeback` borrows it).
struct ComebackOwned {
    ws: SocketAddr,
    source: Option<std::net::IpAddr>,
    api: Api,
    token: String,
    session_id: Uuid,
    backoff_base: Duration,
    resume_timeout: Duration,
}

/// What the run tells every client.
struct Signals {
    /// Final seq of each channel, once the publishers have stopped and every ack is in.
    finals: watch::Receiver<Option<Arc<Vec<u64>>>>,
    stop: watch::Receiver<bool>,
}

/// What the history readers saw.
#[derive(Default)]
struct Reads {
    ok: u64,
    /// Pages whose seqs are not consecutive and ascending.
    bad_pages: u64,
    errors: BTreeMap<String, u64>,
}

pub async fn run(api: &Api, ws: SocketAddr, args: Args) -> anyhow::Result<Value> {
    let n = args.connections.max(1);
    let p = args.publishers.max(1);
    check_open_files(
        n + p + args.history_readers,
        "use fewer connections, or run several `loadtest soak` at once against the node",
    )?;
    if let Some(pid) = args.server_pid {
        // Fail now rather than after the setup when the server cannot be read.
        rss_bytes(pid)?;
        open_fds(pid)?;
    }
    let setup = progress::spinner("creating users and channels");
    let owner = api.user("soak-owner").await?;
    let workspace = api.workspace(&owner).await?;
    let mut channels = Vec::new();
    for c in 0..args.channels.max(1) {
        channels.push(api.channel(&owner, workspace, &format!("soak-{c}")).await?);
    }
    let users = api.users("soaker", args.users.max(1)).await?;
    api.enroll(&owner, workspace, &users, &channels).await?;
    let publisher_users = api.users("soak-pub", p).await?;
    api.enroll(&owner, workspace, &publisher_users, &channels)
        .await?;
    setup.finish_and_clear();

    let bar = progress::bar((n + p) as u64, "connecting");
    let ramp = ramp::open(
        ws,
        &args.spread,
        0,
        n,
        |i| users[i % users.len()].token.clone(),
        || bar.inc(1),
    )
    .await?;
    let publishers = ramp::open(
        ws,
        &args.spread,
        n,
        p,
        |i| publisher_users[i - n].token.clone(),
        || bar.inc(1),
    )
    .await?;
    bar.finish_and_clear();
    if publishers.conns.len() < p {
        bail!(
            "{} of {p} publishers could not connect",
            p - publishers.conns.len()
        );
    }

    let live = Arc::new(Live {
        origin: Instant::now(),
        connected: AtomicUsize::new(ramp.conns.len()),
        delivered: AtomicU64::new(0),
        churning: AtomicBool::new(true),
        timeline: Timeline::shared(),
    });
    let (finals_tx, finals_rx) = watch::channel(None);
    let (stop_tx, stop_rx) = watch::channel(false);
    let connected = ramp.conns.len();
    let mut churns = Vec::with_capacity(connected);
    let mut clients = Vec::with_capacity(connected);
    for identified in ramp.conns {
        let churn = Arc::new(Notify::new());
        churns.push(churn.clone());
        let client = Client {
            comeback: ComebackOwned {
                ws,
                source: args.spread.source(identified.index),
                api: api.clone(),
                token: users[identified.index % users.len()].token.clone(),
                session_id: identified.session_id,
                backoff_base: Duration::from_millis(args.backoff_base_ms.max(1)),
                resume_timeout: Duration::from_secs(args.resume_timeout_secs),
            },
            follower: Follower::new(&channels, &identified.channels),
            churn,
            online: true,
            live: live.clone(),
            account: Account::default(),
        };
        let signals = Signals {
            finals: finals_rx.clone(),
            stop: stop_rx.clone(),
        };
        clients.push(tokio::spawn(client.run(identified.conn, signals)));
    }

    // The mixed run: sampling, publishing, churn and history reads, all at once.
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampling = args.server_pid.map(|pid| {
        tokio::spawn(sample_every(
            pid,
            Duration::from_secs(args.sample_secs.max(1)),
            live.clone(),
            samples.clone(),
        ))
    });
    let (publishing_done, publishing_stop) = watch::channel(false);
    let publishing: Vec<_> = publishers
        .conns
        .into_iter()
        .enumerate()
        .map(|(k, publisher)| {
            // Each publisher starts at a different channel, so they do not move in step.
            let mut own: Vec<(usize, Uuid)> = channels.iter().copied().enumerate().collect();
            let turn = k % own.len();
            own.rotate_left(turn);
            let what = Publishing {
                tag: k,
                channels: own,
                rate: args.rate.max(1) as f64 / p as f64,
                size: args.size,
                origin: live.origin,
            };
            let mut until = publishing_stop.clone();
            tokio::spawn(publish(publisher.conn, what, async move {
                let _ = until.wait_for(|stop| *stop).await;
            }))
        })
        .collect();
    let churning = (args.churn_fraction > 0.0).then(|| {
        let per_round = ((n as f64 * args.churn_fraction.min(1.0)).ceil() as usize).max(1);
        tokio::spawn(churn_every(
            churns,
            per_round,
            Duration::from_secs(args.churn_every_secs.max(1)),
        ))
    });
    let reads = Arc::new(Mutex::new(Reads::default()));
    let read_latency = Timeline::shared();
    let reading: Vec<_> = (0..args.history_readers)
        .map(|r| {
            tokio::spawn(read_history(
                api.clone(),
                users[r % users.len()].token.clone(),
                channels.clone(),
                args.history_limit.max(1),
                Duration::from_millis(args.history_every_ms.max(1)),
                reads.clone(),
                read_latency.clone(),
                publishing_stop.clone(),
            ))
        })
        .collect();
    drop(publishing_stop);

    let meter = progress::seconds(args.duration_secs, "soaking");
    let mut before = 0;
    for _ in 0..args.duration_secs {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let delivered = live.delivered.load(Ordering::Relaxed);
        let last = samples.lock().expect("samples lock").last().copied();
        meter.set_message(match last {
            Some(s) => format!(
                "{} deliveries/s, server {} MiB, {} fds",
                delivered - before,
                s.rss_bytes >> 20,
                s.fds
            ),
            None => format!("{} deliveries/s", delivered - before),
        });
        meter.inc(1);
        before = delivered;
    }
    meter.finish_and_clear();

    // The end: stop churning, let every churned connection come back, then take the last sample
    // while the same connections are open as at the start.
    if let Some(churning) = churning {
        churning.abort();
    }
    live.churning.store(false, Ordering::Relaxed);
    let settle_deadline = Instant::now() + Duration::from_secs(args.resume_timeout_secs);
    while live.connected.load(Ordering::Relaxed) < connected
        && Instant::now() < settle_deadline
        && !clients.iter().all(|c| c.is_finished())
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some(sampling) = sampling {
        sampling.abort();
    }
    let mut sampling_error = None;
    if let Some(pid) = args.server_pid {
        match read_server(pid, &live) {
            Ok(sample) => samples.lock().expect("samples lock").push(sample),
            Err(err) => sampling_error = Some(format!("{err:#}")),
        }
    }
    let mixed_secs = live.origin.elapsed().as_secs_f64();

    let _ = publishing_done.send(true);
    for reader in reading {
        reader.await.context("history reader")?;
    }
    let (mut sent, mut acks) = (0, Acks::default());
    for publisher in publishing {
        let (s, a) = publisher.await.context("publisher")??;
        sent += s;
        acks.seqs.extend(a.seqs);
        for (code, n) in a.errors {
            *acks.errors.entry(code).or_default() += n;
        }
    }
    let (finals, mut acked) = follow::settle_clients(
        &acks.seqs,
        channels.len(),
        &finals_tx,
        &stop_tx,
        &clients,
        Duration::from_secs(args.drain_secs),
    )
    .await;

    let mut total = Account::default();
    let mut resume = histogram();
    let (mut failed, mut failures_shown) = (0, 0);
    for client in clients {
        let account = client.await.context("client")?;
        total.tally.add(&account.tally);
        total.tail_missing += account.tail_missing;
        total.owed += account.owed;
        total.churned += account.churned;
        total.failed_attempts += account.failed_attempts;
        for us in account.resume_us {
            resume.record(us).ok();
        }
        if let Some(why) = account.failure {
            failed += 1;
            if failures_shown < 5 {
                failures_shown += 1;
                eprintln!("client failed: {why}");
            }
        }
    }
    // Acked seqs must be 1..=final with no hole: else the checks above compare against a lie.
    let holes: u64 = acked
        .iter_mut()
        .map(|seqs| {
            seqs.sort_unstable();
            seqs.dedup();
            seqs.last().copied().unwrap_or(0) - seqs.len() as u64
        })
        .sum();

    let samples = std::mem::take(&mut *samples.lock().expect("samples lock"));
    let resources = Resources::of(&samples, &args);
    let reads = std::mem::take(&mut *reads.lock().expect("reads lock"));
    let read_errors: u64 = reads.errors.values().sum();
    let send_errors: u64 = acks.errors.values().sum();
    let lost = total.tally.gaps + total.tail_missing;
    let written_per_min = acks.seqs.len() as f64 * args.size as f64 / (mixed_secs / 60.0).max(1e-9);
    let timeline = live.timeline.lock().expect("timeline lock");
    let read_latency = read_latency.lock().expect("timeline lock");
    let mut result = json!({
        "scenario": "soak",
        "connections": n,
        "connections_open": connected,
        "connection_failures": ramp.failures + publishers.failures,
        "channels": channels.len(),
        "publishers": p,
        "publish_rate_msg_s": args.rate,
        "message_bytes": args.size,
        "duration_s": mixed_secs,
        "churn_every_s": args.churn_every_secs,
        "churn_fraction": args.churn_fraction,
        "churned": total.churned,
        "resumes": resume.len(),
        "failed_reconnect_attempts": total.failed_attempts,
        "resume_ms": percentiles_ms(&resume),
        "clients_failed": failed,
        "sent": sent,
        "acked": acks.seqs.len(),
        "send_errors": acks.errors,
        "unacked_seqs_below_final": holes,
        "final_seqs": finals,
        "expected_deliveries": total.owed,
        "deliveries": total.tally.delivered(),
        "deliveries_live": total.tally.live,
        "deliveries_replayed": total.tally.replayed,
        "deliveries_fetched_after_resync": total.tally.fetched,
        "resyncs_required": total.tally.resyncs,
        "lost": lost,
        "lost_in_stream": total.tally.gaps,
        "lost_at_end": total.tail_missing,
        "duplicates": total.tally.repeats,
        "send_to_receipt_ms": percentiles_ms(&timeline.overall),
        "history_reads": reads.ok + read_errors,
        "history_bad_pages": reads.bad_pages,
        "history_errors": reads.errors,
        "history_ms": percentiles_ms(&read_latency.overall),
    });
    // In two parts: one `json!` this long passes the macro recursion limit.
    let server = json!({
        "errors": send_errors + read_errors + reads.bad_pages + failed
            + (ramp.failures + publishers.failures) as u64,
        "server_pid": args.server_pid,
        "sampling_error": sampling_error,
        "samples_taken": samples.len(),
        "rss_start_bytes": resources.rss_start,
        "rss_end_bytes": resources.rss_end,
        "rss_peak_bytes": resources.rss_peak,
        "rss_slope_bytes_per_min": resources.rss_slope,
        "rss_slope_samples": resources.slope_samples,
        "written_bytes_per_min": written_per_min,
        "fds_start": resources.fds_start,
        "fds_baseline": resources.fds_baseline,
        "fds_end": resources.fds_end,
        "fds_peak": resources.fds_peak,
        "leak_verdict": resources.verdict,
        "leak_reasons": resources.reasons.join("; "),
        "timeseries_counts": "deliveries",
        "timeseries": timeline.series(),
        "resources": samples,
    });
    if let (Some(result), Value::Object(server)) = (result.as_object_mut(), server) {
        result.extend(server);
    }
    Ok(result)
}

/// What the samples say.
struct Resources {
    rss_start: Option<u64>,
    rss_end: Option<u64>,
    rss_peak: Option<u64>,
    /// Bytes per minute, over the samples after the warm-up (at least three of them).
    rss_slope: Option<f64>,
    slope_samples: usize,
    fds_start: Option<u64>,
    /// The first sample after the warm-up (the first sample if none is).
    fds_baseline: Option<u64>,
    fds_end: Option<u64>,
    fds_peak: Option<u64>,
    verdict: &'static str,
    reasons: Vec<String>,
}

impl Resources {
    fn of(samples: &[Sample], args: &Args) -> Self {
        let warm: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.second >= args.warmup_secs as f64)
            .collect();
        let rss_slope = (warm.len() >= 3)
            .then(|| {
                let points: Vec<(f64, f64)> = warm
                    .iter()
                    .map(|s| (s.second / 60.0, s.rss_bytes as f64))
                    .collect();
                slope(&points)
            })
            .flatten();
        let fds_baseline = warm.first().copied().or(samples.first()).map(|s| s.fds);
        let fds_end = samples.last().map(|s| s.fds);
        let mut reasons = Vec::new();
        if let (Some(base), Some(end)) = (fds_baseline, fds_end)
            && end > base + args.fd_slack
        {
            reasons.push(format!(
                "open fds grew from {base} to {end} (more than {} over the baseline)",
                args.fd_slack
            ));
        }
        let limit = args.max_rss_slope_kib_per_min as f64 * 1024.0;
        if let Some(slope) = rss_slope
            && slope > limit
        {
            reasons.push(format!(
                "RSS grows {:.0} KiB/min after the warm-up (limit {} KiB/min)",
                slope / 1024.0,
                args.max_rss_slope_kib_per_min
            ));
        }
        let verdict = if samples.is_empty() {
            "not measured (no --server-pid)"
        } else if !reasons.is_empty() {
            "possible leak"
        } else if rss_slope.is_none() {
            "no fd leak; too few samples after the warm-up for an RSS slope"
        } else {
            "no leak seen"
        };
        Resources {
            rss_start: samples.first().map(|s| s.rss_bytes),
            rss_end: samples.last().map(|s| s.rss_bytes),
            rss_peak: samples.iter().map(|s| s.rss_bytes).max(),
            rss_slope,
            slope_samples: warm.len(),
            fds_start: samples.first().map(|s| s.fds),
            fds_baseline,
            fds_end,
            fds_peak: samples.iter().map(|s| s.fds).max(),
            verdict,
            reasons,
        }
    }
}

/// Least-squares slope of y over x; `None` when x does not vary.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (x, y) in points {
        sxy += (x - mean_x) * (y - mean_y);
        sxx += (x - mean_x) * (x - mean_x);
    }
    (sxx > 0.0).then(|| sxy / sxx)
}

fn read_server(pid: u32, live: &Live) -> anyhow::Result<Sample> {
    Ok(Sample {
        second: live.origin.elapsed().as_secs_f64(),
        rss_bytes: rss_bytes(pid)?,
        fds: open_fds(pid)?,
        connected: live.connected.load(Ordering::Relaxed),
    })
}

/// Reads the server every `every` until aborted (or until it cannot be read: it died).
async fn sample_every(
    pid: u32,
    every: Duration,
    live: Arc<Live>,
    samples: Arc<Mutex<Vec<Sample>>>,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match read_server(pid, &live) {
            Ok(sample) => samples.lock().expect("samples lock").push(sample),
            Err(err) => {
                eprintln!("sampling the server stopped: {err:#}");
                return;
            }
        }
    }
}

/// Every `every`, tells the next `per_round` clients (in turn) to close and resume.
async fn churn_every(clients: Vec<Arc<Notify>>, per_round: usize, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    let mut next = 0;
    loop {
        tick.tick().await;
        for _ in 0..per_round.min(clients.len()) {
            clients[next % clients.len()].notify_one();
            next += 1;
        }
    }
}

/// One history reader: the newest page of each channel in turn, every `every`, until `stop`.
#[allow(clippy::too_many_arguments)]
async fn read_history(
    api: Api,
    token: String,
    channels: Vec<Uuid>,
    limit: usize,
    every: Duration,
    reads: Arc<Mutex<Reads>>,
    latency: Arc<Mutex<Timeline>>,
    mut stop: watch::Receiver<bool>,
) {
    let origin = Instant::now();
    let mut samples = Samples::new(&latency);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for k in 0.. {
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => break,
            _ = tick.tick() => {}
        }
        let channel = channels[k % channels.len()];
        let sent = Instant::now();
        let page = api.history(&token, channel, Cursor::Newest, limit).await;
        samples.record(
            origin.elapsed().as_micros() as u64,
            sent.elapsed().as_micros() as u64,
        );
        let mut reads = reads.lock().expect("reads lock");
        match page {
            Ok(page) => {
                reads.ok += 1;
                let consecutive = page.messages.windows(2).all(|w| w[1].seq == w[0].seq + 1);
                if !consecutive || page.messages.len() > limit {
                    reads.bad_pages += 1;
                }
            }
            Err(err) => *reads.errors.entry(format!("{err:#}")).or_default() += 1,
        }
    }
}

impl Client {
    async fn run(mut self, conn: Conn, mut signals: Signals) -> Account {
        if let Err(err) = self.serve(conn, &mut signals).await {
            self.account.failure = Some(format!("{err:#}"));
            if self.online {
                self.live.connected.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let finals = signals.finals.borrow().clone();
        if let Some(finals) = finals {
            (self.account.tail_missing, self.account.owed) = self.follower.settle(&finals);
        }
        self.account.tally = self.follower.tally;
        self.account
    }

    async fn serve(&mut self, mut conn: Conn, signals: &mut Signals) -> anyhow::Result<()> {
        let mut samples = Samples::new(&self.live.timeline);
        let mut heartbeat = tokio::time::interval(Duration::from_secs(20));
        heartbeat.tick().await;
        loop {
            let caught_up = signals
                .finals
                .borrow()
                .as_ref()
                .is_some_and(|finals| self.follower.caught_up(finals));
            if caught_up {
                return Ok(());
            }
            tokio::select! {
                _ = signals.stop.changed() => return Ok(()),
                _ = signals.finals.changed() => {}
                _ = self.churn.notified() => {
                    if self.live.churning.load(Ordering::Relaxed) {
                        conn = self.churn(conn).await?;
                    }
                }
                _ = heartbeat.tick() => conn.send(&ClientFrame::Heartbeat).await?,
                message = conn.ws.next() => match message {
                    Some(Ok(Message::Text(text))) => {
                        let api = &self.comeback.api;
                        let token = &self.comeback.token;
                        if let Some(sent) = self.follower.on_text(api, token, &text, Via::Live).await? {
                            let now = self.live.origin.elapsed().as_micros() as u64;
                            samples.record(now, now.saturating_sub(sent));
                            self.live.delivered.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Some(Ok(Message::Close(frame))) => bail!("closed by the server: {frame:?}"),
                    Some(Ok(_)) => {}
                    Some(Err(err)) => bail!("connection failed: {err}"),
                    None => bail!("connection ended"),
                },
            }
        }
    }

    /// Closes the connection — cleanly every other time, else by dropping the TCP stream — and
    /// comes back with `resume`.
    async fn churn(&mut self, mut conn: Conn) -> anyhow::Result<Conn> {
        self.live.connected.fetch_sub(1, Ordering::Relaxed);
        self.online = false;
        if self.account.churned.is_multiple_of(2) {
            let _ = conn.ws.send(Message::Close(None)).await;
        }
        drop(conn);
        self.account.churned += 1;
        let lost_at = Instant::now();
        let comeback = Comeback {
            ws: self.comeback.ws,
            source: self.comeback.source,
            api: &self.comeback.api,
            token: &self.comeback.token,
            session_id: self.comeback.session_id,
            backoff_base: self.comeback.backoff_base,
            backoff_cap: Duration::from_secs(2),
            give_up_after: self.comeback.resume_timeout,
        };
        let (conn, took) = follow::reconnect(
            &comeback,
            &mut self.follower,
            lost_at,
            &mut self.account.failed_attempts,
        )
        .await?;
        self.account.resume_us.push(took.as_micros() as u64);
        self.live.connected.fetch_add(1, Ordering::Relaxed);
        self.online = true;
        Ok(conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(second: f64, rss_mib: u64, fds: u64) -> Sample {
        Sample {
            second,
            rss_bytes: rss_mib << 20,
            fds,
            connected: 0,
        }
    }

    #[test]
    fn the_slope_is_least_squares() {
        let line: Vec<(f64, f64)> = (0..5).map(|x| (x as f64, 3.0 * x as f64 + 7.0)).collect();
        assert!((slope(&line).unwrap() - 3.0).abs() < 1e-9);
        assert_eq!(slope(&[(1.0, 2.0), (1.0, 5.0)]), None);
    }

    #[test]
    fn growth_after_the_warm_up_is_flagged() {
        let args = Args {
            warmup_secs: 60,
            fd_slack: 10,
            max_rss_slope_kib_per_min: 1024,
            ..Default::default()
        };
        // A steep rise during the warm-up, flat after: no leak.
        let flat: Vec<Sample> = [
            (0.0, 10),
            (30.0, 80),
            (60.0, 100),
            (120.0, 100),
            (180.0, 100),
        ]
        .iter()
        .map(|&(t, mib)| sample(t, mib, 300))
        .collect();
        let resources = Resources::of(&flat, &args);
        assert_eq!(resources.verdict, "no leak seen");
        assert_eq!(resources.rss_slope, Some(0.0));
        assert_eq!(resources.slope_samples, 3);

        // 2 MiB a minute after the warm-up, and fds that do not come back.
        let leaking: Vec<Sample> = [
            (0.0, 10, 300),
            (60.0, 100, 300),
            (120.0, 102, 305),
            (180.0, 104, 340),
        ]
        .iter()
        .map(|&(t, mib, fds)| sample(t, mib, fds))
        .collect();
        let resources = Resources::of(&leaking, &args);
        assert_eq!(resources.verdict, "possible leak");
        assert_eq!(resources.reasons.len(), 2, "{:?}", resources.reasons);
        assert_eq!(resources.fds_baseline, Some(300));

        assert_eq!(
            Resources::of(&[], &args).verdict,
            "not measured (no --server-pid)"
        );
    }
}
