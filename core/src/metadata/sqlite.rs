//! The embedded metadata store: SQLite through sqlx, with versioned migrations
//! (`core/migrations/sqlite`). WAL journal with `synchronous=FULL`: a committed change is fsynced.
//!
//! The trait is implemented here by delegation; the queries live in one module per subject.

mod accounts;
mod audit;
mod bots;
mod channels;
mod commands;
mod dm;
mod focus;
mod invites;
mod limits;
mod members;
mod notifications;
mod retention;
mod rows;
mod subscriptions;
mod workspaces;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use uuid::Uuid;

use self::rows::db_err;
use super::{ChannelListing, ChannelStanding, MetadataStore, NewChannel};
use crate::StoreError;
use crate::model::{
    AuditEntry, Channel, ChannelMember, ChannelUpdate, Invite, ProfileUpdate, RevokedAccess, Role,
    Session, User, UserCredentials, Workspace, WorkspaceMember,
};

/// Metadata in one SQLite file (or in memory, for tests).
#[derive(Clone)]
pub struct SqliteMetadataStore {
    pool: SqlitePool,
}

impl SqliteMetadataStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(db_err)?;
        Self::migrated(pool).await
    }

    /// Copies the database file at `source` — which a running node may be writing — into a new
    /// file `dest`, as of one transaction (`VACUUM INTO`, through a connection of its own: SQLite
    /// allows readers beside the node's writer in WAL mode). `dest` must not exist.
    pub async fn backup_file(source: &Path, dest: &Path) -> Result<(), StoreError> {
        use sqlx::Connection;
        let options = SqliteConnectOptions::new()
            .filename(source)
            .create_if_missing(false)
            .busy_timeout(Duration::from_secs(5));
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .map_err(db_err)?;
        let dest = dest
            .to_str()
            .ok_or_else(|| StoreError::Backend("backup path is not UTF-8".into()))?;
        sqlx::query("VACUUM INTO ?")
            .bind(dest)
            .execute(&mut conn)
            .await
            .map_err(db_err)?;
        conn.close().await.map_err(db_err)
    }

    /// A private in-memory database (one connection, so every query sees the same data).
    pub async fn in_memory() -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(db_err)?
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(db_err)?;
        Self::migrated(pool).await
    }

    async fn migrated(pool: SqlitePool) -> Result<Self, StoreError> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(StoreError::backend)?;
        Ok(SqliteMetadataStore { pool })
    }
}

#[async_trait]
impl MetadataStore for SqliteMetadataStore {
    fn notifications(&self) -> &dyn crate::notify::NotificationStore {
        self
    }

    fn focus(&self) -> &dyn crate::focus::FocusStore {
        self
    }

    fn subscriptions(&self) -> &dyn crate::outgoing::SubscriptionStore {
        self
    }

    fn commands(&self) -> &dyn crate::commands::CommandStore {
        self
    }

    fn retention(&self) -> &dyn crate::retention::RetentionStore {
        self
    }

    fn limits(&self) -> &dyn crate::limits::WorkspaceLimitsStore {
        self
    }

    async fn create_user(
        &self,
        email: &str,
        display_name: &str,
        password_hash: &str,
    ) -> Result<User, StoreError> {
        accounts::create_user(&self.pool, email, display_name, password_hash).await
    }

    async fn user(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        accounts::user(&self.pool, id).await
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<UserCredentials>, StoreError> {
        accounts::user_by_email(&self.pool, email).await
    }

    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        accounts::create_session(&self.pool, session).await
    }

    async fn session(&self, id: Uuid) -> Result<Option<Session>, StoreError> {
        accounts::session(&self.pool, id).await
    }

    async fn rotate_refresh(
        &self,
        session_id: Uuid,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        accounts::rotate_refresh(&self.pool, session_id, old_hash, new_hash, new_expires_at).await
    }

    async fn revoke_session(&self, session_id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
        accounts::revoke_session(&self.pool, session_id, at).await
    }

    async fn create_workspace(&self, name: &str, owner: Uuid) -> Result<Workspace, StoreError> {
        workspaces::create_workspace(&self.pool, name, owner).await
    }

    async fn workspace(&self, id: Uuid) -> Result<Option<Workspace>, StoreError> {
        workspaces::workspace(&self.pool, id).await
    }

    async fn workspaces_of(&self, user: Uuid) -> Result<Vec<(Workspace, Role)>, StoreError> {
        workspaces::workspaces_of(&self.pool, user).await
    }

    async fn workspace_role(
        &self,
        workspace: Uuid,
        user: Uuid,
    ) -> Result<Option<Role>, StoreError> {
        workspaces::workspace_role(&self.pool, workspace, user).await
    }

    async fn set_workspace_member(
        &self,
        workspace: Uuid,
        user: Uuid,
        role: Role,
    ) -> Result<(), StoreError> {
        workspaces::set_workspace_member(&self.pool, workspace, user, role).await
    }

    async fn create_channel(&self, new: &NewChannel) -> Result<Channel, StoreError> {
        channels::create_channel(&self.pool, new).await
    }

