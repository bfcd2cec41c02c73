//! Invitations to join a workspace.

use chrono::{DateTime, Utc};
use sqlx::SqlitePool;
use uuid::Uuid;

use super::rows::{db_err, invite_from, millis, returning_row, role_col, role_rank, uuid_col};
use crate::StoreError;
use crate::model::Invite;

const INVITE_COLUMNS: &str = "id, workspace_id, email, role, token_hash, invited_by, created_at, \
                              expires_at, accepted_by, accepted_at";

pub(super) async fn create_invite(pool: &SqlitePool, invite: &Invite) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO workspace_invites ({INVITE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(invite.id.to_string())
    .bind(invite.workspace_id.to_string())
    .bind(&invite.email)
    .bind(invite.role.as_str())
    .bind(&invite.token_hash)
    .bind(invite.invited_by.to_string())
    .bind(millis(invite.created_at))
    .bind(millis(invite.expires_at))
    .bind(invite.accepted_by.map(|u| u.to_string()))
    .bind(invite.accepted_at.map(millis))
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(super) async fn invite_by_token_hash(
    pool: &SqlitePool,
    token_hash: &str,
) -> Result<Option<Invite>, StoreError> {
    sqlx::query(&format!(
        "SELECT {INVITE_COLUMNS} FROM workspace_invites WHERE token_hash = ?"
    ))
    .bind(token_hash)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?
    .map(|row| invite_from(&row))
    .transpose()
}

pub(super) async fn pending_invites(
    pool: &SqlitePool,
    workspace: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<Invite>, StoreError> {
    sqlx::query(&format!(
        "SELECT {INVITE_COLUMNS} FROM workspace_invites
         WHERE workspace_id = ? AND accepted_by IS NULL AND expires_at > ?
         ORDER BY created_at DESC, id DESC"
    ))
    .bind(workspace.to_string())
    .bind(millis(now))
    .fetch_all(pool)
    .await
    .map_err(db_err)?
    .iter()
    .map(invite_from)
    .collect()
}

pub(super) async fn accept_invite(
    pool: &SqlitePool,
    invite: Uuid,
    user: Uuid,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    // Writing first takes the write lock at once, so two acceptances serialise here and the
    // second one sees `accepted_by` set.
    let claim = sqlx::query(
        "UPDATE workspace_invites SET accepted_by = ?, accepted_at = ?
         WHERE id = ? AND accepted_by IS NULL
         RETURNING workspace_id, role",
    )
    .bind(user.to_string())
    .bind(millis(at))
    .bind(invite.to_string());
    let claimed = returning_row(claim, &mut *tx).await?;
    let Some(row) = claimed else {
        return Ok(false);
    };
    let workspace = uuid_col(&row, "workspace_id")?;
    let role = role_col(&row)?;
    sqlx::query(&format!(
        "INSERT INTO workspace_members (workspace_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = CASE
             WHEN {} < {} THEN excluded.role ELSE workspace_members.role END",
        role_rank("excluded.role"),
        role_rank("workspace_members.role"),
    ))
    .bind(workspace.to_string())
    .bind(user.to_string())
    .bind(role.as_str())
    .bind(millis(at))
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(true)
}
