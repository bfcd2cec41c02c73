//! The embedded metadata store: SQLite through sqlx, with versioned migrations
//! (`core/migrations/sqlite`). WAL journal with `synchronous=FULL`: a committed change is fsynced.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};
use uuid::Uuid;

use super::{ChannelListing, MetadataStore, NewChannel};
use crate::StoreError;
use crate::model::{
    Channel, ChannelAccess, ChannelKind, Role, Session, User, UserCredentials, Workspace,
};

/// Metadata in one SQLite file (or in memory, for tests).
#[derive(Clone)]
pub struct SqliteMetadataStore {
    pool: SqlitePool,
}

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// Now, at the millisecond precision the database keeps, so what a create returns equals what a
/// later read returns.
fn now() -> DateTime<Utc> {
    from_millis(Utc::now().timestamp_millis())
}

fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn db_err(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_string())
        }
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::NotFound(db.message().to_string())
        }
        _ => StoreError::backend(err),
    }
}

fn uuid_col(row: &SqliteRow, column: &str) -> Result<Uuid, StoreError> {
    let text: String = row.try_get(column).map_err(db_err)?;
    Uuid::parse_str(&text).map_err(StoreError::backend)
}

fn opt_uuid_col(row: &SqliteRow, column: &str) -> Result<Option<Uuid>, StoreError> {
    let text: Option<String> = row.try_get(column).map_err(db_err)?;
    text.map(|t| Uuid::parse_str(&t).map_err(StoreError::backend))
        .transpose()
}

fn user_from(row: &SqliteRow) -> Result<User, StoreError> {
    Ok(User {
        id: uuid_col(row, "id")?,
        email: row.try_get("email").map_err(db_err)?,
        display_name: row.try_get("display_name").map_err(db_err)?,
        created_at: from_millis(row.try_get("created_at").map_err(db_err)?),
    })
}

fn session_from(row: &SqliteRow) -> Result<Session, StoreError> {
    let revoked: Option<i64> = row.try_get("revoked_at").map_err(db_err)?;
    Ok(Session {
        id: uuid_col(row, "id")?,
        user_id: uuid_col(row, "user_id")?,
        refresh_hash: row.try_get("refresh_hash").map_err(db_err)?,
        refresh_expires_at: from_millis(row.try_get("refresh_expires_at").map_err(db_err)?),
        created_at: from_millis(row.try_get("created_at").map_err(db_err)?),
        revoked_at: revoked.map(from_millis),
    })
}

fn workspace_from(row: &SqliteRow) -> Result<Workspace, StoreError> {
    Ok(Workspace {
        id: uuid_col(row, "id")?,
        name: row.try_get("name").map_err(db_err)?,
        created_by: uuid_col(row, "created_by")?,
        created_at: from_millis(row.try_get("created_at").map_err(db_err)?),
    })
}

fn role_col(row: &SqliteRow) -> Result<Role, StoreError> {
    let text: String = row.try_get("role").map_err(db_err)?;
    Role::parse(&text).ok_or_else(|| StoreError::Backend(format!("unknown role {text}")))
}

