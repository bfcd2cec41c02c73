//! The `loadtest` binary: parses the command line and runs the scenario it names (see `lib.rs`).

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    chorus_loadtest::run(chorus_loadtest::Cli::parse()).await
}
