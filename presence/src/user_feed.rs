//! Frames for one user's connections, wherever they are: notifications and read-state changes.
//!
//! It rides the same pipe as presence changes (in process, or Redis pub/sub `<prefix>:user`):
//! every gateway hears every user frame and pushes it to its own connections of that user, and
//! drops the rest. Delivery is at most once — a gateway that lags or a subscriber that
//! reconnects loses frames — which is why notifications are also kept in the metadata store
//! (`GET /v1/notifications`) and read positions are in `ready`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

/// Frames buffered per receiving gateway.
const USER_FEED_BUFFER: usize = 4096;

/// One server frame (its JSON text) for every connection of `user_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserFrame {
    pub user_id: Uuid,
    pub frame: Arc<str>,
}

/// The in-process fan-out of user frames, also the last hop of the Redis feed.
#[derive(Clone)]
pub(crate) struct LocalUserFeed {
    frames: broadcast::Sender<UserFrame>,
}

impl Default for LocalUserFeed {
    fn default() -> Self {
        LocalUserFeed {
            frames: broadcast::channel(USER_FEED_BUFFER).0,
        }
    }
}

impl LocalUserFeed {
    pub(crate) fn send(&self, frame: UserFrame) {
        // No receiver (no gateway in this process) is fine.
        let _ = self.frames.send(frame);
    }

    pub(crate) fn subscribe(&self) -> UserFrames {
        UserFrames(self.frames.subscribe())
    }
}

/// The receiving end, for one gateway.
pub struct UserFrames(broadcast::Receiver<UserFrame>);

impl UserFrames {
    /// The next frame; `None` once the store is gone. Frames lost to lag are skipped (logged).
    pub async fn recv(&mut self) -> Option<UserFrame> {
        loop {
            match self.0.recv().await {
                Ok(frame) => return Some(frame),
                Err(broadcast::error::RecvError::Lagged(lost)) => {
                    tracing::warn!(lost, "user frames lost by a lagging gateway");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}
