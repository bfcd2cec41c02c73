//! Direct-message channels: one per set of people, found by its `dm_key`.

use sqlx::PgPool;
use uuid::Uuid;

use super::rows::{channel_from, db_err, now};
use crate::StoreError;
use crate::metadata::dm_identity;
use crate::model::{Channel, ChannelKind};

pub(super) async fn open_dm(
    pool: &PgPool,
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

async fn by_key(pool: &PgPool, workspace: Uuid, key: &str) -> Result<Option<Channel>, StoreError> {
    sqlx::query("SELECT * FROM channels WHERE workspace_id = $1 AND dm_key = $2")
        .bind(workspace)
        .bind(key)
        .fetch_optional(pool)
        .await
        .map_err(db_err)?
        .map(|row| channel_from(&row))
        .transpose()
}

/// Inserts the channel and its members in one transaction. A unique violation aborts it, so the
/// caller reads the winner's channel outside of it.
async fn insert(
    pool: &PgPool,
    channel: &Channel,
    members: &[Uuid],
    key: &str,
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    sqlx::query(
        "INSERT INTO channels
             (id, workspace_id, name, description, kind, created_by, created_at, dm_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(channel.id)
    .bind(channel.workspace_id)
    .bind(&channel.name)
    .bind(&channel.description)
    .bind(channel.kind.as_str())
    .bind(channel.created_by)
    .bind(channel.created_at)
    .bind(key)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    for member in members {
        sqlx::query(
            "INSERT INTO channel_members (channel_id, user_id, joined_at) VALUES ($1, $2, $3)",
        )
        .bind(channel.id)
        .bind(member)
        .bind(channel.created_at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)
}
