//! `chorus compact`: gives a stopped embedded node's free disk space back to the filesystem.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chorus_core::RedbMessageStore;

/// The redb files of an embedded node's data directory: its history and its Raft log.
pub fn files_of(data_dir: &Path) -> [PathBuf; 2] {
    [
        data_dir.join("messages.redb"),
        data_dir.join("channels").join("raft.redb"),
    ]
}

/// Compacts each file that exists and prints its size before and after.
pub fn run(data_dir: &Path) -> anyhow::Result<()> {
    let mut found = false;
    for path in files_of(data_dir) {
        if !path.exists() {
            continue;
        }
        found = true;
        let (before, after) = RedbMessageStore::compact_file(&path)
            .with_context(|| format!("compacting {}", path.display()))?;
        println!(
            "{}: {:.1} MB -> {:.1} MB on disk",
            path.display(),
            before as f64 / 1e6,
            after as f64 / 1e6
        );
    }
    anyhow::ensure!(
        found,
        "no redb file in {} (messages.redb, channels/raft.redb)",
        data_dir.display()
    );
    Ok(())
}
