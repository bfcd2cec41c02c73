//! Bots, bot tokens and incoming webhooks as the API shows them. A token or a webhook's secret
//! URL appears once, in the answer that created it.

use chorus_core::bots::{Bot, BotToken, IncomingWebhook};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateBotRequest {
    /// 1 to 80 characters; the bot's display name.
    pub name: String,
    /// Up to 500 characters.
    #[serde(default)]
    pub description: String,
    /// An `https://` URL up to 500 characters.
    pub avatar_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BotView {
    /// The bot's user id: add it to channels like any member.
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub description: String,
    pub avatar_url: Option<String>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub disabled: bool,
}

impl From<Bot> for BotView {
    fn from(bot: Bot) -> Self {
        BotView {
            id: bot.user.id,
            workspace_id: bot.workspace_id,
            name: bot.user.display_name,
            description: bot.description,
            avatar_url: bot.user.avatar_url,
            created_by: bot.created_by,
            created_at: bot.created_at,
            disabled: bot.user.disabled_at.is_some(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateBotTokenRequest {
    /// 1 to 80 characters: what the token is for.
    pub name: String,
    /// At least one of `channels:read`, `messages:write`, `reactions:write`, `channels:manage`,
    /// `users:read` (docs/PERMISSIONS.md).
    pub scopes: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BotTokenView {
    pub id: Uuid,
    pub bot_id: Uuid,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    /// Set once revoked: the token no longer works and its sockets were closed (4100).
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<BotToken> for BotTokenView {
    fn from(token: BotToken) -> Self {
        BotTokenView {
            id: token.id,
            bot_id: token.bot_id,
            name: token.name,
            scopes: token.scopes.names().into_iter().map(String::from).collect(),
            created_by: token.created_by,
            created_at: token.created_at,
            revoked_at: token.revoked_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedBotTokenView {
    /// The token, shown only now (`chb_…`). Use it as `Authorization: Bearer <token>` and in the
    /// WebSocket `identify`.
    pub token: String,
    #[serde(flatten)]
    pub details: BotTokenView,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateWebhookRequest {
    /// 1 to 80 characters.
    pub name: String,
    /// The bot of this workspace the webhook posts as; it is added to the channel.
    pub bot_id: Uuid,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub channel_id: Uuid,
    pub bot_id: Uuid,
    pub name: String,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
}

impl From<IncomingWebhook> for WebhookView {
    fn from(hook: IncomingWebhook) -> Self {
        WebhookView {
            id: hook.id,
            workspace_id: hook.workspace_id,
            channel_id: hook.channel_id,
            bot_id: hook.bot_id,
            name: hook.name,
            created_by: hook.created_by,
            created_at: hook.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhookView {
    /// The secret URL's path, shown only now: `POST` JSON `{"text": "…"}` to it (on the API's
    /// address). Anyone who has it can post, so treat it as a password.
    pub url: String,
    #[serde(flatten)]
    pub details: WebhookView,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct WebhookPostRequest {
    /// 1 to 4,000 characters.
    pub text: String,
}
