//! Focus mode's decisions, without I/O: when a user is in focus ([`schedule`]: a session started
//! now or for a duration, or a weekly schedule in the user's time zone), and which notifications
//! reach them meanwhile ([`priority`]: a documented, deterministic score against their rules).
//! Every function takes the time it decides at, so tests use a fixed clock.

pub mod priority;
pub mod schedule;
