//! The message store on ScyllaDB (or Cassandra), through the `scylla` driver.
//!
//! Schema (created if missing, and brought up to date; see `scylla_schema.rs`):
//!
//! ```cql
//! CREATE TABLE messages (
//!     channel_id uuid, bucket bigint, seq bigint,
//!     id uuid, author_id uuid, text text, created_at timestamp, nonce text,
//!     kind text, target_seq bigint, parent_seq bigint, emoji text, mentions frozen<list<uuid>>,
//!     PRIMARY KEY ((channel_id, bucket), seq)
//! ) WITH CLUSTERING ORDER BY (seq DESC);
//! CREATE TABLE channel_heads (channel_id uuid PRIMARY KEY, last_bucket bigint);
//! CREATE TABLE message_relations (
//!     channel_id uuid, related_bucket bigint, related_seq bigint, seq bigint, … the event …,
//!     PRIMARY KEY ((channel_id, related_bucket), related_seq, seq)
//! );
//! ```
//!
//! A partition is one channel's run of `BUCKET_SIZE` (10,000) consecutive sequence numbers — a bucket of
//! the channel's own clock rather than of wall time. History is paged by `seq`, so a cursor names
//! its bucket directly (no index of which days have messages), and a partition is bounded by
//! event count (at most ~40 MB of 4,000-character messages) however busy the channel is.
//! `channel_heads` records the newest bucket of a channel, for "newest page" reads; it is written
//! with `USING TIMESTAMP <bucket>`, so concurrent or replayed writes can only move it forward.
//!
//! Every kind of event (edit, deletion, reaction, thread reply) is a row of `messages` with its
//! own seq. An event that acts on or replies to a message is also written to `message_relations`
//! under that message's bucket and seq, so `related` costs one query per bucket of the messages
//! asked about. Reads that want messages only (`message_page`, `count_messages_after`) walk the
//! buckets and skip the other kinds client-side: CQL cannot filter on `kind` without scanning.
//! There is no text search (`StoreError::Unsupported`): that needs an external index.
//!
//! Writes are idempotent — an insert of an existing (channel, seq) writes the same values — and
//! marked so, letting the driver retry them safely.

use std::sync::Arc;

use async_trait::async_trait;
use chorus_protocol::{EventKind, MessageEvent};
use futures_util::StreamExt;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::serialize::row::SerializeRow;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use uuid::Uuid;

use super::scylla_reads::{
    FILTERED_CHUNK, PageStep, bucket_of, in_seq_order, plan, relation_queries, walk,
};
use super::scylla_rows::{
    EVENT_COLUMNS, EventRow, MessageInsert, RelationInsert, relation_inserts,
};
use super::scylla_schema::{EVENT_TABLES, EXISTING_COLUMNS, missing_column_statements, schema};
use super::{HistoryQuery, MessageStore, SearchQuery};
use crate::StoreError;

/// Statements per unlogged batch (all of one partition).
const BATCH_STATEMENTS: usize = 100;

/// Batches in flight at once during an append.
const CONCURRENT_BATCHES: usize = 16;

/// Where a store lives: `scylla://host:port[,host:port…][/keyspace][?replication_factor=N]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScyllaUri {
    pub nodes: Vec<String>,
    pub keyspace: String,
    pub replication_factor: u32,
}

/// Parses a `scylla://` URI.
pub fn parse_uri(uri: &str) -> Result<ScyllaUri, StoreError> {
    let invalid = |why: &str| StoreError::Backend(format!("invalid ScyllaDB URI {uri:?}: {why}"));
    let rest = uri
        .strip_prefix("scylla://")
        .ok_or_else(|| invalid("expected scylla://host:port[/keyspace]"))?;
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (hosts, keyspace) = rest.split_once('/').unwrap_or((rest, ""));
    let nodes: Vec<String> = hosts
        .split(',')
        .filter(|h| !h.is_empty())
        .map(|h| {
            if h.contains(':') {
                h.to_string()
            } else {
                format!("{h}:9042")
            }
        })
        .collect();
    if nodes.is_empty() {
        return Err(invalid("no host"));
    }
    let keyspace = if keyspace.is_empty() {
        "chorus"
    } else {
        keyspace
    };
    if !keyspace
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(invalid("keyspace names are letters, digits and _"));
    }
    let mut replication_factor = 3;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("replication_factor", n)) => {
                replication_factor = n
                    .parse()
                    .map_err(|_| invalid("replication_factor must be a number"))?
            }
            _ => return Err(invalid("unknown parameter")),
        }
    }
    Ok(ScyllaUri {
        nodes,
        keyspace: keyspace.to_string(),
        replication_factor,
    })
}

