//! `presence`: U users online at once, one connection each, every one following the presence of
//! the next K users (the members in view, as a client's sidebar does), while users turn idle and
//! active again at a total rate of R changes a second, one step per rate. Measures the `presence`
//! events delivered per second, the ones missing or repeated, the latency from a user's
//! `activity` frame to each follower's `presence` frame, and the server's memory and CPU.
//!
//! User `i` is followed by the K users before it (mod U), so every change must reach exactly K
//! followers. The n-th change of a user makes it idle when n is odd and online when it is even:
//! a follower can tell from the frame's `status` which change it is hearing of. Senders and
//! followers are tasks of this process, so latencies need no clock sync.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use chorus_protocol::limits::MAX_PRESENCE_SUBSCRIPTIONS;
use chorus_protocol::{Activity, ClientFrame};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::api::Api;
use crate::net::{Spread, check_open_files, cpu_seconds, rss_bytes};
use crate::report::percentiles_ms;
use crate::timeline::histogram;
use crate::wire::Peek;
use crate::ws::Conn;
use crate::{progress, ramp};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Users online (U), one connection each.
    #[arg(long, default_value_t = 10_000)]
    pub users: usize,
    /// Users each connection follows (K, at most 100): the next K users, so every user has K
    /// followers and every change is K events.
    #[arg(long, default_value_t = 50)]
    pub follow: usize,
    /// State changes (idle ↔ active) per second over all users: one step per rate,
    /// comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "500,1000,2000,4000,8000")]
    pub rates: Vec<u64>,
    /// Seconds each step sends changes.
    #[arg(long, default_value_t = 10)]
    pub step_secs: u64,
    /// After each step, how long followers may take to hear of its changes before the events
    /// still missing count as lost.
    #[arg(long, default_value_t = 3)]
    pub drain_secs: u64,
    /// A step passes when nothing is missing or repeated and its latency p99 is at most this.
    #[arg(long, default_value_t = 100.0)]
    pub max_p99_ms: f64,
    /// The server process whose memory (per connection, after every subscription) and CPU (per
    /// step) are measured.
    #[arg(long)]
    pub server_pid: Option<u32>,
    #[command(flatten)]
    pub spread: Spread,
}

impl Default for Args {
    fn default() -> Self {
        crate::defaults()
    }
}

/// Latency shards per step: each follower records into one, so tasks rarely wait on each other.
const SHARDS: usize = 16;

/// What the followers heard of one step's changes.
struct StepTally {
    latency: Vec<Mutex<Histogram<u64>>>,
    received: AtomicU64,
    duplicates: AtomicU64,
}

impl StepTally {
    fn new() -> Self {
        StepTally {
            latency: (0..SHARDS).map(|_| Mutex::new(histogram())).collect(),
            received: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
        }
    }

    fn latency(&self) -> Histogram<u64> {
        let mut all = histogram();
        for shard in &self.latency {
            all.add(&*shard.lock().expect("latency shard")).ok();
        }
        all
    }
}

/// The changes sent so far, per user, and what was heard of them.
struct Board {
    origin: Instant,
    index_of: HashMap<String, usize>,
    /// How many changes each user has made (its newest change's number).
    changes: Vec<AtomicU32>,
    /// When each user's newest change was sent (µs since `origin`).
    sent_us: Vec<AtomicU64>,
    /// The step each user's newest change belongs to.
    step_of: Vec<AtomicUsize>,
    steps: Vec<StepTally>,
    /// `presence` frames that match no change sent (or an older one than the newest).
    unexpected: AtomicU64,
    subscribed: AtomicUsize,
}

/// The state of a user's `n`-th change: odd changes turn it idle, even ones active again.
pub fn state_of_change(n: u32) -> Activity {
    if n % 2 == 1 {
        Activity::Idle
    } else {
        Activity::Active
    }
}

/// The `status` a follower must see after a user's `n`-th change.
pub fn status_after(n: u32) -> &'static str {
    match state_of_change(n) {
        Activity::Idle => "idle",
        Activity::Active => "online",
    }
}

/// The users follower `j` of `u` follows: the next `k` after it, wrapping around.
pub fn followed_by(j: usize, k: usize, u: usize) -> impl Iterator<Item = usize> {
    (1..=k).map(move |d| (j + d) % u)
}

