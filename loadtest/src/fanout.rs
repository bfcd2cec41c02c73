//! `fanout`: C channels × M member connections, P publishers at a total rate R for D seconds;
//! measures deliveries/s, loss, duplicates, order and end-to-end latency.
//!
//! Every message starts with its send time (µs since a shared origin; senders and receivers are
//! in this process), so each receiver measures send→receipt without clock sync. Accounting is by
//! `(channel, seq)`: the publishers' acks say which seqs exist, each receiver says which it saw,
//! so a loss is a named seq missing at a named receiver rather than a difference of totals.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use chorus_protocol::ClientFrame;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::api::{Api, User};
use crate::net::{Spread, check_open_files, cpu_seconds};
use crate::publisher::{Acks, Publishing, publish};
use crate::ramp::Ramp;
use crate::report::percentiles_ms;
use crate::timeline::{Samples, Timeline, histogram};
use crate::wire::{Peek, sent_micros};
use crate::ws::Conn;
use crate::{progress, ramp};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Channels (C).
    #[arg(long, default_value_t = 10)]
    pub channels: usize,
    /// Member connections per channel (M), each subscribed to its channel only.
    #[arg(long, default_value_t = 100)]
    pub members: usize,
    /// Distinct users per channel the member connections log in as.
    #[arg(long, default_value_t = 10)]
    pub users_per_channel: usize,
    /// Publisher connections (P); channels are dealt to publishers in turn.
    #[arg(long, default_value_t = 10)]
    pub publishers: usize,
    /// Total messages per second over all publishers (R).
    #[arg(long, default_value_t = 1500)]
    pub rate: u64,
    /// Seconds of publishing (D).
    #[arg(long, default_value_t = 10)]
    pub duration_secs: u64,
    /// Message size in bytes (S), send timestamp included.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// After the last ack, how long receivers may take to get everything before it counts as lost.
    #[arg(long, default_value_t = 10)]
    pub drain_secs: u64,
    /// Write the per-second latency and deliveries as a self-contained HTML page.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Server processes (comma-separated pids) whose CPU time is measured from the first publish
    /// to the end of the drain, setup excluded: reported in total and per delivery.
    #[arg(long, value_delimiter = ',')]
    pub server_pids: Vec<u32>,
    #[command(flatten)]
    pub spread: Spread,
}

impl Default for Args {
    fn default() -> Self {
        crate::defaults()
    }
}

/// What one receiver saw of its channel.
struct Seen {
    channel: usize,
    seqs: SeqSet,
    received: u64,
    duplicates: u64,
    order_violations: u64,
    /// Message events of a channel this receiver is not a member of (should never happen).
    foreign: u64,
    /// The server closed the connection or it failed before the run ended.
    closed_early: Option<String>,
}

/// A set of seqs, one bit each: a receiver's record of what it got, checked against the acks.
#[derive(Default)]
pub struct SeqSet {
    words: Vec<u64>,
}

impl SeqSet {
    pub fn has(&self, seq: u64) -> bool {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        self.words.get(word).is_some_and(|w| w & (1 << bit) != 0)
    }

    /// Marks `seq` seen; false when it already was.
    pub fn insert(&mut self, seq: u64) -> bool {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if self.words.len() <= word {
            self.words.resize(word + 1, 0);
        }
        let fresh = self.words[word] & (1 << bit) == 0;
        self.words[word] |= 1 << bit;
        fresh
    }
}

/// The shape of a fan-out: C channels × M members, P publishers.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub channels: usize,
    pub members: usize,
    /// Distinct users per channel the member connections log in as.
    pub users_per_channel: usize,
    pub publishers: usize,
}

/// A fan-out set up and its receivers connected: what `fanout` and `ramp` drive.
pub struct Fleet {
    pub channels: Vec<Uuid>,
    /// Receiver `n` is member `n % M` of channel `n / M`; those that failed to connect are missing.
    pub receivers: Ramp,
    pub members: usize,
    /// Publisher `k` posts in these channels (indices into `channels`), in turn.
    pub posts_in: Vec<Vec<usize>>,
    pub publisher_users: Vec<User>,
    /// Receivers connected, per channel.
    pub connected: Vec<u64>,
}

