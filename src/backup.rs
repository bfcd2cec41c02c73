//! Backup and restore of an embedded node (issue 16): `chorus backup` while it runs, `chorus
//! restore` into a data directory.
//!
//! The node's files are open — redb locks its files, SQLite is being written — so the copy is
//! made by the node itself, asked over its API (`POST /v1/admin/backup`, the operator token):
//! each store is copied as of one read transaction of its own (`ChannelService::backup` for the
//! Raft log with its snapshot, `RedbMessageStore::backup_to` for history, SQLite's `VACUUM INTO`
//! for metadata) into `<dest>.partial`, which is renamed to `dest` only once every file is
//! fsynced: a directory named `dest` is always a whole backup.
//!
//! **Order, and what a backup holds.** The Raft log is copied first, history second: history is
//! written only after an entry is committed and acknowledged only after history holds it, so
//! every message acknowledged before the backup began is in the log copy and in the history copy,
//! and every event the log copy's state still owes history (its pending history) is rewritten by
//! the restored node. History may also hold events committed while the log was being copied; the
//! restored channel state does not know them, and sequences new events over their seqs (history
//! is keyed by (channel, seq), so a write replaces them). Metadata is copied last, so it knows
//! every channel the log copy does.
//!
//! Restore is a copy of the backup's files into an empty data directory (or, with `force`, over
//! the files of one); the node started on it recovers as after a crash.

use std::path::{Path, PathBuf};

use anyhow::Context;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chorus_api::ApiError;
use chorus_channel_node::ChannelService;
use chorus_core::{RedbMessageStore, SqliteMetadataStore};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The manifest every backup directory holds, written last.
pub const MANIFEST: &str = "backup.json";
/// The manifest's `format`.
pub const FORMAT: &str = "chorus-backup/1";

/// The files of a data directory a backup holds (relative paths), besides the manifest.
const FILES: [&str; 5] = [
    "metadata.db",
    "messages.redb",
    "channels/raft.redb",
    "channels/state-snapshot.json",
    "jwt-secret",
];

/// What a backup says about itself.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub format: String,
    pub taken_at: DateTime<Utc>,
    /// History events copied.
    pub events: u64,
    /// The files present, relative to the backup directory.
    pub files: Vec<String>,
}

/// The stores of an embedded node that a backup copies. Built by `Node::start` when every store
/// is embedded; `None` there when one is not (PostgreSQL, ScyllaDB: their own tools back them up).
#[derive(Clone)]
pub struct EmbeddedStores {
    pub data_dir: PathBuf,
    /// The SQLite metadata file.
    pub metadata: PathBuf,
    pub history: RedbMessageStore,
    pub channels: ChannelService,
    /// The operator token that authorises `POST /v1/admin/backup`.
    pub admin_token: Option<String>,
}

impl EmbeddedStores {
    /// Makes a backup in `dest`, which must not exist yet.
    pub async fn backup(&self, dest: &Path) -> anyhow::Result<Manifest> {
        anyhow::ensure!(dest.is_absolute(), "the backup path must be absolute");
        anyhow::ensure!(
            !dest.exists(),
            "{} exists: a backup goes into a new directory",
            dest.display()
        );
        let partial = partial_path(dest);
        if partial.exists() {
            // A backup that failed half-way: never a backup, safe to replace.
            std::fs::remove_dir_all(&partial)
                .with_context(|| format!("cannot remove {}", partial.display()))?;
        }
        std::fs::create_dir_all(&partial)
            .with_context(|| format!("cannot create {}", partial.display()))?;
        let taken_at = Utc::now();
        // 1. The Raft log and snapshot, 2. history, 3. metadata (see the module docs).
        self.channels
            .backup(&partial.join("channels"))
            .await
            .map_err(anyhow::Error::msg)
            .context("copying the channel service's Raft log")?;
        let history = self.history.clone();
        let history_dest = partial.join("messages.redb");
        let events = tokio::task::spawn_blocking(move || history.backup_to(&history_dest))
            .await?
            .context("copying history")?;
        SqliteMetadataStore::backup_file(&self.metadata, &partial.join("metadata.db"))
            .await
            .context("copying the metadata database")?;
        let secret = self.data_dir.join("jwt-secret");
        if secret.exists() {
            std::fs::copy(&secret, partial.join("jwt-secret")).context("copying jwt-secret")?;
        }
        let manifest = Manifest {
            format: FORMAT.into(),
            taken_at,
            events,
            files: present(&partial),
        };
        write_synced(
            &partial.join(MANIFEST),
            &serde_json::to_vec_pretty(&manifest)?,
        )?;
        sync_tree(&partial)?;
        std::fs::rename(&partial, dest)
            .with_context(|| format!("cannot rename the backup to {}", dest.display()))?;
        if let Some(parent) = dest.parent() {
            std::fs::File::open(parent)?.sync_all()?;
        }
        Ok(manifest)
    }
}

fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    dest.with_file_name(name)
}

/// The backup files present under `dir`.
fn present(dir: &Path) -> Vec<String> {
    FILES
        .iter()
        .filter(|f| dir.join(f).exists())
        .map(|f| (*f).to_string())
        .collect()
}

