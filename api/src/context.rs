//! What a handler needs to know about the caller before deciding: their role in a workspace,
//! and their standing in a channel.
//!
//! A workspace the caller is not in, and a channel of such a workspace, do not exist for them
//! (404, never 403): ids of other tenants reveal nothing.

use chorus_core::model::{Channel, ChannelAccess, ChannelKind, ChannelMember, Role};
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::policy::{self, Action};

/// The caller's role in a workspace; 404 when they are not in it.
pub async fn role_in(state: &AppState, workspace: Uuid, user: Uuid) -> ApiResult<Role> {
    state
        .api
        .store
        .workspace_role(workspace, user)
        .await?
        .ok_or_else(|| ApiError::not_found("workspace"))
}

/// 403 unless `role` may do `action`.
pub fn require(role: Role, action: Action, refusal: &str) -> ApiResult<()> {
    if policy::allows(role, action) {
        Ok(())
    } else {
        Err(ApiError::forbidden(refusal))
    }
}

/// A channel seen by one caller.
pub struct ChannelContext {
    pub channel: Channel,
    pub user: Uuid,
    pub role: Role,
    pub membership: Option<ChannelMember>,
}

impl ChannelContext {
    /// Loads the channel and the caller's standing; 404 when the channel does not exist or is
    /// in a workspace the caller is not in.
    pub async fn load(state: &AppState, channel_id: Uuid, user: Uuid) -> ApiResult<Self> {
        // One query, not three: this runs before every channel-scoped request (history pages
        // under load spent most of their metadata time here).
        let standing = state
            .api
            .store
            .channel_standing(channel_id, user)
            .await?
            .ok_or_else(|| ApiError::not_found("channel"))?;
        let channel = standing.channel;
        let role = standing
            .role
            .ok_or_else(|| ApiError::not_found("channel"))?;
        let membership = standing.membership;
        if ChannelAccess::decide(
            channel.kind,
            channel.is_archived,
            true,
            membership.is_some(),
        ) == ChannelAccess::Invisible
        {
            // A private channel or DM the caller is not in: as if it did not exist.
            return Err(ApiError::not_found("channel"));
        }
        Ok(ChannelContext {
            channel,
            user,
            role,
            membership,
        })
    }

    pub fn is_member(&self) -> bool {
        self.membership.is_some()
    }

    /// 403 unless the caller is a member (reading history, reacting, marking read).
    pub fn require_member(&self) -> ApiResult<&ChannelMember> {
        self.membership
            .as_ref()
            .ok_or_else(|| ApiError::forbidden("you are not a member of this channel"))
    }

    /// 403 unless the caller is a member and the channel is not archived (posting, reacting).
    pub fn require_writable(&self) -> ApiResult<()> {
        self.require_member()?;
        if self.channel.is_archived {
            return Err(archived());
        }
        Ok(())
    }

    /// 403 unless the caller may manage the channel (its creator while a member, or an admin);
    /// direct messages are managed by nobody.
    pub fn require_manager(&self) -> ApiResult<()> {
        if self.channel.kind == ChannelKind::Dm {
            return Err(ApiError::forbidden("direct messages cannot be changed"));
        }
        let creator = self.channel.created_by == self.user && self.is_member();
        if policy::may_manage_channel(self.role, creator) {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "only the channel's creator and workspace admins manage a channel",
            ))
        }
    }
}

/// The answer to a write into an archived channel.
pub fn archived() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "channel_archived",
        "the channel is archived and read-only",
    )
}
