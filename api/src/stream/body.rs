//! The body of one SSE response: turns the stream's queue into `text/event-stream` events,
//! exactly once and in order per channel.
//!
//! Live events pass [`Positions::step`]: the next one is sent, an old one dropped, and a jump
//! ahead (an event lost between the bus and this process) becomes a catch-up. A catch-up reads
//! the channel service's replay buffer after the stream's position and, when the position is
//! older than the buffer, the message store (the API reads history), one page at a time — so
//! unlike a WebSocket (`resync_required`), an SSE client never has to fetch a gap itself. Each
//! sent event's `id` is the whole position vector after it (`position.rs`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::response::sse::Event;
use chorus_cluster::Replay;
use chorus_core::messages::HistoryQuery;
use chorus_protocol::{CloseCode, MessageEvent, ServerFrame};
use futures_util::Stream;
use serde_json::json;
use uuid::Uuid;

use super::hub::Registration;
use super::position::{Positions, Step};
use super::queue::Item;
use crate::AppState;

/// Events read from history per catch-up step: what a stream holds in memory at most while it
/// fills a long gap.
const HISTORY_PAGE: usize = 256;

/// Why a stream must end, told to the client as a `close` event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Close(CloseCode);

/// Everything one open stream needs.
pub struct StreamBody {
    pub state: AppState,
    pub registration: Registration,
    pub positions: Positions,
    pub user: Uuid,
    pub session: Uuid,
    /// Channels to fill from their positions before anything else is read.
    pub catch_ups: VecDeque<Uuid>,
    /// The stream follows every channel of the caller (no `channels=`): channels joined while it
    /// is open are added.
    pub follows_memberships: bool,
    /// Events ready to send.
    pub ready: VecDeque<Event>,
    pub done: bool,
}

impl StreamBody {
    /// The SSE stream.
    pub fn into_stream(self) -> impl Stream<Item = Result<Event, Infallible>> + Send {
        futures_util::stream::unfold(self, |mut body| async move {
            let event = body.next_event().await?;
            Some((Ok(event), body))
        })
    }