fn write_synced(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

/// fsyncs every file named in [`FILES`] under `dir`, and the directories holding them.
fn sync_tree(dir: &Path) -> anyhow::Result<()> {
    for file in present(dir) {
        std::fs::File::open(dir.join(&file))?.sync_all()?;
    }
    for sub in [dir.join("channels"), dir.to_owned()] {
        if sub.exists() {
            std::fs::File::open(&sub)?.sync_all()?;
        }
    }
    Ok(())
}

/// What a restore would do to a data directory, decided from its entries (pure).
#[derive(Debug, PartialEq, Eq)]
pub enum RestorePlan {
    /// Empty or missing: copy.
    Copy,
    /// Not empty, forced: remove these backup files first, then copy.
    Replace(Vec<String>),
}

/// Refuses a data directory that holds anything unless `force`; forced, only the files a backup
/// holds are replaced (other files, such as a config file kept there, stay).
pub fn plan_restore(entries: &[String], force: bool) -> Result<RestorePlan, String> {
    if entries.is_empty() {
        return Ok(RestorePlan::Copy);
    }
    if !force {
        return Err(format!(
            "the data directory is not empty ({}): restore into an empty one, or pass --force \
             to replace its data files",
            entries.join(", ")
        ));
    }
    Ok(RestorePlan::Replace(
        FILES.iter().map(|f| (*f).to_string()).collect(),
    ))
}

/// Restores the backup at `from` into the data directory `to` (the node must be stopped).
pub fn restore(from: &Path, to: &Path, force: bool) -> anyhow::Result<Manifest> {
    let manifest: Manifest = serde_json::from_slice(
        &std::fs::read(from.join(MANIFEST))
            .with_context(|| format!("{} is not a backup (no {MANIFEST})", from.display()))?,
    )
    .context("unreadable backup manifest")?;
    anyhow::ensure!(
        manifest.format == FORMAT,
        "backup format {:?} is not {FORMAT}",
        manifest.format
    );
    let entries: Vec<String> = match std::fs::read_dir(to) {
        Ok(dir) => dir
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(err) => return Err(err).context(format!("cannot read {}", to.display())),
    };
    if let RestorePlan::Replace(files) =
        plan_restore(&entries, force).map_err(anyhow::Error::msg)?
    {
        for file in files {
            match std::fs::remove_file(to.join(&file)) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(err).context(format!("cannot remove {file}")),
            }
        }
        // SQLite's WAL beside an old metadata.db belongs to that database, not to the backup's.
        for stale in ["metadata.db-wal", "metadata.db-shm"] {
            let _ = std::fs::remove_file(to.join(stale));
        }
    }
    std::fs::create_dir_all(to.join("channels"))?;
    for file in &manifest.files {
        anyhow::ensure!(FILES.contains(&file.as_str()), "unexpected file {file:?}");
        std::fs::copy(from.join(file), to.join(file))
            .with_context(|| format!("cannot copy {file}"))?;
    }
    sync_tree(to)?;
    Ok(manifest)
}

/// `POST /v1/admin/backup` on the embedded node's API.
pub fn routes(stores: EmbeddedStores) -> Router {
    Router::new()
        .route("/v1/admin/backup", post(take))
        .with_state(stores)
}

/// The body of `POST /v1/admin/backup`.
#[derive(Debug, Serialize, Deserialize)]
pub struct BackupRequest {
    /// An absolute path on the node's host that does not exist yet.
    pub path: PathBuf,
}

async fn take(
    State(stores): State<EmbeddedStores>,
    headers: HeaderMap,
    body: Result<Json<BackupRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Manifest>), ApiError> {
    chorus_api::authorise_operator(stores.admin_token.as_deref(), &headers)?;
    let Json(request) =
        body.map_err(|err| ApiError::bad_request("invalid_body", err.body_text()))?;
    if !request.path.is_absolute() {
        return Err(ApiError::bad_request(
            "invalid_path",
            "the backup path must be absolute",
        ));
    }
    if request.path.exists() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "backup_exists",
            "the backup path exists: a backup goes into a new directory",
        ));
    }
    match stores.backup(&request.path).await {
        Ok(manifest) => {
            tracing::info!(path = %request.path.display(), events = manifest.events, "backup taken");
            Ok((StatusCode::CREATED, Json(manifest)))
        }
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "backup failed");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "backup_failed",
                format!("{err:#}"),
            ))
        }
    }
}

/// What `chorus backup` does: asks the node at `api` to back itself up into `path`.
pub async fn request(api: &str, admin_token: &str, path: &Path) -> anyhow::Result<Manifest> {
    let url = format!("{}/v1/admin/backup", api.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .post(&url)
        .header(chorus_api::ADMIN_TOKEN_HEADER, admin_token)
        .json(&BackupRequest {
            path: path.to_owned(),
        })
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let body = response.text().await?;
    anyhow::ensure!(
        status == StatusCode::CREATED,
        "backup refused: {status} {body}"
    );
    serde_json::from_str(&body).context("unreadable answer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_directory_is_restored_into_and_a_full_one_only_when_forced() {
        assert_eq!(plan_restore(&[], false), Ok(RestorePlan::Copy));
        let full = vec!["metadata.db".to_string(), "chorus.toml".to_string()];
        let refusal = plan_restore(&full, false).unwrap_err();
        assert!(refusal.contains("--force") && refusal.contains("chorus.toml"));
        let RestorePlan::Replace(files) = plan_restore(&full, true).unwrap() else {
            panic!("forced restore replaces")
        };
        // Only data files are replaced: the config file stays.
        assert!(files.contains(&"metadata.db".to_string()));
        assert!(!files.contains(&"chorus.toml".to_string()));
    }

    #[test]
    fn a_partial_backup_is_beside_its_destination() {
        assert_eq!(
            partial_path(Path::new("/backups/monday")),
            Path::new("/backups/monday.partial")
        );
    }
}
