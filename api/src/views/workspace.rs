//! Workspace members, invitations, channel management, direct messages and the audit log.

use chorus_core::model::{AuditEntry, ChannelMember, Invite, WorkspaceMember};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
pub struct RenameWorkspaceRequest {
    /// 1 to 80 characters.
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceMemberView {
    pub user_id: Uuid,
    pub display_name: String,
    pub avatar_url: Option<String>,
    /// `owner`, `admin`, `member` or `guest`.
    pub role: String,
    #[serde(with = "chorus_protocol::timestamp")]
    pub joined_at: DateTime<Utc>,
}

impl From<WorkspaceMember> for WorkspaceMemberView {
    fn from(member: WorkspaceMember) -> Self {
        WorkspaceMemberView {
            user_id: member.user.id,
            display_name: member.user.display_name,
            avatar_url: member.user.avatar_url,
            role: member.role.as_str().to_string(),
            joined_at: member.joined_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangeRoleRequest {
    /// `owner`, `admin`, `member` or `guest`.
    pub role: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateInviteRequest {
    pub email: String,
    /// `admin`, `member` (default) or `guest`.
    pub role: Option<String>,
}

/// A new invitation. `token` is shown only here: send it to the invitee, who accepts it with
/// `POST /v1/invites/accept` while logged in with the invited e-mail.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedInviteView {
    pub invite: InviteView,
    pub token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InviteView {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub email: String,
    pub role: String,
    pub invited_by: Uuid,
    #[serde(with = "chorus_protocol::timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "chorus_protocol::timestamp")]
    pub expires_at: DateTime<Utc>,
}

impl From<Invite> for InviteView {
    fn from(invite: Invite) -> Self {
        InviteView {
            id: invite.id,
            workspace_id: invite.workspace_id,
            email: invite.email,
            role: invite.role.as_str().to_string(),
            invited_by: invite.invited_by,
            created_at: invite.created_at,
            expires_at: invite.expires_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AcceptInviteRequest {
    pub token: String,
}

/// A channel metadata change; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateChannelRequest {
    /// Lowercase letters, digits, `-` and `_`; 1 to 80; unique in the workspace.
    pub name: Option<String>,
    /// Up to 250 characters.
    pub description: Option<String>,
    /// Up to 250 characters; records who set it and when.
    pub topic: Option<String>,
    /// Make the channel private (`true`) or public (`false`).
    pub private: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelMemberView {
    pub user_id: Uuid,
    #[serde(with = "chorus_protocol::timestamp")]
    pub joined_at: DateTime<Utc>,
}

impl From<ChannelMember> for ChannelMemberView {
    fn from(member: ChannelMember) -> Self {
        ChannelMemberView {
            user_id: member.user_id,
            joined_at: member.joined_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AddChannelMemberRequest {
    pub user_id: Uuid,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct MuteRequest {
    pub muted: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct MarkReadRequest {
    /// The newest `seq` the caller has read; a lower value than the current position is ignored.
    pub seq: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadPositionView {
    pub channel_id: Uuid,
    pub last_read_seq: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct OpenDmRequest {
    /// The other participants (1 to 7 users of the workspace); the caller is added.
    pub user_ids: Vec<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryView {
    pub id: Uuid,
    pub workspace_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub action: String,
    pub target_id: Option<Uuid>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    #[serde(with = "chorus_protocol::timestamp")]
    pub at: DateTime<Utc>,
}

impl From<AuditEntry> for AuditEntryView {
    fn from(entry: AuditEntry) -> Self {
        AuditEntryView {
            id: entry.id,
            workspace_id: entry.workspace_id,
            actor_id: entry.actor_id,
            action: entry.action,
            target_id: entry.target_id,
            details: entry.details,
            at: entry.at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub entries: Vec<AuditEntryView>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<Uuid>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// The `next_before` of the previous page.
    pub before: Option<Uuid>,
    /// 1 to 200; default 50.
    pub limit: Option<usize>,
}
