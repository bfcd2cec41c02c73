//! Workspace limits and usage in PostgreSQL (`migrations/postgres/0023_workspace_limits.sql`).

use async_trait::async_trait;
use sqlx::Row;
use uuid::Uuid;

use super::PostgresMetadataStore;
use super::rows::db_err;
use crate::StoreError;
use crate::limits::{WorkspaceLimits, WorkspaceLimitsStore, WorkspaceUsage};

fn to_u32(value: Option<i32>) -> Option<u32> {
    value.map(|v| u32::try_from(v).unwrap_or(u32::MAX))
}

#[async_trait]
impl WorkspaceLimitsStore for PostgresMetadataStore {
    async fn workspace_limits(&self, workspace: Uuid) -> Result<WorkspaceLimits, StoreError> {
        let row = sqlx::query(
            "SELECT max_members, max_channels, messages_per_minute, max_retention_days
             FROM workspace_limits WHERE workspace_id = $1",
        )
        .bind(workspace)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        let Some(row) = row else {
            return Ok(WorkspaceLimits::default());
        };
        let col = |name: &str| row.try_get::<Option<i32>, _>(name).map_err(db_err);
        Ok(WorkspaceLimits {
            max_members: to_u32(col("max_members")?),
            max_channels: to_u32(col("max_channels")?),
            messages_per_minute: to_u32(col("messages_per_minute")?),
            max_retention_days: to_u32(col("max_retention_days")?),
        })
    }

    async fn set_workspace_limits(
        &self,
        workspace: Uuid,
        limits: &WorkspaceLimits,
    ) -> Result<(), StoreError> {
        let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM workspaces WHERE id = $1")
            .bind(workspace)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!("workspace {workspace}")));
        }
        let query = if *limits == WorkspaceLimits::default() {
            sqlx::query("DELETE FROM workspace_limits WHERE workspace_id = $1").bind(workspace)
        } else {
            sqlx::query(
                "INSERT INTO workspace_limits
                     (workspace_id, max_members, max_channels, messages_per_minute,
                      max_retention_days)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (workspace_id) DO UPDATE SET
                     max_members = excluded.max_members,
                     max_channels = excluded.max_channels,
                     messages_per_minute = excluded.messages_per_minute,
                     max_retention_days = excluded.max_retention_days",
            )
            .bind(workspace)
            .bind(
                limits
                    .max_members
                    .map(|v| i32::try_from(v).unwrap_or(i32::MAX)),
            )
            .bind(
                limits
                    .max_channels
                    .map(|v| i32::try_from(v).unwrap_or(i32::MAX)),
            )
            .bind(
                limits
                    .messages_per_minute
                    .map(|v| i32::try_from(v).unwrap_or(i32::MAX)),
            )
            .bind(
                limits
                    .max_retention_days
                    .map(|v| i32::try_from(v).unwrap_or(i32::MAX)),
            )
        };
        query.execute(&self.pool).await.map_err(db_err)?;
        Ok(())
    }

    async fn workspace_usage(&self, workspace: Uuid) -> Result<WorkspaceUsage, StoreError> {
        let row = sqlx::query(
            "SELECT
                 (SELECT COUNT(*) FROM workspace_members m
                  WHERE m.workspace_id = $1
                    AND NOT EXISTS (SELECT 1 FROM bots b WHERE b.user_id = m.user_id))
                     AS members,
                 (SELECT COUNT(*) FROM channels c
                  WHERE c.workspace_id = $1 AND c.kind <> 'dm') AS channels",
        )
        .bind(workspace)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        let count = |name: &str| row.try_get::<i64, _>(name).map_err(db_err);
        Ok(WorkspaceUsage {
            members: count("members")?.max(0) as u64,
            channels: count("channels")?.max(0) as u64,
        })
    }
}
