//! Focus statistics for a client dashboard: focus time per day, sessions, streaks. A pure
//! function of the stored sessions, the user's time zone and the instant it is computed at, so
//! the days are the user's local days (a session from 23:00 to 01:00 counts one hour on each
//! day) and tests use a fixed clock.
//!
//! Rules:
//! - The window is the last `days` local dates, ending with today (the local date of `now`).
//! - A session counts from `started_at` to `ended_at`; an open one to its planned end
//!   (`ends_at`) or `now`, whichever is earlier. Its time is split at local midnights.
//! - A session is counted (in `sessions`) on the local day it started, if that day is in the
//!   window.
//! - A focus day is a day with any focus time. The current streak is the run of focus days ending
//!   today — or yesterday, when today has none yet (the day is not over); the longest streak is
//!   the longest run within the window.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::FocusSession;

/// One local day of the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayFocus {
    pub date: NaiveDate,
    /// Seconds in focus during this local day.
    pub focus_seconds: i64,
    /// Sessions started on this local day.
    pub sessions: u32,
}

/// Statistics over a window of days.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FocusStats {
    /// Oldest first, one entry per day of the window (days without focus included).
    pub days: Vec<DayFocus>,
    pub total_focus_seconds: i64,
    pub sessions: u32,
    pub current_streak_days: u32,
    pub longest_streak_days: u32,
}

/// The instant local day `date` begins in `tz` (the first instant after a gap when midnight is
/// skipped by a DST change; the earlier one when it repeats).
pub fn day_start(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let mut local = date.and_time(NaiveTime::MIN);
    // A DST gap is at most a few hours; step forward until the local time exists.
    for _ in 0..48 {
        if let Some(instant) = tz.from_local_datetime(&local).earliest() {
            return instant.with_timezone(&Utc);
        }
        local += Duration::minutes(30);
    }
    Utc.from_utc_datetime(&date.and_time(NaiveTime::MIN))
}

/// The statistics of `sessions` over the last `days` local days of `tz` up to `now`.
pub fn focus_stats(sessions: &[FocusSession], tz: Tz, now: DateTime<Utc>, days: u32) -> FocusStats {
    let today = now.with_timezone(&tz).date_naive();
    let first = today - Duration::days(i64::from(days.max(1)) - 1);
    let mut out: Vec<DayFocus> = first
        .iter_days()
        .take_while(|date| *date <= today)
        .map(|date| DayFocus {
            date,
            focus_seconds: 0,
            sessions: 0,
        })
        .collect();
    let bounds: Vec<(DateTime<Utc>, DateTime<Utc>)> = out
        .iter()
        .map(|day| {
            (
                day_start(tz, day.date),
                day_start(tz, day.date + Duration::days(1)),
            )
        })
        .collect();
    for session in sessions {
        let end = match session.ended_at {
            Some(ended) => ended,
            None => session.ends_at.map_or(now, |planned| planned.min(now)),
        };
        let started_on = session.started_at.with_timezone(&tz).date_naive();
        for (day, (from, to)) in out.iter_mut().zip(&bounds) {
            let overlap = (end.min(*to) - session.started_at.max(*from)).num_seconds();
            if overlap > 0 {
                day.focus_seconds += overlap;
            }
            if day.date == started_on {
                day.sessions += 1;
            }
        }
    }
    let (current, longest) = streaks(&out);
    FocusStats {
        total_focus_seconds: out.iter().map(|d| d.focus_seconds).sum(),
        sessions: out.iter().map(|d| d.sessions).sum(),
        current_streak_days: current,
        longest_streak_days: longest,
        days: out,
    }
}

