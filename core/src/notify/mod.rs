//! Notifications: who is told about a committed message (`rules.rs`, pure), and where the
//! notifications and each member's per-channel preference are kept ([`NotificationStore`],
//! implemented by both metadata backends in their `notifications.rs`).
//!
//! The store is the once-only gate: a notification's id is derived from (user, channel, seq), and
//! [`NotificationStore::record_notifications`] inserts each id at most once, telling the caller
//! which were new. Whoever records first delivers; a repeat (a new Raft leader re-publishing
//! what its predecessor may not have finished) is recorded as already there and not delivered.

pub mod rules;

use async_trait::async_trait;
use chorus_protocol::Notification;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::StoreError;
use crate::model::ChannelKind;

/// What a member wants to be notified of in one channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyLevel {
    /// Every message (and every mention).
    All,
    /// Mentions of the user, `@channel`, `@here`, and replies in their threads.
    Mentions,
    /// Nothing (the channel's badge still counts unread messages).
    Nothing,
}

impl NotifyLevel {
    /// The level of a member who never chose one: every message of a direct-message channel,
    /// mentions elsewhere.
    pub fn default_for(kind: ChannelKind) -> Self {
        match kind {
            ChannelKind::Dm => NotifyLevel::All,
            ChannelKind::Public | ChannelKind::Private => NotifyLevel::Mentions,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NotifyLevel::All => "all",
            NotifyLevel::Mentions => "mentions",
            NotifyLevel::Nothing => "nothing",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            NotifyLevel::All,
            NotifyLevel::Mentions,
            NotifyLevel::Nothing,
        ]
        .into_iter()
        .find(|level| level.as_str() == text)
    }
}

/// The id of the notification of `user` about message `seq` of `channel`: the same wherever and
/// however often it is computed, so recording it twice is recognised.
pub fn notification_id(user: Uuid, channel: Uuid, seq: u64) -> Uuid {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(user.as_bytes());
    hasher.update(channel.as_bytes());
    hasher.update(seq.to_be_bytes());
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// Notifications and notification preferences, in the metadata database.
#[async_trait]
pub trait NotificationStore: Send + Sync + 'static {
    /// Sets (`None`: back to the default) a member's level for a channel; false when `user` is
    /// not a member.
    async fn set_notify_level(
        &self,
        channel: Uuid,
        user: Uuid,
        level: Option<NotifyLevel>,
    ) -> Result<bool, StoreError>;
    /// The members of `channel` who chose a level, with it.
    async fn notify_levels(&self, channel: Uuid) -> Result<Vec<(Uuid, NotifyLevel)>, StoreError>;
    /// Records each (user, notification) unless its id is recorded already; returns, in order,
    /// whether each one is new.
    async fn record_notifications(
        &self,
        notifications: &[(Uuid, Notification)],
    ) -> Result<Vec<bool>, StoreError>;
    /// The user's notifications, newest first; `before`: only older than this one (a cursor).
    async fn notifications_of(
        &self,
        user: Uuid,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError>;
    /// For each channel of `channels` the user is a member of, the notifications that count as
    /// mentions after the member's read position (channels with none are left out).
    async fn mention_counts(
        &self,
        user: Uuid,
        channels: &[Uuid],
    ) -> Result<Vec<(Uuid, u64)>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        let (u, c) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert_eq!(notification_id(u, c, 5), notification_id(u, c, 5));
        assert_ne!(notification_id(u, c, 5), notification_id(u, c, 6));
        assert_ne!(notification_id(u, c, 5), notification_id(c, u, 5));
    }

    #[test]
    fn levels_parse_and_default_by_channel_kind() {
        for level in [
            NotifyLevel::All,
            NotifyLevel::Mentions,
            NotifyLevel::Nothing,
        ] {
            assert_eq!(NotifyLevel::parse(level.as_str()), Some(level));
        }
        assert_eq!(NotifyLevel::parse("some"), None);
        assert_eq!(NotifyLevel::default_for(ChannelKind::Dm), NotifyLevel::All);
        assert_eq!(
            NotifyLevel::default_for(ChannelKind::Public),
            NotifyLevel::Mentions
        );
    }
}
