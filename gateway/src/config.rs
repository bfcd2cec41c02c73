//! Gateway settings.

use std::time::Duration;

use chorus_core::client_addr::TrustedProxies;

use crate::sessions::SessionLimits;

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
    /// Sessions kept for resumption; when full, expired ones are dropped, then new ones refused
    /// (4003). With a shared session store this bounds the whole deployment's sessions.
    pub max_sessions: usize,
    /// Allowed `Origin` headers for browser clients; empty allows any. Requests without an
    /// `Origin` header (bots, native clients) are always allowed.
    pub allowed_origins: Vec<String>,
    /// tungstenite's eagerly allocated per-connection read buffer: the size of each socket read.
    /// This buffer is a large share of an idle connection's memory (see docs/BENCHMARKS.md), and
    /// it never shrinks: a frame grows it to about this size plus the frame's payload
    /// (tungstenite reserves the whole payload on top of what one read brought), so a small
    /// buffer holds less after `identify` (~330 bytes: 456 with the default, 1,024 with 512).
    /// The price is a read per 128 bytes of a larger frame, paid on the client-to-server side,
    /// which in chat carries little.
    pub read_buffer_bytes: usize,
    /// Bytes tungstenite gathers before writing to the socket (frames are flushed per batch).
    pub write_buffer_bytes: usize,
    /// A write to a client that takes longer than this closes it as slow (4002).
    pub write_timeout: Duration,
    /// A connection that wrote less than this long ago waits out the rest before writing again,
    /// so what arrives meanwhile leaves in the same write. A frame for a quiet connection goes
    /// out at once; a busy one (a member of lively channels, a bot) gets fewer, fuller writes —
    /// the system call per write is most of the cost of fan-out. Zero writes every wake-up.
    pub flush_interval: Duration,
    /// How often the gateway asks the metadata store which login sessions were revoked and which
    /// users disabled since its last look, and re-checks those users' connections (4100 for a
    /// revoked session). Access notices do this within moments; the sweep bounds how long a socket
    /// outlives its session when a notice was lost unnoticed. One query per sweep, however many
    /// connections. Zero turns the sweep off.
    pub access_sweep_interval: Duration,
    /// Proxies whose `X-Forwarded-For` is believed: the connection's log line names the client
    /// they forwarded instead of the proxy. Empty believes nobody.
    pub trusted_proxies: TrustedProxies,
    /// Open sockets this gateway holds at most (each costs memory and a file descriptor); beyond
    /// it a new socket is answered `503 Service Unavailable` with `Retry-After` and closed, so
    /// the client (or its load balancer) tries another gateway.
    pub max_connections: usize,
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
            read_buffer_bytes: 128,
            write_buffer_bytes: 4 * 1024,
            write_timeout: Duration::from_secs(10),
            flush_interval: Duration::from_millis(5),
            access_sweep_interval: Duration::from_secs(15),
            trusted_proxies: TrustedProxies::default(),
            max_connections: 500_000,
        }
    }
}

impl GatewayConfig {
    /// The limits to open the session store with.
    ///
    /// A held session in a shared store lives a hold lease past its holder's last renewal. A live
    /// connection renews on its first frame after `LEASE_RENEWAL`, and one silent for the heartbeat
    /// timeout is closed (at most a quarter late) and releases its session, so renewals are never
    /// further apart than `LEASE_RENEWAL` + 1.25 × `heartbeat_timeout`: a live holder's lease never
    /// lapses, and after its gateway dies the session stays resumable for at least the TTL.
    pub fn session_limits(&self) -> SessionLimits {
        SessionLimits {
            ttl: self.session_ttl,
            max: self.max_sessions,
            hold_lease: self.session_ttl
                + 2 * self.heartbeat_timeout
                + crate::connection::LEASE_RENEWAL,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::LEASE_RENEWAL;

    #[test]
    fn a_held_session_outlives_the_longest_gap_between_renewals_by_the_ttl() {
        let config = GatewayConfig::default();
        let limits = config.session_limits();
        // The heartbeat sweep closes a silent connection at most a quarter of the timeout late.
        let longest_gap = LEASE_RENEWAL + config.heartbeat_timeout * 5 / 4;
        assert!(limits.hold_lease >= longest_gap + config.session_ttl);
        assert_eq!(
            (limits.ttl, limits.max),
            (config.session_ttl, config.max_sessions)
        );
    }
}
