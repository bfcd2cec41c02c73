//! Turns one committed message into notifications: gathers the facts, asks the pure rules
//! (`chorus_core::notify::rules`), and hands the result to `delivery.rs` (focus mode's gate, the
//! once-only record, the send).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chorus_core::model::ChannelKind;
use chorus_core::notify::rules::{Audience, Member, broadcast_mentions, recipients};
use chorus_core::notify::{NotifyLevel, notification_id};
use chorus_core::{MessageStore, MetadataStore, StoreError};
use chorus_presence::{PresenceStore, UserFrame};
use chorus_protocol::{MessageEvent, Notification, PresenceStatus, ServerFrame, preview};

use crate::delivery::{Pending, deliver};
use parking_lot::Mutex;
use uuid::Uuid;

/// What the notifier reads and writes.
pub struct Notifier {
    metadata: Arc<dyn MetadataStore>,
    messages: Arc<dyn MessageStore>,
    presence: Arc<dyn PresenceStore>,
    /// Channel kind and workspace, which do not change in a way that matters here (a channel
    /// never becomes or stops being a DM); bounded by the channels that see messages.
    channels: Mutex<HashMap<Uuid, (ChannelKind, Uuid)>>,
}

/// Channels whose kind is cached at most; beyond, the cache starts over.
const CHANNEL_CACHE: usize = 100_000;

impl Notifier {
    pub fn new(
        metadata: Arc<dyn MetadataStore>,
        messages: Arc<dyn MessageStore>,
        presence: Arc<dyn PresenceStore>,
    ) -> Self {
        Notifier {
            metadata,
            messages,
            presence,
            channels: Mutex::new(HashMap::new()),
        }
    }

    /// Notifies whoever `event` concerns; returns how many notifications were new. Errors are
    /// logged: a message's notifications are lost, never the message.
    pub async fn notify(&self, event: &MessageEvent) -> usize {
        match self.try_notify(event).await {
            Ok(sent) => sent,
            Err(err) => {
                metrics::counter!("chorus_notifications_failed_total").increment(1);
                tracing::warn!(error = %err, channel = %event.channel_id, seq = event.seq,
                    "notifications of a message failed");
                0
            }
        }
    }

    async fn try_notify(&self, event: &MessageEvent) -> Result<usize, StoreError> {
        let Some((kind, workspace)) = self.channel(event.channel_id).await? else {
            return Ok(0);
        };
        let levels: HashMap<Uuid, NotifyLevel> = self
            .metadata
            .notifications()
            .notify_levels(event.channel_id)
            .await?
            .into_iter()
            .collect();
        let members: Vec<Member> = self
            .metadata
            .channel_members(event.channel_id)
            .await?
            .into_iter()
            .map(|m| Member {
                user: m.user_id,
                muted: m.muted,
                level: levels
                    .get(&m.user_id)
                    .copied()
                    .unwrap_or(NotifyLevel::default_for(kind)),
            })
            .collect();
        let thread_author = match event.parent_seq {
            Some(parent) => self
                .messages
                .event(event.channel_id, parent)
                .await?
                .map(|parent| parent.author_id),
            None => None,
        };
        let online = if broadcast_mentions(&event.text).1 {
            self.online(&members).await
        } else {
            HashSet::new()
        };
        let decided = recipients(
            event,
            &Audience {
                channel_kind: kind,
                members: &members,
                thread_author,
                online: &online,
            },
        );
        if decided.is_empty() {
            return Ok(0);
        }
        let pending: Vec<Pending<'_>> = decided
            .into_iter()
            .map(|(user, why)| Pending {
                user,
                notification: Notification {
                    id: notification_id(user, event.channel_id, event.seq),
                    kind: why,
                    workspace_id: workspace,
                    channel_id: Some(event.channel_id),
                    seq: Some(event.seq),
                    parent_seq: event.parent_seq,
                    actor_id: event.author_id,
                    preview: preview(&event.text),
                    created_at: event.created_at,
                },
                text: &event.text,
            })
            .collect();
        let delivered = deliver(self.metadata.as_ref(), self.presence.as_ref(), pending).await?;
        let sent = delivered.sent;
        metrics::counter!("chorus_notifications_sent_total").increment(sent as u64);
        Ok(sent)
    }

    async fn channel(&self, id: Uuid) -> Result<Option<(ChannelKind, Uuid)>, StoreError> {
        if let Some(known) = self.channels.lock().get(&id) {
            return Ok(Some(*known));
        }
        let Some(channel) = self.metadata.channel(id).await? else {
            return Ok(None);
        };
        let facts = (channel.kind, channel.workspace_id);
        let mut cache = self.channels.lock();
        if cache.len() >= CHANNEL_CACHE {
            cache.clear();
        }
        cache.insert(id, facts);
        Ok(Some(facts))
    }

    /// The members online and not idle. Presence is advisory: when it cannot be read, `@here`
    /// reaches nobody (and says so in the log).
    async fn online(&self, members: &[Member]) -> HashSet<Uuid> {
        let users: Vec<Uuid> = members.iter().map(|m| m.user).collect();
        match self.presence.presence_of(&users, chrono::Utc::now()).await {
            Ok(infos) => infos
                .into_iter()
                .filter(|info| info.status == PresenceStatus::Online)
                .map(|info| info.user_id)
                .collect(),
            Err(err) => {
                tracing::warn!(error = %err, "presence unreadable; @here notifies nobody");
                HashSet::new()
            }
        }
    }
}

/// Sends `frame` to every connection of `user`.
pub(crate) async fn send(presence: &dyn PresenceStore, user: Uuid, frame: &ServerFrame) {
    presence
        .send_to_user(UserFrame {
            user_id: user,
            frame: frame.to_json().into(),
        })
        .await;
}
