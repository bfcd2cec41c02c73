//! Message history in PostgreSQL, for deployments that keep everything there (table `messages`,
//! primary key (channel_id, seq), created by the same migrations as the metadata; event kinds came
//! with `0003_message_events.sql`, which also indexes relations and message-only reads; the
//! `automatic` mark of focus mode auto-replies with `0021_automatic_messages.sql`).

use async_trait::async_trait;
use chorus_protocol::{EventKind, MessageEvent};
use sqlx::postgres::{PgPool, PgRow};
use sqlx::{QueryBuilder, Row};
use uuid::Uuid;

use super::{HistoryQuery, MessageStore, SearchQuery};
use crate::StoreError;
use crate::metadata::postgres::connect_pool;

/// Rows per INSERT: 13 binds each, under PostgreSQL's 65,535 bind parameters.
const ROWS_PER_INSERT: usize = 5_000;

/// Every column of an event, in the order [`event_from`] reads them.
const COLUMNS: &str = "channel_id, seq, id, author_id, text, created_at, nonce, \
                       kind, target_seq, parent_seq, emoji, mentions, automatic";

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

/// A seq as PostgreSQL stores it (`BIGINT`); seqs never come near `i64::MAX`.
fn to_db(seq: u64) -> i64 {
    seq.min(i64::MAX as u64) as i64
}

fn from_db(seq: i64) -> u64 {
    seq.max(0) as u64
}

fn limit_to_db(limit: usize) -> i64 {
    limit.min(i64::MAX as usize) as i64
}

fn event_from(row: &PgRow) -> Result<MessageEvent, StoreError> {
    let kind: String = row.try_get("kind").map_err(StoreError::backend)?;
    let optional_seq = |column: &str| -> Result<Option<u64>, StoreError> {
        let seq: Option<i64> = row.try_get(column).map_err(StoreError::backend)?;
        Ok(seq.map(from_db))
    };
    Ok(MessageEvent {
        channel_id: row.try_get("channel_id").map_err(StoreError::backend)?,
        seq: from_db(row.try_get("seq").map_err(StoreError::backend)?),
        id: row.try_get("id").map_err(StoreError::backend)?,
        author_id: row.try_get("author_id").map_err(StoreError::backend)?,
        text: row.try_get("text").map_err(StoreError::backend)?,
        created_at: row.try_get("created_at").map_err(StoreError::backend)?,
        nonce: row.try_get("nonce").map_err(StoreError::backend)?,
        kind: EventKind::parse(&kind)
            .ok_or_else(|| StoreError::Backend(format!("unknown event kind {kind:?}")))?,
        target_seq: optional_seq("target_seq")?,
        parent_seq: optional_seq("parent_seq")?,
        emoji: row.try_get("emoji").map_err(StoreError::backend)?,
        mentions: row.try_get("mentions").map_err(StoreError::backend)?,
        automatic: row.try_get("automatic").map_err(StoreError::backend)?,
    })
}

impl PostgresMessageStore {
    /// One page of the channel, of every kind or of messages only (`messages_only` index).
    async fn read_page(
        &self,
        channel: Uuid,
        query: HistoryQuery,
        messages_only: bool,
    ) -> Result<Vec<MessageEvent>, StoreError> {
        let kinds = if messages_only {
            "AND kind = 'message'"
        } else {
            ""
        };
        let rows = match query {
            HistoryQuery::Before { before, limit } => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM messages WHERE channel_id = $1 AND seq < $2 {kinds}
                     ORDER BY seq DESC LIMIT $3"
                ))
                .bind(channel)
                .bind(before.map_or(i64::MAX, to_db))
                .bind(limit_to_db(limit))
                .fetch_all(&self.pool)
                .await
            }
            HistoryQuery::After { after, limit } => {
                if after >= i64::MAX as u64 {
                    return Ok(Vec::new());
                }
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM messages WHERE channel_id = $1 AND seq > $2 {kinds}
                     ORDER BY seq ASC LIMIT $3"
                ))
                .bind(channel)
                .bind(to_db(after))
                .bind(limit_to_db(limit))
                .fetch_all(&self.pool)
                .await
            }
        }
        .map_err(StoreError::backend)?;
        rows.iter().map(event_from).collect()
    }
}

#[async_trait]
impl MessageStore for PostgresMessageStore {
    async fn append(&self, messages: &[MessageEvent]) -> Result<(), StoreError> {
        // Each chunk is one statement that commits on its own, never a transaction held open
        // across round trips: a writer frozen mid-transaction (a paused or stalled channel node)
        // would hold the row locks of its (channel, seq) keys, and the shard's new leader, which
        // writes the same keys, would wait for it to wake (seconds of stalled acks in the chaos
        // runs). Appends are idempotent by (channel, seq), so a failure after some chunks is
        // repaired by writing the whole batch again.
        for chunk in messages.chunks(ROWS_PER_INSERT) {
            let mut insert = QueryBuilder::new(format!("INSERT INTO messages ({COLUMNS}) "));
            insert.push_values(chunk, |mut row, m| {
                row.push_bind(m.channel_id)
                    .push_bind(to_db(m.seq))
                    .push_bind(m.id)
                    .push_bind(m.author_id)
                    .push_bind(&m.text)
                    .push_bind(m.created_at)
                    .push_bind(&m.nonce)
                    .push_bind(m.kind.as_str())
                    .push_bind(m.target_seq.map(to_db))
                    .push_bind(m.parent_seq.map(to_db))
                    .push_bind(&m.emoji)
                    .push_bind(&m.mentions)
                    .push_bind(m.automatic);
            });
            // A replayed (channel, seq) is already there with the same values.
            insert.push(" ON CONFLICT (channel_id, seq) DO NOTHING");
            insert
                .build()
                .execute(&self.pool)
                .await
                .map_err(StoreError::backend)?;
        }
        Ok(())
    }

