//! Notifications in the delivery path: who is told about a committed message, exactly once, and
//! the badges (unread and mention counts) a client shows; and focus mode, which holds back what
//! does not pass a user's rules while they focus and hands it over as one digest.
//!
//! Data enters as committed events, from the channel service's leader path: the node hands the
//! channel service a [`NotifyingBus`], which passes every event on to the real fan-out bus and
//! queues each new message for the [`Notifier`]. The notifier reads the facts the pure rules
//! need (`chorus_core::notify::rules`: channel kind, members with mute and level, the thread's
//! author, who is online) and hands the result to [`delivery`]: a user in focus gets only what
//! passes their priority rules, the rest is held; everything is recorded in the metadata store —
//! which keeps each id once, so a new leader re-publishing what its predecessor may not have
//! finished notifies nobody twice — and what is new is sent to its users' connections on every
//! gateway through the presence store's user feed. [`focus`] starts and ends sessions (by hand,
//! or on a schedule at each tick) and sends the digest. [`Badges`] computes the counts of
//! `ready`; [`direct`] holds what the API sends directly (invitations, read-state changes).

pub mod auto_reply_submit;
pub mod badges;
pub mod delivery;
pub mod direct;
pub mod focus;
mod notifier;
mod notifying_bus;

pub use badges::Badges;
pub use focus::FocusRuntime;
pub use notifier::{AutoReplyRouter, Notifier};
pub use notifying_bus::{NOTIFY_QUEUE, NotifyingBus};
