//! Event subscriptions, their cursors and the delivery queue in PostgreSQL
//! (`migrations/postgres/0016_webhooks.sql`, [`SubscriptionStore`]). Claims skip rows another
//! process holds locked, so several API processes share one queue.

use async_trait::async_trait;
use chorus_protocol::EventKind;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::PostgresMetadataStore;
use super::rows::{db_err, get, seq_param};
use crate::StoreError;
use crate::outgoing::{
    AttemptRecord, Delivery, DeliveryStatus, DueDelivery, Endpoint, EventSubscription, NewDelivery,
    SubscriptionCursor, SubscriptionStore, kinds_from_text, kinds_to_text,
};

const SUBSCRIPTION_COLUMNS: &str = "id, workspace_id, url, secret, events, created_by, created_at";

fn kind_col(row: &PgRow) -> Result<EventKind, StoreError> {
    let text: String = get(row, "kind")?;
    EventKind::parse(&text).ok_or_else(|| StoreError::Backend(format!("unknown kind {text}")))
}

fn seq_col(row: &PgRow, column: &str) -> Result<u64, StoreError> {
    let seq: i64 = get(row, column)?;
    Ok(seq.max(0) as u64)
}

/// The "not leased" time: the epoch.
fn epoch() -> DateTime<Utc> {
    DateTime::from_timestamp(0, 0).unwrap_or_default()
}

