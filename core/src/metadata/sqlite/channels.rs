//! Channels: creation, listing, access and metadata changes.

use sqlx::{Row, SqlitePool};
use uuid::Uuid;

use super::rows::{channel_from, db_err, get, member_from, millis, now, returning_row, uuid_col};
use crate::StoreError;
use crate::metadata::{ChannelListing, ChannelStanding, NewChannel, in_order_asked};
use crate::model::{Channel, ChannelUpdate};

pub(super) async fn create_channel(
    pool: &SqlitePool,
    new: &NewChannel,
) -> Result<Channel, StoreError> {
    let channel = Channel {
        id: Uuid::now_v7(),
        workspace_id: new.workspace_id,
        name: new.name.clone(),
        description: new.description.clone(),
        kind: new.kind,
        topic: String::new(),
        topic_set_by: None,
        topic_set_at: None,
        is_archived: false,
        created_by: new.created_by,
        created_at: now(),
    };
    let mut tx = pool.begin().await.map_err(db_err)?;
    sqlx::query(
        "INSERT INTO channels (id, workspace_id, name, description, kind, created_by, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(channel.id.to_string())
    .bind(channel.workspace_id.to_string())
    .bind(&channel.name)
    .bind(&channel.description)
    .bind(channel.kind.as_str())
    .bind(channel.created_by.to_string())
    .bind(millis(channel.created_at))
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    sqlx::query("INSERT INTO channel_members (channel_id, user_id, joined_at) VALUES (?, ?, ?)")
        .bind(channel.id.to_string())
        .bind(channel.created_by.to_string())
        .bind(millis(channel.created_at))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(channel)
}

pub(super) async fn channel(pool: &SqlitePool, id: Uuid) -> Result<Option<Channel>, StoreError> {
    sqlx::query("SELECT * FROM channels WHERE id = ?")
        .bind(id.to_string())
        .fetch_optional(pool)
        .await
        .map_err(db_err)?
        .map(|row| channel_from(&row))
        .transpose()
}

pub(super) async fn update_channel(
    pool: &SqlitePool,
    id: Uuid,
    update: &ChannelUpdate,
) -> Result<Channel, StoreError> {
    let (topic, topic_set_by, topic_set_at) = match &update.topic {
        Some((topic, by, at)) => (
            Some(topic.as_str()),
            Some(by.to_string()),
            Some(millis(*at)),
        ),
        None => (None, None, None),
    };
    let query = sqlx::query(
        "UPDATE channels SET
             name = COALESCE(?, name),
             description = COALESCE(?, description),
             kind = COALESCE(?, kind),
             is_archived = COALESCE(?, is_archived),
             topic = COALESCE(?, topic),
             topic_set_by = COALESCE(?, topic_set_by),
             topic_set_at = COALESCE(?, topic_set_at)
         WHERE id = ?
         RETURNING *",
    )
    .bind(update.name.as_deref())
    .bind(update.description.as_deref())
    .bind(update.kind.map(|k| k.as_str()))
    .bind(update.is_archived)
    .bind(topic)
    .bind(topic_set_by)
    .bind(topic_set_at)
    .bind(id.to_string());
    returning_row(query, pool)
        .await?
        .map(|row| channel_from(&row))
        .transpose()?
        .ok_or_else(|| StoreError::NotFound(format!("channel {id}")))
}

pub(super) async fn channels_visible_to(
    pool: &SqlitePool,
    workspace: Uuid,
    user: Uuid,
) -> Result<Vec<ChannelListing>, StoreError> {
    sqlx::query(
        "SELECT c.*, m.channel_id AS m_channel_id, m.user_id AS m_user_id,
                m.joined_at AS m_joined_at, m.last_read_seq AS m_last_read_seq, m.muted AS m_muted
         FROM channels c
         LEFT JOIN channel_members m ON m.channel_id = c.id AND m.user_id = ?
         WHERE c.workspace_id = ? AND (c.kind = 'public' OR m.user_id IS NOT NULL)
         ORDER BY c.name",
    )
    .bind(user.to_string())
    .bind(workspace.to_string())
    .fetch_all(pool)
    .await
    .map_err(db_err)?
    .iter()
    .map(|row| {
        let is_member = row
            .try_get::<Option<String>, _>("m_user_id")
            .map_err(db_err)?
            .is_some();
        Ok(ChannelListing {
            channel: channel_from(row)?,
            membership: if is_member {
                Some(member_from(row, "m_")?)
            } else {
                None
            },
        })
    })
    .collect()
}

pub(super) async fn channel_ids_of(pool: &SqlitePool, user: Uuid) -> Result<Vec<Uuid>, StoreError> {
    sqlx::query(
        "SELECT m.channel_id FROM channel_members m
         JOIN channels c ON c.id = m.channel_id
         JOIN workspace_members w ON w.workspace_id = c.workspace_id AND w.user_id = m.user_id
         WHERE m.user_id = ? ORDER BY m.joined_at, m.channel_id",
    )
    .bind(user.to_string())
    .fetch_all(pool)
    .await
    .map_err(db_err)?
    .iter()
    .map(|row| uuid_col(row, "channel_id"))
    .collect()
}

pub(super) async fn channel_standing(
    pool: &SqlitePool,
    channel: Uuid,
    user: Uuid,
) -> Result<Option<ChannelStanding>, StoreError> {
    Ok(channel_standings(pool, &[channel], user)
        .await?
        .pop()
        .flatten())
}

/// One query for any number of channels; the answer is in the order asked.
pub(super) async fn channel_standings(
    pool: &SqlitePool,
    channels: &[Uuid],
    user: Uuid,
) -> Result<Vec<Option<ChannelStanding>>, StoreError> {
    if channels.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (0..channels.len()).map(|i| format!("?{}", i + 2)).collect();
    let sql = format!(
        "SELECT c.*, w.role AS w_role,
                m.channel_id AS m_channel_id, m.user_id AS m_user_id, m.joined_at AS m_joined_at,
                m.last_read_seq AS m_last_read_seq, m.muted AS m_muted
         FROM channels c
         LEFT JOIN workspace_members w ON w.workspace_id = c.workspace_id AND w.user_id = ?1
         LEFT JOIN channel_members m ON m.channel_id = c.id AND m.user_id = ?1
         WHERE c.id IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&sql).bind(user.to_string());
    for channel in channels {
        query = query.bind(channel.to_string());
    }
    let mut found = std::collections::HashMap::new();
    for row in query.fetch_all(pool).await.map_err(db_err)? {
        let membership = if get::<Option<String>>(&row, "m_user_id")?.is_some() {
            Some(member_from(&row, "m_")?)
        } else {
            None
        };
        let standing =
            ChannelStanding::from_row_parts(channel_from(&row)?, get(&row, "w_role")?, membership)?;
        found.insert(standing.channel.id, standing);
    }
    Ok(in_order_asked(channels, found))
}
