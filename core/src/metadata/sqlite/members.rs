//! Channel memberships: who is in a channel, their read position and mute.

use sqlx::{Row, SqlitePool};
use uuid::Uuid;

use super::rows::{db_err, member_from, millis, now, returning_row, seq_param};
use crate::StoreError;
use crate::model::ChannelMember;

const MEMBER_COLUMNS: &str = "channel_id, user_id, joined_at, last_read_seq, muted";

pub(super) async fn add_channel_member(
    pool: &SqlitePool,
    channel: Uuid,
    user: Uuid,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO channel_members (channel_id, user_id, joined_at) VALUES (?, ?, ?)
         ON CONFLICT (channel_id, user_id) DO NOTHING",
    )
    .bind(channel.to_string())
    .bind(user.to_string())
    .bind(millis(now()))
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(super) async fn remove_channel_member(
    pool: &SqlitePool,
    channel: Uuid,
    user: Uuid,
) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM channel_members WHERE channel_id = ? AND user_id = ?")
        .bind(channel.to_string())
        .bind(user.to_string())
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(result.rows_affected() == 1)
}

pub(super) async fn channel_members(
    pool: &SqlitePool,
    channel: Uuid,
) -> Result<Vec<ChannelMember>, StoreError> {
    sqlx::query(&format!(
        "SELECT {MEMBER_COLUMNS} FROM channel_members WHERE channel_id = ?
         ORDER BY joined_at, user_id"
    ))
    .bind(channel.to_string())
    .fetch_all(pool)
    .await
    .map_err(db_err)?
    .iter()
    .map(|row| member_from(row, ""))
    .collect()
}

pub(super) async fn channel_membership(
    pool: &SqlitePool,
    channel: Uuid,
    user: Uuid,
) -> Result<Option<ChannelMember>, StoreError> {
    sqlx::query(&format!(
        "SELECT {MEMBER_COLUMNS} FROM channel_members WHERE channel_id = ? AND user_id = ?"
    ))
    .bind(channel.to_string())
    .bind(user.to_string())
    .fetch_optional(pool)
    .await
    .map_err(db_err)?
    .map(|row| member_from(&row, ""))
    .transpose()
}

pub(super) async fn set_channel_muted(
    pool: &SqlitePool,
    channel: Uuid,
    user: Uuid,
    muted: bool,
) -> Result<bool, StoreError> {
    let result =
        sqlx::query("UPDATE channel_members SET muted = ? WHERE channel_id = ? AND user_id = ?")
            .bind(muted)
            .bind(channel.to_string())
            .bind(user.to_string())
            .execute(pool)
            .await
            .map_err(db_err)?;
    Ok(result.rows_affected() == 1)
}

pub(super) async fn mark_read(
    pool: &SqlitePool,
    channel: Uuid,
    user: Uuid,
    seq: u64,
) -> Result<u64, StoreError> {
    // One statement, so two concurrent marks can never move the position backwards.
    let row = returning_row(
        sqlx::query(
            "UPDATE channel_members SET last_read_seq = MAX(last_read_seq, ?)
             WHERE channel_id = ? AND user_id = ?
             RETURNING last_read_seq",
        )
        .bind(seq_param(seq)?)
        .bind(channel.to_string())
        .bind(user.to_string()),
        pool,
    )
    .await?
    .ok_or_else(|| {
        StoreError::NotFound(format!("user {user} is not a member of channel {channel}"))
    })?;
    let position: i64 = row.try_get("last_read_seq").map_err(db_err)?;
    u64::try_from(position).map_err(StoreError::backend)
}
