//! Slash commands and their invocations in PostgreSQL
//! (`migrations/postgres/0019_slash_commands.sql`, [`CommandStore`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::PostgresMetadataStore;
use super::rows::{db_err, get};
use crate::StoreError;
use crate::commands::{CommandStore, Invocation, InvocationState, SlashCommand};

const COMMAND_COLUMNS: &str =
    "id, workspace_id, name, description, bot_id, url, secret, created_by, created_at";
const INVOCATION_COLUMNS: &str = "id, command_id, command, workspace_id, channel_id, user_id, \
     bot_id, token_hash, expires_at, state, created_at";

fn command_from(row: &PgRow) -> Result<SlashCommand, StoreError> {
    Ok(SlashCommand {
        id: get(row, "id")?,
        workspace_id: get(row, "workspace_id")?,
        name: get(row, "name")?,
        description: get(row, "description")?,
        bot_id: get(row, "bot_id")?,
        url: get(row, "url")?,
        secret: get(row, "secret")?,
        created_by: get(row, "created_by")?,
        created_at: get(row, "created_at")?,
    })
}

fn invocation_from(row: &PgRow) -> Result<Invocation, StoreError> {
    let state: String = get(row, "state")?;
    Ok(Invocation {
        id: get(row, "id")?,
        command_id: get(row, "command_id")?,
        command: get(row, "command")?,
        workspace_id: get(row, "workspace_id")?,
        channel_id: get(row, "channel_id")?,
        user_id: get(row, "user_id")?,
        bot_id: get(row, "bot_id")?,
        token_hash: get(row, "token_hash")?,
        expires_at: get(row, "expires_at")?,
        state: InvocationState::parse(&state)
            .ok_or_else(|| StoreError::Backend(format!("unknown invocation state {state}")))?,
        created_at: get(row, "created_at")?,
    })
}

#[async_trait]
impl CommandStore for PostgresMetadataStore {
    async fn create_command(&self, command: &SlashCommand) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO slash_commands ({COMMAND_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(command.id)
        .bind(command.workspace_id)
        .bind(&command.name)
        .bind(&command.description)
        .bind(command.bot_id)
        .bind(&command.url)
        .bind(&command.secret)
        .bind(command.created_by)
        .bind(command.created_at)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn command(&self, id: Uuid) -> Result<Option<SlashCommand>, StoreError> {
        sqlx::query(&format!(
            "SELECT {COMMAND_COLUMNS} FROM slash_commands WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?
        .as_ref()
        .map(command_from)
        .transpose()
    }

    async fn command_named(
        &self,
        workspace: Uuid,
        name: &str,
    ) -> Result<Option<SlashCommand>, StoreError> {
        sqlx::query(&format!(
            "SELECT {COMMAND_COLUMNS} FROM slash_commands WHERE workspace_id = $1 AND name = $2"
        ))
        .bind(workspace)
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?
        .as_ref()
        .map(command_from)
        .transpose()
    }

    async fn commands_of(&self, workspace: Uuid) -> Result<Vec<SlashCommand>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COMMAND_COLUMNS} FROM slash_commands WHERE workspace_id = $1 ORDER BY name"
        ))
        .bind(workspace)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(command_from).collect()
    }

    async fn delete_command(&self, id: Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM slash_commands WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn create_invocation(&self, invocation: &Invocation) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO command_invocations ({INVOCATION_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(invocation.id)
        .bind(invocation.command_id)
        .bind(&invocation.command)
        .bind(invocation.workspace_id)
        .bind(invocation.channel_id)
        .bind(invocation.user_id)
        .bind(invocation.bot_id)
        .bind(&invocation.token_hash)
        .bind(invocation.expires_at)
        .bind(invocation.state.as_str())
        .bind(invocation.created_at)
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
        sqlx::query(&format!(
            "UPDATE command_invocations SET state = 'answered'
             WHERE token_hash = $1 AND state = 'pending' AND expires_at > $2
             RETURNING {INVOCATION_COLUMNS}"
        ))
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?
        .as_ref()
        .map(invocation_from)
        .transpose()
    }

    async fn settle_invocation(&self, id: Uuid, to: InvocationState) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE command_invocations SET state = $1 WHERE id = $2 AND state = 'pending'",
        )
        .bind(to.as_str())
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }
}
