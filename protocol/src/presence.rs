//! Presence on the wire: who is online, idle or offline, since when, and what they say about
//! themselves (RF-06.1–06.3, RF-07.2).
//!
//! A user's presence is one [`PresenceInfo`], whatever number of connections they hold; the
//! gateway sends it whole on every change, so a client replaces what it had instead of merging.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::limits::{MAX_STATUS_EMOJI_BYTES, MAX_STATUS_TEXT_CHARS};

/// A user's presence, from all their connections together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    /// At least one connection is open and not idle.
    Online,
    /// Every open connection said `activity: idle`.
    Idle,
    /// No connection is open (or the last one's lease ran out).
    #[default]
    Offline,
}

/// What a connection says about its user's attention (`activity` frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    Active,
    Idle,
}

/// A status the user sets over REST and others see beside their name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomStatus {
    /// Up to [`MAX_STATUS_TEXT_CHARS`] characters; may be empty when `emoji` is set.
    #[serde(default)]
    pub text: String,
    /// An emoji (a character, or a short name such as `palm_tree`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emoji: Option<String>,
    /// When the status clears itself; absent means it stays until changed.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::timestamp::option"
    )]
    pub expires_at: Option<DateTime<Utc>>,
}

/// Why a custom status was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    #[error("status text is longer than 100 characters")]
    TextTooLong,
    #[error("emoji must be 1 to 64 bytes without whitespace")]
    InvalidEmoji,
    #[error("a status needs text or an emoji")]
    Empty,
    #[error("expires_at is in the past")]
    AlreadyExpired,
}

impl CustomStatus {
    /// Checks the limits; `now` decides whether `expires_at` is already past.
    pub fn validate(&self, now: DateTime<Utc>) -> Result<(), StatusError> {
        if self.text.chars().count() > MAX_STATUS_TEXT_CHARS {
            return Err(StatusError::TextTooLong);
        }
        if let Some(emoji) = &self.emoji
            && (emoji.is_empty()
                || emoji.len() > MAX_STATUS_EMOJI_BYTES
                || emoji.chars().any(char::is_whitespace))
        {
            return Err(StatusError::InvalidEmoji);
        }
        if self.text.trim().is_empty() && self.emoji.is_none() {
            return Err(StatusError::Empty);
        }
        if self.expires_at.is_some_and(|at| at <= now) {
            return Err(StatusError::AlreadyExpired);
        }
        Ok(())
    }

    /// Whether the status still shows at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

/// The user is in a focus session: their notifications wait (docs/PROTOCOL.md, focus mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FocusPresence {
    #[serde(with = "crate::timestamp")]
    pub since: DateTime<Utc>,
    /// The planned end; `null`: until they end it.
    #[serde(with = "crate::timestamp::option")]
    pub until: Option<DateTime<Utc>>,
}

impl FocusPresence {
    /// Whether it still shows at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.until.is_none_or(|at| at > now)
    }
}

/// One user's presence as others see it (`presence` frame, `presence_subscribed`, REST).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceInfo {
    pub user_id: Uuid,
    pub status: PresenceStatus,
    /// When a connection of the user last opened, closed or renewed its lease; `null` if never.
    #[serde(with = "crate::timestamp::option")]
    pub last_seen: Option<DateTime<Utc>>,
    /// The user's custom status, if one is set and not expired.
    #[serde(default)]
    pub custom_status: Option<CustomStatus>,
    /// Present while the user is in a focus session (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub focus: Option<FocusPresence>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(text: &str, emoji: Option<&str>) -> CustomStatus {
        CustomStatus {
            text: text.into(),
            emoji: emoji.map(str::to_string),
            expires_at: None,
        }
    }

    #[test]
    fn a_status_keeps_its_limits() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert_eq!(status("lunch", Some("🍜")).validate(now), Ok(()));
        assert_eq!(status("", Some("palm_tree")).validate(now), Ok(()));
        assert_eq!(status(&"é".repeat(100), None).validate(now), Ok(()));
        assert_eq!(
            status(&"é".repeat(101), None).validate(now),
            Err(StatusError::TextTooLong)
        );
        assert_eq!(status("  ", None).validate(now), Err(StatusError::Empty));
        assert_eq!(
            status("x", Some("")).validate(now),
            Err(StatusError::InvalidEmoji)
        );
        assert_eq!(
            status("x", Some("a b")).validate(now),
            Err(StatusError::InvalidEmoji)
        );
        assert_eq!(
            status("x", Some(&"a".repeat(65))).validate(now),
            Err(StatusError::InvalidEmoji)
        );
        let expired = CustomStatus {
            expires_at: Some(now),
            ..status("x", None)
        };
        assert_eq!(expired.validate(now), Err(StatusError::AlreadyExpired));
        assert!(expired.is_live(now - chrono::Duration::milliseconds(1)));
        assert!(!expired.is_live(now));
    }

    #[test]
    fn presence_has_its_documented_spelling() {
        let info = PresenceInfo {
            user_id: Uuid::nil(),
            status: PresenceStatus::Idle,
            last_seen: Some(DateTime::from_timestamp(0, 0).unwrap()),
            custom_status: Some(status("lunch", None)),
            focus: None,
        };
        let json = serde_json::to_value(&info).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "user_id": Uuid::nil(), "status": "idle", "last_seen": "1970-01-01T00:00:00.000Z",
                "custom_status": {"text": "lunch"}
            })
        );
        assert_eq!(serde_json::from_value::<PresenceInfo>(json).unwrap(), info);
    }
}
