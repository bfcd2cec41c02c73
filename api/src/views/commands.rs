//! Slash commands as the API shows them. A URL command's signing secret appears once, in the
//! answer that registered it.

use chorus_core::commands::SlashCommand;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterCommandRequest {
    /// Without the slash: 1 to 32 of `a-z`, `0-9`, `-`, `_`; not a built-in's name.
    pub name: String,
    /// Up to 250 characters, shown in lists.
    #[serde(default)]
    pub description: String,
    /// The bot that answers: a bot of this workspace.
    pub bot_id: Uuid,
    /// Send invocations to this URL (https, or http to loopback), signed; absent: to the bot's
    /// WebSocket connections as `command` frames.
    pub url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CommandView {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub description: String,
    pub bot_id: Uuid,
    /// `socket` (the bot's WebSocket) or `url`.
    pub handler: String,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
}

impl From<SlashCommand> for CommandView {
    fn from(command: SlashCommand) -> Self {
        CommandView {
            id: command.id,
            workspace_id: command.workspace_id,
            name: command.name,
            description: command.description,
            bot_id: command.bot_id,
            handler: if command.url.is_some() {
                "url".into()
            } else {
                "socket".into()
            },
            created_by: command.created_by,
            created_at: command.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegisteredCommandView {
    #[serde(flatten)]
    pub command: CommandView,
    /// For a URL command: the HMAC-SHA256 key its requests are signed with. Shown only now.
    pub secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CommandListView {
    /// The built-in commands every workspace has, by name.
    pub builtins: Vec<String>,
    /// The workspace's registered commands, by name.
    pub commands: Vec<CommandView>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct InvokeCommandRequest {
    /// What the user typed: `/name` and its arguments.
    pub text: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CommandOutcomeView {
    /// The command's name, without the slash.
    pub command: String,
    /// `builtin`, `socket` or `url`.
    pub handled_by: String,
    /// A built-in's result, for the caller only (what it did); absent for a registered command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A registered command's invocation: its answer or error arrives later (an `ephemeral`
    /// frame, or a message in the channel).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invocation_id: Option<Uuid>,
    /// When a registered command's handler must have answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CommandResponseRequest {
    /// The `response_token` of the invocation.
    pub response_token: String,
    /// 1 to 4,000 characters.
    pub text: String,
    /// `ephemeral` (default: only the caller sees it) or `channel` (posted as the bot).
    pub visibility: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CommandResponseView {
    /// `ephemeral` or `channel`.
    pub visibility: String,
    /// The message's `seq`, for `channel`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}
