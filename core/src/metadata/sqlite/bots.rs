//! Bots, bot tokens and incoming webhooks in SQLite ([`BotStore`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use super::SqliteMetadataStore;
use super::rows::{USER_COLUMNS, db_err, get, millis, now, user_from, uuid_col};
use crate::StoreError;
use crate::bots::{BOT_SESSION_REFRESH_HASH, Bot, BotToken, IncomingWebhook, NewBot, Scopes};
use crate::metadata::BotStore;
use crate::model::User;

/// A bot token's session never expires by time: only revocation ends it.
const NEVER_MS: i64 = 253_402_300_799_000; // 9999-12-31T23:59:59Z

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

fn bot_from(row: &SqliteRow) -> Result<Bot, StoreError> {
    Ok(Bot {
        user: user_from(row)?,
        workspace_id: uuid_col(row, "b_workspace_id")?,
        description: get(row, "b_description")?,
        created_by: uuid_col(row, "b_created_by")?,
        created_at: super::rows::from_millis(get(row, "b_created_at")?),
    })
}

const TOKEN_SELECT: &str = "SELECT t.id, t.bot_id, t.name, t.token_hash, t.scopes, t.created_by,
        t.created_at, s.revoked_at
     FROM bot_tokens t JOIN sessions s ON s.id = t.id";

fn token_from(row: &SqliteRow) -> Result<(BotToken, String), StoreError> {
    let scopes: String = get(row, "scopes")?;
    let revoked: Option<i64> = get(row, "revoked_at")?;
    Ok((
        BotToken {
            id: uuid_col(row, "id")?,
            bot_id: uuid_col(row, "bot_id")?,
            name: get(row, "name")?,
            scopes: Scopes::from_text(&scopes),
            created_by: uuid_col(row, "created_by")?,
            created_at: super::rows::from_millis(get(row, "created_at")?),
            revoked_at: revoked.map(super::rows::from_millis),
        },
        get(row, "token_hash")?,
    ))
}

const HOOK_COLUMNS: &str =
    "id, workspace_id, channel_id, bot_id, name, secret_hash, created_by, created_at";

fn hook_from(row: &SqliteRow) -> Result<IncomingWebhook, StoreError> {
    Ok(IncomingWebhook {
        id: uuid_col(row, "id")?,
        workspace_id: uuid_col(row, "workspace_id")?,
        channel_id: uuid_col(row, "channel_id")?,
        bot_id: uuid_col(row, "bot_id")?,
        name: get(row, "name")?,
        secret_hash: get(row, "secret_hash")?,
        created_by: uuid_col(row, "created_by")?,
        created_at: super::rows::from_millis(get(row, "created_at")?),
    })
}

#[async_trait]
impl BotStore for SqliteMetadataStore {
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
             VALUES (?, ?, ?, '!bot', ?, ?)",
        )
        .bind(id.to_string())
        .bind(&user.email)
        .bind(&user.display_name)
        .bind(millis(at))
        .bind(user.avatar_url.as_deref())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO bots (user_id, workspace_id, description, created_by, created_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(new.workspace_id.to_string())
        .bind(&new.description)
        .bind(new.created_by.to_string())
        .bind(millis(at))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO workspace_members (workspace_id, user_id, role, joined_at)
             VALUES (?, ?, 'member', ?)",
        )
        .bind(new.workspace_id.to_string())
        .bind(id.to_string())
        .bind(millis(at))
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
        sqlx::query(&format!("{} WHERE b.user_id = ?", bot_select()))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .map(|row| bot_from(&row))
            .transpose()
    }

    async fn bots_of(&self, workspace: Uuid) -> Result<Vec<Bot>, StoreError> {
        sqlx::query(&format!(
            "{} WHERE b.workspace_id = ? ORDER BY b.created_at, b.user_id",
            bot_select()
        ))
        .bind(workspace.to_string())
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
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(token.id.to_string())
        .bind(token.bot_id.to_string())
        .bind(BOT_SESSION_REFRESH_HASH)
        .bind(NEVER_MS)
        .bind(millis(token.created_at))
        .bind(token.revoked_at.map(millis))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO bot_tokens (id, bot_id, name, token_hash, scopes, created_by, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(token.id.to_string())
        .bind(token.bot_id.to_string())
        .bind(&token.name)
        .bind(hash)
        .bind(token.scopes.to_text())
        .bind(token.created_by.to_string())
        .bind(millis(token.created_at))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn bot_token(&self, id: Uuid) -> Result<Option<(BotToken, String)>, StoreError> {
        sqlx::query(&format!("{TOKEN_SELECT} WHERE t.id = ?"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .map(|row| token_from(&row))
            .transpose()
    }

    async fn bot_tokens_of(&self, bot: Uuid) -> Result<Vec<BotToken>, StoreError> {
        sqlx::query(&format!(
            "{TOKEN_SELECT} WHERE t.bot_id = ? ORDER BY t.created_at DESC, t.id DESC"
        ))
        .bind(bot.to_string())
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
            "UPDATE sessions SET revoked_at = ?
             WHERE id = ? AND user_id = ? AND revoked_at IS NULL
               AND id IN (SELECT id FROM bot_tokens)",
        )
        .bind(millis(at))
        .bind(token.to_string())
        .bind(bot.to_string())
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(result.rows_affected() == 1)
    }

    async fn create_webhook(&self, hook: &IncomingWebhook) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO incoming_webhooks ({HOOK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(hook.id.to_string())
        .bind(hook.workspace_id.to_string())
        .bind(hook.channel_id.to_string())
        .bind(hook.bot_id.to_string())
        .bind(&hook.name)
        .bind(&hook.secret_hash)
        .bind(hook.created_by.to_string())
        .bind(millis(hook.created_at))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn webhook(&self, id: Uuid) -> Result<Option<IncomingWebhook>, StoreError> {
        sqlx::query(&format!(
            "SELECT {HOOK_COLUMNS} FROM incoming_webhooks WHERE id = ?"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?
        .map(|row| hook_from(&row))
        .transpose()
    }

    async fn webhooks_of(&self, channel: Uuid) -> Result<Vec<IncomingWebhook>, StoreError> {
        sqlx::query(&format!(
            "SELECT {HOOK_COLUMNS} FROM incoming_webhooks WHERE channel_id = ?
             ORDER BY created_at, id"
        ))
        .bind(channel.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(hook_from)
        .collect()
    }

    async fn delete_webhook(&self, id: Uuid) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM incoming_webhooks WHERE id = ?")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(result.rows_affected() == 1)
    }
}
