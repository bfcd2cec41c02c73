//! Route handlers, one module per resource.

pub mod auth;
pub mod channels;
pub mod workspaces;
