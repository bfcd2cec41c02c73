//! `history`: K concurrent clients paging one channel's history over REST for D seconds;
//! requests/s and latency.
//!
//! The channel is first seeded with N messages through the WebSocket `send` (the only way
//! messages are written), over a few connections in parallel, each waiting for its acks. Requests
//! then ask for the newest page, or for the page before a random seq, so reads hit the whole
//! history rather than one cached page. Every page is checked for the seqs it must hold.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chorus_protocol::{ClientFrame, ServerFrame};
use rand::Rng;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::api::{Api, Cursor, Page};
use crate::net::check_open_files;
use crate::report::percentiles_ms;
use crate::timeline::{Samples, Timeline};
use crate::wire::stamped_text;
use crate::ws::Conn;
use crate::{progress, ramp};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Concurrent clients (K), each with one request outstanding.
    #[arg(long, default_value_t = 200)]
    pub concurrency: usize,
    /// Seconds of requests (D).
    #[arg(long, default_value_t = 10)]
    pub duration_secs: u64,
    /// Messages seeded into the channel (N).
    #[arg(long, default_value_t = 5000)]
    pub messages: u64,
    /// Page size asked for.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Share of requests with a `before=` cursor at a random position (the rest ask for the
    /// newest page).
    #[arg(long, default_value_t = 0.5)]
    pub cursor_fraction: f64,
    /// WebSocket connections seeding the channel in parallel.
    #[arg(long, default_value_t = 8)]
    pub seed_connections: usize,
    /// Sends each seeding connection keeps waiting for their ack.
    #[arg(long, default_value_t = 32)]
    pub seed_window: usize,
    /// Size of the seeded messages in bytes.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Distinct users the clients read as.
    #[arg(long, default_value_t = 10)]
    pub users: usize,
    /// Write the per-second latency and requests as a self-contained HTML page.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

impl Default for Args {
    fn default() -> Self {
        crate::defaults()
    }
}

/// One client's tally.
#[derive(Default)]
struct Tally {
    ok: u64,
    /// Pages without the seqs they should hold.
    bad_pages: u64,
    errors: BTreeMap<String, u64>,
}

pub async fn run(api: &Api, ws: SocketAddr, args: Args) -> anyhow::Result<Value> {
    let k = args.concurrency.max(1);
    check_open_files(
        k + args.seed_connections,
        "use a lower --concurrency, or split the run over more worker processes \
         (several `loadtest history` at once against the node)",
    )?;
    let setup = progress::spinner("creating users and the channel");
    let owner = api.user("history-owner").await?;
    let workspace = api.workspace(&owner).await?;
    let channel = api.channel(&owner, workspace, "history").await?;
    let users = api.users("reader", args.users.max(1)).await?;
    api.enroll(&owner, workspace, &users, &[channel]).await?;
    setup.finish_and_clear();

    let seeded_at = Instant::now();
    let newest = seed(ws, &users, channel, &args).await?;
    let seed_secs = seeded_at.elapsed().as_secs_f64();
    eprintln!(
        "seeded {} messages in {seed_secs:.1}s ({:.0}/s)",
        args.messages,
        args.messages as f64 / seed_secs.max(1e-9)
    );

    let timeline = Timeline::shared();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration_secs);
    let clients: Vec<_> = (0..k)
        .map(|n| {
            let (api, token, timeline) = (
                api.clone(),
                users[n % users.len()].token.clone(),
                timeline.clone(),
            );
            let (limit, fraction) = (args.limit.max(1), args.cursor_fraction);
            tokio::spawn(async move {
                let mut samples = Samples::new(&timeline);
                let mut tally = Tally::default();
                while Instant::now() < deadline {
                    let cursor = {
                        let mut rng = rand::thread_rng();
                        if newest > 1 && rng.gen_bool(fraction.clamp(0.0, 1.0)) {
                            Cursor::Before(rng.gen_range(2..=newest + 1))
                        } else {
                            Cursor::Newest
                        }
                    };
                    // Filed under the second the request was made in, so the series covers the
                    // run and no partial last second reads as a drop in throughput.
                    let at = started.elapsed().as_micros() as u64;
                    let sent = Instant::now();
                    let page = api.history(&token, channel, cursor, limit).await;
                    samples.record(at, sent.elapsed().as_micros() as u64);
                    match page {
                        Ok(page) => {
                            tally.ok += 1;
                            if !page_is_right(&page, cursor, limit, newest) {
                                tally.bad_pages += 1;
                            }
                        }
                        Err(err) => {
                            *tally.errors.entry(format!("{err:#}")).or_default() += 1;
                        }
                    }
                }
                tally
            })
        })
        .collect();
    let meter = progress::seconds(args.duration_secs, "reading");
    for _ in 0..args.duration_secs {
        tokio::time::sleep(Duration::from_secs(1)).await;
        meter.inc(1);
    }
    let mut total = Tally::default();
    for client in clients {
        let tally = client.await.context("client")?;
        total.ok += tally.ok;
        total.bad_pages += tally.bad_pages;
        for (error, n) in tally.errors {
            *total.errors.entry(error).or_default() += n;
        }
    }
    meter.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    let errors: u64 = total.errors.values().sum();
    let timeline = timeline.lock().expect("timeline lock");
    Ok(json!({
        "scenario": "history",
        "concurrency": k,
        "duration_s": elapsed,
        "seeded_messages": args.messages,
        "seed_seconds": seed_secs,
        "page_limit": args.limit,
        "cursor_fraction": args.cursor_fraction,
        "requests": total.ok + errors,
        "requests_ok": total.ok,
        "requests_per_s": (total.ok + errors) as f64 / elapsed.max(1e-9),
        "bad_pages": total.bad_pages,
        "errors": errors,
        "error_kinds": total.errors,
        "latency_ms": percentiles_ms(&timeline.overall),
        "timeseries_counts": "requests",
        "timeseries": timeline.series(),
    }))
}

