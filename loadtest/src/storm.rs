//! `storm`: N connections subscribed to a few channels while a publisher keeps sending; then all
//! N are dropped at once (their TCP streams closed, as when a load balancer or a network path
//! dies), and each reconnects with jittered exponential backoff and `resume`s.
//!
//! The promise under test is the protocol's: a client that resumes gets every event it missed,
//! once, in order. Each client checks that the seqs it sees on each channel — live, replayed on
//! resume, or fetched over REST after `resync_required` — are exactly `ready.last_seq + 1 ..=` the
//! channel's final seq, with no gap and no repeat.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chorus_protocol::ClientFrame;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::api::Api;
use crate::follow::{Comeback, Follower, Tally, Via};
use crate::net::{Spread, check_open_files};
use crate::publisher::{Publishing, publish};
use crate::report::percentiles_ms;
use crate::timeline::histogram;
use crate::ws::Conn;
use crate::{follow, progress, ramp};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Connections (N) that are dropped and resume.
    #[arg(long, default_value_t = 500)]
    pub connections: usize,
    /// Channels every connection is subscribed to.
    #[arg(long, default_value_t = 2)]
    pub channels: usize,
    /// Distinct users the connections log in as.
    #[arg(long, default_value_t = 20)]
    pub users: usize,
    /// Messages per second the publisher sends (over all channels), before, during and after.
    #[arg(long, default_value_t = 20)]
    pub rate: u64,
    /// Message size in bytes.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Seconds of publishing before the drop.
    #[arg(long, default_value_t = 3)]
    pub before_secs: u64,
    /// Seconds of publishing after every connection has resumed.
    #[arg(long, default_value_t = 3)]
    pub after_secs: u64,
    /// First reconnect backoff; each failed attempt doubles it, up to the cap. Each wait is drawn
    /// uniformly from zero to the current backoff ("full jitter").
    #[arg(long, default_value_t = 50)]
    pub backoff_base_ms: u64,
    /// Longest reconnect backoff.
    #[arg(long, default_value_t = 2000)]
    pub backoff_cap_ms: u64,
    /// A client that has not resumed this long after the drop gives up.
    #[arg(long, default_value_t = 60)]
    pub resume_timeout_secs: u64,
    /// After the last ack, how long clients may take to reach the final seqs.
    #[arg(long, default_value_t = 10)]
    pub drain_secs: u64,
    #[command(flatten)]
    pub spread: Spread,
}

impl Default for Args {
    fn default() -> Self {
        crate::defaults()
    }
}

/// One client's account of the run.
#[derive(Default)]
struct Account {
    /// Events by how they came, gaps and repeats.
    tally: Tally,
    /// Seqs between the last one seen and the channel's final seq, at the end.
    tail_missing: u64,
    failed_attempts: u64,
    /// Successful attempt's start (after its backoff) → `resumed`, µs.
    resume_us: Option<u64>,
    /// Drop → `resumed`, µs.
    recovery_us: Option<u64>,
    /// Events this client had to see: each channel's final seq less its `ready` position.
    owed: u64,
    /// Why this client could not do its part, if it could not.
    failure: Option<String>,
}

/// What the run tells every client.
struct Signals {
    drop: watch::Receiver<Option<Instant>>,
    /// Final seq of each channel, once the publisher has stopped and every ack is in.
    finals: watch::Receiver<Option<Arc<Vec<u64>>>>,
    stop: watch::Receiver<bool>,
}

struct Client {
    ws: SocketAddr,
    api: Api,
    token: String,
    source: Option<IpAddr>,
    session_id: Uuid,
    follower: Follower,
    backoff_base: Duration,
    backoff_cap: Duration,
    resume_timeout: Duration,
    resumed: Arc<AtomicUsize>,
    account: Account,
}

