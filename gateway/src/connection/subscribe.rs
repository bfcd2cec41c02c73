//! A connection's subscriptions: `subscribe` checks access, registers with the hub and queues the
//! replay since the client's position; the hub delivers live events after it, and a gap between
//! the two is filled from the channel's replay buffer (`catch_up`).

use chorus_cluster::{Replay, RouteError};
use chorus_core::bots::Scope;
use chorus_core::model::ChannelAccess;
use chorus_protocol::{ErrorCode, ServerFrame};
use tokio_tungstenite::tungstenite::Utf8Bytes;
use uuid::Uuid;

use super::bot;
use super::errors::{access_error, access_unknown, channel_error, route_error};
use super::{Connection, Subscription, text};
use crate::outbox::Outgoing;

impl Connection {
    /// Checks access, subscribes, and replays what came after `since_seq`. Returns the number of
    /// replayed events; the error is the frame to answer with.
    pub(super) async fn subscribe(
        &mut self,
        channel: Uuid,
        since_seq: Option<u64>,
    ) -> Result<u64, ServerFrame> {
        // The refusals that need no store read come first, so they cost none.
        if let Some(refusal) = self.refusal(channel) {
            return Err(refusal);
        }
        let access = self.access(channel).await;
        self.subscribe_with(channel, since_seq, access).await
    }

    /// Why `channel` cannot be subscribed whatever its access: the token lacks
    /// `channels.read`, or the connection is at its subscription limit.
    fn refusal(&self, channel: Uuid) -> Option<ServerFrame> {
        if self.lacks(Scope::ChannelsRead) {
            return Some(Self::missing_scope(Scope::ChannelsRead, channel, None));
        }
        if !self.subscriptions.contains_key(&channel)
            && self.subscriptions.len() >= self.shared.config.max_subscriptions
        {
            return Some(channel_error(
                ErrorCode::InvalidFrame,
                "subscription limit reached",
                channel,
            ));
        }
        None
    }

    /// [`Self::subscribe`] with the channel's access already read (a resume reads all of its
    /// channels' in one query); `None`: the read failed.
    pub(super) async fn subscribe_with(
        &mut self,
        channel: Uuid,
        since_seq: Option<u64>,
        access: Option<ChannelAccess>,
    ) -> Result<u64, ServerFrame> {
        if let Some(refusal) = self.refusal(channel) {
            return Err(refusal);
        }
        let Some(access) = access else {
            return Err(access_unknown(channel));
        };
        if !access.can_read() {
            return Err(access_error(access, channel));
        }
        self.shared
            .hub
            .subscribe(channel, self.id, self.outbox.clone());
        let replayed = match since_seq {
            None => {
                let last_seq = self.last_seq(channel).await?;
                self.subscriptions.insert(
                    channel,
                    Subscription {
                        last_seq,
                        can_post: Some(access.can_post()),
                    },
                );
                (0, last_seq)
            }
            Some(since) => {
                self.subscriptions.insert(
                    channel,
                    Subscription {
                        last_seq: since,
                        can_post: Some(access.can_post()),
                    },
                );
                self.queue_replay(channel, since)
                    .await
                    .map_err(|err| route_error(err, None, Some(channel)))?
            }
        };
        self.reply(&ServerFrame::Subscribed {
            channel_id: channel,
            last_seq: replayed.1,
        });
        Ok(replayed.0)
    }

    /// Queues the events of `channel` after `since` from its replay buffer; returns how many, and
    /// the position they bring the client to.
    ///
    /// They are queued as events, not as finished frames, and the subscription's `last_seq` stays
    /// at `since` until the writer sends them: a live event newer than the replay may already sit
    /// in the outbox ahead of them, and the writer's sequence check then fills the gap before it
    /// instead of sending it first.
    pub(super) async fn queue_replay(
        &mut self,
        channel: Uuid,
        since: u64,
    ) -> Result<(u64, u64), RouteError> {
        match self.shared.deps.router.replay(channel, since).await? {
            Replay::Events(events) => {
                let (mut count, mut newest) = (0, since);
                for event in events.into_iter().filter(|event| event.seq > since) {
                    count += 1;
                    newest = event.seq;
                    self.outbox.push(Outgoing::Event {
                        channel_id: channel,
                        seq: event.seq,
                        kind: event.kind,
                        frame: text(&ServerFrame::Message((*event).clone())),
                    });
                }
                Ok((count, newest))
            }
            Replay::TooOld { last_seq } => {
                if let Some(subscription) = self.subscriptions.get_mut(&channel) {
                    subscription.last_seq = last_seq;
                }
                self.reply(&ServerFrame::ResyncRequired {
                    channel_id: channel,
                    after_seq: since,
                    last_seq,
                });
                Ok((0, last_seq))
            }
        }
    }

    pub(super) async fn last_seq(&self, channel: Uuid) -> Result<u64, ServerFrame> {
        self.shared
            .deps
            .router
            .last_seqs(&[channel])
            .await
            .map(|seqs| seqs.first().copied().unwrap_or(0))
            .map_err(|err| route_error(err, None, Some(channel)))
    }

    pub(super) async fn access(&self, channel: Uuid) -> Option<ChannelAccess> {
        self.accesses(&[channel])
            .await
            .and_then(|mut one| one.pop())
    }

    /// The access of each channel, in order, read in one query; `None` when the store failed
    /// (logged; each channel is then answered `internal`).
    pub(super) async fn accesses(&self, channels: &[Uuid]) -> Option<Vec<ChannelAccess>> {
        let is_bot = self.is_bot();
        match self
            .shared
            .deps
            .store
            .channel_accesses(channels, self.user)
            .await
        {
            Ok(accesses) if is_bot => Some(accesses.into_iter().map(bot::bot_access).collect()),
            Ok(accesses) => Some(accesses),
            Err(err) => {
                tracing::error!(error = %err, "channel access check failed");
                None
            }
        }
    }

    /// The frames that bring the client from its `last_seq` to the channel's newest event, for the
    /// writer to send at once (it advances `last_seq` past them).
    pub(super) async fn catch_up(&mut self, channel: Uuid) -> Result<Vec<Utf8Bytes>, RouteError> {
        let Some(after) = self.subscriptions.get(&channel).map(|s| s.last_seq) else {
            return Ok(Vec::new());
        };
        let replay = self.shared.deps.router.replay(channel, after).await?;
        let Some(subscription) = self.subscriptions.get_mut(&channel) else {
            return Ok(Vec::new());
        };
        Ok(match replay {
            Replay::Events(events) => {
                let mut frames = Vec::with_capacity(events.len());
                for event in events {
                    if event.seq > subscription.last_seq {
                        subscription.last_seq = event.seq;
                        if self.intents.wants_event(event.kind) {
                            frames.push(text(&ServerFrame::Message((*event).clone())));
                        }
                    }
                }
                frames
            }
            Replay::TooOld { last_seq } => {
                subscription.last_seq = last_seq;
                vec![text(&ServerFrame::ResyncRequired {
                    channel_id: channel,
                    after_seq: after,
                    last_seq,
                })]
            }
        })
    }
}
