//! Group commit: the submits that arrive while the log is busy become one log entry.
//!
//! openraft appends each client write as its own entry and waits for its fsync before the next,
//! so one event per entry caps a channel node at one event per fsync (about a thousand a second
//! on a good disk). The batcher proposes what has queued as one [`Command::PublishBatch`]: an idle
//! node still proposes a lone submit at once, and a busy one fills each fsync with up to
//! [`MAX_BATCH`] events. Order is kept: the queue is FIFO and batches are proposed one after the
//! other; the state machine applies a batch in its order.

use std::sync::Arc;

use chorus_cluster::RouteError;
use openraft::Raft;
use openraft::error::ClientWriteError;
use tokio::sync::{Semaphore, mpsc, oneshot};

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
}

/// Proposes batches until every sender is gone.
pub(crate) async fn run(raft: Raft<TypeConfig>, mut queue: mpsc::UnboundedReceiver<Proposal>) {
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
        let (commands, replies): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .map(|proposal| (proposal.command, proposal.reply))
            .unzip();
        // `client_write_ff` queues the entry before returning: batches enter the log in order.
        match raft.client_write_ff(Command::PublishBatch(commands)).await {
            Ok(response) => {
                tokio::spawn(async move {
                    let _slot = slot;
                    let outcome = match response.await {
                        Ok(Ok(written)) => Ok(written.data),
                        Ok(Err(ClientWriteError::ForwardToLeader(_))) => {
                            Err(RouteError::Unavailable("not the leader".into()))
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
