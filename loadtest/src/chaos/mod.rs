//! `chaos`: faults injected into a running cluster while clients send and receive, then a
//! total-queue check of everything they were told against what the cluster kept.
//!
//! P publishers send to their own channels through the gateways (nonces; retried with the same
//! nonce after an error, a time-out or a reconnect), S subscribers follow every channel across
//! both gateways (resuming after each disconnect). Meanwhile faults are injected on a schedule
//! through the control command (`--ctl`, see [`faults`]): kill -9 and restart, SIGSTOP/SIGCONT,
//! a partition of a shard leader from its followers — or, with `--rolling`, every process
//! stopped and started one by one. After the last fault the publishers drain, history is read
//! back over REST, the subscribers catch up, and [`crate::checker`] counts what was lost,
//! duplicated, unexpected or out of order (all must be 0), and whether an isolated leader
//! committed anything.
//!
//! Unavailability per fault is the longest silence of any channel's acknowledgements from just
//! before the fault to just after (as in `failover`), up to the next fault: it includes the
//! normal spacing of one channel's acks (channels / rate).

pub mod faults;
pub mod publisher;
pub mod subscriber;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::sync::watch;
use uuid::Uuid;

use crate::api::Api;
use crate::checker::{self, IsolatedShard, Observed};
use crate::failover::{quantile, unavailability};
use crate::progress;
use faults::{Kind, Planned};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Control command the fault verbs are appended to (see `loadtest/src/chaos/faults.rs`),
    /// e.g. `scripts/netns-cluster.sh`.
    #[arg(long)]
    pub ctl: String,
    /// Gateways' WebSocket addresses; clients start spread over them and move to the next one
    /// when theirs fails.
    #[arg(long, value_delimiter = ',', required = true)]
    pub gateways: Vec<SocketAddr>,
    /// REST APIs (base URLs) for setup, resyncs and the final history read, tried in turn.
    #[arg(long, value_delimiter = ',', required = true)]
    pub rest: Vec<String>,
    /// Channels, dealt to the publishers in turn.
    #[arg(long, default_value_t = 24)]
    pub channels: usize,
    #[arg(long, default_value_t = 6)]
    pub publishers: usize,
    /// Subscribers; each is in every channel.
    #[arg(long, default_value_t = 4)]
    pub subscribers: usize,
    /// Messages per second over all publishers.
    #[arg(long, default_value_t = 200)]
    pub rate: u64,
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Fault kinds to draw from.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "kill,pause,partition"
    )]
    pub kinds: Vec<Kind>,
    /// Processes a kill or pause may hit.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "node-1,node-2,node-3,gateway-1,gateway-2"
    )]
    pub targets: Vec<String>,
    /// How many faults (ignored with --rolling, which restarts every target once).
    #[arg(long, default_value_t = 6)]
    pub faults: usize,
    /// An explicit plan instead of random faults: `KIND:TARGET,…` (e.g.
    /// `kill:node-2,pause:gateway-1,partition:leader`), injected in that order.
    #[arg(long, value_delimiter = ',', value_parser = faults::parse_planned)]
    pub plan: Vec<Planned>,
    /// A rolling restart instead of random faults: every target stopped (SIGTERM) and started,
    /// one by one, in --targets order.
    #[arg(long)]
    pub rolling: bool,
    /// Seconds a fault lasts (kill → restart, pause → resume, partition → heal).
    #[arg(long, default_value_t = 3)]
    pub fault_secs: u64,
    /// Seconds from one fault's start to the next's (at least --fault-secs + 1).
    #[arg(long, default_value_t = 8)]
    pub every_secs: u64,
    /// Seconds of load before the first fault.
    #[arg(long, default_value_t = 3)]
    pub warmup_secs: u64,
    /// After the last fault, how long publishers may take for their last acks and subscribers
    /// to catch up.
    #[arg(long, default_value_t = 60)]
    pub settle_secs: u64,
    /// Seed of the fault plan.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// One fault as it happened.
#[derive(Debug, Clone)]
struct Done {
    kind: Kind,
    target: String,
    at_us: u64,
    window_us: Option<u64>,
}

