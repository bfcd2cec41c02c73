//! What the focus runtime does for one user at one instant (pure): end the open session whose
//! planned end has passed, open a session when a scheduled window has begun and none is open,
//! or nothing. The runtime (`chorus_notify::focus`) asks at each tick, for the users that are
//! due, with the time of its clock — a test clock in tests.
//!
//! A window is entered once: the store keeps one session per (user, window start), so a user
//! who ends a scheduled session by hand stays out of focus until the next window.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::schedule::{WeeklySchedule, next_change, window_at};

/// What the runtime knows of the user's open session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenSession {
    pub ends_at: Option<DateTime<Utc>>,
}

/// The runtime's next step for one user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Nothing changes now.
    Stay,
    /// End the open session (its planned end has come); it ended at `at`.
    End { at: DateTime<Utc> },
    /// Open a session for the scheduled window `[window_start, ends_at)`.
    Start {
        window_start: DateTime<Utc>,
        ends_at: DateTime<Utc>,
    },
}

/// The step for a user with `open` session (if any) and `schedule` (if any) at `now`.
pub fn transition(
    open: Option<OpenSession>,
    schedule: Option<(&WeeklySchedule, Tz)>,
    now: DateTime<Utc>,
) -> Transition {
    if let Some(open) = open {
        return match open.ends_at {
            Some(end) if end <= now => Transition::End { at: end },
            _ => Transition::Stay,
        };
    }
    match schedule.and_then(|(schedule, tz)| window_at(schedule, tz, now)) {
        Some((window_start, ends_at)) => Transition::Start {
            window_start,
            ends_at,
        },
        None => Transition::Stay,
    }
}

/// When the runtime should look at this user's schedule again (the next window start or end
/// after `now`); `None`: never by the schedule alone.
pub fn next_check(
    schedule: Option<(&WeeklySchedule, Tz)>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    schedule.and_then(|(schedule, tz)| next_change(schedule, tz, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveTime, Weekday};

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn mornings() -> WeeklySchedule {
        WeeklySchedule {
            days: vec![Weekday::Mon, Weekday::Fri],
            start: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(11, 0, 0).unwrap(),
        }
    }

    #[test]
    fn a_window_opens_a_session_and_its_end_closes_it() {
        let utc: Tz = "UTC".parse().unwrap();
        let schedule = mornings();
        let s = Some((&schedule, utc));
        assert_eq!(
            transition(None, s, at("2026-12-04T08:59:59Z")),
            Transition::Stay
        );
        assert_eq!(
            transition(None, s, at("2026-12-04T09:00:00Z")),
            Transition::Start {
                window_start: at("2026-12-04T09:00:00Z"),
                ends_at: at("2026-12-04T11:00:00Z")
            }
        );
        let open = Some(OpenSession {
            ends_at: Some(at("2026-12-04T11:00:00Z")),
        });
        assert_eq!(
            transition(open, s, at("2026-12-04T10:59:59Z")),
            Transition::Stay
        );
        assert_eq!(
            transition(open, s, at("2026-12-04T11:00:05Z")),
            Transition::End {
                at: at("2026-12-04T11:00:00Z")
            }
        );
        assert_eq!(
            next_check(s, at("2026-12-04T11:00:05Z")),
            Some(at("2026-12-07T09:00:00Z"))
        );
    }

    #[test]
    fn an_open_ended_session_stays_and_no_schedule_never_starts() {
        let open = Some(OpenSession { ends_at: None });
        assert_eq!(
            transition(open, None, at("2030-01-01T00:00:00Z")),
            Transition::Stay
        );
        assert_eq!(
            transition(None, None, at("2026-12-04T09:30:00Z")),
            Transition::Stay
        );
        assert_eq!(next_check(None, at("2026-12-04T09:30:00Z")), None);
    }
}
