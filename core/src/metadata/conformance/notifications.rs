//! Conformance checks of the notification tables (`crate::notify::NotificationStore`): levels
//! per member, each notification recorded once, pages newest first, mention counts after the
//! read position.

use chorus_protocol::{Notification, NotificationKind};
use chrono::Duration;
use uuid::Uuid;

use super::{channel, now_ms, user};
use crate::MetadataStore;
use crate::model::ChannelKind;
use crate::notify::{NotifyLevel, notification_id};

fn about(
    user: Uuid,
    workspace: Uuid,
    channel: Uuid,
    seq: u64,
    kind: NotificationKind,
) -> Notification {
    Notification {
        id: notification_id(user, channel, seq),
        kind,
        workspace_id: workspace,
        channel_id: Some(channel),
        seq: Some(seq),
        parent_seq: None,
        actor_id: Uuid::new_v4(),
        preview: format!("message {seq}"),
        created_at: now_ms() + Duration::milliseconds(seq as i64),
    }
}

pub async fn notify_levels_are_set_per_member(store: &dyn MetadataStore) {
    let (ada, bob) = (user(store, "ada").await, user(store, "bob").await);
    let workspace = store.create_workspace("Acme", ada).await.unwrap();
    let general = store
        .create_channel(&channel(workspace.id, "general", ChannelKind::Public, ada))
        .await
        .unwrap();
    let levels = store.notifications();
    assert!(
        !levels
            .set_notify_level(general.id, bob, Some(NotifyLevel::All))
            .await
            .unwrap(),
        "bob is not a member"
    );
    store.add_channel_member(general.id, bob).await.unwrap();
    assert!(
        levels
            .set_notify_level(general.id, bob, Some(NotifyLevel::All))
            .await
            .unwrap()
    );
    assert!(
        levels
            .set_notify_level(general.id, ada, Some(NotifyLevel::Nothing))
            .await
            .unwrap()
    );
    assert!(
        levels
            .set_notify_level(general.id, bob, Some(NotifyLevel::Mentions))
            .await
            .unwrap()
    );
    let mut now = levels.notify_levels(general.id).await.unwrap();
    now.sort_by_key(|(user, _)| *user);
    let mut want = vec![(ada, NotifyLevel::Nothing), (bob, NotifyLevel::Mentions)];
    want.sort_by_key(|(user, _)| *user);
    assert_eq!(now, want);
    assert!(
        levels
            .set_notify_level(general.id, ada, None)
            .await
            .unwrap()
    );
    assert_eq!(
        levels.notify_levels(general.id).await.unwrap(),
        vec![(bob, NotifyLevel::Mentions)]
    );
    // Leaving the channel forgets the level.
    store.remove_channel_member(general.id, bob).await.unwrap();
    assert!(levels.notify_levels(general.id).await.unwrap().is_empty());
}

pub async fn notifications_are_recorded_once_and_paged(store: &dyn MetadataStore) {
    let (ada, bob) = (user(store, "ada").await, user(store, "bob").await);
    let workspace = store.create_workspace("Acme", ada).await.unwrap();
    let general = store
        .create_channel(&channel(workspace.id, "general", ChannelKind::Public, ada))
        .await
        .unwrap();
    store.add_channel_member(general.id, bob).await.unwrap();
    let notes = store.notifications();
    let first: Vec<_> = (1..=3)
        .map(|seq| {
            (
                bob,
                about(
                    bob,
                    workspace.id,
                    general.id,
                    seq,
                    NotificationKind::Mention,
                ),
            )
        })
        .collect();
    assert_eq!(notes.record_notifications(&first).await.unwrap(), [true; 3]);
    // A repeat (a new leader re-publishing) is recognised; a new one beside it is recorded.
    let again = vec![
        first[1].clone(),
        (
            bob,
            about(bob, workspace.id, general.id, 4, NotificationKind::Message),
        ),
    ];
    assert_eq!(
        notes.record_notifications(&again).await.unwrap(),
        [false, true]
    );
    let page = notes.notifications_of(bob, None, 2).await.unwrap();
    assert_eq!(
        page.iter().map(|n| n.seq).collect::<Vec<_>>(),
        [Some(4), Some(3)]
    );
    assert_eq!(page[1], first[2].1, "stored whole");
    let older = notes
        .notifications_of(bob, Some(page[1].id), 10)
        .await
        .unwrap();
    assert_eq!(
        older.iter().map(|n| n.seq).collect::<Vec<_>>(),
        [Some(2), Some(1)]
    );
    assert!(
        notes
            .notifications_of(ada, None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Mentions count after the read position; `message` is not a mention.
    assert_eq!(
        notes.mention_counts(bob, &[general.id]).await.unwrap(),
        vec![(general.id, 3)]
    );
    store.mark_read(general.id, bob, 2).await.unwrap();
    assert_eq!(
        notes.mention_counts(bob, &[general.id]).await.unwrap(),
        vec![(general.id, 1)]
    );
    store.mark_read(general.id, bob, 4).await.unwrap();
    assert!(
        notes
            .mention_counts(bob, &[general.id])
            .await
            .unwrap()
            .is_empty()
    );
}
