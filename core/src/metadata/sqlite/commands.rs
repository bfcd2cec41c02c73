//! Slash commands and their invocations in SQLite
//! (`migrations/sqlite/0019_slash_commands.sql`, [`CommandStore`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use super::SqliteMetadataStore;
use super::rows::{db_err, from_millis, get, millis, returning_row, uuid_col};
use crate::StoreError;
use crate::commands::{CommandStore, Invocation, InvocationState, SlashCommand};

const COMMAND_COLUMNS: &str =
    "id, workspace_id, name, description, bot_id, url, secret, created_by, created_at";
const INVOCATION_COLUMNS: &str = "id, command_id, command, workspace_id, channel_id, user_id, \
     bot_id, token_hash, expires_at, state, created_at";

fn command_from(row: &SqliteRow) -> Result<SlashCommand, StoreError> {
    Ok(SlashCommand {
        id: uuid_col(row, "id")?,
        workspace_id: uuid_col(row, "workspace_id")?,
        name: get(row, "name")?,
        description: get(row, "description")?,
        bot_id: uuid_col(row, "bot_id")?,
        url: get(row, "url")?,
        secret: get(row, "secret")?,
        created_by: uuid_col(row, "created_by")?,
        created_at: from_millis(get(row, "created_at")?),
    })
}

fn invocation_from(row: &SqliteRow) -> Result<Invocation, StoreError> {
    let state: String = get(row, "state")?;
    Ok(Invocation {
        id: uuid_col(row, "id")?,
        command_id: uuid_col(row, "command_id")?,
        command: get(row, "command")?,
        workspace_id: uuid_col(row, "workspace_id")?,
        channel_id: uuid_col(row, "channel_id")?,
        user_id: uuid_col(row, "user_id")?,
        bot_id: uuid_col(row, "bot_id")?,
        token_hash: get(row, "token_hash")?,
        expires_at: from_millis(get(row, "expires_at")?),
        state: InvocationState::parse(&state)
            .ok_or_else(|| StoreError::Backend(format!("unknown invocation state {state}")))?,
        created_at: from_millis(get(row, "created_at")?),
    })
}

#[async_trait]
impl CommandStore for SqliteMetadataStore {
    async fn create_command(&self, command: &SlashCommand) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO slash_commands ({COMMAND_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(command.id.to_string())
        .bind(command.workspace_id.to_string())
        .bind(&command.name)
        .bind(&command.description)
        .bind(command.bot_id.to_string())
        .bind(&command.url)
        .bind(&command.secret)
        .bind(command.created_by.to_string())
        .bind(millis(command.created_at))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn command(&self, id: Uuid) -> Result<Option<SlashCommand>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COMMAND_COLUMNS} FROM slash_commands WHERE id = ?"
        ))
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.first().map(command_from).transpose()
    }

    async fn command_named(
        &self,
        workspace: Uuid,
        name: &str,
    ) -> Result<Option<SlashCommand>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COMMAND_COLUMNS} FROM slash_commands WHERE workspace_id = ? AND name = ?"
        ))
        .bind(workspace.to_string())
        .bind(name)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.first().map(command_from).transpose()
    }

    async fn commands_of(&self, workspace: Uuid) -> Result<Vec<SlashCommand>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COMMAND_COLUMNS} FROM slash_commands WHERE workspace_id = ? ORDER BY name"
        ))
        .bind(workspace.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(command_from).collect()
    }

    async fn delete_command(&self, id: Uuid) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        // SQLite enforces the cascade only with foreign keys on; delete the children explicitly.
        sqlx::query("DELETE FROM command_invocations WHERE command_id = ?")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let done = sqlx::query("DELETE FROM slash_commands WHERE id = ?")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn create_invocation(&self, invocation: &Invocation) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO command_invocations ({INVOCATION_COLUMNS})
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(invocation.id.to_string())
        .bind(invocation.command_id.to_string())
        .bind(&invocation.command)
        .bind(invocation.workspace_id.to_string())
        .bind(invocation.channel_id.to_string())
        .bind(invocation.user_id.to_string())
        .bind(invocation.bot_id.to_string())
        .bind(&invocation.token_hash)
        .bind(millis(invocation.expires_at))
        .bind(invocation.state.as_str())
        .bind(millis(invocation.created_at))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn answer_invocation(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Invocation>, StoreError> {
        let query = format!(
            "UPDATE command_invocations SET state = 'answered'
             WHERE token_hash = ? AND state = 'pending' AND expires_at > ?
             RETURNING {INVOCATION_COLUMNS}"
        );
        let row = returning_row(
            sqlx::query(&query).bind(token_hash).bind(millis(now)),
            &self.pool,
        )
        .await?;
        row.as_ref().map(invocation_from).transpose()
    }

    async fn settle_invocation(&self, id: Uuid, to: InvocationState) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE command_invocations SET state = ? WHERE id = ? AND state = 'pending'",
        )
        .bind(to.as_str())
        .bind(id.to_string())
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }
}