impl PostgresMetadataStore {
    async fn subscription_from(&self, row: &PgRow) -> Result<EventSubscription, StoreError> {
        let id: Uuid = get(row, "id")?;
        let events: String = get(row, "events")?;
        let channels = sqlx::query(
            "SELECT channel_id FROM event_subscription_channels WHERE subscription_id = $1
             ORDER BY channel_id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let mut channel_ids = channels
            .iter()
            .map(|row| get::<Uuid>(row, "channel_id"))
            .collect::<Result<Vec<_>, _>>()?;
        channel_ids.sort();
        Ok(EventSubscription {
            id,
            workspace_id: get(row, "workspace_id")?,
            url: get(row, "url")?,
            secret: get(row, "secret")?,
            events: kinds_from_text(&events),
            channel_ids,
            created_by: get(row, "created_by")?,
            created_at: get(row, "created_at")?,
        })
    }
}

fn delivery_from(row: &PgRow) -> Result<Delivery, StoreError> {
    let status: String = get(row, "status")?;
    let status = DeliveryStatus::parse(&status)
        .ok_or_else(|| StoreError::Backend(format!("unknown delivery status {status}")))?;
    let code: Option<i32> = get(row, "last_status_code")?;
    let attempts: i32 = get(row, "attempts")?;
    Ok(Delivery {
        id: get(row, "id")?,
        subscription_id: get(row, "subscription_id")?,
        channel_id: get(row, "channel_id")?,
        seq: seq_col(row, "seq")?,
        kind: kind_col(row)?,
        status,
        attempts: attempts.max(0) as u32,
        last_status_code: code.and_then(|c| u16::try_from(c).ok()),
        last_error: get(row, "last_error")?,
        next_attempt_at: (status == DeliveryStatus::Pending)
            .then(|| get(row, "next_attempt_at"))
            .transpose()?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

#[async_trait]
impl SubscriptionStore for PostgresMetadataStore {
    async fn create_subscription(
        &self,
        sub: &EventSubscription,
        start: &[(Uuid, u64)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query(&format!(
            "INSERT INTO event_subscriptions ({SUBSCRIPTION_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(sub.id)
        .bind(sub.workspace_id)
        .bind(&sub.url)
        .bind(&sub.secret)
        .bind(kinds_to_text(&sub.events))
        .bind(sub.created_by)
        .bind(sub.created_at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        for (channel, seq) in start {
            sqlx::query(
                "INSERT INTO event_subscription_channels (subscription_id, channel_id, cursor)
                 VALUES ($1, $2, $3)",
            )
            .bind(sub.id)
            .bind(channel)
            .bind(seq_param(*seq)?)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn subscription(&self, id: Uuid) -> Result<Option<EventSubscription>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM event_subscriptions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        match row {
            Some(row) => Ok(Some(self.subscription_from(&row).await?)),
            None => Ok(None),
        }
    }

    async fn subscriptions_of(
        &self,
        workspace: Uuid,
    ) -> Result<Vec<EventSubscription>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM event_subscriptions WHERE workspace_id = $1
             ORDER BY created_at, id"
        ))
        .bind(workspace)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let mut subscriptions = Vec::with_capacity(rows.len());
        for row in &rows {
            subscriptions.push(self.subscription_from(row).await?);
        }
        Ok(subscriptions)
    }

    async fn update_subscription(
        &self,
        id: Uuid,
        url: Option<&str>,
        events: Option<&[EventKind]>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE event_subscriptions SET url = COALESCE($1, url), events = COALESCE($2, events)
             WHERE id = $3",
        )
        .bind(url)
        .bind(events.map(kinds_to_text))
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_subscription(&self, id: Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM event_subscriptions WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn subscription_cursors(&self) -> Result<Vec<SubscriptionCursor>, StoreError> {
        sqlx::query(
            "SELECT c.subscription_id, c.channel_id, c.cursor, s.events
             FROM event_subscription_channels c
             JOIN event_subscriptions s ON s.id = c.subscription_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(|row| {
            let events: String = get(row, "events")?;
            Ok(SubscriptionCursor {
                subscription_id: get(row, "subscription_id")?,
                channel_id: get(row, "channel_id")?,
                seq: seq_col(row, "cursor")?,
                events: kinds_from_text(&events),
            })
        })
        .collect()
    }

    async fn enqueue_deliveries(
        &self,
        subscription: Uuid,
        channel: Uuid,
        from: u64,
        to: u64,
        deliveries: &[NewDelivery],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let moved = sqlx::query(
            "UPDATE event_subscription_channels SET cursor = $1
             WHERE subscription_id = $2 AND channel_id = $3 AND cursor = $4",
        )
        .bind(seq_param(to)?)
        .bind(subscription)
        .bind(channel)
        .bind(seq_param(from)?)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if moved.rows_affected() != 1 {
            return Ok(false);
        }
        for delivery in deliveries {
            sqlx::query(
                "INSERT INTO webhook_deliveries (id, subscription_id, channel_id, seq, kind, body,
                     status, attempts, next_attempt_at, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7, $7)
                 ON CONFLICT (subscription_id, channel_id, seq) DO NOTHING",
            )
            .bind(delivery.id)
            .bind(subscription)
            .bind(delivery.channel_id)
            .bind(seq_param(delivery.seq)?)
            .bind(delivery.kind.as_str())
            .bind(&delivery.body)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    async fn due_endpoints(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Endpoint>, StoreError> {
        sqlx::query(
            "SELECT s.id, s.url, s.secret FROM event_subscriptions s
             WHERE EXISTS (SELECT 1 FROM webhook_deliveries d
                           WHERE d.subscription_id = s.id AND d.status = 'pending'
                             AND d.next_attempt_at <= $1 AND d.leased_until <= $1)
             LIMIT $2",
        )
        .bind(now)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(|row| {
            Ok(Endpoint {
                subscription_id: get(row, "id")?,
                url: get(row, "url")?,
                secret: get(row, "secret")?,
            })
        })
        .collect()
    }

    async fn claim_deliveries(
        &self,
        subscription: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let rows = sqlx::query(
            "UPDATE webhook_deliveries SET leased_until = $1
             WHERE id IN (SELECT id FROM webhook_deliveries
                          WHERE subscription_id = $2 AND status = 'pending'
                            AND next_attempt_at <= $3 AND leased_until <= $3
                          ORDER BY next_attempt_at, id LIMIT $4
                          FOR UPDATE SKIP LOCKED)
             RETURNING id, channel_id, seq, kind, body, attempts, next_attempt_at",
        )
        .bind(lease_until)
        .bind(subscription)
        .bind(now)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let mut claimed = rows
            .iter()
            .map(|row| {
                let attempts: i32 = get(row, "attempts")?;
                let due: DateTime<Utc> = get(row, "next_attempt_at")?;
                Ok((
                    due,
                    DueDelivery {
                        id: get(row, "id")?,
                        channel_id: get(row, "channel_id")?,
                        seq: seq_col(row, "seq")?,
                        kind: kind_col(row)?,
                        body: get(row, "body")?,
                        attempts: attempts.max(0) as u32,
                    },
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        // RETURNING gives no order.
        claimed.sort_by_key(|(due, d)| (*due, d.id));
        Ok(claimed.into_iter().map(|(_, d)| d).collect())
    }

    async fn record_attempt(
        &self,
        delivery: Uuid,
        record: &AttemptRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $1, attempts = $2, next_attempt_at = $3,
                 leased_until = $4, last_status_code = $5, last_error = $6, updated_at = $7
             WHERE id = $8",
        )
        .bind(record.status.as_str())
        .bind(i32::try_from(record.attempts).unwrap_or(i32::MAX))
        .bind(record.next_attempt_at)
        .bind(epoch())
        .bind(record.status_code.map(i32::from))
        .bind(record.error.as_deref())
        .bind(record.at)
        .bind(delivery)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn prune_deliveries(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM webhook_deliveries WHERE id IN (
                 SELECT id FROM webhook_deliveries
                 WHERE status <> 'pending' AND updated_at < $1 LIMIT $2)",
        )
        .bind(before)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected())
    }

    async fn deliveries(
        &self,
        subscription: Uuid,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        sqlx::query(
            "SELECT id, subscription_id, channel_id, seq, kind, status, attempts,
                    last_status_code, last_error, next_attempt_at, created_at, updated_at
             FROM webhook_deliveries
             WHERE subscription_id = $1 AND ($2::uuid IS NULL OR id < $2)
             ORDER BY id DESC LIMIT $3",
        )
        .bind(subscription)
        .bind(before)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(delivery_from)
        .collect()
    }
}