/// A page holds the `limit` seqs just below its cursor (or the newest), in order.
fn page_is_right(page: &Page, cursor: Cursor, limit: usize, newest: u64) -> bool {
    let below = match cursor {
        Cursor::Before(seq) => seq,
        Cursor::Newest => newest + 1,
        Cursor::After(_) => return true,
    };
    let want = (below - 1).min(limit as u64);
    page.messages.len() as u64 == want
        && page
            .messages
            .iter()
            .zip(below - want..below)
            .all(|(m, seq)| m.seq == seq)
}

/// Writes `args.messages` messages over `args.seed_connections` connections, each keeping up to
/// `args.seed_window` sends unacknowledged. Returns the channel's newest seq.
async fn seed(
    ws: SocketAddr,
    users: &[crate::api::User],
    channel: Uuid,
    args: &Args,
) -> anyhow::Result<u64> {
    let writers = args.seed_connections.max(1);
    let bar = progress::bar(args.messages, "seeding");
    let ramp = ramp::open(
        ws,
        &Default::default(),
        0,
        writers,
        |n| users[n % users.len()].token.clone(),
        || {},
    )
    .await?;
    anyhow::ensure!(
        ramp.conns.len() == writers,
        "seeding connections failed to open"
    );
    let per_writer = args.messages.div_ceil(writers as u64);
    let tasks: Vec<_> = ramp
        .conns
        .into_iter()
        .enumerate()
        .map(|(w, identified)| {
            let count = per_writer.min(args.messages.saturating_sub(w as u64 * per_writer));
            let (window, size, bar) = (args.seed_window.max(1), args.size, bar.clone());
            tokio::spawn(async move {
                write(identified.conn, channel, w, count, window, size, || {
                    bar.inc(1)
                })
                .await
            })
        })
        .collect();
    let mut newest = 0;
    for task in tasks {
        newest = newest.max(task.await.context("seeding")??);
    }
    bar.finish_and_clear();
    Ok(newest)
}

/// One seeding connection: `count` sends, at most `window` waiting for an ack.
async fn write(
    mut conn: Conn,
    channel: Uuid,
    writer: usize,
    count: u64,
    window: usize,
    size: usize,
    on_ack: impl Fn(),
) -> anyhow::Result<u64> {
    let (mut next, mut acked, mut newest) = (0u64, 0u64, 0u64);
    while acked < count {
        while next < count && next - acked < window as u64 {
            conn.send(&ClientFrame::Send {
                channel_id: channel,
                nonce: format!("seed{writer}-{next}"),
                text: stamped_text(next, size),
                parent_seq: None,
            })
            .await?;
            next += 1;
        }
        match conn.next().await? {
            ServerFrame::Ack { seq, .. } => {
                acked += 1;
                newest = newest.max(seq);
                on_ack();
            }
            ServerFrame::Error { code, message, .. } => {
                bail!("seeding refused: {code:?} {message}")
            }
            _ => {}
        }
    }
    Ok(newest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::PageMessage;

    fn page(seqs: std::ops::Range<u64>) -> Page {
        Page {
            messages: seqs
                .map(|seq| PageMessage {
                    seq,
                    text: String::new(),
                })
                .collect(),
            has_more: false,
        }
    }

    #[test]
    fn pages_are_checked_against_their_cursor() {
        assert!(page_is_right(&page(51..101), Cursor::Newest, 50, 100));
        assert!(page_is_right(&page(1..11), Cursor::Before(11), 50, 100));
        assert!(page_is_right(&page(20..70), Cursor::Before(70), 50, 100));
        assert!(!page_is_right(&page(21..70), Cursor::Before(70), 50, 100));
        assert!(!page_is_right(&page(50..100), Cursor::Newest, 50, 100));
    }
}