impl Fleet {
    /// Creates the users and channels (member users join their channel only; publisher users join
    /// the channels they post in) and connects the receivers. `label` prefixes every name.
    pub async fn assemble(
        api: &Api,
        ws: SocketAddr,
        shape: Shape,
        spread: &Spread,
        label: &str,
    ) -> anyhow::Result<Fleet> {
        let (c, m, p) = (
            shape.channels.max(1),
            shape.members.max(1),
            shape.publishers.max(1),
        );
        check_open_files(
            c * m + p,
            &format!(
                "use fewer channels or members, or split the run over more worker processes \
                 (several `loadtest {label}` at once against the node, each with a share of the \
                 channels)"
            ),
        )?;
        let setup = progress::spinner("creating users and channels");
        let owner = api.user(&format!("{label}-owner")).await?;
        let workspace = api.workspace(&owner).await?;
        let mut channels = Vec::with_capacity(c);
        for n in 0..c {
            channels.push(
                api.channel(&owner, workspace, &format!("{label}-{n}"))
                    .await?,
            );
        }
        let upc = shape.users_per_channel.max(1);
        let members = api.users(&format!("{label}-member"), c * upc).await?;
        for (n, channel) in channels.iter().enumerate() {
            api.enroll(
                &owner,
                workspace,
                &members[n * upc..(n + 1) * upc],
                &[*channel],
            )
            .await?;
        }
        // Publisher `i % p` posts in channel `i % c`: every channel has a publisher, every
        // publisher a channel, whichever of P and C is larger.
        let mut posts_in = vec![Vec::new(); p];
        for i in 0..p.max(c) {
            posts_in[i % p].push(i % c);
        }
        let publisher_users = api.users(&format!("{label}-pub"), p).await?;
        for (user, own) in publisher_users.iter().zip(&posts_in) {
            let own: Vec<Uuid> = own.iter().map(|&n| channels[n]).collect();
            api.enroll(&owner, workspace, std::slice::from_ref(user), &own)
                .await?;
        }
        setup.finish_and_clear();

        let bar = progress::bar((c * m) as u64, "connecting");
        let receivers = ramp::open(
            ws,
            spread,
            0,
            c * m,
            |n| members[(n / m) * upc + (n % m) % upc].token.clone(),
            || bar.inc(1),
        )
        .await?;
        bar.finish_and_clear();
        let mut connected = vec![0u64; c];
        for r in &receivers.conns {
            connected[r.index / m] += 1;
        }
        Ok(Fleet {
            channels,
            receivers,
            members: m,
            posts_in,
            publisher_users,
            connected,
        })
    }

    /// Connects the P publishers (all of them, or fails), after the receivers in ramp order.
    pub async fn open_publishers(&self, ws: SocketAddr, spread: &Spread) -> anyhow::Result<Ramp> {
        let first = self.channels.len() * self.members;
        let p = self.publisher_users.len();
        let publishers = ramp::open(
            ws,
            spread,
            first,
            p,
            |n| self.publisher_users[n - first].token.clone(),
            || {},
        )
        .await?;
        anyhow::ensure!(
            publishers.conns.len() == p,
            "{} of {p} publishers could not connect",
            p - publishers.conns.len()
        );
        Ok(publishers)
    }

    /// What publisher `k` sends to (its channels, as `(index, id)`).
    pub fn publishing_to(&self, k: usize) -> Vec<(usize, Uuid)> {
        self.posts_in[k]
            .iter()
            .map(|&n| (n, self.channels[n]))
            .collect()
    }
}

/// CPU seconds the `pids` have used so far, together.
fn server_cpu(pids: &[u32]) -> anyhow::Result<f64> {
    pids.iter().map(|&pid| cpu_seconds(pid)).sum()
}

/// Shared by all receivers.
struct Live {
    origin: Instant,
    received: AtomicU64,
    last_receipt_us: AtomicU64,
    timeline: Arc<Mutex<Timeline>>,
}

