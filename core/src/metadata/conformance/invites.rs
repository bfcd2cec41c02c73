//! Invitations: lookup, pending list, acceptance.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::{now_ms, tick, user, workspace_with};
use crate::StoreError;
use crate::metadata::MetadataStore;
use crate::model::{Invite, Role};

pub(super) fn invite(
    workspace_id: Uuid,
    role: Role,
    invited_by: Uuid,
    created_at: DateTime<Utc>,
) -> Invite {
    Invite {
        id: Uuid::now_v7(),
        workspace_id,
        email: format!("guest-{}@example.com", Uuid::new_v4().simple()),
        role,
        token_hash: Uuid::new_v4().simple().to_string(),
        invited_by,
        created_at,
        expires_at: created_at + Duration::days(7),
        accepted_by: None,
        accepted_at: None,
    }
}

pub async fn invites_are_found_by_token_hash(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let workspace = store.create_workspace("Acme", ada).await.unwrap();
    let sent = invite(workspace.id, Role::Member, ada, now_ms());
    store.create_invite(&sent).await.unwrap();
    assert_eq!(
        store.invite_by_token_hash(&sent.token_hash).await.unwrap(),
        Some(sent.clone())
    );
    assert_eq!(store.invite_by_token_hash("unknown").await.unwrap(), None);

    let same_token = Invite {
        id: Uuid::now_v7(),
        ..sent.clone()
    };
    let again = store.create_invite(&same_token).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
}

pub async fn pending_invites_exclude_expired_and_accepted_ones(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let bob = user(store, "bob").await;
    let workspace = store.create_workspace("Acme", ada).await.unwrap();
    let other = store.create_workspace("Other", ada).await.unwrap();
    let now = now_ms();
    let older = invite(workspace.id, Role::Member, ada, now - Duration::hours(2));
    let newer = invite(workspace.id, Role::Guest, ada, now - Duration::hours(1));
    let expired = Invite {
        expires_at: now - Duration::minutes(1),
        ..invite(workspace.id, Role::Member, ada, now - Duration::days(8))
    };
    let accepted = invite(workspace.id, Role::Member, ada, now - Duration::minutes(30));
    let elsewhere = invite(other.id, Role::Member, ada, now);
    for i in [&older, &newer, &expired, &accepted, &elsewhere] {
        store.create_invite(i).await.unwrap();
    }
    assert!(store.accept_invite(accepted.id, bob, now).await.unwrap());

    assert_eq!(
        store.pending_invites(workspace.id, now).await.unwrap(),
        vec![newer.clone(), older.clone()],
        "newest first, without expired, accepted or other workspaces' invitations"
    );
    assert_eq!(
        store
            .pending_invites(workspace.id, older.expires_at)
            .await
            .unwrap(),
        vec![newer],
        "an invitation is no longer pending at its expiry time"
    );
}

pub async fn invites_are_accepted_once(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let bob = user(store, "bob").await;
    let cal = user(store, "cal").await;
    let workspace = store.create_workspace("Acme", ada).await.unwrap();
    let sent = invite(workspace.id, Role::Member, ada, now_ms());
    store.create_invite(&sent).await.unwrap();

    tick().await;
    let at = now_ms();
    assert!(store.accept_invite(sent.id, bob, at).await.unwrap());
    assert_eq!(
        store.workspace_role(workspace.id, bob).await.unwrap(),
        Some(Role::Member)
    );
    let stored = store
        .invite_by_token_hash(&sent.token_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.accepted_by, stored.accepted_at),
        (Some(bob), Some(at))
    );
    let joined = store.workspace_members(workspace.id).await.unwrap();
    assert_eq!(
        joined
            .iter()
            .find(|m| m.user.id == bob)
            .map(|m| m.joined_at),
        Some(at),
        "the invitee joins when they accept"
    );

    assert!(
        !store.accept_invite(sent.id, cal, now_ms()).await.unwrap(),
        "an invitation is accepted once"
    );
    assert_eq!(store.workspace_role(workspace.id, cal).await.unwrap(), None);
    let stored = store
        .invite_by_token_hash(&sent.token_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.accepted_by, stored.accepted_at),
        (Some(bob), Some(at)),
        "the second acceptance changes nothing"
    );
}

pub async fn accepting_an_invite_keeps_a_stronger_role(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let bob = user(store, "bob").await;
    let cal = user(store, "cal").await;
    let workspace = workspace_with(store, ada, &[(bob, Role::Admin), (cal, Role::Guest)]).await;

    let as_guest = invite(workspace.id, Role::Guest, ada, now_ms());
    store.create_invite(&as_guest).await.unwrap();
    assert!(
        store
            .accept_invite(as_guest.id, bob, now_ms())
            .await
            .unwrap()
    );
    assert_eq!(
        store.workspace_role(workspace.id, bob).await.unwrap(),
        Some(Role::Admin),
        "an admin accepting a guest invitation stays admin"
    );

    let as_member = invite(workspace.id, Role::Member, ada, now_ms());
    store.create_invite(&as_member).await.unwrap();
    assert!(
        store
            .accept_invite(as_member.id, cal, now_ms())
            .await
            .unwrap()
    );
    assert_eq!(
        store.workspace_role(workspace.id, cal).await.unwrap(),
        Some(Role::Member),
        "a guest accepting a member invitation becomes a member"
    );

    let to_owner = invite(workspace.id, Role::Member, bob, now_ms());
    store.create_invite(&to_owner).await.unwrap();
    assert!(
        store
            .accept_invite(to_owner.id, ada, now_ms())
            .await
            .unwrap()
    );
    assert_eq!(
        store.workspace_role(workspace.id, ada).await.unwrap(),
        Some(Role::Owner)
    );
    assert_eq!(store.count_owners(workspace.id).await.unwrap(), 1);
}
