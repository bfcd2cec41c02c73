//! The gateway's metrics (docs/OPERATIONS.md lists them all).
//!
//! Every handle is resolved once, on first use, into [`GATEWAY`]: recording is then one atomic
//! add, with no name lookup, label formatting or allocation — the fan-out path delivers hundreds
//! of thousands of events a second. Labels are small closed sets (frame type, close code); never
//! a user or channel id. The process installs the Prometheus recorder before it starts any role
//! (`src/ops/metrics.rs`); handles resolved before that would record nothing.

use std::sync::LazyLock;
use std::time::Duration;

use chorus_protocol::{CLIENT_FRAME_TYPES, ClientFrame, CloseCode};
use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};

/// Labels of client frames: the wire's `type` tags (`chorus_protocol::CLIENT_FRAME_TYPES`, in
/// the order of [`frame_index`]), then `invalid` for frames that did not parse.
const FRAME_TYPES: [&str; CLIENT_FRAME_TYPES.len() + 1] = {
    let mut labels = ["invalid"; CLIENT_FRAME_TYPES.len() + 1];
    let mut i = 0;
    while i < CLIENT_FRAME_TYPES.len() {
        labels[i] = CLIENT_FRAME_TYPES[i];
        i += 1;
    }
    labels
};

/// What leaves a connection: fan-out events, catch-up replays, typing indicators, and replies
/// to the client's own frames (acks, errors, subscribed, heartbeat_ack…).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Out {
    Event = 0,
    Replay = 1,
    Typing = 2,
    Reply = 3,
}

const OUT_KINDS: [&str; 4] = ["event", "replay", "typing", "reply"];

/// Why a connection ended: the close codes of `chorus_protocol::CloseCode`, a standard close
/// (frame too big, protocol error) and a peer that went away without a close.
fn close_label(code: Option<CloseCode>) -> &'static str {
    match code {
        Some(CloseCode::InternalError) => "4000",
        Some(CloseCode::HeartbeatTimeout) => "4001",
        Some(CloseCode::SlowConsumer) => "4002",
        Some(CloseCode::ServerRestart) => "4003",
        Some(CloseCode::RateLimited) => "4004",
        Some(CloseCode::SessionInvalid) => "4005",
        Some(CloseCode::AuthenticationFailed) => "4100",
        Some(CloseCode::NotAuthenticated) => "4101",
        Some(CloseCode::AlreadyAuthenticated) => "4102",
        Some(CloseCode::ProtocolViolation) => "4103",
        None => "other",
    }
}

/// The handles, resolved once.
pub(crate) struct GatewayMetrics {
    pub connections_open: Gauge,
    pub connections_accepted: Counter,
    pub connections_refused: Counter,
    pub handshake_seconds: Histogram,
    pub handshakes_failed: Counter,
    frames_in: [Counter; FRAME_TYPES.len()],
    frames_out: [Counter; OUT_KINDS.len()],
    pub deliveries: Counter,
    pub outbox_drain_items: Histogram,
    closes: [Counter; CloseCode::ALL.len() + 1],
    pub acks: Counter,
    pub ack_errors: Counter,
    pub ack_seconds: Histogram,
    pub frames_rate_limited: Counter,
    pub typing_broadcasts: Counter,
    pub bus_resyncs: Counter,
}