pub async fn run(api: &Api, ws: SocketAddr, args: Args) -> anyhow::Result<Value> {
    let shape = Shape {
        channels: args.channels,
        members: args.members,
        users_per_channel: args.users_per_channel,
        publishers: args.publishers,
    };
    let mut fleet = Fleet::assemble(api, ws, shape, &args.spread, "fanout").await?;
    let publishers = fleet.open_publishers(ws, &args.spread).await?;
    let (c, m, p) = (
        fleet.channels.len(),
        fleet.members,
        fleet.publisher_users.len(),
    );
    let connected = fleet.connected.clone();
    let channels = fleet.channels.clone();

    let live = Arc::new(Live {
        origin: Instant::now(),
        received: AtomicU64::new(0),
        last_receipt_us: AtomicU64::new(0),
        timeline: Timeline::shared(),
    });
    let receivers = std::mem::take(&mut fleet.receivers.conns);
    let mut stops = Vec::with_capacity(receivers.len());
    let channel_ids: Vec<String> = channels.iter().map(|id| id.to_string()).collect();
    let mut receiving = Vec::with_capacity(receivers.len());
    for r in receivers {
        let channel = r.index / m;
        let (stop, stopped) = oneshot::channel();
        stops.push(stop);
        receiving.push(tokio::spawn(receive(
            r.conn,
            channel,
            channel_ids[channel].clone(),
            live.clone(),
            stopped,
        )));
    }

    let cpu_before = server_cpu(&args.server_pids)?;
    // Publishing, with a bar that shows the delivery rate of each second.
    let per_publisher = args.rate.max(1) as f64 / p as f64;
    let publishing: Vec<_> = publishers
        .conns
        .into_iter()
        .enumerate()
        .map(|(k, publisher)| {
            let what = Publishing {
                tag: k,
                channels: fleet.publishing_to(k),
                rate: per_publisher,
                size: args.size,
                origin: live.origin,
            };
            let until = tokio::time::sleep(Duration::from_secs(args.duration_secs));
            tokio::spawn(publish(publisher.conn, what, until))
        })
        .collect();
    let meter = tokio::spawn(show_rate(live.clone(), args.duration_secs));
    let mut sent = 0;
    let mut acks = Acks::default();
    let mut ack_latency = histogram();
    for publisher in publishing {
        let (s, a) = publisher.await.context("publisher")??;
        sent += s;
        acks.seqs.extend(a.seqs);
        if let Some(h) = a.latency {
            ack_latency.add(&h)?;
        }
        for (code, n) in a.errors {
            *acks.errors.entry(code).or_default() += n;
        }
    }
    meter.abort();

    // Which seqs exist, hence how many deliveries are owed; wait for them (up to the drain time).
    let mut acked = vec![Vec::new(); c];
    for (channel, seq) in &acks.seqs {
        acked[*channel].push(*seq);
    }
    for seqs in &mut acked {
        seqs.sort_unstable();
        seqs.dedup();
    }
    let expected: u64 = (0..c).map(|n| acked[n].len() as u64 * connected[n]).sum();
    let draining = progress::spinner("waiting for deliveries");
    let deadline = Instant::now() + Duration::from_secs(args.drain_secs);
    while live.received.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    draining.finish_and_clear();
    let cpu_used = server_cpu(&args.server_pids)? - cpu_before;
    for stop in stops {
        let _ = stop.send(());
    }

    let (mut received, mut duplicates, mut order_violations, mut lost) = (0, 0, 0, 0);
    let (mut unacked, mut foreign, mut closed_early) = (0, 0, 0);
    let mut lossy_receivers = 0;
    for receiver in receiving {
        let seen = receiver.await.context("receiver")?;
        received += seen.received;
        duplicates += seen.duplicates;
        order_violations += seen.order_violations;
        foreign += seen.foreign;
        let own = &acked[seen.channel];
        let missing = own.iter().filter(|seq| !seen.seqs.has(**seq)).count() as u64;
        lost += missing;
        lossy_receivers += u64::from(missing > 0);
        unacked += seen.received - (own.len() as u64 - missing);
        if let Some(why) = seen.closed_early {
            closed_early += 1;
            if closed_early <= 5 {
                eprintln!("receiver closed early: {why}");
            }
        }
    }
    let delivery_secs = live.last_receipt_us.load(Ordering::Relaxed) as f64 / 1e6;
    let timeline = live.timeline.lock().expect("timeline lock");
    Ok(json!({
        "scenario": "fanout",
        "channels": c,
        "members_per_channel": m,
        "publishers": p,
        "target_rate_msg_s": args.rate,
        "duration_s": args.duration_secs,
        "message_bytes": args.size,
        "receivers_connected": connected.iter().sum::<u64>(),
        "connection_failures": fleet.receivers.failures + publishers.failures,
        "ramp_seconds": fleet.receivers.seconds + publishers.seconds,
        "sent": sent,
        "acked": acks.seqs.len(),
        "send_errors": acks.errors,
        "expected_deliveries": expected,
        "received_deliveries": received,
        "lost": lost,
        "receivers_with_loss": lossy_receivers,
        "duplicates": duplicates,
        "order_violations": order_violations,
        "unacked_deliveries": unacked,
        "foreign_deliveries": foreign,
        "receivers_closed_early": closed_early,
        "delivery_seconds": delivery_secs,
        "deliveries_per_s": received as f64 / delivery_secs.max(1e-9),
        "offered_deliveries_per_s": expected as f64 / (args.duration_secs.max(1)) as f64,
        "send_to_receipt_ms": percentiles_ms(&timeline.overall),
        "send_to_ack_ms": percentiles_ms(&ack_latency),
        "server_cpu_seconds": (!args.server_pids.is_empty()).then_some(cpu_used),
        "server_cpu_us_per_delivery": (!args.server_pids.is_empty() && received > 0)
            .then(|| cpu_used * 1e6 / received as f64),
        "timeseries_counts": "deliveries",
        "timeseries": timeline.series(),
    }))
}

