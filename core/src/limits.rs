//! Workspace limits (issue 16, "plans"): how many members and channels a workspace may have, how
//! many messages per minute it may send, and the longest history it may keep. The instance admin
//! sets them (`PUT /v1/admin/workspaces/{id}/limits`); every field is optional, and an absent one
//! is unlimited, so a workspace without limits behaves as before.
//!
//! Data enters from the metadata store ([`WorkspaceLimitsStore`]: the limits and the current
//! usage) and leaves as decisions: the pure functions here say whether one more member, channel
//! or retention policy fits, and the API and gateway turn a refusal into a stable error code.
//! Message rates are counted by [`quota::MessageQuotas`], shared by REST and WebSocket sends.

pub mod quota;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::StoreError;
use crate::retention::MAX_RETENTION_DAYS;

/// A workspace's plan. `None` in a field: no limit on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceLimits {
    /// People in the workspace (bots are not counted: they are the workspace's own tools).
    pub max_members: Option<u32>,
    /// Public and private channels, archived ones included (they still hold history); direct
    /// messages are not counted, so a full workspace can still talk one to one.
    pub max_channels: Option<u32>,
    /// Messages posted in the whole workspace per minute, over REST and WebSocket together.
    pub messages_per_minute: Option<u32>,
    /// The longest retention policy the workspace may have; with a cap, "keep forever" is not
    /// allowed, and history older than the cap is deleted whatever the workspace's own policy.
    pub max_retention_days: Option<u32>,
}

/// What a workspace uses of its limits now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkspaceUsage {
    /// People (not bots) who are members.
    pub members: u64,
    /// Public and private channels, archived included.
    pub channels: u64,
}

/// Why a change does not fit the plan: each maps to one stable error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitRefusal {
    /// One more member would exceed `max_members`.
    Members { max: u32 },
    /// One more channel would exceed `max_channels`.
    Channels { max: u32 },
    /// The retention policy asked for is longer than the plan's cap (or forever under a cap).
    Retention { max_days: u32 },
}

impl LimitRefusal {
    /// The stable error code the API and docs use.
    pub fn code(&self) -> &'static str {
        match self {
            LimitRefusal::Members { .. } => "workspace_member_limit",
            LimitRefusal::Channels { .. } => "workspace_channel_limit",
            LimitRefusal::Retention { .. } => "retention_exceeds_plan",
        }
    }

    /// For people: what the limit is.
    pub fn message(&self) -> String {
        match self {
            LimitRefusal::Members { max } => {
                format!("this workspace's plan allows at most {max} members")
            }
            LimitRefusal::Channels { max } => {
                format!("this workspace's plan allows at most {max} channels")
            }
            LimitRefusal::Retention { max_days } => format!(
                "this workspace's plan keeps history at most {max_days} days: choose 1 to {max_days}"
            ),
        }
    }
}

/// Whether one more member fits, with `usage.members` members now.
pub fn admit_member(limits: &WorkspaceLimits, usage: &WorkspaceUsage) -> Result<(), LimitRefusal> {
    match limits.max_members {
        Some(max) if usage.members >= u64::from(max) => Err(LimitRefusal::Members { max }),
        _ => Ok(()),
    }
}

/// Whether one more channel fits, with `usage.channels` channels now.
pub fn admit_channel(limits: &WorkspaceLimits, usage: &WorkspaceUsage) -> Result<(), LimitRefusal> {
    match limits.max_channels {
        Some(max) if usage.channels >= u64::from(max) => Err(LimitRefusal::Channels { max }),
        _ => Ok(()),
    }
}

/// Whether a workspace may set the retention policy `days` (`None`: forever) under its plan.
pub fn admit_retention(limits: &WorkspaceLimits, days: Option<u32>) -> Result<(), LimitRefusal> {
    match (limits.max_retention_days, days) {
        (Some(max_days), None) => Err(LimitRefusal::Retention { max_days }),
        (Some(max_days), Some(days)) if days > max_days => {
            Err(LimitRefusal::Retention { max_days })
        }
        _ => Ok(()),
    }
}

/// How long history is really kept: the workspace's policy, shortened to the plan's cap (a plan
/// set after the policy wins). `None`: forever.
pub fn effective_retention_days(policy: Option<u32>, cap: Option<u32>) -> Option<u32> {
    match (policy, cap) {
        (Some(policy), Some(cap)) => Some(policy.min(cap)),
        (policy, cap) => policy.or(cap),
    }
}

/// Checks limits given over the API: every field, when present, at least 1 (0 would forbid the
/// workspace outright: delete the workspace instead), and a retention cap within what a policy
/// may be.
pub fn valid_limits(limits: &WorkspaceLimits) -> Result<(), String> {
    let fields = [
        ("max_members", limits.max_members),
        ("max_channels", limits.max_channels),
        ("messages_per_minute", limits.messages_per_minute),
    ];
    for (name, value) in fields {
        if value == Some(0) {
            return Err(format!("{name} must be at least 1, or null for no limit"));
        }
    }
    match limits.max_retention_days {
        Some(days) if !(1..=MAX_RETENTION_DAYS).contains(&days) => Err(format!(
            "max_retention_days must be 1 to {MAX_RETENTION_DAYS}, or null for no limit"
        )),
        _ => Ok(()),
    }
}

