//! Outgoing webhooks: event subscriptions and their durable delivery queue, as records and the
//! [`SubscriptionStore`] trait that both metadata backends implement (`sqlite/subscriptions.rs`,
//! `postgres/subscriptions.rs`, held to `conformance/subscriptions.rs`).
//!
//! Data enters from two sides. The API creates, changes and deletes subscriptions. The webhook
//! dispatcher (`chorus-webhooks`) moves each (subscription, channel) cursor over committed
//! history and inserts the deliveries it covers in one transaction
//! ([`SubscriptionStore::enqueue_deliveries`], a compare-and-set on the cursor), then claims due
//! deliveries with a lease, sends them and records each attempt. A crash between the two leaves
//! either the cursor unmoved (the events are enqueued again) or the deliveries stored; a crash
//! during a send leaves the lease to run out (the delivery is sent again: at least once).

use async_trait::async_trait;
use chorus_protocol::EventKind;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::StoreError;

/// An admin's subscription of a URL to some kinds of events in some channels of a workspace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventSubscription {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub url: String,
    /// The HMAC-SHA256 key deliveries are signed with. Kept as is: signing needs it.
    pub secret: String,
    /// Sorted, without repeats.
    pub events: Vec<EventKind>,
    /// Sorted.
    pub channel_ids: Vec<Uuid>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
}

/// Where one subscription stands in one channel: everything up to `seq` is enqueued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionCursor {
    pub subscription_id: Uuid,
    pub channel_id: Uuid,
    pub seq: u64,
    pub events: Vec<EventKind>,
}

/// What a sender needs of a subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub subscription_id: Uuid,
    pub url: String,
    pub secret: String,
}

/// A delivery to enqueue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDelivery {
    pub id: Uuid,
    pub channel_id: Uuid,
    pub seq: u64,
    pub kind: EventKind,
    /// The JSON body, fixed now so every attempt sends (and signs) the same bytes.
    pub body: String,
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// An attempt got a 2xx answer.
    Delivered,
    /// Every attempt allowed failed; it will not be tried again.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(DeliveryStatus::Pending),
            "delivered" => Some(DeliveryStatus::Delivered),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

/// A delivery as the log shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub id: Uuid,
    pub subscription_id: Uuid,
    pub channel_id: Uuid,
    pub seq: u64,
    pub kind: EventKind,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// The HTTP status of the last attempt that got an answer.
    pub last_status_code: Option<u16>,
    /// Why the last attempt failed, when it did (a status, a timeout, a refused connection).
    pub last_error: Option<String>,
    /// When it is tried next (pending only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A delivery claimed for sending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueDelivery {
    pub id: Uuid,
    pub channel_id: Uuid,
    pub seq: u64,
    pub kind: EventKind,
    pub body: String,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// The outcome of one attempt, to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptRecord {
    /// Attempts made, this one included.
    pub attempts: u32,
    pub status: DeliveryStatus,
    /// When a pending delivery is tried next (ignored otherwise).
    pub next_attempt_at: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

/// Event kinds as stored: space-separated names.
pub fn kinds_to_text(kinds: &[EventKind]) -> String {
    kinds
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The kinds stored by [`kinds_to_text`]; unknown names (from a newer version) are skipped.
pub fn kinds_from_text(text: &str) -> Vec<EventKind> {
    text.split_whitespace()
        .filter_map(EventKind::parse)
        .collect()
}

/// Subscriptions, cursors and deliveries.
#[async_trait]
pub trait SubscriptionStore: Send + Sync + 'static {
    /// Stores a subscription with its channels, each starting after the given seq.
    async fn create_subscription(
        &self,
        subscription: &EventSubscription,
        start: &[(Uuid, u64)],
    ) -> Result<(), StoreError>;
    async fn subscription(&self, id: Uuid) -> Result<Option<EventSubscription>, StoreError>;
    /// The subscriptions of a workspace, oldest first.
    async fn subscriptions_of(&self, workspace: Uuid)
    -> Result<Vec<EventSubscription>, StoreError>;
    /// Changes the URL and/or the kinds; false when there is no such subscription.
    async fn update_subscription(
        &self,
        id: Uuid,
        url: Option<&str>,
        events: Option<&[EventKind]>,
    ) -> Result<bool, StoreError>;
    /// Deletes a subscription with its cursors and deliveries; false when there was none.
    async fn delete_subscription(&self, id: Uuid) -> Result<bool, StoreError>;

    /// Every cursor of every subscription.
    async fn subscription_cursors(&self) -> Result<Vec<SubscriptionCursor>, StoreError>;
    /// Moves the cursor of (`subscription`, `channel`) from `from` to `to` and stores
    /// `deliveries`, in one transaction; false (and nothing stored) when the cursor is not at
    /// `from` any more. A delivery whose (subscription, channel, seq) is already stored is
    /// skipped.
    async fn enqueue_deliveries(
        &self,
        subscription: Uuid,
        channel: Uuid,
        from: u64,
        to: u64,
        deliveries: &[NewDelivery],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Subscriptions with a pending delivery due at `now` and not leased, at most `limit`.
    async fn due_endpoints(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Endpoint>, StoreError>;
    /// Leases up to `limit` due deliveries of `subscription` until `lease_until`, the earliest
    /// due first. A delivery leased by one caller is not returned to another before the lease
    /// ends.
    async fn claim_deliveries(
        &self,
        subscription: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DueDelivery>, StoreError>;
    /// Records an attempt's outcome and ends the lease.
    async fn record_attempt(
        &self,
        delivery: Uuid,
        record: &AttemptRecord,
    ) -> Result<(), StoreError>;
    /// Deletes up to `limit` settled deliveries (delivered or failed) last changed before
    /// `before`; returns how many went. Pending deliveries are never deleted: they are the queue.
    async fn prune_deliveries(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64, StoreError>;
    /// The delivery log of a subscription, newest first, older than `before` when given.
    async fn deliveries(
        &self,
        subscription: Uuid,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;
}