    async fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            if self.done {
                return None;
            }
            if let Err(Close(code)) = self.work().await {
                self.done = true;
                self.registration.queue.close(code);
                return Some(close_event(code));
            }
        }
    }

    /// One step: a catch-up page when one is due, otherwise the next batch from the queue.
    async fn work(&mut self) -> Result<(), Close> {
        if let Some(&channel) = self.catch_ups.front() {
            if self.catch_up_step(channel).await? {
                self.catch_ups.pop_front();
            }
            return Ok(());
        }
        let batch = self.registration.queue.next_batch().await.map_err(Close)?;
        for item in batch {
            match item {
                Item::Event(event) => self.live(&event),
                Item::CatchUp(channel) => self.want_catch_up(channel),
                Item::Recheck => self.recheck().await?,
            }
        }
        Ok(())
    }

    fn want_catch_up(&mut self, channel: Uuid) {
        if self.positions.get(channel).is_some() && !self.catch_ups.contains(&channel) {
            self.catch_ups.push_back(channel);
        }
    }

    fn live(&mut self, event: &Arc<MessageEvent>) {
        match self.positions.step(event.channel_id, event.seq) {
            Step::Deliver => self.emit(event),
            Step::Skip | Step::Unknown => {}
            Step::Gap => self.want_catch_up(event.channel_id),
        }
    }

    fn emit(&mut self, event: &MessageEvent) {
        let data = ServerFrame::Message(event.clone()).to_json();
        self.ready.push_back(
            Event::default()
                .event("message")
                .id(self.positions.encode())
                .data(data),
        );
    }

    /// Brings `channel` on by one replay or one history page; true once it is current.
    async fn catch_up_step(&mut self, channel: Uuid) -> Result<bool, Close> {
        let Some(after) = self.positions.get(channel) else {
            return Ok(true);
        };
        let replay = self
            .state
            .api
            .router
            .replay(channel, after)
            .await
            .map_err(|err| fail("stream catch-up replay", err))?;
        match replay {
            Replay::Events(events) => {
                for event in events {
                    if self.positions.step(channel, event.seq) == Step::Deliver {
                        self.emit(&event);
                    }
                }
                Ok(true)
            }
            Replay::TooOld { last_seq } => {
                let page = self
                    .state
                    .api
                    .messages
                    .page(
                        channel,
                        HistoryQuery::After {
                            after,
                            limit: HISTORY_PAGE,
                        },
                    )
                    .await
                    .map_err(|err| fail("stream catch-up history", err))?;
                for event in &page {
                    if self.positions.step(channel, event.seq) == Step::Deliver {
                        self.emit(event);
                    }
                }
                let moved = self.positions.get(channel).unwrap_or(after);
                if moved == after && after < last_seq {
                    // History lacks what the buffer no longer holds: never skip it silently.
                    tracing::error!(%channel, after, last_seq, "history has a hole; ending stream");
                    return Err(Close(CloseCode::InternalError));
                }
                Ok(moved >= last_seq)
            }
        }
    }

    /// Re-reads the session and channel access after an access notice: a revoked session ends
    /// the stream (4100, as a socket); a channel no longer readable leaves it with an
    /// `unsubscribed` event; a channel joined meanwhile joins it with `subscribed`.
    async fn recheck(&mut self) -> Result<(), Close> {
        let store = &self.state.api.store;
        let session = store
            .session(self.session)
            .await
            .map_err(|err| fail("stream session check", err))?;
        if !session.is_some_and(|s| s.is_active(chrono::Utc::now())) {
            return Err(Close(CloseCode::AuthenticationFailed));
        }
        let current: Vec<Uuid> = self.positions.channels().collect();
        for channel in current {
            let access = store
                .channel_access(channel, self.user)
                .await
                .map_err(|err| fail("stream access check", err))?;
            if !access.can_read() {
                self.registration.unsubscribe(channel);
                self.positions.remove(channel);
                self.catch_ups.retain(|c| *c != channel);
                self.ready.push_back(
                    Event::default()
                        .event("unsubscribed")
                        .id(self.positions.encode())
                        .data(json!({ "channel_id": channel }).to_string()),
                );
            }
        }
        if self.follows_memberships {
            let joined: Vec<Uuid> = store
                .channel_ids_of(self.user)
                .await
                .map_err(|err| fail("stream membership", err))?
                .into_iter()
                .filter(|channel| self.positions.get(*channel).is_none())
                .take(super::position::MAX_STREAM_CHANNELS.saturating_sub(self.positions.len()))
                .collect();
            for channel in joined {
                let access = store
                    .channel_access(channel, self.user)
                    .await
                    .map_err(|err| fail("stream access check", err))?;
                if !access.can_read() {
                    continue;
                }
                self.registration.subscribe(channel);
                let last_seq = self
                    .state
                    .api
                    .router
                    .last_seqs(&[channel])
                    .await
                    .map_err(|err| fail("stream last seq", err))?
                    .first()
                    .copied()
                    .unwrap_or(0);
                self.positions.set(channel, last_seq);
                self.ready.push_back(
                    Event::default()
                        .event("subscribed")
                        .id(self.positions.encode())
                        .data(json!({ "channel_id": channel, "last_seq": last_seq }).to_string()),
                );
            }
        }
        Ok(())
    }
}

/// Logs an internal failure once; the client sees `close` 4000 and resumes.
fn fail(what: &str, err: impl std::fmt::Display) -> Close {
    tracing::error!(error = %err, "{what} failed");
    Close(CloseCode::InternalError)
}

/// The last event of a stream the server ends: the WebSocket close code and its reason, so a
/// client knows whether to resume (docs/PROTOCOL.md, "Server-Sent Events").
pub fn close_event(code: CloseCode) -> Event {
    Event::default().event("close").data(
        json!({
            "code": code.code(),
            "reason": code.reason(),
            "reconnect": code.should_reconnect(),
        })
        .to_string(),
    )
}
