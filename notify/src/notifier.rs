//! Turns committed messages, a batch at a time, into notifications: gathers the facts, asks the
//! pure rules (`chorus_core::notify::rules`), and hands the result to `delivery.rs` (focus mode's
//! gate, the once-only record, the send). A DM to a user in focus may then get their automatic reply
//! (`chorus_core::focus::auto_reply`), submitted to the channel service like any message.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chorus_cluster::{ChannelRouter, PublishRequest};
use chorus_core::focus::auto_reply::{AutoReply, DmInFocus, auto_reply};

use chorus_core::model::ChannelKind;
use chorus_core::notify::rules::{
    Audience, Member, broadcast_mentions, may_notify_anyone, recipients,
};
use chorus_core::notify::{NotifyLevel, notification_id};
use chorus_core::{MessageStore, MetadataStore, StoreError};
use chorus_presence::{PresenceStore, UserFrame};
use chorus_protocol::{MessageEvent, Notification, PresenceStatus, ServerFrame, preview};

use crate::auto_reply_submit::submit_with_retries;
use crate::delivery::{Pending, deliver};
use parking_lot::Mutex;
use tokio::sync::watch;
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
    /// bus that holds this notifier, so it is set later ([`Notifier::auto_replies`]). A reply made
    /// before then waits for it (up to `ROUTER_WAIT`).
    router: AutoReplyRouter,
}

/// The channel service automatic replies go to, set once it has started. An embedded node's
/// channel service holds the bus that holds this notifier, so the slot closes a reference cycle:
/// the node empties it when it shuts down ([`AutoReplyRouter::clear`]), or the stores — and an
/// embedded node's database files — would stay open after the node stopped.
#[derive(Clone)]
pub struct AutoReplyRouter(Arc<watch::Sender<Option<Arc<dyn ChannelRouter>>>>);

impl Default for AutoReplyRouter {
    fn default() -> Self {
        AutoReplyRouter(Arc::new(watch::Sender::new(None)))
    }
}

impl AutoReplyRouter {
    /// Where automatic replies go from now on; wakes the replies waiting for it.
    pub fn set(&self, router: Arc<dyn ChannelRouter>) {
        self.0.send_replace(Some(router));
    }

    /// No more automatic replies; drops the router.
    pub fn clear(&self) {
        self.0.send_replace(None);
    }

    /// The router, waiting up to `max` for it to be set: a cluster node connects its router in
    /// the background once the cluster map is readable, and a DM may arrive before that.
    async fn wait(&self, max: Duration) -> Option<Arc<dyn ChannelRouter>> {
        let mut slot = self.0.subscribe();
        let set = tokio::time::timeout(max, slot.wait_for(Option::is_some)).await;
        // The sender lives in `self`, so `wait_for` ends only when the router is set.
        set.ok()?.ok()?.clone()
    }
}

