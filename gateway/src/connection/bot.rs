//! A connection's rules for bot tokens: scopes, the channels a bot sees (only those it was added
//! to), following its memberships, and its own send rate per token.
//!
//! A bot's sends are limited per token (all its connections to this gateway together), not only
//! per connection, so a bot cannot multiply its rate by opening sockets:
//! [`BOT_SENDS_PER_SECOND`] sustained, [`BOT_SEND_BURST`] at once.

use std::num::NonZeroU32;

use chorus_core::bots::Scope;
use chorus_core::model::ChannelAccess;
use chorus_protocol::{ErrorCode, ServerFrame};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

use super::Connection;

/// Sends a bot token may make per second on one gateway.
pub const BOT_SENDS_PER_SECOND: u32 = 20;
/// Sends a bot token may make at once.
pub const BOT_SEND_BURST: u32 = 40;

/// The per-token send limiter of a gateway.
pub(crate) fn send_limiter() -> DefaultKeyedRateLimiter<Uuid> {
    RateLimiter::keyed(
        Quota::per_second(NonZeroU32::new(BOT_SENDS_PER_SECOND).expect("non-zero"))
            .allow_burst(NonZeroU32::new(BOT_SEND_BURST).expect("non-zero")),
    )
}

/// How a bot sees a channel: one it is not a member of does not exist for it, public or not.
pub(super) fn bot_access(access: ChannelAccess) -> ChannelAccess {
    match access {
        ChannelAccess::NotMember => ChannelAccess::Invisible,
        other => other,
    }
}

impl Connection {
    pub(super) fn is_bot(&self) -> bool {
        self.bot_scopes.is_some()
    }

    /// Whether this is a bot token without `scope` (a person's token has every scope).
    pub(super) fn lacks(&self, scope: Scope) -> bool {
        self.bot_scopes
            .is_some_and(|scopes| !scopes.contains(scope))
    }

    /// The refusal of a frame the token's scopes do not cover.
    pub(super) fn missing_scope(scope: Scope, channel: Uuid, nonce: Option<String>) -> ServerFrame {
        ServerFrame::Error {
            code: ErrorCode::Forbidden,
            message: format!("this bot token lacks the scope {}", scope.as_str()),
            nonce,
            channel_id: Some(channel),
            retry_after_ms: None,
        }
    }

    /// Counts one send against the bot token's rate; the refusal to answer when over it.
    pub(super) fn bot_send_refusal(&self, channel: Uuid, nonce: &str) -> Option<ServerFrame> {
        if !self.is_bot() {
            return None;
        }
        self.shared
            .bot_sends
            .check_key(&self.auth_session)
            .err()
            .map(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                ServerFrame::Error {
                    code: ErrorCode::RateLimited,
                    message: format!(
                        "this bot token is over its {BOT_SENDS_PER_SECOND} sends per second"
                    ),
                    nonce: Some(nonce.to_string()),
                    channel_id: Some(channel),
                    retry_after_ms: Some(u64::try_from(wait.as_millis()).unwrap_or(1).max(1)),
                }
            })
    }

    /// After an access notice about `channel`: a bot that is now a member of a channel it is not
    /// subscribed to starts receiving it (`subscribed`), so a bot follows the channels it is
    /// added to without reconnecting. People subscribe themselves.
    pub(super) async fn follow_membership(&mut self, channel: Uuid) {
        if !self.is_bot() || self.subscriptions.contains_key(&channel) {
            return;
        }
        if self.lacks(Scope::ChannelsRead) {
            return;
        }
        // Not a member (or an error): nothing to follow, and nothing to tell.
        let _ = self.subscribe(channel, None).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bot_sees_only_the_channels_it_is_in() {
        assert_eq!(
            bot_access(ChannelAccess::NotMember),
            ChannelAccess::Invisible
        );
        assert_eq!(
            bot_access(ChannelAccess::Member { archived: false }),
            ChannelAccess::Member { archived: false }
        );
        assert_eq!(
            bot_access(ChannelAccess::Invisible),
            ChannelAccess::Invisible
        );
    }

    #[test]
    fn the_token_limiter_admits_its_burst_then_refuses() {
        let limiter = send_limiter();
        let token = Uuid::new_v4();
        for _ in 0..BOT_SEND_BURST {
            assert!(limiter.check_key(&token).is_ok());
        }
        assert!(limiter.check_key(&token).is_err());
        assert!(
            limiter.check_key(&Uuid::new_v4()).is_ok(),
            "another token has its own"
        );
    }
}