pub async fn run(api: &Api, ws: SocketAddr, args: Args) -> anyhow::Result<Value> {
    let n = args.connections.max(1);
    check_open_files(
        n + 1,
        "use fewer connections, or split the run over more worker processes \
         (several `loadtest storm` at once against the node, each with a share of the connections)",
    )?;
    let setup = progress::spinner("creating users and channels");
    let owner = api.user("storm-owner").await?;
    let workspace = api.workspace(&owner).await?;
    let mut channels = Vec::new();
    for c in 0..args.channels.max(1) {
        channels.push(
            api.channel(&owner, workspace, &format!("storm-{c}"))
                .await?,
        );
    }
    let users = api.users("stormer", args.users.max(1)).await?;
    api.enroll(&owner, workspace, &users, &channels).await?;
    let publisher_user = api.user("storm-publisher").await?;
    api.enroll(
        &owner,
        workspace,
        std::slice::from_ref(&publisher_user),
        &channels,
    )
    .await?;
    setup.finish_and_clear();

    let bar = progress::bar(n as u64 + 1, "connecting");
    let ramp = ramp::open(
        ws,
        &args.spread,
        0,
        n,
        |i| users[i % users.len()].token.clone(),
        || bar.inc(1),
    )
    .await?;
    let mut publisher = ramp::open(
        ws,
        &args.spread,
        n,
        1,
        |_| publisher_user.token.clone(),
        || bar.inc(1),
    )
    .await?;
    bar.finish_and_clear();
    let publisher = publisher
        .conns
        .pop()
        .context("the publisher could not connect")?;

    let (drop_tx, drop_rx) = watch::channel(None);
    let (finals_tx, finals_rx) = watch::channel(None);
    let (stop_tx, stop_rx) = watch::channel(false);
    let resumed = Arc::new(AtomicUsize::new(0));
    let connected = ramp.conns.len();
    let mut clients = Vec::with_capacity(connected);
    for identified in ramp.conns {
        let client = Client {
            ws,
            api: api.clone(),
            token: users[identified.index % users.len()].token.clone(),
            source: args.spread.source(identified.index),
            session_id: identified.session_id,
            follower: Follower::new(&channels, &identified.channels),
            backoff_base: Duration::from_millis(args.backoff_base_ms.max(1)),
            backoff_cap: Duration::from_millis(args.backoff_cap_ms.max(1)),
            resume_timeout: Duration::from_secs(args.resume_timeout_secs),
            resumed: resumed.clone(),
            account: Account::default(),
        };
        let signals = Signals {
            drop: drop_rx.clone(),
            finals: finals_rx.clone(),
            stop: stop_rx.clone(),
        };
        clients.push(tokio::spawn(client.run(identified.conn, signals)));
    }

    // Publish throughout; drop everyone after `before_secs`.
    let origin = Instant::now();
    let (publishing_done, publishing_stop) = watch::channel(false);
    let mut until = publishing_stop.clone();
    let publishing = tokio::spawn(publish(
        publisher.conn,
        Publishing {
            tag: 0,
            channels: channels.iter().copied().enumerate().collect(),
            rate: args.rate.max(1) as f64,
            size: args.size,
            origin,
        },
        async move {
            let _ = until.wait_for(|stop| *stop).await;
        },
    ));
    drop(publishing_stop);
    let before = progress::seconds(args.before_secs, "before drop");
    for _ in 0..args.before_secs {
        tokio::time::sleep(Duration::from_secs(1)).await;
        before.inc(1);
    }
    before.finish_and_clear();

    let dropped_at = Instant::now();
    let _ = drop_tx.send(Some(dropped_at));
    let resuming = progress::bar(connected as u64, "resuming");
    let resume_deadline = dropped_at + Duration::from_secs(args.resume_timeout_secs);
    let mut all_resumed = None;
    while Instant::now() < resume_deadline {
        let count = resumed.load(Ordering::Relaxed);
        resuming.set_position(count as u64);
        if count >= connected {
            all_resumed = Some(dropped_at.elapsed());
            break;
        }
        if clients.iter().all(|c| c.is_finished()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    resuming.finish_and_clear();
    match all_resumed {
        Some(t) => eprintln!(
            "{connected} connections resumed {:.0} ms after the drop",
            t.as_secs_f64() * 1e3
        ),
        None => eprintln!(
            "only {} of {connected} connections resumed",
            resumed.load(Ordering::Relaxed)
        ),
    }

    let after = progress::seconds(args.after_secs, "after resume");
    for _ in 0..args.after_secs {
        tokio::time::sleep(Duration::from_secs(1)).await;
        after.inc(1);
    }
    after.finish_and_clear();
    let _ = publishing_done.send(true);
    let (sent, acks) = publishing.await.context("publisher")??;
    let (finals, mut acked) = follow::settle_clients(
        &acks.seqs,
        channels.len(),
        &finals_tx,
        &stop_tx,
        &clients,
        Duration::from_secs(args.drain_secs),
    )
    .await;

    let mut total = Account::default();
    let mut resume = histogram();
    let mut recovery = histogram();
    let (mut failed, mut failures_shown) = (0, 0);
    for client in clients {
        let account = client.await.context("client")?;
        total.tally.add(&account.tally);
        total.tail_missing += account.tail_missing;
        total.owed += account.owed;
        total.failed_attempts += account.failed_attempts;
        if let Some(us) = account.resume_us {
            resume.record(us).ok();
        }
        if let Some(us) = account.recovery_us {
            recovery.record(us).ok();
        }
        if let Some(why) = account.failure {
            failed += 1;
            if failures_shown < 5 {
                failures_shown += 1;
                eprintln!("client failed: {why}");
            }
        }
    }
    // Acked seqs must be 1..=final with no hole: else the checks above compare against a lie.
    let holes: u64 = acked
        .iter_mut()
        .map(|seqs| {
            seqs.sort_unstable();
            seqs.dedup();
            seqs.last().copied().unwrap_or(0) - seqs.len() as u64
        })
        .sum();
    Ok(json!({
        "scenario": "storm",
        "connections": n,
        "connections_open": connected,
        "connection_failures": ramp.failures,
        "channels": channels.len(),
        "publish_rate_msg_s": args.rate,
        "sent": sent,
        "acked": acks.seqs.len(),
        "send_errors": acks.errors,
        "unacked_seqs_below_final": holes,
        "final_seqs": finals,
        "expected_events": total.owed,
        "resumed": resumed.load(Ordering::Relaxed),
        "clients_failed": failed,
        "all_resumed_after_ms": all_resumed.map(|t| t.as_secs_f64() * 1e3),
        "resume_ms": percentiles_ms(&resume),
        "drop_to_resumed_ms": percentiles_ms(&recovery),
        "failed_reconnect_attempts": total.failed_attempts,
        "events_live": total.tally.live,
        "events_replayed": total.tally.replayed,
        "events_fetched_after_resync": total.tally.fetched,
        "resyncs_required": total.tally.resyncs,
        "missed": total.tally.gaps + total.tail_missing,
        "missed_in_stream": total.tally.gaps,
        "missed_at_end": total.tail_missing,
        "duplicated": total.tally.repeats,
    }))
}

impl Client {
    async fn run(mut self, conn: Conn, mut signals: Signals) -> Account {
        if let Err(err) = self.serve(conn, &mut signals).await {
            self.account.failure = Some(format!("{err:#}"));
        }
        // What the client still lacks at the end is missed too.
        let finals = signals.finals.borrow().clone();
        if let Some(finals) = finals {
            (self.account.tail_missing, self.account.owed) = self.follower.settle(&finals);
        }
        self.account.tally = self.follower.tally;
        self.account
    }

    async fn serve(&mut self, conn: Conn, signals: &mut Signals) -> anyhow::Result<()> {
        let mut conn = Some(conn);
        let mut heartbeat = tokio::time::interval(Duration::from_secs(20));
        heartbeat.tick().await;
        loop {
            let Some(live) = conn.as_mut() else {
                // Dropped: reconnect and resume.
                let dropped_at = signals.drop.borrow().context("no drop time")?;
                conn = Some(self.reconnect(dropped_at).await?);
                continue;
            };
            if self.caught_up(&signals.finals) {
                return Ok(());
            }
            tokio::select! {
                _ = signals.stop.changed() => return Ok(()),
                _ = signals.finals.changed() => {}
                changed = signals.drop.changed() => {
                    if changed.is_ok() && signals.drop.borrow().is_some() {
                        // Close the TCP stream: no close frame, as when a path dies.
                        conn = None;
                    }
                }
                _ = heartbeat.tick() => live.send(&ClientFrame::Heartbeat).await?,
                message = live.ws.next() => match message {
                    Some(Ok(Message::Text(text))) => {
                        self.follower.on_text(&self.api, &self.token, &text, Via::Live).await?;
                    }
                    Some(Ok(Message::Close(frame))) => bail!("closed by the server: {frame:?}"),
                    Some(Ok(_)) => {}
                    Some(Err(err)) => bail!("connection failed: {err}"),
                    None => bail!("connection ended"),
                },
            }
        }
    }

    fn caught_up(&self, finals: &watch::Receiver<Option<Arc<Vec<u64>>>>) -> bool {
        let finals = finals.borrow();
        finals
            .as_ref()
            .is_some_and(|finals| self.follower.caught_up(finals))
    }

    /// Backs off, reconnects and resumes until it works or the resume timeout passes.
    async fn reconnect(&mut self, dropped_at: Instant) -> anyhow::Result<Conn> {
        let comeback = Comeback {
            ws: self.ws,
            source: self.source,
            api: &self.api,
            token: &self.token,
            session_id: self.session_id,
            backoff_base: self.backoff_base,
            backoff_cap: self.backoff_cap,
            give_up_after: self.resume_timeout,
        };
        let (conn, took) = follow::reconnect(
            &comeback,
            &mut self.follower,
            dropped_at,
            &mut self.account.failed_attempts,
        )
        .await?;
        self.account.resume_us = Some(took.as_micros() as u64);
        self.account.recovery_us = Some(dropped_at.elapsed().as_micros() as u64);
        self.resumed.fetch_add(1, Ordering::Relaxed);
        Ok(conn)
    }
}
