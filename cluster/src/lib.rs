//! How the roles of a Chorus deployment reach each other.
//!
//! - [`ChannelRouter`]: the only way a gateway (or the REST API) reaches a channel's sequencer. The
//!   embedded node implements it in-process (`chorus_channel_node::ChannelService`); a cluster
//!   implements it over the network to the channel node that owns the channel.
//! - [`FanoutBus`]: carries committed events from channel nodes to every gateway. [`LocalBus`] is the
//!   in-process bus of the embedded node; [`RedisBus`] carries events between processes through
//!   Redis pub/sub.
//! - [`access`]: notices that someone's rights changed, so gateways re-check open connections.
//! - [`rate_limit`]: rate-limit counters, local or shared through Redis across nodes.

pub mod access;
mod bus;
pub mod bus_conformance;
mod bus_metrics;
mod bus_wire;
mod cluster_map;
pub mod cluster_router;
pub mod leadership;
pub mod placement;
pub mod rate_limit;
pub mod rebalance;
pub mod redis;
mod redis_bus;
mod router;
pub mod rpc;
pub mod transport;

pub use bus::{BusEvent, FanoutBus, LocalBus};
pub use cluster_map::{
    CONTROL_GROUP, ClusterMap, DrainReason, MapError, Placement, ShardMove, ShardReplicas,
    group_shard, shard_group,
};
pub use redis_bus::{RedisBus, RedisBusError};
pub use router::{
    ChannelRouter, OVERLOADED_RETRY_AFTER, PublishAck, PublishRequest, PublishTicket, Replay,
    RouteError,
};
