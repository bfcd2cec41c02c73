//! The digest of a focus session, built from what it held (pure): one group per channel with
//! its count and its [`DIGEST_TOP`] most important notifications, the group holding the most
//! important notification first. The store calls this in the transaction that ends the session,
//! so the digest lists exactly what was held.

use std::collections::HashMap;

use chorus_protocol::{DIGEST_TOP, DigestChannel, Notification};
use uuid::Uuid;

/// A notification a session held, with the priority score it had then.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldItem {
    pub notification: Notification,
    pub priority: u8,
}

/// The digest's groups of `held` (in any order).
pub fn group(held: Vec<HeldItem>) -> Vec<DigestChannel> {
    let mut groups: HashMap<(Uuid, Option<Uuid>), Vec<HeldItem>> = HashMap::new();
    for item in held {
        let key = (item.notification.workspace_id, item.notification.channel_id);
        groups.entry(key).or_default().push(item);
    }
    let mut ranked: Vec<(u8, chrono::DateTime<chrono::Utc>, DigestChannel)> = groups
        .into_iter()
        .map(|((workspace_id, channel_id), mut items)| {
            // Highest priority first; newest first among equals; the id settles exact ties.
            items.sort_by(|a, b| {
                (b.priority, b.notification.created_at, b.notification.id).cmp(&(
                    a.priority,
                    a.notification.created_at,
                    a.notification.id,
                ))
            });
            let best = (items[0].priority, items[0].notification.created_at);
            let count = items.len() as u64;
            let top = items
                .into_iter()
                .take(DIGEST_TOP)
                .map(|item| item.notification)
                .collect();
            (
                best.0,
                best.1,
                DigestChannel {
                    workspace_id,
                    channel_id,
                    count,
                    top,
                },
            )
        })
        .collect();
    ranked.sort_by_key(|(priority, newest, group)| {
        std::cmp::Reverse((*priority, *newest, group.channel_id))
    });
    ranked.into_iter().map(|(_, _, group)| group).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_protocol::NotificationKind;
    use chrono::{Duration, Utc};

    fn held(channel: u128, n: i64, priority: u8) -> HeldItem {
        HeldItem {
            notification: Notification {
                id: Uuid::from_u128(1000 + n as u128),
                kind: NotificationKind::Mention,
                workspace_id: Uuid::from_u128(1),
                channel_id: Some(Uuid::from_u128(channel)),
                seq: Some(n as u64),
                parent_seq: None,
                actor_id: Uuid::from_u128(7),
                preview: format!("m{n}"),
                created_at: Utc::now() + Duration::seconds(n),
            },
            priority,
        }
    }

    #[test]
    fn groups_count_everything_and_show_the_top_three() {
        let mut items: Vec<HeldItem> = (1..=5).map(|n| held(10, n, 50)).collect();
        items.push(held(20, 6, 20));
        items[1].priority = 60; // m2 is the most important of channel 10
        let groups = group(items);
        assert_eq!(groups.len(), 2);
        assert_eq!(
            (groups[0].channel_id, groups[0].count),
            (Some(Uuid::from_u128(10)), 5)
        );
        let previews: Vec<&str> = groups[0].top.iter().map(|n| n.preview.as_str()).collect();
        assert_eq!(previews, ["m2", "m5", "m4"]);
        assert_eq!(
            (groups[1].channel_id, groups[1].count, groups[1].top.len()),
            (Some(Uuid::from_u128(20)), 1, 1)
        );
    }

    #[test]
    fn nothing_held_is_no_group() {
        assert!(group(Vec::new()).is_empty());
    }
}
