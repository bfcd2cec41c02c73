//! Route handlers, one module per resource.

pub mod account;
pub mod admin;
pub mod audit_log;
pub mod auth;
pub mod bots;
pub mod channel_members;
pub mod channels;
pub mod commands;
pub mod dms;
pub mod export;
pub mod focus;
pub mod gateway;
pub mod history;
pub mod invites;
pub mod limits;
pub mod members;
pub mod messages;
pub mod notifications;
pub mod presence;
pub mod reactions;
pub mod retention;
pub mod search;
pub mod stream;
pub mod subscriptions;
pub mod webhooks;
pub mod workspaces;
