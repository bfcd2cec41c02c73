//! A user's badges per channel — read position, unread messages, unread mentions — as `ready`
//! carries them and `read_state` frames update them.
//!
//! Unread messages are counted in history (`count_messages_after`, capped at `UNREAD_CAP` as over
//! REST); mentions are the recorded notifications that count as mentions after the read
//! position. A gateway holds this narrow reader rather than the message store itself.

use std::collections::HashMap;
use std::sync::Arc;

use chorus_core::{MessageStore, MetadataStore, StoreError};
use chorus_protocol::{ChannelUnread, UNREAD_CAP};
use uuid::Uuid;

/// Reads badges.
pub struct Badges {
    metadata: Arc<dyn MetadataStore>,
    messages: Arc<dyn MessageStore>,
}

impl Badges {
    pub fn new(metadata: Arc<dyn MetadataStore>, messages: Arc<dyn MessageStore>) -> Self {
        Badges { metadata, messages }
    }

    /// The badges of `channels` for `user`, in the same order (a channel the user is not a
    /// member of reads as all read).
    pub async fn of(
        &self,
        user: Uuid,
        channels: &[Uuid],
    ) -> Result<Vec<ChannelUnread>, StoreError> {
        let mentions: HashMap<Uuid, u64> = self
            .metadata
            .notifications()
            .mention_counts(user, channels)
            .await?
            .into_iter()
            .collect();
        // Three queries in all, however many channels (up to the subscription limit).
        let read = self.metadata.read_positions(user, channels).await?;
        let positions: Vec<(Uuid, u64)> = channels
            .iter()
            .map(|channel| (*channel, read.get(channel).copied().unwrap_or(0)))
            .collect();
        let unread = self
            .messages
            .count_messages_after_each(&positions, UNREAD_CAP)
            .await?;
        let badges = positions
            .into_iter()
            .zip(unread)
            .map(
                |((channel_id, last_read_seq), unread_count)| ChannelUnread {
                    channel_id,
                    last_read_seq,
                    unread_count,
                    mention_count: mentions.get(&channel_id).copied().unwrap_or(0),
                },
            )
            .collect();
        Ok(badges)
    }
}
