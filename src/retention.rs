//! The retention job (issue 16): every `retention_tick_ms` it deletes, from whichever message
//! store the node uses, the history its workspaces' policies no longer keep, and records each
//! deletion in the workspace's audit log (`retention_deleted`). It also empties the outgoing
//! webhooks' delivery log of settled deliveries older than `[webhooks] keep_deliveries_days`
//! (pending ones are the queue and stay).
//!
//! Which channels lose what is decided by `chorus_core::retention::plan` (pure: policies, legal
//! holds, the clock passed in); this is the I/O around it. `Node::retention_tick` runs one tick
//! at a given time, so tests drive it with an explicit clock instead of waiting. A channel whose
//! deletion fails is logged and retried at the next tick; the others go on.

use std::sync::Arc;
use std::time::Duration;

use chorus_core::model::AuditEntry;
use chorus_core::retention::{delivery_log_cutoff, plan};
use chorus_core::{MessageStore, MetadataStore, StoreError};
use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// What one tick did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Channels looked at (those of workspaces with a policy, not under legal hold).
    pub channels: usize,
    /// History events deleted.
    pub deleted: u64,
    /// Channels whose deletion failed (retried at the next tick).
    pub failed: usize,
    /// Settled webhook deliveries removed from the delivery log.
    pub webhook_deliveries: u64,
}

/// Deliveries deleted per statement: a big backlog goes in short transactions.
const PRUNE_BATCH: usize = 1_000;

pub struct RetentionRuntime {
    store: Arc<dyn MetadataStore>,
    messages: Arc<dyn MessageStore>,
    /// `[webhooks] keep_deliveries_days`: 0 keeps the delivery log forever.
    keep_deliveries_days: u32,
}

impl RetentionRuntime {
    pub fn new(
        store: Arc<dyn MetadataStore>,
        messages: Arc<dyn MessageStore>,
        keep_deliveries_days: u32,
    ) -> Self {
        RetentionRuntime {
            store,
            messages,
            keep_deliveries_days,
        }
    }

    /// Applies every workspace's policy, and the delivery log's, as of `now`.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<RetentionReport, StoreError> {
        let mut report = RetentionReport {
            webhook_deliveries: self.prune_delivery_log(now).await?,
            ..RetentionReport::default()
        };
        for target in self.store.retention().retention_targets().await? {
            for deletion in plan(&target, now) {
                report.channels += 1;
                let deleted = match self
                    .messages
                    .delete_before(deletion.channel_id, deletion.cutoff)
                    .await
                {
                    Ok(deleted) => deleted,
                    Err(err) => {
                        tracing::warn!(error = %err, channel = %deletion.channel_id,
                            "retention could not delete history; retried at the next tick");
                        report.failed += 1;
                        continue;
                    }
                };
                if deleted == 0 {
                    continue;
                }
                report.deleted += deleted;
                let entry = AuditEntry {
                    id: Uuid::now_v7(),
                    workspace_id: Some(target.workspace_id),
                    actor_id: None,
                    action: "retention_deleted".into(),
                    target_id: Some(deletion.channel_id),
                    details: json!({
                        "events": deleted,
                        "created_before": chorus_protocol::timestamp::format(&deletion.cutoff),
                        "policy_days": target.days,
                    }),
                    at: now,
                };
                // The deletion is done; a lost audit line is logged loudly, not undone.
                if let Err(err) = self.store.append_audit(&entry).await {
                    tracing::error!(error = %err, "cannot write the retention audit entry");
                }
            }
        }
        if report.deleted > 0 || report.failed > 0 || report.webhook_deliveries > 0 {
            tracing::info!(
                channels = report.channels,
                deleted = report.deleted,
                failed = report.failed,
                webhook_deliveries = report.webhook_deliveries,
                "retention tick"
            );
        }
        Ok(report)
    }

    /// Deletes the settled deliveries older than the setting, batch by batch.
    async fn prune_delivery_log(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let Some(before) = delivery_log_cutoff(self.keep_deliveries_days, now) else {
            return Ok(0);
        };
        let mut pruned = 0;
        loop {
            let batch = self
                .store
                .subscriptions()
                .prune_deliveries(before, PRUNE_BATCH)
                .await?;
            pruned += batch;
            if batch < PRUNE_BATCH as u64 {
                return Ok(pruned);
            }
        }
    }

    /// Ticks every `every` (the first after one interval) until `stop`.
    pub fn spawn(
        self: Arc<Self>,
        every: Duration,
        mut stop: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = interval.tick() => {}
                    _ = stop.wait_for(|stop| *stop) => return,
                }
                if let Err(err) = self.tick(Utc::now()).await {
                    tracing::warn!(error = %err, "retention tick failed; retried at the next one");
                }
            }
        })
    }
}
