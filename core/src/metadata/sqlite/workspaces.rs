//! Workspaces and their members.

use sqlx::{Row, SqlitePool};
use uuid::Uuid;

use super::rows::{
    db_err, from_millis, millis, now, returning_row, role_col, user_from, workspace_from,
};
use crate::StoreError;
use crate::model::{Role, Workspace, WorkspaceMember};

pub(super) async fn create_workspace(
    pool: &SqlitePool,
    name: &str,
    owner: Uuid,
) -> Result<Workspace, StoreError> {
    let workspace = Workspace {
        id: Uuid::now_v7(),
        name: name.to_string(),
        created_by: owner,
        created_at: now(),
    };
    let mut tx = pool.begin().await.map_err(db_err)?;
    sqlx::query("INSERT INTO workspaces (id, name, created_by, created_at) VALUES (?, ?, ?, ?)")
        .bind(workspace.id.to_string())
        .bind(&workspace.name)
        .bind(owner.to_string())
        .bind(millis(workspace.created_at))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    sqlx::query(
        "INSERT INTO workspace_members (workspace_id, user_id, role, joined_at)
         VALUES (?, ?, 'owner', ?)",
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

pub(super) async fn workspace(
    pool: &SqlitePool,
    id: Uuid,
) -> Result<Option<Workspace>, StoreError> {
    sqlx::query("SELECT id, name, created_by, created_at FROM workspaces WHERE id = ?")
        .bind(id.to_string())
        .fetch_optional(pool)
        .await
        .map_err(db_err)?
        .map(|row| workspace_from(&row))
        .transpose()
}

pub(super) async fn rename_workspace(
    pool: &SqlitePool,
    id: Uuid,
    name: &str,
) -> Result<Workspace, StoreError> {
    let query = sqlx::query(
        "UPDATE workspaces SET name = ? WHERE id = ? RETURNING id, name, created_by, created_at",
    )
    .bind(name)
    .bind(id.to_string());
    returning_row(query, pool)
        .await?
        .map(|row| workspace_from(&row))
        .transpose()?
        .ok_or_else(|| StoreError::NotFound(format!("workspace {id}")))
}

pub(super) async fn workspaces_of(
    pool: &SqlitePool,
    user: Uuid,
) -> Result<Vec<(Workspace, Role)>, StoreError> {
    sqlx::query(
        "SELECT w.id, w.name, w.created_by, w.created_at, m.role
         FROM workspaces w JOIN workspace_members m ON m.workspace_id = w.id
         WHERE m.user_id = ? ORDER BY w.created_at, w.id",
    )
    .bind(user.to_string())
    .fetch_all(pool)
    .await
    .map_err(db_err)?
    .iter()
    .map(|row| Ok((workspace_from(row)?, role_col(row)?)))
    .collect()
}

pub(super) async fn workspace_role(
    pool: &SqlitePool,
    workspace: Uuid,
    user: Uuid,
) -> Result<Option<Role>, StoreError> {
    sqlx::query("SELECT role FROM workspace_members WHERE workspace_id = ? AND user_id = ?")
        .bind(workspace.to_string())
        .bind(user.to_string())
        .fetch_optional(pool)
        .await
        .map_err(db_err)?
        .map(|row| role_col(&row))
        .transpose()
}

pub(super) async fn set_workspace_member(
    pool: &SqlitePool,
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
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(super) async fn workspace_members(
    pool: &SqlitePool,
    workspace: Uuid,
) -> Result<Vec<WorkspaceMember>, StoreError> {
    sqlx::query(
        "SELECT u.id, u.email, u.display_name, u.created_at, u.avatar_url, u.time_zone,
                u.disabled_at, m.role, m.joined_at
         FROM workspace_members m JOIN users u ON u.id = m.user_id
         WHERE m.workspace_id = ? ORDER BY m.joined_at, m.user_id",
    )
    .bind(workspace.to_string())
    .fetch_all(pool)
    .await
    .map_err(db_err)?
    .iter()
    .map(|row| {
        Ok(WorkspaceMember {
            user: user_from(row)?,
            role: role_col(row)?,
            joined_at: from_millis(row.try_get("joined_at").map_err(db_err)?),
        })
    })
    .collect()
}

pub(super) async fn remove_workspace_member(
    pool: &SqlitePool,
    workspace: Uuid,
    user: Uuid,
) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    sqlx::query(
        "DELETE FROM channel_members
         WHERE user_id = ? AND channel_id IN (SELECT id FROM channels WHERE workspace_id = ?)",
    )
    .bind(user.to_string())
    .bind(workspace.to_string())
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    let removed =
        sqlx::query("DELETE FROM workspace_members WHERE workspace_id = ? AND user_id = ?")
            .bind(workspace.to_string())
            .bind(user.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
    tx.commit().await.map_err(db_err)?;
    Ok(removed == 1)
}

pub(super) async fn count_owners(pool: &SqlitePool, workspace: Uuid) -> Result<u64, StoreError> {
    let count: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM workspace_members WHERE workspace_id = ? AND role = 'owner'",
    )
    .bind(workspace.to_string())
    .fetch_one(pool)
    .await
    .map_err(db_err)?;
    u64::try_from(count).map_err(StoreError::backend)
}
