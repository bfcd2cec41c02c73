//! The message store on ScyllaDB (or Cassandra), through the `scylla` driver.
//!
//! Schema (created if missing; see [`schema`]):
//!
//! ```cql
//! CREATE TABLE messages (
//!     channel_id uuid, bucket bigint, seq bigint,
//!     id uuid, author_id uuid, text text, created_at timestamp, nonce text,
//!     PRIMARY KEY ((channel_id, bucket), seq)
//! ) WITH CLUSTERING ORDER BY (seq DESC);
//! CREATE TABLE channel_heads (channel_id uuid PRIMARY KEY, last_bucket bigint);
//! ```
//!
//! A partition is one channel's run of [`BUCKET_SIZE`] consecutive sequence numbers — a bucket of
//! the channel's own clock rather than of wall time. History is paged by `seq`, so a cursor names
//! its bucket directly (no index of which days have messages), and a partition is bounded by
//! message count (at most ~40 MB of 4,000-character messages) however busy the channel is.
//! `channel_heads` records the newest bucket of a channel, for "newest page" reads; it is written
//! with `USING TIMESTAMP <bucket>`, so concurrent or replayed writes can only move it forward.
//!
//! Writes are idempotent — an insert of an existing (channel, seq) writes the same values — and
//! marked so, letting the driver retry them safely.

use std::sync::Arc;

use async_trait::async_trait;
use chorus_protocol::MessageEvent;
use chrono::{DateTime, Utc};
use scylla::DeserializeRow;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use uuid::Uuid;

use super::{HistoryQuery, MessageStore};
use crate::StoreError;

/// Sequence numbers per partition.
pub const BUCKET_SIZE: u64 = 10_000;

/// Statements per unlogged batch (all of one partition).
const BATCH_STATEMENTS: usize = 100;

/// Batches in flight at once during an append.
const CONCURRENT_BATCHES: usize = 16;

/// The partition bucket of a sequence number.
pub fn bucket_of(seq: u64) -> i64 {
    (seq / BUCKET_SIZE) as i64
}

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

/// The CQL that creates the keyspace and tables.
pub fn schema(keyspace: &str, replication_factor: u32) -> Vec<String> {
    vec![
        format!(
            "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = \
             {{'class': 'NetworkTopologyStrategy', 'replication_factor': {replication_factor}}}"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.messages (\
             channel_id uuid, bucket bigint, seq bigint, id uuid, author_id uuid, text text, \
             created_at timestamp, nonce text, PRIMARY KEY ((channel_id, bucket), seq)) \
             WITH CLUSTERING ORDER BY (seq DESC)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.channel_heads (\
             channel_id uuid PRIMARY KEY, last_bucket bigint)"
        ),
    ]
}

/// The bound values of one insert, in the statement's order.
type InsertValues = (Uuid, i64, i64, Uuid, Uuid, String, DateTime<Utc>, String);

/// One row of `messages`, as read.
#[derive(Debug, DeserializeRow)]
struct MessageRow {
    seq: i64,
    id: Uuid,
    author_id: Uuid,
    text: String,
    created_at: DateTime<Utc>,
    nonce: String,
}

impl MessageRow {
    fn into_event(self, channel_id: Uuid) -> MessageEvent {
        MessageEvent {
            channel_id,
            seq: self.seq.max(0) as u64,
            id: self.id,
            author_id: self.author_id,
            text: self.text,
            created_at: self.created_at,
            nonce: self.nonce,
        }
    }
}

/// One step of a page read: which bucket, and the bound on `seq` inside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageStep {
    /// `seq < bound`, newest first.
    Below { bucket: i64, bound: i64 },
    /// `seq > bound`, oldest first.
    Above { bucket: i64, bound: i64 },
}

/// The buckets a page read visits, in order, given the channel's newest bucket. The reader stops
/// as soon as it has `limit` rows.
pub fn plan(query: HistoryQuery, last_bucket: i64) -> Vec<PageStep> {
    match query {
        HistoryQuery::Before { before, .. } => {
            let (first, bound) = match before {
                Some(0) => return Vec::new(),
                Some(before) => (
                    bucket_of(before - 1).min(last_bucket),
                    before.min(i64::MAX as u64) as i64,
                ),
                None => (last_bucket, i64::MAX),
            };
            (0..=first)
                .rev()
                .map(|bucket| PageStep::Below { bucket, bound })
                .collect()
        }
        HistoryQuery::After { after, .. } => {
            let Some(start) = after.checked_add(1) else {
                return Vec::new();
            };
            let bound = after.min(i64::MAX as u64) as i64;
            (bucket_of(start)..=last_bucket)
                .map(|bucket| PageStep::Above { bucket, bound })
                .collect()
        }
    }
}

/// History in ScyllaDB.
#[derive(Clone)]
pub struct ScyllaMessageStore {
    session: Arc<Session>,
    insert: PreparedStatement,
    advance_head: PreparedStatement,
    read_head: PreparedStatement,
    below: PreparedStatement,
    above: PreparedStatement,
}

fn backend(err: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(err.to_string())
}

