//! Ends the presence of users whose gateway died: their connections' leases run out, nobody says
//! goodbye, so a sweep takes them offline and announces it.
//!
//! Every gateway sweeps; the store hands each lapsed user to exactly one sweeper, so followers
//! hear one `offline`, at most `CONNECTION_LEASE` + [`SWEEP_INTERVAL`] after the last renewal.

use std::sync::Arc;
use std::time::Duration;

use chorus_presence::{PresenceStore, Transition};

use crate::presence_watch::announce_change;

/// How often lapsed leases are looked for.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Sweeps until aborted.
pub async fn run(store: Arc<dyn PresenceStore>) {
    let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match store.expire(chrono::Utc::now()).await {
            Ok(gone) => {
                for user in gone {
                    announce_change(store.as_ref(), user, Transition::WentOffline).await;
                }
            }
            Err(err) => tracing::warn!(error = %err, "presence sweep failed"),
        }
    }
}