/// How long an automatic reply waits for the channel service's router to be connected.
const ROUTER_WAIT: Duration = Duration::from_secs(30);

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

    /// Notifies whoever each of `events` (committed messages, in commit order) concerns; returns
    /// how many notifications were new. Each channel's facts — kind, levels, members — are read
    /// once per batch, not once per message: under load the queue hands over hundreds of messages
    /// at a time, and a metadata read per message fell behind (~3,000 messages/s per node here)
    /// until the queue overflowed and notifications were dropped. Errors are logged: a message's
    /// notifications are lost, never the message.
    pub async fn notify_batch(&self, events: &[Arc<MessageEvent>]) -> usize {
        let mut sent = 0;
        for (channel, group) in by_channel(events) {
            match self.notify_channel(channel, &group).await {
                Ok(count) => sent += count,
                Err(err) => {
                    metrics::counter!("chorus_notifications_failed_total")
                        .increment(group.len() as u64);
                    tracing::warn!(error = %err, channel = %channel, messages = group.len(),
                        "notifications of messages failed");
                }
            }
        }
        sent
    }

    /// The messages of one channel, in commit order.
    async fn notify_channel(
        &self,
        channel: Uuid,
        events: &[&MessageEvent],
    ) -> Result<usize, StoreError> {
        // Only new messages get here (`NotifyingBus` queues nothing else).
        let Some((kind, workspace)) = self.channel(channel).await? else {
            return Ok(0);
        };
        let levels: HashMap<Uuid, NotifyLevel> = self
            .metadata
            .notifications()
            .notify_levels(channel)
            .await?
            .into_iter()
            .collect();
        let mut members: Option<Vec<Member>> = None;
        let mut sent = 0;
        for &event in events {
            // Most messages concern nobody (no mention, no thread, nobody at level `all`): then
            // the member list — the larger read — is not needed at all.
            if !may_notify_anyone(event, kind, levels.values().copied()) {
                continue;
            }
            if members.is_none() {
                members = Some(self.members(channel, kind, &levels).await?);
            }
            let members = members.as_deref().unwrap_or_default();
            match self.notify_one(event, kind, workspace, members).await {
                Ok(count) => sent += count,
                Err(err) => {
                    metrics::counter!("chorus_notifications_failed_total").increment(1);
                    tracing::warn!(error = %err, channel = %event.channel_id, seq = event.seq,
                        "notifications of a message failed");
                }
            }
        }
        Ok(sent)
    }

    /// The channel's members with their mute and level (the kind's default where none is set).
    async fn members(
        &self,
        channel: Uuid,
        kind: ChannelKind,
        levels: &HashMap<Uuid, NotifyLevel>,
    ) -> Result<Vec<Member>, StoreError> {
        Ok(self
            .metadata
            .channel_members(channel)
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
            .collect())
    }

    /// One message that may concern someone: the rules, then delivery and any automatic reply.
    async fn notify_one(
        &self,
        event: &MessageEvent,
        kind: ChannelKind,
        workspace: Uuid,
        members: &[Member],
    ) -> Result<usize, StoreError> {
        let thread_author = match event.parent_seq {
            Some(parent) => self
                .messages
                .event(event.channel_id, parent)
                .await?
                .map(|parent| parent.author_id),
            None => None,
        };
        let online = if broadcast_mentions(&event.text).1 {
            self.online(members).await
        } else {
            HashSet::new()
        };
        let decided = recipients(
            event,
            &Audience {
                channel_kind: kind,
                members,
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
        let slot = self.router.clone();
        tokio::spawn(async move {
            // Until a cluster node's router is connected (shortly after start) the reply waits
            // for it, rather than being lost as it once was.
            let Some(router) = slot.wait(ROUTER_WAIT).await else {
                metrics::counter!("chorus_focus_auto_replies_failed_total").increment(1);
                return tracing::warn!("a focus auto-reply was not sent: no channel service");
            };
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

/// `events` grouped by channel: each group in commit order, the groups in the order of their
/// first message.
fn by_channel(events: &[Arc<MessageEvent>]) -> Vec<(Uuid, Vec<&MessageEvent>)> {
    let mut groups: Vec<(Uuid, Vec<&MessageEvent>)> = Vec::new();
    let mut index: HashMap<Uuid, usize> = HashMap::new();
    for event in events {
        let at = *index.entry(event.channel_id).or_insert_with(|| {
            groups.push((event.channel_id, Vec::new()));
            groups.len() - 1
        });
        groups[at].1.push(event);
    }
    groups
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    /// A router that is only handed around, never asked anything.
    struct Idle;

    #[async_trait::async_trait]
    impl ChannelRouter for Idle {
        async fn submit(
            &self,
            _: PublishRequest,
        ) -> Result<chorus_cluster::PublishTicket, chorus_cluster::RouteError> {
            unreachable!("not used")
        }

        async fn replay(
            &self,
            _: Uuid,
            _: u64,
        ) -> Result<chorus_cluster::Replay, chorus_cluster::RouteError> {
            unreachable!("not used")
        }

        async fn last_seqs(&self, _: &[Uuid]) -> Result<Vec<u64>, chorus_cluster::RouteError> {
            unreachable!("not used")
        }

        async fn set_archived(&self, _: Uuid, _: bool) -> Result<(), chorus_cluster::RouteError> {
            unreachable!("not used")
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_reply_waiting_for_the_router_gets_it_the_moment_it_is_set() {
        let slot = AutoReplyRouter::default();
        let waiting = tokio::spawn({
            let slot = slot.clone();
            async move {
                let found = slot.wait(ROUTER_WAIT).await.is_some();
                (found, tokio::time::Instant::now())
            }
        });
        tokio::time::sleep(Duration::from_secs(3)).await;
        let set_at = tokio::time::Instant::now();
        slot.set(Arc::new(Idle));
        let (found, woke_at) = waiting.await.unwrap();
        assert!(found);
        assert_eq!(woke_at, set_at, "woken by the set, not by a later look");
    }

    #[tokio::test(start_paused = true)]
    async fn a_reply_gives_up_when_no_router_comes_and_a_cleared_slot_has_none() {
        let slot = AutoReplyRouter::default();
        let start = tokio::time::Instant::now();
        assert!(slot.wait(ROUTER_WAIT).await.is_none());
        assert_eq!(start.elapsed(), ROUTER_WAIT);
        slot.set(Arc::new(Idle));
        assert!(slot.wait(Duration::ZERO).await.is_some());
        slot.clear();
        assert!(slot.wait(Duration::from_millis(10)).await.is_none());
    }

    fn message(channel: u128, seq: u64) -> Arc<MessageEvent> {
        Arc::new(MessageEvent::new_message(
            Uuid::from_u128(channel),
            seq,
            Uuid::from_u128(1000),
            Uuid::from_u128(1),
            "text",
            DateTime::from_timestamp(0, 0).unwrap(),
            "n",
        ))
    }

    #[test]
    fn a_batch_is_grouped_by_channel_keeping_commit_order() {
        let events = [
            message(7, 1),
            message(9, 1),
            message(7, 2),
            message(9, 2),
            message(7, 3),
        ];
        let groups: Vec<(Uuid, Vec<u64>)> = by_channel(&events)
            .into_iter()
            .map(|(channel, group)| (channel, group.iter().map(|e| e.seq).collect()))
            .collect();
        assert_eq!(
            groups,
            vec![
                (Uuid::from_u128(7), vec![1, 2, 3]),
                (Uuid::from_u128(9), vec![1, 2]),
            ]
        );
        assert!(by_channel(&[]).is_empty());
    }
}
