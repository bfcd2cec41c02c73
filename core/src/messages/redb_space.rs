//! Where a redb file's bytes go: data, B-tree bookkeeping, and space that is allocated but holds
//! nothing (slack inside half-full pages, and free pages waiting for reuse).
//!
//! For the disk benchmark and operators' questions ("why is the file this big?"). Reading it walks
//! every page of the file, so it is not for a hot path.

use redb::Database;

use crate::StoreError;

/// How the pages of a redb file are used, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RedbSpace {
    /// Keys and values of the user tables: what the data itself takes.
    pub stored: u64,
    /// Branch pages, page headers and redb's own tables.
    pub metadata: u64,
    /// Allocated but holding nothing: the unused tail of partly filled pages, and free pages that
    /// later writes reuse (a file never shrinks by itself; `chorus compact` returns free pages).
    pub unused: u64,
    /// Pages in use (free pages are not: they count in `unused`).
    pub allocated: u64,
}

impl RedbSpace {
    /// Reads the space use of `db` (in a write transaction that it then abandons: it waits for
    /// any write in progress).
    pub fn of(db: &Database) -> Result<Self, StoreError> {
        let txn = db.begin_write().map_err(StoreError::backend)?;
        let stats = txn.stats().map_err(StoreError::backend)?;
        txn.abort().map_err(StoreError::backend)?;
        let page = u64::try_from(stats.page_size()).unwrap_or(u64::MAX);
        Ok(RedbSpace {
            stored: stats.stored_bytes(),
            metadata: stats.metadata_bytes(),
            unused: stats.fragmented_bytes(),
            allocated: stats.allocated_pages().saturating_mul(page),
        })
    }
}

#[cfg(test)]
mod tests {
    use redb::TableDefinition;

    use super::*;

    const T: TableDefinition<u64, &[u8]> = TableDefinition::new("t");

    #[test]
    fn stored_bytes_are_keys_and_values_and_deleting_them_frees_pages() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        let write = |range: std::ops::Range<u64>, delete: bool| {
            let txn = db.begin_write().unwrap();
            {
                let mut table = txn.open_table(T).unwrap();
                for key in range {
                    if delete {
                        table.remove(key).unwrap();
                    } else {
                        table.insert(key, [7u8; 100].as_slice()).unwrap();
                    }
                }
            }
            txn.commit().unwrap();
        };
        write(0..1_000, false);
        let full = RedbSpace::of(&db).unwrap();
        assert_eq!(full.stored, 1_000 * (8 + 100));
        write(0..1_000, true);
        // One more commit frees what the deleting one released.
        db.begin_write().unwrap().commit().unwrap();
        let emptied = RedbSpace::of(&db).unwrap();
        assert_eq!(emptied.stored, 0);
        assert!(
            emptied.allocated < full.allocated,
            "{emptied:?} after {full:?}"
        );
    }
}