impl ScyllaMessageStore {
    /// Connects (failing after 10 s if no node answers), creates the schema if missing and
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
            "INSERT INTO {ks}.messages (channel_id, bucket, seq, id, author_id, text, created_at, nonce) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
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
        let columns = "seq, id, author_id, text, created_at, nonce";
        let below = prepare(format!(
            "SELECT {columns} FROM {ks}.messages WHERE channel_id = ? AND bucket = ? AND seq < ? \
             ORDER BY seq DESC LIMIT ?"
        ))
        .await?;
        let above = prepare(format!(
            "SELECT {columns} FROM {ks}.messages WHERE channel_id = ? AND bucket = ? AND seq > ? \
             ORDER BY seq ASC LIMIT ?"
        ))
        .await?;
        Ok(ScyllaMessageStore {
            session: Arc::new(session),
            insert,
            advance_head,
            read_head,
            below,
            above,
        })
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
}

#[async_trait]
impl MessageStore for ScyllaMessageStore {
    async fn append(&self, messages: &[MessageEvent]) -> Result<(), StoreError> {
        // One unlogged batch per run of one partition: cheap for the coordinator, which sends it
        // to that partition's replicas only.
        let mut batches: Vec<(Batch, Vec<InsertValues>)> = Vec::new();
        let mut heads: std::collections::HashMap<Uuid, i64> = std::collections::HashMap::new();
        let mut current: Option<(Uuid, i64)> = None;
        for m in messages {
            let partition = (m.channel_id, bucket_of(m.seq));
            let head = heads.entry(m.channel_id).or_insert(partition.1);
            *head = (*head).max(partition.1);
            let full = batches
                .last()
                .is_some_and(|(_, values)| values.len() >= BATCH_STATEMENTS);
            if current != Some(partition) || full {
                let mut batch = Batch::new(BatchType::Unlogged);
                batch.set_is_idempotent(true);
                batches.push((batch, Vec::new()));
                current = Some(partition);
            }
            let (batch, values) = batches.last_mut().expect("a batch was just pushed");
            batch.append_statement(self.insert.clone());
            values.push((
                m.channel_id,
                partition.1,
                m.seq as i64,
                m.id,
                m.author_id,
                m.text.clone(),
                m.created_at,
                m.nonce.clone(),
            ));
        }
        for wave in batches.chunks(CONCURRENT_BATCHES) {
            let writes = wave
                .iter()
                .map(|(batch, values)| self.session.batch(batch, values));
            for result in futures_util::future::join_all(writes).await {
                result.map_err(backend)?;
            }
        }
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
        let limit = match query {
            HistoryQuery::Before { limit, .. } | HistoryQuery::After { limit, .. } => limit,
        };
        let Some(last_bucket) = self.last_bucket(channel).await? else {
            return Ok(Vec::new());
        };
        let mut page = Vec::with_capacity(limit.min(1024));
        for step in plan(query, last_bucket) {
            if page.len() >= limit {
                break;
            }
            let wanted = (limit - page.len()).min(i32::MAX as usize) as i32;
            let result = match step {
                PageStep::Below { bucket, bound } => {
                    self.session
                        .execute_unpaged(&self.below, (channel, bucket, bound, wanted))
                        .await
                }
                PageStep::Above { bucket, bound } => {
                    self.session
                        .execute_unpaged(&self.above, (channel, bucket, bound, wanted))
                        .await
                }
            }
            .map_err(backend)?
            .into_rows_result()
            .map_err(backend)?;
            for row in result.rows::<MessageRow>().map_err(backend)? {
                page.push(row.map_err(backend)?.into_event(channel));
            }
        }
        Ok(page)
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

    #[test]
    fn the_schema_partitions_by_channel_and_bucket_clustered_by_seq() {
        let cql = schema("chorus", 3).join("\n");
        assert!(cql.contains("PRIMARY KEY ((channel_id, bucket), seq)"));
        assert!(cql.contains("CLUSTERING ORDER BY (seq DESC)"));
        assert!(cql.contains("'replication_factor': 3"));
    }

    #[test]
    fn buckets_hold_ten_thousand_sequence_numbers() {
        assert_eq!(
            (
                bucket_of(1),
                bucket_of(9_999),
                bucket_of(10_000),
                bucket_of(25_000)
            ),
            (0, 0, 1, 2)
        );
    }

    #[test]
    fn pages_walk_buckets_towards_their_direction() {
        let newest = plan(
            HistoryQuery::Before {
                before: None,
                limit: 50,
            },
            2,
        );
        assert_eq!(
            newest,
            vec![
                PageStep::Below {
                    bucket: 2,
                    bound: i64::MAX
                },
                PageStep::Below {
                    bucket: 1,
                    bound: i64::MAX
                },
                PageStep::Below {
                    bucket: 0,
                    bound: i64::MAX
                },
            ]
        );
        // `before` 10,000 means seq ≤ 9,999: bucket 0 only.
        assert_eq!(
            plan(
                HistoryQuery::Before {
                    before: Some(10_000),
                    limit: 50
                },
                2
            ),
            vec![PageStep::Below {
                bucket: 0,
                bound: 10_000
            }]
        );
        assert!(
            plan(
                HistoryQuery::Before {
                    before: Some(0),
                    limit: 50
                },
                2
            )
            .is_empty()
        );
        assert_eq!(
            plan(
                HistoryQuery::After {
                    after: 9_999,
                    limit: 50
                },
                2
            ),
            vec![
                PageStep::Above {
                    bucket: 1,
                    bound: 9_999
                },
                PageStep::Above {
                    bucket: 2,
                    bound: 9_999
                },
            ]
        );
        assert!(
            plan(
                HistoryQuery::After {
                    after: 30_000,
                    limit: 50
                },
                2
            )
            .is_empty()
        );
        assert!(
            plan(
                HistoryQuery::After {
                    after: u64::MAX,
                    limit: 50
                },
                2
            )
            .is_empty()
        );
    }
}
