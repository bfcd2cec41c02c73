//! A connection's writer: takes what the outbox holds and writes it to the socket, skipping live
//! events already replayed and filling gaps, and applies access re-checks (a removed member's
//! subscription ends) before anything more of that channel is written.

use std::collections::VecDeque;

use chorus_protocol::{CloseCode, ErrorCode, Intent, ServerFrame};
use futures_util::{FutureExt, SinkExt};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use uuid::Uuid;

use super::errors::{channel_error, internal};
use super::{Connection, End, text};
use crate::metrics::{GATEWAY, Out};
use crate::outbox::{Outgoing, Recheck};

impl Connection {
    /// Writes everything queued, skipping events already delivered and filling gaps.
    pub(super) async fn write_outbox(&mut self, mut items: VecDeque<Outgoing>) -> Result<(), End> {
        let flush_interval = self.shared.config.flush_interval;
        if let Some(ready_at) = self.last_write.map(|at| at + flush_interval)
            && tokio::time::Instant::now() < ready_at
        {
            // Unless the connection must close or its outbox fills up meanwhile.
            tokio::select! {
                biased;
                _ = self.outbox.pressing() => {}
                _ = tokio::time::sleep_until(ready_at) => {}
            }
            // What arrived while waiting leaves in the same write.
            match self.outbox.drain().now_or_never() {
                Some(Ok(more)) => items.extend(more),
                Some(Err(code)) => return Err(End::Close(code)),
                None => {}
            }
        }
        GATEWAY.outbox_drain_items.record(items.len() as f64);
        let mut frames = Vec::with_capacity(items.len());
        // Frames by kind, added to the counters once per write.
        let (mut events, mut typing, mut replayed) = (0u64, 0u64, 0u64);
        for item in items {
            match item {
                Outgoing::Frame(frame) => frames.push(frame),
                Outgoing::Typing { user_id, frame } => {
                    if user_id != self.user && self.intents.contains(Intent::Typing) {
                        typing += 1;
                        frames.push(frame);
                    }
                }
                Outgoing::Recheck(recheck) => frames.extend(self.recheck(recheck).await?),
                Outgoing::CatchUp { channel_id } => match self.catch_up(channel_id).await {
                    Ok(missing) => {
                        replayed += missing.len() as u64;
                        frames.extend(missing);
                    }
                    Err(err) => return Err(internal("catch up", err)),
                },
                Outgoing::Event {
                    channel_id,
                    seq,
                    kind,
                    frame,
                } => {
                    let Some(subscription) = self.subscriptions.get_mut(&channel_id) else {
                        continue;
                    };
                    if seq <= subscription.last_seq {
                        continue;
                    }
                    if seq == subscription.last_seq + 1 {
                        subscription.last_seq = seq;
                        // Outside the intents: delivered as far as the position goes, not sent.
                        if self.intents.wants_event(kind) {
                            events += 1;
                            frames.push(frame);
                        }
                        continue;
                    }
                    // Events were lost between the bus and this gateway: catch up from the
                    // channel's buffer (which includes this one) instead of skipping ahead.
                    tracing::warn!(%channel_id, have = subscription.last_seq, got = seq, "gap in channel events; catching up");
                    match self.catch_up(channel_id).await {
                        Ok(missing) => {
                            replayed += missing.len() as u64;
                            frames.extend(missing);
                        }
                        Err(err) => return Err(internal("catch up", err)),
                    }
                }
            }
        }
        if frames.is_empty() {
            return Ok(());
        }
        // The rest are replies to the client's own frames (acks, errors, subscribe replays).
        GATEWAY.frames_out(Out::Event, events);
        GATEWAY.frames_out(Out::Typing, typing);
        GATEWAY.frames_out(Out::Replay, replayed);
        GATEWAY.frames_out(Out::Reply, frames.len() as u64 - events - typing - replayed);
        self.last_write = Some(tokio::time::Instant::now());
        let outbox = self.outbox.clone();
        let write_timeout = self.shared.config.write_timeout;
        let ws = &mut self.ws;
        let write = async move {
            for frame in frames {
                ws.feed(Message::Text(frame)).await?;
            }
            ws.flush().await
        };
        tokio::select! {
            written = tokio::time::timeout(write_timeout, write) => match written {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) => Err(End::Gone),
                Err(_) => Err(End::Close(CloseCode::SlowConsumer)),
            },
            code = outbox.killed() => Err(End::Close(code)),
        }
    }

    /// Re-reads the user's rights after an access notice. Ends the connection (4100) when its
    /// login session is gone; drops subscriptions the user may no longer read, telling the client
    /// with a `forbidden` error and `unsubscribed`; refreshes whether the user may post.
    pub(super) async fn recheck(&mut self, recheck: Recheck) -> Result<Vec<Utf8Bytes>, End> {
        if matches!(recheck, Recheck::Session | Recheck::Everything) {
            let session = self
                .shared
                .deps
                .store
                .session(self.auth_session)
                .await
                .map_err(|err| internal("session check", err))?;
            if !session.is_some_and(|s| s.is_active(chrono::Utc::now())) {
                return Err(End::Close(CloseCode::AuthenticationFailed));
            }
        }
        let channels: Vec<Uuid> = match recheck {
            Recheck::Session => return Ok(Vec::new()),
            Recheck::Channel(channel) => vec![channel],
            Recheck::AllChannels | Recheck::Everything => {
                self.subscriptions.keys().copied().collect()
            }
        };
        let mut frames = Vec::new();
        for channel in channels {
            if !self.subscriptions.contains_key(&channel) {
                if matches!(recheck, Recheck::Channel(_)) {
                    self.follow_membership(channel).await;
                }
                continue;
            }
            let access = self
                .shared
                .deps
                .store
                .channel_access(channel, self.user)
                .await
                .map_err(|err| internal("access check", err))?;
            if access.can_read() {
                if let Some(subscription) = self.subscriptions.get_mut(&channel) {
                    subscription.can_post = Some(access.can_post());
                }
                continue;
            }
            self.shared.hub.unsubscribe(channel, self.id);
            self.subscriptions.remove(&channel);
            frames.push(text(&channel_error(
                ErrorCode::Forbidden,
                "you no longer have access to this channel",
                channel,
            )));
            frames.push(text(&ServerFrame::Unsubscribed {
                channel_id: channel,
            }));
        }
        Ok(frames)
    }
}
