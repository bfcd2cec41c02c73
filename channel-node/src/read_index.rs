//! Read barriers shared by concurrent readers of one shard replica.
//!
//! A read that must be current (`replay`, `last_seqs`) first confirms that this replica still
//! leads and has applied everything committed before the read arrived — openraft's
//! `ensure_linearizable`, which costs one heartbeat round to the followers. Every identify and
//! resume asks for last seqs, so a connect storm (100,000 clients over six gateways) asked each
//! shard leader for hundreds of rounds a second; on two shared cores the rounds came back too late
//! and reads failed with "not enough for a quorum". Here concurrent reads share rounds, the
//! read-index batching of the Raft thesis (§6.4): a read waits for the next round that *starts
//! after it arrived* (a round already under way may have taken its read index before the read
//! came, so it proves nothing about it), and one round answers every read that was waiting when
//! it started. So a shard runs at most one round at a time and one more queued, however many
//! readers there are.

use std::future::Future;
use std::sync::Arc;

use chorus_cluster::RouteError;
use parking_lot::Mutex;
use tokio::sync::oneshot;

type Waiter = oneshot::Sender<Result<(), RouteError>>;

/// The reads of one replica waiting for a round, and whether a round is under way.
#[derive(Default)]
pub(crate) struct ReadBarriers {
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    round_running: bool,
    /// Reads that arrived after the running round started: the next round answers them.
    waiting: Vec<Waiter>,
}

impl ReadBarriers {
    /// Resolves once a round of `check` that started after this call has succeeded (or with the
    /// round's error). `check` is one confirmation round (`ensure_linearizable`); every caller
    /// passes the same one — the caller that starts the rounds supplies it for all.
    pub async fn wait<F, Fut>(self: &Arc<Self>, check: F) -> Result<(), RouteError>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), RouteError>> + Send + 'static,
    {
        let (reply, outcome) = oneshot::channel();
        let start_rounds = {
            let mut pending = self.pending.lock();
            pending.waiting.push(reply);
            !std::mem::replace(&mut pending.round_running, true)
        };
        if start_rounds {
            tokio::spawn(self.clone().run_rounds(check));
        }
        outcome
            .await
            .unwrap_or_else(|_| Err(RouteError::Unavailable("read barrier stopped".into())))
    }

    /// Runs rounds while reads are waiting, each answering the reads that were waiting when it
    /// started.
    async fn run_rounds<F, Fut>(self: Arc<Self>, check: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<(), RouteError>>,
    {
        loop {
            let readers = {
                let mut pending = self.pending.lock();
                if pending.waiting.is_empty() {
                    pending.round_running = false;
                    return;
                }
                std::mem::take(&mut pending.waiting)
            };
            let outcome = check().await;
            for reader in readers {
                let _ = reader.send(outcome.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::Semaphore;

    type Round = std::pin::Pin<Box<dyn Future<Output = Result<(), RouteError>> + Send>>;

    /// A round that counts itself, then waits until the test lets it finish (a permit of `gate`).
    fn gated_round(
        rounds: &Arc<AtomicUsize>,
        gate: &Arc<Semaphore>,
    ) -> impl Fn() -> Round + Send + 'static {
        let (rounds, gate) = (rounds.clone(), gate.clone());
        move || {
            let (rounds, gate) = (rounds.clone(), gate.clone());
            Box::pin(async move {
                rounds.fetch_add(1, Ordering::SeqCst);
                gate.acquire().await.expect("gate open").forget();
                Ok(())
            })
        }
    }

    async fn until_rounds(rounds: &AtomicUsize, n: usize) {
        while rounds.load(Ordering::SeqCst) < n {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn many_concurrent_reads_share_at_most_two_rounds() {
        let barriers = Arc::new(ReadBarriers::default());
        let (rounds, gate) = (Arc::new(AtomicUsize::new(0)), Arc::new(Semaphore::new(0)));
        // The first read starts a round; the others arrive before it starts (they share it) or
        // while it runs (they share the next).
        let reads: Vec<_> = (0..100)
            .map(|_| {
                let (barriers, round) = (barriers.clone(), gated_round(&rounds, &gate));
                tokio::spawn(async move { barriers.wait(round).await })
            })
            .collect();
        until_rounds(&rounds, 1).await;
        gate.add_permits(100);
        for read in reads {
            assert_eq!(read.await.unwrap(), Ok(()));
        }
        let rounds = rounds.load(Ordering::SeqCst);
        assert!((1..=2).contains(&rounds), "{rounds} rounds for 100 reads");
    }

    #[tokio::test]
    async fn a_read_arriving_during_a_round_waits_for_the_next_one() {
        let barriers = Arc::new(ReadBarriers::default());
        let (rounds, gate) = (Arc::new(AtomicUsize::new(0)), Arc::new(Semaphore::new(0)));
        let first = tokio::spawn({
            let (barriers, round) = (barriers.clone(), gated_round(&rounds, &gate));
            async move { barriers.wait(round).await }
        });
        until_rounds(&rounds, 1).await;
        let second = tokio::spawn({
            let (barriers, round) = (barriers.clone(), gated_round(&rounds, &gate));
            async move { barriers.wait(round).await }
        });
        tokio::task::yield_now().await;
        gate.add_permits(1);
        first.await.unwrap().unwrap();
        until_rounds(&rounds, 2).await;
        assert!(
            !second.is_finished(),
            "the first round proved nothing about the later read"
        );
        gate.add_permits(1);
        second.await.unwrap().unwrap();
        assert_eq!(rounds.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_round_fails_its_reads_and_the_next_read_starts_afresh() {
        let barriers = Arc::new(ReadBarriers::default());
        let refused = || async {
            Err(RouteError::NotLeader {
                leader_hint: Some(2),
            })
        };
        assert_eq!(
            barriers.wait(refused).await,
            Err(RouteError::NotLeader {
                leader_hint: Some(2)
            })
        );
        let (rounds, gate) = (Arc::new(AtomicUsize::new(0)), Arc::new(Semaphore::new(1)));
        assert_eq!(barriers.wait(gated_round(&rounds, &gate)).await, Ok(()));
        assert_eq!(rounds.load(Ordering::SeqCst), 1);
    }
}
