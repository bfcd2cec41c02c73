//! Access changes: the REST API tells every gateway that someone's rights changed, so open
//! WebSockets stop doing what their user may no longer do within moments, not at the next login.
//!
//! A notice says only *whose* access may have changed; a gateway that gets one re-reads the truth
//! (the session, the channel membership) from the metadata store. So a notice can never grant
//! anything, and a lost or lagged notice is answered by re-checking everyone concerned.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

/// Notices buffered per receiving gateway; a gateway further behind re-checks every connection.
const NOTICE_BUFFER: usize = 4096;

/// Redis pub/sub channel that carries notices between processes.
const REDIS_CHANNEL: &str = "chorus:access";

/// Whose access may have changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AccessNotice {
    /// A session was revoked (logout, session revoked, password change) — every session of the
    /// user when `session_id` is `None` (account disabled). Connections re-verify their session.
    Sessions {
        user_id: Uuid,
        session_id: Option<Uuid>,
    },
    /// Membership or state of a channel changed (member removed, channel archived or made
    /// private) — for one user, or for every subscriber when `user_id` is `None`. Connections
    /// re-check their access to the channel.
    Channel {
        channel_id: Uuid,
        user_id: Option<Uuid>,
    },
    /// A user left or was removed from a workspace: every channel subscription of theirs is
    /// re-checked.
    User { user_id: Uuid },
}

/// What a receiver of notices gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessSignal {
    Notice(AccessNotice),
    /// Notices may have been lost (lag, reconnect): re-check every connection.
    RecheckAll,
}

/// Carries access notices from the API to every gateway.
#[async_trait]
pub trait AccessNotifier: Send + Sync + 'static {
    /// Tells every gateway. Never fails: a lost notice is covered by the receivers' re-checks.
    async fn notify(&self, notice: AccessNotice);
    /// Starts receiving notices.
    fn subscribe(&self) -> AccessReceiver;
}

/// The receiving end, for one gateway.
pub struct AccessReceiver {
    inner: broadcast::Receiver<AccessNotice>,
    resync: broadcast::Receiver<()>,
}

impl AccessReceiver {
    /// The next signal; `None` once the notifier is gone.
    pub async fn recv(&mut self) -> Option<AccessSignal> {
        tokio::select! {
            notice = self.inner.recv() => match notice {
                Ok(notice) => Some(AccessSignal::Notice(notice)),
                Err(broadcast::error::RecvError::Lagged(_)) => Some(AccessSignal::RecheckAll),
                Err(broadcast::error::RecvError::Closed) => None,
            },
            resync = self.resync.recv() => match resync {
                Ok(()) | Err(broadcast::error::RecvError::Lagged(_)) => Some(AccessSignal::RecheckAll),
                Err(broadcast::error::RecvError::Closed) => None,
            },
        }
    }
}

/// Notices within one process (the embedded node).
pub struct LocalAccessNotifier {
    notices: broadcast::Sender<AccessNotice>,
    resync: broadcast::Sender<()>,
}

impl Default for LocalAccessNotifier {
    fn default() -> Self {
        LocalAccessNotifier {
            notices: broadcast::channel(NOTICE_BUFFER).0,
            resync: broadcast::channel(16).0,
        }
    }
}

#[async_trait]
impl AccessNotifier for LocalAccessNotifier {
    async fn notify(&self, notice: AccessNotice) {
        // No receiver (no gateway in this process) is fine.
        let _ = self.notices.send(notice);
    }

    fn subscribe(&self) -> AccessReceiver {
        AccessReceiver {
            inner: self.notices.subscribe(),
            resync: self.resync.subscribe(),
        }
    }
}

/// Notices through Redis pub/sub, for API and gateway processes of a cluster. A reconnect of the
/// subscriber (when notices may have been missed) becomes [`AccessSignal::RecheckAll`].
pub struct RedisAccessNotifier {
    publisher: fred::prelude::Client,
    local: LocalAccessNotifier,
}

impl RedisAccessNotifier {
    /// Connects a publisher and a subscriber; fails fast (5 s) if Redis cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, String> {
        use fred::prelude::{EventInterface, PubsubInterface};

        let publisher = crate::redis::connect(url).await?;
        let subscriber = crate::redis::connect_subscriber(url).await?;
        subscriber
            .subscribe(REDIS_CHANNEL)
            .await
            .map_err(|e| format!("cannot subscribe to {REDIS_CHANNEL}: {e}"))?;
        let local = LocalAccessNotifier::default();
        let notices = local.notices.clone();
        let resync = local.resync.clone();
        let mut messages = subscriber.message_rx();
        let mut reconnects = subscriber.reconnect_rx();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    message = messages.recv() => match message {
                        Ok(message) => {
                            let parsed = message
                                .value
                                .as_bytes()
                                .and_then(|bytes| serde_json::from_slice::<AccessNotice>(bytes).ok());
                            match parsed {
                                Some(notice) => { let _ = notices.send(notice); }
                                None => tracing::warn!("undecodable access notice"),
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => { let _ = resync.send(()); }
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                    reconnect = reconnects.recv() => match reconnect {
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                            if let Err(err) = subscriber.resubscribe_all().await {
                                tracing::warn!(error = %err, "redis access resubscribe failed");
                            }
                            let _ = resync.send(());
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                }
            }
        });
        Ok(RedisAccessNotifier { publisher, local })
    }
}

#[async_trait]
impl AccessNotifier for RedisAccessNotifier {
    async fn notify(&self, notice: AccessNotice) {
        use fred::prelude::PubsubInterface;

        let Ok(payload) = serde_json::to_vec(&notice) else {
            return;
        };
        let sent: Result<i64, _> = self.publisher.publish(REDIS_CHANNEL, payload).await;
        if let Err(err) = sent {
            // Gateways of this process still learn it; others re-check on their reconnect.
            tracing::warn!(error = %err, "cannot publish access notice; delivering locally");
            let _ = self.local.notices.send(notice);
        }
    }

    fn subscribe(&self) -> AccessReceiver {
        self.local.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_subscriber_gets_each_notice() {
        let notifier = LocalAccessNotifier::default();
        let mut first = notifier.subscribe();
        let mut second = notifier.subscribe();
        let notice = AccessNotice::Sessions {
            user_id: Uuid::new_v4(),
            session_id: None,
        };
        notifier.notify(notice).await;
        assert_eq!(first.recv().await, Some(AccessSignal::Notice(notice)));
        assert_eq!(second.recv().await, Some(AccessSignal::Notice(notice)));
    }

    #[tokio::test]
    async fn a_receiver_that_lags_is_told_to_recheck_everything() {
        let notifier = LocalAccessNotifier::default();
        let mut slow = notifier.subscribe();
        for _ in 0..NOTICE_BUFFER + 1 {
            notifier
                .notify(AccessNotice::User {
                    user_id: Uuid::new_v4(),
                })
                .await;
        }
        assert_eq!(slow.recv().await, Some(AccessSignal::RecheckAll));
    }

    #[test]
    fn notices_have_a_stable_json_form() {
        let channel_id = Uuid::nil();
        let json = serde_json::to_value(AccessNotice::Channel {
            channel_id,
            user_id: None,
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "channel", "channel_id": channel_id, "user_id": null})
        );
    }
}
