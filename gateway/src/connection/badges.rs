//! A connection's badges in `ready`: the unread and mention counts of every channel it starts
//! subscribed to, read through the gateway's narrow badge reader (never the message store).

use chorus_protocol::{ChannelPosition, ChannelUnread};

use super::Connection;

impl Connection {
    /// The badges of `positions`' channels, in order; empty when the gateway has no badge reader
    /// or it fails (the client then shows none, and `GET /v1/workspaces/{id}/channels` still has
    /// the unread counts) — badges never keep a user from connecting.
    pub(super) async fn badges(&self, positions: &[ChannelPosition]) -> Vec<ChannelUnread> {
        let Some(badges) = &self.shared.deps.badges else {
            return Vec::new();
        };
        let channels: Vec<_> = positions.iter().map(|p| p.channel_id).collect();
        match badges.of(self.user, &channels).await {
            Ok(unreads) => unreads,
            Err(err) => {
                tracing::warn!(error = %err, "badges unreadable; ready goes without them");
                Vec::new()
            }
        }
    }
}
