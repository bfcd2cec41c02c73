//! The DNS resolver of every outgoing HTTP client: resolves a name with the system resolver and
//! keeps only the addresses the [`TargetPolicy`] permits, so a name that was fine when an admin
//! registered it cannot later point the server at an internal address (DNS rebinding). The
//! connection goes to an address checked here: the check and the connect see the same answer.
//! URLs with a literal address never reach a resolver; callers check those with
//! [`check_url`](crate::endpoint::check_url) before sending.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::target::TargetPolicy;

/// A name whose addresses are all internal and not allowed.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to internal addresses ([webhooks] allow_internal does not list them)")]
pub struct RefusedName(pub String);

struct GuardedResolver {
    policy: Arc<TargetPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| policy.permits(addr.ip()))
                .collect();
            if found.is_empty() {
                return Err(Box::new(RefusedName(host)) as Box<_>);
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

/// An HTTP client for requests to URLs that workspace admins chose: addresses filtered by
/// `policy`, no proxy from the environment (a proxy would resolve the name itself), no
/// redirects (they would send a signed request somewhere the admin did not name).
pub fn outbound_client(
    policy: Arc<TargetPolicy>,
    timeout: Duration,
) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { policy }))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("Chorus-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The refused name, if `err` failed because of it.
pub fn refused(err: &reqwest::Error) -> Option<&RefusedName> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<RefusedName>() {
            return Some(refused);
        }
        source = cause.source();
    }
    None
}

/// What the API needs to send to admin-chosen URLs (slash commands): the policy to check URLs
/// with and a client that applies it when connecting.
#[derive(Clone)]
pub struct Outbound {
    pub policy: Arc<TargetPolicy>,
    pub client: reqwest::Client,
}

impl Outbound {
    /// `timeout` bounds a request unless the request sets its own.
    pub fn new(policy: Arc<TargetPolicy>, timeout: Duration) -> Result<Self, reqwest::Error> {
        Ok(Outbound {
            client: outbound_client(policy.clone(), timeout)?,
            policy,
        })
    }
}
