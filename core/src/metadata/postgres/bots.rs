//! Bots, bot tokens and incoming webhooks in PostgreSQL ([`BotStore`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::PostgresMetadataStore;
use super::rows::{USER_COLUMNS, db_err, get, now, user_from};
use crate::StoreError;
use crate::bots::{BOT_SESSION_REFRESH_HASH, Bot, BotToken, IncomingWebhook, NewBot, Scopes};
use crate::metadata::BotStore;
use crate::model::User;

/// A bot token's session never expires by time: only revocation ends it.
fn never() -> DateTime<Utc> {
    DateTime::from_timestamp(253_402_300_799, 0).unwrap_or_default() // 9999-12-31T23:59:59Z
}

fn bot_select() -> String {
    let users = USER_COLUMNS
        .split(", ")
        .map(|c| format!("u.{c} AS {c}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT {users}, b.workspace_id AS b_workspace_id, b.description AS b_description,
                b.created_by AS b_created_by, b.created_at AS b_created_at
         FROM bots b JOIN users u ON u.id = b.user_id"
    )
}

fn bot_from(row: &PgRow) -> Result<Bot, StoreError> {
    Ok(Bot {
        user: user_from(row)?,
        workspace_id: get(row, "b_workspace_id")?,
        description: get(row, "b_description")?,
        created_by: get(row, "b_created_by")?,
        created_at: get(row, "b_created_at")?,
    })
}

const TOKEN_SELECT: &str = "SELECT t.id, t.bot_id, t.name, t.token_hash, t.scopes, t.created_by,
        t.created_at, s.revoked_at
     FROM bot_tokens t JOIN sessions s ON s.id = t.id";

fn token_from(row: &PgRow) -> Result<(BotToken, String), StoreError> {
    let scopes: String = get(row, "scopes")?;
    Ok((
        BotToken {
            id: get(row, "id")?,
            bot_id: get(row, "bot_id")?,
            name: get(row, "name")?,
            scopes: Scopes::from_text(&scopes),
            created_by: get(row, "created_by")?,
            created_at: get(row, "created_at")?,
            revoked_at: get(row, "revoked_at")?,
        },
        get(row, "token_hash")?,
    ))
}

const HOOK_COLUMNS: &str =
    "id, workspace_id, channel_id, bot_id, name, secret_hash, created_by, created_at";

fn hook_from(row: &PgRow) -> Result<IncomingWebhook, StoreError> {
    Ok(IncomingWebhook {
        id: get(row, "id")?,
        workspace_id: get(row, "workspace_id")?,
        channel_id: get(row, "channel_id")?,
        bot_id: get(row, "bot_id")?,
        name: get(row, "name")?,
        secret_hash: get(row, "secret_hash")?,
        created_by: get(row, "created_by")?,
        created_at: get(row, "created_at")?,
    })
}

#[async_trait]
impl BotStore for PostgresMetadataStore {
    async fn create_bot(&self, new: &NewBot) -> Result<Bot, StoreError> {
        let at = now();
        let id = Uuid::now_v7();
        let user = User {
            id,
            // Unique and unusable: `.invalid` never resolves, and the bot has no password.
            email: format!("bot-{}@bots.invalid", id.simple()),
            display_name: new.name.clone(),
            created_at: at,
            avatar_url: new.avatar_url.clone(),
            time_zone: None,
            disabled_at: None,
        };
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO users (id, email, display_name, password_hash, created_at, avatar_url)
             VALUES ($1, $2, $3, '!bot', $4, $5)",
        )
        .bind(id)
        .bind(&user.email)
        .bind(&user.display_name)
        .bind(at)
        .bind(user.avatar_url.as_deref())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO bots (user_id, workspace_id, description, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(new.workspace_id)
        .bind(&new.description)
        .bind(new.created_by)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO workspace_members (workspace_id, user_id, role, joined_at)
             VALUES ($1, $2, 'member', $3)",
        )
        .bind(new.workspace_id)
        .bind(id)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(Bot {
            user,
            workspace_id: new.workspace_id,
            description: new.description.clone(),
            created_by: new.created_by,
            created_at: at,
        })
    }

    async fn bot(&self, id: Uuid) -> Result<Option<Bot>, StoreError> {
        sqlx::query(&format!("{} WHERE b.user_id = $1", bot_select()))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .map(|row| bot_from(&row))
            .transpose()
    }

    async fn bots_of(&self, workspace: Uuid) -> Result<Vec<Bot>, StoreError> {
        sqlx::query(&format!(
            "{} WHERE b.workspace_id = $1 ORDER BY b.created_at, b.user_id",
            bot_select()
        ))
        .bind(workspace)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(bot_from)
        .collect()
    }

    async fn create_bot_token(&self, token: &BotToken, hash: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, refresh_hash, refresh_expires_at, created_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token.id)
        .bind(token.bot_id)
        .bind(BOT_SESSION_REFRESH_HASH)
        .bind(never())
        .bind(token.created_at)
        .bind(token.revoked_at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO bot_tokens (id, bot_id, name, token_hash, scopes, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(token.id)
        .bind(token.bot_id)
        .bind(&token.name)
        .bind(hash)
        .bind(token.scopes.to_text())
        .bind(token.created_by)
        .bind(token.created_at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn bot_token(&self, id: Uuid) -> Result<Option<(BotToken, String)>, StoreError> {
        sqlx::query(&format!("{TOKEN_SELECT} WHERE t.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .map(|row| token_from(&row))
            .transpose()
    }

    async fn bot_tokens_of(&self, bot: Uuid) -> Result<Vec<BotToken>, StoreError> {
        sqlx::query(&format!(
            "{TOKEN_SELECT} WHERE t.bot_id = $1 ORDER BY t.created_at DESC, t.id DESC"
        ))
        .bind(bot)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(|row| token_from(row).map(|(token, _)| token))
        .collect()
    }

    async fn revoke_bot_token(
        &self,
        bot: Uuid,
        token: Uuid,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE sessions SET revoked_at = $1
             WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL
               AND id IN (SELECT id FROM bot_tokens)",
        )
        .bind(at)
        .bind(token)
        .bind(bot)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(result.rows_affected() == 1)
    }

    async fn create_webhook(&self, hook: &IncomingWebhook) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO incoming_webhooks ({HOOK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(hook.id)
        .bind(hook.workspace_id)
        .bind(hook.channel_id)
        .bind(hook.bot_id)
        .bind(&hook.name)
        .bind(&hook.secret_hash)
        .bind(hook.created_by)
        .bind(hook.created_at)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn webhook(&self, id: Uuid) -> Result<Option<IncomingWebhook>, StoreError> {
        sqlx::query(&format!(
            "SELECT {HOOK_COLUMNS} FROM incoming_webhooks WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?
        .map(|row| hook_from(&row))
        .transpose()
    }

    async fn webhooks_of(&self, channel: Uuid) -> Result<Vec<IncomingWebhook>, StoreError> {
        sqlx::query(&format!(
            "SELECT {HOOK_COLUMNS} FROM incoming_webhooks WHERE channel_id = $1
             ORDER BY created_at, id"
        ))
        .bind(channel)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(hook_from)
        .collect()
    }

    async fn delete_webhook(&self, id: Uuid) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM incoming_webhooks WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(result.rows_affected() == 1)
    }
}
