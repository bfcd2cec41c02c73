//! Outgoing webhooks: committed channel events sent, signed, to the URLs admins subscribed,
//! from a durable queue in the metadata store, with retries (docs/BOTS.md, "Outgoing webhooks").
//!
//! Data enters as history: the [`Dispatcher`]'s enqueuer reads each subscribed channel after
//! its cursor and stores deliveries with the moved cursor in one transaction
//! (`chorus_core::outgoing`), so a crash loses nothing and nothing is enqueued twice. It leaves
//! as HTTP POSTs signed per [`signature`], each attempt recorded with the verdict of [`retry`].
//! [`endpoint`] says which URLs a subscription may name and [`target`] which addresses any
//! outgoing request may reach (applied again at connect time by [`resolver`]); [`plan`] which
//! events become deliveries. The decisions are pure; the dispatcher does the I/O.

pub mod address;
mod dispatcher;
pub mod endpoint;
pub mod plan;
pub mod resolver;
pub mod retry;
pub mod signature;
pub mod target;

pub use dispatcher::{Dispatcher, StartError, WebhookConfig};
