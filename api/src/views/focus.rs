//! Focus mode's JSON shapes, and the checks that turn a request into settings (pure,
//! unit-tested): a known time zone, a schedule of named days with `HH:MM` times, bounded rule
//! lists, a threshold within 0–100, an automatic reply of at most 500 characters.

use chorus_core::focus::policy::FocusPolicy;
use chorus_core::focus::priority::{FocusRules, MAX_RULE_ITEMS};
use chorus_core::focus::schedule::{FocusSource, WeeklySchedule};
use chorus_core::focus::store::MAX_AUTO_REPLY_CHARS;
use chorus_core::focus::{FocusSession, FocusSettings};
use chorus_protocol::{DigestChannel, FocusDigest};
use chrono::{DateTime, NaiveTime, Utc, Weekday};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::routes::notifications::NotificationView;

/// Longest keyword, in characters.
pub const MAX_KEYWORD_CHARS: usize = 100;

/// A weekly focus window in the user's time zone.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleView {
    /// Days a window starts on: `mon` … `sun`.
    #[schema(example = json!(["mon", "tue", "wed", "thu", "fri"]))]
    pub days: Vec<String>,
    /// Local start, `HH:MM`.
    #[schema(example = "09:00")]
    pub start: String,
    /// Local end, `HH:MM`; not after `start` means the next day (22:00–06:00).
    #[schema(example = "11:00")]
    pub end: String,
}

/// What gets through while the user focuses (docs/PROTOCOL.md, "Focus mode").
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesView {
    /// People whose DMs and messages get through (at most 50).
    #[serde(default)]
    pub senders: Vec<Uuid>,
    /// Let mentions of the user through.
    #[serde(default)]
    pub mentions: bool,
    /// Channels whose notifications score higher (at most 50).
    #[serde(default)]
    pub channels: Vec<Uuid>,
    /// Words that make a notification urgent, matched case-insensitively (at most 50, each up
    /// to 100 characters).
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Deliver at or above this score, 0–100; null for 70.
    #[serde(default)]
    pub min_priority: Option<u8>,
}

/// A user's focus settings, as set and as shown.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FocusSettingsView {
    /// IANA zone of the schedule's local times; default `UTC`.
    #[serde(default = "utc")]
    #[schema(example = "Europe/Paris")]
    pub time_zone: String,
    /// null: no schedule (sessions only by hand).
    #[serde(default)]
    pub schedule: Option<ScheduleView>,
    #[serde(default)]
    pub rules: RulesView,
    /// Sent once per sender per session in reply to a DM received in focus; null for none.
    #[serde(default)]
    pub auto_reply: Option<String>,
}

fn utc() -> String {
    "UTC".into()
}

/// Why settings were refused: an error code and a message.
pub type Refusal = (&'static str, String);

fn day(text: &str) -> Option<Weekday> {
    let day: Weekday = text.parse().ok()?;
    Some(day)
}

fn day_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "mon",
        Weekday::Tue => "tue",
        Weekday::Wed => "wed",
        Weekday::Thu => "thu",
        Weekday::Fri => "fri",
        Weekday::Sat => "sat",
        Weekday::Sun => "sun",
    }
}

fn time(text: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(text, "%H:%M").ok()
}

fn schedule_from(view: &ScheduleView) -> Result<WeeklySchedule, Refusal> {
    let bad = |message: String| ("invalid_schedule", message);
    let mut days = Vec::new();
    for text in &view.days {
        let d = day(text).ok_or_else(|| bad(format!("unknown day {text:?}: use mon … sun")))?;
        if !days.contains(&d) {
            days.push(d);
        }
    }
    if days.is_empty() {
        return Err(bad("a schedule needs at least one day".into()));
    }
    let start = time(&view.start).ok_or_else(|| bad("start must be HH:MM".into()))?;
    let end = time(&view.end).ok_or_else(|| bad("end must be HH:MM".into()))?;
    if start == end {
        return Err(bad("start and end are the same time".into()));
    }
    Ok(WeeklySchedule { days, start, end })
}

