//! `hold --workers W`: the connections of one run spread over W child processes.
//!
//! The parent writes the plan (tokens, heartbeat, spread) to a temporary JSON file and starts its
//! own binary W times as `loadtest --ws ADDR hold-worker --plan FILE --first N --count K`. A worker
//! speaks one line at a time on stdout:
//!
//! - `progress N` — N of its connections are open (a few times a second, for the parent's bar);
//! - `open {json}` — its ramp is over ([`Opened`]); it now holds its connections;
//! - `done {json}` — after the parent wrote `stop` to its stdin (or closed it): how many of its
//!   connections ended while held, and the stamped messages they received.
//!
//! The parent waits until every worker is `open`, holds for the asked time, reads the servers'
//! memory, runs the fan-out phase (if any), then stops them all. A worker whose parent dies sees its stdin close and stops too.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use crate::hold::{Opened, Plan, Published, Received, open_and_hold};
use crate::progress;

#[derive(clap::Args, Debug)]
pub struct WorkerArgs {
    /// The plan file the parent wrote.
    #[arg(long)]
    pub plan: PathBuf,
    /// Index of this worker's first connection (chooses tokens and source addresses).
    #[arg(long)]
    pub first: usize,
    /// Connections this worker opens.
    #[arg(long)]
    pub count: usize,
}

#[derive(Serialize, Deserialize, Debug)]
struct Done {
    dropped: usize,
    #[serde(default)]
    received: Received,
}

/// What the workers of a run reported, the servers' memory while they all held idle, and what
/// the fan-out phase posted.
pub struct Outcome {
    pub opened: Vec<Opened>,
    pub dropped: usize,
    pub rss_after: Vec<u64>,
    pub published: Published,
    pub received: Vec<Received>,
}

/// The worker side: open, report, hold until told to stop, report.
pub async fn worker_main(ws: SocketAddr, args: WorkerArgs) -> anyhow::Result<()> {
    progress::hide();
    let plan: Plan = serde_json::from_slice(
        &std::fs::read(&args.plan)
            .with_context(|| format!("cannot read plan {}", args.plan.display()))?,
    )?;
    let count = Arc::new(AtomicUsize::new(0));
    let reporter = tokio::spawn({
        let count = count.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tick.tick().await;
                println!("progress {}", count.load(Ordering::Relaxed));
            }
        }
    });
    let (opened, held) = open_and_hold(ws, &plan, args.first, args.count, || {
        count.fetch_add(1, Ordering::Relaxed);
    })
    .await?;
    reporter.abort();
    println!("open {}", serde_json::to_string(&opened)?);
    // Hold until the parent says stop or goes away.
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = stdin.next_line().await? {
        if line.trim() == "stop" {
            break;
        }
    }
    let (dropped, received) = held.release();
    println!(
        "done {}",
        serde_json::to_string(&Done { dropped, received })?
    );
    Ok(())
}

/// One worker as the parent sees it.
struct Worker {
    child: Child,
    stdin: ChildStdin,
}

/// A line from worker `n`.
enum Report {
    Progress(usize, usize),
    Open(usize, Opened),
    Done(usize, Done),
    /// Its stdout closed.
    Ended(usize),
}

