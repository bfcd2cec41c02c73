//! Focus mode. Its decisions, without I/O: when a user is in focus ([`schedule`]: a session
//! started now or for a duration, or a weekly schedule in the user's time zone), what the
//! runtime does at a tick ([`transition`]), which notifications reach them meanwhile
//! ([`priority`]: a documented, deterministic score against their rules), and the digest of what
//! was held ([`digest`]), whether a DM gets an automatic reply ([`auto_reply`]), whether a
//! workspace's focus hours allow a session ([`policy`]), and a user's statistics ([`stats`]:
//! focus time per local day, sessions, streaks). Every function takes the time it decides at, so
//! tests use a fixed clock. [`store`] is where the state is kept (both metadata backends).

pub mod auto_reply;
pub mod digest;
pub mod policy;
pub mod priority;
pub mod schedule;
pub mod stats;
pub mod store;
pub mod transition;

pub use store::{FocusSession, FocusSettings, FocusStore, HoldOutcome, HoldRequest, InFocus};
