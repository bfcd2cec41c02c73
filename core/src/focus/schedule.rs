//! When a user is in focus: a session they started (now, until they end it, or for a duration),
//! or a weekly schedule in their time zone (e.g. weekdays 09:00–11:00 Europe/Paris). Pure
//! functions of the time passed in, so a test clock starts and ends a scheduled session.
//!
//! A scheduled window starts at `start` local time on each listed day and ends at `end` the same
//! day — or the next day when `end` is not after `start` (22:00–06:00). Local times a DST change
//! skips start at the first instant after the gap; repeated ones take the earlier instant.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// A repeating focus window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeeklySchedule {
    /// The days a window starts on.
    pub days: Vec<Weekday>,
    pub start: NaiveTime,
    pub end: NaiveTime,
}

/// A session the user started by hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManualSession {
    pub started_at: DateTime<Utc>,
    /// `None`: until the user ends it.
    pub ends_at: Option<DateTime<Utc>>,
}

/// Where the focus in effect comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FocusSource {
    Manual,
    Schedule,
}

/// The focus in effect at some instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveFocus {
    pub source: FocusSource,
    pub started_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
}

/// `local` on `date` in `tz` as an instant (see the module doc for DST gaps and folds).
fn instant(tz: Tz, date: NaiveDate, local: NaiveTime) -> Option<DateTime<Utc>> {
    let naive = date.and_time(local);
    let resolved = tz.from_local_datetime(&naive).earliest().or_else(|| {
        // In a gap: the first valid minute after it (gaps are at most a few hours).
        (1..=240).find_map(|m| {
            tz.from_local_datetime(&(naive + Duration::minutes(m)))
                .earliest()
        })
    })?;
    Some(resolved.with_timezone(&Utc))
}

/// The window starting on local `date`, if the schedule has one that day.
fn window_on(
    schedule: &WeeklySchedule,
    tz: Tz,
    date: NaiveDate,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    if !schedule.days.contains(&date.weekday()) {
        return None;
    }
    let end_date = if schedule.end > schedule.start {
        date
    } else {
        date.succ_opt()?
    };
    Some((
        instant(tz, date, schedule.start)?,
        instant(tz, end_date, schedule.end)?,
    ))
}

/// The scheduled window containing `now` (start inclusive, end exclusive).
pub fn window_at(
    schedule: &WeeklySchedule,
    tz: Tz,
    now: DateTime<Utc>,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let today = now.with_timezone(&tz).date_naive();
    // Yesterday's window may run past midnight into today.
    [today.pred_opt()?, today]
        .into_iter()
        .filter_map(|date| window_on(schedule, tz, date))
        .find(|(start, end)| *start <= now && now < *end)
}

/// The next instant after `now` at which the schedule starts or ends a window: when a sweep
/// should look again.
pub fn next_change(schedule: &WeeklySchedule, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let today = now.with_timezone(&tz).date_naive();
    (-1..=8)
        .filter_map(|offset| today.checked_add_signed(Duration::days(offset)))
        .filter_map(|date| window_on(schedule, tz, date))
        .flat_map(|(start, end)| [start, end])
        .filter(|at| *at > now)
        .min()
}

