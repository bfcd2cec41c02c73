//! The channel service: sequences, buffers and stores the messages of channels.
//!
//! A channel's state — its next sequence number, its replay buffer and its table of recent client
//! nonces — is the deterministic state machine of [`state`], applied from a Raft log (openraft,
//! storage v2) kept in redb and fsynced before anything is acknowledged. In embedded mode the group
//! has one member; a cluster runs the same code with three. Requests enter through
//! [`ChannelService`], which implements `chorus_cluster::ChannelRouter`; committed messages leave
//! to the message store (history) and to the fan-out bus (live delivery), in channel order.

// openraft's storage traits return its `StorageError` (over 200 bytes) by value; helpers that feed
// those traits return it too rather than boxing and unboxing at every call.
#![allow(clippy::result_large_err)]

mod backup;
mod batcher;
mod cluster_node;
mod control;
mod election;
mod election_guard;
mod hand_over;
mod history_writer;
mod leadership;
mod log_file;
mod log_store;
mod membership;
mod network;
mod pending_history;
mod quic_network;
mod raft_metrics;
mod raft_service;
mod raft_types;
mod read_index;
mod rebalancer;
mod service;
pub mod shard;
pub mod state;
mod state_machine;
mod status;
#[cfg(test)]
mod storage_suite;

pub use cluster_node::{ClusterChannelNode, ClusterNodeConfig};
pub use hand_over::HandOverOutcome;
pub use raft_types::TypeConfig;
pub use rebalancer::RebalanceSettings;
pub use service::{ChannelNodeConfig, ChannelNodeError, ChannelService};
pub use shard::RaftTiming;
pub use state::StateLimits;
