//! Where outgoing requests — webhook deliveries and slash-command URLs — may go: to public
//! addresses, and to internal ones (this host, private networks, link-local, …: see
//! [`address`](crate::address)) only when the operator lists them in `[webhooks]
//! allow_internal`. Without it, a workspace admin could make the server POST to its cloud
//! metadata service, a database or an admin port behind the firewall (server-side request
//! forgery). Pure; [`resolver`](crate::resolver) applies it again to every address a name
//! resolves to when connecting.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::address::is_public;

/// The addresses outgoing requests may reach.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    /// Internal networks allowed anyway (`[webhooks] allow_internal`).
    allow_internal: Vec<IpNet>,
}

/// An `allow_internal` entry that is neither a network nor an address.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("[webhooks] allow_internal: {0:?} is not a network (10.0.0.0/8, fd00::/8) or an address")]
pub struct BadNetwork(pub String);

impl TargetPolicy {
    /// Public addresses only: the default.
    pub fn public_only() -> Self {
        TargetPolicy::default()
    }

    /// Public addresses and these internal networks.
    pub fn allowing(allow_internal: Vec<IpNet>) -> Self {
        TargetPolicy { allow_internal }
    }

    /// From the configuration's entries: networks (`127.0.0.0/8`) or single addresses (`::1`).
    pub fn parse(entries: &[String]) -> Result<Self, BadNetwork> {
        entries
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| BadNetwork(entry.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(TargetPolicy::allowing)
    }

    /// True when a request may be sent to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        is_public(ip) || self.allows_internal(ip)
    }

    /// True when `ip` is in a network the operator allowed.
    pub fn allows_internal(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.allow_internal.iter().any(|net| net.contains(&ip))
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is, so `127.0.0.0/8` covers
/// `::ffff:127.0.0.1`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn by_default_only_public_addresses() {
        let policy = TargetPolicy::public_only();
        assert!(policy.permits(ip("93.184.216.34")));
        assert!(!policy.permits(ip("127.0.0.1")));
        assert!(!policy.permits(ip("169.254.169.254")));
        assert!(!policy.permits(ip("::1")));
    }

    #[test]
    fn allowed_networks_open_exactly_themselves() {
        let policy = TargetPolicy::parse(&["127.0.0.0/8".into(), " ::1 ".into()]).unwrap();
        assert!(policy.permits(ip("127.0.0.1")));
        assert!(policy.permits(ip("127.9.9.9")));
        assert!(policy.permits(ip("::1")));
        assert!(policy.permits(ip("::ffff:127.0.0.1")));
        assert!(!policy.permits(ip("10.0.0.1")));
        assert!(!policy.permits(ip("169.254.169.254")));
        assert!(policy.permits(ip("8.8.8.8")));
    }

    #[test]
    fn bad_entries_are_named() {
        assert_eq!(
            TargetPolicy::parse(&["10.0.0.0/8".into(), "intranet".into()]),
            Err(BadNetwork("intranet".into()))
        );
        assert!(TargetPolicy::parse(&["10.0.0.0/33".into()]).is_err());
    }
}
