//! `failover`: write unavailability of a cluster while its channel nodes are killed.
//!
//! P publishers, each with its own channels, send at a steady total rate through the gateways
//! while the scenario runs `--kill-cmd` K times, `--every-secs` apart, and `--restart-cmd VICTIM`
//! halfway between kills (the kill command prints the name of what it killed). For each kill,
//! the unavailability is the longest silence of any channel across the kill: from its last
//! acknowledgement before the kill to its first one after. A channel whose shard did not lose its
//! leader shows only its normal spacing of acknowledgements (1 / its send rate), so the figure
//! is the pause of the shards the victim led, give or take that spacing.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::sync::watch;
use uuid::Uuid;

use crate::api::Api;
use crate::net::Spread;
use crate::publisher::{Acks, Publishing, publish};
use crate::{progress, ramp};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Channels, dealt to the publishers in turn.
    #[arg(long, default_value_t = 48)]
    pub channels: usize,
    /// Publisher connections.
    #[arg(long, default_value_t = 48)]
    pub publishers: usize,
    /// Total messages per second over all publishers.
    #[arg(long, default_value_t = 2000)]
    pub rate: u64,
    /// Message size in bytes.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// How many kills.
    #[arg(long, default_value_t = 10)]
    pub kills: usize,
    /// Seconds between kills (the restart happens halfway).
    #[arg(long, default_value_t = 8)]
    pub every_secs: u64,
    /// Seconds of sending before the first kill.
    #[arg(long, default_value_t = 3)]
    pub warmup_secs: u64,
    /// Shell command that kills one process and prints its name (e.g.
    /// `scripts/cluster.sh kill-leader`).
    #[arg(long)]
    pub kill_cmd: String,
    /// Shell command that restarts a killed process; the victim's name is appended.
    #[arg(long)]
    pub restart_cmd: String,
    #[command(flatten)]
    pub spread: Spread,
}

/// One kill and the silence it caused.
#[derive(Debug, Clone, PartialEq)]
pub struct Kill {
    pub victim: String,
    /// µs since the run's origin.
    pub at_us: u64,
    /// The longest silence of any channel across the kill, µs; `None` if some channel was never
    /// acknowledged again before the next kill.
    pub window_us: Option<u64>,
}

/// The longest silence across `kill_us` of any channel: from a channel's last acknowledgement
/// before the kill to its first after it, looking no further than `until_us`. `acks` are
/// (channel index, µs) pairs in any order; channels without an acknowledgement before the kill
/// are not counted. `None` when a channel acknowledged before the kill has none after it.
pub fn unavailability(acks: &[(usize, u64)], kill_us: u64, until_us: u64) -> Option<u64> {
    use std::collections::HashMap;
    let mut before: HashMap<usize, u64> = HashMap::new();
    let mut after: HashMap<usize, u64> = HashMap::new();
    for &(channel, at) in acks {
        if at < kill_us {
            let last = before.entry(channel).or_insert(at);
            *last = (*last).max(at);
        } else if at <= until_us {
            let first = after.entry(channel).or_insert(at);
            *first = (*first).min(at);
        }
    }
    before
        .iter()
        .map(|(channel, last)| after.get(channel).map(|first| first - last))
        .try_fold(0, |worst, gap| gap.map(|gap| worst.max(gap)))
}