    async fn page(
        &self,
        channel: Uuid,
        query: HistoryQuery,
    ) -> Result<Vec<MessageEvent>, StoreError> {
        self.read_page(channel, query, false).await
    }

    async fn message_page(
        &self,
        channel: Uuid,
        query: HistoryQuery,
    ) -> Result<Vec<MessageEvent>, StoreError> {
        self.read_page(channel, query, true).await
    }

    async fn event(&self, channel: Uuid, seq: u64) -> Result<Option<MessageEvent>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM messages WHERE channel_id = $1 AND seq = $2"
        ))
        .bind(channel)
        .bind(to_db(seq))
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::backend)?;
        row.as_ref().map(event_from).transpose()
    }

    async fn related(&self, channel: Uuid, seqs: &[u64]) -> Result<Vec<MessageEvent>, StoreError> {
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let seqs: Vec<i64> = seqs.iter().copied().map(to_db).collect();
        // Two index lookups (messages_by_target, messages_by_parent), OR-ed by the planner.
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM messages
             WHERE channel_id = $1 AND (target_seq = ANY($2) OR parent_seq = ANY($2))
             ORDER BY seq ASC"
        ))
        .bind(channel)
        .bind(&seqs)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::backend)?;
        rows.iter().map(event_from).collect()
    }

    /// Without a text index: the channel filter and `created_at` bound the scan, and the text test
    /// is `strpos` on lowercased text (no LIKE pattern, so `%` and `_` in the query are literal).
    async fn search(&self, query: &SearchQuery) -> Result<Vec<MessageEvent>, StoreError> {
        if query.channels.is_empty() || query.limit == 0 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM messages m
             WHERE m.channel_id = ANY($1) AND m.kind = 'message'
               AND ($2::uuid IS NULL OR m.author_id = $2)
               AND ($3::timestamptz IS NULL OR m.created_at >= $3)
               AND ($4::timestamptz IS NULL OR m.created_at < $4)
               AND ($5::text IS NULL
                    OR strpos(lower(m.text), lower($5)) > 0
                    OR EXISTS (SELECT 1 FROM messages e
                               WHERE e.channel_id = m.channel_id AND e.target_seq = m.seq
                                 AND e.kind = 'edit' AND strpos(lower(e.text), lower($5)) > 0))
             ORDER BY m.created_at DESC, m.seq DESC, m.channel_id DESC
             LIMIT $6"
        ))
        .bind(&query.channels)
        .bind(query.author)
        .bind(query.from)
        .bind(query.to)
        .bind(query.text.as_deref())
        .bind(limit_to_db(query.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::backend)?;
        rows.iter().map(event_from).collect()
    }

    async fn delete_before(
        &self,
        channel: Uuid,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM messages WHERE channel_id = $1 AND created_at < $2")
            .bind(channel)
            .bind(cutoff)
            .execute(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        Ok(done.rows_affected())
    }

    async fn count_messages_after(
        &self,
        channel: Uuid,
        after: u64,
        cap: u64,
    ) -> Result<u64, StoreError> {
        if after >= i64::MAX as u64 || cap == 0 {
            return Ok(0);
        }
        // The LIMIT inside stops the index scan at `cap`, however far behind the reader is.
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (
                 SELECT 1 FROM messages
                 WHERE channel_id = $1 AND seq > $2 AND kind = 'message'
                 LIMIT $3
             ) AS capped",
        )
        .bind(channel)
        .bind(to_db(after))
        .bind(to_db(cap))
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::backend)?;
        Ok(from_db(count))
    }

    async fn count_messages_after_each(
        &self,
        positions: &[(Uuid, u64)],
        cap: u64,
    ) -> Result<Vec<u64>, StoreError> {
        if cap == 0 || positions.is_empty() {
            return Ok(vec![0; positions.len()]);
        }
        let channels: Vec<Uuid> = positions.iter().map(|(channel, _)| *channel).collect();
        let afters: Vec<i64> = positions.iter().map(|(_, after)| to_db(*after)).collect();
        // One capped index scan per pair, as in `count_messages_after`, in one round trip.
        let counts: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT wanted.ord, (
                 SELECT count(*) FROM (
                     SELECT 1 FROM messages
                     WHERE channel_id = wanted.channel_id AND seq > wanted.after
                       AND kind = 'message'
                     LIMIT $3
                 ) AS capped
             )
             FROM UNNEST($1::uuid[], $2::bigint[]) WITH ORDINALITY AS wanted(channel_id, after, ord)
             ORDER BY wanted.ord",
        )
        .bind(&channels)
        .bind(&afters)
        .bind(to_db(cap))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::backend)?;
        Ok(counts
            .into_iter()
            .map(|(_, count)| from_db(count))
            .collect())
    }
}
