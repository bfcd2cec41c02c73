//! The Chorus domain: its records, the storage traits every role shares, and credentials.
//!
//! Data enters through the storage traits ([`MetadataStore`], [`MessageStore`]) and leaves as the
//! plain records of [`model`]. Each trait has an embedded implementation (SQLite for metadata,
//! redb for messages) and real ones (PostgreSQL; ScyllaDB for messages), all held to one
//! conformance suite per trait.

pub mod auth;
pub mod bots;
pub mod client_addr;
pub mod clock;
pub mod commands;
pub mod error;
pub mod focus;
pub mod limits;
pub mod mentions;
pub mod messages;
pub mod metadata;
pub mod model;
pub mod notify;
pub mod outgoing;
pub mod retention;
pub mod testing;
pub mod visibility;

pub use clock::Clock;
pub use error::StoreError;
pub use messages::{
    HistoryQuery, InstrumentedMessageStore, MessageStore, PostgresMessageStore, RedbMessageStore,
    ScyllaMessageStore,
};
pub use metadata::{BotStore, MetadataStore, PostgresMetadataStore, SqliteMetadataStore};
