//! Focus mode's state in PostgreSQL (`migrations/postgres/0017_focus.sql`): settings, sessions,
//! held notifications, digests and automatic replies. Holding locks the session row (`FOR
//! SHARE`) and ending updates it first, so the two are ordered: a notification is held only by a
//! session still open, and an ending session takes every item it held (see
//! `crate::focus::store`).

use async_trait::async_trait;
use chorus_protocol::FocusDigest;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::PostgresMetadataStore;
use super::rows::{db_err, get, seq_param};
use crate::StoreError;
use crate::focus::digest::{HeldItem, group};
use crate::focus::policy::FocusPolicy;
use crate::focus::store::{
    policy_columns, policy_from_columns, settings_columns, settings_from_columns, source_from,
};
use crate::focus::{FocusSession, FocusSettings, FocusStore, HoldOutcome, HoldRequest, InFocus};

const SESSION_COLUMNS: &str = "id, user_id, source, started_at, ends_at, ended_at";

fn session_from(row: &PgRow) -> Result<FocusSession, StoreError> {
    Ok(FocusSession {
        id: get(row, "id")?,
        user_id: get(row, "user_id")?,
        source: source_from(&get::<String>(row, "source")?)?,
        started_at: get(row, "started_at")?,
        ends_at: get(row, "ends_at")?,
        ended_at: get(row, "ended_at")?,
    })
}

