//! The metadata store: users, sessions, workspaces, channels and memberships (not messages).

mod bot_store;
pub mod conformance;
pub(crate) mod postgres;
mod sqlite;

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::StoreError;
use crate::model::{
    AuditEntry, Channel, ChannelAccess, ChannelKind, ChannelMember, ChannelUpdate, Invite,
    ProfileUpdate, RevokedAccess, Role, Session, User, UserCredentials, Workspace, WorkspaceMember,
};

pub use bot_store::BotStore;
pub use postgres::PostgresMetadataStore;
pub use sqlite::SqliteMetadataStore;

/// The identity of a direct-message channel, the same in every backend: the sorted, distinct
/// members; their key (ids joined by ','); and the channel's name, which must be unique in the
/// workspace like any channel name: "dm-" and 16 hex digits of the key's SHA-256.
pub(crate) fn dm_identity(members: &[Uuid]) -> (Vec<Uuid>, String, String) {
    use sha2::{Digest, Sha256};

    let mut members = members.to_vec();
    members.sort();
    members.dedup();
    let key = members
        .iter()
        .map(Uuid::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    (members, key, format!("dm-{hex}"))
}

/// A channel as listed to one user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelListing {
    pub channel: Channel,
    /// The caller's membership (read position, mute), `None` when not a member.
    pub membership: Option<ChannelMember>,
}

/// A channel and one user's standing in it, read together: what every channel-scoped request
/// checks before it does anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelStanding {
    pub channel: Channel,
    /// The user's role in the channel's workspace, `None` when not a workspace member.
    pub role: Option<Role>,
    /// The user's membership of the channel, `None` when not a member.
    pub membership: Option<ChannelMember>,
}

/// The standings found by one query, put back in the order the channels were asked in (`None`
/// for a channel that does not exist; a channel asked twice is answered twice).
pub(crate) fn in_order_asked(
    asked: &[Uuid],
    mut found: HashMap<Uuid, ChannelStanding>,
) -> Vec<Option<ChannelStanding>> {
    // Where each channel is asked last: there its standing moves out, earlier askings clone it.
    let last: HashMap<Uuid, usize> = asked.iter().enumerate().map(|(i, c)| (*c, i)).collect();
    asked
        .iter()
        .enumerate()
        .map(|(i, channel)| {
            if last[channel] == i {
                found.remove(channel)
            } else {
                found.get(channel).cloned()
            }
        })
        .collect()
}

impl ChannelStanding {
    /// From a joined row's parts, the role as stored (`owner`, `admin`…), as both backends read it.
    pub(crate) fn from_row_parts(
        channel: Channel,
        role: Option<String>,
        membership: Option<ChannelMember>,
    ) -> Result<Self, StoreError> {
        let role = role
            .map(|text| {
                Role::parse(&text)
                    .ok_or_else(|| StoreError::Backend(format!("unknown role {text}")))
            })
            .transpose()?;
        Ok(ChannelStanding {
            channel,
            role,
            membership,
        })
    }

    /// What this standing allows (see [`ChannelAccess::decide`]).
    pub fn access(&self) -> ChannelAccess {
        ChannelAccess::decide(
            self.channel.kind,
            self.channel.is_archived,
            self.role.is_some(),
            self.membership.is_some(),
        )
    }
}

/// Fields of a channel to create.
#[derive(Clone, Debug)]
pub struct NewChannel {
    pub workspace_id: Uuid,
    pub name: String,
    pub description: String,
    pub kind: ChannelKind,
    pub created_by: Uuid,
}

