//! A consistent copy of a running embedded node's channel state (`chorus backup`, issue 16): its
//! Raft log file and its state snapshot, taken while the group keeps committing.
//!
//! The log file is open (and locked) by the node, so the copy is made from inside: one redb read
//! transaction sees the whole file as of one commit, and its tables — each group's log (`u64` →
//! entry bytes) and meta (vote, committed, last purged: `&str` → bytes) — are copied into a new
//! file. The snapshot file sits beside the log and is replaced atomically (`write_durably`); a
//! snapshot is always written before the log is purged up to it. So reading the snapshot, copying
//! the log, and reading the snapshot again gives a matching pair when both reads agree: no purge
//! in the copied log can be beyond the snapshot read. When they disagree (a snapshot was taken
//! meanwhile) it tries again.

use std::path::Path;

use redb::{Database, Durability, ReadableTable, TableDefinition, TableError, TableHandle};

/// The state snapshot's file name in a channel data directory (`state_machine.rs`).
const SNAPSHOT_FILE: &str = "state-snapshot.json";
/// The log's file name (`service.rs`).
pub(crate) const LOG_FILE: &str = "raft.redb";
/// Attempts before giving up on a node that snapshots faster than it can be copied.
const ATTEMPTS: usize = 5;
/// Rows copied per write transaction of the copy (bounds the copy's dirty pages in memory).
const ROWS_PER_COMMIT: usize = 10_000;

/// Copies the log (`db`) and the snapshot of `dir` into `dest` (created; must not hold them).
pub(crate) fn copy_channel_state(db: &Database, dir: &Path, dest: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dest).map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    let log_dest = dest.join(LOG_FILE);
    for _ in 0..ATTEMPTS {
        let before = read_snapshot(dir)?;
        if log_dest.exists() {
            std::fs::remove_file(&log_dest).map_err(|e| e.to_string())?;
        }
        copy_log(db, &log_dest)?;
        let after = read_snapshot(dir)?;
        if before == after {
            if let Some(bytes) = after {
                crate::state_machine::write_durably(&dest.join(SNAPSHOT_FILE), &bytes)
                    .map_err(|e| format!("cannot write the snapshot copy: {e}"))?;
            }
            return Ok(());
        }
    }
    Err(format!(
        "a state snapshot was taken during each of {ATTEMPTS} copies of the log; try again"
    ))
}

fn read_snapshot(dir: &Path) -> Result<Option<Vec<u8>>, String> {
    match std::fs::read(dir.join(SNAPSHOT_FILE)) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(format!("cannot read the state snapshot: {err}")),
    }
}

/// Copies every table of `db`, as of one read transaction, into a new file at `dest`.
fn copy_log(db: &Database, dest: &Path) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("copying the Raft log: {e}");
    let read = db.begin_read().map_err(|e| err(&e))?;
    let copy = Database::create(dest).map_err(|e| err(&e))?;
    let names: Vec<String> = read
        .list_tables()
        .map_err(|e| err(&e))?
        .map(|t| t.name().to_string())
        .collect();
    for name in names {
        // A log table, or else a meta table: the only two shapes `log_store.rs` writes.
        match read.open_table(TableDefinition::<u64, &[u8]>::new(&name)) {
            Ok(table) => {
                let out = TableDefinition::<u64, &[u8]>::new(&name);
                let mut rows = table.iter().map_err(|e| err(&e))?.peekable();
                while rows.peek().is_some() {
                    let txn = begin(&copy)?;
                    {
                        let mut out = txn.open_table(out).map_err(|e| err(&e))?;
                        for row in rows.by_ref().take(ROWS_PER_COMMIT) {
                            let (k, v) = row.map_err(|e| err(&e))?;
                            out.insert(k.value(), v.value()).map_err(|e| err(&e))?;
                        }
                    }
                    txn.commit().map_err(|e| err(&e))?;
                }
            }
            Err(TableError::TableTypeMismatch { .. }) => {
                let table = read
                    .open_table(TableDefinition::<&str, &[u8]>::new(&name))
                    .map_err(|e| err(&format!("table {name}: {e}")))?;
                let out = TableDefinition::<&str, &[u8]>::new(&name);
                // Meta tables hold a few keys: one transaction.
                let txn = begin(&copy)?;
                {
                    let mut out = txn.open_table(out).map_err(|e| err(&e))?;
                    for row in table.iter().map_err(|e| err(&e))? {
                        let (k, v) = row.map_err(|e| err(&e))?;
                        out.insert(k.value(), v.value()).map_err(|e| err(&e))?;
                    }
                }
                txn.commit().map_err(|e| err(&e))?;
            }
            Err(e) => return Err(err(&format!("table {name}: {e}"))),
        }
    }
    // An fsync of the whole copy at the end (the rows before it were committed without one).
    let mut txn = copy.begin_write().map_err(|e| err(&e))?;
    txn.set_durability(Durability::Immediate);
    txn.commit().map_err(|e| err(&e))
}

/// A write transaction of the copy without an fsync of its own (the last one syncs them all).
fn begin(copy: &Database) -> Result<redb::WriteTransaction, String> {
    let mut txn = copy
        .begin_write()
        .map_err(|e| format!("writing the Raft log copy: {e}"))?;
    txn.set_durability(Durability::None);
    Ok(txn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::ReadableTableMetadata;

    #[test]
    fn every_table_of_both_shapes_is_copied_with_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join(LOG_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut log = txn
                .open_table(TableDefinition::<u64, &[u8]>::new("raft_log"))
                .unwrap();
            for i in 0..25_000u64 {
                log.insert(i, i.to_be_bytes().as_slice()).unwrap();
            }
            let mut meta = txn
                .open_table(TableDefinition::<&str, &[u8]>::new("raft_meta/g1"))
                .unwrap();
            meta.insert("vote", b"v".as_slice()).unwrap();
        }
        txn.commit().unwrap();
        std::fs::write(dir.path().join(SNAPSHOT_FILE), b"{\"snapshot\":1}").unwrap();

        let dest = dir.path().join("backup");
        copy_channel_state(&db, dir.path(), &dest).unwrap();

        let copy = Database::open(dest.join(LOG_FILE)).unwrap();
        let read = copy.begin_read().unwrap();
        let log = read
            .open_table(TableDefinition::<u64, &[u8]>::new("raft_log"))
            .unwrap();
        assert_eq!(log.len().unwrap(), 25_000);
        assert_eq!(
            log.get(24_999).unwrap().unwrap().value(),
            24_999u64.to_be_bytes()
        );
        let meta = read
            .open_table(TableDefinition::<&str, &[u8]>::new("raft_meta/g1"))
            .unwrap();
        assert_eq!(meta.get("vote").unwrap().unwrap().value(), b"v");
        assert_eq!(
            std::fs::read(dest.join(SNAPSHOT_FILE)).unwrap(),
            b"{\"snapshot\":1}"
        );
    }
}
