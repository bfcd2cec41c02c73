//! Group commit: the submits that arrive while the log is busy become one log entry.
//!
//! openraft appends each client write as its own entry and waits for its fsync before the next,
//! so one event per entry caps a channel node at one event per fsync (about a thousand a second
//! on a good disk). The batcher proposes what has queued as one [`Command::PublishBatch`]: an idle
//! node still proposes a lone submit at once, and a busy one fills each fsync with up to
//! [`MAX_BATCH`] events. Order is kept: the queue is FIFO and batches are proposed one after the
//! other; the state machine applies a batch in its order.
//!
//! An outcome is handed back only once the shard's history writer has written and published the
//! batch (`history_writer.rs`): an acknowledged message is in history for REST readers, and its
//! event is on the bus before its ack leaves.

use std::sync::Arc;

use chorus_cluster::RouteError;
use openraft::Raft;
use openraft::error::ClientWriteError;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};

use crate::hand_over::HandOverGate;
use crate::history_writer::WriterStatus;
use crate::raft_types::TypeConfig;
use crate::state::{Command, Outcome, PublishCommand};

/// The most events in one log entry. A batch reaches subscribers as one burst, which their
/// outboxes must absorb (1,024 frames by default, two batches in flight); at a few milliseconds
/// per fsync, 128 events per entry is still tens of thousands of events a second.
pub(crate) const MAX_BATCH: usize = 128;

/// Batches proposed but not yet applied. Two let the log write one batch while the state
/// machine applies the previous one; more would only make each batch smaller.
const BATCHES_IN_FLIGHT: usize = 2;

/// A submit waiting for the log, and where its outcome goes.
pub(crate) struct Proposal {
    pub command: PublishCommand,
    pub reply: oneshot::Sender<Result<Outcome, RouteError>>,
    /// The submit's place among those in flight on this shard, given back with its outcome.
    pub permit: OwnedSemaphorePermit,
}

/// How long an outcome waits for the history writer before the caller is told to retry (with the
/// same nonce, which finds the committed original).
const HISTORY_WAIT: Duration = Duration::from_secs(10);

/// Proposes batches until every sender is gone.
pub(crate) async fn run(
    raft: Raft<TypeConfig>,
    mut queue: mpsc::UnboundedReceiver<Proposal>,
    writer: watch::Receiver<WriterStatus>,
    gate: HandOverGate,
) {
    let in_flight = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT));
    while let Some(first) = queue.recv().await {
        // Waiting for a slot is when a batch grows.
        let Ok(slot) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(proposal) => batch.push(proposal),
                Err(_) => break,
            }
        }
        let mut permits = Vec::with_capacity(batch.len());
        let (commands, replies): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .map(|proposal| {
                permits.push(proposal.permit);
                (proposal.command, proposal.reply)
            })
            .unzip();
        crate::raft_metrics::BATCH
            .batch_events
            .record(replies.len() as f64);
        // While the leadership is handed over, nothing may reach the log (an append renews the
        // followers' leases); the batch waits, and is refused `not_leader` if it moved.
        gate.wait_open().await;
        let proposed = std::time::Instant::now();
        // `client_write_ff` queues the entry before returning: batches enter the log in order.
        match raft.client_write_ff(Command::PublishBatch(commands)).await {
            Ok(response) => {
                let mut writer = writer.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    let _permits = permits;
                    let outcome = match response.await {
                        Ok(Ok(written)) => {
                            crate::raft_metrics::BATCH
                                .commit_seconds
                                .record(proposed.elapsed().as_secs_f64());
                            let epoch = writer.borrow().epoch;
                            let index = written.log_id.index;
                            match wait_for_history(&mut writer, index, epoch).await {
                                Ok(()) => Ok(written.data),
                                Err(err) => Err(err),
                            }
                        }
                        Ok(Err(ClientWriteError::ForwardToLeader(forward))) => {
                            Err(RouteError::NotLeader {
                                leader_hint: forward.leader_id,
                            })
                        }
                        Ok(Err(err)) => Err(RouteError::Internal(err.to_string())),
                        Err(_) => Err(RouteError::Unavailable("raft stopped".into())),
                    };
                    deliver(outcome, replies);
                });
            }
            Err(err) => deliver(Err(RouteError::Unavailable(err.to_string())), replies),
        }
    }
}

/// Waits until the history writer has written the entry at `index`. Fails when this replica
/// stopped leading since `epoch` (the next leader writes it) or the writer takes too long.
async fn wait_for_history(
    writer: &mut watch::Receiver<WriterStatus>,
    index: u64,
    epoch: u64,
) -> Result<(), RouteError> {
    let done = writer.wait_for(|s| s.written_through >= index || (!s.leading && s.epoch > epoch));
    match tokio::time::timeout(HISTORY_WAIT, done).await {
        Ok(Ok(status)) if status.written_through >= index => Ok(()),
        Ok(Ok(_)) => Err(RouteError::NotLeader { leader_hint: None }),
        Ok(Err(_)) => Err(RouteError::Unavailable("raft stopped".into())),
        Err(_) => Err(RouteError::Unavailable(
            "history write is slow; retry with the same nonce".into(),
        )),
    }
}

/// Hands each submit of a batch its own outcome, or the batch's error.
fn deliver(
    outcome: Result<Outcome, RouteError>,
    replies: Vec<oneshot::Sender<Result<Outcome, RouteError>>>,
) {
    let outcomes = match outcome {
        Ok(Outcome::Batch(outcomes)) if outcomes.len() == replies.len() => outcomes,
        Ok(other) => {
            let error = format!("a batch of {} applied as {other:?}", replies.len());
            return fail(&RouteError::Internal(error), replies);
        }
        Err(err) => return fail(&err, replies),
    };
    for (reply, outcome) in replies.into_iter().zip(outcomes) {
        // A caller that stopped waiting is no error: its event is sequenced all the same.
        let _ = reply.send(Ok(outcome));
    }
}

fn fail(err: &RouteError, replies: Vec<oneshot::Sender<Result<Outcome, RouteError>>>) {
    for reply in replies {
        let _ = reply.send(Err(err.clone()));
    }
}
