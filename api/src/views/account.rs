//! Profiles, passwords and sessions.

use chorus_core::model::{Session, User};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A profile change. Absent fields stay as they are; `null` clears `avatar_url` or `time_zone`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateProfileRequest {
    /// 1 to 80 characters.
    pub display_name: Option<String>,
    /// An `https://` URL up to 500 characters, or `null`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub avatar_url: Option<Option<String>>,
    /// An IANA zone name such as `Europe/Paris` (up to 64 characters), or `null`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub time_zone: Option<Option<String>>,
}

/// Tells "absent" (`None`) from "null" (`Some(None)`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    /// 8 to 256 characters.
    pub new_password: String,
}

/// What other users see of a user.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileView {
    pub id: Uuid,
    pub display_name: String,
    pub avatar_url: Option<String>,
    pub time_zone: Option<String>,
}

impl From<User> for ProfileView {
    fn from(user: User) -> Self {
        ProfileView {
            id: user.id,
            display_name: user.display_name,
            avatar_url: user.avatar_url,
            time_zone: user.time_zone,
        }
    }
}

/// One of the caller's active sessions (never its tokens).
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    #[serde(with = "chorus_protocol::timestamp")]
    pub created_at: DateTime<Utc>,
    /// When the session ends unless refreshed.
    #[serde(with = "chorus_protocol::timestamp")]
    pub expires_at: DateTime<Utc>,
    /// The session this request was made with.
    pub current: bool,
}

impl SessionView {
    pub fn new(session: Session, current: Uuid) -> Self {
        SessionView {
            id: session.id,
            created_at: session.created_at,
            expires_at: session.refresh_expires_at,
            current: session.id == current,
        }
    }
}