/// History in ScyllaDB.
#[derive(Clone)]
pub struct ScyllaMessageStore {
    session: Arc<Session>,
    insert: PreparedStatement,
    insert_relation: PreparedStatement,
    advance_head: PreparedStatement,
    read_head: PreparedStatement,
    below: PreparedStatement,
    above: PreparedStatement,
    one: PreparedStatement,
    relations: PreparedStatement,
    /// For the statements of rare operations (retention), prepared when they run.
    keyspace: Arc<str>,
}

fn backend(err: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(err.to_string())
}

/// The columns `messages` has now.
async fn existing_columns(
    session: &Session,
    keyspace: &str,
    table: &str,
) -> Result<Vec<String>, StoreError> {
    let result = session
        .query_unpaged(EXISTING_COLUMNS, (keyspace, table))
        .await
        .map_err(backend)?
        .into_rows_result()
        .map_err(backend)?;
    let mut columns = Vec::new();
    for row in result.rows::<(String,)>().map_err(backend)? {
        columns.push(row.map_err(backend)?.0);
    }
    Ok(columns)
}

/// Adds the event columns the event tables made by an older version lack.
async fn upgrade_schema(session: &Session, keyspace: &str) -> Result<(), StoreError> {
    for table in EVENT_TABLES {
        upgrade_table(session, keyspace, table).await?;
    }
    Ok(())
}

async fn upgrade_table(session: &Session, keyspace: &str, table: &str) -> Result<(), StoreError> {
    let statements = missing_column_statements(
        keyspace,
        table,
        &existing_columns(session, keyspace, table).await?,
    );
    let mut failure = None;
    for statement in statements {
        if let Err(err) = session.query_unpaged(statement, ()).await {
            failure.get_or_insert(backend(err));
        }
    }
    // Another node may have added a column at the same moment; only one still missing is an error.
    match failure {
        Some(err)
            if !missing_column_statements(
                keyspace,
                table,
                &existing_columns(session, keyspace, table).await?,
            )
            .is_empty() =>
        {
            Err(err)
        }
        _ => Ok(()),
    }
}

/// Groups rows into unlogged batches, one per run of one partition and at most
/// [`BATCH_STATEMENTS`] each: cheap for the coordinator, which sends each to that partition's
/// replicas only.
fn partition_batches<V>(
    rows: impl IntoIterator<Item = ((Uuid, i64), V)>,
    statement: &PreparedStatement,
) -> Vec<(Batch, Vec<V>)> {
    let mut batches: Vec<(Batch, Vec<V>)> = Vec::new();
    let mut current: Option<(Uuid, i64)> = None;
    for (partition, values) in rows {
        let full = batches
            .last()
            .is_some_and(|(_, values)| values.len() >= BATCH_STATEMENTS);
        if current != Some(partition) || full {
            let mut batch = Batch::new(BatchType::Unlogged);
            batch.set_is_idempotent(true);
            batches.push((batch, Vec::new()));
            current = Some(partition);
        }
        let (batch, batch_values) = batches.last_mut().expect("a batch was just pushed");
        batch.append_statement(statement.clone());
        batch_values.push(values);
    }
    batches
}

fn is_message(event: &MessageEvent) -> bool {
    event.kind == EventKind::Message
}

