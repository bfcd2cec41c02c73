//! The time the API decides at where a decision depends on it (focus mode: when a session starts
//! and ends, which local days statistics cover, whether a session falls within a workspace's
//! allowed hours). The node passes the wall clock; tests pass a manual one they move by hand, so
//! a test about yesterday or a night in Paris does not depend on when it runs, and never sleeps.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

/// The wall clock, or a manual clock shared by every clone of it.
#[derive(Clone, Default)]
pub struct Clock {
    /// `None`: the wall clock. `Some`: milliseconds since the epoch, set by [`Clock::set`].
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The wall clock (the default).
    pub fn wall() -> Self {
        Clock::default()
    }

    /// A clock that reads `at` until [`Clock::set`] moves it (tests).
    pub fn manual(at: DateTime<Utc>) -> Self {
        Clock {
            manual: Some(Arc::new(AtomicI64::new(at.timestamp_millis()))),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match &self.manual {
            None => Utc::now(),
            Some(millis) => DateTime::from_timestamp_millis(millis.load(Ordering::SeqCst))
                .expect("a manual clock holds a representable instant"),
        }
    }

    /// Moves a manual clock to `at` (every clone sees it); a wall clock ignores it.
    pub fn set(&self, at: DateTime<Utc>) {
        if let Some(millis) = &self.manual {
            millis.store(at.timestamp_millis(), Ordering::SeqCst);
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.manual {
            None => f.write_str("Clock::wall"),
            Some(_) => write!(f, "Clock::manual({})", self.now()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_reads_what_it_was_set_to_in_every_clone() {
        let at: DateTime<Utc> = "2026-12-03T22:00:00Z".parse().unwrap();
        let clock = Clock::manual(at);
        let clone = clock.clone();
        assert_eq!(clone.now(), at);
        let later: DateTime<Utc> = "2026-12-04T00:30:00.250Z".parse().unwrap();
        clock.set(later);
        assert_eq!(clone.now(), later);
    }
}
