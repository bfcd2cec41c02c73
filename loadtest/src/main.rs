//! `loadtest`: drives a Chorus deployment through its public REST API and WebSocket protocol.
//!
//! Each subcommand is one scenario. It creates its own users, workspace and channels through the
//! API, runs, prints a summary and writes a JSON result that two runs can be compared with.

mod api;
mod fanout;
mod hold;
mod latency;
mod report;
mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// REST API base URL of the deployment.
    #[arg(long, default_value = "http://127.0.0.1:8080", global = true)]
    api: String,
    /// WebSocket gateway address.
    #[arg(long, default_value = "127.0.0.1:8081", global = true)]
    ws: SocketAddr,
    /// Where to write the JSON result.
    #[arg(long, global = true)]
    out: Option<PathBuf>,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// Send-to-receipt latency between two clients in one channel, one message at a time.
    Latency(latency::Args),
    /// Open N idle authenticated connections, heartbeat them, and measure the server's memory.
    Hold(hold::Args),
    /// C channels × M subscribers, one publisher per channel at a total rate: deliveries/s,
    /// loss, duplicates, order and end-to-end latency.
    Fanout(fanout::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let api = api::Api::new(&cli.api);
    let result = match cli.scenario {
        Scenario::Latency(args) => latency::run(&api, cli.ws, args).await?,
        Scenario::Hold(args) => hold::run(&api, cli.ws, args).await?,
        Scenario::Fanout(args) => fanout::run(&api, cli.ws, args).await?,
    };
    report::finish(&result, cli.out.as_deref())
}
