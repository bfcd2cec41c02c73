//! What follows an attempt: delivered, tried again later (exponential backoff with jitter), or
//! given up after a bounded number of attempts. Pure: the time and the jitter are passed in.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// How a subscription's deliveries are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; after the last failure the delivery is `failed`.
    pub max_attempts: u32,
    /// The wait after the first failure; each further failure doubles it.
    pub base: Duration,
    /// The longest wait.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    /// 10 attempts over about 35 minutes: waits of 2 s, 4 s, … 512 s (each 50–100 % of that).
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            base: Duration::from_secs(2),
            cap: Duration::from_secs(3_600),
        }
    }
}

/// What one attempt got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP answer with this status.
    Status(u16),
    /// No answer: a timeout, a refused connection, a TLS failure … (the reason, for the log).
    NoAnswer(String),
    /// Not sent: the URL leads to an internal address the operator does not allow. Trying
    /// again cannot help until the operator or the admin changes something, so it is final.
    Refused(String),
}

impl Outcome {
    pub fn status_code(&self) -> Option<u16> {
        match self {
            Outcome::Status(code) => Some(*code),
            Outcome::NoAnswer(_) | Outcome::Refused(_) => None,
        }
    }

    /// Any 2xx. Everything else — redirects included, which are not followed — is a failure.
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Status(code) if (200..300).contains(code))
    }

    /// What the log says about a failure.
    pub fn error(&self) -> Option<String> {
        match self {
            Outcome::Status(code) if (200..300).contains(code) => None,
            Outcome::Status(code) => Some(format!("HTTP {code}")),
            Outcome::NoAnswer(why) => Some(why.clone()),
            Outcome::Refused(why) => Some(format!("refused: {why}")),
        }
    }
}

/// What happens to the delivery after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    RetryAt(DateTime<Utc>),
    GiveUp,
}

/// The wait after the `failures`-th failure (1 for the first): `base · 2^(failures-1)`, at most
/// `cap`, scaled by `0.5 + jitter / 2` with `jitter` in [0, 1) — so endpoints that failed
/// together do not all come back at once, and no wait is shorter than half its step.
pub fn backoff(policy: &RetryPolicy, failures: u32, jitter: f64) -> Duration {
    let doublings = failures.saturating_sub(1).min(30);
    let full = policy
        .base
        .saturating_mul(1u32 << doublings)
        .min(policy.cap);
    full.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
}

/// The verdict after attempt number `attempts` (1 for the first) got `outcome` at `now`.
pub fn decide(
    policy: &RetryPolicy,
    attempts: u32,
    outcome: &Outcome,
    now: DateTime<Utc>,
    jitter: f64,
) -> Verdict {
    if outcome.is_success() {
        return Verdict::Delivered;
    }
    if attempts >= policy.max_attempts || matches!(outcome, Outcome::Refused(_)) {
        return Verdict::GiveUp;
    }
    let wait = backoff(policy, attempts, jitter);
    let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
    Verdict::RetryAt(
        now.checked_add_signed(wait)
            .unwrap_or(DateTime::<Utc>::MAX_UTC),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(5),
        }
    }

    #[test]
    fn waits_double_up_to_the_cap_and_jitter_takes_at_most_half() {
        let p = policy();
        let waits: Vec<u64> = (1..=5).map(|n| backoff(&p, n, 1.0).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 5, 5]);
        assert_eq!(backoff(&p, 3, 0.0), Duration::from_secs(2));
        assert_eq!(backoff(&p, 3, 0.5), Duration::from_secs(3));
        // Absurd counts neither overflow nor exceed the cap.
        assert_eq!(backoff(&p, u32::MAX, 1.0), Duration::from_secs(5));
    }

    #[test]
    fn a_2xx_delivers_and_anything_else_retries_until_the_limit() {
        let p = policy();
        let now = DateTime::from_timestamp(1_000, 0).unwrap();
        assert_eq!(
            decide(&p, 1, &Outcome::Status(204), now, 0.3),
            Verdict::Delivered
        );
        assert_eq!(
            decide(&p, 1, &Outcome::Status(500), now, 1.0),
            Verdict::RetryAt(now + chrono::Duration::seconds(1))
        );
        assert_eq!(
            decide(&p, 2, &Outcome::Status(301), now, 1.0),
            Verdict::RetryAt(now + chrono::Duration::seconds(2)),
            "redirects are not followed: a failure"
        );
        assert_eq!(
            decide(&p, 3, &Outcome::NoAnswer("timeout".into()), now, 1.0),
            Verdict::RetryAt(now + chrono::Duration::seconds(4))
        );
        assert_eq!(
            decide(&p, 4, &Outcome::Status(500), now, 1.0),
            Verdict::GiveUp
        );
        assert_eq!(
            decide(&p, 4, &Outcome::Status(200), now, 1.0),
            Verdict::Delivered,
            "the last attempt may still succeed"
        );
        assert_eq!(
            decide(&p, 1, &Outcome::Refused("10.0.0.1".into()), now, 1.0),
            Verdict::GiveUp,
            "a refused address is final"
        );
    }

    #[test]
    fn outcomes_say_what_the_log_shows() {
        assert_eq!(Outcome::Status(503).error().as_deref(), Some("HTTP 503"));
        assert_eq!(Outcome::Status(200).error(), None);
        assert_eq!(Outcome::NoAnswer("timed out".into()).status_code(), None);
        assert_eq!(
            Outcome::Refused("x".into()).error().as_deref(),
            Some("refused: x")
        );
    }
}
