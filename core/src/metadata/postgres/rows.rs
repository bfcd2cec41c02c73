//! Conversions between PostgreSQL rows and records.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgRow;

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

/// Now, at the microsecond precision PostgreSQL keeps, so what a create returns equals what a
/// later read returns.
pub(super) fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_default()
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

pub(super) fn get<'r, T>(row: &'r PgRow, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(column).map_err(db_err)
}

pub(super) fn role_col(row: &PgRow) -> Result<Role, StoreError> {
    let text: String = get(row, "role")?;
    Role::parse(&text).ok_or_else(|| StoreError::Backend(format!("unknown role {text}")))
}

pub(super) fn user_from(row: &PgRow) -> Result<User, StoreError> {
    Ok(User {
        id: get(row, "id")?,
        email: get(row, "email")?,
        display_name: get(row, "display_name")?,
        created_at: get(row, "created_at")?,
        avatar_url: get(row, "avatar_url")?,
        time_zone: get(row, "time_zone")?,
        disabled_at: get(row, "disabled_at")?,
    })
}

pub(super) fn session_from(row: &PgRow) -> Result<Session, StoreError> {
    Ok(Session {
        id: get(row, "id")?,
        user_id: get(row, "user_id")?,
        refresh_hash: get(row, "refresh_hash")?,
        refresh_expires_at: get(row, "refresh_expires_at")?,
        created_at: get(row, "created_at")?,
        revoked_at: get(row, "revoked_at")?,
    })
}

pub(super) fn revoked_from(row: &PgRow) -> Result<RevokedAccess, StoreError> {
    Ok(RevokedAccess {
        user_id: get(row, "user_id")?,
        session_id: get(row, "session_id")?,
        at: get(row, "at")?,
    })
}

pub(super) fn workspace_from(row: &PgRow) -> Result<Workspace, StoreError> {
    Ok(Workspace {
        id: get(row, "id")?,
        name: get(row, "name")?,
        created_by: get(row, "created_by")?,
        created_at: get(row, "created_at")?,
    })
}

pub(super) fn channel_from(row: &PgRow) -> Result<Channel, StoreError> {
    let kind: String = get(row, "kind")?;
    Ok(Channel {
        id: get(row, "id")?,
        workspace_id: get(row, "workspace_id")?,
        name: get(row, "name")?,
        description: get(row, "description")?,
        kind: ChannelKind::parse(&kind)
            .ok_or_else(|| StoreError::Backend(format!("unknown channel kind {kind}")))?,
        topic: get(row, "topic")?,
        topic_set_by: get(row, "topic_set_by")?,
        topic_set_at: get(row, "topic_set_at")?,
        is_archived: get(row, "is_archived")?,
        created_by: get(row, "created_by")?,
        created_at: get(row, "created_at")?,
    })
}

/// A `channel_members` row whose columns are prefixed with `prefix` (`""` for a plain row).
pub(super) fn member_from(row: &PgRow, prefix: &str) -> Result<ChannelMember, StoreError> {
    let seq: i64 = get(row, &format!("{prefix}last_read_seq"))?;
    Ok(ChannelMember {
        channel_id: get(row, &format!("{prefix}channel_id"))?,
        user_id: get(row, &format!("{prefix}user_id"))?,
        joined_at: get(row, &format!("{prefix}joined_at"))?,
        last_read_seq: u64::try_from(seq).map_err(StoreError::backend)?,
        muted: get(row, &format!("{prefix}muted"))?,
    })
}

pub(super) fn invite_from(row: &PgRow) -> Result<Invite, StoreError> {
    Ok(Invite {
        id: get(row, "id")?,
        workspace_id: get(row, "workspace_id")?,
        email: get(row, "email")?,
        role: role_col(row)?,
        token_hash: get(row, "token_hash")?,
        invited_by: get(row, "invited_by")?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
        accepted_by: get(row, "accepted_by")?,
        accepted_at: get(row, "accepted_at")?,
    })
}

/// An `audit_log` row whose `details` was selected as text (the crate's sqlx has no JSON codec).
pub(super) fn audit_from(row: &PgRow) -> Result<AuditEntry, StoreError> {
    let details: String = get(row, "details")?;
    Ok(AuditEntry {
        id: get(row, "id")?,
        workspace_id: get(row, "workspace_id")?,
        actor_id: get(row, "actor_id")?,
        action: get(row, "action")?,
        target_id: get(row, "target_id")?,
        details: serde_json::from_str(&details).map_err(StoreError::backend)?,
        at: get(row, "at")?,
    })
}
