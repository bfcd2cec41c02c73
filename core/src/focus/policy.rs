//! A workspace's focus policy: the hours in which its members may focus (e.g. weekdays
//! 08:00–18:00 Europe/Paris), set by its owners and admins. Pure: whether a session from `start`
//! to its planned end is allowed, decided at the time passed in.
//!
//! A session is allowed when it starts inside one of the policy's windows and, when it has a
//! planned end, ends no later than that window does. A session without a planned end may start
//! inside a window (its user ends it). A user in several workspaces needs every one of their
//! policies to allow it; the first that does not is the one named in the refusal.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use super::schedule::{WeeklySchedule, window_at};

/// When members of a workspace may be in focus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FocusPolicy {
    /// The zone the hours are in.
    pub time_zone: Tz,
    /// The allowed windows (a window ending at or before its start runs past midnight).
    pub hours: WeeklySchedule,
}

/// Why a policy refuses a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyRefusal {
    /// It would start outside every allowed window.
    OutsideHours,
    /// It starts inside a window but is planned to end after the window does, at `window_end`.
    EndsAfterHours { window_end: DateTime<Utc> },
}

/// Whether `policy` allows a session from `start` until `ends_at` (`None`: until ended by hand).
pub fn check_session(
    policy: &FocusPolicy,
    start: DateTime<Utc>,
    ends_at: Option<DateTime<Utc>>,
) -> Result<(), PolicyRefusal> {
    let Some((_, window_end)) = window_at(&policy.hours, policy.time_zone, start) else {
        return Err(PolicyRefusal::OutsideHours);
    };
    match ends_at {
        Some(end) if end > window_end => Err(PolicyRefusal::EndsAfterHours { window_end }),
        _ => Ok(()),
    }
}

/// Whether every policy of `policies` (workspace id, policy) allows the session; the first that
/// does not, with why.
pub fn check_all(
    policies: &[(Uuid, FocusPolicy)],
    start: DateTime<Utc>,
    ends_at: Option<DateTime<Utc>>,
) -> Result<(), (Uuid, PolicyRefusal)> {
    policies.iter().try_for_each(|(workspace, policy)| {
        check_session(policy, start, ends_at).map_err(|why| (*workspace, why))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveTime;

    fn office_hours() -> FocusPolicy {
        FocusPolicy {
            time_zone: "Europe/Paris".parse().unwrap(),
            hours: crate::focus::schedule::tests::weekdays(8, 18),
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_session_inside_the_hours_is_allowed() {
        // Monday 7 December 2026, Paris is UTC+1: the window is 07:00–17:00 UTC.
        let policy = office_hours();
        assert_eq!(
            check_session(&policy, at("2026-12-07T07:00:00Z"), None),
            Ok(())
        );
        assert_eq!(
            check_session(
                &policy,
                at("2026-12-07T09:00:00Z"),
                Some(at("2026-12-07T17:00:00Z"))
            ),
            Ok(())
        );
    }

    #[test]
    fn a_session_starting_outside_the_hours_or_on_a_weekend_is_refused() {
        let policy = office_hours();
        for start in [
            "2026-12-07T06:59:59Z", // 07:59:59 in Paris
            "2026-12-07T17:00:00Z", // 18:00, the end is exclusive
            "2026-12-12T10:00:00Z", // Saturday
        ] {
            assert_eq!(
                check_session(&policy, at(start), None),
                Err(PolicyRefusal::OutsideHours),
                "{start}"
            );
        }
    }

    #[test]
    fn every_workspace_policy_must_allow_it_and_the_first_refusal_is_named() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut late = office_hours();
        late.hours.start = NaiveTime::from_hms_opt(12, 0, 0).unwrap();
        let policies = [(a, office_hours()), (b, late)];
        // 10:00 in Paris: inside a's hours, before b's.
        assert_eq!(
            check_all(&policies, at("2026-12-07T09:00:00Z"), None),
            Err((b, PolicyRefusal::OutsideHours))
        );
        assert_eq!(
            check_all(&policies, at("2026-12-07T12:00:00Z"), None),
            Ok(())
        );
        assert_eq!(check_all(&[], at("2026-12-12T03:00:00Z"), None), Ok(()));
    }

    #[test]
    fn a_session_planned_past_the_end_of_the_hours_is_refused() {
        assert_eq!(
            check_session(
                &office_hours(),
                at("2026-12-07T16:00:00Z"),
                Some(at("2026-12-07T17:30:00Z"))
            ),
            Err(PolicyRefusal::EndsAfterHours {
                window_end: at("2026-12-07T17:00:00Z")
            })
        );
    }
}
