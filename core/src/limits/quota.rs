//! A workspace's messages per minute ([`super::WorkspaceLimits::messages_per_minute`]), counted
//! for every send of the workspace wherever it arrives: REST posts and WebSocket sends of one
//! process share one [`MessageQuotas`], and processes share the counter behind it (Redis when a
//! deployment configures `rate_limit_url`, this process otherwise).
//!
//! Each send asks for its channel's workspace and that workspace's quota. The channel's workspace
//! never changes, so it is remembered; the quota is remembered for [`LIMITS_TTL`], so a send costs
//! no metadata query in the common case and a changed plan reaches every process within that
//! time (at once on the process that changed it: [`MessageQuotas::forget`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use uuid::Uuid;

use crate::MetadataStore;

/// How long a workspace's quota is trusted before it is read again.
pub const LIMITS_TTL: Duration = Duration::from_secs(5);

/// Entries remembered before the caches are emptied (they refill from the store).
const MAX_CACHED: usize = 100_000;

/// Counts events against a per-minute quota (GCRA, a burst of the quota), keyed.
#[async_trait]
pub trait QuotaCounter: Send + Sync + 'static {
    /// Counts one event for `key` under `per_minute`; `Err(wait)` when over it.
    async fn check(&self, key: &str, per_minute: u32) -> Result<(), Duration>;
}

/// A send refused because its workspace is over its messages per minute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaExceeded {
    pub workspace_id: Uuid,
    pub per_minute: u32,
    /// How long until the workspace may send again.
    pub retry_after: Duration,
}

impl QuotaExceeded {
    /// The stable error code, over REST and WebSocket alike.
    pub const CODE: &'static str = "workspace_message_limit";

    pub fn message(&self) -> String {
        format!(
            "this workspace's plan allows {} messages per minute; retry later",
            self.per_minute
        )
    }
}

/// Whether a quota read at `read_at` may still be used at `now`.
fn fresh(read_at: Instant, now: Instant) -> bool {
    now.saturating_duration_since(read_at) < LIMITS_TTL
}

/// The per-workspace message quotas of one process.
pub struct MessageQuotas {
    store: Arc<dyn MetadataStore>,
    counter: Arc<dyn QuotaCounter>,
    /// Channel → its workspace (never changes).
    workspaces: Mutex<HashMap<Uuid, Uuid>>,
    /// Workspace → its messages per minute, and when that was read.
    quotas: Mutex<HashMap<Uuid, (Instant, Option<u32>)>>,
}

