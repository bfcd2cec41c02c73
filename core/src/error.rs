//! Errors of the storage layer.

/// Why a storage operation failed. Callers map these to protocol or HTTP errors; the `Backend`
/// variant's text is logged, never shown to a client.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (an e-mail already registered, a channel name already taken).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The record the operation depends on does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The backend cannot do this at all (full-text search on ScyllaDB).
    #[error("not supported by this backend: {0}")]
    Unsupported(String),
    /// The backend failed (I/O, connection, corruption).
    #[error("storage backend error: {0}")]
    Backend(String),
}

impl StoreError {
    pub fn backend(err: impl std::fmt::Display) -> Self {
        StoreError::Backend(err.to_string())
    }
}
