//! Message history in PostgreSQL, for deployments that keep everything there (table `messages`,
//! primary key (channel_id, seq), created by the same migrations as the metadata).

use async_trait::async_trait;
use chorus_protocol::MessageEvent;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::{QueryBuilder, Row};
use uuid::Uuid;

use super::{HistoryQuery, MessageStore};
use crate::StoreError;
use crate::metadata::postgres::connect_pool;

/// Rows per INSERT: 7 binds each, well under PostgreSQL's 65,535 bind parameters.
const ROWS_PER_INSERT: usize = 5_000;

/// History in PostgreSQL.
#[derive(Clone)]
pub struct PostgresMessageStore {
    pool: PgPool,
}

impl PostgresMessageStore {
    /// Connects a pool (failing within 5 s if unreachable) and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Ok(PostgresMessageStore {
            pool: connect_pool(url).await?,
        })
    }
}

fn event_from(row: &PgRow) -> Result<MessageEvent, StoreError> {
    let seq: i64 = row.try_get("seq").map_err(StoreError::backend)?;
    Ok(MessageEvent {
        channel_id: row.try_get("channel_id").map_err(StoreError::backend)?,
        seq: seq.max(0) as u64,
        id: row.try_get("id").map_err(StoreError::backend)?,
        author_id: row.try_get("author_id").map_err(StoreError::backend)?,
        text: row.try_get("text").map_err(StoreError::backend)?,
        created_at: row.try_get("created_at").map_err(StoreError::backend)?,
        nonce: row.try_get("nonce").map_err(StoreError::backend)?,
    })
}

#[async_trait]
impl MessageStore for PostgresMessageStore {
    async fn append(&self, messages: &[MessageEvent]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::backend)?;
        for chunk in messages.chunks(ROWS_PER_INSERT) {
            let mut insert = QueryBuilder::new(
                "INSERT INTO messages (channel_id, seq, id, author_id, text, created_at, nonce) ",
            );
            insert.push_values(chunk, |mut row, m| {
                row.push_bind(m.channel_id)
                    .push_bind(m.seq as i64)
                    .push_bind(m.id)
                    .push_bind(m.author_id)
                    .push_bind(&m.text)
                    .push_bind(m.created_at)
                    .push_bind(&m.nonce);
            });
            // A replayed (channel, seq) is already there with the same values.
            insert.push(" ON CONFLICT (channel_id, seq) DO NOTHING");
            insert
                .build()
                .execute(&mut *tx)
                .await
                .map_err(StoreError::backend)?;
        }
        tx.commit().await.map_err(StoreError::backend)
    }

    async fn page(
        &self,
        channel: Uuid,
        query: HistoryQuery,
    ) -> Result<Vec<MessageEvent>, StoreError> {
        let columns = "channel_id, seq, id, author_id, text, created_at, nonce";
        let rows = match query {
            HistoryQuery::Before { before, limit } => {
                let before = before.map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64);
                sqlx::query(&format!(
                    "SELECT {columns} FROM messages WHERE channel_id = $1 AND seq < $2
                     ORDER BY seq DESC LIMIT $3"
                ))
                .bind(channel)
                .bind(before)
                .bind(limit.min(i64::MAX as usize) as i64)
                .fetch_all(&self.pool)
                .await
            }
            HistoryQuery::After { after, limit } => {
                if after >= i64::MAX as u64 {
                    return Ok(Vec::new());
                }
                sqlx::query(&format!(
                    "SELECT {columns} FROM messages WHERE channel_id = $1 AND seq > $2
                     ORDER BY seq ASC LIMIT $3"
                ))
                .bind(channel)
                .bind(after as i64)
                .bind(limit.min(i64::MAX as usize) as i64)
                .fetch_all(&self.pool)
                .await
            }
        }
        .map_err(StoreError::backend)?;
        rows.iter().map(event_from).collect()
    }
}
