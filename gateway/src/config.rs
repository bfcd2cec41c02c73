//! Gateway settings.

use std::time::Duration;

/// Limits and timings of the WebSocket gateway. Every queue a client can fill is bounded here.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Announced in `hello`; a client sends a frame at least this often.
    pub heartbeat_interval: Duration,
    /// A connection with no inbound frame for this long is a zombie and is closed (4001).
    pub heartbeat_timeout: Duration,
    /// Time allowed between the TCP accept and the `identify`/`resume` frame (4101 after it).
    pub auth_timeout: Duration,
    /// Frames waiting to be written to one client; overflowing it closes the client as slow (4002).
    pub outbox_capacity: usize,
    /// Sends of one connection waiting for their acknowledgement.
    pub max_in_flight_sends: usize,
    /// Sustained inbound frames per second per connection, and the burst above it.
    pub frames_per_second: u32,
    pub frame_burst: u32,
    /// Channels one connection may be subscribed to.
    pub max_subscriptions: usize,
    /// How long a closed connection's session can still be resumed.
    pub session_ttl: Duration,
    /// Sessions kept for resumption; beyond it the oldest closed ones are forgotten first.
    pub max_sessions: usize,
    /// Allowed `Origin` headers for browser clients; empty allows any. Requests without an
    /// `Origin` header (bots, native clients) are always allowed.
    pub allowed_origins: Vec<String>,
    /// tungstenite's eagerly allocated per-connection read buffer: the size of each socket read.
    /// Chat frames are small, and this buffer is a large share of an idle connection's memory
    /// (1 KiB instead of 4 KiB took 10,000 idle connections from 9.4 KB to 6.4 KB each).
    pub read_buffer_bytes: usize,
    /// Bytes tungstenite gathers before writing to the socket (frames are flushed per batch).
    pub write_buffer_bytes: usize,
    /// A write to a client that takes longer than this closes it as slow (4002).
    pub write_timeout: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            heartbeat_interval: Duration::from_secs(30),
            heartbeat_timeout: Duration::from_secs(60),
            auth_timeout: Duration::from_secs(10),
            outbox_capacity: 1024,
            max_in_flight_sends: 64,
            frames_per_second: 50,
            frame_burst: 100,
            max_subscriptions: 1_000,
            session_ttl: Duration::from_secs(120),
            max_sessions: 1_000_000,
            allowed_origins: Vec::new(),
            read_buffer_bytes: 1024,
            write_buffer_bytes: 4 * 1024,
            write_timeout: Duration::from_secs(10),
        }
    }
}
