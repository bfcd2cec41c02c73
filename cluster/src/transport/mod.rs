//! The cluster's one transport: QUIC (quinn) with mutual TLS, between channel nodes (Raft) and
//! from gateways and API processes to channel nodes (submit, replay, last seqs, map, status).
//!
//! Two processes keep one QUIC connection between them whatever the number of Raft groups; each
//! call is its own bidirectional stream on it, so a slow call (a snapshot) never holds up another
//! (a heartbeat), and no call waits behind another's bytes as it would on one TCP stream. A
//! request names a group and a method (`frame.rs`); the receiving node's [`RpcHandler`] does
//! the rest. Both sides present certificates signed by the cluster's CA: a process without one
//! cannot connect, let alone join a Raft group.

mod certs;
mod endpoint;
mod frame;
mod tls;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

pub use certs::generate_dev_certs;
pub use endpoint::QuicEndpoint;

/// The PEM files of a process's cluster identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The cluster CA's certificate: peers must present a certificate it signed.
    pub ca_cert: PathBuf,
    /// This process's certificate, signed by the cluster CA.
    pub cert: PathBuf,
    /// This process's private key.
    pub key: PathBuf,
}

impl TlsFiles {
    /// `ca.pem`, `NAME.pem` and `NAME.key` in `dir`, as [`generate_dev_certs`] writes them.
    pub fn in_dir(dir: &std::path::Path, name: &str) -> Self {
        TlsFiles {
            ca_cert: dir.join("ca.pem"),
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        }
    }
}

/// Bounds on what a peer may make this process do.
#[derive(Clone, Copy, Debug)]
pub struct TransportLimits {
    /// The largest request or response body.
    pub max_frame_bytes: usize,
    /// Calls in flight per connection, in each direction.
    pub max_concurrent_streams: u32,
    /// A connection that hears nothing for this long is closed (keep-alives go at a third of it),
    /// so a peer that died is noticed even with no call in flight.
    pub idle_timeout: Duration,
    pub connect_timeout: Duration,
}

impl Default for TransportLimits {
    fn default() -> Self {
        TransportLimits {
            max_frame_bytes: 32 * 1024 * 1024,
            max_concurrent_streams: 1024,
            idle_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(2),
        }
    }
}

/// Serves the calls that reach a process.
#[async_trait]
pub trait RpcHandler: Send + Sync + 'static {
    /// One request: `group` routes it (a Raft group id, or a reserved id for node-level calls),
    /// `method` says what it is; the returned bytes are the response. `Err(text)` reaches the
    /// caller as [`TransportError::Remote`].
    async fn handle(&self, group: u64, method: u16, body: Bytes) -> Result<Bytes, String>;
}

/// Why a call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// Certificate files missing or invalid, or a peer's certificate refused.
    #[error("TLS: {0}")]
    Tls(String),
    /// No connection to the peer could be made (nothing listening, or the handshake failed —
    /// e.g. a peer presenting no certificate signed by the cluster CA).
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("timed out")]
    Timeout,
    #[error("frame of {size} bytes is over the limit of {max}")]
    FrameTooLarge { size: usize, max: usize },
    /// The peer's handler refused the call; the text is its reason.
    #[error("peer refused: {0}")]
    Remote(String),
    /// The connection closed during the call.
    #[error("connection closed: {0}")]
    Closed(String),
    #[error("I/O: {0}")]
    Io(String),
}
