//! Records of the metadata store.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A registered person or bot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub created_at: DateTime<Utc>,
}

/// A user with the Argon2id PHC string of their password, for login only.
#[derive(Clone, Debug)]
pub struct UserCredentials {
    pub user: User,
    pub password_hash: String,
}

/// A login session: one refresh-token chain. Access tokens carry the session id, so revoking the
/// session stops them too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub id: Uuid,
    pub user_id: Uuid,
    /// SHA-256 of the current refresh token; the token itself is never stored.
    pub refresh_hash: String,
    pub refresh_expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Session {
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.refresh_expires_at > now
    }
}

/// A workspace role, strongest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Member,
    Guest,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Guest => "guest",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            "guest" => Some(Role::Guest),
            _ => None,
        }
    }

    /// Owners and admins manage members and channels.
    pub fn is_admin(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

/// An isolated tenant: users, channels and messages of one workspace are never visible from another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    pub id: Uuid,
    pub name: String,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
}

/// Whether anyone in the workspace may join, only invited members, or it is a direct message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Public,
    Private,
    Dm,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Public => "public",
            ChannelKind::Private => "private",
            ChannelKind::Dm => "dm",
        }
    }

    pub fn parse(text: &str) -> Option<ChannelKind> {
        match text {
            "public" => Some(ChannelKind::Public),
            "private" => Some(ChannelKind::Private),
            "dm" => Some(ChannelKind::Dm),
            _ => None,
        }
    }
}

/// A channel's metadata. Its messages and sequence live with the channel service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub description: String,
    pub kind: ChannelKind,
    pub topic: String,
    pub topic_set_by: Option<Uuid>,
    pub topic_set_at: Option<DateTime<Utc>>,
    pub is_archived: bool,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
}

/// What a user may do with a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelAccess {
    /// The channel does not exist, or is in a workspace the user is not in.
    Invisible,
    /// The user is in the workspace but not in the channel.
    NotMember,
    /// The user is a member of the channel.
    Member { archived: bool },
}

impl ChannelAccess {
    pub fn can_read(self) -> bool {
        matches!(self, ChannelAccess::Member { .. })
    }

    pub fn can_post(self) -> bool {
        matches!(self, ChannelAccess::Member { archived: false })
    }
}
