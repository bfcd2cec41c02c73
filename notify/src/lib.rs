//! Notifications in the delivery path: who is told about a committed message, exactly once, and
//! the badges (unread and mention counts) a client shows.
//!
//! Data enters as committed events, from the channel service's leader path: the node hands the
//! channel service a [`NotifyingBus`], which passes every event on to the real fan-out bus and
//! queues each new message for the [`Notifier`]. The notifier reads the facts the pure rules
//! need (`chorus_core::notify::rules`: channel kind, members with mute and level, the thread's
//! author, who is online), records the notifications in the metadata store — which keeps each
//! id once, so a new leader re-publishing what its predecessor may not have finished notifies
//! nobody twice — and sends the new ones to their users' connections on every gateway through the
//! presence store's user feed. [`Badges`] computes the counts of `ready`; [`direct`] holds what
//! the API sends directly (invitations, read-state changes).

pub mod badges;
pub mod direct;
mod notifier;
mod notifying_bus;

pub use badges::Badges;
pub use notifier::Notifier;
pub use notifying_bus::{NOTIFY_QUEUE, NotifyingBus};
