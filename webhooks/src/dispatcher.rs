//! The dispatcher: two loops over the metadata store's durable queue, beside chat and never in
//! its path.
//!
//! - The **enqueuer** polls every `poll_interval`: for each (subscription, channel) cursor it
//!   reads the channel's history after the cursor (the message store holds only committed
//!   events) and stores the deliveries with the moved cursor in one transaction
//!   ([`plan`](crate::plan) decides, the store's compare-and-set keeps it once).
//! - The **sender** claims due deliveries endpoint by endpoint — no more than the endpoint's free
//!   permits (`per_endpoint_concurrency`) and the node's (`max_concurrency`) — with a lease,
//!   POSTs each signed with a timeout, and records the attempt with the retry verdict.
//!
//! A slow or dead endpoint holds at most its own permits for at most `timeout` each; chat never
//! waits for either loop (they read history and write the metadata store, nothing else).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chorus_core::outgoing::{AttemptRecord, DeliveryStatus, DueDelivery, Endpoint};
use chorus_core::{HistoryQuery, MessageStore, MetadataStore, StoreError};
use chrono::Utc;
use parking_lot::Mutex;
use rand::Rng;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::endpoint::check_url;
use crate::plan::plan;
use crate::resolver::{outbound_client, refused};
use crate::retry::{Outcome, RetryPolicy, Verdict, decide};
use crate::signature::{DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use crate::target::TargetPolicy;

/// Events read per history page by the enqueuer.
const PAGE: usize = 256;
/// Endpoints looked at per pass of the sender.
const ENDPOINTS_PER_PASS: usize = 1_000;
/// How long a stopping node waits for attempts in flight before abandoning them.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// How the dispatcher runs (`[webhooks]` in the node's configuration).
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    pub retry: RetryPolicy,
    /// One attempt's limit, connection included.
    pub timeout: Duration,
    /// Deliveries in flight to one subscription's URL at most.
    pub per_endpoint_concurrency: usize,
    /// Deliveries in flight from this process at most.
    pub max_concurrency: usize,
    /// How often the enqueuer looks for new events and the sender for due deliveries.
    pub poll_interval: Duration,
    /// The addresses deliveries may go to.
    pub targets: Arc<TargetPolicy>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(10),
            per_endpoint_concurrency: 4,
            max_concurrency: 256,
            poll_interval: Duration::from_millis(250),
            targets: Arc::new(TargetPolicy::public_only()),
        }
    }
}

impl WebhookConfig {
    /// How long a claimed delivery is held: beyond its attempt's timeout, so a live sender
    /// records before its lease ends (one store write; a later one only means a second
    /// delivery, which at-least-once allows); a dead one's deliveries come back after it.
    fn lease(&self) -> Duration {
        self.timeout + Duration::from_secs(10)
    }
}

/// Runs the outgoing webhooks of a process.
pub struct Dispatcher {
    store: Arc<dyn MetadataStore>,
    messages: Arc<dyn MessageStore>,
    http: reqwest::Client,
    config: WebhookConfig,
    endpoints: Mutex<HashMap<Uuid, Arc<Semaphore>>>,
    in_flight: Arc<Semaphore>,
    /// Rings when a delivery was enqueued or an attempt ended: the sender looks again at once.
    wake: Notify,
    /// Turns true when the dispatcher stops; attempts in flight are abandoned then.
    stop: watch::Receiver<bool>,
}

