//! Channel memberships: who is in a channel, their read position and mute.

use std::collections::HashMap;

use sqlx::PgPool;
use uuid::Uuid;

use super::rows::{db_err, member_from, now, seq_param};
use crate::StoreError;
use crate::model::ChannelMember;

const MEMBER_COLUMNS: &str = "channel_id, user_id, joined_at, last_read_seq, muted";

pub(super) async fn add_channel_member(
    pool: &PgPool,
    channel: Uuid,
    user: Uuid,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO channel_members (channel_id, user_id, joined_at) VALUES ($1, $2, $3)
         ON CONFLICT (channel_id, user_id) DO NOTHING",
    )
    .bind(channel)
    .bind(user)
    .bind(now())
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(super) async fn remove_channel_member(
    pool: &PgPool,
    channel: Uuid,
    user: Uuid,
) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM channel_members WHERE channel_id = $1 AND user_id = $2")
        .bind(channel)
        .bind(user)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(result.rows_affected() == 1)
}

pub(super) async fn channel_members(
    pool: &PgPool,
    channel: Uuid,
) -> Result<Vec<ChannelMember>, StoreError> {
    sqlx::query(&format!(
        "SELECT {MEMBER_COLUMNS} FROM channel_members WHERE channel_id = $1
         ORDER BY joined_at, user_id"
    ))
    .bind(channel)
    .fetch_all(pool)
    .await
    .map_err(db_err)?
    .iter()
    .map(|row| member_from(row, ""))
    .collect()
}

pub(super) async fn channel_membership(
    pool: &PgPool,
    channel: Uuid,
    user: Uuid,
) -> Result<Option<ChannelMember>, StoreError> {
    sqlx::query(&format!(
        "SELECT {MEMBER_COLUMNS} FROM channel_members WHERE channel_id = $1 AND user_id = $2"
    ))
    .bind(channel)
    .bind(user)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?
    .map(|row| member_from(&row, ""))
    .transpose()
}

/// Read positions of `user` in those of `channels` it belongs to, in one query.
pub(super) async fn read_positions(
    pool: &PgPool,
    user: Uuid,
    channels: &[Uuid],
) -> Result<HashMap<Uuid, u64>, StoreError> {
    let rows: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT channel_id, last_read_seq FROM channel_members
         WHERE user_id = $1 AND channel_id = ANY($2)",
    )
    .bind(user)
    .bind(channels)
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.into_iter()
        .map(|(channel, seq)| Ok((channel, u64::try_from(seq).map_err(StoreError::backend)?)))
        .collect()
}

pub(super) async fn set_channel_muted(
    pool: &PgPool,
    channel: Uuid,
    user: Uuid,
    muted: bool,
) -> Result<bool, StoreError> {
    let result =
        sqlx::query("UPDATE channel_members SET muted = $1 WHERE channel_id = $2 AND user_id = $3")
            .bind(muted)
            .bind(channel)
            .bind(user)
            .execute(pool)
            .await
            .map_err(db_err)?;
    Ok(result.rows_affected() == 1)
}

pub(super) async fn mark_read(
    pool: &PgPool,
    channel: Uuid,
    user: Uuid,
    seq: u64,
) -> Result<u64, StoreError> {
    // One statement, so two concurrent marks can never move the position backwards.
    let position: Option<i64> = sqlx::query_scalar(
        "UPDATE channel_members SET last_read_seq = GREATEST(last_read_seq, $1)
         WHERE channel_id = $2 AND user_id = $3
         RETURNING last_read_seq",
    )
    .bind(seq_param(seq)?)
    .bind(channel)
    .bind(user)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    let position = position.ok_or_else(|| {
        StoreError::NotFound(format!("user {user} is not a member of channel {channel}"))
    })?;
    u64::try_from(position).map_err(StoreError::backend)
}
