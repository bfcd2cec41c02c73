//! The Chorus domain: its records, the storage traits every role shares, and credentials.
//!
//! Data enters through the storage traits ([`MetadataStore`], [`MessageStore`]) and leaves as the
//! plain records of [`model`]. Each trait has an embedded implementation here (SQLite for metadata,
//! redb for messages); the real backends of a cluster deployment implement the same traits.

pub mod auth;
pub mod error;
pub mod messages;
pub mod metadata;
pub mod model;

pub use error::StoreError;
pub use messages::{HistoryQuery, MessageStore, RedbMessageStore, ScyllaMessageStore};
pub use metadata::{MetadataStore, SqliteMetadataStore};
