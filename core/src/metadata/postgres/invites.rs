//! Invitations to join a workspace.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::rows::{db_err, get, invite_from, role_col, role_rank};
use crate::StoreError;
use crate::model::Invite;

const INVITE_COLUMNS: &str = "id, workspace_id, email, role, token_hash, invited_by, created_at, \
                              expires_at, accepted_by, accepted_at";

pub(super) async fn create_invite(pool: &PgPool, invite: &Invite) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO workspace_invites ({INVITE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    ))
    .bind(invite.id)
    .bind(invite.workspace_id)
    .bind(&invite.email)
    .bind(invite.role.as_str())
    .bind(&invite.token_hash)
    .bind(invite.invited_by)
    .bind(invite.created_at)
    .bind(invite.expires_at)
    .bind(invite.accepted_by)
    .bind(invite.accepted_at)
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(super) async fn invite_by_token_hash(
    pool: &PgPool,
    token_hash: &str,
) -> Result<Option<Invite>, StoreError> {
    sqlx::query(&format!(
        "SELECT {INVITE_COLUMNS} FROM workspace_invites WHERE token_hash = $1"
    ))
    .bind(token_hash)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?
    .map(|row| invite_from(&row))
    .transpose()
}

pub(super) async fn pending_invites(
    pool: &PgPool,
    workspace: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<Invite>, StoreError> {
    sqlx::query(&format!(
        "SELECT {INVITE_COLUMNS} FROM workspace_invites
         WHERE workspace_id = $1 AND accepted_by IS NULL AND expires_at > $2
         ORDER BY created_at DESC, id DESC"
    ))
    .bind(workspace)
    .bind(now)
    .fetch_all(pool)
    .await
    .map_err(db_err)?
    .iter()
    .map(invite_from)
    .collect()
}

pub(super) async fn accept_invite(
    pool: &PgPool,
    invite: Uuid,
    user: Uuid,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    // The row lock makes a concurrent second acceptance wait here, then find `accepted_by` set.
    let claimed = sqlx::query(
        "UPDATE workspace_invites SET accepted_by = $1, accepted_at = $2
         WHERE id = $3 AND accepted_by IS NULL
         RETURNING workspace_id, role",
    )
    .bind(user)
    .bind(at)
    .bind(invite)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_err)?;
    let Some(row) = claimed else {
        return Ok(false);
    };
    let workspace: Uuid = get(&row, "workspace_id")?;
    let role = role_col(&row)?;
    sqlx::query(&format!(
        "INSERT INTO workspace_members (workspace_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = CASE
             WHEN {} < {} THEN excluded.role ELSE workspace_members.role END",
        role_rank("excluded.role"),
        role_rank("workspace_members.role"),
    ))
    .bind(workspace)
    .bind(user)
    .bind(role.as_str())
    .bind(at)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(true)
}
