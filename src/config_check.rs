//! `chorus config check`: says whether a configuration can start, without opening a store or a
//! socket, and what the process would run with.
//!
//! `main.rs` loads the configuration exactly as `serve` does (defaults, the file, `CHORUS_*`
//! environment variables, flags) and hands it here. A cluster configuration goes through the same
//! `check_cluster_config` that `ClusterProcess::start` runs first. The summary names roles,
//! addresses, seeds, certificate paths (the client certificate is read and checked) and the stores' URLs with their passwords hidden, so an
//! operator can print it before a rollout and tests/deploy_manifests.rs can compare it with the
//! ports, probes and services the deployment manifests declare.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Serialize;

use crate::check_cluster_config;
use crate::config::{NodeConfig, Role};

/// What a process would run with: the settings a deployment wires to the outside world.
#[derive(Debug, Serialize)]
pub struct ConfigSummary {
    /// Empty for an embedded node.
    pub roles: Vec<Role>,
    pub data_dir: PathBuf,
    /// Only where the process serves the REST API (embedded, or the `api` role).
    pub api_addr: Option<SocketAddr>,
    /// Only where the process runs a gateway (embedded, or the `gateway` role).
    pub ws_addr: Option<SocketAddr>,
    pub ops_addr: Option<SocketAddr>,
    /// A channel node's id and transport address.
    pub node_id: Option<u64>,
    pub listen: Option<SocketAddr>,
    pub seeds: BTreeMap<u64, SocketAddr>,
    pub shard_count: u32,
    pub replication: usize,
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// The certificate and key the API and gateway serve TLS with (`[client_tls]`), checked
    /// readable and matching; unset: plain TCP.
    pub client_tls_cert: Option<PathBuf>,
    pub client_tls_key: Option<PathBuf>,
    /// Store URLs by setting name (`metadata_url`, …), passwords replaced by `***`; unset ones
    /// are left out (embedded or in-process).
    pub stores: BTreeMap<&'static str, String>,
    /// Whether `jwt_secret` is set (its value is never printed).
    pub jwt_secret_set: bool,
}

/// The configuration's problems, or what it would run with.
pub fn check(config: &NodeConfig) -> Result<ConfigSummary, String> {
    let roles = &config.cluster.roles;
    let embedded = roles.is_empty();
    if !embedded {
        check_cluster_config(config)?;
    }
    let seeds = config.cluster.seed_map()?;
    crate::tls::acceptor(
        config.client_tls.cert.as_deref(),
        config.client_tls.key.as_deref(),
    )
    .map_err(|err| format!("invalid client_tls: {err}"))?;
    let has = |role| embedded || roles.contains(&role);
    let channel = roles.contains(&Role::Channel);
    let stores = [
        ("metadata_url", &config.metadata_url),
        ("messages_url", &config.messages_url),
        ("bus_url", &config.bus_url),
        ("presence_url", &config.presence_url),
        ("rate_limit_url", &config.rate_limit_url),
        ("session_url", &config.session_url),
    ]
    .into_iter()
    .filter_map(|(name, url)| url.as_deref().map(|url| (name, hide_password(url))))
    .collect();
    Ok(ConfigSummary {
        roles: roles.clone(),
        data_dir: config.data_dir.clone(),
        api_addr: has(Role::Api).then_some(config.api_addr),
        ws_addr: has(Role::Gateway).then_some(config.ws_addr),
        ops_addr: config.ops_addr,
        node_id: channel.then_some(config.cluster.node_id),
        listen: if channel { config.cluster.listen } else { None },
        seeds,
        shard_count: config.cluster.shard_count,
        replication: config.cluster.replication,
        tls_ca: config.cluster.tls_ca.clone(),
        tls_cert: config.cluster.tls_cert.clone(),
        tls_key: config.cluster.tls_key.clone(),
        client_tls_cert: config.client_tls.cert.clone(),
        client_tls_key: config.client_tls.key.clone(),
        stores,
        jwt_secret_set: config.jwt_secret.is_some(),
    })
}

/// `scheme://user:secret@host/…` → `scheme://user:***@host/…`; other URLs unchanged.
fn hide_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ClusterSection;

    #[test]
    fn client_tls_must_name_both_files_and_they_must_hold_pem() {
        let mut config = NodeConfig::default();
        config.client_tls.cert = Some("/nonexistent/cert.pem".into());
        let err = check(&config).unwrap_err();
        assert!(err.contains("client_tls") && err.contains("key"), "{err}");
        config.client_tls.key = Some("/nonexistent/key.pem".into());
        let err = check(&config).unwrap_err();
        assert!(err.contains("/nonexistent/cert.pem"), "{err}");
    }

    #[test]
    fn passwords_are_hidden_and_the_rest_kept() {
        assert_eq!(
            hide_password("postgres://chorus:s3cr@t@db:5432/chorus?x=1"),
            "postgres://chorus:***@db:5432/chorus?x=1"
        );
        assert_eq!(
            hide_password("postgres://postgres@db/chorus"),
            "postgres://postgres@db/chorus"
        );
        assert_eq!(hide_password("redis://redis:6379"), "redis://redis:6379");
        assert_eq!(hide_password("local"), "local");
    }

    #[test]
    fn an_embedded_node_passes_with_its_defaults() {
        let summary = check(&NodeConfig::default()).unwrap();
        assert!(summary.roles.is_empty());
        assert!(summary.api_addr.is_some() && summary.ws_addr.is_some());
        assert!(summary.node_id.is_none() && summary.stores.is_empty());
    }

    #[test]
    fn a_gateway_summary_names_only_its_listeners_and_hides_secrets() {
        let config = NodeConfig {
            messages_url: Some("postgres://chorus:pw@db/chorus".into()),
            metadata_url: Some("postgres://chorus:pw@db/chorus".into()),
            bus_url: Some("redis://redis:6379".into()),
            presence_url: Some("redis://redis:6379".into()),
            rate_limit_url: Some("redis://redis:6379".into()),
            session_url: Some("redis://redis:6379".into()),
            jwt_secret: Some("j".repeat(32)),
            cluster: ClusterSection {
                roles: vec![Role::Gateway],
                seeds: vec!["1=10.0.0.1:7101".into()],
                replication: 1,
                tls_ca: Some("ca.pem".into()),
                tls_cert: Some("g.pem".into()),
                tls_key: Some("g.key".into()),
                ..ClusterSection::default()
            },
            ..NodeConfig::default()
        };
        let summary = check(&config).unwrap();
        assert!(summary.ws_addr.is_some() && summary.api_addr.is_none());
        assert_eq!(summary.node_id, None);
        assert_eq!(
            summary.stores["metadata_url"],
            "postgres://chorus:***@db/chorus"
        );
        let json = serde_json::to_string(&summary).unwrap();
        assert!(
            !json.contains("pw@") && !json.contains(&"j".repeat(32)),
            "{json}"
        );
    }

    #[test]
    fn a_cluster_configuration_that_cannot_start_says_why() {
        let config = NodeConfig {
            cluster: ClusterSection {
                roles: vec![Role::Channel],
                ..ClusterSection::default()
            },
            ..NodeConfig::default()
        };
        let why = check(&config).unwrap_err();
        assert!(
            why.contains("seeds is empty") && why.contains("node_id"),
            "{why}"
        );
    }
}
