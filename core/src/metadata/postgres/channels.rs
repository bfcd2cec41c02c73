//! Channels: creation, listing, access and metadata changes.

use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::rows::{channel_from, db_err, get, member_from, now};
use crate::StoreError;
use crate::metadata::{ChannelListing, ChannelStanding, NewChannel, in_order_asked};
use crate::model::{Channel, ChannelUpdate};

pub(super) async fn create_channel(pool: &PgPool, new: &NewChannel) -> Result<Channel, StoreError> {
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
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(channel.id)
    .bind(channel.workspace_id)
    .bind(&channel.name)
    .bind(&channel.description)
    .bind(channel.kind.as_str())
    .bind(channel.created_by)
    .bind(channel.created_at)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    sqlx::query("INSERT INTO channel_members (channel_id, user_id, joined_at) VALUES ($1, $2, $3)")
        .bind(channel.id)
        .bind(channel.created_by)
        .bind(channel.created_at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(channel)
}

pub(super) async fn channel(pool: &PgPool, id: Uuid) -> Result<Option<Channel>, StoreError> {
    sqlx::query("SELECT * FROM channels WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(db_err)?
        .map(|row| channel_from(&row))
        .transpose()
}

pub(super) async fn update_channel(
    pool: &PgPool,
    id: Uuid,
    update: &ChannelUpdate,
) -> Result<Channel, StoreError> {
    let (topic, topic_set_by, topic_set_at) = match &update.topic {
        Some((topic, by, at)) => (Some(topic.as_str()), Some(*by), Some(*at)),
        None => (None, None, None),
    };
    sqlx::query(
        "UPDATE channels SET
             name = COALESCE($1, name),
             description = COALESCE($2, description),
             kind = COALESCE($3, kind),
             is_archived = COALESCE($4, is_archived),
             topic = COALESCE($5, topic),
             topic_set_by = COALESCE($6, topic_set_by),
             topic_set_at = COALESCE($7, topic_set_at)
         WHERE id = $8
         RETURNING *",
    )
    .bind(update.name.as_deref())
    .bind(update.description.as_deref())
    .bind(update.kind.map(|k| k.as_str()))
    .bind(update.is_archived)
    .bind(topic)
    .bind(topic_set_by)
    .bind(topic_set_at)
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?
    .map(|row| channel_from(&row))
    .transpose()?
    .ok_or_else(|| StoreError::NotFound(format!("channel {id}")))
}

pub(super) async fn channels_visible_to(
    pool: &PgPool,
    workspace: Uuid,
    user: Uuid,
) -> Result<Vec<ChannelListing>, StoreError> {
    sqlx::query(
        "SELECT c.*, m.channel_id AS m_channel_id, m.user_id AS m_user_id,
                m.joined_at AS m_joined_at, m.last_read_seq AS m_last_read_seq, m.muted AS m_muted
         FROM channels c
         LEFT JOIN channel_members m ON m.channel_id = c.id AND m.user_id = $1
         WHERE c.workspace_id = $2 AND (c.kind = 'public' OR m.user_id IS NOT NULL)
         ORDER BY c.name",
    )
    .bind(user)
    .bind(workspace)
    .fetch_all(pool)
    .await
    .map_err(db_err)?
    .iter()
    .map(|row| {
        let is_member = row
            .try_get::<Option<Uuid>, _>("m_user_id")
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

pub(super) async fn channel_ids_of(pool: &PgPool, user: Uuid) -> Result<Vec<Uuid>, StoreError> {
    sqlx::query(
        "SELECT m.channel_id FROM channel_members m
         JOIN channels c ON c.id = m.channel_id
         JOIN workspace_members w ON w.workspace_id = c.workspace_id AND w.user_id = m.user_id
         WHERE m.user_id = $1 ORDER BY m.joined_at, m.channel_id",
    )
    .bind(user)
    .fetch_all(pool)
    .await
    .map_err(db_err)?
    .iter()
    .map(|row| get(row, "channel_id"))
    .collect()
}

pub(super) async fn channel_standing(
    pool: &PgPool,
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
    pool: &PgPool,
    channels: &[Uuid],
    user: Uuid,
) -> Result<Vec<Option<ChannelStanding>>, StoreError> {
    if channels.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(
        "SELECT c.*, w.role AS w_role,
                m.channel_id AS m_channel_id, m.user_id AS m_user_id, m.joined_at AS m_joined_at,
                m.last_read_seq AS m_last_read_seq, m.muted AS m_muted
         FROM channels c
         LEFT JOIN workspace_members w ON w.workspace_id = c.workspace_id AND w.user_id = $1
         LEFT JOIN channel_members m ON m.channel_id = c.id AND m.user_id = $1
         WHERE c.id = ANY($2)",
    )
    .bind(user)
    .bind(channels)
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    let mut found = std::collections::HashMap::new();
    for row in rows {
        let membership = if get::<Option<Uuid>>(&row, "m_user_id")?.is_some() {
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
