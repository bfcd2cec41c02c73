//! The metadata store: users, sessions, workspaces, channels and memberships (not messages).

pub mod conformance;
pub(crate) mod postgres;
mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::StoreError;
use crate::model::{
    Channel, ChannelAccess, ChannelKind, Role, Session, User, UserCredentials, Workspace,
};

pub use postgres::PostgresMetadataStore;
pub use sqlite::SqliteMetadataStore;

/// A channel as listed to one user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelListing {
    pub channel: Channel,
    pub is_member: bool,
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

/// Metadata storage. Implementations must be safe to share between every task of a node.
#[async_trait]
pub trait MetadataStore: Send + Sync + 'static {
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
    /// What `user` may do with `channel`.
    async fn channel_access(&self, channel: Uuid, user: Uuid) -> Result<ChannelAccess, StoreError>;
}