impl ScyllaMessageStore {
    /// Connects (failing after 10 s if no node answers), creates or upgrades the schema and
    /// prepares the statements.
    pub async fn connect(uri: &str) -> Result<Self, StoreError> {
        let target = parse_uri(uri)?;
        let session = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            SessionBuilder::new().known_nodes(&target.nodes).build(),
        )
        .await
        .map_err(|_| {
            StoreError::Backend(format!(
                "cannot reach ScyllaDB at {uri}: timed out after 10 s"
            ))
        })?
        .map_err(|err| StoreError::Backend(format!("cannot reach ScyllaDB at {uri}: {err}")))?;
        for statement in schema(&target.keyspace, target.replication_factor) {
            session
                .query_unpaged(statement, ())
                .await
                .map_err(backend)?;
        }
        upgrade_schema(&session, &target.keyspace).await?;
        let ks = &target.keyspace;
        let prepare = |cql: String| {
            let session = &session;
            async move {
                let mut prepared = session.prepare(cql).await.map_err(backend)?;
                prepared.set_is_idempotent(true);
                Ok::<_, StoreError>(prepared)
            }
        };
        let insert = prepare(format!(
            "INSERT INTO {ks}.messages (channel_id, bucket, {EVENT_COLUMNS}) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .await?;
        let insert_relation = prepare(format!(
            "INSERT INTO {ks}.message_relations (channel_id, related_bucket, related_seq, \
             {EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .await?;
        let advance_head = prepare(format!(
            "UPDATE {ks}.channel_heads USING TIMESTAMP ? SET last_bucket = ? WHERE channel_id = ?"
        ))
        .await?;
        let read_head = prepare(format!(
            "SELECT last_bucket FROM {ks}.channel_heads WHERE channel_id = ?"
        ))
        .await?;
        let below = prepare(format!(
            "SELECT {EVENT_COLUMNS} FROM {ks}.messages \
             WHERE channel_id = ? AND bucket = ? AND seq < ? ORDER BY seq DESC LIMIT ?"
        ))
        .await?;
        let above = prepare(format!(
            "SELECT {EVENT_COLUMNS} FROM {ks}.messages \
             WHERE channel_id = ? AND bucket = ? AND seq > ? ORDER BY seq ASC LIMIT ?"
        ))
        .await?;
        let one = prepare(format!(
            "SELECT {EVENT_COLUMNS} FROM {ks}.messages \
             WHERE channel_id = ? AND bucket = ? AND seq = ?"
        ))
        .await?;
        let relations = prepare(format!(
            "SELECT {EVENT_COLUMNS} FROM {ks}.message_relations \
             WHERE channel_id = ? AND related_bucket = ? AND related_seq IN ?"
        ))
        .await?;
        Ok(ScyllaMessageStore {
            session: Arc::new(session),
            insert,
            insert_relation,
            advance_head,
            read_head,
            below,
            above,
            one,
            relations,
            keyspace: target.keyspace.as_str().into(),
        })
    }

    /// [`MessageStore::delete_before`]: walks the channel's buckets from the oldest, deleting
    /// each event created before `cutoff` and its `message_relations` rows, and stops at the first
    /// event it keeps (a channel's `created_at` never decreases with its seq).
    async fn delete_older(
        &self,
        channel: Uuid,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError> {
        let Some(last_bucket) = self.last_bucket(channel).await? else {
            return Ok(0);
        };
        let ks = &self.keyspace;
        let prepare = |cql: String| async move {
            let mut prepared = self.session.prepare(cql).await.map_err(backend)?;
            prepared.set_is_idempotent(true);
            Ok::<_, StoreError>(prepared)
        };
        let keys = prepare(format!(
            "SELECT seq, created_at, target_seq, parent_seq FROM {ks}.messages \
             WHERE channel_id = ? AND bucket = ? ORDER BY seq ASC"
        ))
        .await?;
        let delete = prepare(format!(
            "DELETE FROM {ks}.messages WHERE channel_id = ? AND bucket = ? AND seq = ?"
        ))
        .await?;
        let delete_relation = prepare(format!(
            "DELETE FROM {ks}.message_relations \
             WHERE channel_id = ? AND related_bucket = ? AND related_seq = ? AND seq = ?"
        ))
        .await?;
        let mut deleted = 0;
        for bucket in 0..=last_bucket {
            // Paged by the driver: a bucket holds at most BUCKET_SIZE rows of four small columns.
            let mut rows = self
                .session
                .execute_iter(keys.clone(), (channel, bucket))
                .await
                .map_err(backend)?
                .rows_stream::<(i64, chrono::DateTime<chrono::Utc>, Option<i64>, Option<i64>)>()
                .map_err(backend)?;
            while let Some(row) = rows.next().await {
                let (seq, created_at, target, parent) = row.map_err(backend)?;
                if created_at >= cutoff {
                    return Ok(deleted);
                }
                for of in [target, parent].into_iter().flatten() {
                    self.session
                        .execute_unpaged(&delete_relation, (channel, bucket_of(of as u64), of, seq))
                        .await
                        .map_err(backend)?;
                }
                self.session
                    .execute_unpaged(&delete, (channel, bucket, seq))
                    .await
                    .map_err(backend)?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    async fn last_bucket(&self, channel: Uuid) -> Result<Option<i64>, StoreError> {
        let result = self
            .session
            .execute_unpaged(&self.read_head, (channel,))
            .await
            .map_err(backend)?
            .into_rows_result()
            .map_err(backend)?;
        let row = result
            .maybe_first_row::<(Option<i64>,)>()
            .map_err(backend)?;
        Ok(row.and_then(|(bucket,)| bucket))
    }

    /// Runs batches, [`CONCURRENT_BATCHES`] at a time.
    async fn write<V: SerializeRow>(&self, batches: &[(Batch, Vec<V>)]) -> Result<(), StoreError> {
        for wave in batches.chunks(CONCURRENT_BATCHES) {
            let writes = wave
                .iter()
                .map(|(batch, values)| self.session.batch(batch, values));
            for result in futures_util::future::join_all(writes).await {
                result.map_err(backend)?;
            }
        }
        Ok(())
    }

    /// At most `want` events of one step's bucket beyond its bound.
    async fn fetch(
        &self,
        channel: Uuid,
        step: PageStep,
        want: usize,
    ) -> Result<Vec<MessageEvent>, StoreError> {
        let want = want.min(i32::MAX as usize) as i32;
        let result = match step {
            PageStep::Below { bucket, bound } => {
                self.session
                    .execute_unpaged(&self.below, (channel, bucket, bound, want))
                    .await
            }
            PageStep::Above { bucket, bound } => {
                self.session
                    .execute_unpaged(&self.above, (channel, bucket, bound, want))
                    .await
            }
        }
        .map_err(backend)?
        .into_rows_result()
        .map_err(backend)?;
        let mut events = Vec::new();
        for row in result.rows::<EventRow>().map_err(backend)? {
            events.push(row.map_err(backend)?.into_event(channel)?);
        }
        Ok(events)
    }

    /// A page of the events `keep` accepts; `chunk` as in [`walk`].
    async fn read(
        &self,
        channel: Uuid,
        query: HistoryQuery,
        chunk: usize,
        keep: impl Fn(&MessageEvent) -> bool,
    ) -> Result<Vec<MessageEvent>, StoreError> {
        let limit = match query {
            HistoryQuery::Before { limit, .. } | HistoryQuery::After { limit, .. } => limit,
        };
        let Some(last_bucket) = self.last_bucket(channel).await? else {
            return Ok(Vec::new());
        };
        walk(
            plan(query, last_bucket),
            limit,
            chunk,
            keep,
            |step, want| self.fetch(channel, step, want),
        )
        .await
    }
}

#[async_trait]
impl MessageStore for ScyllaMessageStore {
    async fn delete_before(
        &self,
        channel: Uuid,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError> {
        self.delete_older(channel, cutoff).await
    }

    async fn append(&self, messages: &[MessageEvent]) -> Result<(), StoreError> {
        let mut heads: std::collections::HashMap<Uuid, i64> = std::collections::HashMap::new();
        for m in messages {
            let head = heads.entry(m.channel_id).or_insert(i64::MIN);
            *head = (*head).max(bucket_of(m.seq));
        }
        let rows = messages.iter().map(|m| {
            let row = MessageInsert::of(m);
            ((row.channel_id, row.bucket), row)
        });
        self.write(&partition_batches(rows, &self.insert)).await?;
        let relations = messages
            .iter()
            .flat_map(relation_inserts)
            .map(|row: RelationInsert| ((row.channel_id, row.related_bucket), row));
        self.write(&partition_batches(relations, &self.insert_relation))
            .await?;
        // Last: a head never points past events that are not written yet.
        for (channel, bucket) in heads {
            self.session
                .execute_unpaged(&self.advance_head, (bucket, bucket, channel))
                .await
                .map_err(backend)?;
        }
        Ok(())
    }

    async fn page(
        &self,
        channel: Uuid,
        query: HistoryQuery,
    ) -> Result<Vec<MessageEvent>, StoreError> {
        self.read(channel, query, 0, |_| true).await
    }

    async fn message_page(
        &self,
        channel: Uuid,
        query: HistoryQuery,
    ) -> Result<Vec<MessageEvent>, StoreError> {
        self.read(channel, query, FILTERED_CHUNK, is_message).await
    }

    async fn event(&self, channel: Uuid, seq: u64) -> Result<Option<MessageEvent>, StoreError> {
        if seq > i64::MAX as u64 {
            return Ok(None);
        }
        let result = self
            .session
            .execute_unpaged(&self.one, (channel, bucket_of(seq), seq as i64))
            .await
            .map_err(backend)?
            .into_rows_result()
            .map_err(backend)?;
        result
            .maybe_first_row::<EventRow>()
            .map_err(backend)?
            .map(|row| row.into_event(channel))
            .transpose()
    }

    async fn related(&self, channel: Uuid, seqs: &[u64]) -> Result<Vec<MessageEvent>, StoreError> {
        let mut events = Vec::new();
        for (bucket, in_bucket) in relation_queries(seqs) {
            // Paged: a popular message may have many reactions.
            let mut rows = self
                .session
                .execute_iter(self.relations.clone(), (channel, bucket, in_bucket))
                .await
                .map_err(backend)?
                .rows_stream::<EventRow>()
                .map_err(backend)?;
            while let Some(row) = rows.next().await {
                events.push(row.map_err(backend)?.into_event(channel)?);
            }
        }
        Ok(in_seq_order(events))
    }

    async fn search(&self, _query: &SearchQuery) -> Result<Vec<MessageEvent>, StoreError> {
        Err(StoreError::Unsupported(
            "text search on ScyllaDB history needs an external index".into(),
        ))
    }

    /// Walks the buckets after `after`, skipping other kinds, until `cap` messages are counted.
    async fn count_messages_after(
        &self,
        channel: Uuid,
        after: u64,
        cap: u64,
    ) -> Result<u64, StoreError> {
        let cap = cap.min(usize::MAX as u64) as usize;
        let query = HistoryQuery::After { after, limit: cap };
        let counted = self
            .read(channel, query, FILTERED_CHUNK, is_message)
            .await?;
        Ok(counted.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_name_nodes_keyspace_and_replication() {
        assert_eq!(
            parse_uri("scylla://10.0.0.1,10.0.0.2:19042/chat?replication_factor=1").unwrap(),
            ScyllaUri {
                nodes: vec!["10.0.0.1:9042".into(), "10.0.0.2:19042".into()],
                keyspace: "chat".into(),
                replication_factor: 1,
            }
        );
        let defaults = parse_uri("scylla://db").unwrap();
        assert_eq!(
            (defaults.keyspace.as_str(), defaults.replication_factor),
            ("chorus", 3)
        );
        for bad in [
            "postgres://x",
            "scylla://",
            "scylla://h/bad-name",
            "scylla://h?rf=2",
        ] {
            assert!(parse_uri(bad).is_err(), "{bad}");
        }
    }
}
