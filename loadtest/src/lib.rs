//! `loadtest`: drives a Chorus deployment through its public REST API and WebSocket protocol.
//!
//! Each subcommand is one scenario. It creates its own users, workspace and channels through the
//! API, runs, prints a summary table and writes a JSON result that two runs can be compared with.
//! The scenarios are a library so that `tests/smoke.rs` runs each of them, at a tiny scale,
//! against a real node: a harness that is never run rots.

pub mod api;
pub mod capacity;
pub mod chaos;
pub mod checker;
pub mod failover;
pub mod fanout;
pub mod follow;
pub mod history;
pub mod hold;
pub mod latency;
pub mod net;
pub mod plot;
pub mod presence;
pub mod progress;
pub mod publisher;
pub mod ramp;
pub mod report;
pub mod soak;
pub mod storm;
pub mod timeline;
pub mod webhooks;
pub mod wire;
pub mod workers;
pub mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "loadtest", version, about)]
pub struct Cli {
    /// REST API base URL of the deployment.
    #[arg(long, default_value = "http://127.0.0.1:8080", global = true)]
    pub api: String,
    /// WebSocket gateway address.
    #[arg(long, default_value = "127.0.0.1:8081", global = true)]
    pub ws: SocketAddr,
    /// Where to write the JSON result.
    #[arg(long, global = true)]
    pub out: Option<PathBuf>,
    #[command(subcommand)]
    pub scenario: Scenario,
}

#[derive(Subcommand, Debug)]
pub enum Scenario {
    /// Send-to-receipt latency between two clients in one channel, one message at a time.
    Latency(latency::Args),
    /// Open N idle authenticated connections, heartbeat them, and measure the server's memory.
    Hold(hold::Args),
    /// C channels × M members, P publishers at a total rate: deliveries/s, loss, duplicates,
    /// order and end-to-end latency.
    Fanout(fanout::Args),
    /// N connections dropped at once reconnect with backoff and resume: time to recover, resume
    /// latency, and no event missed or repeated across the drop.
    Storm(storm::Args),
    /// K concurrent clients paging a channel's history over REST: requests/s and latency.
    History(history::Args),
    /// Fan-out capacity: the `fanout` load at a publish rate raised step by step (each held for
    /// --step-secs) until p99 crosses --max-p99-ms or a delivery is lost; reports the last step
    /// that passed (deliveries/s and p99) and a table of every step.
    Ramp(capacity::Args),
    /// A long mixed run looking for leaks: N connections on C channels, publishers at a modest
    /// rate, periodic churn (close + resume) and history reads; samples the server's RSS and open
    /// fds (--server-pid) and reports their growth, with loss and duplicates (must be 0).
    Soak(soak::Args),
    /// Write unavailability of a cluster while channel nodes are killed and restarted: K kills
    /// under a steady load; per kill, the longest silence of any channel (p50/p99 over the kills).
    Failover(failover::Args),
    /// Faults (kill -9 and restart, SIGSTOP/SIGCONT, a shard leader partitioned from its
    /// followers) injected through a control command while clients send and follow channels on
    /// both gateways; then a total-queue check: lost, duplicated, unexpected, out of order (all
    /// must be 0), and no commit by an isolated leader. `--rolling` restarts every process in
    /// turn instead. Exits non-zero when the check fails.
    Chaos(chaos::Args),
    /// Outgoing webhooks: a sink run by the load tester is subscribed to `message` events in C
    /// channels, M messages are posted over REST, and every acknowledged one must arrive once,
    /// well signed: deliveries/s, latency after the ack, missing and duplicated (exits non-zero
    /// when any is missing or repeated, or a signature is wrong).
    Webhooks(webhooks::Args),
    /// U users online, each following the presence of the next K, turning idle and active again
    /// at R changes a second, step by step: presence events delivered per second, missing and
    /// repeated ones, change→follower latency, the server's memory per connection and CPU.
    Presence(presence::Args),
    /// One share of a `hold --workers` run (started by `hold`, not by hand).
    #[command(hide = true)]
    HoldWorker(workers::WorkerArgs),
}

/// The defaults of a scenario's arguments, as the command line would give them: the single
/// source of defaults is the `#[arg(default_value…)]` attributes.
pub fn defaults<A: clap::Args>() -> A {
    let command = A::augment_args(clap::Command::new("loadtest").no_binary_name(true));
    let matches = command.get_matches_from(std::iter::empty::<String>());
    A::from_arg_matches(&matches).expect("scenario defaults parse")
}

/// Runs the scenario the command line names, prints its summary and writes its result.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let api = api::Api::new(&cli.api);
    let mut plot_to = None;
    let result = match cli.scenario {
        Scenario::Latency(args) => latency::run(&api, cli.ws, args).await?,
        Scenario::Hold(args) => hold::run(&api, cli.ws, args).await?,
        Scenario::Fanout(args) => {
            plot_to = args.plot.clone();
            fanout::run(&api, cli.ws, args).await?
        }
        Scenario::Storm(args) => storm::run(&api, cli.ws, args).await?,
        Scenario::Presence(args) => presence::run(&api, cli.ws, args).await?,
        Scenario::Failover(args) => failover::run(&api, cli.ws, args).await?,
        Scenario::Chaos(args) => {
            let result = chaos::run(&api, args).await?;
            report::finish(&result, cli.out.as_deref())?;
            anyhow::ensure!(
                result["clean"] == true,
                "the chaos check failed: see `checker`, `minority_commits`, `unacked_at_end` and \
                 `refused` above"
            );
            return Ok(());
        }
        Scenario::Webhooks(args) => {
            let result = webhooks::run(&api, args).await?;
            report::finish(&result, cli.out.as_deref())?;
            anyhow::ensure!(
                result["clean"] == true,
                "the webhook check failed: see `missing`, `duplicated` and `bad_signatures` above"
            );
            return Ok(());
        }
        Scenario::History(args) => {
            plot_to = args.plot.clone();
            history::run(&api, cli.ws, args).await?
        }
        Scenario::Ramp(args) => {
            plot_to = args.plot.clone();
            capacity::run(&api, cli.ws, args).await?
        }
        Scenario::Soak(args) => {
            plot_to = args.plot.clone();
            soak::run(&api, cli.ws, args).await?
        }
        // A worker speaks to its parent on stdout; it prints no table.
        Scenario::HoldWorker(args) => return workers::worker_main(cli.ws, args).await,
    };
    if let Some(path) = plot_to {
        plot::write(&result, &path)?;
        eprintln!("plot written to {}", path.display());
    }
    report::finish(&result, cli.out.as_deref())
}
