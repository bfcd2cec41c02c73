//! The audit log. Entry ids are UUIDv7, whose text sorts by time: the id is both the order and
//! the paging cursor.

use sqlx::SqlitePool;
use uuid::Uuid;

use super::rows::{audit_from, db_err, millis};
use crate::StoreError;
use crate::model::AuditEntry;

pub(super) async fn append_audit(pool: &SqlitePool, entry: &AuditEntry) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (id, workspace_id, actor_id, action, target_id, details, at)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(entry.id.to_string())
    .bind(entry.workspace_id.map(|id| id.to_string()))
    .bind(entry.actor_id.map(|id| id.to_string()))
    .bind(&entry.action)
    .bind(entry.target_id.map(|id| id.to_string()))
    .bind(entry.details.to_string())
    .bind(millis(entry.at))
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(super) async fn audit_log(
    pool: &SqlitePool,
    workspace: Uuid,
    before: Option<Uuid>,
    limit: usize,
) -> Result<Vec<AuditEntry>, StoreError> {
    let before = before.map(|id| id.to_string());
    sqlx::query(
        "SELECT id, workspace_id, actor_id, action, target_id, details, at FROM audit_log
         WHERE (workspace_id = ?
                OR (workspace_id IS NULL AND actor_id IN
                    (SELECT user_id FROM workspace_members WHERE workspace_id = ?)))
           AND (? IS NULL OR id < ?)
         ORDER BY id DESC
         LIMIT ?",
    )
    .bind(workspace.to_string())
    .bind(workspace.to_string())
    .bind(before.as_deref())
    .bind(before.as_deref())
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await
    .map_err(db_err)?
    .iter()
    .map(audit_from)
    .collect()
}
