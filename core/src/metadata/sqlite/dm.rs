//! Direct-message channels: one per set of people, found by its `dm_key`.

use sqlx::SqlitePool;
use uuid::Uuid;

use super::rows::{channel_from, db_err, millis, now};
use crate::StoreError;
use crate::metadata::dm_identity;
use crate::model::{Channel, ChannelKind};

pub(super) async fn open_dm(
    pool: &SqlitePool,
    workspace: Uuid,
    members: &[Uuid],
    created_by: Uuid,
) -> Result<(Channel, bool), StoreError> {
    let (members, key, name) = dm_identity(members);
    if let Some(channel) = by_key(pool, workspace, &key).await? {
        return Ok((channel, false));
    }
    let channel = Channel {
        id: Uuid::now_v7(),
        workspace_id: workspace,
        name,
        description: String::new(),
        kind: ChannelKind::Dm,
        topic: String::new(),
        topic_set_by: None,
        topic_set_at: None,
        is_archived: false,
        created_by,
        created_at: now(),
    };
    match insert(pool, &channel, &members, &key).await {
        Ok(()) => Ok((channel, true)),
        // Someone opened the same conversation between our read and our insert.
        Err(StoreError::Conflict(reason)) => match by_key(pool, workspace, &key).await? {
            Some(existing) => Ok((existing, false)),
            None => Err(StoreError::Conflict(reason)),
        },
        Err(err) => Err(err),
    }
}

async fn by_key(
    pool: &SqlitePool,
    workspace: Uuid,
    key: &str,
) -> Result<Option<Channel>, StoreError> {
    sqlx::query("SELECT * FROM channels WHERE workspace_id = ? AND dm_key = ?")
        .bind(workspace.to_string())
        .bind(key)
        .fetch_optional(pool)
        .await
        .map_err(db_err)?
        .map(|row| channel_from(&row))
        .transpose()
}

/// Inserts the channel and its members in one transaction, released before returning so that
/// the caller can read again on a single-connection pool.
async fn insert(
    pool: &SqlitePool,
    channel: &Channel,
    members: &[Uuid],
    key: &str,
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    sqlx::query(
        "INSERT INTO channels
             (id, workspace_id, name, description, kind, created_by, created_at, dm_key)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(channel.id.to_string())
    .bind(channel.workspace_id.to_string())
    .bind(&channel.name)
    .bind(&channel.description)
    .bind(channel.kind.as_str())
    .bind(channel.created_by.to_string())
    .bind(millis(channel.created_at))
    .bind(key)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    for member in members {
        sqlx::query(
            "INSERT INTO channel_members (channel_id, user_id, joined_at) VALUES (?, ?, ?)",
        )
        .bind(channel.id.to_string())
        .bind(member.to_string())
        .bind(millis(channel.created_at))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)
}