fn rules_from(view: RulesView) -> Result<FocusRules, Refusal> {
    let bad = |message: String| ("invalid_rules", message);
    if [view.senders.len(), view.channels.len(), view.keywords.len()]
        .iter()
        .any(|n| *n > MAX_RULE_ITEMS)
    {
        return Err(bad(format!(
            "at most {MAX_RULE_ITEMS} senders, channels and keywords each"
        )));
    }
    let mut keywords = Vec::new();
    for keyword in view.keywords {
        let keyword = keyword.trim().to_string();
        if keyword.is_empty() || keyword.chars().count() > MAX_KEYWORD_CHARS {
            return Err(bad(format!(
                "a keyword has 1 to {MAX_KEYWORD_CHARS} characters"
            )));
        }
        keywords.push(keyword);
    }
    if view.min_priority.is_some_and(|p| p > 100) {
        return Err(bad("min_priority is 0 to 100".into()));
    }
    Ok(FocusRules {
        senders: view.senders,
        mentions: view.mentions,
        channels: view.channels,
        keywords,
        min_priority: view.min_priority,
    })
}

/// An IANA time zone name, or `invalid_time_zone`.
fn time_zone_from(name: &str) -> Result<chrono_tz::Tz, Refusal> {
    name.parse().map_err(|_| {
        (
            "invalid_time_zone",
            format!("unknown time zone {name:?} (an IANA name such as Europe/Paris)"),
        )
    })
}

/// The settings a request asks for, or why not.
pub fn settings_from(view: FocusSettingsView) -> Result<FocusSettings, Refusal> {
    let time_zone = time_zone_from(&view.time_zone)?;
    let schedule = view.schedule.as_ref().map(schedule_from).transpose()?;
    let rules = rules_from(view.rules)?;
    let auto_reply = match view.auto_reply.map(|text| text.trim().to_string()) {
        Some(text) if text.chars().count() > MAX_AUTO_REPLY_CHARS => {
            return Err((
                "invalid_auto_reply",
                format!("an automatic reply has at most {MAX_AUTO_REPLY_CHARS} characters"),
            ));
        }
        Some(text) if text.is_empty() => None,
        other => other,
    };
    Ok(FocusSettings {
        time_zone,
        schedule,
        rules,
        auto_reply,
    })
}

impl From<&FocusSettings> for FocusSettingsView {
    fn from(settings: &FocusSettings) -> Self {
        FocusSettingsView {
            time_zone: settings.time_zone.name().to_string(),
            schedule: settings.schedule.as_ref().map(schedule_view),
            rules: RulesView {
                senders: settings.rules.senders.clone(),
                mentions: settings.rules.mentions,
                channels: settings.rules.channels.clone(),
                keywords: settings.rules.keywords.clone(),
                min_priority: settings.rules.min_priority,
            },
            auto_reply: settings.auto_reply.clone(),
        }
    }
}

/// A workspace's focus policy: the hours in which its members may start a focus session.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FocusPolicyView {
    /// IANA zone of the hours.
    #[schema(example = "Europe/Paris")]
    pub time_zone: String,
    /// The allowed windows: days they start on, local start and end (`HH:MM`; an end not after
    /// the start runs past midnight).
    pub hours: ScheduleView,
}

/// The workspace's focus policy; null: members may focus at any time.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceFocusPolicy {
    pub policy: Option<FocusPolicyView>,
}

/// The policy a request asks for, or why not (`invalid_time_zone`, `invalid_schedule`).
pub fn policy_from(view: &FocusPolicyView) -> Result<FocusPolicy, Refusal> {
    let time_zone = time_zone_from(&view.time_zone)?;
    Ok(FocusPolicy {
        time_zone,
        hours: schedule_from(&view.hours)?,
    })
}