/// The `q` quantile (nearest rank) of `values`, which must not be empty.
pub fn quantile(values: &[u64], q: f64) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Runs a shell command; its trimmed stdout.
async fn shell(command: &str) -> anyhow::Result<String> {
    let output = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
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

pub async fn run(api: &Api, ws: SocketAddr, args: Args) -> anyhow::Result<Value> {
    anyhow::ensure!(args.kills > 0, "--kills must be at least 1");
    let (c, p) = (args.channels.max(1), args.publishers.max(1));
    let setup = progress::spinner("creating users and channels");
    let owner = api.user("failover-owner").await?;
    let workspace = api.workspace(&owner).await?;
    let mut channels: Vec<Uuid> = Vec::with_capacity(c);
    for n in 0..c {
        channels.push(
            api.channel(&owner, workspace, &format!("failover-{n}"))
                .await?,
        );
    }
    let mut posts_in = vec![Vec::new(); p];
    for i in 0..p.max(c) {
        posts_in[i % p].push(i % c);
    }
    let users = api.users("failover-pub", p).await?;
    for (user, own) in users.iter().zip(&posts_in) {
        let own: Vec<Uuid> = own.iter().map(|&n| channels[n]).collect();
        api.enroll(&owner, workspace, std::slice::from_ref(user), &own)
            .await?;
    }
    setup.finish_and_clear();
    let publishers = ramp::open(ws, &args.spread, 0, p, |n| users[n].token.clone(), || {}).await?;
    anyhow::ensure!(
        publishers.conns.len() == p,
        "{} of {p} publishers could not connect",
        p - publishers.conns.len()
    );

    let origin = Instant::now();
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::with_capacity(p);
    for identified in publishers.conns {
        let k = identified.index;
        let what = Publishing {
            tag: k,
            channels: posts_in[k].iter().map(|&n| (n, channels[n])).collect(),
            rate: args.rate as f64 / p as f64,
            size: args.size,
            origin,
        };
        let mut stopped = stopped.clone();
        tasks.push(tokio::spawn(publish(identified.conn, what, async move {
            let _ = stopped.wait_for(|s| *s).await;
        })));
    }

    let every = Duration::from_secs(args.every_secs.max(2));
    let bar = progress::bar(args.kills as u64, "killing");
    tokio::time::sleep(Duration::from_secs(args.warmup_secs)).await;
    let mut kills = Vec::with_capacity(args.kills);
    for _ in 0..args.kills {
        // The kill command returns once its victim is dead: what was acknowledged before then
        // was acknowledged before the kill (or by the victim's last breath).
        let victim = shell(&args.kill_cmd).await?;
        let at_us = origin.elapsed().as_micros() as u64;
        tokio::time::sleep(every / 2).await;
        shell(&format!("{} {victim}", args.restart_cmd)).await?;
        tokio::time::sleep(every / 2).await;
        kills.push(Kill {
            victim,
            at_us,
            window_us: None,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    let _ = stop.send(true);
    let mut sent = 0u64;
    let mut acks = Acks::default();
    for task in tasks {
        let (n, part) = task.await??;
        sent += n;
        acks.seqs.extend(part.seqs);
        acks.acked_at.extend(part.acked_at);
        for (code, count) in part.errors {
            *acks.errors.entry(code).or_default() += count;
        }
    }
    let by_channel: Vec<(usize, u64)> = acks
        .seqs
        .iter()
        .map(|(channel, _)| *channel)
        .zip(acks.acked_at.iter().copied())
        .collect();
    let every_us = every.as_micros() as u64;
    for kill in &mut kills {
        kill.window_us = unavailability(&by_channel, kill.at_us, kill.at_us + every_us);
    }
    let measured: Vec<u64> = kills.iter().filter_map(|k| k.window_us).collect();
    let ms = |us: u64| us as f64 / 1000.0;
    let summary = if measured.is_empty() {
        json!(null)
    } else {
        json!({
            "p50": ms(quantile(&measured, 0.50)),
            "p99": ms(quantile(&measured, 0.99)),
            "max": ms(*measured.iter().max().unwrap()),
            "min": ms(*measured.iter().min().unwrap()),
        })
    };
    Ok(json!({
        "scenario": "failover",
        "channels": c,
        "publishers": p,
        "rate": args.rate,
        "kills": kills.len(),
        "sent": sent,
        "acked": acks.seqs.len(),
        "refused": acks.errors,
        "never_recovered": kills.iter().filter(|k| k.window_us.is_none()).count(),
        "unavailability_ms": summary,
        "windows_ms": kills.iter().map(|k| k.window_us.map(ms)).collect::<Vec<_>>(),
        "victims": kills.iter().map(|k| k.victim.clone()).collect::<Vec<_>>(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_the_longest_silence_of_any_channel_across_the_kill() {
        // Channel 0 keeps going every 10 µs; channel 1 stops at 95 and resumes at 700.
        let mut acks: Vec<(usize, u64)> = (0..100).map(|t| (0, t * 10)).collect();
        acks.extend([(1, 50), (1, 95), (1, 700), (1, 720)]);
        assert_eq!(unavailability(&acks, 100, 2_000), Some(605));
    }

    #[test]
    fn a_channel_that_never_recovers_has_no_window() {
        let acks = [(0, 10), (0, 200), (1, 20)];
        assert_eq!(unavailability(&acks, 100, 2_000), None);
        // Only what follows within the look-ahead counts.
        assert_eq!(unavailability(&[(0, 10), (0, 5_000)], 100, 2_000), None);
    }

    #[test]
    fn channels_first_acknowledged_after_the_kill_do_not_count() {
        assert_eq!(
            unavailability(&[(0, 90), (0, 120), (1, 500)], 100, 2_000),
            Some(30)
        );
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let values: Vec<u64> = (1..=10).collect();
        assert_eq!(quantile(&values, 0.5), 5);
        assert_eq!(quantile(&values, 0.99), 10);
        assert_eq!(quantile(&[7], 0.5), 7);
    }
}
