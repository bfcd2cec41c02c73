//! Opening many authenticated connections: a bounded number at once, spread over source
//! addresses, with a progress bar and the handshake time of each.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use chorus_protocol::{ChannelPosition, ServerFrame};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use uuid::Uuid;

use crate::net::Spread;
use crate::ws::Conn;

/// A connection that has been answered `ready`.
pub struct Identified {
    /// Its position in the ramp (the `n` its token and source address were chosen by).
    pub index: usize,
    pub conn: Conn,
    pub session_id: Uuid,
    /// The user the token named.
    pub user_id: Uuid,
    /// The channels it is subscribed to and their newest `seq` at `ready`.
    pub channels: Vec<ChannelPosition>,
}

/// What a ramp produced.
pub struct Ramp {
    /// In ramp order; failed connections are missing.
    pub conns: Vec<Identified>,
    pub failures: usize,
    /// Connect + handshake + `hello` + `identify` → `ready`, in µs.
    pub handshakes: Histogram<u64>,
    pub seconds: f64,
}

/// Opens `count` connections, the `n`th (counting from `first`) identifying with
/// `token_of(n)` from `spread.source(n)`. `on_open` is called as each one is ready (progress).
pub async fn open(
    ws: SocketAddr,
    spread: &Spread,
    first: usize,
    count: usize,
    token_of: impl Fn(usize) -> String,
    on_open: impl Fn(),
) -> anyhow::Result<Ramp> {
    let mut conns = Vec::with_capacity(count);
    let stats = open_each(ws, spread, first, count, token_of, |conn| {
        conns.push(conn);
        on_open();
    })
    .await?;
    conns.sort_by_key(|c| c.index);
    Ok(Ramp {
        conns,
        failures: stats.failures,
        handshakes: stats.handshakes,
        seconds: stats.seconds,
    })
}

/// A ramp's figures, without its connections.
pub struct RampStats {
    pub failures: usize,
    /// Connect + handshake + `hello` + `identify` → `ready`, in µs.
    pub handshakes: Histogram<u64>,
    pub seconds: f64,
}

/// [`open`], handing each connection to `take` as soon as it is ready (in the order they become
/// ready), so a long ramp can already use — and heartbeat — the first ones.
pub async fn open_each(
    ws: SocketAddr,
    spread: &Spread,
    first: usize,
    count: usize,
    token_of: impl Fn(usize) -> String,
    mut take: impl FnMut(Identified),
) -> anyhow::Result<RampStats> {
    let started = Instant::now();
    let spread = Arc::new(spread.clone());
    let attempts = futures_util::stream::iter(first..first + count)
        .map(|n| {
            let (token, spread) = (token_of(n), spread.clone());
            async move {
                let begun = Instant::now();
                let result = identify(spread.gateway(n, ws), spread.source(n), n, &token).await;
                (result, begun.elapsed().as_micros() as u64)
            }
        })
        .buffer_unordered(spread.concurrency.max(1));
    tokio::pin!(attempts);
    let mut failures = 0;
    let mut handshakes = Histogram::<u64>::new(3)?;
    while let Some((result, micros)) = attempts.next().await {
        match result {
            Ok(conn) => {
                handshakes.record(micros)?;
                take(conn);
            }
            Err(err) => {
                failures += 1;
                if failures <= 5 {
                    eprintln!("connection failed: {err:#}");
                }
            }
        }
    }
    Ok(RampStats {
        failures,
        handshakes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

async fn identify(
    ws: SocketAddr,
    source: Option<std::net::IpAddr>,
    index: usize,
    token: &str,
) -> anyhow::Result<Identified> {
    let mut conn = Conn::connect(ws, source).await?;
    match conn.identify(token).await? {
        ServerFrame::Ready {
            session_id,
            user,
            channels,
            ..
        } => Ok(Identified {
            index,
            conn,
            session_id,
            user_id: user.id,
            channels,
        }),
        other => bail!("expected ready, got {other:?}"),
    }
}