impl From<&FocusPolicy> for FocusPolicyView {
    fn from(policy: &FocusPolicy) -> Self {
        FocusPolicyView {
            time_zone: policy.time_zone.name().to_string(),
            hours: schedule_view(&policy.hours),
        }
    }
}

fn schedule_view(s: &WeeklySchedule) -> ScheduleView {
    ScheduleView {
        days: s.days.iter().map(|d| day_name(*d).to_string()).collect(),
        start: s.start.format("%H:%M").to_string(),
        end: s.end.format("%H:%M").to_string(),
    }
}

/// A focus session.
#[derive(Debug, Serialize, ToSchema)]
pub struct FocusSessionView {
    pub id: Uuid,
    /// `manual` (started by the user) or `schedule`.
    #[schema(example = "manual")]
    pub source: String,
    #[serde(with = "chorus_protocol::timestamp")]
    pub started_at: DateTime<Utc>,
    /// The planned end; null: until the user ends it.
    #[serde(with = "chorus_protocol::timestamp::option")]
    pub ends_at: Option<DateTime<Utc>>,
}

impl From<FocusSession> for FocusSessionView {
    fn from(session: FocusSession) -> Self {
        FocusSessionView {
            id: session.id,
            source: match session.source {
                FocusSource::Manual => "manual",
                FocusSource::Schedule => "schedule",
            }
            .into(),
            started_at: session.started_at,
            ends_at: session.ends_at,
        }
    }
}

/// The caller's focus: the session in effect, if any, and their settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct FocusView {
    pub session: Option<FocusSessionView>,
    pub settings: FocusSettingsView,
}

/// Start a session now: for `duration_minutes` (1–1440), until `until`, or (neither) until
/// ended by hand. When one is in effect, its planned end becomes this one.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartFocusRequest {
    #[serde(default)]
    pub duration_minutes: Option<u32>,
    #[serde(default, with = "chorus_protocol::timestamp::option")]
    pub until: Option<DateTime<Utc>>,
}

/// Longest session a duration may ask for.
pub const MAX_FOCUS_MINUTES: u32 = 24 * 60;

