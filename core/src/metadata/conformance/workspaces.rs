//! Renaming workspaces, listing and removing members, counting owners.

use uuid::Uuid;

use super::{channel, sorted, tick, user, workspace_with};
use crate::StoreError;
use crate::metadata::MetadataStore;
use crate::model::{ChannelAccess, ChannelKind, Role};

pub async fn workspaces_are_renamed(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let workspace = store.create_workspace("Acme", ada).await.unwrap();
    let renamed = store
        .rename_workspace(workspace.id, "Acme Corp")
        .await
        .unwrap();
    assert_eq!(renamed.name, "Acme Corp");
    assert_eq!(
        (renamed.id, renamed.created_by, renamed.created_at),
        (workspace.id, workspace.created_by, workspace.created_at)
    );
    assert_eq!(store.workspace(workspace.id).await.unwrap(), Some(renamed));
    let missing = store.rename_workspace(Uuid::new_v4(), "Nope").await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

pub async fn workspace_members_are_listed_with_their_roles(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let bob = user(store, "bob").await;
    let cal = user(store, "cal").await;
    let outsider = user(store, "eve").await;
    let workspace = workspace_with(store, ada, &[(bob, Role::Admin), (cal, Role::Guest)]).await;
    store.create_workspace("Elsewhere", outsider).await.unwrap();

    let members = store.workspace_members(workspace.id).await.unwrap();
    let summary: Vec<_> = members.iter().map(|m| (m.user.id, m.role)).collect();
    assert_eq!(
        summary,
        vec![(ada, Role::Owner), (bob, Role::Admin), (cal, Role::Guest)],
        "oldest member first"
    );
    for member in &members {
        assert_eq!(
            Some(&member.user),
            store.user(member.user.id).await.unwrap().as_ref(),
            "each member comes with their profile"
        );
    }
    assert_eq!(members[0].joined_at, workspace.created_at);
    assert!(members[0].joined_at < members[1].joined_at);
    assert!(members[1].joined_at < members[2].joined_at);

    assert_eq!(store.count_owners(workspace.id).await.unwrap(), 1);
    store
        .set_workspace_member(workspace.id, bob, Role::Owner)
        .await
        .unwrap();
    assert_eq!(store.count_owners(workspace.id).await.unwrap(), 2);
    let bob_now = store.workspace_members(workspace.id).await.unwrap();
    assert_eq!(
        bob_now[1].joined_at, members[1].joined_at,
        "a role change keeps the join time"
    );
    assert_eq!(store.count_owners(Uuid::new_v4()).await.unwrap(), 0);
    assert!(
        store
            .workspace_members(Uuid::new_v4())
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn removed_members_leave_every_channel_of_the_workspace(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let bob = user(store, "bob").await;
    let workspace = workspace_with(store, ada, &[(bob, Role::Member)]).await;
    let other = workspace_with(store, ada, &[(bob, Role::Member)]).await;
    let general = store
        .create_channel(&channel(workspace.id, "general", ChannelKind::Public, ada))
        .await
        .unwrap();
    let secret = store
        .create_channel(&channel(workspace.id, "secret", ChannelKind::Private, ada))
        .await
        .unwrap();
    let elsewhere = store
        .create_channel(&channel(other.id, "general", ChannelKind::Public, ada))
        .await
        .unwrap();
    for c in [&general, &secret, &elsewhere] {
        tick().await;
        store.add_channel_member(c.id, bob).await.unwrap();
    }
    let (dm, _) = store
        .open_dm(workspace.id, &sorted(&[ada, bob]), ada)
        .await
        .unwrap();

    assert!(
        store
            .remove_workspace_member(workspace.id, bob)
            .await
            .unwrap()
    );
    assert_eq!(store.workspace_role(workspace.id, bob).await.unwrap(), None);
    for c in [general.id, secret.id, dm.id] {
        assert_eq!(
            store.channel_access(c, bob).await.unwrap(),
            ChannelAccess::Invisible
        );
        assert_eq!(store.channel_membership(c, bob).await.unwrap(), None);
    }
    let secret_members: Vec<_> = store
        .channel_members(secret.id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    assert_eq!(secret_members, vec![ada]);
    assert_eq!(
        store.channel_ids_of(bob).await.unwrap(),
        vec![elsewhere.id],
        "memberships in other workspaces stay"
    );
    assert_eq!(
        store.channel_access(elsewhere.id, bob).await.unwrap(),
        ChannelAccess::Member { archived: false }
    );
    assert!(
        store
            .workspace_members(workspace.id)
            .await
            .unwrap()
            .iter()
            .all(|m| m.user.id != bob)
    );

    assert!(
        !store
            .remove_workspace_member(workspace.id, bob)
            .await
            .unwrap(),
        "removing a non-member reports false"
    );
}
