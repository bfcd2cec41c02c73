//! `hold`: N idle authenticated connections, each heartbeating; the server's RSS per connection.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chorus_protocol::ClientFrame;
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::{Mutex, Semaphore};

use crate::api::Api;
use crate::report::percentiles_ms;
use crate::ws::Conn;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Connections to open.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Distinct users the connections log in as (connections are spread over them).
    #[arg(long, default_value_t = 50)]
    users: usize,
    /// Channels each user is a member of (and so each connection is subscribed to).
    #[arg(long, default_value_t = 2)]
    channels: usize,
    /// Connections opened at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// How long to hold the connections once all are open.
    #[arg(long, default_value_t = 10)]
    hold_secs: u64,
    /// Heartbeat period of each connection.
    #[arg(long, default_value_t = 25)]
    heartbeat_secs: u64,
    /// Source addresses 127.0.0.1..=127.0.0.N are used in turn (each has ~28k ephemeral ports).
    #[arg(long, default_value_t = 1)]
    source_ips: u8,
    /// PID of the server, to read its resident memory before and after.
    #[arg(long)]
    server_pid: Option<u32>,
}

/// Resident set size of a process in bytes, from /proc.
fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .context("no VmRSS line")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kib * 1024)
}

/// The soft limit on open files of this process.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

pub async fn run(api: &Api, ws: SocketAddr, args: Args) -> anyhow::Result<Value> {
    if let Some(limit) = open_files_limit()
        && (args.connections as u64 + 100) > limit
    {
        bail!(
            "{} connections do not fit this process's open-file limit of {limit}; \
             run several loadtest processes with fewer connections each",
            args.connections
        );
    }
    let owner = api.user("owner").await?;
    let workspace = api.workspace(&owner).await?;
    let mut channels = Vec::new();
    for n in 0..args.channels {
        channels.push(api.channel(&owner, workspace, &format!("hold-{n}")).await?);
    }
    let mut users = Vec::new();
    for n in 0..args.users.max(1) {
        let user = api.user(&format!("holder{n}")).await?;
        api.add_member(&owner, workspace, &user).await?;
        for channel in &channels {
            api.join(&user, *channel).await?;
        }
        users.push(user);
    }
    let rss_before = args.server_pid.map(rss_bytes).transpose()?;

    let gate = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let handshakes = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let started = Instant::now();
    let mut opening = Vec::with_capacity(args.connections);
    for n in 0..args.connections {
        let token = users[n % users.len()].token.clone();
        let source = (args.source_ips > 1).then(|| {
            IpAddr::V4(Ipv4Addr::new(
                127,
                0,
                0,
                1 + (n % args.source_ips as usize) as u8,
            ))
        });
        let gate = gate.clone();
        let handshakes = handshakes.clone();
        opening.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let begun = Instant::now();
            let mut conn = Conn::connect(ws, source).await?;
            conn.identify(&token).await?;
            handshakes
                .lock()
                .await
                .record(begun.elapsed().as_micros() as u64)?;
            anyhow::Ok(conn)
        }));
    }
    let mut conns = Vec::with_capacity(args.connections);
    let mut failures = 0usize;
    for task in opening {
        match task.await? {
            Ok(conn) => conns.push(conn),
            Err(err) => {
                failures += 1;
                if failures <= 5 {
                    eprintln!("connection failed: {err:#}");
                }
            }
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    let open = conns.len();
    eprintln!(
        "{open} connections open in {connect_secs:.1}s ({failures} failed); holding {}s",
        args.hold_secs
    );

    // Each connection heartbeats and drains what the server sends, in its own task.
    let closed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let heartbeat = Duration::from_secs(args.heartbeat_secs.max(1));
    let mut holders = Vec::with_capacity(open);
    for mut conn in conns {
        let closed = closed.clone();
        holders.push(tokio::spawn(async move {
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
            closed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.hold_secs)).await;
    let rss_after = args.server_pid.map(rss_bytes).transpose()?;
    let dropped = closed.load(std::sync::atomic::Ordering::Relaxed);
    for holder in holders {
        holder.abort();
    }

    let per_connection = match (rss_before, rss_after) {
        (Some(before), Some(after)) if open > 0 => {
            Some((after.saturating_sub(before)) as f64 / open as f64)
        }
        _ => None,
    };
    let handshakes = handshakes.lock().await;
    Ok(json!({
        "scenario": "hold",
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
