//! Conversions between SQLite rows and records: UUIDs are TEXT, times INTEGER unix milliseconds,
//! booleans INTEGER 0/1.

use chrono::{DateTime, Utc};
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Executor, Row, Sqlite};
use uuid::Uuid;

use crate::StoreError;
use crate::model::{
    AuditEntry, Channel, ChannelKind, ChannelMember, Invite, RevokedAccess, Role, Session, User,
    Workspace,
};

/// The columns [`user_from`] reads.
pub(super) const USER_COLUMNS: &str =
    "id, email, display_name, created_at, avatar_url, time_zone, disabled_at";

/// A role's strength as an SQL expression on `column` (0 = owner), to keep the stronger of two
/// roles in a single statement.
pub(super) fn role_rank(column: &str) -> String {
    format!(
        "(CASE {column} WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 WHEN 'member' THEN 2 ELSE 3 END)"
    )
}

pub(super) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// Now, at the millisecond precision the database keeps, so what a create returns equals what a
/// later read returns.
pub(super) fn now() -> DateTime<Utc> {
    from_millis(Utc::now().timestamp_millis())
}

pub(super) fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

pub(super) fn seq_param(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::Backend(format!("sequence {seq} out of range")))
}

pub(super) fn db_err(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_string())
        }
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::NotFound(db.message().to_string())
        }
        _ => StoreError::backend(err),
    }
}

/// The row an `UPDATE … RETURNING` statement gives back, if any.
///
/// Read with `fetch_all`, never `fetch_optional` or `fetch_one`: those stop after the first row
/// and leave it to the driver to finish the statement, which sqlx's SQLite driver has not always
/// done — the change then stayed uncommitted on its pooled connection (sqlx issues #2099, #3430;
/// `mark_read` on a file-backed pool was seen losing an update). Running the statement to its end
/// is what makes SQLite finish, and outside a transaction commit, the change. Every statement
/// given here returns at most one row, so reading them all costs nothing.
pub(super) async fn returning_row<'e, E>(
    query: Query<'e, Sqlite, SqliteArguments<'e>>,
    executor: E,
) -> Result<Option<SqliteRow>, StoreError>
where
    E: Executor<'e, Database = Sqlite>,
{
    let rows = query.fetch_all(executor).await.map_err(db_err)?;
    Ok(rows.into_iter().next())
}

pub(super) fn get<'r, T>(row: &'r SqliteRow, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(column).map_err(db_err)
}

pub(super) fn uuid_col(row: &SqliteRow, column: &str) -> Result<Uuid, StoreError> {
    let text: String = get(row, column)?;
    Uuid::parse_str(&text).map_err(StoreError::backend)
}

fn opt_uuid_col(row: &SqliteRow, column: &str) -> Result<Option<Uuid>, StoreError> {
    let text: Option<String> = get(row, column)?;
    text.map(|t| Uuid::parse_str(&t).map_err(StoreError::backend))
        .transpose()
}

pub(super) fn time_col(row: &SqliteRow, column: &str) -> Result<DateTime<Utc>, StoreError> {
    Ok(from_millis(get(row, column)?))
}

pub(super) fn opt_time_col(
    row: &SqliteRow,
    column: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(get::<Option<i64>>(row, column)?.map(from_millis))
}

pub(super) fn flag_col(row: &SqliteRow, column: &str) -> Result<bool, StoreError> {
    Ok(get::<i64>(row, column)? != 0)
}

pub(super) fn role_col(row: &SqliteRow) -> Result<Role, StoreError> {
    let text: String = get(row, "role")?;
    Role::parse(&text).ok_or_else(|| StoreError::Backend(format!("unknown role {text}")))
}

pub(super) fn user_from(row: &SqliteRow) -> Result<User, StoreError> {
    Ok(User {
        id: uuid_col(row, "id")?,
        email: get(row, "email")?,
        display_name: get(row, "display_name")?,
        created_at: time_col(row, "created_at")?,
        avatar_url: get(row, "avatar_url")?,
        time_zone: get(row, "time_zone")?,
        disabled_at: opt_time_col(row, "disabled_at")?,
    })
}