/// Why the dispatcher cannot start.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the webhook HTTP client: {0}")]
pub struct StartError(#[from] reqwest::Error);

impl Dispatcher {
    /// Starts both loops; they end when `stop` turns true (attempts in flight are abandoned:
    /// their leases run out and they are sent again).
    pub fn start(
        store: Arc<dyn MetadataStore>,
        messages: Arc<dyn MessageStore>,
        config: WebhookConfig,
        stop: watch::Receiver<bool>,
    ) -> Result<JoinHandle<()>, StartError> {
        let http = outbound_client(config.targets.clone(), config.timeout)?;
        let dispatcher = Arc::new(Dispatcher {
            store,
            messages,
            http,
            in_flight: Arc::new(Semaphore::new(config.max_concurrency.max(1))),
            config,
            endpoints: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            stop: stop.clone(),
        });
        Ok(tokio::spawn(dispatcher.run(stop)))
    }

    async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let enqueuer = tokio::spawn(self.clone().enqueue_loop());
        let sender = tokio::spawn(self.clone().send_loop());
        let _ = stop.wait_for(|stop| *stop).await;
        enqueuer.abort();
        sender.abort();
        let _ = enqueuer.await;
        let _ = sender.await;
        // Deliveries in flight hold the stores (through this dispatcher) until their tasks end —
        // within STOP_GRACE, as they watch `stop` too; a stopped node must have let go of them — an embedded
        // node's database files cannot be opened again while they are held. Each delivery gives
        // its permit back only after it dropped the dispatcher (`send_pass`).
        let all = self.config.max_concurrency.clamp(1, u32::MAX as usize) as u32;
        let _ = self.in_flight.acquire_many(all).await;
    }

    async fn enqueue_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.config.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.enqueue_pass().await {
                Ok(0) => {}
                Ok(enqueued) => {
                    metrics::counter!("chorus_webhook_deliveries_enqueued_total")
                        .increment(enqueued as u64);
                    self.wake.notify_one();
                }
                Err(err) => tracing::warn!(error = %err, "webhook enqueue pass failed"),
            }
        }
    }

    /// One look at every cursor; returns the deliveries enqueued.
    async fn enqueue_pass(&self) -> Result<usize, StoreError> {
        let mut enqueued = 0;
        for cursor in self.store.subscriptions().subscription_cursors().await? {
            let mut at = cursor.seq;
            loop {
                let page = self
                    .messages
                    .page(
                        cursor.channel_id,
                        HistoryQuery::After {
                            after: at,
                            limit: PAGE,
                        },
                    )
                    .await?;
                let planned = plan(
                    cursor.subscription_id,
                    at,
                    &page,
                    &cursor.events,
                    Uuid::now_v7,
                );
                if planned.to == at {
                    break;
                }
                let moved = self
                    .store
                    .subscriptions()
                    .enqueue_deliveries(
                        cursor.subscription_id,
                        cursor.channel_id,
                        at,
                        planned.to,
                        &planned.deliveries,
                        Utc::now(),
                    )
                    .await?;
                if !moved {
                    // Another process moved it (or the subscription is gone): next pass.
                    break;
                }
                enqueued += planned.deliveries.len();
                at = planned.to;
                if page.len() < PAGE {
                    break;
                }
            }
        }
        Ok(enqueued)
    }

    async fn send_loop(self: Arc<Self>) {
        loop {
            if let Err(err) = self.send_pass().await {
                tracing::warn!(error = %err, "webhook send pass failed");
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
    }

    /// Claims and starts what is due, within the permits.
    async fn send_pass(self: &Arc<Self>) -> Result<(), StoreError> {
        let now = Utc::now();
        let subscriptions = self.store.subscriptions();
        for endpoint in subscriptions.due_endpoints(now, ENDPOINTS_PER_PASS).await? {
            let permits = self.endpoint_permits(endpoint.subscription_id);
            let free = permits
                .available_permits()
                .min(self.in_flight.available_permits());
            if free == 0 {
                continue;
            }
            let lease =
                chrono::Duration::from_std(self.config.lease()).unwrap_or(chrono::Duration::MAX);
            let claimed = subscriptions
                .claim_deliveries(endpoint.subscription_id, now, now + lease, free)
                .await?;
            let endpoint = Arc::new(endpoint);
            for delivery in claimed {
                // Both succeed: only this task takes permits, and `free` were free.
                let (Ok(mine), Ok(node)) = (
                    permits.clone().try_acquire_owned(),
                    self.in_flight.clone().try_acquire_owned(),
                ) else {
                    break;
                };
                let this = self.clone();
                let endpoint = endpoint.clone();
                let mut stop = self.stop.clone();
                tokio::spawn(async move {
                    let stopped = async move {
                        let _ = stop.wait_for(|stop| *stop).await;
                        tokio::time::sleep(STOP_GRACE).await;
                    };
                    tokio::select! {
                        () = this.attempt(&endpoint, delivery) => this.wake.notify_one(),
                        // A stopping node lets attempts finish for a moment, then abandons
                        // them (a hanging endpoint must not hold the shutdown): an abandoned
                        // one's lease runs out and it is sent again.
                        () = stopped => {}
                    }
                    // The dispatcher before the permits: at stop, `run` waits for every permit
                    // and then nothing of this task may still hold the stores.
                    drop(this);
                    drop((mine, node));
                });
            }
        }
        Ok(())
    }

    fn endpoint_permits(&self, subscription: Uuid) -> Arc<Semaphore> {
        let mut endpoints = self.endpoints.lock();
        // Forget idle endpoints now and then (deleted subscriptions), keeping busy ones.
        if endpoints.len() > 10_000 {
            let full = self.config.per_endpoint_concurrency.max(1);
            endpoints.retain(|_, permits| permits.available_permits() < full);
        }
        endpoints
            .entry(subscription)
            .or_insert_with(|| {
                Arc::new(Semaphore::new(self.config.per_endpoint_concurrency.max(1)))
            })
            .clone()
    }

    /// One attempt, recorded. The permits are held until it is.
    async fn attempt(&self, endpoint: &Endpoint, delivery: DueDelivery) {
        let outcome = self.post(endpoint, &delivery).await;
        let attempts = delivery.attempts + 1;
        let now = Utc::now();
        let jitter = rand::thread_rng().r#gen::<f64>();
        let verdict = decide(&self.config.retry, attempts, &outcome, now, jitter);
        let (status, next_attempt_at) = match verdict {
            Verdict::Delivered => (DeliveryStatus::Delivered, now),
            Verdict::RetryAt(at) => (DeliveryStatus::Pending, at),
            Verdict::GiveUp => (DeliveryStatus::Failed, now),
        };
        metrics::counter!("chorus_webhook_attempts_total", "result" => status.as_str())
            .increment(1);
        if status == DeliveryStatus::Failed {
            tracing::info!(delivery = %delivery.id, subscription = %endpoint.subscription_id,
                attempts, "webhook delivery failed for good");
        }
        let record = AttemptRecord {
            attempts,
            status,
            next_attempt_at,
            status_code: outcome.status_code(),
            error: outcome.error(),
            at: now,
        };
        if let Err(err) = self
            .store
            .subscriptions()
            .record_attempt(delivery.id, &record)
            .await
        {
            // The lease runs out and the delivery is attempted again: at least once.
            tracing::warn!(error = %err, delivery = %delivery.id, "cannot record a webhook attempt");
        }
    }

    async fn post(&self, endpoint: &Endpoint, delivery: &DueDelivery) -> Outcome {
        // Again at send time: a literal address never meets the resolver, and the operator may
        // have narrowed `allow_internal` since the subscription was made.
        if let Err(why) = check_url(&endpoint.url, &self.config.targets) {
            return Outcome::Refused(why.to_string());
        }
        let timestamp = Utc::now().timestamp();
        let signature = sign(&endpoint.secret, timestamp, delivery.body.as_bytes());
        let sent = self
            .http
            .post(&endpoint.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .header(DELIVERY_HEADER, delivery.id.to_string())
            .header(EVENT_HEADER, delivery.kind.as_str())
            .body(delivery.body.clone())
            .send()
            .await;
        match sent {
            Ok(response) => Outcome::Status(response.status().as_u16()),
            Err(err) => match refused(&err) {
                Some(name) => Outcome::Refused(name.to_string()),
                None if err.is_timeout() => Outcome::NoAnswer("timed out".into()),
                None if err.is_connect() => Outcome::NoAnswer("cannot connect".into()),
                None => Outcome::NoAnswer(format!("request failed: {err}")),
            },
        }
    }
}
