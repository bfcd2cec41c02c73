//! Retention policies and legal holds in PostgreSQL (`migrations/postgres/0020_retention.sql`).

use async_trait::async_trait;
use chrono::Utc;
use sqlx::Row;
use uuid::Uuid;

use super::PostgresMetadataStore;
use crate::StoreError;
use crate::retention::{ChannelHold, RetentionStore, RetentionTarget, group_targets};

fn db_err(err: sqlx::Error) -> StoreError {
    StoreError::backend(err)
}

#[async_trait]
impl RetentionStore for PostgresMetadataStore {
    async fn retention_days(&self, workspace: Uuid) -> Result<Option<u32>, StoreError> {
        let days: Option<i32> =
            sqlx::query_scalar("SELECT days FROM workspace_retention WHERE workspace_id = $1")
                .bind(workspace)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
        Ok(days.map(|d| d as u32))
    }

    async fn set_retention_days(
        &self,
        workspace: Uuid,
        days: Option<u32>,
    ) -> Result<(), StoreError> {
        let query = match days {
            Some(days) => sqlx::query(
                "INSERT INTO workspace_retention (workspace_id, days) VALUES ($1, $2)
                 ON CONFLICT (workspace_id) DO UPDATE SET days = excluded.days",
            )
            .bind(workspace)
            .bind(days as i32),
            None => sqlx::query("DELETE FROM workspace_retention WHERE workspace_id = $1")
                .bind(workspace),
        };
        query.execute(&self.pool).await.map_err(db_err)?;
        Ok(())
    }

    async fn legal_hold(&self, channel: Uuid) -> Result<bool, StoreError> {
        let held: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM channel_legal_holds WHERE channel_id = $1")
                .bind(channel)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
        Ok(held.is_some())
    }

    async fn set_legal_hold(&self, channel: Uuid, held: bool) -> Result<(), StoreError> {
        let query = if held {
            sqlx::query(
                "INSERT INTO channel_legal_holds (channel_id, held_since) VALUES ($1, $2)
                 ON CONFLICT (channel_id) DO NOTHING",
            )
            .bind(channel)
            .bind(Utc::now())
        } else {
            sqlx::query("DELETE FROM channel_legal_holds WHERE channel_id = $1").bind(channel)
        };
        query.execute(&self.pool).await.map_err(db_err)?;
        Ok(())
    }

    async fn retention_targets(&self) -> Result<Vec<RetentionTarget>, StoreError> {
        let rows = sqlx::query(
            // The days are the effective ones: the policy, shortened to the plan's cap
            // (`crate::limits::effective_retention_days`); a cap alone is a policy too.
            // LEAST ignores NULLs.
            "SELECT w.id AS workspace_id,
                    LEAST(r.days, l.max_retention_days) AS days,
                    c.id AS channel_id,
                    (h.channel_id IS NOT NULL) AS held
             FROM workspaces w
             LEFT JOIN workspace_retention r ON r.workspace_id = w.id
             LEFT JOIN workspace_limits l ON l.workspace_id = w.id
             JOIN channels c ON c.workspace_id = w.id
             LEFT JOIN channel_legal_holds h ON h.channel_id = c.id
             WHERE r.days IS NOT NULL OR l.max_retention_days IS NOT NULL
             ORDER BY w.id, c.id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let mut flat = Vec::with_capacity(rows.len());
        for row in &rows {
            flat.push((
                row.try_get::<Uuid, _>("workspace_id").map_err(db_err)?,
                row.try_get::<i32, _>("days").map_err(db_err)? as u32,
                ChannelHold {
                    channel_id: row.try_get("channel_id").map_err(db_err)?,
                    held: row.try_get("held").map_err(db_err)?,
                },
            ));
        }
        Ok(group_targets(flat))
    }
}
