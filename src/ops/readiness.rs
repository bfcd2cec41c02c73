//! `GET /readyz`: whether this process should receive traffic, and if not, why.
//!
//! A process is ready when every probe it was built with answers within [`PROBE_TIMEOUT`] — its
//! stores answer a trivial read, its channel service (or the cluster's, through the router) has
//! a leader that answers, each Raft group on a channel node knows its leader — and it is not
//! draining. The probes are I/O at the edge; [`verdict`] is the pure decision.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chorus_channel_node::ClusterChannelNode;
use chorus_cluster::ChannelRouter;
use chorus_core::{MessageStore, MetadataStore};
use serde::Serialize;
use tokio::sync::watch;
use uuid::Uuid;

/// How long a probe may take before it counts as failed: a load balancer asks often.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// One dependency to ask.
#[async_trait]
pub(crate) trait Probe: Send + Sync {
    fn name(&self) -> &'static str;
    async fn check(&self) -> Result<(), String>;
}

/// The answer: `ready`, each check's outcome (`ok` or why not), and the list of what is not ready.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub ready: bool,
    pub checks: BTreeMap<&'static str, String>,
    pub not_ready: Vec<String>,
}

/// The decision: ready only when not draining and every probe passed.
pub(crate) fn verdict(draining: bool, results: Vec<(&'static str, Result<(), String>)>) -> Report {
    let mut report = Report {
        ready: true,
        checks: BTreeMap::new(),
        not_ready: Vec::new(),
    };
    if draining {
        report.ready = false;
        report
            .not_ready
            .push("draining: the process is shutting down".into());
    }
    for (name, result) in results {
        match result {
            Ok(()) => {
                report.checks.insert(name, "ok".into());
            }
            Err(why) => {
                report.ready = false;
                report.not_ready.push(format!("{name}: {why}"));
                report.checks.insert(name, why);
            }
        }
    }
    report
}

/// The probes of one process and its draining flag.
pub(crate) struct Readiness {
    probes: Vec<Box<dyn Probe>>,
    draining: watch::Receiver<bool>,
}

impl Readiness {
    pub fn new(draining: watch::Receiver<bool>) -> Self {
        Readiness {
            probes: Vec::new(),
            draining,
        }
    }

    pub fn with(mut self, probe: impl Probe + 'static) -> Self {
        self.probes.push(Box::new(probe));
        self
    }

    /// Asks every probe at once.
    pub async fn report(&self) -> Report {
        let checks = self.probes.iter().map(|probe| async move {
            let result = match tokio::time::timeout(PROBE_TIMEOUT, probe.check()).await {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
            };
            (probe.name(), result)
        });
        let results = futures_util::future::join_all(checks).await;
        verdict(*self.draining.borrow(), results)
    }
}

/// The metadata store answers a read.
pub(crate) struct MetadataProbe(pub Arc<dyn MetadataStore>);

#[async_trait]
impl Probe for MetadataProbe {
    fn name(&self) -> &'static str {
        "metadata_store"
    }
    async fn check(&self) -> Result<(), String> {
        self.0
            .count_owners(Uuid::nil())
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// The message store answers a read.
pub(crate) struct MessagesProbe(pub Arc<dyn MessageStore>);

#[async_trait]
impl Probe for MessagesProbe {
    fn name(&self) -> &'static str {
        "message_store"
    }
    async fn check(&self) -> Result<(), String> {
        self.0
            .event(Uuid::nil(), 0)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// The channel service answers a leader read (after a read index) for a channel: it has a
/// leader, and that leader can reach a quorum.
pub(crate) struct ChannelServiceProbe(pub Arc<dyn ChannelRouter>);

#[async_trait]
impl Probe for ChannelServiceProbe {
    fn name(&self) -> &'static str {
        "channel_service"
    }
    async fn check(&self) -> Result<(), String> {
        self.0
            .last_seqs(&[Uuid::nil()])
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// Every Raft group with a replica on this channel node knows its leader.
pub(crate) struct RaftGroupsProbe(pub Arc<ClusterChannelNode>);

#[async_trait]
impl Probe for RaftGroupsProbe {
    fn name(&self) -> &'static str {
        "raft_groups"
    }
    async fn check(&self) -> Result<(), String> {
        let mut leaderless: Vec<u32> = self
            .0
            .replicas()
            .iter()
            .filter(|(_, replica)| replica.raft().metrics().borrow().current_leader.is_none())
            .map(|(shard, _)| *shard)
            .collect();
        if leaderless.is_empty() {
            return Ok(());
        }
        leaderless.sort_unstable();
        Err(format!("shards without a leader: {leaderless:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_when_every_probe_passes_and_not_draining() {
        let report = verdict(false, vec![("a", Ok(())), ("b", Ok(()))]);
        assert!(report.ready);
        assert!(report.not_ready.is_empty());
        assert_eq!(report.checks["a"], "ok");
    }

    #[test]
    fn each_failure_and_draining_are_named() {
        let report = verdict(true, vec![("a", Ok(())), ("b", Err("refused".into()))]);
        assert!(!report.ready);
        assert_eq!(
            report.not_ready,
            vec![
                "draining: the process is shutting down".to_string(),
                "b: refused".to_string()
            ]
        );
        assert_eq!(report.checks["b"], "refused");
    }
}
