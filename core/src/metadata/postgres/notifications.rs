//! Notifications and notification levels in PostgreSQL
//! (`migrations/postgres/0005_notifications.sql`). A notification is kept whole as JSON in
//! `body`; the other columns are what queries filter on.

use async_trait::async_trait;
use chorus_protocol::Notification;
use sqlx::Row;
use uuid::Uuid;

use super::PostgresMetadataStore;
use super::rows::{db_err, seq_param};
use crate::StoreError;
use crate::notify::{NotificationStore, NotifyLevel};

#[async_trait]
impl NotificationStore for PostgresMetadataStore {
    async fn set_notify_level(
        &self,
        channel: Uuid,
        user: Uuid,
        level: Option<NotifyLevel>,
    ) -> Result<bool, StoreError> {
        let member =
            sqlx::query("SELECT 1 FROM channel_members WHERE channel_id = $1 AND user_id = $2")
                .bind(channel)
                .bind(user)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
        if member.is_none() {
            return Ok(false);
        }
        match level {
            Some(level) => sqlx::query(
                "INSERT INTO notify_levels (channel_id, user_id, level) VALUES ($1, $2, $3)
                 ON CONFLICT (channel_id, user_id) DO UPDATE SET level = excluded.level",
            )
            .bind(channel)
            .bind(user)
            .bind(level.as_str()),
            None => sqlx::query("DELETE FROM notify_levels WHERE channel_id = $1 AND user_id = $2")
                .bind(channel)
                .bind(user),
        }
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(true)
    }

    async fn notify_levels(&self, channel: Uuid) -> Result<Vec<(Uuid, NotifyLevel)>, StoreError> {
        sqlx::query("SELECT user_id, level FROM notify_levels WHERE channel_id = $1")
            .bind(channel)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(|row| {
                let user: Uuid = row.try_get("user_id").map_err(db_err)?;
                let level: String = row.try_get("level").map_err(db_err)?;
                Ok((
                    user,
                    NotifyLevel::parse(&level)
                        .ok_or_else(|| StoreError::Backend(format!("bad level {level}")))?,
                ))
            })
            .collect()
    }

    async fn record_notifications(
        &self,
        notifications: &[(Uuid, Notification)],
    ) -> Result<Vec<bool>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let mut fresh = Vec::with_capacity(notifications.len());
        for (user, n) in notifications {
            let body = serde_json::to_string(n).map_err(StoreError::backend)?;
            let result = sqlx::query(
                "INSERT INTO notifications
                   (id, user_id, channel_id, seq, is_mention, created_at, body)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
            )
            .bind(n.id)
            .bind(user)
            .bind(n.channel_id)
            .bind(n.seq.map(seq_param).transpose()?)
            .bind(n.kind.is_mention())
            .bind(n.created_at)
            .bind(body)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            fresh.push(result.rows_affected() == 1);
        }
        tx.commit().await.map_err(db_err)?;
        Ok(fresh)
    }

    async fn notifications_of(
        &self,
        user: Uuid,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = sqlx::query(
            "SELECT body FROM notifications WHERE user_id = $1 AND ($2::uuid IS NULL OR
               (created_at, id) < (SELECT created_at, id FROM notifications
                                   WHERE id = $2 AND user_id = $1))
             ORDER BY created_at DESC, id DESC LIMIT $3",
        )
        .bind(user)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|row| {
                let body: String = row.try_get("body").map_err(db_err)?;
                serde_json::from_str(&body).map_err(StoreError::backend)
            })
            .collect()
    }

    async fn mention_counts(
        &self,
        user: Uuid,
        channels: &[Uuid],
    ) -> Result<Vec<(Uuid, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT n.channel_id AS channel_id, COUNT(*) AS mentions
             FROM notifications n JOIN channel_members m
               ON m.channel_id = n.channel_id AND m.user_id = n.user_id
             WHERE n.user_id = $1 AND n.is_mention AND n.seq > m.last_read_seq
               AND n.channel_id = ANY($2)
             GROUP BY n.channel_id",
        )
        .bind(user)
        .bind(channels)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|row| {
                let channel: Uuid = row.try_get("channel_id").map_err(db_err)?;
                let mentions: i64 = row.try_get("mentions").map_err(db_err)?;
                Ok((channel, mentions as u64))
            })
            .collect()
    }
}
