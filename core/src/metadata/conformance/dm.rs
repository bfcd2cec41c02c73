//! Direct-message channels.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{sorted, user, workspace_with};
use crate::metadata::MetadataStore;
use crate::model::{ChannelAccess, ChannelKind, Role};

/// The name the contract gives the DM channel of `members`.
fn dm_name(members: &[Uuid]) -> String {
    let key = members
        .iter()
        .map(Uuid::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("dm-{}", &hex[..16])
}

pub async fn direct_messages_are_one_channel_per_set_of_people(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let bob = user(store, "bob").await;
    let cal = user(store, "cal").await;
    let workspace = workspace_with(store, ada, &[(bob, Role::Member), (cal, Role::Member)]).await;
    let pair = sorted(&[bob, ada]);

    let (dm, created) = store.open_dm(workspace.id, &pair, bob).await.unwrap();
    assert!(created);
    assert_eq!(dm.kind, ChannelKind::Dm);
    assert_eq!(dm.name, dm_name(&pair));
    assert_eq!(dm.description, "");
    assert_eq!((dm.workspace_id, dm.created_by), (workspace.id, bob));
    assert_eq!(store.channel(dm.id).await.unwrap().as_ref(), Some(&dm));
    let members: Vec<_> = store
        .channel_members(dm.id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    assert_eq!(sorted(&members), pair, "every participant is a member");
    for participant in [ada, bob] {
        assert_eq!(
            store.channel_access(dm.id, participant).await.unwrap(),
            ChannelAccess::Member { archived: false }
        );
    }
    assert_eq!(
        store.channel_access(dm.id, cal).await.unwrap(),
        ChannelAccess::Invisible,
        "a direct message is invisible to who is not in it"
    );

    let (again, created) = store.open_dm(workspace.id, &pair, ada).await.unwrap();
    assert!(!created, "the second call finds the first channel");
    assert_eq!(again, dm);

    let trio = sorted(&[cal, bob, ada]);
    let (group, created) = store.open_dm(workspace.id, &trio, cal).await.unwrap();
    assert!(created);
    assert_ne!(group.id, dm.id, "another set of people, another channel");
    assert_eq!(group.name, dm_name(&trio));
    assert_eq!(store.channel_members(group.id).await.unwrap().len(), 3);

    let other = workspace_with(store, ada, &[(bob, Role::Member)]).await;
    let (elsewhere, created) = store.open_dm(other.id, &pair, ada).await.unwrap();
    assert!(created, "a conversation belongs to one workspace");
    assert_ne!(elsewhere.id, dm.id);

    let cal_sees: Vec<_> = store
        .channels_visible_to(workspace.id, cal)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.channel.id)
        .collect();
    assert_eq!(cal_sees, vec![group.id], "only the conversations one is in");
    let ada_sees = store.channels_visible_to(workspace.id, ada).await.unwrap();
    assert_eq!(ada_sees.len(), 2);
    assert!(ada_sees.iter().all(|l| l.membership.is_some()));
}

pub async fn concurrent_first_direct_messages_open_one_channel(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let bob = user(store, "bob").await;
    let workspace = workspace_with(store, ada, &[(bob, Role::Member)]).await;
    let pair = sorted(&[ada, bob]);

    let (first, second) = tokio::join!(
        store.open_dm(workspace.id, &pair, ada),
        store.open_dm(workspace.id, &pair, bob),
    );
    let (first, first_created) = first.unwrap();
    let (second, second_created) = second.unwrap();
    assert_eq!(first, second, "both callers get the same channel");
    assert!(
        first_created ^ second_created,
        "exactly one call created it: {first_created} {second_created}"
    );
    assert_eq!(store.channel_members(first.id).await.unwrap().len(), 2);
}
