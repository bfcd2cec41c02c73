//! Server-Sent Events: a read-only stream of a caller's channel events over plain HTTP
//! (`GET /v1/stream`), for clients and tools that cannot hold a WebSocket.
//!
//! Events enter from the fan-out bus into the process's [`hub`](hub::StreamHub), which pushes
//! them to each stream's bounded [`queue`](queue::StreamQueue); each response body
//! (`body.rs`) sends them once and in order per channel, with the resume position vector as
//! the event id (`position.rs`). A slow reader is ended (4002), never waited for.

mod body;
mod hub;
mod position;
mod queue;
mod shared_watch;

use std::sync::Arc;

use chorus_cluster::FanoutBus;
use chorus_cluster::access::AccessNotifier;
use chorus_protocol::CloseCode;

pub(crate) use body::StreamBody;
pub(crate) use hub::Registration;
pub(crate) use position::{MAX_STREAM_CHANNELS, Positions};
pub use shared_watch::SharedWatchBus;

/// Limits of the SSE streams of one process.
#[derive(Clone, Debug)]
pub struct StreamLimits {
    /// Items waiting for one stream; a stream whose queue overflows is ended with 4002.
    pub queue: usize,
    /// A comment line (`:heartbeat`) is sent after this long without an event, so proxies and
    /// clients can tell a quiet stream from a dead one.
    pub heartbeat_ms: u64,
    /// Streams this process serves at once; beyond it 503 `too_many_streams`.
    pub max_streams: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            queue: 1_024,
            heartbeat_ms: 15_000,
            max_streams: 10_000,
        }
    }
}

/// The SSE streams of a process: made once with the bus and the access notices, shared by the
/// API's handlers, and closed by the server's shutdown (an open stream would otherwise hold a
/// graceful shutdown forever).
#[derive(Clone)]
pub struct Streams {
    hub: Arc<hub::StreamHub>,
    pub(crate) limits: StreamLimits,
}

impl Streams {
    pub fn new(
        bus: Arc<dyn FanoutBus>,
        access: Arc<dyn AccessNotifier>,
        limits: StreamLimits,
    ) -> Self {
        Streams {
            hub: Arc::new(hub::StreamHub::new(bus, access, limits.max_streams)),
            limits,
        }
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.hub.open()
    }

    /// Ends every stream with a `close` event 4003 (reconnect elsewhere) and refuses new ones.
    pub fn close_all(&self) {
        self.hub.close_all(CloseCode::ServerRestart);
    }

    pub(crate) fn register(&self, user: uuid::Uuid) -> Option<Registration> {
        self.hub.register(user, self.limits.queue)
    }
}
