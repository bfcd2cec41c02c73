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
    #[serde(default)]
    pub avatar_url: Option<String>,
    /// IANA time zone name, e.g. `Europe/Paris`.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Set when an admin disabled the account: it cannot log in and has no active session.
    #[serde(default)]
    pub disabled_at: Option<DateTime<Utc>>,
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

/// A loss of access the metadata store has recorded: a login session revoked, or a user disabled.
/// Gateways look these up periodically ([`crate::MetadataStore::access_revoked_since`]) to end
/// the sockets an access notice did not reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RevokedAccess {
    pub user_id: Uuid,
    /// The revoked session; `None` when the user was disabled.
    pub session_id: Option<Uuid>,
    /// When the session was revoked or the user disabled.
    pub at: DateTime<Utc>,
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
    /// What a user may do in a channel, from what the store knows of the two. A private channel
    /// or direct message is [`ChannelAccess::Invisible`] to workspace members who are not in it:
    /// its existence is not revealed (`not_found`, never `forbidden`).
    pub fn decide(kind: ChannelKind, archived: bool, in_workspace: bool, in_channel: bool) -> Self {
        match (in_workspace, in_channel, kind) {
            (false, _, _) => ChannelAccess::Invisible,
            (true, true, _) => ChannelAccess::Member { archived },
            (true, false, ChannelKind::Public) => ChannelAccess::NotMember,
            (true, false, ChannelKind::Private | ChannelKind::Dm) => ChannelAccess::Invisible,
        }
    }

    pub fn can_read(self) -> bool {
        matches!(self, ChannelAccess::Member { .. })
    }

    pub fn can_post(self) -> bool {
        matches!(self, ChannelAccess::Member { archived: false })
    }
}

/// A change to a user's profile; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileUpdate {
    pub display_name: Option<String>,
    /// `Some(None)` clears the avatar.
    pub avatar_url: Option<Option<String>>,
    /// An IANA zone name such as `Europe/Paris`; `Some(None)` clears it.
    pub time_zone: Option<Option<String>>,
}

/// A member of a workspace, with the user's public profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkspaceMember {
    pub user: User,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

/// An invitation to join a workspace, sent to an e-mail address. The token itself is given to
/// the inviter once; only its SHA-256 is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invite {
    pub id: Uuid,
    pub workspace_id: Uuid,
    /// Lowercase.
    pub email: String,
    /// The role the invitee gets (never owner).
    pub role: Role,
    pub token_hash: String,
    pub invited_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub accepted_by: Option<Uuid>,
    pub accepted_at: Option<DateTime<Utc>>,
}

/// A change to a channel's metadata; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    /// New topic, who set it and when.
    pub topic: Option<(String, Uuid, DateTime<Utc>)>,
    pub kind: Option<ChannelKind>,
    pub is_archived: Option<bool>,
}

/// A user's membership of a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelMember {
    pub channel_id: Uuid,
    pub user_id: Uuid,
    pub joined_at: DateTime<Utc>,
    /// The newest channel sequence number the member has read ("mark read"); never decreases.
    pub last_read_seq: u64,
    pub muted: bool,
}

/// One entry of the audit log (RF-01.6). Never holds a secret: no password, token or hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: Uuid,
    /// The workspace the action happened in; `None` for account actions such as logins.
    pub workspace_id: Option<Uuid>,
    /// Who acted; `None` when unknown (a failed login for an unknown e-mail).
    pub actor_id: Option<Uuid>,
    /// snake_case: `login_succeeded`, `login_failed`, `role_changed`, `member_removed`,
    /// `message_deleted`, `channel_archived`, `channel_unarchived`, `user_disabled`, …
    pub action: String,
    /// The user, channel or message acted on.
    pub target_id: Option<Uuid>,
    /// Action-specific facts (old and new role, channel seq, e-mail of a failed login, …).
    pub details: serde_json::Value,
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_sees_a_channel_depends_on_its_kind() {
        use ChannelAccess::*;
        for kind in [ChannelKind::Public, ChannelKind::Private, ChannelKind::Dm] {
            assert_eq!(ChannelAccess::decide(kind, false, false, false), Invisible);
            assert_eq!(
                ChannelAccess::decide(kind, true, true, true),
                Member { archived: true }
            );
        }
        assert_eq!(
            ChannelAccess::decide(ChannelKind::Public, false, true, false),
            NotMember
        );
        assert_eq!(
            ChannelAccess::decide(ChannelKind::Private, false, true, false),
            Invisible
        );
        assert_eq!(
            ChannelAccess::decide(ChannelKind::Dm, false, true, false),
            Invisible
        );
    }
}
