//! Conformance checks of retention policies and legal holds (`crate::retention::RetentionStore`).

use super::{channel, user};
use crate::MetadataStore;
use crate::model::ChannelKind;
use crate::retention::ChannelHold;

/// A policy is set, changed and cleared; a hold is set and lifted; the job's targets list every
/// channel of each workspace with a policy (private ones and DMs too) with its hold.
pub async fn retention_policies_and_legal_holds_round_trip(store: &dyn MetadataStore) {
    let retention = store.retention();
    let owner = user(store, "keeper").await;
    let workspace = store.create_workspace("Kept", owner).await.unwrap();
    let other = store.create_workspace("Forever", owner).await.unwrap();
    let public = store
        .create_channel(&channel(
            workspace.id,
            "general",
            ChannelKind::Public,
            owner,
        ))
        .await
        .unwrap();
    let private = store
        .create_channel(&channel(
            workspace.id,
            "secret",
            ChannelKind::Private,
            owner,
        ))
        .await
        .unwrap();
    store
        .create_channel(&channel(other.id, "general", ChannelKind::Public, owner))
        .await
        .unwrap();

    assert_eq!(retention.retention_days(workspace.id).await.unwrap(), None);
    retention
        .set_retention_days(workspace.id, Some(30))
        .await
        .unwrap();
    retention
        .set_retention_days(workspace.id, Some(7))
        .await
        .unwrap();
    assert_eq!(
        retention.retention_days(workspace.id).await.unwrap(),
        Some(7)
    );
    assert!(!retention.legal_hold(private.id).await.unwrap());
    retention.set_legal_hold(private.id, true).await.unwrap();
    retention.set_legal_hold(private.id, true).await.unwrap();
    assert!(retention.legal_hold(private.id).await.unwrap());

    let targets = retention.retention_targets().await.unwrap();
    let mine: Vec<_> = targets
        .iter()
        .filter(|t| t.workspace_id == workspace.id)
        .collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].days, 7);
    let mut channels = mine[0].channels.clone();
    channels.sort_by_key(|c| c.channel_id);
    let mut expected = vec![
        ChannelHold {
            channel_id: public.id,
            held: false,
        },
        ChannelHold {
            channel_id: private.id,
            held: true,
        },
    ];
    expected.sort_by_key(|c| c.channel_id);
    assert_eq!(channels, expected);
    assert!(
        targets.iter().all(|t| t.workspace_id != other.id),
        "no policy, no target"
    );

    retention.set_legal_hold(private.id, false).await.unwrap();
    assert!(!retention.legal_hold(private.id).await.unwrap());
    retention
        .set_retention_days(workspace.id, None)
        .await
        .unwrap();
    assert_eq!(retention.retention_days(workspace.id).await.unwrap(), None);
    let targets = retention.retention_targets().await.unwrap();
    assert!(targets.iter().all(|t| t.workspace_id != workspace.id));
}
