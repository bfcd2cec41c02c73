//! Turns access notices from the API into re-checks on the affected connections, and sweeps the
//! metadata store for revocations that no notice announced.
//!
//! A notice only says whose rights may have changed; each connection re-reads the truth itself
//! (`Connection::recheck`), so a forged or stale notice grants nothing, and a lost one (lag, a
//! Redis reconnect) is answered by re-checking every connection. A notice can also be lost without
//! anyone noticing (a publish that Redis dropped, a subscription that silently stopped): for that,
//! a periodic sweep asks the store for the sessions revoked and the users disabled lately, in one
//! query, and has those users' connections re-verify their session.

use std::collections::HashSet;
use std::sync::Arc;

use chorus_cluster::access::{AccessNotice, AccessReceiver, AccessSignal};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::Shared;
use crate::outbox::{Outgoing, Recheck};

/// How far each sweep reaches back before the moment the previous one asked. Revocation times are
/// stamped by the API's clock before the write commits; a clock a little behind the gateway's, or
/// a slow commit, must not let a revocation fall between two sweeps. Re-checking a connection
/// twice costs one session read.
const SWEEP_OVERLAP: chrono::Duration = chrono::Duration::seconds(10);

/// Handles notices and runs the sweep until the gateway aborts the task.
pub(crate) async fn run(notices: AccessReceiver, shared: Arc<Shared>) {
    tokio::join!(watch(notices, shared.clone()), sweep(shared));
}

async fn watch(mut notices: AccessReceiver, shared: Arc<Shared>) {
    while let Some(signal) = notices.recv().await {
        match signal {
            AccessSignal::Notice(AccessNotice::Sessions { user_id, .. }) => {
                push_to_user(&shared, user_id, Recheck::Session)
            }
            AccessSignal::Notice(AccessNotice::User { user_id }) => {
                push_to_user(&shared, user_id, Recheck::AllChannels)
            }
            AccessSignal::Notice(AccessNotice::Channel {
                channel_id,
                user_id: Some(user_id),
            }) => push_to_user(&shared, user_id, Recheck::Channel(channel_id)),
            AccessSignal::Notice(AccessNotice::Channel {
                channel_id,
                user_id: None,
            }) => shared
                .hub
                .push_to_channel(channel_id, Outgoing::Recheck(Recheck::Channel(channel_id))),
            AccessSignal::RecheckAll => {
                tracing::warn!("access notices may have been lost; re-checking every connection");
                for (_, outbox) in shared.connections.read().values() {
                    outbox.push(Outgoing::Recheck(Recheck::Everything));
                }
            }
        }
    }
}

/// Every `access_sweep_interval`: the users whose sessions were revoked or who were disabled since
/// the previous sweep (less [`SWEEP_OVERLAP`]) have each of their connections re-verify its own
/// session. A connection whose session is still active (another session of the same user) stays.
async fn sweep(shared: Arc<Shared>) {
    let period = shared.config.access_sweep_interval;
    if period.is_zero() {
        return;
    }
    let mut since = Utc::now() - SWEEP_OVERLAP;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        since = sweep_once(&shared, since).await;
    }
}

/// One sweep; returns where the next one starts. On a store error the window is kept, so the next
/// sweep covers this one's too.
async fn sweep_once(shared: &Shared, since: DateTime<Utc>) -> DateTime<Utc> {
    let asked_at = Utc::now();
    match shared.deps.store.access_revoked_since(since).await {
        Ok(revoked) => {
            let users: HashSet<Uuid> = revoked.iter().map(|r| r.user_id).collect();
            if !users.is_empty() {
                for (owner, outbox) in shared.connections.read().values() {
                    if users.contains(owner) {
                        outbox.push(Outgoing::Recheck(Recheck::Session));
                    }
                }
            }
            asked_at - SWEEP_OVERLAP
        }
        Err(err) => {
            tracing::warn!(error = %err, "access sweep failed; the next one reaches back further");
            since
        }
    }
}

/// The user's connections on this gateway. A scan: notices are rare next to messages, and a
/// per-user index would cost every connection memory all the time.
fn push_to_user(shared: &Shared, user: Uuid, recheck: Recheck) {
    for (owner, outbox) in shared.connections.read().values() {
        if *owner == user {
            outbox.push(Outgoing::Recheck(recheck));
        }
    }
}
