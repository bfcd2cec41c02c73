//! Frames for a user (notifications, read state) in the gateway: which local connections belong
//! to whom, and the task that forwards the presence store's user feed to them.
//!
//! Every gateway hears every user frame of the deployment; this table keeps those of users
//! connected here and drops the rest. A connection is in the table from its `ready` (or
//! `resumed`) until it ends, so no user frame precedes the answer to `identify`. Pushes go to
//! the bounded outboxes like every other frame.

use std::collections::HashMap;
use std::sync::Arc;

use chorus_presence::{UserFrame, UserFrames};
use parking_lot::RwLock;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use uuid::Uuid;

use crate::hub::ConnId;
use crate::outbox::{Outbox, Outgoing};

/// This gateway's connections per user.
#[derive(Default)]
pub struct UserWatch {
    by_user: RwLock<HashMap<Uuid, HashMap<ConnId, Arc<Outbox>>>>,
}

impl UserWatch {
    pub fn add(&self, user: Uuid, conn: ConnId, outbox: &Arc<Outbox>) {
        self.by_user
            .write()
            .entry(user)
            .or_default()
            .insert(conn, outbox.clone());
    }

    pub fn remove(&self, user: Uuid, conn: ConnId) {
        let mut by_user = self.by_user.write();
        if let Some(conns) = by_user.get_mut(&user) {
            conns.remove(&conn);
            if conns.is_empty() {
                by_user.remove(&user);
            }
        }
    }

    /// Pushes the frame to every local connection of its user; how many got it.
    pub fn deliver(&self, frame: &UserFrame) -> usize {
        let by_user = self.by_user.read();
        let Some(conns) = by_user.get(&frame.user_id) else {
            return 0;
        };
        let text = Utf8Bytes::from(frame.frame.as_ref());
        for outbox in conns.values() {
            outbox.push(Outgoing::Frame(text.clone()));
        }
        conns.len()
    }

    /// Forwards the feed until it closes.
    pub async fn run(self: Arc<Self>, mut frames: UserFrames) {
        while let Some(frame) = frames.recv().await {
            self.deliver(&frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_reaches_only_its_users_connections() {
        let watch = UserWatch::default();
        let (alice, bob) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let (phone, laptop, other) = (
            Arc::new(Outbox::new(8)),
            Arc::new(Outbox::new(8)),
            Arc::new(Outbox::new(8)),
        );
        watch.add(alice, 1, &phone);
        watch.add(alice, 2, &laptop);
        watch.add(bob, 3, &other);
        let frame = UserFrame {
            user_id: alice,
            frame: r#"{"type":"heartbeat_ack"}"#.into(),
        };
        assert_eq!(watch.deliver(&frame), 2);
        watch.remove(alice, 1);
        assert_eq!(watch.deliver(&frame), 1);
        watch.remove(alice, 2);
        assert_eq!(watch.deliver(&frame), 0);
        assert!(!watch.by_user.read().contains_key(&alice));
    }
}