    async fn channel(&self, id: Uuid) -> Result<Option<Channel>, StoreError> {
        channels::channel(&self.pool, id).await
    }

    async fn channels_visible_to(
        &self,
        workspace: Uuid,
        user: Uuid,
    ) -> Result<Vec<ChannelListing>, StoreError> {
        channels::channels_visible_to(&self.pool, workspace, user).await
    }

    async fn add_channel_member(&self, channel: Uuid, user: Uuid) -> Result<(), StoreError> {
        members::add_channel_member(&self.pool, channel, user).await
    }

    async fn channel_ids_of(&self, user: Uuid) -> Result<Vec<Uuid>, StoreError> {
        channels::channel_ids_of(&self.pool, user).await
    }

    async fn channel_standing(
        &self,
        channel: Uuid,
        user: Uuid,
    ) -> Result<Option<ChannelStanding>, StoreError> {
        channels::channel_standing(&self.pool, channel, user).await
    }

    async fn channel_standings(
        &self,
        channels: &[Uuid],
        user: Uuid,
    ) -> Result<Vec<Option<ChannelStanding>>, StoreError> {
        channels::channel_standings(&self.pool, channels, user).await
    }

    async fn update_profile(&self, user: Uuid, update: &ProfileUpdate) -> Result<User, StoreError> {
        accounts::update_profile(&self.pool, user, update).await
    }

    async fn set_password_hash(&self, user: Uuid, password_hash: &str) -> Result<(), StoreError> {
        accounts::set_password_hash(&self.pool, user, password_hash).await
    }

    async fn active_sessions_of(
        &self,
        user: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, StoreError> {
        accounts::active_sessions_of(&self.pool, user, now).await
    }

    async fn revoke_sessions_of(
        &self,
        user: Uuid,
        keep: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        accounts::revoke_sessions_of(&self.pool, user, keep, at).await
    }

    async fn set_user_disabled(
        &self,
        user: Uuid,
        disabled_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        accounts::set_user_disabled(&self.pool, user, disabled_at).await
    }

    async fn access_revoked_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<RevokedAccess>, StoreError> {
        accounts::access_revoked_since(&self.pool, since).await
    }

    async fn rename_workspace(&self, id: Uuid, name: &str) -> Result<Workspace, StoreError> {
        workspaces::rename_workspace(&self.pool, id, name).await
    }

    async fn workspace_members(&self, workspace: Uuid) -> Result<Vec<WorkspaceMember>, StoreError> {
        workspaces::workspace_members(&self.pool, workspace).await
    }

    async fn remove_workspace_member(
        &self,
        workspace: Uuid,
        user: Uuid,
    ) -> Result<bool, StoreError> {
        workspaces::remove_workspace_member(&self.pool, workspace, user).await
    }

    async fn count_owners(&self, workspace: Uuid) -> Result<u64, StoreError> {
        workspaces::count_owners(&self.pool, workspace).await
    }

    async fn create_invite(&self, invite: &Invite) -> Result<(), StoreError> {
        invites::create_invite(&self.pool, invite).await
    }

    async fn invite_by_token_hash(&self, token_hash: &str) -> Result<Option<Invite>, StoreError> {
        invites::invite_by_token_hash(&self.pool, token_hash).await
    }

    async fn pending_invites(
        &self,
        workspace: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<Invite>, StoreError> {
        invites::pending_invites(&self.pool, workspace, now).await
    }

    async fn accept_invite(
        &self,
        invite: Uuid,
        user: Uuid,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        invites::accept_invite(&self.pool, invite, user, at).await
    }

    async fn update_channel(
        &self,
        id: Uuid,
        update: &ChannelUpdate,
    ) -> Result<Channel, StoreError> {
        channels::update_channel(&self.pool, id, update).await
    }

    async fn remove_channel_member(&self, channel: Uuid, user: Uuid) -> Result<bool, StoreError> {
        members::remove_channel_member(&self.pool, channel, user).await
    }

    async fn channel_members(&self, channel: Uuid) -> Result<Vec<ChannelMember>, StoreError> {
        members::channel_members(&self.pool, channel).await
    }

    async fn channel_membership(
        &self,
        channel: Uuid,
        user: Uuid,
    ) -> Result<Option<ChannelMember>, StoreError> {
        members::channel_membership(&self.pool, channel, user).await
    }

    async fn set_channel_muted(
        &self,
        channel: Uuid,
        user: Uuid,
        muted: bool,
    ) -> Result<bool, StoreError> {
        members::set_channel_muted(&self.pool, channel, user, muted).await
    }

    async fn mark_read(&self, channel: Uuid, user: Uuid, seq: u64) -> Result<u64, StoreError> {
        members::mark_read(&self.pool, channel, user, seq).await
    }

    async fn open_dm(
        &self,
        workspace: Uuid,
        members: &[Uuid],
        created_by: Uuid,
    ) -> Result<(Channel, bool), StoreError> {
        dm::open_dm(&self.pool, workspace, members, created_by).await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        audit::append_audit(&self.pool, entry).await
    }

    async fn audit_log(
        &self,
        workspace: Uuid,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        audit::audit_log(&self.pool, workspace, before, limit).await
    }
}