/// (current, longest) runs of days with focus; `days` oldest first, the last one today.
fn streaks(days: &[DayFocus]) -> (u32, u32) {
    let mut longest = 0;
    let mut run = 0;
    for day in days {
        run = if day.focus_seconds > 0 { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let mut recent = days.iter().rev().peekable();
    if recent.peek().is_some_and(|today| today.focus_seconds == 0) {
        recent.next();
    }
    let current = recent.take_while(|day| day.focus_seconds > 0).count() as u32;
    (current, longest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::focus::schedule::FocusSource;
    use uuid::Uuid;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn session(start: &str, end: Option<&str>) -> FocusSession {
        FocusSession {
            id: Uuid::new_v4(),
            user_id: Uuid::nil(),
            source: FocusSource::Manual,
            started_at: at(start),
            ends_at: None,
            ended_at: end.map(at),
        }
    }

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn a_session_crossing_local_midnight_is_split_between_the_two_days() {
        // 23:00–01:30 in Paris (UTC+1 in December): 22:00Z–00:30Z.
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let sessions = [session(
            "2026-12-02T22:00:00Z",
            Some("2026-12-03T00:30:00Z"),
        )];
        let stats = focus_stats(&sessions, paris, at("2026-12-03T12:00:00Z"), 2);
        assert_eq!(
            stats.days,
            vec![
                DayFocus {
                    date: date("2026-12-02"),
                    focus_seconds: 3600,
                    sessions: 1
                },
                DayFocus {
                    date: date("2026-12-03"),
                    focus_seconds: 5400,
                    sessions: 0
                },
            ]
        );
        assert_eq!(stats.total_focus_seconds, 9000);
        assert_eq!(stats.sessions, 1);
        // In UTC the same session is on one day only.
        let utc = focus_stats(&sessions, Tz::UTC, at("2026-12-03T12:00:00Z"), 2);
        assert_eq!(utc.days[0].focus_seconds, 7200);
        assert_eq!(utc.days[1].focus_seconds, 1800);
    }

    #[test]
    fn an_open_session_counts_until_now_or_its_planned_end() {
        let mut open = session("2026-12-03T09:00:00Z", None);
        let now = at("2026-12-03T09:20:00Z");
        assert_eq!(
            focus_stats(&[open], Tz::UTC, now, 1).total_focus_seconds,
            1200
        );
        open.ends_at = Some(at("2026-12-03T09:10:00Z"));
        assert_eq!(
            focus_stats(&[open], Tz::UTC, now, 1).total_focus_seconds,
            600
        );
    }

    #[test]
    fn sessions_outside_the_window_do_not_count() {
        let sessions = [
            session("2026-11-20T09:00:00Z", Some("2026-11-20T10:00:00Z")),
            session("2026-12-03T09:00:00Z", Some("2026-12-03T10:00:00Z")),
        ];
        let stats = focus_stats(&sessions, Tz::UTC, at("2026-12-03T12:00:00Z"), 7);
        assert_eq!(stats.days.len(), 7);
        assert_eq!(stats.days[0].date, date("2026-11-27"));
        assert_eq!(stats.total_focus_seconds, 3600);
        assert_eq!(stats.sessions, 1);
    }

    #[test]
    fn streaks_count_runs_of_focus_days_and_today_may_still_be_empty() {
        let day = |d: &str| session(&format!("{d}T09:00:00Z"), Some(&format!("{d}T09:30:00Z")));
        let sessions = [
            day("2026-11-26"),
            day("2026-11-27"),
            day("2026-11-28"),
            day("2026-12-01"),
            day("2026-12-02"),
        ];
        let stats = focus_stats(&sessions, Tz::UTC, at("2026-12-03T08:00:00Z"), 10);
        assert_eq!(stats.longest_streak_days, 3);
        assert_eq!(stats.current_streak_days, 2);
        // A day with no focus before yesterday breaks the current streak.
        let stats = focus_stats(&sessions[..3], Tz::UTC, at("2026-12-03T08:00:00Z"), 10);
        assert_eq!(stats.current_streak_days, 0);
        assert_eq!(stats.longest_streak_days, 3);
    }

    #[test]
    fn a_skipped_local_midnight_starts_the_day_after_the_gap() {
        // America/Sao_Paulo skipped 2018-11-04 00:00–01:00 (UTC-3 to UTC-2).
        let sao_paulo: Tz = "America/Sao_Paulo".parse().unwrap();
        let start = day_start(sao_paulo, date("2018-11-04"));
        assert_eq!(start, at("2018-11-04T03:00:00Z"));
    }
}
