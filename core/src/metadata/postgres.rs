//! The metadata store on PostgreSQL (sqlx), with versioned migrations
//! (`core/migrations/postgres`) and a connection pool.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use uuid::Uuid;

use super::{ChannelListing, MetadataStore, NewChannel};
use crate::StoreError;
use crate::model::{
    Channel, ChannelAccess, ChannelKind, Role, Session, User, UserCredentials, Workspace,
};

/// Metadata in PostgreSQL.
#[derive(Clone)]
pub struct PostgresMetadataStore {
    pool: PgPool,
}

/// Now, at the microsecond precision PostgreSQL keeps, so what a create returns equals what a
/// later read returns.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_default()
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

/// A URL with its password hidden, for messages.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// A pool on `url` with the schema migrated; fails within 5 s if PostgreSQL cannot be reached.
pub(crate) async fn connect_pool(url: &str) -> Result<PgPool, StoreError> {
    let pool = PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(|err| {
            StoreError::Backend(format!("cannot reach PostgreSQL at {}: {err}", redact(url)))
        })?;
    sqlx::migrate!("./migrations/postgres")
        .run(&pool)
        .await
        .map_err(StoreError::backend)?;
    Ok(pool)
}

fn get<'r, T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>>(
    row: &'r PgRow,
    column: &str,
) -> Result<T, StoreError> {
    row.try_get(column).map_err(db_err)
}

fn user_from(row: &PgRow) -> Result<User, StoreError> {
    Ok(User {
        id: get(row, "id")?,
        email: get(row, "email")?,
        display_name: get(row, "display_name")?,
        created_at: get(row, "created_at")?,
    })
}

fn session_from(row: &PgRow) -> Result<Session, StoreError> {
    Ok(Session {
        id: get(row, "id")?,
        user_id: get(row, "user_id")?,
        refresh_hash: get(row, "refresh_hash")?,
        refresh_expires_at: get(row, "refresh_expires_at")?,
        created_at: get(row, "created_at")?,
        revoked_at: get(row, "revoked_at")?,
    })
}

fn workspace_from(row: &PgRow) -> Result<Workspace, StoreError> {
    Ok(Workspace {
        id: get(row, "id")?,
        name: get(row, "name")?,
        created_by: get(row, "created_by")?,
        created_at: get(row, "created_at")?,
    })
}

fn role_col(row: &PgRow) -> Result<Role, StoreError> {
    let text: String = get(row, "role")?;
    Role::parse(&text).ok_or_else(|| StoreError::Backend(format!("unknown role {text}")))
}

fn channel_from(row: &PgRow) -> Result<Channel, StoreError> {
    let kind: String = get(row, "kind")?;
    Ok(Channel {
        id: get(row, "id")?,
        workspace_id: get(row, "workspace_id")?,
        name: get(row, "name")?,
        description: get(row, "description")?,
        kind: ChannelKind::parse(&kind)
            .ok_or_else(|| StoreError::Backend(format!("unknown channel kind {kind}")))?,
        topic: get(row, "topic")?,
        topic_set_by: get(row, "topic_set_by")?,
        topic_set_at: get(row, "topic_set_at")?,
        is_archived: get(row, "is_archived")?,
        created_by: get(row, "created_by")?,
        created_at: get(row, "created_at")?,
    })
}

impl PostgresMetadataStore {
    /// Connects a pool (failing within 5 s if unreachable) and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Ok(PostgresMetadataStore {
            pool: connect_pool(url).await?,
        })
    }
}

