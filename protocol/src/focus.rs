//! Focus mode on the wire: the digest a user receives when a focus session ends — every
//! notification the session held back, grouped by channel with a count and the most important
//! few — as the `focus_digest` frame and over REST (`GET /v1/users/me/focus/digests`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Notification;

/// Held notifications a digest shows whole per channel (the rest are counted).
pub const DIGEST_TOP: usize = 3;

/// What a focus session held back, delivered once when it ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FocusDigest {
    pub id: Uuid,
    /// The focus session that held these.
    pub session_id: Uuid,
    #[serde(with = "crate::timestamp")]
    pub started_at: DateTime<Utc>,
    #[serde(with = "crate::timestamp")]
    pub ended_at: DateTime<Utc>,
    /// Notifications held, over every channel.
    pub total: u64,
    /// One group per channel (an invitation has a group without `channel_id`), the group with
    /// the most important notification first.
    pub channels: Vec<DigestChannel>,
}

/// The held notifications of one channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestChannel {
    pub workspace_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<Uuid>,
    /// How many were held in this channel.
    pub count: u64,
    /// At most [`DIGEST_TOP`], highest priority first (newest first among equals).
    pub top: Vec<Notification>,
}
