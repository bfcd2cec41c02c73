//! Turns access notices from the API into re-checks on the affected connections.
//!
//! A notice only says whose rights may have changed; each connection re-reads the truth itself
//! (`Connection::recheck`), so a forged or stale notice grants nothing, and a lost one (lag, a
//! Redis reconnect) is answered by re-checking every connection.

use std::sync::Arc;

use chorus_cluster::access::{AccessNotice, AccessReceiver, AccessSignal};
use uuid::Uuid;

use crate::Shared;
use crate::outbox::{Outgoing, Recheck};

pub(crate) async fn run(mut notices: AccessReceiver, shared: Arc<Shared>) {
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

/// The user's connections on this gateway. A scan: notices are rare next to messages, and a
/// per-user index would cost every connection memory all the time.
fn push_to_user(shared: &Shared, user: Uuid, recheck: Recheck) {
    for (owner, outbox) in shared.connections.read().values() {
        if *owner == user {
            outbox.push(Outgoing::Recheck(recheck));
        }
    }
}
