//! Turns one committed message into notifications: gathers the facts, asks the pure rules
//! (`chorus_core::notify::rules`), and hands the result to `delivery.rs` (focus mode's gate, the
//! once-only record, the send). A DM to a user in focus may then get their automatic reply
//! (`chorus_core::focus::auto_reply`), submitted to the channel service like any message.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chorus_cluster::{ChannelRouter, PublishRequest};
use chorus_core::focus::auto_reply::{AutoReply, DmInFocus, auto_reply};

use chorus_core::model::ChannelKind;
use chorus_core::notify::rules::{
    Audience, Member, broadcast_mentions, may_notify_anyone, recipients,
};
use chorus_core::notify::{NotifyLevel, notification_id};
use chorus_core::{MessageStore, MetadataStore, StoreError};
use chorus_presence::{PresenceStore, UserFrame};
use chorus_protocol::{
    EventKind, MessageEvent, Notification, PresenceStatus, ServerFrame, preview,
};

use crate::auto_reply_submit::submit_with_retries;
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
    /// Where automatic replies are submitted: the channel service, which is started after the
    /// bus that holds this notifier, so it is set later ([`Notifier::auto_replies`]). Unset: no
    /// automatic replies are sent.
    router: AutoReplyRouter,
}

/// The channel service automatic replies go to, set once it has started. An embedded node's
/// channel service holds the bus that holds this notifier, so the slot closes a reference cycle:
/// the node empties it when it shuts down ([`AutoReplyRouter::clear`]), or the stores — and an
/// embedded node's database files — would stay open after the node stopped.
#[derive(Clone, Default)]
pub struct AutoReplyRouter(Arc<Mutex<Option<Arc<dyn ChannelRouter>>>>);

impl AutoReplyRouter {
    /// Where automatic replies go from now on.
    pub fn set(&self, router: Arc<dyn ChannelRouter>) {
        *self.0.lock() = Some(router);
    }

    /// No more automatic replies; drops the router.
    pub fn clear(&self) {
        self.0.lock().take();
    }

    fn get(&self) -> Option<Arc<dyn ChannelRouter>> {
        self.0.lock().clone()
    }
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
            router: AutoReplyRouter::default(),
        }
    }

    /// The slot to put the channel service in once it runs, so automatic replies are sent.
    pub fn auto_replies(&self) -> AutoReplyRouter {
        self.router.clone()
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
        if event.kind != EventKind::Message {
            // Edits, deletions and reactions never notify (`rules::recipients`): no reads at all.
            return Ok(0);
        }
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
        // Most messages concern nobody (no mention, no thread, nobody at level `all`): then the
        // member list — the larger read — is not needed.
        if !may_notify_anyone(event, kind, levels.values().copied()) {
            return Ok(0);
        }
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
        for (focus, sender) in &delivered.dms_in_focus {
            let dm = DmInFocus {
                recipient: focus.session.user_id,
                session: focus.session.id,
                auto_reply: focus.auto_reply.as_deref(),
                sender: *sender,
                channel: event.channel_id,
                automatic: event.automatic,
            };
            if let Some(reply) = auto_reply(&dm)
                && let Err(err) = self.send_auto_reply(reply).await
            {
                // The notifications are out already; only the reply is lost.
                tracing::warn!(error = %err, "a focus auto-reply could not be recorded");
            }
        }
        let sent = delivered.sent;
        metrics::counter!("chorus_notifications_sent_total").increment(sent as u64);
        Ok(sent)
    }

    /// Sends `reply` unless its sender already got one in this session. Recorded before it is
    /// submitted, and submitted again while the channel service is briefly unavailable
    /// (`auto_reply_submit.rs`); one that still fails is lost (logged) rather than sent twice.
    async fn send_auto_reply(&self, reply: AutoReply) -> Result<(), StoreError> {
        let Some(router) = self.router.get() else {
            return Ok(());
        };
        if !self
            .metadata
            .focus()
            .record_auto_reply(reply.session, reply.to)
            .await?
        {
            return Ok(());
        }
        let request = PublishRequest {
            automatic: true,
            ..PublishRequest::message(reply.channel, reply.from, reply.nonce, reply.text)
        };
        // The notifier does not wait for the commit: its queue serves every message's
        // notifications, and the reply is itself a message that comes back through it.
        tokio::spawn(async move {
            if let Err(err) = submit_with_retries(router, request).await {
                metrics::counter!("chorus_focus_auto_replies_failed_total").increment(1);
                tracing::warn!(error = %err, "a focus auto-reply was not sent");
            }
        });
        metrics::counter!("chorus_focus_auto_replies_total").increment(1);
        Ok(())
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
