//! Submitting a focus auto-reply. The reply is recorded as sent before it is submitted (once per
//! sender per session), so a submit that fails while the channel service is briefly unable to
//! take it — overloaded, between leaders, unreachable — is tried again with the same nonce, which
//! is fixed per session and sender: the channel's nonce table keeps it one message however many
//! attempts reach it. A refusal that waiting cannot change (an archived channel, a rejected
//! request, an internal error), or the last attempt, ends it; the reply is then lost (counted
//! and logged) rather than sent twice.

use std::sync::Arc;
use std::time::Duration;

use chorus_cluster::{ChannelRouter, PublishAck, PublishRequest, RouteError};

/// Attempts in all, the first included: over about 8 s of waits.
pub const ATTEMPTS: u32 = 6;
/// The wait after the first failure; it doubles after each further one.
const FIRST_WAIT: Duration = Duration::from_millis(250);

/// The wait before the next attempt after `error` ended attempt number `attempt` (1 for the
/// first); `None` when there is to be no next one. Pure.
pub fn resend_after(attempt: u32, error: &RouteError) -> Option<Duration> {
    let transient = matches!(
        error,
        RouteError::Overloaded | RouteError::Unavailable(_) | RouteError::NotLeader { .. }
    );
    (transient && attempt < ATTEMPTS).then(|| FIRST_WAIT * 2u32.pow(attempt.saturating_sub(1)))
}

/// Submits `request` until it is committed or [`resend_after`] says to stop.
pub async fn submit_with_retries(
    router: Arc<dyn ChannelRouter>,
    request: PublishRequest,
) -> Result<PublishAck, RouteError> {
    let mut attempt = 1;
    loop {
        let outcome = match router.submit(request.clone()).await {
            Ok(ticket) => ticket.await,
            Err(err) => Err(err),
        };
        let err = match outcome {
            Ok(ack) => return Ok(ack),
            Err(err) => err,
        };
        let Some(wait) = resend_after(attempt, &err) else {
            return Err(err);
        };
        tracing::debug!(error = %err, attempt, "a focus auto-reply is submitted again");
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use async_trait::async_trait;
    use chorus_cluster::{PublishTicket, Replay};
    use parking_lot::Mutex;
    use uuid::Uuid;

    use super::*;

    #[test]
    fn transient_failures_are_retried_with_doubling_waits_up_to_the_limit() {
        let unavailable = RouteError::Unavailable("no leader".into());
        let waits: Vec<Option<Duration>> = (1..=ATTEMPTS)
            .map(|n| resend_after(n, &unavailable))
            .collect();
        assert_eq!(
            waits,
            vec![
                Some(Duration::from_millis(250)),
                Some(Duration::from_millis(500)),
                Some(Duration::from_millis(1_000)),
                Some(Duration::from_millis(2_000)),
                Some(Duration::from_millis(4_000)),
                None,
            ]
        );
        assert!(resend_after(1, &RouteError::Overloaded).is_some());
        assert!(
            resend_after(
                1,
                &RouteError::NotLeader {
                    leader_hint: Some(2)
                }
            )
            .is_some()
        );
    }

    #[test]
    fn final_refusals_are_not_retried() {
        for err in [
            RouteError::Archived,
            RouteError::Rejected("no such parent".into()),
            RouteError::Internal("disk".into()),
        ] {
            assert_eq!(resend_after(1, &err), None, "{err}");
        }
    }

    /// A channel service that answers with the outcomes it is given, in order, and remembers the
    /// nonces it was sent.
    struct Scripted {
        outcomes: Mutex<VecDeque<Result<(), RouteError>>>,
        nonces: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl ChannelRouter for Scripted {
        async fn submit(&self, request: PublishRequest) -> Result<PublishTicket, RouteError> {
            self.nonces.lock().push(request.nonce);
            let outcome = self
                .outcomes
                .lock()
                .pop_front()
                .expect("a scripted outcome");
            Ok(PublishTicket::new(async move {
                outcome.map(|()| PublishAck {
                    message_id: Uuid::now_v7(),
                    seq: 1,
                    created_at: chrono::Utc::now(),
                    duplicate: false,
                })
            }))
        }

        async fn replay(&self, _: Uuid, _: u64) -> Result<Replay, RouteError> {
            unreachable!("not used")
        }

        async fn last_seqs(&self, _: &[Uuid]) -> Result<Vec<u64>, RouteError> {
            unreachable!("not used")
        }

        async fn set_archived(&self, _: Uuid, _: bool) -> Result<(), RouteError> {
            unreachable!("not used")
        }
    }

    fn scripted(outcomes: Vec<Result<(), RouteError>>) -> Arc<Scripted> {
        Arc::new(Scripted {
            outcomes: Mutex::new(outcomes.into()),
            nonces: Mutex::new(Vec::new()),
        })
    }

    fn reply() -> PublishRequest {
        PublishRequest::message(
            Uuid::now_v7(),
            Uuid::now_v7(),
            "auto-reply-0123".into(),
            "in focus until 11:30".into(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_reply_is_resubmitted_with_its_nonce_until_the_service_takes_it() {
        let router = scripted(vec![
            Err(RouteError::NotLeader { leader_hint: None }),
            Err(RouteError::Unavailable("election".into())),
            Ok(()),
        ]);
        let started = tokio::time::Instant::now();
        submit_with_retries(router.clone(), reply()).await.unwrap();
        assert_eq!(*router.nonces.lock(), vec!["auto-reply-0123"; 3]);
        assert_eq!(
            started.elapsed(),
            Duration::from_millis(750),
            "250 + 500 ms"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_final_refusal_or_the_last_attempt_ends_it() {
        let archived = scripted(vec![Err(RouteError::Archived)]);
        assert_eq!(
            submit_with_retries(archived.clone(), reply()).await,
            Err(RouteError::Archived)
        );
        assert_eq!(archived.nonces.lock().len(), 1);

        let down = scripted(vec![Err(RouteError::Overloaded); ATTEMPTS as usize]);
        assert_eq!(
            submit_with_retries(down.clone(), reply()).await,
            Err(RouteError::Overloaded)
        );
        assert_eq!(down.nonces.lock().len(), ATTEMPTS as usize);
    }
}
