//! A connection's `send`: checks (scope, access, limits, the workspace quota, the token rate),
//! then hands the message to the channel service and answers `ack` once it is durable, or an
//! error naming the nonce.

use std::time::Instant;

use chorus_cluster::PublishRequest;
use chorus_core::bots::Scope;
use chorus_core::mentions::parse_mentions;
use chorus_protocol::limits::{MAX_MESSAGE_CHARS, MAX_NONCE_BYTES};
use chorus_protocol::{ErrorCode, ServerFrame};
use tokio_tungstenite::tungstenite::Utf8Bytes;
use uuid::Uuid;

use super::Connection;
use super::errors::{access_error, access_unknown, route_error};
use crate::metrics::GATEWAY;
use crate::outbox::Outgoing;

impl Connection {
    pub(super) async fn send(
        &mut self,
        channel: Uuid,
        nonce: String,
        text: String,
        parent_seq: Option<u64>,
    ) -> Result<(), ServerFrame> {
        let nonce_error = |code, message: &str| ServerFrame::Error {
            code,
            message: message.into(),
            nonce: Some(nonce.clone()),
            channel_id: Some(channel),
            retry_after_ms: None,
        };
        if nonce.is_empty() || nonce.len() > MAX_NONCE_BYTES {
            return Err(nonce_error(
                ErrorCode::InvalidFrame,
                "nonce must be 1 to 64 bytes",
            ));
        }
        if text.trim().is_empty() {
            return Err(nonce_error(
                ErrorCode::InvalidFrame,
                "text must not be empty",
            ));
        }
        if text.chars().count() > MAX_MESSAGE_CHARS {
            return Err(nonce_error(
                ErrorCode::TextTooLong,
                "text is longer than 4000 characters",
            ));
        }
        if self.lacks(Scope::MessagesWrite) {
            return Err(Self::missing_scope(
                Scope::MessagesWrite,
                channel,
                Some(nonce),
            ));
        }
        if let Some(refusal) = self.bot_send_refusal(channel, &nonce) {
            return Err(refusal);
        }
        if self.outbox.sends_in_flight() >= self.shared.config.max_in_flight_sends {
            return Err(nonce_error(
                ErrorCode::TooManyInFlight,
                "too many sends waiting for acknowledgement",
            ));
        }
        // Only a "may post" is trusted from the cache: a refusal is re-read each time, so a
        // channel unarchived (or a member re-added) a moment ago takes sends at once. Refused
        // sends are rare and rate-limited; whatever the cache says, an archived channel's
        // sequencer refuses its events (`RouteError::Archived`).
        let cached = self
            .subscriptions
            .get(&channel)
            .and_then(|s| s.can_post)
            .filter(|&can_post| can_post);
        let can_post = match cached {
            Some(can_post) => can_post,
            None => {
                let access = self
                    .access(channel)
                    .await
                    .ok_or_else(|| access_unknown(channel))?;
                if !access.can_read() {
                    let mut error = access_error(access, channel);
                    if let ServerFrame::Error { nonce: n, .. } = &mut error {
                        *n = Some(nonce);
                    }
                    return Err(error);
                }
                if let Some(subscription) = self.subscriptions.get_mut(&channel) {
                    subscription.can_post = Some(access.can_post());
                }
                access.can_post()
            }
        };
        if !can_post {
            return Err(nonce_error(
                ErrorCode::Forbidden,
                "you may not post in this channel",
            ));
        }
        // Last of the checks, so a send refused for another reason uses none of the quota.
        if let Err(exceeded) = self.shared.deps.quotas.check_send(channel).await {
            return Err(ServerFrame::Error {
                code: ErrorCode::WorkspaceMessageLimit,
                message: exceeded.message(),
                nonce: Some(nonce),
                channel_id: Some(channel),
                retry_after_ms: Some(
                    u64::try_from(exceeded.retry_after.as_millis())
                        .unwrap_or(u64::MAX)
                        .max(1),
                ),
            });
        }
        if self.occasional.forget_typing(channel)
            && let Err(err) = self
                .shared
                .deps
                .presence
                .stopped_typing(channel, self.user)
                .await
        {
            tracing::warn!(error = %err, "presence update failed");
        }
        let request = PublishRequest {
            parent_seq,
            mentions: parse_mentions(&text),
            ..PublishRequest::message(channel, self.user, nonce.clone(), text)
        };
        let ticket = self
            .shared
            .deps
            .router
            .submit(request)
            .await
            .map_err(|err| route_error(err, Some(nonce.clone()), Some(channel)))?;
        self.outbox.send_started();
        let outbox = self.outbox.clone();
        let submitted = Instant::now();
        tokio::spawn(async move {
            let outcome = ticket.await;
            GATEWAY.acked(outcome.is_ok(), submitted.elapsed());
            let frame = match outcome {
                Ok(ack) => ServerFrame::Ack {
                    nonce,
                    channel_id: channel,
                    message_id: ack.message_id,
                    seq: ack.seq,
                    created_at: ack.created_at,
                    duplicate: ack.duplicate,
                },
                Err(err) => route_error(err, Some(nonce), Some(channel)),
            };
            outbox.push(Outgoing::Frame(Utf8Bytes::from(frame.to_json())));
            outbox.send_done();
        });
        Ok(())
    }
}
