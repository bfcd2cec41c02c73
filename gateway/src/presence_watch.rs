//! Presence fan-out in the gateway: which local connections follow whose presence, and the task
//! that forwards announced changes to them.
//!
//! A connection follows at most `MAX_PRESENCE_SUBSCRIPTIONS` users (`presence_subscribe`), so a
//! change reaches the few sockets that show the user, not every socket of a large workspace. The
//! presence store's feed brings every change announced anywhere in the deployment; this table
//! drops those nobody here follows. Pushes go to the connections' bounded outboxes like every
//! other frame (a reader too slow for them is closed with 4002).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chorus_presence::{PresenceSignal, PresenceStore, PresenceUpdates, Transition};
use chorus_protocol::{PresenceInfo, ServerFrame};
use parking_lot::RwLock;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use uuid::Uuid;

use crate::hub::ConnId;
use crate::outbox::{Outbox, Outgoing};

/// Users re-read per store call when the feed may have lost changes.
const RESYNC_CHUNK: usize = 500;

/// Followers per followed user, for this gateway's connections.
#[derive(Default)]
pub struct PresenceWatch {
    followers: RwLock<HashMap<Uuid, HashMap<ConnId, Arc<Outbox>>>>,
}

impl PresenceWatch {
    pub fn follow(&self, conn: ConnId, outbox: &Arc<Outbox>, users: &[Uuid]) {
        let mut followers = self.followers.write();
        for user in users {
            followers
                .entry(*user)
                .or_default()
                .insert(conn, outbox.clone());
        }
    }

    pub fn unfollow(&self, conn: ConnId, users: &[Uuid]) {
        let mut followers = self.followers.write();
        for user in users {
            if let Some(conns) = followers.get_mut(user) {
                conns.remove(&conn);
                if conns.is_empty() {
                    followers.remove(user);
                }
            }
        }
    }

    /// Pushes the change to every local follower of its user (serialised once).
    pub fn deliver(&self, info: &PresenceInfo) {
        let followers = self.followers.read();
        let Some(conns) = followers.get(&info.user_id) else {
            return;
        };
        let frame = Utf8Bytes::from(ServerFrame::Presence(info.clone()).to_json());
        for outbox in conns.values() {
            outbox.push(Outgoing::Frame(frame.clone()));
        }
    }

    fn followed(&self) -> Vec<Uuid> {
        self.followers.read().keys().copied().collect()
    }

    /// Forwards the feed's changes until it closes; after a possible loss, re-reads every
    /// followed user and sends their presence as it is.
    pub async fn run(self: Arc<Self>, store: Arc<dyn PresenceStore>, mut updates: PresenceUpdates) {
        while let Some(signal) = updates.recv().await {
            match signal {
                PresenceSignal::Update(info) => self.deliver(&info),
                PresenceSignal::Resync => {
                    for chunk in self.followed().chunks(RESYNC_CHUNK) {
                        match store.presence_of(chunk, chrono::Utc::now()).await {
                            Ok(infos) => infos.iter().for_each(|info| self.deliver(info)),
                            Err(err) => tracing::warn!(error = %err, "presence resync failed"),
                        }
                    }
                }
            }
        }
    }
}

/// Tells every gateway about `user` when `transition` is a change others can see. Presence is
/// advisory: a store error is logged and the caller carries on.
pub async fn announce_change(store: &dyn PresenceStore, user: Uuid, transition: Transition) {
    if !transition.is_change() {
        return;
    }
    match store.presence_of(&[user], chrono::Utc::now()).await {
        Ok(mut infos) => {
            if let Some(info) = infos.pop() {
                store.announce(info).await;
            }
        }
        Err(err) => tracing::warn!(error = %err, "presence read failed"),
    }
}

/// What a `presence_subscribe` changes in the table.
#[derive(Debug, PartialEq, Eq)]
pub struct FollowPlan {
    pub follow: Vec<Uuid>,
    pub unfollow: Vec<Uuid>,
}

/// The requested users without repeats, in order; `None` when there are more than `limit`.
pub fn distinct_within(requested: &[Uuid], limit: usize) -> Option<Vec<Uuid>> {
    let mut seen = HashSet::with_capacity(requested.len());
    let distinct: Vec<Uuid> = requested
        .iter()
        .copied()
        .filter(|user| seen.insert(*user))
        .collect();
    (distinct.len() <= limit).then_some(distinct)
}

/// From following `current` to following `next`.
pub fn plan(current: &[Uuid], next: &[Uuid]) -> FollowPlan {
    let (before, after): (HashSet<&Uuid>, HashSet<&Uuid>) =
        (current.iter().collect(), next.iter().collect());
    FollowPlan {
        follow: next
            .iter()
            .filter(|u| !before.contains(u))
            .copied()
            .collect(),
        unfollow: current
            .iter()
            .filter(|u| !after.contains(u))
            .copied()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use chorus_protocol::PresenceStatus;
    use futures_util::FutureExt;

    use super::*;

    fn u(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn a_subscription_is_counted_in_distinct_users() {
        assert_eq!(
            distinct_within(&[u(1), u(2), u(1)], 2),
            Some(vec![u(1), u(2)])
        );
        assert_eq!(distinct_within(&[u(1), u(2), u(3)], 2), None);
        assert_eq!(distinct_within(&[], 0), Some(vec![]));
    }

    #[test]
    fn a_new_list_replaces_the_old_one() {
        assert_eq!(
            plan(&[u(1), u(2)], &[u(2), u(3)]),
            FollowPlan {
                follow: vec![u(3)],
                unfollow: vec![u(1)]
            }
        );
        assert_eq!(
            plan(&[u(1)], &[]),
            FollowPlan {
                follow: vec![],
                unfollow: vec![u(1)]
            }
        );
    }

    /// How many frames wait in the outbox (draining it).
    fn queued(outbox: &Outbox) -> usize {
        outbox
            .drain()
            .now_or_never()
            .map_or(0, |items| items.unwrap().len())
    }

    #[test]
    fn changes_reach_only_followers_until_they_unfollow() {
        let watch = PresenceWatch::default();
        let (a, b) = (Arc::new(Outbox::new(8)), Arc::new(Outbox::new(8)));
        watch.follow(1, &a, &[u(7)]);
        watch.follow(2, &b, &[u(8)]);
        let info = PresenceInfo {
            user_id: u(7),
            status: PresenceStatus::Online,
            last_seen: None,
            custom_status: None,
            focus: None,
        };
        watch.deliver(&info);
        assert_eq!(queued(&a), 1);
        assert_eq!(queued(&b), 0);
        watch.unfollow(1, &[u(7)]);
        watch.deliver(&info);
        assert_eq!(queued(&a), 0);
        assert_eq!(watch.followed(), vec![u(8)]);
    }
}
