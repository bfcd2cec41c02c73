//! Channel metadata changes and memberships: members, mute, read positions.

use uuid::Uuid;

use super::{channel, now_ms, tick, user, workspace_with};
use crate::StoreError;
use crate::metadata::{ChannelStanding, MetadataStore};
use crate::model::{ChannelAccess, ChannelKind, ChannelUpdate, Role};

pub async fn channel_metadata_is_updated(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let bob = user(store, "bob").await;
    let workspace = workspace_with(store, ada, &[(bob, Role::Member)]).await;
    let general = store
        .create_channel(&channel(workspace.id, "general", ChannelKind::Public, ada))
        .await
        .unwrap();
    store
        .create_channel(&channel(workspace.id, "random", ChannelKind::Public, ada))
        .await
        .unwrap();

    let unchanged = store
        .update_channel(general.id, &ChannelUpdate::default())
        .await
        .unwrap();
    assert_eq!(unchanged, general, "an empty update changes nothing");

    let renamed = store
        .update_channel(
            general.id,
            &ChannelUpdate {
                name: Some("town-square".into()),
                description: Some("Everyone".into()),
                ..ChannelUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.description.as_str()),
        ("town-square", "Everyone")
    );
    assert_eq!(
        (renamed.kind, renamed.is_archived, renamed.topic.as_str()),
        (ChannelKind::Public, false, ""),
        "fields left as None keep their value"
    );
    assert_eq!(
        store.channel(general.id).await.unwrap().as_ref(),
        Some(&renamed)
    );

    let taken = store
        .update_channel(
            general.id,
            &ChannelUpdate {
                name: Some("random".into()),
                ..ChannelUpdate::default()
            },
        )
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    assert_eq!(
        store.channel(general.id).await.unwrap().unwrap().name,
        "town-square",
        "a refused rename changes nothing"
    );

    let at = now_ms();
    let topical = store
        .update_channel(
            general.id,
            &ChannelUpdate {
                topic: Some(("Launch on Friday".into(), bob, at)),
                ..ChannelUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (
            topical.topic.as_str(),
            topical.topic_set_by,
            topical.topic_set_at
        ),
        ("Launch on Friday", Some(bob), Some(at))
    );
    assert_eq!(
        store.channel(general.id).await.unwrap().as_ref(),
        Some(&topical)
    );

    let archived = store
        .update_channel(
            general.id,
            &ChannelUpdate {
                is_archived: Some(true),
                kind: Some(ChannelKind::Private),
                ..ChannelUpdate::default()
            },
        )
        .await
        .unwrap();
    assert!(archived.is_archived);
    assert_eq!(archived.kind, ChannelKind::Private);
    assert_eq!(archived.topic, "Launch on Friday", "the topic stays");
    assert_eq!(
        store.channel_access(general.id, ada).await.unwrap(),
        ChannelAccess::Member { archived: true }
    );
    let restored = store
        .update_channel(
            general.id,
            &ChannelUpdate {
                is_archived: Some(false),
                ..ChannelUpdate::default()
            },
        )
        .await
        .unwrap();
    assert!(!restored.is_archived);
    assert_eq!(
        store.channel_access(general.id, ada).await.unwrap(),
        ChannelAccess::Member { archived: false }
    );

    let missing = store
        .update_channel(Uuid::new_v4(), &ChannelUpdate::default())
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

pub async fn channel_members_are_added_listed_and_removed(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let bob = user(store, "bob").await;
    let cal = user(store, "cal").await;
    let workspace = workspace_with(store, ada, &[(bob, Role::Member), (cal, Role::Member)]).await;
    let general = store
        .create_channel(&channel(workspace.id, "general", ChannelKind::Private, ada))
        .await
        .unwrap();
    for member in [bob, cal] {
        tick().await;
        store.add_channel_member(general.id, member).await.unwrap();
    }

    let members = store.channel_members(general.id).await.unwrap();
    assert_eq!(
        members.iter().map(|m| m.user_id).collect::<Vec<_>>(),
        vec![ada, bob, cal],
        "oldest member first"
    );
    assert_eq!(members[0].joined_at, general.created_at);
    for member in &members {
        assert_eq!(member.channel_id, general.id);
        assert_eq!((member.last_read_seq, member.muted), (0, false));
        assert_eq!(
            store
                .channel_membership(general.id, member.user_id)
                .await
                .unwrap()
                .as_ref(),
            Some(member)
        );
    }
    let listing = store.channels_visible_to(workspace.id, bob).await.unwrap();
    assert_eq!(listing.len(), 1);
    assert_eq!(listing[0].membership.as_ref(), Some(&members[1]));

    assert!(store.remove_channel_member(general.id, bob).await.unwrap());
    assert!(
        !store.remove_channel_member(general.id, bob).await.unwrap(),
        "removing a non-member reports false"
    );
    assert_eq!(
        store.channel_membership(general.id, bob).await.unwrap(),
        None
    );
    assert_eq!(
        store.channel_access(general.id, bob).await.unwrap(),
        ChannelAccess::Invisible,
        "a private channel is invisible to workspace members not in it"
    );
    assert_eq!(
        store
            .channel_members(general.id)
            .await
            .unwrap()
            .iter()
            .map(|m| m.user_id)
            .collect::<Vec<_>>(),
        vec![ada, cal]
    );
    assert!(
        store
            .channels_visible_to(workspace.id, bob)
            .await
            .unwrap()
            .is_empty(),
        "a private channel disappears from a former member's list"
    );
    assert!(
        store
            .channel_members(Uuid::new_v4())
            .await
            .unwrap()
            .is_empty()
    );
    let lobby = store
        .create_channel(&channel(workspace.id, "lobby", ChannelKind::Public, ada))
        .await
        .unwrap();
    assert_eq!(
        store.channel_access(lobby.id, bob).await.unwrap(),
        ChannelAccess::NotMember,
        "a public channel is visible to every workspace member"
    );
}

pub async fn channels_are_muted_per_member(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let bob = user(store, "bob").await;
    let workspace = workspace_with(store, ada, &[(bob, Role::Member)]).await;
    let general = store
        .create_channel(&channel(workspace.id, "general", ChannelKind::Public, ada))
        .await
        .unwrap();
    store.add_channel_member(general.id, bob).await.unwrap();

    assert!(
        store
            .set_channel_muted(general.id, bob, true)
            .await
            .unwrap()
    );
    let channel_id = general.id;
    let muted = move |user| async move {
        store
            .channel_membership(channel_id, user)
            .await
            .unwrap()
            .map(|m| m.muted)
    };
    assert_eq!(muted(bob).await, Some(true));
    assert_eq!(muted(ada).await, Some(false), "mute is per member");
    let listing = store.channels_visible_to(workspace.id, bob).await.unwrap();
    assert_eq!(listing[0].membership.as_ref().map(|m| m.muted), Some(true));

    assert!(
        store
            .set_channel_muted(general.id, bob, false)
            .await
            .unwrap()
    );
    assert_eq!(muted(bob).await, Some(false));

    let eve = user(store, "eve").await;
    assert!(
        !store
            .set_channel_muted(general.id, eve, true)
            .await
            .unwrap()
    );
    assert_eq!(muted(eve).await, None);
}

pub async fn read_positions_never_decrease(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let bob = user(store, "bob").await;
    let workspace = workspace_with(store, ada, &[(bob, Role::Member)]).await;
    let general = store
        .create_channel(&channel(workspace.id, "general", ChannelKind::Public, ada))
        .await
        .unwrap();

    assert_eq!(store.mark_read(general.id, ada, 5).await.unwrap(), 5);
    assert_eq!(
        store.mark_read(general.id, ada, 3).await.unwrap(),
        5,
        "an older position does not move it back"
    );
    assert_eq!(store.mark_read(general.id, ada, 9).await.unwrap(), 9);
    assert_eq!(
        store
            .channel_membership(general.id, ada)
            .await
            .unwrap()
            .map(|m| m.last_read_seq),
        Some(9)
    );
    let listing = store.channels_visible_to(workspace.id, ada).await.unwrap();
    assert_eq!(
        listing[0].membership.as_ref().map(|m| m.last_read_seq),
        Some(9)
    );
    let random = store
        .create_channel(&channel(workspace.id, "random", ChannelKind::Public, ada))
        .await
        .unwrap();
    let elsewhere = Uuid::new_v4();
    let positions = store
        .read_positions(ada, &[general.id, elsewhere, random.id])
        .await
        .unwrap();
    assert_eq!(
        positions,
        std::collections::HashMap::from([(general.id, 9), (random.id, 0)]),
        "one entry per channel the user is in, none for the others"
    );
    assert!(
        store
            .read_positions(bob, &[general.id, random.id])
            .await
            .unwrap()
            .is_empty(),
        "bob is in neither"
    );

    let not_member = store.mark_read(general.id, bob, 1).await;
    assert!(
        matches!(not_member, Err(StoreError::NotFound(_))),
        "{not_member:?}"
    );
    let no_channel = store.mark_read(Uuid::new_v4(), ada, 1).await;
    assert!(
        matches!(no_channel, Err(StoreError::NotFound(_))),
        "{no_channel:?}"
    );
    assert_eq!(
        store.channel_membership(general.id, bob).await.unwrap(),
        None,
        "marking read does not make a member"
    );
}

pub async fn channel_standing_reads_the_channel_role_and_membership_together(
    store: &dyn MetadataStore,
) {
    let ada = user(store, "ada").await;
    let bob = user(store, "bob").await;
    let outsider = user(store, "eve").await;
    let workspace = workspace_with(store, ada, &[(bob, Role::Admin)]).await;
    let general = store
        .create_channel(&channel(workspace.id, "general", ChannelKind::Private, ada))
        .await
        .unwrap();
    store.mark_read(general.id, ada, 7).await.unwrap();
    store
        .set_channel_muted(general.id, ada, true)
        .await
        .unwrap();

    let owner = store.channel_standing(general.id, ada).await.unwrap();
    assert_eq!(
        owner,
        Some(ChannelStanding {
            channel: store.channel(general.id).await.unwrap().unwrap(),
            role: Some(Role::Owner),
            membership: store.channel_membership(general.id, ada).await.unwrap(),
        }),
        "the same as the three separate reads"
    );
    let membership = owner.unwrap().membership.unwrap();
    assert_eq!((membership.last_read_seq, membership.muted), (7, true));

    let admin = store
        .channel_standing(general.id, bob)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (admin.role, admin.membership),
        (Some(Role::Admin), None),
        "a workspace admin outside the channel"
    );
    let stranger = store
        .channel_standing(general.id, outsider)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stranger.role, stranger.membership), (None, None));
    assert_eq!(stranger.channel.id, general.id);

    assert_eq!(
        store.channel_standing(Uuid::new_v4(), ada).await.unwrap(),
        None,
        "no such channel"
    );

    // Several at once: the same answers, in the order asked, a missing channel as `None`.
    let random = store
        .create_channel(&channel(workspace.id, "random", ChannelKind::Public, bob))
        .await
        .unwrap();
    let missing = Uuid::new_v4();
    let asked = [random.id, missing, general.id, random.id];
    let together = store.channel_standings(&asked, bob).await.unwrap();
    let mut one_by_one = Vec::new();
    for channel in asked {
        one_by_one.push(store.channel_standing(channel, bob).await.unwrap());
    }
    assert_eq!(together, one_by_one);
    assert_eq!(
        together
            .iter()
            .map(|s| s.as_ref().map(|s| s.channel.id))
            .collect::<Vec<_>>(),
        [Some(random.id), None, Some(general.id), Some(random.id)]
    );
    assert!(
        together[0].as_ref().unwrap().membership.is_some(),
        "bob made random"
    );
    assert_eq!(
        store.channel_accesses(&asked, outsider).await.unwrap(),
        [
            store.channel_access(random.id, outsider).await.unwrap(),
            ChannelAccess::Invisible,
            store.channel_access(general.id, outsider).await.unwrap(),
            store.channel_access(random.id, outsider).await.unwrap(),
        ]
    );
    assert!(store.channel_standings(&[], ada).await.unwrap().is_empty());
}
