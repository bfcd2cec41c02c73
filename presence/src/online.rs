//! Online/offline by open connections, with leases and last-seen times (RF-06.1, RF-06.2).
//!
//! Each connection holds a lease that its gateway renews on heartbeats; a connection whose lease
//! ran out (its gateway died without saying goodbye) no longer counts. A user is online while at
//! least one connection counts.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// What a connect or disconnect changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// The user's first connection opened.
    CameOnline,
    /// The user's last connection closed.
    WentOffline,
    /// The user was and stays online (or offline).
    Unchanged,
}

/// Connections per user, each with its lease expiry, and when each user was last seen.
#[derive(Debug, Default)]
pub struct OnlineTracker {
    connections: HashMap<Uuid, HashMap<Uuid, DateTime<Utc>>>,
    last_seen: HashMap<Uuid, DateTime<Utc>>,
}

impl OnlineTracker {
    fn live(&mut self, user: Uuid, now: DateTime<Utc>) -> usize {
        match self.connections.get_mut(&user) {
            Some(conns) => {
                conns.retain(|_, lease| *lease > now);
                let count = conns.len();
                if count == 0 {
                    self.connections.remove(&user);
                }
                count
            }
            None => 0,
        }
    }

    /// A connection opened (or renewed its lease until `lease_until`).
    pub fn connected(
        &mut self,
        user: Uuid,
        conn: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Transition {
        let before = self.live(user, now);
        self.connections
            .entry(user)
            .or_default()
            .insert(conn, lease_until);
        self.last_seen.insert(user, now);
        if before == 0 {
            Transition::CameOnline
        } else {
            Transition::Unchanged
        }
    }

    pub fn disconnected(&mut self, user: Uuid, conn: Uuid, now: DateTime<Utc>) -> Transition {
        let before = self.live(user, now);
        if let Some(conns) = self.connections.get_mut(&user) {
            conns.remove(&conn);
        }
        self.last_seen.insert(user, now);
        if before > 0 && self.live(user, now) == 0 {
            Transition::WentOffline
        } else {
            Transition::Unchanged
        }
    }

    pub fn is_online(&mut self, user: Uuid, now: DateTime<Utc>) -> bool {
        self.live(user, now) > 0
    }

    pub fn last_seen(&self, user: Uuid) -> Option<DateTime<Utc>> {
        self.last_seen.get(&user).copied()
    }
}