/// The user making the `i`-th change of a step: every user once per `u` changes, in an order
/// that jumps about 0.62 × `u` between consecutive changes (a stride coprime with `u`), so the
/// changes sent together reach different followers. Users in turn would hand each follower a
/// burst of changes from the K users it follows at once, which the server writes in one go: a
/// cheaper load than people going idle at random.
pub fn user_of_change(i: u64, u: usize) -> usize {
    let u = u as u64;
    ((i % u) * spread_stride(u) % u) as usize
}

/// The first number from ⌊0.618 × u⌋ up that shares no factor with `u`.
fn spread_stride(u: u64) -> u64 {
    let gcd = |mut a: u64, mut b: u64| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    (u * 618 / 1000..)
        .find(|&s| s > 0 && gcd(s, u) == 1)
        .unwrap_or(1)
}

/// A passing step: nothing missing or repeated, latency within bound.
pub fn step_passes(missing: u64, duplicates: u64, p99_ms: f64, max_p99_ms: f64) -> bool {
    missing == 0 && duplicates == 0 && p99_ms <= max_p99_ms
}

pub async fn run(api: &Api, ws: SocketAddr, args: Args) -> anyhow::Result<Value> {
    let (u, k) = (args.users, args.follow);
    ensure!(
        (1..u).contains(&k) && k <= MAX_PRESENCE_SUBSCRIPTIONS,
        "--follow must be at least 1, below --users and at most {MAX_PRESENCE_SUBSCRIPTIONS}"
    );
    ensure!(!args.rates.is_empty(), "--rates names no step");
    check_open_files(
        u,
        "use fewer users, or raise the open-files limit (ulimit -n)",
    )?;

    let setup = progress::spinner(&format!("registering {u} users"));
    let owner = api.user("presence-owner").await?;
    let workspace = api.workspace(&owner).await?;
    let users = api.users("presence", u).await?;
    api.enroll(&owner, workspace, &users, &[]).await?;
    setup.finish_and_clear();

    let rss_before = args.server_pid.map(rss_bytes).transpose()?;
    let bar = progress::bar(u as u64, "connecting");
    let ramp = ramp::open(
        ws,
        &args.spread,
        0,
        u,
        |n| users[n].token.clone(),
        || bar.inc(1),
    )
    .await?;
    bar.finish_and_clear();
    if ramp.failures > 0 {
        bail!(
            "{} of {u} connections failed: every user must be online for the counts to hold",
            ramp.failures
        );
    }
    let ids: Vec<Uuid> = ramp.conns.iter().map(|c| c.user_id).collect();
    let board = Arc::new(Board {
        origin: Instant::now(),
        index_of: ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.to_string(), i))
            .collect(),
        changes: (0..u).map(|_| AtomicU32::new(0)).collect(),
        sent_us: (0..u).map(|_| AtomicU64::new(0)).collect(),
        step_of: (0..u).map(|_| AtomicUsize::new(0)).collect(),
        steps: args.rates.iter().map(|_| StepTally::new()).collect(),
        unexpected: AtomicU64::new(0),
        subscribed: AtomicUsize::new(0),
    });

    let mut commands = Vec::with_capacity(u);
    let mut stops = Vec::with_capacity(u);
    let mut followers = Vec::with_capacity(u);
    for identified in ramp.conns {
        let j = identified.index;
        let followed: Vec<Uuid> = followed_by(j, k, u).map(|i| ids[i]).collect();
        let (command_tx, command_rx) = mpsc::channel(4);
        let (stop_tx, stop_rx) = oneshot::channel();
        commands.push(command_tx);
        stops.push(stop_tx);
        followers.push(tokio::spawn(follower(
            identified.conn,
            j,
            followed,
            board.clone(),
            command_rx,
            stop_rx,
        )));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while board.subscribed.load(Ordering::Relaxed) < u {
        ensure!(
            Instant::now() < deadline,
            "only {} of {u} connections were answered presence_subscribed within 60 s",
            board.subscribed.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Idle memory with every subscription in place, measured before any change is sent.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_subscribed = args.server_pid.map(rss_bytes).transpose()?;
    let unexpected_before = board.unexpected.load(Ordering::Relaxed);

    let mut steps = Vec::with_capacity(args.rates.len());
    for (step, &rate) in args.rates.iter().enumerate() {
        let cpu_before = args.server_pid.map(cpu_seconds).transpose()?;
        let sent = send_changes(&board, &commands, step, rate, args.step_secs).await;
        let cpu_after = args.server_pid.map(cpu_seconds).transpose()?;
        tokio::time::sleep(Duration::from_secs(args.drain_secs)).await;
        let tally = &board.steps[step];
        let received = tally.received.load(Ordering::Relaxed);
        let duplicates = tally.duplicates.load(Ordering::Relaxed);
        let expected = sent * k as u64;
        let missing = expected.saturating_sub(received);
        let latency = tally.latency();
        let p99_ms = latency.value_at_quantile(0.99) as f64 / 1000.0;
        let cores = cpu_before
            .zip(cpu_after)
            .map(|(before, after)| (after - before) / args.step_secs.max(1) as f64);
        steps.push(json!({
            "changes_per_sec": rate,
            "changes_sent": sent,
            "events_expected": expected,
            "events_received": received,
            "events_per_sec": received as f64 / args.step_secs.max(1) as f64,
            "missing": missing,
            "duplicated": duplicates,
            "latency_ms": percentiles_ms(&latency),
            "server_cpu_cores": cores,
            "passed": step_passes(missing, duplicates, p99_ms, args.max_p99_ms),
        }));
    }

    // Read before the connections close: each closing one makes its followers hear `offline`.
    let unexpected = board.unexpected.load(Ordering::Relaxed);
    for stop in stops {
        let _ = stop.send(());
    }
    let mut closed_early = 0;
    for follower in followers {
        if let Some(reason) = follower.await? {
            closed_early += 1;
            if closed_early <= 5 {
                eprintln!("connection closed early: {reason}");
            }
        }
    }
    let sustained = steps
        .iter()
        .filter(|s| s["passed"] == true)
        .filter_map(|s| s["events_per_sec"].as_f64())
        .fold(None, |best: Option<f64>, v| {
            Some(best.map_or(v, |b| b.max(v)))
        });
    let per_connection = rss_before
        .zip(rss_subscribed)
        .map(|(before, after)| after.saturating_sub(before) / u as u64);
    Ok(json!({
        "scenario": "presence",
        "users": u,
        "follow": k,
        "step_secs": args.step_secs,
        "connect_secs": ramp.seconds,
        "server_rss_per_connection_bytes": per_connection,
        "server_rss_subscribed_bytes": rss_subscribed,
        "unexpected_before_changes": unexpected_before,
        "unexpected": unexpected,
        "closed_early": closed_early,
        "sustained_events_per_sec": sustained,
        "steps": steps,
    }))
}

/// Sends `rate` changes a second for `secs` seconds, spread over the users by
/// [`user_of_change`]; returns how many.
async fn send_changes(
    board: &Board,
    commands: &[mpsc::Sender<Activity>],
    step: usize,
    rate: u64,
    secs: u64,
) -> u64 {
    let bar = progress::seconds(secs, &format!("{rate} changes/s"));
    let started = Instant::now();
    let total = rate * secs;
    let mut sent = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    while sent < total {
        tick.tick().await;
        let due = ((started.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
        while sent < due {
            let i = user_of_change(sent, commands.len());
            // The change is written down before it is sent: a follower may hear of it at once.
            let n = board.changes[i].load(Ordering::Relaxed) + 1;
            board.step_of[i].store(step, Ordering::Relaxed);
            let now = board.origin.elapsed().as_micros() as u64;
            board.sent_us[i].store(now, Ordering::Relaxed);
            board.changes[i].store(n, Ordering::Release);
            if commands[i].send(state_of_change(n)).await.is_err() {
                // The connection has ended; its followers will miss this change (counted).
            }
            sent += 1;
        }
        bar.set_position(started.elapsed().as_secs().min(secs));
    }
    bar.finish_and_clear();
    sent
}

/// One user's connection: subscribes to the presence of `followed`, sends the `activity` frames
/// it is told to, and tallies every `presence` frame. Returns why it ended early, if it did.
async fn follower(
    mut conn: Conn,
    index: usize,
    followed: Vec<Uuid>,
    board: Arc<Board>,
    mut commands: mpsc::Receiver<Activity>,
    mut stop: oneshot::Receiver<()>,
) -> Option<String> {
    let subscribe = ClientFrame::PresenceSubscribe {
        user_ids: followed.clone(),
    };
    if let Err(err) = conn.send(&subscribe).await {
        return Some(format!("{err:#}"));
    }
    let positions: HashMap<usize, usize> = followed
        .iter()
        .enumerate()
        .filter_map(|(p, id)| Some((*board.index_of.get(&id.to_string())?, p)))
        .collect();
    // The newest change of each followed user this connection has heard of.
    let mut heard = vec![0u32; followed.len()];
    let shard = index % SHARDS;
    let mut heartbeat = tokio::time::interval(Duration::from_secs(20));
    heartbeat.tick().await;
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => return None,
            Some(state) = commands.recv() => {
                if let Err(err) = conn.send(&ClientFrame::Activity { state }).await {
                    return Some(format!("{err:#}"));
                }
            }
            message = conn.ws.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(frame))) => return Some(format!("closed: {frame:?}")),
                    Some(Ok(_)) => continue,
                    Some(Err(err)) => return Some(err.to_string()),
                    None => return Some("connection ended".into()),
                };
                let Some(peek) = Peek::parse(&text) else { continue };
                if peek.kind == "presence_subscribed" {
                    board.subscribed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let Some((user_id, status)) = peek.presence() else { continue };
                let Some(&user) = board.index_of.get(user_id) else {
                    board.unexpected.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let n = board.changes[user].load(Ordering::Acquire);
                let Some(&position) = positions.get(&user) else {
                    board.unexpected.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                if n == 0 || status != status_after(n) {
                    board.unexpected.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let tally = &board.steps[board.step_of[user].load(Ordering::Relaxed)];
                if heard[position] == n {
                    tally.duplicates.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                heard[position] = n;
                let now = board.origin.elapsed().as_micros() as u64;
                let sent = board.sent_us[user].load(Ordering::Relaxed);
                tally.received.fetch_add(1, Ordering::Relaxed);
                tally.latency[shard]
                    .lock()
                    .expect("latency shard")
                    .record(now.saturating_sub(sent))
                    .ok();
            }
            _ = heartbeat.tick() => {
                if let Err(err) = conn.send(&ClientFrame::Heartbeat).await {
                    return Some(format!("{err:#}"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_alternate_idle_and_active_and_followers_see_the_matching_status() {
        assert_eq!(state_of_change(1), Activity::Idle);
        assert_eq!(state_of_change(2), Activity::Active);
        assert_eq!(status_after(1), "idle");
        assert_eq!(status_after(2), "online");
        assert_eq!(status_after(7), "idle");
    }

    #[test]
    fn every_user_has_exactly_k_followers() {
        let (u, k) = (10, 3);
        let mut followers = vec![0; u];
        for j in 0..u {
            let followed: Vec<usize> = followed_by(j, k, u).collect();
            assert!(!followed.contains(&j), "nobody follows themselves");
            followed.into_iter().for_each(|i| followers[i] += 1);
        }
        assert!(followers.iter().all(|&f| f == k), "{followers:?}");
    }

    #[test]
    fn every_user_changes_once_per_round_and_neighbours_are_far_apart() {
        for u in [1, 2, 12, 1000, 10_000] {
            let mut users: Vec<usize> = (0..u as u64).map(|i| user_of_change(i, u)).collect();
            users.sort_unstable();
            assert_eq!(users, (0..u).collect::<Vec<_>>(), "a permutation of {u}");
        }
        let (a, b) = (user_of_change(0, 10_000), user_of_change(1, 10_000));
        assert!(a.abs_diff(b) > 3_000, "{a} then {b}");
    }

    #[test]
    fn a_step_passes_only_complete_and_within_its_latency_bound() {
        assert!(step_passes(0, 0, 40.0, 100.0));
        assert!(!step_passes(1, 0, 40.0, 100.0));
        assert!(!step_passes(0, 2, 40.0, 100.0));
        assert!(!step_passes(0, 0, 140.0, 100.0));
    }
}
