//! The leader's side effects: writes committed events to the message store, publishes them on the
//! fan-out bus, and confirms them to the group.
//!
//! One writer runs beside every shard replica and acts only while its replica leads. It takes the
//! replicated pending history (`pending_history.rs`) in log order: writes a batch to the store
//! (retrying with backoff while the store is down — the events are safe in the Raft log), then
//! publishes it, then reports how far history is complete ([`WriterStatus::written_through`]) so
//! acknowledgements can be released. Every [`CONFIRM_INTERVAL`] it makes the writes durable
//! (`MessageStore::sync`) and proposes `Command::HistoryWritten`, which lets every replica drop
//! what is confirmed. A replica that becomes leader starts again from the first unconfirmed event,
//! so whatever its predecessor did not finish is written (idempotently) and published (gateways
//! drop what they already delivered).

use std::sync::Arc;
use std::time::Duration;

use chorus_cluster::{BusEvent, FanoutBus};
use chorus_core::MessageStore;
use chorus_protocol::MessageEvent;
use openraft::{Raft, ServerState};
use tokio::sync::watch;

use crate::hand_over::HandOverGate;
use crate::raft_types::{NodeId, TypeConfig};
use crate::state::Command;
use crate::state_machine::StateMachineStore;

/// The most events written to the store in one call.
const WRITE_BATCH: usize = 512;

/// How often written events are made durable and confirmed to the group. Unconfirmed events cost
/// memory on every replica and are rewritten after a leader change; confirming costs a store sync
/// and a log entry.
const CONFIRM_INTERVAL: Duration = Duration::from_millis(200);

/// What the writer has done, for acknowledgements to wait on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct WriterStatus {
    /// This replica leads and writes.
    pub leading: bool,
    /// Raised at every change of `leading`.
    pub epoch: u64,
    /// Every event sequenced at or before this log index is in history and published.
    pub written_through: u64,
}

/// Runs until Raft shuts down.
pub(crate) async fn run(
    node_id: NodeId,
    raft: Raft<TypeConfig>,
    state: StateMachineStore,
    messages: Arc<dyn MessageStore>,
    bus: Arc<dyn FanoutBus>,
    status: watch::Sender<WriterStatus>,
    gate: HandOverGate,
) {
    let mut metrics = raft.metrics();
    let mut applied = state.applied_index();
    // The last log index this replica wrote while leading (None: start from the oldest pending).
    let mut cursor: Option<u64> = None;
    let mut confirmed_at = tokio::time::Instant::now();
    loop {
        let leading = {
            let m = metrics.borrow_and_update();
            if m.state == ServerState::Shutdown {
                return;
            }
            m.state == ServerState::Leader && m.current_leader == Some(node_id)
        };
        if leading != status.borrow().leading {
            cursor = None;
            status.send_modify(|s| {
                s.leading = leading;
                s.epoch += 1;
            });
        }
        if !leading {
            if metrics.changed().await.is_err() {
                return;
            }
            continue;
        }
        applied.borrow_and_update();
        let (batch, applied_through) = state.pending_after(cursor, WRITE_BATCH);
        if let Some(last) = batch.last() {
            let events: Vec<MessageEvent> = batch
                .iter()
                .map(|p| MessageEvent::clone(&p.event))
                .collect();
            if !write(messages.as_ref(), &events, &mut metrics, node_id).await {
                continue; // leadership lost mid-retry: the next leader writes them
            }
            for pending in &batch {
                bus.publish(BusEvent::Message(pending.event.clone())).await;
            }
            cursor = Some(last.index);
        }
        // With nothing (more) pending, history is complete through everything applied so far.
        let through = if batch.len() < WRITE_BATCH {
            applied_through
        } else {
            cursor.unwrap_or(0)
        };
        cursor = Some(cursor.unwrap_or(0).max(through));
        if status.borrow().written_through < through {
            status.send_modify(|s| s.written_through = through);
        }
        if !batch.is_empty() && batch.len() >= WRITE_BATCH {
            continue; // more is waiting
        }
        let written = status.borrow().written_through;
        let confirm_due = confirmed_at.elapsed() >= CONFIRM_INTERVAL;
        if confirm_due && state.has_unconfirmed_through(written) {
            confirmed_at = tokio::time::Instant::now();
            // Not while the leadership is handed over (a log entry renews the followers'
            // leases): the next interval confirms it, here or on the next leader.
            if !gate.is_closed() {
                confirm(&raft, messages.as_ref(), written).await;
            }
            continue;
        }
        let confirm_wait = if state.has_unconfirmed_through(written) {
            CONFIRM_INTERVAL.saturating_sub(confirmed_at.elapsed())
        } else {
            Duration::from_secs(3600)
        };
        tokio::select! {
            changed = applied.changed() => if changed.is_err() { return },
            changed = metrics.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(confirm_wait) => {}
        }
    }
}

/// Writes events, retrying while the store refuses. False if leadership was lost meanwhile.
async fn write(
    messages: &dyn MessageStore,
    events: &[MessageEvent],
    metrics: &mut watch::Receiver<openraft::RaftMetrics<NodeId, openraft::BasicNode>>,
    node_id: NodeId,
) -> bool {
    let mut delay = Duration::from_millis(50);
    loop {
        match messages.append_replayable(events).await {
            Ok(()) => return true,
            Err(err) => {
                tracing::error!(error = %err, retry_in_ms = delay.as_millis() as u64, "message store write failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
                let m = metrics.borrow();
                if m.state != ServerState::Leader || m.current_leader != Some(node_id) {
                    return false;
                }
            }
        }
    }
}

/// Makes history durable through `through` and tells the group. Best effort: a confirmation that
/// fails is simply made again later (until then the events stay pending everywhere).
async fn confirm(raft: &Raft<TypeConfig>, messages: &dyn MessageStore, through: u64) {
    if let Err(err) = messages.sync().await {
        tracing::warn!(error = %err, "message store sync failed; confirmation postponed");
        return;
    }
    if let Err(err) = raft
        .client_write_ff(Command::HistoryWritten { through })
        .await
    {
        tracing::debug!(error = %err, "history confirmation not proposed");
    }
}
