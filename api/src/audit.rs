//! Writing the audit log (RF-01.6). Entries never carry secrets: no password, token or hash.

use chorus_core::model::AuditEntry;
use chrono::Utc;
use uuid::Uuid;

use crate::AppState;

/// What to record.
pub struct Audit<'a> {
    pub workspace_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub action: &'a str,
    pub target_id: Option<Uuid>,
    pub details: serde_json::Value,
}

/// Appends an entry. The action it records has already happened, so a failure to record it is
/// logged loudly rather than turned into an error for a request that did its work.
pub async fn record(state: &AppState, audit: Audit<'_>) {
    let entry = AuditEntry {
        id: Uuid::now_v7(),
        workspace_id: audit.workspace_id,
        actor_id: audit.actor_id,
        action: audit.action.to_string(),
        target_id: audit.target_id,
        details: audit.details,
        at: Utc::now(),
    };
    if let Err(err) = state.api.store.append_audit(&entry).await {
        tracing::error!(error = %err, action = %entry.action, "cannot write audit entry");
    }
}
