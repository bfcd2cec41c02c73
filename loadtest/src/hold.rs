//! `hold`: N idle authenticated connections, each heartbeating; the server's RSS per connection.
//!
//! One process can hold only as many connections as its open-file limit allows (20,000 here), so
//! `--workers W` spreads the connections over W child processes (`workers.rs`); this process
//! then only sets up, reads the server's memory and adds up what the workers report.

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

use crate::api::Api;
use crate::net::{Spread, check_open_files, rss_bytes};
use crate::report::percentiles_ms;
use crate::ws::Conn;
use crate::{progress, ramp, workers};

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
    /// PID of the server, to read its resident memory before and after.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// With --server-pid: seconds to wait after creating the users before reading the server's
    /// memory. Registration hashes passwords (19 MiB each) on blocking threads; the allocator
    /// returns that memory once those threads idle out (10 s), and an earlier reading would count
    /// it as baseline that connections then reuse, understating their cost.
    #[arg(long, default_value_t = 12)]
    pub settle_secs: u64,
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
        let mut h = Histogram::<u64>::new(3)?;
        for (value, count) in &self.handshakes {
            h.record_n(*value, *count)?;
        }
        Ok(h)
    }
}

/// Connections being held: each heartbeats and drains what the server sends, in its own task.
pub struct Held {
    tasks: Vec<JoinHandle<()>>,
    closed: Arc<AtomicUsize>,
}

impl Held {
    /// Connections that ended while held (closed by the server or failed).
    pub fn dropped(&self) -> usize {
        self.closed.load(Ordering::Relaxed)
    }

    pub fn release(self) -> usize {
        for task in &self.tasks {
            task.abort();
        }
        self.dropped()
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
    let ramp = ramp::open(
        ws,
        &plan.spread(),
        first,
        count,
        |n| tokens[n % tokens.len()].clone(),
        on_open,
    )
    .await?;
    let opened = Opened {
        open: ramp.conns.len(),
        failures: ramp.failures,
        seconds: ramp.seconds,
        handshakes: ramp
            .handshakes
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect(),
    };
    let closed = Arc::new(AtomicUsize::new(0));
    let heartbeat = Duration::from_secs(plan.heartbeat_secs.max(1));
    let tasks = ramp
        .conns
        .into_iter()
        .map(|c| tokio::spawn(hold(c.conn, heartbeat, closed.clone())))
        .collect();
    Ok((opened, Held { tasks, closed }))
}

async fn hold(mut conn: Conn, heartbeat: Duration, closed: Arc<AtomicUsize>) {
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
                if !matches!(message, Some(Ok(_))) {
                    break;
                }
            }
        }
    }
    closed.fetch_add(1, Ordering::Relaxed);
}

pub async fn run(api: &Api, ws: SocketAddr, args: Args) -> anyhow::Result<Value> {
    let workers = args.workers.max(1);
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
    if args.server_pid.is_some() && args.settle_secs > 0 {
        let settle = progress::spinner("letting the server return setup memory");
        tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
        settle.finish_and_clear();
    }
    let rss_before = args.server_pid.map(rss_bytes).transpose()?;

    let hold_for = Duration::from_secs(args.hold_secs);
    let (opened, dropped, rss_after) = if workers > 1 {
        let exe = match &args.worker_exe {
            Some(exe) => exe.clone(),
            None => std::env::current_exe()?,
        };
        let server_pid = args.server_pid;
        let outcome =
            workers::run_parent(&exe, ws, &plan, args.connections, workers, hold_for, || {
                server_pid.map(rss_bytes).transpose()
            })
            .await?;
        (outcome.opened, outcome.dropped, outcome.rss_after)
    } else {
        let bar = progress::bar(args.connections as u64, "connecting");
        let (opened, held) = open_and_hold(ws, &plan, 0, args.connections, || bar.inc(1)).await?;
        bar.finish_and_clear();
        eprintln!(
            "{} connections open in {:.1}s ({} failed); holding {}s",
            opened.open, opened.seconds, opened.failures, args.hold_secs
        );
        tokio::time::sleep(hold_for).await;
        let rss_after = args.server_pid.map(rss_bytes).transpose()?;
        let dropped = held.release();
        (vec![opened], dropped, rss_after)
    };

    let open: usize = opened.iter().map(|o| o.open).sum();
    let failures: usize = opened.iter().map(|o| o.failures).sum();
    // Workers ramp in parallel: the ramp took as long as the slowest.
    let connect_secs = opened.iter().map(|o| o.seconds).fold(0.0, f64::max);
    let mut handshakes = Histogram::<u64>::new(3)?;
    for o in &opened {
        handshakes.add(o.histogram()?)?;
    }
    let per_connection = match (rss_before, rss_after) {
        (Some(before), Some(after)) if open > 0 => {
            Some((after.saturating_sub(before)) as f64 / open as f64)
        }
        _ => None,
    };
    Ok(json!({
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
        "server_rss_before_bytes": rss_before,
        "server_rss_after_bytes": rss_after,
        "server_bytes_per_connection": per_connection,
    }))
}
