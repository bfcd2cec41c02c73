//! One redb file that holds the Raft logs of every group on a node, written by one thread that
//! commits whatever the groups queued meanwhile in one transaction: one fsync for all of them.
//!
//! A channel node of a cluster replicates every shard it hosts; with a file per group, each
//! append of each group paid its own fsync, and the disk, not the CPU, set the pace (tens of
//! groups times hundreds of appends a second against ~300 synchronous writes a second here).
//! Group commit across groups turns those into one fsync per round, and a round gathers
//! whatever arrived while the previous fsync ran.
//!
//! A write that fails fails the whole round (the transaction is abandoned): a log that cannot be
//! written is fatal to its group anyway, and the others find the same disk.

use std::sync::mpsc;
use std::sync::{Arc, Weak};
use std::thread;

use redb::{Database, Durability, WriteTransaction};
use tokio::sync::oneshot;

/// What one round may gather before it commits: enough for every group of a node several times
/// over, few enough that one round's transaction stays small.
const MAX_JOBS_PER_ROUND: usize = 1_024;

/// redb's page cache for the file. Entries are read back once, soon after they are written, and
/// purged after each snapshot; redb's default (1 GiB) would let the cache, and so the node's
/// memory, grow with every entry ever written.
const CACHE_BYTES: usize = 64 * 1024 * 1024;

type Apply = Box<dyn FnOnce(&WriteTransaction) -> Result<(), String> + Send>;

/// One group's change, and where its outcome goes.
struct Job {
    /// Whether the caller needs the change on disk before it hears back.
    durable: bool,
    apply: Apply,
    done: oneshot::Sender<Result<(), String>>,
}

/// A shared Raft log file; clones share the file and its writer.
#[derive(Clone)]
pub struct LogFile {
    db: Arc<Database>,
    jobs: mpsc::Sender<Job>,
}

impl LogFile {
    /// Opens (or creates) the file and starts its writer thread, which ends with the last clone.
    pub fn open(path: &std::path::Path) -> Result<Self, redb::Error> {
        let db = Arc::new(
            Database::builder()
                .set_cache_size(CACHE_BYTES)
                .create(path)?,
        );
        let (jobs, queue) = mpsc::channel();
        // The writer holds the database only while it writes: the file closes when the last
        // clone is dropped, so a node restarted in the same process can open it again at once.
        let writer_db = Arc::downgrade(&db);
        thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || write_rounds(&writer_db, &queue))
            .map_err(redb::Error::Io)?;
        Ok(LogFile { db, jobs })
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    /// Applies `apply` in the next round's transaction and returns once that round committed
    /// (fsynced, when `durable` or when any other job of the round asked for it).
    pub async fn write<F>(&self, durable: bool, apply: F) -> Result<(), String>
    where
        F: FnOnce(&WriteTransaction) -> Result<(), String> + Send + 'static,
    {
        let (done, outcome) = oneshot::channel();
        self.jobs
            .send(Job {
                durable,
                apply: Box::new(apply),
                done,
            })
            .map_err(|_| "the log writer stopped".to_string())?;
        outcome
            .await
            .map_err(|_| "the log writer stopped".to_string())?
    }
}

/// The writer thread: waits for a job, takes every job queued behind it, commits them together.
fn write_rounds(db: &Weak<Database>, queue: &mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut round = vec![first];
        while round.len() < MAX_JOBS_PER_ROUND {
            match queue.try_recv() {
                Ok(job) => round.push(job),
                Err(_) => break,
            }
        }
        let durability = round_durability(round.iter().map(|job| job.durable));
        let mut applies = Vec::with_capacity(round.len());
        let mut replies = Vec::with_capacity(round.len());
        for job in round {
            applies.push(job.apply);
            replies.push(job.done);
        }
        let outcome = match db.upgrade() {
            // Let go of the database before anyone hears back (see `open`).
            Some(db) => commit_round(&db, durability, applies),
            None => Err("the log file is closed".to_string()),
        };
        for reply in replies {
            let _ = reply.send(outcome.clone());
        }
    }
}

fn commit_round(db: &Database, durability: Durability, applies: Vec<Apply>) -> Result<(), String> {
    let mut txn = db.begin_write().map_err(|err| err.to_string())?;
    txn.set_durability(durability);
    for apply in applies {
        apply(&txn)?; // dropping `txn` unapplied abandons the round
    }
    txn.commit().map_err(|err| err.to_string())
}

/// A round is fsynced if any of its jobs needs it; the others ride along for free.
fn round_durability(durable: impl IntoIterator<Item = bool>) -> Durability {
    if durable.into_iter().any(|d| d) {
        Durability::Immediate
    } else {
        Durability::None
    }
}

#[cfg(test)]
mod tests {
    use redb::{ReadableTableMetadata, TableDefinition};

    use super::*;

    const T: TableDefinition<u64, u64> = TableDefinition::new("t");

    #[test]
    fn a_round_is_durable_when_any_job_needs_it() {
        assert!(matches!(
            round_durability([false, true]),
            Durability::Immediate
        ));
        assert!(matches!(round_durability([false, false]), Durability::None));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_all_land_and_a_failing_job_fails_only_its_round() {
        let dir = tempfile::tempdir().unwrap();
        let file = LogFile::open(&dir.path().join("log.redb")).unwrap();
        let writes = (0..200u64).map(|i| {
            let file = file.clone();
            tokio::spawn(async move {
                file.write(i % 2 == 0, move |txn| {
                    let mut table = txn.open_table(T).map_err(|e| e.to_string())?;
                    table.insert(i, i * 10).map_err(|e| e.to_string())?;
                    Ok(())
                })
                .await
            })
        });
        for write in writes.collect::<Vec<_>>() {
            write.await.unwrap().unwrap();
        }
        let failed = file.write(true, |_| Err("refused".to_string())).await;
        assert_eq!(failed, Err("refused".to_string()));
        // The writer goes on after a failed round.
        file.write(true, |txn| {
            let mut table = txn.open_table(T).map_err(|e| e.to_string())?;
            table.insert(1_000, 1).map_err(|e| e.to_string())?;
            Ok(())
        })
        .await
        .unwrap();
        let read = file.db().begin_read().unwrap();
        let table = read.open_table(T).unwrap();
        assert_eq!(table.len().unwrap(), 201);
        assert_eq!(table.get(199).unwrap().unwrap().value(), 1_990);
    }
}
