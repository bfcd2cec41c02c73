//! Online / idle / offline by open connections, with leases and last-seen times (RF-06.1,
//! RF-06.2, RF-07.2).
//!
//! Each connection holds a lease that its gateway renews on heartbeats; a connection whose lease
//! ran out (its gateway died without saying goodbye) no longer counts. A user is online while at
//! least one counting connection is active, idle while every counting connection said it is idle,
//! and offline otherwise — so a phone and a laptop make one presence. Nothing here reads a clock,
//! and reading never forgets a lapsed lease: only [`OnlineTracker::expire`] does, and it reports
//! whom it took offline, so the gateway's sweep can tell their watchers exactly once.

use std::collections::HashMap;

use chorus_protocol::{Activity, PresenceStatus};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// What a connect, disconnect, activity change or lease expiry changed for the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// The user had no counting connection and now has one.
    CameOnline,
    /// The user's last counting connection closed or lapsed.
    WentOffline,
    /// Every counting connection is idle now; one was active before.
    BecameIdle,
    /// A connection is active again after all were idle.
    BecameActive,
    /// Nothing others can see changed.
    Unchanged,
}

impl Transition {
    /// The transition from one status to another.
    pub fn between(before: PresenceStatus, after: PresenceStatus) -> Transition {
        use PresenceStatus::{Idle, Offline, Online};
        match (before, after) {
            _ if before == after => Transition::Unchanged,
            (_, Offline) => Transition::WentOffline,
            (Offline, _) => Transition::CameOnline,
            (Online, Idle) => Transition::BecameIdle,
            (Idle, Online) => Transition::BecameActive,
            _ => Transition::Unchanged,
        }
    }

    /// Whether watchers of the user should hear about it.
    pub fn is_change(self) -> bool {
        self != Transition::Unchanged
    }
}

#[derive(Clone, Copy, Debug)]
struct Conn {
    lease_until: DateTime<Utc>,
    idle: bool,
}

/// The status of a user with these connections at `now`.
fn status_of(conns: Option<&HashMap<Uuid, Conn>>, now: DateTime<Utc>) -> PresenceStatus {
    let mut counting = conns
        .into_iter()
        .flat_map(HashMap::values)
        .filter(|conn| conn.lease_until > now)
        .peekable();
    if counting.peek().is_none() {
        PresenceStatus::Offline
    } else if counting.all(|conn| conn.idle) {
        PresenceStatus::Idle
    } else {
        PresenceStatus::Online
    }
}

/// Connections per user, each with its lease expiry and activity, and when each user was last seen.
#[derive(Debug, Default)]
pub struct OnlineTracker {
    connections: HashMap<Uuid, HashMap<Uuid, Conn>>,
    last_seen: HashMap<Uuid, DateTime<Utc>>,
}

impl OnlineTracker {
    pub fn status(&self, user: Uuid, now: DateTime<Utc>) -> PresenceStatus {
        status_of(self.connections.get(&user), now)
    }

    /// Forgets the user's lapsed connections (they were already not counting).
    fn prune(&mut self, user: Uuid, now: DateTime<Utc>) {
        if let Some(conns) = self.connections.get_mut(&user) {
            conns.retain(|_, conn| conn.lease_until > now);
            if conns.is_empty() {
                self.connections.remove(&user);
            }
        }
    }

    /// A connection opened (active), or renewed its lease until `lease_until`.
    pub fn connected(
        &mut self,
        user: Uuid,
        conn: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Transition {
        let before = self.status(user, now);
        self.prune(user, now);
        self.connections
            .entry(user)
            .or_default()
            .entry(conn)
            .and_modify(|c| c.lease_until = lease_until)
            .or_insert(Conn {
                lease_until,
                idle: false,
            });
        self.last_seen.insert(user, now);
        Transition::between(before, self.status(user, now))
    }

    pub fn disconnected(&mut self, user: Uuid, conn: Uuid, now: DateTime<Utc>) -> Transition {
        let before = self.status(user, now);
        if let Some(conns) = self.connections.get_mut(&user) {
            conns.remove(&conn);
        }
        self.prune(user, now);
        self.last_seen.insert(user, now);
        Transition::between(before, self.status(user, now))
    }

    /// A connection reports its user's attention; unknown connections change nothing.
    pub fn activity(
        &mut self,
        user: Uuid,
        conn: Uuid,
        activity: Activity,
        now: DateTime<Utc>,
    ) -> Transition {
        let before = self.status(user, now);
        if let Some(c) = self
            .connections
            .get_mut(&user)
            .and_then(|conns| conns.get_mut(&conn))
        {
            c.idle = activity == Activity::Idle;
        }
        Transition::between(before, self.status(user, now))
    }

    /// Forgets every lapsed connection; returns the users this took offline (each once: a second
    /// call finds nothing left of them).
    pub fn expire(&mut self, now: DateTime<Utc>) -> Vec<Uuid> {
        let mut gone = Vec::new();
        self.connections.retain(|user, conns| {
            conns.retain(|_, conn| conn.lease_until > now);
            if conns.is_empty() {
                gone.push(*user);
                false
            } else {
                true
            }
        });
        gone.sort();
        gone
    }

    pub fn is_online(&self, user: Uuid, now: DateTime<Utc>) -> bool {
        self.status(user, now) != PresenceStatus::Offline
    }

    pub fn last_seen(&self, user: Uuid) -> Option<DateTime<Utc>> {
        self.last_seen.get(&user).copied()
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn a_user_is_idle_only_when_every_connection_is() {
        let mut tracker = OnlineTracker::default();
        let (user, phone, laptop) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let lease = t(90);
        assert_eq!(
            tracker.connected(user, phone, t(0), lease),
            Transition::CameOnline
        );
        assert_eq!(
            tracker.connected(user, laptop, t(0), lease),
            Transition::Unchanged
        );
        assert_eq!(
            tracker.activity(user, phone, Activity::Idle, t(1)),
            Transition::Unchanged,
            "the laptop is still active"
        );
        assert_eq!(
            tracker.activity(user, laptop, Activity::Idle, t(2)),
            Transition::BecameIdle
        );
        assert_eq!(tracker.status(user, t(2)), PresenceStatus::Idle);
        assert_eq!(
            tracker.activity(user, phone, Activity::Active, t(3)),
            Transition::BecameActive
        );
        assert_eq!(
            tracker.activity(user, Uuid::new_v4(), Activity::Idle, t(3)),
            Transition::Unchanged,
            "an unknown connection changes nothing"
        );
        assert_eq!(
            tracker.disconnected(user, phone, t(4)),
            Transition::BecameIdle,
            "the idle laptop is what is left"
        );
        assert_eq!(
            tracker.disconnected(user, laptop, t(5)),
            Transition::WentOffline
        );
    }

    #[test]
    fn reading_never_forgets_a_lapsed_lease_the_sweep_reports_it_once() {
        let mut tracker = OnlineTracker::default();
        let (user, conn) = (Uuid::new_v4(), Uuid::new_v4());
        tracker.connected(user, conn, t(0), t(90));
        assert!(!tracker.is_online(user, t(90)));
        assert_eq!(tracker.expire(t(89)), Vec::<Uuid>::new());
        assert_eq!(tracker.expire(t(90)), vec![user]);
        assert_eq!(tracker.expire(t(91)), Vec::<Uuid>::new());
        assert_eq!(tracker.last_seen(user), Some(t(0)));
        assert_eq!(
            tracker.connected(user, conn, t(100), t(100) + Duration::seconds(90)),
            Transition::CameOnline
        );
    }
}
