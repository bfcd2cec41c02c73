//! Conformance checks of workspace limits and usage (`crate::limits::WorkspaceLimitsStore`), and
//! of how a plan's retention cap reaches the retention job's targets.

use uuid::Uuid;

use super::{channel, user};
use crate::MetadataStore;
use crate::StoreError;
use crate::bots::NewBot;
use crate::limits::{WorkspaceLimits, WorkspaceUsage};
use crate::model::{ChannelKind, Role};

/// Limits are absent by default, set, replaced and cleared; an unknown workspace is `NotFound`;
/// usage counts people (not bots) and channels (not direct messages).
pub async fn workspace_limits_round_trip_and_usage_counts_people_and_channels(
    store: &dyn MetadataStore,
) {
    let limits = store.limits();
    let owner = user(store, "planner").await;
    let member = user(store, "member").await;
    let workspace = store.create_workspace("Planned", owner).await.unwrap();
    assert_eq!(
        limits.workspace_limits(workspace.id).await.unwrap(),
        WorkspaceLimits::default()
    );

    let plan = WorkspaceLimits {
        max_members: Some(10),
        max_channels: Some(5),
        messages_per_minute: Some(120),
        max_retention_days: None,
    };
    limits
        .set_workspace_limits(workspace.id, &plan)
        .await
        .unwrap();
    assert_eq!(limits.workspace_limits(workspace.id).await.unwrap(), plan);
    let smaller = WorkspaceLimits {
        max_members: None,
        max_channels: Some(2),
        messages_per_minute: None,
        max_retention_days: Some(30),
    };
    limits
        .set_workspace_limits(workspace.id, &smaller)
        .await
        .unwrap();
    assert_eq!(
        limits.workspace_limits(workspace.id).await.unwrap(),
        smaller,
        "a new plan replaces every field"
    );
    assert!(matches!(
        limits
            .set_workspace_limits(Uuid::new_v4(), &plan)
            .await
            .unwrap_err(),
        StoreError::NotFound(_)
    ));

    // Usage: the owner alone, then a member, a bot, two channels and a DM.
    assert_eq!(
        limits.workspace_usage(workspace.id).await.unwrap(),
        WorkspaceUsage {
            members: 1,
            channels: 0
        }
    );
    store
        .set_workspace_member(workspace.id, member, Role::Member)
        .await
        .unwrap();
    store
        .create_bot(&NewBot {
            workspace_id: workspace.id,
            name: "robot".into(),
            description: String::new(),
            avatar_url: None,
            created_by: owner,
        })
        .await
        .unwrap();
    for (name, kind) in [
        ("open", ChannelKind::Public),
        ("closed", ChannelKind::Private),
    ] {
        store
            .create_channel(&channel(workspace.id, name, kind, owner))
            .await
            .unwrap();
    }
    store
        .open_dm(workspace.id, &[owner, member], owner)
        .await
        .unwrap();
    assert_eq!(
        limits.workspace_usage(workspace.id).await.unwrap(),
        WorkspaceUsage {
            members: 2,
            channels: 2
        }
    );

    limits
        .set_workspace_limits(workspace.id, &WorkspaceLimits::default())
        .await
        .unwrap();
    assert_eq!(
        limits.workspace_limits(workspace.id).await.unwrap(),
        WorkspaceLimits::default()
    );
}

/// The retention job's targets use the shorter of a workspace's policy and its plan's cap, and
/// a cap alone makes a workspace a target.
pub async fn retention_caps_shorten_policies_and_apply_alone(store: &dyn MetadataStore) {
    let owner = user(store, "capped").await;
    let capped_only = store.create_workspace("Cap only", owner).await.unwrap();
    let both = store.create_workspace("Both", owner).await.unwrap();
    for workspace in [&capped_only, &both] {
        store
            .create_channel(&channel(
                workspace.id,
                "general",
                ChannelKind::Public,
                owner,
            ))
            .await
            .unwrap();
    }
    let cap = |days| WorkspaceLimits {
        max_retention_days: Some(days),
        ..Default::default()
    };
    store
        .limits()
        .set_workspace_limits(capped_only.id, &cap(60))
        .await
        .unwrap();
    store
        .retention()
        .set_retention_days(both.id, Some(365))
        .await
        .unwrap();
    store
        .limits()
        .set_workspace_limits(both.id, &cap(90))
        .await
        .unwrap();

    let days_of = |targets: &[crate::retention::RetentionTarget], id: Uuid| {
        targets
            .iter()
            .find(|t| t.workspace_id == id)
            .map(|t| t.days)
    };
    let targets = store.retention().retention_targets().await.unwrap();
    assert_eq!(days_of(&targets, capped_only.id), Some(60));
    assert_eq!(days_of(&targets, both.id), Some(90));

    store
        .retention()
        .set_retention_days(both.id, Some(7))
        .await
        .unwrap();
    let targets = store.retention().retention_targets().await.unwrap();
    assert_eq!(
        days_of(&targets, both.id),
        Some(7),
        "a shorter policy is kept"
    );

    store
        .limits()
        .set_workspace_limits(capped_only.id, &WorkspaceLimits::default())
        .await
        .unwrap();
    let targets = store.retention().retention_targets().await.unwrap();
    assert_eq!(days_of(&targets, capped_only.id), None, "no cap, no policy");
}