/// Metadata storage. Implementations must be safe to share between every task of a node. Bots
/// are stored through [`BotStore`], which every metadata store also is.
#[async_trait]
pub trait MetadataStore: BotStore + Send + Sync + 'static {
    /// The notifications and notification levels kept in the same database.
    fn notifications(&self) -> &dyn crate::notify::NotificationStore;
    /// Focus mode's settings, sessions, held notifications and digests, in the same database.
    fn focus(&self) -> &dyn crate::focus::FocusStore;

    /// The outgoing webhooks' subscriptions and delivery queue kept in the same database.
    fn subscriptions(&self) -> &dyn crate::outgoing::SubscriptionStore;

    /// Slash commands and their invocations, in the same database.
    fn commands(&self) -> &dyn crate::commands::CommandStore;
    /// Retention policies and legal holds, in the same database.
    fn retention(&self) -> &dyn crate::retention::RetentionStore;
    /// Workspace limits (plans) and usage, in the same database.
    fn limits(&self) -> &dyn crate::limits::WorkspaceLimitsStore;

    /// Creates a user. `StoreError::Conflict` if the e-mail (compared lowercase) is taken.
    async fn create_user(
        &self,
        email: &str,
        display_name: &str,
        password_hash: &str,
    ) -> Result<User, StoreError>;
    async fn user(&self, id: Uuid) -> Result<Option<User>, StoreError>;
    async fn user_by_email(&self, email: &str) -> Result<Option<UserCredentials>, StoreError>;

    async fn create_session(&self, session: &Session) -> Result<(), StoreError>;
    async fn session(&self, id: Uuid) -> Result<Option<Session>, StoreError>;
    /// Replaces the refresh token of an active session if `old_hash` is still its current one.
    /// Returns false when it was not (already rotated: a replayed token) or the session is revoked.
    async fn rotate_refresh(
        &self,
        session_id: Uuid,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    async fn revoke_session(&self, session_id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Creates a workspace with `owner` as its owner.
    async fn create_workspace(&self, name: &str, owner: Uuid) -> Result<Workspace, StoreError>;
    async fn workspace(&self, id: Uuid) -> Result<Option<Workspace>, StoreError>;
    /// The workspaces `user` belongs to, with their role in each.
    async fn workspaces_of(&self, user: Uuid) -> Result<Vec<(Workspace, Role)>, StoreError>;
    async fn workspace_role(&self, workspace: Uuid, user: Uuid)
    -> Result<Option<Role>, StoreError>;
    /// Adds a member (or changes the role of an existing one).
    async fn set_workspace_member(
        &self,
        workspace: Uuid,
        user: Uuid,
        role: Role,
    ) -> Result<(), StoreError>;

    /// Creates a channel and makes its creator a member. `Conflict` if the name is taken in the
    /// workspace.
    async fn create_channel(&self, channel: &NewChannel) -> Result<Channel, StoreError>;
    async fn channel(&self, id: Uuid) -> Result<Option<Channel>, StoreError>;
    /// Channels of a workspace that `user` may see: every public channel and the private ones
    /// `user` is a member of.
    async fn channels_visible_to(
        &self,
        workspace: Uuid,
        user: Uuid,
    ) -> Result<Vec<ChannelListing>, StoreError>;
    /// Adds `user` to the channel's members; adding an existing member is not an error.
    async fn add_channel_member(&self, channel: Uuid, user: Uuid) -> Result<(), StoreError>;
    /// Ids of every channel `user` is a member of, across workspaces.
    async fn channel_ids_of(&self, user: Uuid) -> Result<Vec<Uuid>, StoreError>;
    /// What `user` may do with `channel`: its [`ChannelStanding`], decided (one query).
    async fn channel_access(&self, channel: Uuid, user: Uuid) -> Result<ChannelAccess, StoreError> {
        Ok(self
            .channel_standing(channel, user)
            .await?
            .map_or(ChannelAccess::Invisible, |standing| standing.access()))
    }
    /// The channel with `user`'s workspace role and channel membership, in one query (`None`:
    /// no such channel). The REST API's first read for every channel-scoped request.
    async fn channel_standing(
        &self,
        channel: Uuid,
        user: Uuid,
    ) -> Result<Option<ChannelStanding>, StoreError>;
    /// [`Self::channel_standing`] of several channels in one query, in the order given: a
    /// resuming connection checks all its channels at once.
    async fn channel_standings(
        &self,
        channels: &[Uuid],
        user: Uuid,
    ) -> Result<Vec<Option<ChannelStanding>>, StoreError>;
    /// [`Self::channel_access`] of several channels in one query, in the order given.
    async fn channel_accesses(
        &self,
        channels: &[Uuid],
        user: Uuid,
    ) -> Result<Vec<ChannelAccess>, StoreError> {
        Ok(self
            .channel_standings(channels, user)
            .await?
            .into_iter()
            .map(|standing| standing.map_or(ChannelAccess::Invisible, |s| s.access()))
            .collect())
    }

    // ---- accounts ----

    /// Applies a profile change and returns the user as it is now. `NotFound` for no such user.
    async fn update_profile(&self, user: Uuid, update: &ProfileUpdate) -> Result<User, StoreError>;
    /// Replaces the Argon2id PHC string of a user's password.
    async fn set_password_hash(&self, user: Uuid, password_hash: &str) -> Result<(), StoreError>;
    /// The user's sessions that are active at `now`, newest first.
    async fn active_sessions_of(
        &self,
        user: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, StoreError>;
    /// Revokes every active session of `user` except `keep`; returns how many were revoked.
    async fn revoke_sessions_of(
        &self,
        user: Uuid,
        keep: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
    /// Disables (`Some(at)`) or re-enables (`None`) an account. Disabling also revokes every
    /// session of the user, in the same transaction.
    async fn set_user_disabled(
        &self,
        user: Uuid,
        disabled_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError>;
    /// Sessions revoked, and users disabled, at or after `since`, oldest first — in one query,
    /// for the gateways' periodic re-verification of open sockets. A user enabled again is no
    /// longer listed as disabled (the revocation of their sessions stays listed).
    async fn access_revoked_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<RevokedAccess>, StoreError>;

    // ---- workspaces ----

    /// Renames a workspace. `NotFound` for no such workspace.
    async fn rename_workspace(&self, id: Uuid, name: &str) -> Result<Workspace, StoreError>;
    /// Every member of a workspace with their role, oldest member first.
    async fn workspace_members(&self, workspace: Uuid) -> Result<Vec<WorkspaceMember>, StoreError>;
    /// Removes a member from the workspace and from every channel of it, in one transaction.
    /// Returns false when the user was not a member.
    async fn remove_workspace_member(
        &self,
        workspace: Uuid,
        user: Uuid,
    ) -> Result<bool, StoreError>;
    /// How many owners a workspace has (the last owner cannot leave or be demoted).
    async fn count_owners(&self, workspace: Uuid) -> Result<u64, StoreError>;

    // ---- invitations ----

    async fn create_invite(&self, invite: &Invite) -> Result<(), StoreError>;
    async fn invite_by_token_hash(&self, token_hash: &str) -> Result<Option<Invite>, StoreError>;
    /// Pending (not accepted, not expired at `now`) invitations of a workspace, newest first.
    async fn pending_invites(
        &self,
        workspace: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<Invite>, StoreError>;
    /// Marks the invitation accepted by `user` and makes `user` a member with the invitation's
    /// role (keeping a stronger role the user may already have), in one transaction. Returns false
    /// (and changes nothing) when it was already accepted.
    async fn accept_invite(
        &self,
        invite: Uuid,
        user: Uuid,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    // ---- channels ----

    /// Applies a metadata change and returns the channel as it is now. `Conflict` if the new name
    /// is taken in the workspace, `NotFound` for no such channel.
    async fn update_channel(&self, id: Uuid, update: &ChannelUpdate)
    -> Result<Channel, StoreError>;
    /// Removes `user` from the channel's members; returns false when they were not a member.
    async fn remove_channel_member(&self, channel: Uuid, user: Uuid) -> Result<bool, StoreError>;
    /// Every member of a channel, oldest first.
    async fn channel_members(&self, channel: Uuid) -> Result<Vec<ChannelMember>, StoreError>;
    /// One user's membership of a channel.
    async fn channel_membership(
        &self,
        channel: Uuid,
        user: Uuid,
    ) -> Result<Option<ChannelMember>, StoreError>;
    /// The read position (`last_read_seq`) of `user` in each of `channels` it is a member of;
    /// channels it is not in are absent. What a connection's badges need at identify, for up to
    /// the subscription limit of channels at once: a store should answer in one query (this
    /// default asks channel by channel).
    async fn read_positions(
        &self,
        user: Uuid,
        channels: &[Uuid],
    ) -> Result<HashMap<Uuid, u64>, StoreError> {
        let mut positions = HashMap::with_capacity(channels.len());
        for &channel in channels {
            if let Some(member) = self.channel_membership(channel, user).await? {
                positions.insert(channel, member.last_read_seq);
            }
        }
        Ok(positions)
    }
    /// Mutes or unmutes the channel for a member; false when `user` is not a member.
    async fn set_channel_muted(
        &self,
        channel: Uuid,
        user: Uuid,
        muted: bool,
    ) -> Result<bool, StoreError>;
    /// Raises the member's read position to `seq` (never lowers it) and returns the position now.
    /// `NotFound` when `user` is not a member.
    async fn mark_read(&self, channel: Uuid, user: Uuid, seq: u64) -> Result<u64, StoreError>;

    // ---- direct messages ----

    /// The direct-message channel of exactly `members` (sorted, distinct, 2 to 8 users, all in
    /// the workspace) — created with every one of them as a member on first use, the same channel
    /// on every later call. Returns the channel and whether it was created now.
    async fn open_dm(
        &self,
        workspace: Uuid,
        members: &[Uuid],
        created_by: Uuid,
    ) -> Result<(Channel, bool), StoreError>;

    // ---- audit log ----

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;
    /// A workspace's audit log, newest first: its own entries, and account entries (logins)
    /// whose actor is a current member of it. `before`: only entries strictly older than this one
    /// (a cursor: the id of the last entry of the previous page).
    async fn audit_log(
        &self,
        workspace: Uuid,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standing(id: Uuid) -> ChannelStanding {
        ChannelStanding {
            channel: Channel {
                id,
                workspace_id: Uuid::nil(),
                name: format!("c-{id}"),
                description: String::new(),
                kind: ChannelKind::Public,
                topic: String::new(),
                topic_set_by: None,
                topic_set_at: None,
                is_archived: false,
                created_by: Uuid::nil(),
                created_at: Utc::now(),
            },
            role: None,
            membership: None,
        }
    }

    #[test]
    fn standings_come_back_in_the_order_asked_repeats_and_missing_included() {
        let (a, b, missing) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let found = HashMap::from([(a, standing(a)), (b, standing(b))]);
        let ids = |answers: Vec<Option<ChannelStanding>>| -> Vec<Option<Uuid>> {
            answers
                .into_iter()
                .map(|s| s.map(|s| s.channel.id))
                .collect()
        };
        assert_eq!(
            ids(in_order_asked(&[b, missing, a, b], found.clone())),
            [Some(b), None, Some(a), Some(b)]
        );
        assert_eq!(ids(in_order_asked(&[], found)), []);
    }
}
