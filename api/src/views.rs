//! The JSON shapes of requests and responses (documented in the OpenAPI document).

mod account;
mod bots;
mod commands;
mod focus;
mod focus_stats;
mod messages;
mod workspace;

pub use account::*;
pub use bots::*;
pub use commands::*;
pub use focus::*;
pub use focus_stats::*;
pub use messages::*;
pub use workspace::*;

use chorus_core::model::{Channel, ChannelMember, Role, User, Workspace};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    pub email: String,
    /// 8 to 256 characters.
    pub password: String,
    /// Up to 80 characters; defaults to the part of the e-mail before `@`.
    pub display_name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    #[serde(with = "chorus_protocol::timestamp")]
    pub created_at: DateTime<Utc>,
    pub avatar_url: Option<String>,
    /// IANA zone name.
    pub time_zone: Option<String>,
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        UserView {
            id: user.id,
            email: user.email,
            display_name: user.display_name,
            created_at: user.created_at,
            avatar_url: user.avatar_url,
            time_zone: user.time_zone,
        }
    }
}

/// Credentials handed out by login and refresh.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// JWT for `Authorization: Bearer` and the WebSocket `identify` frame; valid 1 hour.
    pub access_token: String,
    /// Single-use: each refresh returns a new one. Valid 7 days.
    pub refresh_token: String,
    pub token_type: &'static str,
    /// Seconds until `access_token` expires.
    pub expires_in: u64,
    pub session_id: Uuid,
    pub user: UserView,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateWorkspaceRequest {
    /// 1 to 80 characters.
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceView {
    pub id: Uuid,
    pub name: String,
    pub created_by: Uuid,
    #[serde(with = "chorus_protocol::timestamp")]
    pub created_at: DateTime<Utc>,
    /// The caller's role: `owner`, `admin`, `member` or `guest`.
    pub role: String,
}

impl WorkspaceView {
    pub fn new(workspace: Workspace, role: Role) -> Self {
        WorkspaceView {
            id: workspace.id,
            name: workspace.name,
            created_by: workspace.created_by,
            created_at: workspace.created_at,
            role: role.as_str().to_string(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AddMemberRequest {
    pub email: String,
    /// `admin`, `member` (default) or `guest`.
    pub role: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    pub workspace_id: Uuid,
    pub user_id: Uuid,
    pub role: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateChannelRequest {
    /// Lowercase letters, digits, `-` and `_`; 1 to 80 characters; unique in the workspace.
    pub name: String,
    /// Up to 250 characters.
    pub description: Option<String>,
    /// Private channels are visible only to their members.
    #[serde(default)]
    pub private: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelView {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub description: String,
    /// `public`, `private` or `dm`.
    pub kind: String,
    pub topic: String,
    pub topic_set_by: Option<Uuid>,
    #[serde(with = "chorus_protocol::timestamp::option")]
    pub topic_set_at: Option<DateTime<Utc>>,
    pub is_archived: bool,
    pub created_by: Uuid,
    #[serde(with = "chorus_protocol::timestamp")]
    pub created_at: DateTime<Utc>,
    /// Whether the caller is a member (in listings and single reads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_member: Option<bool>,
    /// The caller's read position (members only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_read_seq: Option<u64>,
    /// Whether the caller muted the channel (members only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub muted: Option<bool>,
    /// The channel's newest event `seq` (in listings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
    /// Messages after the caller's read position, counted up to 1,000 (members, in listings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread_count: Option<u64>,
}

impl ChannelView {
    pub fn new(channel: Channel, is_member: Option<bool>) -> Self {
        ChannelView {
            id: channel.id,
            workspace_id: channel.workspace_id,
            name: channel.name,
            description: channel.description,
            kind: channel.kind.as_str().to_string(),
            topic: channel.topic,
            topic_set_by: channel.topic_set_by,
            topic_set_at: channel.topic_set_at,
            is_archived: channel.is_archived,
            created_by: channel.created_by,
            created_at: channel.created_at,
            is_member,
            last_read_seq: None,
            muted: None,
            last_seq: None,
            unread_count: None,
        }
    }

    /// The view for a caller with this membership (or none).
    pub fn for_member(channel: Channel, membership: Option<&ChannelMember>) -> Self {
        ChannelView {
            last_read_seq: membership.map(|m| m.last_read_seq),
            muted: membership.map(|m| m.muted),
            ..ChannelView::new(channel, Some(membership.is_some()))
        }
    }
}

/// Where to open the WebSocket: the API's host, this port, this path.
#[derive(Debug, Serialize, ToSchema)]
pub struct GatewayView {
    pub port: u16,
    /// Any path is accepted; this is the conventional one.
    pub path: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}