/// The parent side: starts `workers` children of `exe` for `connections` in all, holds them for
/// `hold_for` once all are open, reads the servers' memory with `rss`, runs `phase` (the fan-out
/// phase) and stops them.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site, each a distinct setting"
)]
pub async fn run_parent(
    exe: &Path,
    ws: SocketAddr,
    plan: &Plan,
    connections: usize,
    workers: usize,
    hold_for: Duration,
    rss: impl Fn() -> anyhow::Result<Vec<u64>>,
    phase: impl Future<Output = Published>,
) -> anyhow::Result<Outcome> {
    let plan_file = std::env::temp_dir().join(format!(
        "loadtest-hold-{}-{}.json",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&plan_file, serde_json::to_vec(plan)?)?;
    let result = supervise(
        exe,
        ws,
        &plan_file,
        (connections, workers),
        hold_for,
        rss,
        phase,
    )
    .await;
    let _ = std::fs::remove_file(&plan_file);
    result
}

async fn supervise(
    exe: &Path,
    ws: SocketAddr,
    plan_file: &Path,
    (connections, workers): (usize, usize),
    hold_for: Duration,
    rss: impl Fn() -> anyhow::Result<Vec<u64>>,
    phase: impl Future<Output = Published>,
) -> anyhow::Result<Outcome> {
    let (reports, mut inbox) = mpsc::unbounded_channel();
    let mut children = Vec::with_capacity(workers);
    let share = connections.div_ceil(workers);
    for n in 0..workers {
        let first = n * share;
        let count = share.min(connections.saturating_sub(first));
        let mut child = Command::new(exe)
            .arg("--ws")
            .arg(ws.to_string())
            .arg("hold-worker")
            .arg("--plan")
            .arg(plan_file)
            .arg("--first")
            .arg(first.to_string())
            .arg("--count")
            .arg(count.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start worker {}", exe.display()))?;
        let stdin = child.stdin.take().context("worker stdin")?;
        let stdout = child.stdout.take().context("worker stdout")?;
        let reports = reports.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(report) = parse(n, &line) {
                    let _ = reports.send(report);
                }
            }
            let _ = reports.send(Report::Ended(n));
        });
        children.push(Worker { child, stdin });
    }
    drop(reports);

    // Ramp: until every worker is open.
    let bar = progress::bar(connections as u64, "connecting");
    let mut counts = vec![0; workers];
    let mut opened: Vec<Option<Opened>> = (0..workers).map(|_| None).collect();
    while opened.iter().any(Option::is_none) {
        match inbox.recv().await.context("workers went away")? {
            Report::Progress(n, count) => {
                counts[n] = count;
                bar.set_position(counts.iter().sum::<usize>() as u64);
            }
            Report::Open(n, o) => {
                counts[n] = o.open;
                bar.set_position(counts.iter().sum::<usize>() as u64);
                opened[n] = Some(o);
            }
            Report::Done(n, _) | Report::Ended(n) => {
                bar.abandon();
                bail!("worker {n} ended before its connections were open (see its errors above)");
            }
        }
    }
    bar.finish_and_clear();
    let opened: Vec<Opened> = opened.into_iter().flatten().collect();
    eprintln!(
        "{} connections open over {workers} workers; holding {}s",
        opened.iter().map(|o| o.open).sum::<usize>(),
        hold_for.as_secs()
    );

    tokio::time::sleep(hold_for).await;
    let rss_after = rss()?;
    let published = phase.await;
    for worker in &mut children {
        // A worker that already died is counted by its missing `done`.
        let _ = worker.stdin.write_all(b"stop\n").await;
        let _ = worker.stdin.flush().await;
    }
    let mut dropped = 0;
    let mut received = Vec::with_capacity(workers);
    let mut finished = 0;
    while finished < workers {
        match tokio::time::timeout(Duration::from_secs(30), inbox.recv()).await {
            Ok(Some(Report::Done(_, done))) => {
                dropped += done.dropped;
                received.push(done.received);
            }
            Ok(Some(Report::Ended(_))) => finished += 1,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    for mut worker in children {
        let status = tokio::time::timeout(Duration::from_secs(10), worker.child.wait()).await;
        if !matches!(status, Ok(Ok(s)) if s.success()) {
            eprintln!("a worker did not exit cleanly: {status:?}");
            let _ = worker.child.kill().await;
        }
    }
    Ok(Outcome {
        opened,
        dropped,
        rss_after,
        published,
        received,
    })
}

fn parse(worker: usize, line: &str) -> Option<Report> {
    let (kind, rest) = line.split_once(' ')?;
    match kind {
        "progress" => Some(Report::Progress(worker, rest.parse().ok()?)),
        "open" => Some(Report::Open(worker, serde_json::from_str(rest).ok()?)),
        "done" => Some(Report::Done(worker, serde_json::from_str(rest).ok()?)),
        _ => None,
    }
}
