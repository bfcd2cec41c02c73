//! Retention (issue 16, data governance): how long a workspace keeps its history, and which
//! channels are exempt (legal hold).
//!
//! A workspace keeps history forever (the default) or N days. A background job (`src/retention.rs`
//! in the binary) asks the metadata store for every workspace with a policy and its channels
//! ([`RetentionStore::retention_targets`]), asks [`plan`] which channels lose what, deletes that
//! from history (`MessageStore::delete_before`) and records it in the audit log. The decision is
//! here, pure, on an injected clock.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::StoreError;

/// The longest policy accepted: a hundred years (longer is "forever").
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// A workspace's policy and its channels, as the job sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionTarget {
    pub workspace_id: Uuid,
    /// History older than this many days goes: the workspace's policy, shortened to its plan's
    /// cap (`crate::limits`) when it has one.
    pub days: u32,
    /// Every channel of the workspace (DMs and private ones included), with its legal hold.
    pub channels: Vec<ChannelHold>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelHold {
    pub channel_id: Uuid,
    /// Under legal hold: nothing is deleted, whatever the policy.
    pub held: bool,
}

/// What to delete in one channel: every event created before `cutoff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deletion {
    pub channel_id: Uuid,
    pub cutoff: DateTime<Utc>,
}

/// The instant before which a policy of `days` deletes, at `now`.
pub fn cutoff(days: u32, now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::days(i64::from(days))
}

/// Before which instant settled outgoing-webhook deliveries leave the delivery log, for a
/// setting of `keep_days` (`[webhooks] keep_deliveries_days`; 0 keeps them forever).
pub fn delivery_log_cutoff(keep_days: u32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (keep_days > 0).then(|| cutoff(keep_days, now))
}

/// What the job deletes at `now` for one workspace: each channel not under legal hold loses
/// what is older than the policy.
pub fn plan(target: &RetentionTarget, now: DateTime<Utc>) -> Vec<Deletion> {
    let cutoff = cutoff(target.days, now);
    target
        .channels
        .iter()
        .filter(|c| !c.held)
        .map(|c| Deletion {
            channel_id: c.channel_id,
            cutoff,
        })
        .collect()
}

/// Groups (workspace, days, channel) rows, ordered by workspace, into targets (for the stores).
pub fn group_targets(rows: Vec<(Uuid, u32, ChannelHold)>) -> Vec<RetentionTarget> {
    let mut targets: Vec<RetentionTarget> = Vec::new();
    for (workspace_id, days, channel) in rows {
        match targets.last_mut() {
            Some(last) if last.workspace_id == workspace_id => last.channels.push(channel),
            _ => targets.push(RetentionTarget {
                workspace_id,
                days,
                channels: vec![channel],
            }),
        }
    }
    targets
}

/// Checks a policy given over the API: `None` is forever, else 1 to [`MAX_RETENTION_DAYS`].
pub fn valid_days(days: Option<u32>) -> Result<Option<u32>, String> {
    match days {
        Some(d) if !(1..=MAX_RETENTION_DAYS).contains(&d) => Err(format!(
            "days must be 1 to {MAX_RETENTION_DAYS}, or null to keep history forever"
        )),
        other => Ok(other),
    }
}

/// Where policies and legal holds live: the metadata store's database.
#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// The workspace's policy in days; `None`: forever.
    async fn retention_days(&self, workspace: Uuid) -> Result<Option<u32>, StoreError>;
    async fn set_retention_days(
        &self,
        workspace: Uuid,
        days: Option<u32>,
    ) -> Result<(), StoreError>;
    async fn legal_hold(&self, channel: Uuid) -> Result<bool, StoreError>;
    async fn set_legal_hold(&self, channel: Uuid, held: bool) -> Result<(), StoreError>;
    /// Every workspace with a policy or a plan's retention cap, with all its channels and their
    /// holds.
    async fn retention_targets(&self) -> Result<Vec<RetentionTarget>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + day * 86_400, 0).unwrap()
    }

    #[test]
    fn a_policy_of_n_days_cuts_n_days_before_now() {
        assert_eq!(cutoff(30, at(100)), at(70));
        assert_eq!(cutoff(1, at(1)), at(0));
    }

    #[test]
    fn the_delivery_log_keeps_n_days_or_forever() {
        assert_eq!(delivery_log_cutoff(30, at(100)), Some(at(70)));
        assert_eq!(delivery_log_cutoff(0, at(100)), None);
    }

    #[test]
    fn held_channels_lose_nothing() {
        let (open, held) = (Uuid::new_v4(), Uuid::new_v4());
        let target = RetentionTarget {
            workspace_id: Uuid::new_v4(),
            days: 7,
            channels: vec![
                ChannelHold {
                    channel_id: open,
                    held: false,
                },
                ChannelHold {
                    channel_id: held,
                    held: true,
                },
            ],
        };
        assert_eq!(
            plan(&target, at(10)),
            vec![Deletion {
                channel_id: open,
                cutoff: at(3)
            }]
        );
    }

    #[test]
    fn policies_are_forever_or_a_sane_number_of_days() {
        assert_eq!(valid_days(None), Ok(None));
        assert_eq!(valid_days(Some(1)), Ok(Some(1)));
        assert_eq!(
            valid_days(Some(MAX_RETENTION_DAYS)),
            Ok(Some(MAX_RETENTION_DAYS))
        );
        assert!(valid_days(Some(0)).is_err());
        assert!(valid_days(Some(MAX_RETENTION_DAYS + 1)).is_err());
    }
}