/// One member connection: reads until told to stop, checking each event of its channel.
///
/// This loop runs for every delivery (150,000 a second at the defaults), on the machine the
/// server runs on: the frame is peeked at rather than decoded, samples are batched, and the stop
/// signal is a oneshot of its own (a shared `watch` would make a thousand receivers take one lock
/// each time they wait for their next frame).
async fn receive(
    mut conn: Conn,
    channel: usize,
    channel_id: String,
    live: Arc<Live>,
    mut stop: oneshot::Receiver<()>,
) -> Seen {
    let mut seen = Seen {
        channel,
        seqs: SeqSet::default(),
        received: 0,
        duplicates: 0,
        order_violations: 0,
        foreign: 0,
        closed_early: None,
    };
    let mut samples = Samples::new(&live.timeline);
    let mut previous = 0;
    let mut last_receipt = 0;
    let mut heartbeat = tokio::time::interval(Duration::from_secs(20));
    heartbeat.tick().await;
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            message = conn.ws.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(frame))) => {
                        seen.closed_early = Some(format!("closed by server: {frame:?}"));
                        break;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(err)) => {
                        seen.closed_early = Some(err.to_string());
                        break;
                    }
                    None => {
                        seen.closed_early = Some("connection ended".into());
                        break;
                    }
                };
                let Some(peek) = Peek::parse(&text) else { continue };
                let Some((event_channel, seq, body)) = peek.message() else { continue };
                if event_channel != channel_id {
                    seen.foreign += 1;
                    continue;
                }
                let now = live.origin.elapsed().as_micros() as u64;
                if seq <= previous {
                    seen.order_violations += 1;
                }
                previous = seq;
                if !seen.seqs.insert(seq) {
                    seen.duplicates += 1;
                    continue;
                }
                seen.received += 1;
                last_receipt = now;
                live.received.fetch_add(1, Ordering::Relaxed);
                if let Some(sent) = sent_micros(body) {
                    samples.record(now, now.saturating_sub(sent));
                }
            }
            _ = heartbeat.tick() => {
                if let Err(err) = conn.send(&ClientFrame::Heartbeat).await {
                    seen.closed_early = Some(format!("{err:#}"));
                    break;
                }
            }
        }
    }
    live.last_receipt_us
        .fetch_max(last_receipt, Ordering::Relaxed);
    seen
}

/// Ticks a seconds bar through the publishing phase, showing each second's deliveries.
async fn show_rate(live: Arc<Live>, secs: u64) {
    let bar = progress::seconds(secs, "publishing");
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut before = 0;
    for _ in 0..secs {
        tick.tick().await;
        let now = live.received.load(Ordering::Relaxed);
        bar.set_message(format!("{} deliveries/s", now - before));
        bar.inc(1);
        before = now;
    }
    bar.finish_and_clear();
}