pub(crate) static GATEWAY: LazyLock<GatewayMetrics> = LazyLock::new(|| GatewayMetrics {
    connections_open: gauge!("chorus_gateway_connections_open"),
    connections_accepted: counter!("chorus_gateway_connections_accepted_total"),
    connections_refused: counter!("chorus_gateway_connections_refused_total"),
    handshake_seconds: histogram!("chorus_gateway_handshake_seconds"),
    handshakes_failed: counter!("chorus_gateway_handshakes_failed_total"),
    frames_in: FRAME_TYPES.map(|t| counter!("chorus_gateway_frames_received_total", "type" => t)),
    frames_out: OUT_KINDS.map(|k| counter!("chorus_gateway_frames_sent_total", "kind" => k)),
    deliveries: counter!("chorus_gateway_deliveries_total"),
    outbox_drain_items: histogram!("chorus_gateway_outbox_drain_items"),
    closes: std::array::from_fn(|i| {
        let code = CloseCode::ALL.get(i).copied();
        counter!("chorus_gateway_closes_total", "code" => close_label(code))
    }),
    acks: counter!("chorus_gateway_acks_total", "result" => "ok"),
    ack_errors: counter!("chorus_gateway_acks_total", "result" => "error"),
    ack_seconds: histogram!("chorus_gateway_ack_seconds"),
    frames_rate_limited: counter!("chorus_gateway_frames_rate_limited_total"),
    typing_broadcasts: counter!("chorus_presence_typing_broadcasts_total"),
    bus_resyncs: counter!("chorus_gateway_bus_resyncs_total"),
});

impl GatewayMetrics {
    /// One client frame received, by its type (`None`: it did not parse).
    pub fn frame_in(&self, frame: Option<&ClientFrame>) {
        self.frames_in[frame_index(frame)].increment(1);
    }

    /// `n` frames of one kind written to a client.
    pub fn frames_out(&self, kind: Out, n: u64) {
        if n > 0 {
            self.frames_out[kind as usize].increment(n);
        }
    }

    /// A connection closed with `code` (`None`: a standard close or a peer that went away).
    pub fn closed(&self, code: Option<CloseCode>) {
        let at = code
            .and_then(|c| CloseCode::ALL.iter().position(|&k| k == c))
            .unwrap_or(CloseCode::ALL.len());
        self.closes[at].increment(1);
    }

    /// An acknowledgement (or its refusal) `waited` after the send.
    pub fn acked(&self, ok: bool, waited: Duration) {
        if ok {
            self.acks.increment(1);
        } else {
            self.ack_errors.increment(1);
        }
        self.ack_seconds.record(waited.as_secs_f64());
    }
}

/// Position of a client frame's type in [`FRAME_TYPES`].
fn frame_index(frame: Option<&ClientFrame>) -> usize {
    match frame {
        Some(ClientFrame::Identify { .. }) => 0,
        Some(ClientFrame::Resume { .. }) => 1,
        Some(ClientFrame::Heartbeat) => 2,
        Some(ClientFrame::Subscribe { .. }) => 3,
        Some(ClientFrame::Unsubscribe { .. }) => 4,
        Some(ClientFrame::Send { .. }) => 5,
        Some(ClientFrame::Typing { .. }) => 6,
        Some(ClientFrame::PresenceSubscribe { .. }) => 7,
        Some(ClientFrame::Activity { .. }) => 8,
        None => CLIENT_FRAME_TYPES.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_labels_are_the_wire_spelling_of_each_type() {
        for (raw, label) in [
            (r#"{"type":"heartbeat"}"#, "heartbeat"),
            (r#"{"type":"identify","token":"t"}"#, "identify"),
            (
                r#"{"type":"unsubscribe","channel_id":"00000000-0000-0000-0000-000000000001"}"#,
                "unsubscribe",
            ),
            (
                r#"{"type":"typing","channel_id":"00000000-0000-0000-0000-000000000001"}"#,
                "typing",
            ),
        ] {
            let frame = ClientFrame::parse(raw).unwrap();
            assert_eq!(FRAME_TYPES[frame_index(Some(&frame))], label);
        }
        assert_eq!(FRAME_TYPES[frame_index(None)], "invalid");
    }

    #[test]
    fn every_close_code_has_its_own_label() {
        let mut labels: Vec<&str> = CloseCode::ALL
            .iter()
            .map(|&c| close_label(Some(c)))
            .collect();
        for (code, label) in CloseCode::ALL.iter().zip(&labels) {
            assert_eq!(label.parse::<u16>().unwrap(), code.code());
        }
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), CloseCode::ALL.len());
    }
}
