//! What the API tells a user's connections directly, not through a channel event: that they
//! were added to a workspace (an invitation accepted on their behalf), and that their read
//! position in a channel moved (so every device clears its badge).

use chorus_core::{MessageStore, MetadataStore};
use chorus_presence::PresenceStore;
use chorus_protocol::{ChannelUnread, Notification, NotificationKind, ServerFrame, UNREAD_CAP};
use uuid::Uuid;

use crate::delivery::{Pending, deliver};
use crate::notifier::send;

/// `user` was added to `workspace` (named `name`) by `actor`: records the notification and
/// sends it (or holds it, when the user is in focus). Advisory: a failure is logged, the membership stands.
pub async fn invitation(
    metadata: &dyn MetadataStore,
    presence: &dyn PresenceStore,
    user: Uuid,
    workspace: Uuid,
    name: &str,
    actor: Uuid,
) {
    let notification = Notification {
        id: Uuid::now_v7(),
        kind: NotificationKind::Invitation,
        workspace_id: workspace,
        channel_id: None,
        seq: None,
        parent_seq: None,
        actor_id: actor,
        preview: chorus_protocol::preview(name),
        created_at: chrono::Utc::now(),
    };
    let pending = vec![Pending {
        user,
        notification,
        text: name,
    }];
    if let Err(err) = deliver(metadata, presence, pending).await {
        tracing::warn!(error = %err, "invitation notification not recorded");
    }
}

/// `user`'s read position in `channel` is now `last_read_seq`: sends the channel's badge to
/// every connection of theirs. Advisory, like every user frame.
pub async fn read_state(
    metadata: &dyn MetadataStore,
    messages: &dyn MessageStore,
    presence: &dyn PresenceStore,
    user: Uuid,
    channel: Uuid,
    last_read_seq: u64,
) {
    let counts = async {
        let unread = messages
            .count_messages_after(channel, last_read_seq, UNREAD_CAP)
            .await?;
        let mentions = metadata
            .notifications()
            .mention_counts(user, &[channel])
            .await?;
        Ok::<_, chorus_core::StoreError>((unread, mentions.first().map_or(0, |m| m.1)))
    };
    match counts.await {
        Ok((unread_count, mention_count)) => {
            let frame = ServerFrame::ReadState(ChannelUnread {
                channel_id: channel,
                last_read_seq,
                unread_count,
                mention_count,
            });
            send(presence, user, &frame).await;
        }
        Err(err) => tracing::warn!(error = %err, "read state not sent"),
    }
}