/// Runs the control command with a verb; its trimmed standard output.
async fn ctl(args: &Args, verb: &str) -> anyhow::Result<String> {
    let command = format!("{} {verb}", args.ctl);
    let output = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&command)
        .output()
        .await
        .with_context(|| format!("running `{command}`"))?;
    if !output.status.success() {
        bail!(
            "`{command}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

async fn status(args: &Args) -> anyhow::Result<Value> {
    serde_json::from_str(&ctl(args, "status --json").await?).context("status --json")
}

/// Injects one fault and undoes it after `fault_secs`. A partition also reads the isolated
/// leader's commit index at the cut and before the heal.
async fn inject(
    args: &Args,
    fault: &Planned,
    isolated: &mut Vec<IsolatedShard>,
) -> anyhow::Result<String> {
    let lasting = Duration::from_secs(args.fault_secs);
    Ok(match fault.kind {
        Kind::Kill => {
            ctl(args, &format!("kill {}", fault.target)).await?;
            tokio::time::sleep(lasting).await;
            ctl(args, &format!("restart {}", fault.target)).await?;
            fault.target.clone()
        }
        Kind::Pause => {
            ctl(args, &format!("pause {}", fault.target)).await?;
            tokio::time::sleep(lasting).await;
            ctl(args, &format!("resume {}", fault.target)).await?;
            fault.target.clone()
        }
        Kind::Restart => {
            ctl(args, &format!("stop {}", fault.target)).await?;
            ctl(args, &format!("restart {}", fault.target)).await?;
            fault.target.clone()
        }
        Kind::Partition => {
            let node = ctl(args, &format!("partition {}", fault.target)).await?;
            let id: u64 = node
                .trim_start_matches("node-")
                .parse()
                .with_context(|| format!("partition named `{node}`, not node-N"))?;
            // Replies already on their way when the cut was made land within a millisecond.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let cut = faults::led_shards(&status(args).await?, id);
            tokio::time::sleep(lasting.saturating_sub(Duration::from_millis(200))).await;
            let before_heal = status(args).await;
            ctl(args, "heal").await?;
            isolated.extend(faults::isolated_shards(&cut, &before_heal?, id));
            node
        }
    })
}

pub async fn run(api: &Api, args: Args) -> anyhow::Result<Value> {
    anyhow::ensure!(!args.gateways.is_empty(), "--gateways names no gateway");
    anyhow::ensure!(
        !args.kinds.is_empty() && !args.targets.is_empty(),
        "nothing to inject"
    );
    let (c, p, s) = (
        args.channels.max(1),
        args.publishers.max(1),
        args.subscribers,
    );
    let apis: Vec<Api> = args
        .rest
        .iter()
        .map(|base| Api::with_timeout(base, Duration::from_secs(5)))
        .collect::<anyhow::Result<_>>()?;

    let setup = progress::spinner("creating users and channels");
    let owner = api.user("chaos-owner").await?;
    let workspace = api.workspace(&owner).await?;
    let mut channels: Vec<Uuid> = Vec::with_capacity(c);
    for n in 0..c {
        channels.push(
            api.channel(&owner, workspace, &format!("chaos-{n}"))
                .await?,
        );
    }
    let writers = api.users("chaos-pub", p).await?;
    for (k, user) in writers.iter().enumerate() {
        let own: Vec<Uuid> = (k..c).step_by(p).map(|n| channels[n]).collect();
        api.enroll(&owner, workspace, std::slice::from_ref(user), &own)
            .await?;
    }
    let readers = api.users("chaos-sub", s).await?;
    api.enroll(&owner, workspace, &readers, &channels).await?;
    setup.finish_and_clear();

    let origin = Instant::now();
    let (stop_tx, stop) = watch::channel(false);
    let (finals_tx, finals) = watch::channel::<Option<Arc<Vec<u64>>>>(None);
    let mut subscribers = Vec::with_capacity(s);
    let (identified, mut identifying) = tokio::sync::mpsc::unbounded_channel();
    for (index, user) in readers.iter().enumerate() {
        let me = subscriber::Subscriber {
            index,
            token: user.token.clone(),
            channels: channels.clone(),
            gateways: args.gateways.clone(),
            apis: apis.clone(),
            identified: identified.clone(),
        };
        subscribers.push(tokio::spawn(subscriber::run(
            me,
            finals.clone(),
            stop.clone(),
        )));
    }
    for _ in 0..s {
        tokio::time::timeout(Duration::from_secs(30), identifying.recv())
            .await
            .context("subscribers did not identify within 30 s")?;
    }
    let (pub_stop_tx, pub_stop) = watch::channel(false);
    let mut publishers = Vec::with_capacity(p);
    for (index, user) in writers.iter().enumerate() {
        let me = publisher::Publisher {
            index,
            token: user.token.clone(),
            channels: (index..c).step_by(p).map(|n| (n, channels[n])).collect(),
            gateways: args.gateways.clone(),
            rate: args.rate as f64 / p as f64,
            size: args.size,
            origin,
            settle: Duration::from_secs(args.settle_secs),
        };
        publishers.push(tokio::spawn(publisher::run(me, pub_stop.clone())));
    }

    let plan = if args.rolling {
        faults::rolling_plan(&args.targets)
    } else if !args.plan.is_empty() {
        args.plan.clone()
    } else {
        faults::random_plan(&args.kinds, &args.targets, args.faults, args.seed)
    };
    let every = Duration::from_secs(args.every_secs.max(args.fault_secs + 1));
    tokio::time::sleep(Duration::from_secs(args.warmup_secs)).await;
    let bar = progress::bar(plan.len() as u64, "injecting faults");
    let mut done = Vec::with_capacity(plan.len());
    let mut isolated = Vec::new();
    let mut fault_error = None;
    for fault in &plan {
        let slot = Instant::now();
        let at_us = origin.elapsed().as_micros() as u64;
        match inject(&args, fault, &mut isolated).await {
            Ok(target) => done.push(Done {
                kind: fault.kind,
                target,
                at_us,
                window_us: None,
            }),
            Err(err) => {
                fault_error = Some(format!("{err:#}"));
                break;
            }
        }
        bar.inc(1);
        tokio::time::sleep(every.saturating_sub(slot.elapsed())).await;
    }
    bar.finish_and_clear();
    let faults_over_us = origin.elapsed().as_micros() as u64;

    // Drain: no new sends; the last ones acknowledged (or given up after --settle-secs).
    let _ = pub_stop_tx.send(true);
    let mut observed = Observed {
        attempted: vec![Default::default(); c],
        history: vec![Vec::new(); c],
        ..Default::default()
    };
    let mut acked_at: Vec<(usize, u64)> = Vec::new();
    let (mut unacked, mut resent, mut pub_reconnects, mut refused) = (0, 0, 0, 0);
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for task in publishers {
        let log = task.await?;
        for (channel, nonce) in log.attempted {
            observed.attempted[channel].insert(nonce);
        }
        for (ack, at) in log.acks {
            acked_at.push((ack.channel, at));
            observed.acks.push(ack);
        }
        unacked += log.unacked;
        resent += log.resent;
        pub_reconnects += log.reconnects;
        refused += log.refused;
        for (code, n) in log.errors {
            *errors.entry(code).or_default() += n;
        }
    }

    // History, read back over REST, every page of every channel.
    let reading = progress::spinner("reading history");
    for (n, channel) in channels.iter().enumerate() {
        observed.history[n] = read_history(&apis, &owner.token, *channel).await?;
    }
    reading.finish_and_clear();
    let finals: Vec<u64> = observed
        .history
        .iter()
        .map(|h| h.iter().map(|e| e.seq).max().unwrap_or(0))
        .collect();
    let _ = finals_tx.send(Some(Arc::new(finals)));
    let deadline = Instant::now() + Duration::from_secs(args.settle_secs);
    while Instant::now() < deadline && !subscribers.iter().all(|t| t.is_finished()) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(true);
    let (mut sub_reconnects, mut failed_resumes, mut resyncs) = (0, 0, 0);
    let mut sub_failures = Vec::new();
    for task in subscribers {
        let log = task.await?;
        sub_reconnects += log.reconnects;
        failed_resumes += log.failed_resumes;
        resyncs += log.resyncs;
        if let Some(failure) = log.failure {
            sub_failures.push(failure);
        }
        observed.streams.extend(log.streams);
    }

    let verdict = checker::check(&observed);
    let clean = verdict.clean()
        && checker::minority_commits(&isolated) == 0
        && unacked == 0
        && refused == 0
        && sub_failures.is_empty()
        && fault_error.is_none();
    let minority_commits = checker::minority_commits(&isolated);
    let starts: Vec<u64> = done.iter().map(|d| d.at_us).collect();
    for (i, fault) in done.iter_mut().enumerate() {
        let until = starts.get(i + 1).copied().unwrap_or(faults_over_us);
        fault.window_us = unavailability(&acked_at, fault.at_us, until);
    }
    let ms = |us: u64| us as f64 / 1000.0;
    let mut by_kind: BTreeMap<Kind, Vec<u64>> = BTreeMap::new();
    let mut never_recovered = 0;
    for fault in &done {
        match fault.window_us {
            Some(w) => by_kind.entry(fault.kind).or_default().push(w),
            None => never_recovered += 1,
        }
    }
    let unavailability_ms: BTreeMap<String, Value> = by_kind
        .iter()
        .map(|(kind, windows)| {
            (
                format!("{kind:?}").to_lowercase(),
                json!({
                    "faults": windows.len(),
                    "p50": ms(quantile(windows, 0.5)),
                    "max": ms(*windows.iter().max().unwrap_or(&0)),
                }),
            )
        })
        .collect();
    Ok(json!({
        "scenario": if args.rolling { "chaos-rolling" } else { "chaos" },
        "channels": c,
        "publishers": p,
        "subscribers": s,
        "rate": args.rate,
        "seconds_of_faults": (faults_over_us as f64 / 1e6 - args.warmup_secs as f64).max(0.0),
        "faults": done.len(),
        "fault_error": fault_error,
        "sent": observed.attempted.iter().map(|a| a.len()).sum::<usize>(),
        "acked": verdict.acknowledged,
        "unacked_at_end": unacked,
        "refused": refused,
        "resent": resent,
        "errors": errors,
        "publisher_reconnects": pub_reconnects,
        "subscriber_reconnects": sub_reconnects,
        "failed_resumes": failed_resumes,
        "resyncs": resyncs,
        "subscriber_failures": sub_failures,
        "checker": verdict,
        "clean": clean,
        "partitioned_leader_shards": isolated.len(),
        "minority_commits": minority_commits,
        "never_recovered": never_recovered,
        "unavailability_ms": unavailability_ms,
        "fault_log": done.iter().map(|d| json!({
            "kind": format!("{:?}", d.kind).to_lowercase(),
            "target": d.target,
            "at_s": d.at_us as f64 / 1e6,
            "window_ms": d.window_us.map(ms),
        })).collect::<Vec<_>>(),
    }))
}

/// Every event of a channel over REST, oldest first, from whichever API answers.
async fn read_history(
    apis: &[Api],
    token: &str,
    channel: Uuid,
) -> anyhow::Result<Vec<checker::Event>> {
    let mut events = Vec::new();
    let mut after = 0;
    let mut failures = 0;
    loop {
        let mut page = None;
        for api in apis {
            match api.events(token, channel, after, 200).await {
                Ok(found) => {
                    page = Some(found);
                    break;
                }
                Err(err) => {
                    failures += 1;
                    if failures > 50 {
                        return Err(err.context("history could not be read"));
                    }
                }
            }
        }
        let Some(page) = page else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let Some(&(newest, _)) = page.last() else {
            return Ok(events);
        };
        events.extend(
            page.into_iter()
                .map(|(seq, nonce)| checker::Event::new(seq, nonce)),
        );
        after = newest;
    }
}
