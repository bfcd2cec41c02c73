//! Storage of bots, bot tokens and incoming webhooks: a trait of its own beside
//! [`MetadataStore`](super::MetadataStore) (which requires it), implemented by both metadata
//! backends in their `bots.rs` and held to `conformance/bots.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::StoreError;
use crate::bots::{Bot, BotToken, IncomingWebhook, NewBot};

#[async_trait]
pub trait BotStore: Send + Sync + 'static {
    /// Creates the bot's user (which cannot log in), its bot record, and its membership of the
    /// workspace with role `member`, in one transaction.
    async fn create_bot(&self, bot: &NewBot) -> Result<Bot, StoreError>;
    /// The bot whose user id is `id`; `None` for a person or no one.
    async fn bot(&self, id: Uuid) -> Result<Option<Bot>, StoreError>;
    /// The bots of a workspace, oldest first.
    async fn bots_of(&self, workspace: Uuid) -> Result<Vec<Bot>, StoreError>;

    /// Stores a token (hash only) and its login session (same id, never refreshable), in one
    /// transaction.
    async fn create_bot_token(&self, token: &BotToken, hash: &str) -> Result<(), StoreError>;
    /// A token with its stored hash; revoked tokens too (with `revoked_at`).
    async fn bot_token(&self, id: Uuid) -> Result<Option<(BotToken, String)>, StoreError>;
    /// Every token of a bot, revoked ones included, newest first.
    async fn bot_tokens_of(&self, bot: Uuid) -> Result<Vec<BotToken>, StoreError>;
    /// Revokes a token of `bot` (its session); false when it is not one of the bot's tokens or
    /// was already revoked.
    async fn revoke_bot_token(
        &self,
        bot: Uuid,
        token: Uuid,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    async fn create_webhook(&self, hook: &IncomingWebhook) -> Result<(), StoreError>;
    async fn webhook(&self, id: Uuid) -> Result<Option<IncomingWebhook>, StoreError>;
    /// The webhooks of a channel, oldest first.
    async fn webhooks_of(&self, channel: Uuid) -> Result<Vec<IncomingWebhook>, StoreError>;
    /// Deletes a webhook; false when there was none.
    async fn delete_webhook(&self, id: Uuid) -> Result<bool, StoreError>;
}