/// The focus in effect at `now`: a manual session that has not ended wins over the schedule.
pub fn active_focus(
    manual: Option<&ManualSession>,
    schedule: Option<(&WeeklySchedule, Tz)>,
    now: DateTime<Utc>,
) -> Option<ActiveFocus> {
    if let Some(session) = manual
        && session.started_at <= now
        && session.ends_at.is_none_or(|end| now < end)
    {
        return Some(ActiveFocus {
            source: FocusSource::Manual,
            started_at: session.started_at,
            ends_at: session.ends_at,
        });
    }
    let (schedule, tz) = schedule?;
    let (start, end) = window_at(schedule, tz, now)?;
    Some(ActiveFocus {
        source: FocusSource::Schedule,
        started_at: start,
        ends_at: Some(end),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    /// Monday to Friday, from `start` to `end` o'clock (also the focus policy's tests' hours).
    pub(crate) fn weekdays(start: u32, end: u32) -> WeeklySchedule {
        WeeklySchedule {
            days: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
            start: NaiveTime::from_hms_opt(start, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(end, 0, 0).unwrap(),
        }
    }

    fn weekday_mornings() -> WeeklySchedule {
        weekdays(9, 11)
    }

    #[test]
    fn a_weekday_window_follows_the_users_time_zone() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        // Friday 4 December 2026: Paris is UTC+1, so 09:00–11:00 local is 08:00–10:00 UTC.
        let schedule = weekday_mornings();
        assert_eq!(
            window_at(&schedule, paris, at("2026-12-04T07:59:59Z")),
            None
        );
        assert_eq!(
            window_at(&schedule, paris, at("2026-12-04T08:00:00Z")),
            Some((at("2026-12-04T08:00:00Z"), at("2026-12-04T10:00:00Z")))
        );
        assert_eq!(
            window_at(&schedule, paris, at("2026-12-04T10:00:00Z")),
            None
        );
        // Saturday: no window.
        assert_eq!(
            window_at(&schedule, paris, at("2026-12-05T08:30:00Z")),
            None
        );
        // In July Paris is UTC+2.
        assert!(window_at(&schedule, paris, at("2026-07-06T07:30:00Z")).is_some());
        assert!(window_at(&schedule, paris, at("2026-07-06T09:30:00Z")).is_none());
    }

    #[test]
    fn the_next_change_is_the_next_start_or_end() {
        let utc: Tz = "UTC".parse().unwrap();
        let schedule = weekday_mornings();
        // Friday 10:30 → ends at 11:00.
        assert_eq!(
            next_change(&schedule, utc, at("2026-12-04T10:30:00Z")),
            Some(at("2026-12-04T11:00:00Z"))
        );
        // Friday noon → Monday 09:00.
        assert_eq!(
            next_change(&schedule, utc, at("2026-12-04T12:00:00Z")),
            Some(at("2026-12-07T09:00:00Z"))
        );
        let never = WeeklySchedule {
            days: vec![],
            ..schedule
        };
        assert_eq!(next_change(&never, utc, at("2026-12-04T12:00:00Z")), None);
    }

    #[test]
    fn an_overnight_window_runs_past_midnight() {
        let utc: Tz = "UTC".parse().unwrap();
        let nights = WeeklySchedule {
            days: vec![Weekday::Fri],
            start: NaiveTime::from_hms_opt(22, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(6, 0, 0).unwrap(),
        };
        assert_eq!(
            window_at(&nights, utc, at("2026-12-05T03:00:00Z")),
            Some((at("2026-12-04T22:00:00Z"), at("2026-12-05T06:00:00Z")))
        );
        assert_eq!(window_at(&nights, utc, at("2026-12-05T22:30:00Z")), None);
    }

    #[test]
    fn a_start_in_a_dst_gap_moves_to_the_end_of_the_gap() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        // 29 March 2026: 02:00–03:00 local does not exist in Paris.
        let gap = WeeklySchedule {
            days: vec![Weekday::Sun],
            start: NaiveTime::from_hms_opt(2, 30, 0).unwrap(),
            end: NaiveTime::from_hms_opt(4, 0, 0).unwrap(),
        };
        let (start, end) = window_at(&gap, paris, at("2026-03-29T01:30:00Z")).unwrap();
        assert_eq!(start, at("2026-03-29T01:00:00Z")); // 03:00 CEST
        assert_eq!(end, at("2026-03-29T02:00:00Z")); // 04:00 CEST
    }

    #[test]
    fn a_manual_session_wins_and_ends_on_time() {
        let utc: Tz = "UTC".parse().unwrap();
        let manual = ManualSession {
            started_at: at("2026-12-04T12:00:00Z"),
            ends_at: Some(at("2026-12-04T12:25:00Z")),
        };
        let schedule = weekday_mornings();
        let during = active_focus(
            Some(&manual),
            Some((&schedule, utc)),
            at("2026-12-04T12:10:00Z"),
        );
        assert_eq!(
            during.map(|f| (f.source, f.ends_at)),
            Some((FocusSource::Manual, manual.ends_at))
        );
        assert_eq!(
            active_focus(Some(&manual), None, at("2026-12-04T12:25:00Z")),
            None
        );
        let morning = active_focus(
            Some(&manual),
            Some((&schedule, utc)),
            at("2026-12-04T09:30:00Z"),
        );
        assert_eq!(morning.map(|f| f.source), Some(FocusSource::Schedule));
        let open_ended = ManualSession {
            ends_at: None,
            ..manual
        };
        assert!(active_focus(Some(&open_ended), None, at("2027-01-01T00:00:00Z")).is_some());
    }
}
