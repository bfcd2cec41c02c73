//! Presence changes on their way to every gateway of a deployment.
//!
//! A change is announced once (by whoever caused it: a gateway when a connection opens, closes,
//! goes idle or lapses; the API when a custom status is set) and every gateway hears it, then
//! forwards it to its local connections that follow the user. Delivery is at most once — a
//! broadcast buffer that overflows, or a Redis subscriber that reconnects, loses changes — so a
//! loss is reported as [`PresenceSignal::Resync`], and the gateway re-reads the presence of
//! everyone its connections follow.

use chorus_protocol::PresenceInfo;
use tokio::sync::broadcast;

/// Changes buffered per receiving gateway; a gateway further behind resyncs.
const FEED_BUFFER: usize = 4096;

/// What a receiver of presence changes gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PresenceSignal {
    /// A user's presence as it is now.
    Update(PresenceInfo),
    /// Changes may have been lost: re-read every followed user.
    Resync,
}

/// The receiving end, for one gateway.
pub struct PresenceUpdates {
    updates: broadcast::Receiver<PresenceInfo>,
    resync: broadcast::Receiver<()>,
}

impl PresenceUpdates {
    /// The next signal; `None` once the store is gone.
    pub async fn recv(&mut self) -> Option<PresenceSignal> {
        tokio::select! {
            update = self.updates.recv() => match update {
                Ok(info) => Some(PresenceSignal::Update(info)),
                Err(broadcast::error::RecvError::Lagged(_)) => Some(PresenceSignal::Resync),
                Err(broadcast::error::RecvError::Closed) => None,
            },
            resync = self.resync.recv() => match resync {
                Ok(()) | Err(broadcast::error::RecvError::Lagged(_)) => Some(PresenceSignal::Resync),
                Err(broadcast::error::RecvError::Closed) => None,
            },
        }
    }
}

/// The in-process fan-out of changes, also the last hop of the Redis feed.
#[derive(Clone)]
pub(crate) struct LocalFeed {
    updates: broadcast::Sender<PresenceInfo>,
    resync: broadcast::Sender<()>,
}

impl Default for LocalFeed {
    fn default() -> Self {
        LocalFeed {
            updates: broadcast::channel(FEED_BUFFER).0,
            resync: broadcast::channel(16).0,
        }
    }
}

impl LocalFeed {
    pub(crate) fn send(&self, info: PresenceInfo) {
        // No receiver (no gateway in this process) is fine.
        let _ = self.updates.send(info);
    }

    pub(crate) fn resync(&self) {
        let _ = self.resync.send(());
    }

    pub(crate) fn subscribe(&self) -> PresenceUpdates {
        PresenceUpdates {
            updates: self.updates.subscribe(),
            resync: self.resync.subscribe(),
        }
    }
}