#[async_trait]
impl FocusStore for PostgresMetadataStore {
    async fn set_focus_settings(
        &self,
        user: Uuid,
        settings: &FocusSettings,
    ) -> Result<(), StoreError> {
        let (time_zone, schedule, rules) = settings_columns(settings)?;
        sqlx::query(
            "INSERT INTO focus_settings (user_id, time_zone, schedule, rules, auto_reply, next_check_at)
             VALUES ($1, $2, $3, $4, $5, NULL)
             ON CONFLICT (user_id) DO UPDATE SET time_zone = excluded.time_zone,
               schedule = excluded.schedule, rules = excluded.rules,
               auto_reply = excluded.auto_reply, next_check_at = NULL",
        )
        .bind(user)
        .bind(time_zone)
        .bind(schedule)
        .bind(rules)
        .bind(&settings.auto_reply)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn focus_settings(&self, user: Uuid) -> Result<Option<FocusSettings>, StoreError> {
        let row = sqlx::query(
            "SELECT time_zone, schedule, rules, auto_reply FROM focus_settings WHERE user_id = $1",
        )
        .bind(user)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.map(|row| {
            settings_from_columns(
                &get::<String>(&row, "time_zone")?,
                get::<Option<String>>(&row, "schedule")?.as_deref(),
                &get::<String>(&row, "rules")?,
                get(&row, "auto_reply")?,
            )
        })
        .transpose()
    }

    async fn open_focus_session(&self, user: Uuid) -> Result<Option<FocusSession>, StoreError> {
        sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM focus_sessions WHERE user_id = $1 AND ended_at IS NULL"
        ))
        .bind(user)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?
        .map(|row| session_from(&row))
        .transpose()
    }

    async fn start_focus_session(
        &self,
        session: &FocusSession,
        window_start: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO focus_sessions (id, user_id, source, started_at, ends_at, window_start)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(session.id)
        .bind(session.user_id)
        .bind(session.source.as_str())
        .bind(session.started_at)
        .bind(session.ends_at)
        .bind(window_start)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(result.rows_affected() == 1)
    }

    async fn extend_focus_session(
        &self,
        user: Uuid,
        ends_at: Option<DateTime<Utc>>,
    ) -> Result<Option<FocusSession>, StoreError> {
        let query = format!(
            "UPDATE focus_sessions SET ends_at = $1, source = 'manual'
             WHERE user_id = $2 AND ended_at IS NULL RETURNING {SESSION_COLUMNS}"
        );
        let rows = sqlx::query(&query)
            .bind(ends_at)
            .bind(user)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.first().map(session_from).transpose()
    }

    async fn in_focus(&self, users: &[Uuid]) -> Result<Vec<InFocus>, StoreError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT s.id, s.user_id, s.source, s.started_at, s.ends_at, s.ended_at,
                    f.rules, f.auto_reply
             FROM focus_sessions s LEFT JOIN focus_settings f ON f.user_id = s.user_id
             WHERE s.ended_at IS NULL AND s.user_id = ANY($1)",
        )
        .bind(users)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|row| {
                let rules: Option<String> = get(row, "rules")?;
                Ok(InFocus {
                    session: session_from(row)?,
                    rules: rules
                        .map(|r| serde_json::from_str(&r))
                        .transpose()
                        .map_err(StoreError::backend)?
                        .unwrap_or_default(),
                    auto_reply: get(row, "auto_reply")?,
                })
            })
            .collect()
    }

    async fn hold_notifications(
        &self,
        requests: &[HoldRequest],
    ) -> Result<Vec<HoldOutcome>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let mut outcomes = Vec::with_capacity(requests.len());
        for request in requests {
            let n = &request.notification;
            let body = serde_json::to_string(n).map_err(StoreError::backend)?;
            let recorded = sqlx::query(
                "INSERT INTO notifications
                   (id, user_id, channel_id, seq, is_mention, held, created_at, body)
                 VALUES ($1, $2, $3, $4, $5, TRUE, $6, $7) ON CONFLICT (id) DO NOTHING",
            )
            .bind(n.id)
            .bind(request.user)
            .bind(n.channel_id)
            .bind(n.seq.map(seq_param).transpose()?)
            .bind(n.kind.is_mention())
            .bind(n.created_at)
            .bind(body)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            if recorded.rows_affected() == 0 {
                outcomes.push(HoldOutcome::Duplicate);
                continue;
            }
            // FOR SHARE: an end of this session waits for this transaction, and this one
            // waits for an end already under way (and then finds the session ended).
            let open = sqlx::query(
                "SELECT 1 FROM focus_sessions WHERE id = $1 AND ended_at IS NULL FOR SHARE",
            )
            .bind(request.session)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
            let held = sqlx::query(
                "INSERT INTO focus_held (notification_id, user_id, session_id, priority)
                 SELECT $1, $2, id, $3 FROM focus_sessions WHERE id = $4 AND ended_at IS NULL",
            )
            .bind(n.id)
            .bind(request.user)
            .bind(i16::from(request.priority))
            .bind(request.session)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            if open.is_some() && held.rows_affected() == 1 {
                outcomes.push(HoldOutcome::Held);
            } else {
                sqlx::query("UPDATE notifications SET held = FALSE WHERE id = $1")
                    .bind(n.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                outcomes.push(HoldOutcome::Deliver);
            }
        }
        tx.commit().await.map_err(db_err)?;
        Ok(outcomes)
    }

    async fn end_focus_session(
        &self,
        user: Uuid,
        ended_at: DateTime<Utc>,
    ) -> Result<Option<FocusDigest>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let query = format!(
            "UPDATE focus_sessions SET ended_at = $1 WHERE user_id = $2 AND ended_at IS NULL
             RETURNING {SESSION_COLUMNS}"
        );
        let rows = sqlx::query(&query)
            .bind(ended_at)
            .bind(user)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        let Some(session) = rows.first().map(session_from).transpose()? else {
            return Ok(None);
        };
        let session_id = session.id;
        let held = sqlx::query(
            "SELECT h.priority, n.body FROM focus_held h
             JOIN notifications n ON n.id = h.notification_id WHERE h.session_id = $1",
        )
        .bind(session_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?
        .iter()
        .map(|row| {
            let priority: i16 = row.try_get("priority").map_err(db_err)?;
            let body: String = row.try_get("body").map_err(db_err)?;
            Ok(HeldItem {
                notification: serde_json::from_str(&body).map_err(StoreError::backend)?,
                priority: priority.clamp(0, 100) as u8,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        sqlx::query(
            "UPDATE notifications SET held = FALSE
             WHERE id IN (SELECT notification_id FROM focus_held WHERE session_id = $1)",
        )
        .bind(session_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query("DELETE FROM focus_held WHERE session_id = $1")
            .bind(session_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let digest = FocusDigest {
            id: Uuid::now_v7(),
            session_id: session.id,
            started_at: session.started_at,
            ended_at,
            total: held.len() as u64,
            channels: group(held),
        };
        sqlx::query(
            "INSERT INTO focus_digests (id, user_id, session_id, created_at, body)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(digest.id)
        .bind(user)
        .bind(session_id)
        .bind(ended_at)
        .bind(serde_json::to_string(&digest).map_err(StoreError::backend)?)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(Some(digest))
    }

    async fn focus_digests(
        &self,
        user: Uuid,
        limit: usize,
    ) -> Result<Vec<FocusDigest>, StoreError> {
        sqlx::query(
            "SELECT body FROM focus_digests WHERE user_id = $1
             ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(user)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(|row| {
            let body: String = get(row, "body")?;
            serde_json::from_str(&body).map_err(StoreError::backend)
        })
        .collect()
    }

    async fn due_focus_users(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Uuid>, StoreError> {
        sqlx::query(
            "SELECT user_id FROM focus_settings
               WHERE schedule IS NOT NULL AND (next_check_at IS NULL OR next_check_at <= $1)
             UNION
             SELECT user_id FROM focus_sessions WHERE ended_at IS NULL AND ends_at <= $1
             LIMIT $2",
        )
        .bind(now)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(|row| get::<Uuid>(row, "user_id"))
        .collect()
    }

    async fn set_next_focus_check(
        &self,
        user: Uuid,
        at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        // A schedule that never changes again is parked at infinity rather than NULL (which
        // means "look at the next tick").
        sqlx::query(
            "UPDATE focus_settings SET next_check_at = COALESCE($1, 'infinity'::timestamptz)
             WHERE user_id = $2",
        )
        .bind(at)
        .bind(user)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn record_auto_reply(&self, session: Uuid, sender: Uuid) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO focus_auto_replies (session_id, sender_id) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
        )
        .bind(session)
        .bind(sender)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(result.rows_affected() == 1)
    }

    async fn open_focus_sessions_in(
        &self,
        workspace: Uuid,
    ) -> Result<Vec<FocusSession>, StoreError> {
        sqlx::query(
            "SELECT s.id, s.user_id, s.source, s.started_at, s.ends_at, s.ended_at
             FROM focus_sessions s JOIN workspace_members m ON m.user_id = s.user_id
             WHERE m.workspace_id = $1 AND s.ended_at IS NULL ORDER BY s.started_at, s.id",
        )
        .bind(workspace)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(session_from)
        .collect()
    }

    async fn focus_sessions_of(
        &self,
        user: Uuid,
        since: DateTime<Utc>,
    ) -> Result<Vec<FocusSession>, StoreError> {
        sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM focus_sessions WHERE user_id = $1 AND started_at >= $2
             ORDER BY started_at, id"
        ))
        .bind(user)
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(session_from)
        .collect()
    }

    async fn set_focus_policy(
        &self,
        workspace: Uuid,
        policy: Option<&FocusPolicy>,
    ) -> Result<(), StoreError> {
        let query = match policy {
            Some(policy) => {
                let (time_zone, hours) = policy_columns(policy)?;
                sqlx::query(
                    "INSERT INTO workspace_focus_policies (workspace_id, time_zone, hours)
                     VALUES ($1, $2, $3)
                     ON CONFLICT (workspace_id) DO UPDATE
                       SET time_zone = excluded.time_zone, hours = excluded.hours",
                )
                .bind(workspace)
                .bind(time_zone)
                .bind(hours)
            }
            None => sqlx::query("DELETE FROM workspace_focus_policies WHERE workspace_id = $1")
                .bind(workspace),
        };
        query.execute(&self.pool).await.map_err(db_err)?;
        Ok(())
    }

    async fn focus_policy(&self, workspace: Uuid) -> Result<Option<FocusPolicy>, StoreError> {
        sqlx::query("SELECT time_zone, hours FROM workspace_focus_policies WHERE workspace_id = $1")
            .bind(workspace)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .map(|row| {
                policy_from_columns(
                    &get::<String>(&row, "time_zone")?,
                    &get::<String>(&row, "hours")?,
                )
            })
            .transpose()
    }

    async fn focus_policies_for(&self, user: Uuid) -> Result<Vec<(Uuid, FocusPolicy)>, StoreError> {
        sqlx::query(
            "SELECT p.workspace_id, p.time_zone, p.hours
             FROM workspace_focus_policies p
             JOIN workspace_members m ON m.workspace_id = p.workspace_id
             WHERE m.user_id = $1 ORDER BY p.workspace_id",
        )
        .bind(user)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(|row| {
            Ok((
                get(row, "workspace_id")?,
                policy_from_columns(
                    &get::<String>(row, "time_zone")?,
                    &get::<String>(row, "hours")?,
                )?,
            ))
        })
        .collect()
    }
}