/// Where limits live: the metadata store's database (`migrations/*/0023_workspace_limits.sql`).
#[async_trait]
pub trait WorkspaceLimitsStore: Send + Sync {
    /// The workspace's limits; all `None` when none were set.
    async fn workspace_limits(&self, workspace: Uuid) -> Result<WorkspaceLimits, StoreError>;
    /// Replaces the workspace's limits; all `None` clears them. `NotFound` for no such workspace.
    async fn set_workspace_limits(
        &self,
        workspace: Uuid,
        limits: &WorkspaceLimits,
    ) -> Result<(), StoreError>;
    /// How many members (people) and channels (not DMs) the workspace has now.
    async fn workspace_usage(&self, workspace: Uuid) -> Result<WorkspaceUsage, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(members: u64, channels: u64) -> WorkspaceUsage {
        WorkspaceUsage { members, channels }
    }

    #[test]
    fn no_limits_admit_everything() {
        let none = WorkspaceLimits::default();
        assert_eq!(admit_member(&none, &usage(1_000_000, 0)), Ok(()));
        assert_eq!(admit_channel(&none, &usage(0, 1_000_000)), Ok(()));
        assert_eq!(admit_retention(&none, None), Ok(()));
        assert_eq!(admit_retention(&none, Some(MAX_RETENTION_DAYS)), Ok(()));
    }

    #[test]
    fn members_fit_up_to_the_limit_and_not_beyond() {
        let limits = WorkspaceLimits {
            max_members: Some(3),
            ..Default::default()
        };
        assert_eq!(admit_member(&limits, &usage(2, 99)), Ok(()));
        let refusal = admit_member(&limits, &usage(3, 0)).unwrap_err();
        assert_eq!(refusal, LimitRefusal::Members { max: 3 });
        assert_eq!(refusal.code(), "workspace_member_limit");
        // Already over (the limit was lowered): still refused, never an underflow.
        assert!(admit_member(&limits, &usage(10, 0)).is_err());
    }

    #[test]
    fn channels_fit_up_to_the_limit_and_not_beyond() {
        let limits = WorkspaceLimits {
            max_channels: Some(2),
            ..Default::default()
        };
        assert_eq!(admit_channel(&limits, &usage(99, 1)), Ok(()));
        let refusal = admit_channel(&limits, &usage(0, 2)).unwrap_err();
        assert_eq!(refusal.code(), "workspace_channel_limit");
        assert!(refusal.message().contains("at most 2 channels"));
    }

    #[test]
    fn a_retention_cap_refuses_longer_policies_and_forever() {
        let limits = WorkspaceLimits {
            max_retention_days: Some(90),
            ..Default::default()
        };
        assert_eq!(admit_retention(&limits, Some(1)), Ok(()));
        assert_eq!(admit_retention(&limits, Some(90)), Ok(()));
        assert_eq!(
            admit_retention(&limits, Some(91)),
            Err(LimitRefusal::Retention { max_days: 90 })
        );
        let forever = admit_retention(&limits, None).unwrap_err();
        assert_eq!(forever.code(), "retention_exceeds_plan");
    }

    #[test]
    fn history_is_kept_for_the_shorter_of_policy_and_cap() {
        assert_eq!(effective_retention_days(None, None), None);
        assert_eq!(effective_retention_days(Some(30), None), Some(30));
        assert_eq!(effective_retention_days(None, Some(90)), Some(90));
        assert_eq!(effective_retention_days(Some(30), Some(90)), Some(30));
        assert_eq!(effective_retention_days(Some(365), Some(90)), Some(90));
    }

    #[test]
    fn limits_are_positive_and_the_cap_is_a_sane_number_of_days() {
        assert!(valid_limits(&WorkspaceLimits::default()).is_ok());
        let ok = WorkspaceLimits {
            max_members: Some(1),
            max_channels: Some(1),
            messages_per_minute: Some(1),
            max_retention_days: Some(MAX_RETENTION_DAYS),
        };
        assert!(valid_limits(&ok).is_ok());
        for bad in [
            WorkspaceLimits {
                max_members: Some(0),
                ..ok
            },
            WorkspaceLimits {
                max_channels: Some(0),
                ..ok
            },
            WorkspaceLimits {
                messages_per_minute: Some(0),
                ..ok
            },
            WorkspaceLimits {
                max_retention_days: Some(0),
                ..ok
            },
            WorkspaceLimits {
                max_retention_days: Some(MAX_RETENTION_DAYS + 1),
                ..ok
            },
        ] {
            assert!(valid_limits(&bad).is_err(), "{bad:?}");
        }
    }
}