fn channel_from(row: &SqliteRow) -> Result<Channel, StoreError> {
    let kind: String = row.try_get("kind").map_err(db_err)?;
    let topic_set_at: Option<i64> = row.try_get("topic_set_at").map_err(db_err)?;
    Ok(Channel {
        id: uuid_col(row, "id")?,
        workspace_id: uuid_col(row, "workspace_id")?,
        name: row.try_get("name").map_err(db_err)?,
        description: row.try_get("description").map_err(db_err)?,
        kind: ChannelKind::parse(&kind)
            .ok_or_else(|| StoreError::Backend(format!("unknown channel kind {kind}")))?,
        topic: row.try_get("topic").map_err(db_err)?,
        topic_set_by: opt_uuid_col(row, "topic_set_by")?,
        topic_set_at: topic_set_at.map(from_millis),
        is_archived: row.try_get::<i64, _>("is_archived").map_err(db_err)? != 0,
        created_by: uuid_col(row, "created_by")?,
        created_at: from_millis(row.try_get("created_at").map_err(db_err)?),
    })
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
    async fn create_user(
        &self,
        email: &str,
        display_name: &str,
        password_hash: &str,
    ) -> Result<User, StoreError> {
        let user = User {
            id: Uuid::now_v7(),
            email: email.to_lowercase(),
            display_name: display_name.to_string(),
            created_at: now(),
        };
        sqlx::query(
            "INSERT INTO users (id, email, display_name, password_hash, created_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(user.id.to_string())
        .bind(&user.email)
        .bind(&user.display_name)
        .bind(password_hash)
        .bind(millis(user.created_at))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(user)
    }

    async fn user(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        sqlx::query("SELECT id, email, display_name, created_at FROM users WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .map(|row| user_from(&row))
            .transpose()
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<UserCredentials>, StoreError> {
        sqlx::query(
            "SELECT id, email, display_name, created_at, password_hash FROM users WHERE email = ?",
        )
        .bind(email.to_lowercase())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?
        .map(|row| {
            Ok(UserCredentials {
                user: user_from(&row)?,
                password_hash: row.try_get("password_hash").map_err(db_err)?,
            })
        })
        .transpose()
    }

    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id, user_id, refresh_hash, refresh_expires_at, created_at, revoked_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(session.id.to_string())
        .bind(session.user_id.to_string())
        .bind(&session.refresh_hash)
        .bind(millis(session.refresh_expires_at))
        .bind(millis(session.created_at))
        .bind(session.revoked_at.map(millis))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn session(&self, id: Uuid) -> Result<Option<Session>, StoreError> {
        sqlx::query(
            "SELECT id, user_id, refresh_hash, refresh_expires_at, created_at, revoked_at
             FROM sessions WHERE id = ?",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?
        .map(|row| session_from(&row))
        .transpose()
    }

    async fn rotate_refresh(
        &self,
        session_id: Uuid,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE sessions SET refresh_hash = ?, refresh_expires_at = ?
             WHERE id = ? AND refresh_hash = ? AND revoked_at IS NULL",
        )
        .bind(new_hash)
        .bind(millis(new_expires_at))
        .bind(session_id.to_string())
        .bind(old_hash)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(result.rows_affected() == 1)
    }

    async fn revoke_session(&self, session_id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(millis(at))
            .bind(session_id.to_string())
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn create_workspace(&self, name: &str, owner: Uuid) -> Result<Workspace, StoreError> {
        let workspace = Workspace {
            id: Uuid::now_v7(),
            name: name.to_string(),
            created_by: owner,
            created_at: now(),
        };
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO workspaces (id, name, created_by, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(workspace.id.to_string())
        .bind(&workspace.name)
        .bind(owner.to_string())
        .bind(millis(workspace.created_at))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO workspace_members (workspace_id, user_id, role, joined_at) VALUES (?, ?, 'owner', ?)",
        )
        .bind(workspace.id.to_string())
        .bind(owner.to_string())
        .bind(millis(workspace.created_at))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(workspace)
    }

    async fn workspace(&self, id: Uuid) -> Result<Option<Workspace>, StoreError> {
        sqlx::query("SELECT id, name, created_by, created_at FROM workspaces WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .map(|row| workspace_from(&row))
            .transpose()
    }

    async fn workspaces_of(&self, user: Uuid) -> Result<Vec<(Workspace, Role)>, StoreError> {
        sqlx::query(
            "SELECT w.id, w.name, w.created_by, w.created_at, m.role
             FROM workspaces w JOIN workspace_members m ON m.workspace_id = w.id
             WHERE m.user_id = ? ORDER BY w.created_at, w.id",
        )
        .bind(user.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(|row| Ok((workspace_from(row)?, role_col(row)?)))
        .collect()
    }

    async fn workspace_role(
        &self,
        workspace: Uuid,
        user: Uuid,
    ) -> Result<Option<Role>, StoreError> {
        sqlx::query("SELECT role FROM workspace_members WHERE workspace_id = ? AND user_id = ?")
            .bind(workspace.to_string())
            .bind(user.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .map(|row| role_col(&row))
            .transpose()
    }

    async fn set_workspace_member(
        &self,
        workspace: Uuid,
        user: Uuid,
        role: Role,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO workspace_members (workspace_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = excluded.role",
        )
        .bind(workspace.to_string())
        .bind(user.to_string())
        .bind(role.as_str())
        .bind(millis(now()))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn create_channel(&self, new: &NewChannel) -> Result<Channel, StoreError> {
        let channel = Channel {
            id: Uuid::now_v7(),
            workspace_id: new.workspace_id,
            name: new.name.clone(),
            description: new.description.clone(),
            kind: new.kind,
            topic: String::new(),
            topic_set_by: None,
            topic_set_at: None,
            is_archived: false,
            created_by: new.created_by,
            created_at: now(),
        };
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO channels (id, workspace_id, name, description, kind, created_by, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(channel.id.to_string())
        .bind(channel.workspace_id.to_string())
        .bind(&channel.name)
        .bind(&channel.description)
        .bind(channel.kind.as_str())
        .bind(channel.created_by.to_string())
        .bind(millis(channel.created_at))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO channel_members (channel_id, user_id, joined_at) VALUES (?, ?, ?)",
        )
        .bind(channel.id.to_string())
        .bind(channel.created_by.to_string())
        .bind(millis(channel.created_at))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(channel)
    }

    async fn channel(&self, id: Uuid) -> Result<Option<Channel>, StoreError> {
        sqlx::query("SELECT * FROM channels WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .map(|row| channel_from(&row))
            .transpose()
    }

    async fn channels_visible_to(
        &self,
        workspace: Uuid,
        user: Uuid,
    ) -> Result<Vec<ChannelListing>, StoreError> {
        sqlx::query(
            "SELECT c.*, (m.user_id IS NOT NULL) AS is_member
             FROM channels c
             LEFT JOIN channel_members m ON m.channel_id = c.id AND m.user_id = ?
             WHERE c.workspace_id = ? AND (c.kind = 'public' OR m.user_id IS NOT NULL)
             ORDER BY c.name",
        )
        .bind(user.to_string())
        .bind(workspace.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(|row| {
            Ok(ChannelListing {
                channel: channel_from(row)?,
                is_member: row.try_get::<i64, _>("is_member").map_err(db_err)? != 0,
            })
        })
        .collect()
    }

    async fn add_channel_member(&self, channel: Uuid, user: Uuid) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO channel_members (channel_id, user_id, joined_at) VALUES (?, ?, ?)
             ON CONFLICT (channel_id, user_id) DO NOTHING",
        )
        .bind(channel.to_string())
        .bind(user.to_string())
        .bind(millis(now()))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn channel_ids_of(&self, user: Uuid) -> Result<Vec<Uuid>, StoreError> {
        sqlx::query(
            "SELECT m.channel_id FROM channel_members m
             JOIN channels c ON c.id = m.channel_id
             JOIN workspace_members w ON w.workspace_id = c.workspace_id AND w.user_id = m.user_id
             WHERE m.user_id = ? ORDER BY m.joined_at, m.channel_id",
        )
        .bind(user.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(|row| uuid_col(row, "channel_id"))
        .collect()
    }

    async fn channel_access(&self, channel: Uuid, user: Uuid) -> Result<ChannelAccess, StoreError> {
        let row = sqlx::query(
            "SELECT c.is_archived,
                    (w.user_id IS NOT NULL) AS in_workspace,
                    (m.user_id IS NOT NULL) AS in_channel
             FROM channels c
             LEFT JOIN workspace_members w ON w.workspace_id = c.workspace_id AND w.user_id = ?
             LEFT JOIN channel_members m ON m.channel_id = c.id AND m.user_id = ?
             WHERE c.id = ?",
        )
        .bind(user.to_string())
        .bind(user.to_string())
        .bind(channel.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        let Some(row) = row else {
            return Ok(ChannelAccess::Invisible);
        };
        let flag = |column: &str| -> Result<bool, StoreError> {
            Ok(row.try_get::<i64, _>(column).map_err(db_err)? != 0)
        };
        Ok(if !flag("in_workspace")? {
            ChannelAccess::Invisible
        } else if flag("in_channel")? {
            ChannelAccess::Member {
                archived: flag("is_archived")?,
            }
        } else {
            ChannelAccess::NotMember
        })
    }
}
