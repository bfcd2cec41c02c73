//! The CQL schema of the ScyllaDB message store, and how an older one is brought up to date.
//!
//! `CREATE … IF NOT EXISTS` makes a new keyspace complete, but leaves a table created by an older
//! version as it was. The event columns are therefore also added one by one to a `messages` table
//! that lacks them, as found in `system_schema.columns` ([`missing_column_statements`]): CQL has
//! no portable `ADD IF NOT EXISTS`, and adding a column is cheap (no rewrite of existing rows,
//! which read it as null: a plain message).

/// The columns event kinds added to `messages` (and that `message_relations` has from the start),
/// then `automatic` (focus mode auto-replies), which came later to both tables.
/// `mentions` is frozen: written once with its row, and a non-frozen collection written by an
/// INSERT costs a tombstone.
pub(crate) const EVENT_COLUMNS: [(&str, &str); 6] = [
    ("kind", "text"),
    ("target_seq", "bigint"),
    ("parent_seq", "bigint"),
    ("emoji", "text"),
    ("mentions", "frozen<list<uuid>>"),
    ("automatic", "boolean"),
];

/// The tables that hold events, each brought up to [`EVENT_COLUMNS`] when it lacks some.
pub(crate) const EVENT_TABLES: [&str; 2] = ["messages", "message_relations"];

fn event_column_definitions() -> String {
    EVENT_COLUMNS
        .iter()
        .map(|(name, kind)| format!("{name} {kind}, "))
        .collect()
}

/// The CQL that creates the keyspace and tables.
pub fn schema(keyspace: &str, replication_factor: u32) -> Vec<String> {
    let event_columns = event_column_definitions();
    vec![
        format!(
            "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = \
             {{'class': 'NetworkTopologyStrategy', 'replication_factor': {replication_factor}}}"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.messages (\
             channel_id uuid, bucket bigint, seq bigint, id uuid, author_id uuid, text text, \
             created_at timestamp, nonce text, {event_columns}\
             PRIMARY KEY ((channel_id, bucket), seq)) \
             WITH CLUSTERING ORDER BY (seq DESC)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.channel_heads (\
             channel_id uuid PRIMARY KEY, last_bucket bigint)"
        ),
        // Every event that acts on or replies to a message, filed under that message: a
        // partition holds the relations of one bucket of messages, clustered by the related seq
        // and then by the event's own seq, so one query per bucket answers `related` in order.
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.message_relations (\
             channel_id uuid, related_bucket bigint, related_seq bigint, seq bigint, id uuid, \
             author_id uuid, text text, created_at timestamp, nonce text, {event_columns}\
             PRIMARY KEY ((channel_id, related_bucket), related_seq, seq))"
        ),
    ]
}

/// The query listing the columns a table has (bind: keyspace, table).
pub(crate) const EXISTING_COLUMNS: &str = "SELECT column_name FROM system_schema.columns \
     WHERE keyspace_name = ? AND table_name = ?";

/// `ALTER TABLE` statements adding the event columns `existing` (the columns of `table`) lacks,
/// in a fixed order.
pub(crate) fn missing_column_statements(
    keyspace: &str,
    table: &str,
    existing: &[String],
) -> Vec<String> {
    EVENT_COLUMNS
        .iter()
        .filter(|(name, _)| !existing.iter().any(|column| column == name))
        .map(|(name, kind)| format!("ALTER TABLE {keyspace}.{table} ADD {name} {kind}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_partitions_by_channel_and_bucket_clustered_by_seq() {
        let cql = schema("chorus", 3).join("\n");
        assert!(cql.contains("PRIMARY KEY ((channel_id, bucket), seq)"));
        assert!(cql.contains("CLUSTERING ORDER BY (seq DESC)"));
        assert!(cql.contains("'replication_factor': 3"));
    }

    #[test]
    fn both_tables_have_every_event_column() {
        let statements = schema("chorus", 1);
        for table in [&statements[1], &statements[3]] {
            for (name, kind) in EVENT_COLUMNS {
                assert!(
                    table.contains(&format!("{name} {kind}, ")),
                    "{name} in {table}"
                );
            }
        }
        assert!(
            statements[3].contains("PRIMARY KEY ((channel_id, related_bucket), related_seq, seq)")
        );
    }

    /// docs/DEPLOY.md shows the schema an operator gets; it must be this one.
    #[test]
    fn the_deploy_guide_shows_this_schema() {
        let guide = include_str!("../../../docs/DEPLOY.md");
        let block = guide
            .split("```cql\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("docs/DEPLOY.md has a cql block");
        // Line breaks and indentation are the guide's own.
        let words = |text: &str| {
            text.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .replace("( ", "(")
        };
        let documented: Vec<String> = block
            .split(';')
            .map(words)
            .filter(|statement| !statement.is_empty())
            .collect();
        let actual: Vec<String> = schema("chorus", 3).iter().map(|s| words(s)).collect();
        assert_eq!(documented, actual);
    }

    #[test]
    fn an_old_messages_table_gets_only_the_columns_it_lacks() {
        let old: Vec<String> = ["channel_id", "bucket", "seq", "id", "author_id", "text"]
            .iter()
            .chain(&["created_at", "nonce", "kind"])
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            missing_column_statements("chat", "messages", &old),
            vec![
                "ALTER TABLE chat.messages ADD target_seq bigint",
                "ALTER TABLE chat.messages ADD parent_seq bigint",
                "ALTER TABLE chat.messages ADD emoji text",
                "ALTER TABLE chat.messages ADD mentions frozen<list<uuid>>",
                "ALTER TABLE chat.messages ADD automatic boolean",
            ]
        );
        let current: Vec<String> = EVENT_COLUMNS.iter().map(|(n, _)| n.to_string()).collect();
        assert!(missing_column_statements("chat", "messages", &current).is_empty());
        // A relations table from before auto-replies lacks only their mark.
        let relations: Vec<String> = current[..5].to_vec();
        assert_eq!(
            missing_column_statements("chat", "message_relations", &relations),
            vec!["ALTER TABLE chat.message_relations ADD automatic boolean"]
        );
    }
}
