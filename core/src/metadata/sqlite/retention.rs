//! Retention policies and legal holds in SQLite (`migrations/sqlite/0020_retention.sql`).

use async_trait::async_trait;
use uuid::Uuid;

use super::SqliteMetadataStore;
use super::rows::{db_err, flag_col, get, millis, now, uuid_col};
use crate::StoreError;
use crate::retention::{ChannelHold, RetentionStore, RetentionTarget, group_targets};

#[async_trait]
impl RetentionStore for SqliteMetadataStore {
    async fn retention_days(&self, workspace: Uuid) -> Result<Option<u32>, StoreError> {
        let days: Option<i64> =
            sqlx::query_scalar("SELECT days FROM workspace_retention WHERE workspace_id = ?")
                .bind(workspace.to_string())
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
                "INSERT INTO workspace_retention (workspace_id, days) VALUES (?, ?)
                 ON CONFLICT (workspace_id) DO UPDATE SET days = excluded.days",
            )
            .bind(workspace.to_string())
            .bind(i64::from(days)),
            None => sqlx::query("DELETE FROM workspace_retention WHERE workspace_id = ?")
                .bind(workspace.to_string()),
        };
        query.execute(&self.pool).await.map_err(db_err)?;
        Ok(())
    }

    async fn legal_hold(&self, channel: Uuid) -> Result<bool, StoreError> {
        let held: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM channel_legal_holds WHERE channel_id = ?")
                .bind(channel.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
        Ok(held.is_some())
    }

    async fn set_legal_hold(&self, channel: Uuid, held: bool) -> Result<(), StoreError> {
        let query = if held {
            sqlx::query(
                "INSERT INTO channel_legal_holds (channel_id, held_since) VALUES (?, ?)
                 ON CONFLICT (channel_id) DO NOTHING",
            )
            .bind(channel.to_string())
            .bind(millis(now()))
        } else {
            sqlx::query("DELETE FROM channel_legal_holds WHERE channel_id = ?")
                .bind(channel.to_string())
        };
        query.execute(&self.pool).await.map_err(db_err)?;
        Ok(())
    }

    async fn retention_targets(&self) -> Result<Vec<RetentionTarget>, StoreError> {
        let rows = sqlx::query(
            // The days are the effective ones: the policy, shortened to the plan's cap
            // (`crate::limits::effective_retention_days`); a cap alone is a policy too.
            "SELECT w.id AS workspace_id,
                    CASE WHEN r.days IS NULL THEN l.max_retention_days
                         WHEN l.max_retention_days IS NULL THEN r.days
                         ELSE MIN(r.days, l.max_retention_days) END AS days,
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
                uuid_col(row, "workspace_id")?,
                get::<i64>(row, "days")? as u32,
                ChannelHold {
                    channel_id: uuid_col(row, "channel_id")?,
                    held: flag_col(row, "held")?,
                },
            ));
        }
        Ok(group_targets(flat))
    }
}
