//! Focus statistics over REST (`GET /v1/users/me/focus/stats`): the JSON shape, the bounds of
//! `days`, and which sessions to load for a window (pure, unit-tested). The statistics
//! themselves are `chorus_core::focus::stats`.

use chorus_core::focus::stats::{FocusStats, day_start};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use utoipa::ToSchema;

use super::Refusal;

/// Days a window covers when the request does not say.
pub const DEFAULT_STATS_DAYS: u32 = 7;
/// The longest window (about a quarter: what a dashboard shows, and a bounded read).
pub const MAX_STATS_DAYS: u32 = 90;

/// The window asked for, or why not.
pub fn stats_days(days: Option<u32>) -> Result<u32, Refusal> {
    match days.unwrap_or(DEFAULT_STATS_DAYS) {
        days @ 1..=MAX_STATS_DAYS => Ok(days),
        _ => Err((
            "invalid_days",
            format!("days is 1 to {MAX_STATS_DAYS} (default {DEFAULT_STATS_DAYS})"),
        )),
    }
}

/// Sessions that started at or after this instant are read for a window of `days` local days
/// ending on the local date of `now`: one day before the window's first, so a session that began
/// the evening before and crossed midnight into the window counts its part inside it. (A session
/// open for longer than a day is read separately: the open one.)
pub fn sessions_since(tz: Tz, now: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    let today = now.with_timezone(&tz).date_naive();
    day_start(tz, today - Duration::days(i64::from(days)))
}

/// One local day of the window.
#[derive(Debug, Serialize, ToSchema)]
pub struct DayFocusView {
    /// The local date, `YYYY-MM-DD`, in the caller's focus time zone.
    #[schema(value_type = String, example = "2026-12-03")]
    pub date: NaiveDate,
    /// Seconds in focus during that local day (a session across midnight is split).
    pub focus_seconds: i64,
    /// Sessions started on that local day.
    pub sessions: u32,
}

/// The caller's focus statistics over the last `days` local days, today included.
#[derive(Debug, Serialize, ToSchema)]
pub struct FocusStatsView {
    /// The IANA zone whose local days these are (the caller's focus settings; `UTC` by default).
    #[schema(example = "Europe/Paris")]
    pub time_zone: String,
    /// Oldest first, one entry per day, days without focus included; the last is today.
    pub days: Vec<DayFocusView>,
    pub total_focus_seconds: i64,
    /// Sessions started within the window.
    pub sessions: u32,
    /// Consecutive days with focus ending today, or yesterday when today has none yet.
    pub current_streak_days: u32,
    /// The longest run of consecutive days with focus within the window.
    pub longest_streak_days: u32,
}

impl FocusStatsView {
    pub fn new(time_zone: Tz, stats: FocusStats) -> Self {
        FocusStatsView {
            time_zone: time_zone.name().to_string(),
            days: stats
                .days
                .into_iter()
                .map(|d| DayFocusView {
                    date: d.date,
                    focus_seconds: d.focus_seconds,
                    sessions: d.sessions,
                })
                .collect(),
            total_focus_seconds: stats.total_focus_seconds,
            sessions: stats.sessions,
            current_streak_days: stats.current_streak_days,
            longest_streak_days: stats.longest_streak_days,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_default_to_a_week_and_stay_within_bounds() {
        assert_eq!(stats_days(None), Ok(7));
        assert_eq!(stats_days(Some(1)), Ok(1));
        assert_eq!(stats_days(Some(90)), Ok(90));
        assert_eq!(stats_days(Some(0)).unwrap_err().0, "invalid_days");
        assert_eq!(stats_days(Some(91)).unwrap_err().0, "invalid_days");
    }

    #[test]
    fn sessions_are_read_from_the_local_day_before_the_window() {
        // Paris, 3 December 2026 (UTC+1); a window of 2 days is 2 and 3 December, so sessions
        // are read from 1 December 00:00 Paris = 30 November 23:00 UTC.
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let now: DateTime<Utc> = "2026-12-03T12:00:00Z".parse().unwrap();
        assert_eq!(
            sessions_since(paris, now, 2),
            "2026-11-30T23:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }
}
