//! Closes connections whose client went silent (4001), with one sweep for the whole gateway.
//!
//! Each connection stamps its outbox when a frame arrives (`Outbox::touch`); this task looks at
//! every stamp a few times per timeout. A per-connection timer would cost every idle connection a
//! timer entry and every busy one a re-arm per wake-up; the sweep costs one pass over the
//! connection table, and a zombie is closed at most a quarter of the timeout late.

use std::sync::Arc;
use std::time::Duration;

use chorus_protocol::CloseCode;

use crate::Shared;

/// How often the sweep runs for a given timeout: four times per timeout, at most once a second.
pub(crate) fn sweep_period(timeout: Duration) -> Duration {
    (timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// Runs the sweep forever (the gateway aborts it on shutdown).
pub(crate) async fn run(shared: Arc<Shared>) {
    let timeout_ms = shared.config.heartbeat_timeout.as_millis() as u64;
    let mut tick = tokio::time::interval(sweep_period(shared.config.heartbeat_timeout));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = shared.now_ms();
        let connections = shared.connections.read();
        for (_, outbox) in connections.values() {
            if now.saturating_sub(outbox.last_inbound_ms()) > timeout_ms {
                outbox.close(CloseCode::HeartbeatTimeout);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_runs_four_times_per_timeout_within_bounds() {
        assert_eq!(
            sweep_period(Duration::from_secs(60)),
            Duration::from_secs(1)
        );
        assert_eq!(
            sweep_period(Duration::from_millis(300)),
            Duration::from_millis(75)
        );
        assert_eq!(
            sweep_period(Duration::from_millis(1)),
            Duration::from_millis(10)
        );
    }
}
