//! `chorus`: one binary, every role. Parses flags and runs; everything else lives in the library.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use chorus::config::Role;
use chorus::{ClusterProcess, Node, NodeConfig};
use chorus_cluster::rpc::MembershipRequest;
use chorus_cluster::transport::TlsFiles;
use clap::{Parser, Subcommand, ValueEnum};

/// mimalloc instead of glibc's malloc: glibc keeps the memory of every burst (each password hash
/// takes 19 MiB, and a login storm left the process hundreds of MiB larger for good), and pays
/// 16 bytes of header per allocation, which a gateway of small per-connection objects feels.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Chorus: a real-time chat backend.
///
/// Settings come from defaults, then the TOML file given with --config, then CHORUS_* environment
/// variables, then flags.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file (see deploy/chorus.example.toml).
    #[arg(long, short, env = "CHORUS_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "CHORUS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty, global = true)]
    log_format: LogFormat,
    /// Export tracing spans to this OpenTelemetry collector, over OTLP/HTTP with protobuf
    /// (`http://collector:4318`; `/v1/traces` is added) [default: off].
    #[arg(long, env = "CHORUS_OTLP_ENDPOINT", global = true)]
    otlp_endpoint: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run an embedded node: REST API, WebSocket gateway and channel service in one process
    /// (the default).
    Serve(Box<ServeArgs>),
    /// A WebSocket client for trying the protocol by hand: sends each line of standard input as
    /// a frame and prints each frame received.
    Connect {
        /// Gateway URL.
        #[arg(default_value = "ws://127.0.0.1:8081/ws")]
        url: String,
    },
    /// Print the REST API's OpenAPI document (the same as `GET /openapi.json`).
    Openapi,
    /// Shrink a stopped embedded node's files: compacts its redb history (`messages.redb`) and
    /// Raft log (`channels/raft.redb`), returning their free pages to the filesystem. The files
    /// reuse free space by themselves; this is for giving it back. Refused while the node runs.
    Compact {
        /// The node's data directory (default: the configured `data_dir`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Back up a running embedded node: asks it (`POST /v1/admin/backup`, with its
    /// admin_token) to copy its metadata, history and Raft log, consistently, into a new
    /// directory on its host (docs/OPERATIONS.md).
    Backup {
        /// The node's REST API.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        api: String,
        /// The node's admin_token.
        #[arg(long, env = "CHORUS_ADMIN_TOKEN")]
        admin_token: String,
        /// A new directory, absolute, on the node's host.
        #[arg(long)]
        to: PathBuf,
    },
    /// Restore a backup into a stopped node's data directory (refuses a non-empty one unless
    /// --force, which replaces only the data files).
    Restore {
        /// The backup directory.
        #[arg(long)]
        from: PathBuf,
        /// The data directory (default: the configured `data_dir`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long)]
        force: bool,
    },
    /// Cluster operations: dev certificates, status.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Configuration: check it before a rollout.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Load the configuration exactly as `serve` would (FILE or --config, then CHORUS_*
    /// environment variables, then the same flags as `serve`) and check that it can start:
    /// every cluster requirement, without opening a store or a socket. Prints what the process
    /// would run with (passwords hidden); exits 1 listing every problem otherwise.
    Check {
        /// The TOML file [default: --config / CHORUS_CONFIG, else the defaults].
        file: Option<PathBuf>,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        serve: Box<ServeArgs>,
    },
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// Write a development CA (reused if present) and a certificate + key per name into DIR.
    Certs {
        #[arg(long, default_value = "cluster-certs")]
        dir: PathBuf,
        /// Names of the processes, e.g. node-1 node-2 node-3 gateway-1 admin.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Move every shard replica off NODE (it stays a member; `undrain` takes it back).
    Drain {
        node: u64,
        #[command(flatten)]
        admin: ClusterAdminArgs,
    },
    /// Drain NODE, then remove it from the cluster for good (its id is never reused).
    Decommission {
        node: u64,
        #[command(flatten)]
        admin: ClusterAdminArgs,
    },
    /// Let replicas move back onto a drained NODE.
    Undrain {
        node: u64,
        #[command(flatten)]
        admin: ClusterAdminArgs,
    },
    /// Show every channel node, shard, replica set, leader, term and commit index.
    Status {
        /// Channel nodes to ask first (their transport addresses); the rest come from the map.
        #[arg(long, value_delimiter = ',', required = true)]
        seeds: Vec<SocketAddr>,
        #[arg(long)]
        tls_ca: PathBuf,
        #[arg(long)]
        tls_cert: PathBuf,
        #[arg(long)]
        tls_key: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// How an operator's command reaches the cluster.
#[derive(clap::Args, Debug)]
struct ClusterAdminArgs {
    /// Channel nodes to ask (their transport addresses); any of them forwards the request.
    #[arg(long, value_delimiter = ',', required = true)]
    seeds: Vec<SocketAddr>,
    #[arg(long)]
    tls_ca: PathBuf,
    #[arg(long)]
    tls_cert: PathBuf,
    #[arg(long)]
    tls_key: PathBuf,
}

impl ClusterAdminArgs {
    fn tls(&self) -> TlsFiles {
        TlsFiles {
            ca_cert: self.tls_ca.clone(),
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
        }
    }
}

#[derive(clap::Args, Debug, Default)]
struct ServeArgs {
    /// Directory for all data (metadata, Raft log, history).
    #[arg(long, env = "CHORUS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// REST API listen address [default: 127.0.0.1:8080].
    #[arg(long, env = "CHORUS_API_ADDR")]
    api_addr: Option<SocketAddr>,
    /// WebSocket gateway listen address [default: 127.0.0.1:8081].
    #[arg(long, env = "CHORUS_WS_ADDR")]
    ws_addr: Option<SocketAddr>,
    /// Secret that signs access tokens; every node of a deployment must share it.
    #[arg(long, env = "CHORUS_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Operator token for /v1/admin/* (disabling accounts) [default: unset, routes disabled].
    #[arg(long, env = "CHORUS_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Metadata store: sqlite://PATH or postgres://… [default: SQLite in the data directory].
    #[arg(long, env = "CHORUS_METADATA_URL", hide_env_values = true)]
    metadata_url: Option<String>,
    /// Message store: redb://PATH, postgres://… or scylla://… [default: redb in the data directory].
    #[arg(long, env = "CHORUS_MESSAGES_URL", hide_env_values = true)]
    messages_url: Option<String>,
    /// Fan-out bus: `local` (default) or a redis:// URL.
    #[arg(long, env = "CHORUS_BUS_URL")]
    bus_url: Option<String>,
    /// Presence store: `local` (default) or a redis:// URL.
    #[arg(long, env = "CHORUS_PRESENCE_URL")]
    presence_url: Option<String>,
    /// Rate-limit counters: `local` (default) or a redis:// URL.
    #[arg(long, env = "CHORUS_RATE_LIMIT_URL")]
    rate_limit_url: Option<String>,
    /// Cluster roles of this process (channel, gateway, api); unset runs the embedded node.
    #[arg(long, env = "CHORUS_ROLE", value_enum, value_delimiter = ',')]
    role: Vec<Role>,
    /// This channel node's id.
    #[arg(long, env = "CHORUS_NODE_ID")]
    node_id: Option<u64>,
    /// Where this channel node's cluster transport listens (UDP).
    #[arg(long, env = "CHORUS_CLUSTER_LISTEN")]
    cluster_listen: Option<SocketAddr>,
    /// The channel nodes that create the cluster: ID=HOST:PORT,…
    #[arg(long, env = "CHORUS_SEEDS", value_delimiter = ',')]
    seeds: Vec<String>,
    /// Shards of a new cluster [default: 16].
    #[arg(long, env = "CHORUS_SHARD_COUNT")]
    shard_count: Option<u32>,
    /// Join the running cluster that the seeds belong to (this node is not a seed).
    #[arg(long, env = "CHORUS_JOIN")]
    join: bool,
    /// The transport address other nodes reach this joining node at [default: --cluster-listen].
    #[arg(long, env = "CHORUS_ADVERTISE")]
    advertise: Option<SocketAddr>,
    /// Replicas per shard of a new cluster [default: 3].
    #[arg(long, env = "CHORUS_REPLICATION")]
    replication: Option<usize>,
    /// The cluster CA's certificate (PEM).
    #[arg(long, env = "CHORUS_TLS_CA")]
    tls_ca: Option<PathBuf>,
    /// This process's cluster certificate (PEM).
    #[arg(long, env = "CHORUS_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// This process's cluster key (PEM).
    #[arg(long, env = "CHORUS_TLS_KEY", hide_env_values = true)]
    tls_key: Option<PathBuf>,
    /// Resumable sessions: `local` (default) or a redis:// URL shared by the gateways.
    #[arg(long, env = "CHORUS_SESSION_URL")]
    session_url: Option<String>,
    /// Ops listener (/metrics, /livez, /readyz) [default: none].
    #[arg(long, env = "CHORUS_OPS_ADDR")]
    ops_addr: Option<SocketAddr>,
    /// Certificate chain (PEM) the REST API and WebSocket gateway serve TLS with.
    #[arg(long, env = "CHORUS_CLIENT_TLS_CERT")]
    client_tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --client-tls-cert.
    #[arg(long, env = "CHORUS_CLIENT_TLS_KEY", hide_env_values = true)]
    client_tls_key: Option<PathBuf>,
}

impl Default for Command {
    fn default() -> Self {
        Command::Serve(Box::default())
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Pretty,
    Json,
}

fn main() -> anyhow::Result<()> {
    // First, before the runtime and its threads fill the allocator's arenas.
    let huge_pages = chorus::huge_pages::apply();
    let cli = Cli::parse();
    // Outside the runtime: the OTLP exporter's blocking client must be made and dropped there.
    let telemetry = chorus::telemetry::init(
        matches!(cli.log_format, LogFormat::Json),
        cli.otlp_endpoint.as_deref(),
    )?;
    if let Err(why) = huge_pages {
        tracing::warn!("{why}");
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the Tokio runtime")?;
    let result = runtime.block_on(run(cli));
    drop(runtime);
    telemetry.shutdown();
    result
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // Loaded only by the commands that need it, so `config check FILE` does not read another.
    let load = |path: Option<&PathBuf>| -> anyhow::Result<NodeConfig> {
        Ok(match path {
            Some(path) => NodeConfig::from_file(path)?,
            None => NodeConfig::default(),
        })
    };
    let args = match cli.command.unwrap_or_default() {
        Command::Serve(args) => *args,
        Command::Connect { url } => return chorus::connect::run(&url).await,
        Command::Cluster(ClusterCommand::Certs { dir, names }) => {
            return chorus::cluster_cli::certs(&dir, &names);
        }
        Command::Cluster(ClusterCommand::Drain { node, admin }) => {
            let request = MembershipRequest::Drain { node };
            return chorus::cluster_cli::membership(&admin.tls(), &admin.seeds, request).await;
        }
        Command::Cluster(ClusterCommand::Decommission { node, admin }) => {
            let request = MembershipRequest::Decommission { node };
            return chorus::cluster_cli::membership(&admin.tls(), &admin.seeds, request).await;
        }
        Command::Cluster(ClusterCommand::Undrain { node, admin }) => {
            let request = MembershipRequest::Undrain { node };
            return chorus::cluster_cli::membership(&admin.tls(), &admin.seeds, request).await;
        }
        Command::Cluster(ClusterCommand::Status {
            seeds,
            tls_ca,
            tls_cert,
            tls_key,
            json,
        }) => {
            let tls = TlsFiles {
                ca_cert: tls_ca,
                cert: tls_cert,
                key: tls_key,
            };
            return chorus::cluster_cli::status(&tls, &seeds, json).await;
        }
        Command::Config(ConfigCommand::Check { file, json, serve }) => {
            let mut config = load(file.as_ref().or(cli.config.as_ref()))?;
            apply_serve_args(&mut config, *serve);
            let summary = match chorus::config_check::check(&config) {
                Ok(summary) => summary,
                Err(problems) => {
                    eprintln!("{problems}");
                    std::process::exit(1);
                }
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                println!("configuration ok: {summary:#?}");
            }
            return Ok(());
        }
        Command::Compact { data_dir } => {
            let dir = match data_dir {
                Some(dir) => dir,
                None => load(cli.config.as_ref())?.data_dir,
            };
            return chorus::compact::run(&dir);
        }
        Command::Backup {
            api,
            admin_token,
            to,
        } => {
            let to = std::path::absolute(&to)?;
            let manifest = chorus::backup::request(&api, &admin_token, &to).await?;
            println!(
                "backup in {}: {} history events, files {}",
                to.display(),
                manifest.events,
                manifest.files.join(", ")
            );
            return Ok(());
        }
        Command::Restore {
            from,
            data_dir,
            force,
        } => {
            let dir = match data_dir {
                Some(dir) => dir,
                None => load(cli.config.as_ref())?.data_dir,
            };
            let manifest = chorus::backup::restore(&from, &dir, force)?;
            println!(
                "restored the backup of {} into {}",
                manifest.taken_at,
                dir.display()
            );
            return Ok(());
        }
        Command::Openapi => {
            println!("{}", chorus_api::openapi().to_pretty_json()?);
            return Ok(());
        }
    };
    let mut config = load(cli.config.as_ref())?;
    apply_serve_args(&mut config, args);
    if !config.cluster.roles.is_empty() {
        return run_cluster_process(config).await;
    }

    let node = Node::start(config.clone())
        .await
        .context("cannot start chorus")?;
    tracing::info!(data_dir = %config.data_dir.display(), "chorus embedded node started");
    if let Some(addr) = node.ops_addr {
        println!("chorus ops        http://{addr}/metrics");
    }
    println!("chorus REST API   http://{}", node.api_addr);
    println!("chorus WebSocket  ws://{}", node.ws_addr);
    println!("data directory    {}", config.data_dir.display());

    shutdown_signal().await;
    tracing::info!("shutting down");
    node.shutdown().await;
    Ok(())
}

/// Flags and `CHORUS_*` variables of `serve` over the configuration file.
fn apply_serve_args(config: &mut NodeConfig, args: ServeArgs) {
    apply_cluster_args(config, &args);
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(addr) = args.api_addr {
        config.api_addr = addr;
    }
    if let Some(addr) = args.ws_addr {
        config.ws_addr = addr;
    }
    if args.jwt_secret.is_some() {
        config.jwt_secret = args.jwt_secret;
    }
    if args.admin_token.is_some() {
        config.admin_token = args.admin_token;
    }
    if args.metadata_url.is_some() {
        config.metadata_url = args.metadata_url;
    }
    if args.messages_url.is_some() {
        config.messages_url = args.messages_url;
    }
    if args.bus_url.is_some() {
        config.bus_url = args.bus_url;
    }
    if args.presence_url.is_some() {
        config.presence_url = args.presence_url;
    }
    if args.rate_limit_url.is_some() {
        config.rate_limit_url = args.rate_limit_url;
    }
    if args.session_url.is_some() {
        config.session_url = args.session_url;
    }
    if args.ops_addr.is_some() {
        config.ops_addr = args.ops_addr;
    }
    if args.client_tls_cert.is_some() {
        config.client_tls.cert = args.client_tls_cert.clone();
    }
    if args.client_tls_key.is_some() {
        config.client_tls.key = args.client_tls_key.clone();
    }
}

/// Cluster flags over the `[cluster]` section.
fn apply_cluster_args(config: &mut NodeConfig, args: &ServeArgs) {
    let cluster = &mut config.cluster;
    if !args.role.is_empty() {
        cluster.roles = args.role.clone();
    }
    if let Some(id) = args.node_id {
        cluster.node_id = id;
    }
    if args.cluster_listen.is_some() {
        cluster.listen = args.cluster_listen;
    }
    if !args.seeds.is_empty() {
        cluster.seeds = args.seeds.clone();
    }
    if let Some(n) = args.shard_count {
        cluster.shard_count = n;
    }
    if let Some(n) = args.replication {
        cluster.replication = n;
    }
    if args.join {
        cluster.join = true;
    }
    if args.advertise.is_some() {
        cluster.advertise = args.advertise;
    }
    for (value, field) in [
        (&args.tls_ca, &mut cluster.tls_ca),
        (&args.tls_cert, &mut cluster.tls_cert),
        (&args.tls_key, &mut cluster.tls_key),
    ] {
        if value.is_some() {
            field.clone_from(value);
        }
    }
}

async fn run_cluster_process(config: NodeConfig) -> anyhow::Result<()> {
    let roles = config.cluster.roles.clone();
    let process = ClusterProcess::start(config)
        .await
        .context("cannot start chorus")?;
    tracing::info!(?roles, "chorus cluster process started");
    // First: a supervisor reading these lines may stop at the transport or WebSocket line.
    if let Some(addr) = process.ops_addr {
        println!("chorus ops        http://{addr}/metrics");
    }
    if let Some(addr) = process.transport_addr {
        println!("chorus transport  quic://{addr}");
    }
    if let Some(addr) = process.api_addr {
        println!("chorus REST API   http://{addr}");
    }
    if let Some(addr) = process.ws_addr {
        println!("chorus WebSocket  ws://{addr}");
    }

    shutdown_signal().await;
    tracing::info!("shutting down");
    process.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