#[async_trait]
impl MetadataStore for PostgresMetadataStore {
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
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(user.id)
        .bind(&user.email)
        .bind(&user.display_name)
        .bind(password_hash)
        .bind(user.created_at)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(user)
    }

    async fn user(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        sqlx::query("SELECT id, email, display_name, created_at FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .map(|row| user_from(&row))
            .transpose()
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<UserCredentials>, StoreError> {
        sqlx::query(
            "SELECT id, email, display_name, created_at, password_hash FROM users WHERE email = $1",
        )
        .bind(email.to_lowercase())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?
        .map(|row| {
            Ok(UserCredentials {
                user: user_from(&row)?,
                password_hash: get(&row, "password_hash")?,
            })
        })
        .transpose()
    }

    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id, user_id, refresh_hash, refresh_expires_at, created_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(session.id)
        .bind(session.user_id)
        .bind(&session.refresh_hash)
        .bind(session.refresh_expires_at)
        .bind(session.created_at)
        .bind(session.revoked_at)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn session(&self, id: Uuid) -> Result<Option<Session>, StoreError> {
        sqlx::query(
            "SELECT id, user_id, refresh_hash, refresh_expires_at, created_at, revoked_at
             FROM sessions WHERE id = $1",
        )
        .bind(id)
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
            "UPDATE sessions SET refresh_hash = $1, refresh_expires_at = $2
             WHERE id = $3 AND refresh_hash = $4 AND revoked_at IS NULL",
        )
        .bind(new_hash)
        .bind(new_expires_at)
        .bind(session_id)
        .bind(old_hash)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(result.rows_affected() == 1)
    }

    async fn revoke_session(&self, session_id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(at)
            .bind(session_id)
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
            "INSERT INTO workspaces (id, name, created_by, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(workspace.id)
        .bind(&workspace.name)
        .bind(owner)
        .bind(workspace.created_at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO workspace_members (workspace_id, user_id, role, joined_at) VALUES ($1, $2, 'owner', $3)",
        )
        .bind(workspace.id)
        .bind(owner)
        .bind(workspace.created_at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(workspace)
    }

    async fn workspace(&self, id: Uuid) -> Result<Option<Workspace>, StoreError> {
        sqlx::query("SELECT id, name, created_by, created_at FROM workspaces WHERE id = $1")
            .bind(id)
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
             WHERE m.user_id = $1 ORDER BY w.created_at, w.id",
        )
        .bind(user)
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
        sqlx::query("SELECT role FROM workspace_members WHERE workspace_id = $1 AND user_id = $2")
            .bind(workspace)
            .bind(user)
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
            "INSERT INTO workspace_members (workspace_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = excluded.role",
        )
        .bind(workspace)
        .bind(user)
        .bind(role.as_str())
        .bind(now())
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
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(channel.id)
        .bind(channel.workspace_id)
        .bind(&channel.name)
        .bind(&channel.description)
        .bind(channel.kind.as_str())
        .bind(channel.created_by)
        .bind(channel.created_at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO channel_members (channel_id, user_id, joined_at) VALUES ($1, $2, $3)",
        )
        .bind(channel.id)
        .bind(channel.created_by)
        .bind(channel.created_at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(channel)
    }

    async fn channel(&self, id: Uuid) -> Result<Option<Channel>, StoreError> {
        sqlx::query("SELECT * FROM channels WHERE id = $1")
            .bind(id)
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
             LEFT JOIN channel_members m ON m.channel_id = c.id AND m.user_id = $1
             WHERE c.workspace_id = $2 AND (c.kind = 'public' OR m.user_id IS NOT NULL)
             ORDER BY c.name",
        )
        .bind(user)
        .bind(workspace)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(|row| {
            Ok(ChannelListing {
                channel: channel_from(row)?,
                is_member: get(row, "is_member")?,
            })
        })
        .collect()
    }

    async fn add_channel_member(&self, channel: Uuid, user: Uuid) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO channel_members (channel_id, user_id, joined_at) VALUES ($1, $2, $3)
             ON CONFLICT (channel_id, user_id) DO NOTHING",
        )
        .bind(channel)
        .bind(user)
        .bind(now())
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
             WHERE m.user_id = $1 ORDER BY m.joined_at, m.channel_id",
        )
        .bind(user)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(|row| get(row, "channel_id"))
        .collect()
    }

    async fn channel_access(&self, channel: Uuid, user: Uuid) -> Result<ChannelAccess, StoreError> {
        let row = sqlx::query(
            "SELECT c.is_archived,
                    (w.user_id IS NOT NULL) AS in_workspace,
                    (m.user_id IS NOT NULL) AS in_channel
             FROM channels c
             LEFT JOIN workspace_members w ON w.workspace_id = c.workspace_id AND w.user_id = $1
             LEFT JOIN channel_members m ON m.channel_id = c.id AND m.user_id = $1
             WHERE c.id = $2",
        )
        .bind(user)
        .bind(channel)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        let Some(row) = row else {
            return Ok(ChannelAccess::Invisible);
        };
        Ok(if !get::<bool>(&row, "in_workspace")? {
            ChannelAccess::Invisible
        } else if get::<bool>(&row, "in_channel")? {
            ChannelAccess::Member {
                archived: get(&row, "is_archived")?,
            }
        } else {
            ChannelAccess::NotMember
        })
    }
}
