//! Slash commands: a workspace's registered `/command`s and their invocations, as records and
//! the [`CommandStore`] trait both metadata backends implement (`sqlite/commands.rs`,
//! `postgres/commands.rs`, held to `conformance/commands.rs`).
//!
//! Data enters from the API: admins register commands; a member's invocation is stored with the
//! hash of its response token and a deadline. The handler's answer and the deadline's expiry
//! both *settle* the invocation with one conditional update (`pending` → `answered` / `expired`
//! / `failed`), so whichever comes first wins, in any process, and the other is refused: a
//! caller never gets both an answer and a timeout error.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::StoreError;

/// A registered command of a workspace, handled by a bot over its WebSocket or by a URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlashCommand {
    pub id: Uuid,
    pub workspace_id: Uuid,
    /// Without the slash: lowercase letters, digits, `-` and `_`.
    pub name: String,
    pub description: String,
    /// The bot that answers (its answers shown in a channel are posted as this bot).
    pub bot_id: Uuid,
    /// When set, invocations are POSTed here (signed); otherwise sent to the bot's sockets.
    pub url: Option<String>,
    /// The HMAC key of the URL's requests (kept as is: signing needs it); `None` without a URL.
    pub secret: Option<String>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
}

/// Where an invocation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvocationState {
    /// Sent to its handler; waiting for the answer.
    Pending,
    /// The handler answered in time.
    Answered,
    /// The deadline passed first; the caller was told.
    Expired,
    /// The handler could not be reached or refused; the caller was told.
    Failed,
}

impl InvocationState {
    pub fn as_str(self) -> &'static str {
        match self {
            InvocationState::Pending => "pending",
            InvocationState::Answered => "answered",
            InvocationState::Expired => "expired",
            InvocationState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            InvocationState::Pending,
            InvocationState::Answered,
            InvocationState::Expired,
            InvocationState::Failed,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }
}

/// One use of a registered command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    pub id: Uuid,
    pub command_id: Uuid,
    /// The command's name, as invoked.
    pub command: String,
    pub workspace_id: Uuid,
    pub channel_id: Uuid,
    /// Who typed it.
    pub user_id: Uuid,
    /// Who answers.
    pub bot_id: Uuid,
    /// SHA-256 (hex) of the response token; the token itself goes only to the handler.
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
    pub state: InvocationState,
    pub created_at: DateTime<Utc>,
}

/// Registered commands and their invocations.
#[async_trait]
pub trait CommandStore: Send + Sync {
    /// Registers a command; `Conflict` when the workspace has one of that name.
    async fn create_command(&self, command: &SlashCommand) -> Result<(), StoreError>;
    async fn command(&self, id: Uuid) -> Result<Option<SlashCommand>, StoreError>;
    async fn command_named(
        &self,
        workspace: Uuid,
        name: &str,
    ) -> Result<Option<SlashCommand>, StoreError>;
    /// A workspace's commands by name.
    async fn commands_of(&self, workspace: Uuid) -> Result<Vec<SlashCommand>, StoreError>;
    /// Deletes a command (its invocations with it); false when there was none.
    async fn delete_command(&self, id: Uuid) -> Result<bool, StoreError>;

    /// Stores a new invocation (state `pending`).
    async fn create_invocation(&self, invocation: &Invocation) -> Result<(), StoreError>;
    /// Settles the pending, unexpired (at `now`) invocation whose token hashes to `token_hash`
    /// as `answered`, and returns it; `None` when there is none, or it is settled or expired.
    async fn answer_invocation(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Invocation>, StoreError>;
    /// Settles invocation `id` as `to` (`expired` or `failed`) if it is still pending; true if
    /// this call settled it.
    async fn settle_invocation(&self, id: Uuid, to: InvocationState) -> Result<bool, StoreError>;
}