impl MessageQuotas {
    pub fn new(store: Arc<dyn MetadataStore>, counter: Arc<dyn QuotaCounter>) -> Self {
        MessageQuotas {
            store,
            counter,
            workspaces: Mutex::new(HashMap::new()),
            quotas: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one message sent to `channel` against its workspace's quota. A workspace without
    /// one, an unknown channel (its sender is refused elsewhere) and a store that cannot answer
    /// (logged) all let the message through: the quota is a plan, not a safety limit.
    pub async fn check_send(&self, channel: Uuid) -> Result<(), QuotaExceeded> {
        let Some(workspace_id) = self.workspace_of(channel).await else {
            return Ok(());
        };
        let Some(per_minute) = self.quota_of(workspace_id).await else {
            return Ok(());
        };
        self.counter
            .check(&workspace_id.to_string(), per_minute)
            .await
            .map_err(|retry_after| QuotaExceeded {
                workspace_id,
                per_minute,
                retry_after,
            })
    }

    /// Drops what is remembered of `workspace`'s quota (after its limits changed here).
    pub fn forget(&self, workspace: Uuid) {
        self.quotas.lock().expect("not poisoned").remove(&workspace);
    }

    async fn workspace_of(&self, channel: Uuid) -> Option<Uuid> {
        if let Some(&workspace) = self.workspaces.lock().expect("not poisoned").get(&channel) {
            return Some(workspace);
        }
        let workspace = match self.store.channel(channel).await {
            Ok(found) => found?.workspace_id,
            Err(err) => {
                tracing::warn!(error = %err, "channel lookup for the workspace quota failed");
                return None;
            }
        };
        let mut workspaces = self.workspaces.lock().expect("not poisoned");
        if workspaces.len() >= MAX_CACHED {
            workspaces.clear();
        }
        workspaces.insert(channel, workspace);
        Some(workspace)
    }

    async fn quota_of(&self, workspace: Uuid) -> Option<u32> {
        let now = Instant::now();
        if let Some(&(read_at, quota)) = self.quotas.lock().expect("not poisoned").get(&workspace)
            && fresh(read_at, now)
        {
            return quota;
        }
        let quota = match self.store.limits().workspace_limits(workspace).await {
            Ok(limits) => limits.messages_per_minute,
            Err(err) => {
                tracing::warn!(error = %err, "workspace limits lookup failed");
                return None;
            }
        };
        let mut quotas = self.quotas.lock().expect("not poisoned");
        if quotas.len() >= MAX_CACHED {
            quotas.clear();
        }
        quotas.insert(workspace, (now, quota));
        quota
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteMetadataStore;
    use crate::limits::WorkspaceLimits;
    use crate::metadata::NewChannel;
    use crate::model::ChannelKind;

    /// Allows `per_minute` events per key, then refuses (no refill: tests are shorter than a
    /// minute).
    #[derive(Default)]
    struct Counting(Mutex<HashMap<String, u32>>);

    #[async_trait]
    impl QuotaCounter for Counting {
        async fn check(&self, key: &str, per_minute: u32) -> Result<(), Duration> {
            let mut counts = self.0.lock().unwrap();
            let count = counts.entry(key.to_string()).or_default();
            *count += 1;
            if *count > per_minute {
                Err(Duration::from_secs(1))
            } else {
                Ok(())
            }
        }
    }

    #[test]
    fn a_quota_is_trusted_for_the_ttl_only() {
        let read = Instant::now();
        assert!(fresh(read, read));
        assert!(fresh(read, read + LIMITS_TTL - Duration::from_millis(1)));
        assert!(!fresh(read, read + LIMITS_TTL));
    }

    #[tokio::test]
    async fn sends_count_per_workspace_and_a_change_applies_after_forget() {
        let store = Arc::new(SqliteMetadataStore::in_memory().await.unwrap());
        let owner = store.create_user("q@example.com", "Q", "h").await.unwrap();
        let workspace = store.create_workspace("Q", owner.id).await.unwrap();
        let channel = |name: &str| NewChannel {
            workspace_id: workspace.id,
            name: name.into(),
            description: String::new(),
            kind: ChannelKind::Public,
            created_by: owner.id,
        };
        let a = store.create_channel(&channel("a")).await.unwrap();
        let b = store.create_channel(&channel("b")).await.unwrap();
        let quotas = MessageQuotas::new(store.clone(), Arc::new(Counting::default()));

        // No limit: nothing is counted.
        for _ in 0..5 {
            assert_eq!(quotas.check_send(a.id).await, Ok(()));
        }
        let limits = WorkspaceLimits {
            messages_per_minute: Some(2),
            ..Default::default()
        };
        store
            .limits()
            .set_workspace_limits(workspace.id, &limits)
            .await
            .unwrap();
        quotas.forget(workspace.id);
        // Two channels, one workspace, one quota.
        assert_eq!(quotas.check_send(a.id).await, Ok(()));
        assert_eq!(quotas.check_send(b.id).await, Ok(()));
        let refused = quotas.check_send(a.id).await.unwrap_err();
        assert_eq!(refused.workspace_id, workspace.id);
        assert_eq!(refused.per_minute, 2);
        // An unknown channel is not this module's to refuse.
        assert_eq!(quotas.check_send(Uuid::new_v4()).await, Ok(()));
    }
}
