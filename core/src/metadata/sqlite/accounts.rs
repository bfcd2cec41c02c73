//! Users and their login sessions.

use chrono::{DateTime, Utc};
use sqlx::{Row, SqlitePool};
use uuid::Uuid;

use super::rows::{
    USER_COLUMNS, db_err, millis, now, returning_row, revoked_from, session_from, user_from,
};
use crate::StoreError;
use crate::model::{ProfileUpdate, RevokedAccess, Session, User, UserCredentials};

pub(super) async fn create_user(
    pool: &SqlitePool,
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
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(user.id.to_string())
    .bind(&user.email)
    .bind(&user.display_name)
    .bind(password_hash)
    .bind(millis(user.created_at))
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(user)
}

pub(super) async fn user(pool: &SqlitePool, id: Uuid) -> Result<Option<User>, StoreError> {
    sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?"))
        .bind(id.to_string())
        .fetch_optional(pool)
        .await
        .map_err(db_err)?
        .map(|row| user_from(&row))
        .transpose()
}

pub(super) async fn user_by_email(
    pool: &SqlitePool,
    email: &str,
) -> Result<Option<UserCredentials>, StoreError> {
    sqlx::query(&format!(
        "SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = ?"
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
    pool: &SqlitePool,
    user: Uuid,
    update: &ProfileUpdate,
) -> Result<User, StoreError> {
    // A flag per optional field tells "leave as is" from "set to NULL".
    let sql = format!(
        "UPDATE users SET
             display_name = COALESCE(?, display_name),
             avatar_url = CASE WHEN ? THEN ? ELSE avatar_url END,
             time_zone = CASE WHEN ? THEN ? ELSE time_zone END
         WHERE id = ?
         RETURNING {USER_COLUMNS}"
    );
    let query = sqlx::query(&sql)
        .bind(update.display_name.as_deref())
        .bind(update.avatar_url.is_some())
        .bind(update.avatar_url.clone().flatten())
        .bind(update.time_zone.is_some())
        .bind(update.time_zone.clone().flatten())
        .bind(user.to_string());
    returning_row(query, pool)
        .await?
        .map(|row| user_from(&row))
        .transpose()?
        .ok_or_else(|| StoreError::NotFound(format!("user {user}")))
}

pub(super) async fn set_password_hash(
    pool: &SqlitePool,
    user: Uuid,
    password_hash: &str,
) -> Result<(), StoreError> {
    let result = sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
        .bind(password_hash)
        .bind(user.to_string())
        .execute(pool)
        .await
        .map_err(db_err)?;
    if result.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("user {user}")));
    }
    Ok(())
}

pub(super) async fn set_user_disabled(
    pool: &SqlitePool,
    user: Uuid,
    disabled_at: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    let result = sqlx::query("UPDATE users SET disabled_at = ? WHERE id = ?")
        .bind(disabled_at.map(millis))
        .bind(user.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    if result.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("user {user}")));
    }
    if let Some(at) = disabled_at {
        // Expired sessions too: a disabled account must hold nothing that could be revived.
        sqlx::query("UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL")
            .bind(millis(at))
            .bind(user.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)
}

pub(super) async fn create_session(pool: &SqlitePool, session: &Session) -> Result<(), StoreError> {
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
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(super) async fn session(pool: &SqlitePool, id: Uuid) -> Result<Option<Session>, StoreError> {
    sqlx::query(
        "SELECT id, user_id, refresh_hash, refresh_expires_at, created_at, revoked_at
         FROM sessions WHERE id = ?",
    )
    .bind(id.to_string())
    .fetch_optional(pool)
    .await
    .map_err(db_err)?
    .map(|row| session_from(&row))
    .transpose()
}

pub(super) async fn rotate_refresh(
    pool: &SqlitePool,
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
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(result.rows_affected() == 1)
}

pub(super) async fn revoke_session(
    pool: &SqlitePool,
    session_id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
        .bind(millis(at))
        .bind(session_id.to_string())
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(())
}

pub(super) async fn active_sessions_of(
    pool: &SqlitePool,
    user: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<Session>, StoreError> {
    sqlx::query(
        "SELECT id, user_id, refresh_hash, refresh_expires_at, created_at, revoked_at
         FROM sessions
         WHERE user_id = ? AND revoked_at IS NULL AND refresh_expires_at > ?
         ORDER BY created_at DESC, id DESC",
    )
    .bind(user.to_string())
    .bind(millis(now))
    .fetch_all(pool)
    .await
    .map_err(db_err)?
    .iter()
    .map(session_from)
    .collect()
}

pub(super) async fn revoke_sessions_of(
    pool: &SqlitePool,
    user: Uuid,
    keep: Option<Uuid>,
    at: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let result = sqlx::query(
        "UPDATE sessions SET revoked_at = ?
         WHERE user_id = ? AND revoked_at IS NULL AND refresh_expires_at > ?
           AND (? IS NULL OR id <> ?)",
    )
    .bind(millis(at))
    .bind(user.to_string())
    .bind(millis(at))
    .bind(keep.map(|k| k.to_string()))
    .bind(keep.map(|k| k.to_string()))
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(result.rows_affected())
}

pub(super) async fn access_revoked_since(
    pool: &SqlitePool,
    since: DateTime<Utc>,
) -> Result<Vec<RevokedAccess>, StoreError> {
    // Both halves read a partial index (migration 0003): only marked rows are in it.
    sqlx::query(
        "SELECT user_id, id AS session_id, revoked_at AS at FROM sessions WHERE revoked_at >= ?
         UNION ALL
         SELECT id AS user_id, NULL AS session_id, disabled_at AS at FROM users
         WHERE disabled_at >= ?
         ORDER BY at",
    )
    .bind(millis(since))
    .bind(millis(since))
    .fetch_all(pool)
    .await
    .map_err(db_err)?
    .iter()
    .map(revoked_from)
    .collect()
}