pub(super) fn session_from(row: &SqliteRow) -> Result<Session, StoreError> {
    Ok(Session {
        id: uuid_col(row, "id")?,
        user_id: uuid_col(row, "user_id")?,
        refresh_hash: get(row, "refresh_hash")?,
        refresh_expires_at: time_col(row, "refresh_expires_at")?,
        created_at: time_col(row, "created_at")?,
        revoked_at: opt_time_col(row, "revoked_at")?,
    })
}

pub(super) fn revoked_from(row: &SqliteRow) -> Result<RevokedAccess, StoreError> {
    Ok(RevokedAccess {
        user_id: uuid_col(row, "user_id")?,
        session_id: opt_uuid_col(row, "session_id")?,
        at: time_col(row, "at")?,
    })
}

pub(super) fn workspace_from(row: &SqliteRow) -> Result<Workspace, StoreError> {
    Ok(Workspace {
        id: uuid_col(row, "id")?,
        name: get(row, "name")?,
        created_by: uuid_col(row, "created_by")?,
        created_at: time_col(row, "created_at")?,
    })
}

pub(super) fn channel_from(row: &SqliteRow) -> Result<Channel, StoreError> {
    let kind: String = get(row, "kind")?;
    Ok(Channel {
        id: uuid_col(row, "id")?,
        workspace_id: uuid_col(row, "workspace_id")?,
        name: get(row, "name")?,
        description: get(row, "description")?,
        kind: ChannelKind::parse(&kind)
            .ok_or_else(|| StoreError::Backend(format!("unknown channel kind {kind}")))?,
        topic: get(row, "topic")?,
        topic_set_by: opt_uuid_col(row, "topic_set_by")?,
        topic_set_at: opt_time_col(row, "topic_set_at")?,
        is_archived: flag_col(row, "is_archived")?,
        created_by: uuid_col(row, "created_by")?,
        created_at: time_col(row, "created_at")?,
    })
}

/// A `channel_members` row whose columns are prefixed with `prefix` (`""` for a plain row).
pub(super) fn member_from(row: &SqliteRow, prefix: &str) -> Result<ChannelMember, StoreError> {
    let seq: i64 = get(row, &format!("{prefix}last_read_seq"))?;
    Ok(ChannelMember {
        channel_id: uuid_col(row, &format!("{prefix}channel_id"))?,
        user_id: uuid_col(row, &format!("{prefix}user_id"))?,
        joined_at: time_col(row, &format!("{prefix}joined_at"))?,
        last_read_seq: u64::try_from(seq).map_err(StoreError::backend)?,
        muted: flag_col(row, &format!("{prefix}muted"))?,
    })
}

pub(super) fn invite_from(row: &SqliteRow) -> Result<Invite, StoreError> {
    Ok(Invite {
        id: uuid_col(row, "id")?,
        workspace_id: uuid_col(row, "workspace_id")?,
        email: get(row, "email")?,
        role: role_col(row)?,
        token_hash: get(row, "token_hash")?,
        invited_by: uuid_col(row, "invited_by")?,
        created_at: time_col(row, "created_at")?,
        expires_at: time_col(row, "expires_at")?,
        accepted_by: opt_uuid_col(row, "accepted_by")?,
        accepted_at: opt_time_col(row, "accepted_at")?,
    })
}

pub(super) fn audit_from(row: &SqliteRow) -> Result<AuditEntry, StoreError> {
    let details: String = get(row, "details")?;
    Ok(AuditEntry {
        id: uuid_col(row, "id")?,
        workspace_id: opt_uuid_col(row, "workspace_id")?,
        actor_id: opt_uuid_col(row, "actor_id")?,
        action: get(row, "action")?,
        target_id: opt_uuid_col(row, "target_id")?,
        details: serde_json::from_str(&details).map_err(StoreError::backend)?,
        at: time_col(row, "at")?,
    })
}
