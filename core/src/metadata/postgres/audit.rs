//! The audit log. Entry ids are UUIDv7, which sort by time: the id is both the order and
//! the paging cursor.

use sqlx::PgPool;
use uuid::Uuid;

use super::rows::{audit_from, db_err};
use crate::StoreError;
use crate::model::AuditEntry;

pub(super) async fn append_audit(pool: &PgPool, entry: &AuditEntry) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (id, workspace_id, actor_id, action, target_id, details, at)
         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)",
    )
    .bind(entry.id)
    .bind(entry.workspace_id)
    .bind(entry.actor_id)
    .bind(&entry.action)
    .bind(entry.target_id)
    .bind(entry.details.to_string())
    .bind(entry.at)
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(super) async fn audit_log(
    pool: &PgPool,
    workspace: Uuid,
    before: Option<Uuid>,
    limit: usize,
) -> Result<Vec<AuditEntry>, StoreError> {
    sqlx::query(
        "SELECT id, workspace_id, actor_id, action, target_id, details::text AS details, at
         FROM audit_log
         WHERE (workspace_id = $1
                OR (workspace_id IS NULL AND actor_id IN
                    (SELECT user_id FROM workspace_members WHERE workspace_id = $1)))
           AND ($2::uuid IS NULL OR id < $2)
         ORDER BY id DESC
         LIMIT $3",
    )
    .bind(workspace)
    .bind(before)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await
    .map_err(db_err)?
    .iter()
    .map(audit_from)
    .collect()
}