/// The planned end a start request asks for, or why not.
pub fn planned_end(
    request: &StartFocusRequest,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, Refusal> {
    let bad = |message: &str| ("invalid_duration", message.to_string());
    match (request.duration_minutes, request.until) {
        (Some(_), Some(_)) => Err(bad("give duration_minutes or until, not both")),
        (Some(minutes), None) if (1..=MAX_FOCUS_MINUTES).contains(&minutes) => {
            Ok(Some(now + chrono::Duration::minutes(i64::from(minutes))))
        }
        (Some(_), None) => Err(bad("duration_minutes is 1 to 1440")),
        (None, Some(until)) if until > now => Ok(Some(until)),
        (None, Some(_)) => Err(bad("until is in the past")),
        (None, None) => Ok(None),
    }
}

/// The held notifications of one channel.
#[derive(Debug, Serialize, ToSchema)]
pub struct DigestChannelView {
    pub workspace_id: Uuid,
    /// Absent for invitations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<Uuid>,
    /// How many were held in this channel.
    pub count: u64,
    /// At most 3, highest priority first.
    pub top: Vec<NotificationView>,
}

/// What a focus session held back (the `focus_digest` frame carries the same).
#[derive(Debug, Serialize, ToSchema)]
pub struct FocusDigestView {
    pub id: Uuid,
    pub session_id: Uuid,
    #[serde(with = "chorus_protocol::timestamp")]
    pub started_at: DateTime<Utc>,
    #[serde(with = "chorus_protocol::timestamp")]
    pub ended_at: DateTime<Utc>,
    /// Held notifications over every channel.
    pub total: u64,
    pub channels: Vec<DigestChannelView>,
}

impl From<FocusDigest> for FocusDigestView {
    fn from(digest: FocusDigest) -> Self {
        FocusDigestView {
            id: digest.id,
            session_id: digest.session_id,
            started_at: digest.started_at,
            ended_at: digest.ended_at,
            total: digest.total,
            channels: digest
                .channels
                .into_iter()
                .map(|c: DigestChannel| DigestChannelView {
                    workspace_id: c.workspace_id,
                    channel_id: c.channel_id,
                    count: c.count,
                    top: c.top.into_iter().map(Into::into).collect(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FocusDigestList {
    /// Newest first.
    pub digests: Vec<FocusDigestView>,
}

/// A workspace member in focus now.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberInFocus {
    pub user_id: Uuid,
    #[serde(with = "chorus_protocol::timestamp")]
    pub since: DateTime<Utc>,
    /// The planned end; null: until they end it.
    #[serde(with = "chorus_protocol::timestamp::option")]
    pub until: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TeamFocus {
    /// The members of the workspace in a focus session now, longest in focus first.
    pub in_focus: Vec<MemberInFocus>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(json: serde_json::Value) -> FocusSettingsView {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn good_settings_round_trip() {
        let json = serde_json::json!({
            "time_zone": "Europe/Paris",
            "schedule": {"days": ["mon", "Friday", "mon"], "start": "09:00", "end": "11:30"},
            "rules": {"mentions": true, "keywords": [" outage "], "min_priority": 60},
            "auto_reply": "back at 11:30"
        });
        let settings = settings_from(view(json)).unwrap();
        let back = FocusSettingsView::from(&settings);
        let schedule = back.schedule.unwrap();
        assert_eq!(schedule.days, ["mon", "fri"]);
        assert_eq!(
            (schedule.start.as_str(), schedule.end.as_str()),
            ("09:00", "11:30")
        );
        assert_eq!(back.rules.keywords, ["outage"]);
        assert_eq!(back.auto_reply.as_deref(), Some("back at 11:30"));
        assert_eq!(back.time_zone, "Europe/Paris");
    }

    #[test]
    fn bad_settings_are_refused_with_their_code() {
        let code = |json| settings_from(view(json)).unwrap_err().0;
        assert_eq!(
            code(serde_json::json!({"time_zone": "Mars/Olympus"})),
            "invalid_time_zone"
        );
        assert_eq!(
            code(
                serde_json::json!({"schedule": {"days": ["someday"], "start": "09:00", "end": "10:00"}})
            ),
            "invalid_schedule"
        );
        assert_eq!(
            code(serde_json::json!({"schedule": {"days": [], "start": "09:00", "end": "10:00"}})),
            "invalid_schedule"
        );
        assert_eq!(
            code(serde_json::json!({"schedule": {"days": ["mon"], "start": "9h", "end": "10:00"}})),
            "invalid_schedule"
        );
        assert_eq!(
            code(serde_json::json!({"rules": {"min_priority": 101}})),
            "invalid_rules"
        );
        assert_eq!(
            code(serde_json::json!({"rules": {"keywords": [""]}})),
            "invalid_rules"
        );
        assert_eq!(
            code(serde_json::json!({"auto_reply": "x".repeat(501)})),
            "invalid_auto_reply"
        );
    }

    #[test]
    fn a_start_asks_for_a_duration_an_end_or_neither() {
        let now: DateTime<Utc> = "2026-12-04T12:00:00Z".parse().unwrap();
        let start = |duration_minutes, until| StartFocusRequest {
            duration_minutes,
            until,
        };
        assert_eq!(
            planned_end(&start(Some(25), None), now),
            Ok(Some("2026-12-04T12:25:00Z".parse().unwrap()))
        );
        assert_eq!(planned_end(&start(None, None), now), Ok(None));
        assert!(planned_end(&start(Some(0), None), now).is_err());
        assert!(planned_end(&start(Some(1441), None), now).is_err());
        assert!(planned_end(&start(None, Some(now)), now).is_err());
        assert!(planned_end(&start(Some(5), Some(now)), now).is_err());
    }
}
