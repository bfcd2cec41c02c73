//! Users and their login sessions.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::rows::{USER_COLUMNS, db_err, now, revoked_from, session_from, user_from};
use crate::StoreError;
use crate::model::{ProfileUpdate, RevokedAccess, Session, User, UserCredentials};

pub(super) async fn create_user(
    pool: &PgPool,
    email: &str,
    display_name: &str,
    password_hash: &str,
) -> Result<User, StoreError> {
    let user = User {
        id: Uuid::now_v7(),
        email: email.to_lowercase(),
        display_name: display_name.to_string(),
        created_at: now(),
        avatar_url: None,
        time_zone: None,
        disabled_at: None,
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
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(user)
}

pub(super) async fn user(pool: &PgPool, id: Uuid) -> Result<Option<User>, StoreError> {
    sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(db_err)?
        .map(|row| user_from(&row))
        .transpose()
}

pub(super) async fn user_by_email(
    pool: &PgPool,
    email: &str,
) -> Result<Option<UserCredentials>, StoreError> {
    sqlx::query(&format!(
        "SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = $1"
    ))
    .bind(email.to_lowercase())
    .fetch_optional(pool)
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

pub(super) async fn update_profile(
    pool: &PgPool,
    user: Uuid,
    update: &ProfileUpdate,
) -> Result<User, StoreError> {
    // A flag per optional field tells "leave as is" from "set to NULL".
    sqlx::query(&format!(
        "UPDATE users SET
             display_name = COALESCE($1, display_name),
             avatar_url = CASE WHEN $2 THEN $3 ELSE avatar_url END,
             time_zone = CASE WHEN $4 THEN $5 ELSE time_zone END
         WHERE id = $6
         RETURNING {USER_COLUMNS}"
    ))
    .bind(update.display_name.as_deref())
    .bind(update.avatar_url.is_some())
    .bind(update.avatar_url.clone().flatten())
    .bind(update.time_zone.is_some())
    .bind(update.time_zone.clone().flatten())
    .bind(user)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?
    .map(|row| user_from(&row))
    .transpose()?
    .ok_or_else(|| StoreError::NotFound(format!("user {user}")))
}

pub(super) async fn set_password_hash(
    pool: &PgPool,
    user: Uuid,
    password_hash: &str,
) -> Result<(), StoreError> {
    let result = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(password_hash)
        .bind(user)
        .execute(pool)
        .await
        .map_err(db_err)?;
    if result.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("user {user}")));
    }
    Ok(())
}

pub(super) async fn set_user_disabled(
    pool: &PgPool,
    user: Uuid,
    disabled_at: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    let result = sqlx::query("UPDATE users SET disabled_at = $1 WHERE id = $2")
        .bind(disabled_at)
        .bind(user)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    if result.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("user {user}")));
    }
    if let Some(at) = disabled_at {
        // Expired sessions too: a disabled account must hold nothing that could be revived.
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(user)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)
}

pub(super) async fn create_session(pool: &PgPool, session: &Session) -> Result<(), StoreError> {
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
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(super) async fn session(pool: &PgPool, id: Uuid) -> Result<Option<Session>, StoreError> {
    sqlx::query(
        "SELECT id, user_id, refresh_hash, refresh_expires_at, created_at, revoked_at
         FROM sessions WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?
    .map(|row| session_from(&row))
    .transpose()
}

pub(super) async fn rotate_refresh(
    pool: &PgPool,
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
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(result.rows_affected() == 1)
}

pub(super) async fn revoke_session(
    pool: &PgPool,
    session_id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(at)
        .bind(session_id)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(())
}

pub(super) async fn active_sessions_of(
    pool: &PgPool,
    user: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<Session>, StoreError> {
    sqlx::query(
        "SELECT id, user_id, refresh_hash, refresh_expires_at, created_at, revoked_at
         FROM sessions
         WHERE user_id = $1 AND revoked_at IS NULL AND refresh_expires_at > $2
         ORDER BY created_at DESC, id DESC",
    )
    .bind(user)
    .bind(now)
    .fetch_all(pool)
    .await
    .map_err(db_err)?
    .iter()
    .map(session_from)
    .collect()
}

pub(super) async fn revoke_sessions_of(
    pool: &PgPool,
    user: Uuid,
    keep: Option<Uuid>,
    at: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let result = sqlx::query(
        "UPDATE sessions SET revoked_at = $1
         WHERE user_id = $2 AND revoked_at IS NULL AND refresh_expires_at > $1
           AND ($3::uuid IS NULL OR id <> $3)",
    )
    .bind(at)
    .bind(user)
    .bind(keep)
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(result.rows_affected())
}

pub(super) async fn access_revoked_since(
    pool: &PgPool,
    since: DateTime<Utc>,
) -> Result<Vec<RevokedAccess>, StoreError> {
    // Both halves read a partial index (migration 0004): only marked rows are in it.
    sqlx::query(
        "SELECT user_id, id AS session_id, revoked_at AS at FROM sessions WHERE revoked_at >= $1
         UNION ALL
         SELECT id AS user_id, NULL AS session_id, disabled_at AS at FROM users
         WHERE disabled_at >= $1
         ORDER BY at",
    )
    .bind(since)
    .fetch_all(pool)
    .await
    .map_err(db_err)?
    .iter()
    .map(revoked_from)
    .collect()
}
