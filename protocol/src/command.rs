//! Slash commands on the wire: the `command` frame a bot receives when a member invokes one of
//! its commands, and the `ephemeral` frame that only the invoking user receives — a handler's
//! private answer, or why there is none (docs/BOTS.md, "Slash commands").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A member typed `/command text` in a channel; the bot answers with
/// `POST /v1/commands/respond` and the `response_token` before `expires_at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandInvocation {
    pub invocation_id: Uuid,
    /// The command's name, without the slash.
    pub command: String,
    /// What followed the command's name, trimmed (may be empty).
    pub text: String,
    pub workspace_id: Uuid,
    pub channel_id: Uuid,
    /// Who invoked it.
    pub user_id: Uuid,
    /// Authorizes one answer to this invocation; secret: never log it.
    pub response_token: String,
    #[serde(with = "crate::timestamp")]
    pub expires_at: DateTime<Utc>,
}

/// Why a command produced no answer (in [`Ephemeral::error`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandError {
    /// `command_timeout` (no answer before the deadline), `command_failed` (the handler's URL
    /// failed or refused).
    pub code: String,
    pub message: String,
}

/// Shown to one user only, in a channel: a command's private answer, or its error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ephemeral {
    pub channel_id: Uuid,
    pub invocation_id: Uuid,
    /// The command's name, without the slash.
    pub command: String,
    /// The bot that answered.
    pub bot_id: Uuid,
    /// The answer (empty with an error).
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CommandError>,
}
