//! The `chorus` binary's library: configuration and assembly of the roles into one process.
//!
//! `chorus serve` runs an embedded node: the REST API, the WebSocket gateway and the channel
//! service in one process with its data in one directory and no external service. Integration
//! tests start the same [`Node`] on port 0.

pub mod backup;
pub mod cluster_cli;
mod cluster_process;
pub mod compact;
pub mod config;
pub mod config_check;
pub mod connect;
pub mod huge_pages;
mod node;
pub mod ops;
pub mod retention;
pub mod telemetry;
pub mod tls;
mod web;

pub use cluster_process::{ClusterProcess, check_cluster_config};
pub use config::NodeConfig;
pub use node::Node;
