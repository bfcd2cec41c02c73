//! Who a request really comes from: the peer address, or — when the peer is a proxy the operator
//! trusts — the client it names in `X-Forwarded-For`.
//!
//! Shared by the REST API and the gateway for their request log and per-client limits. Pure: the
//! callers pass the socket's peer and the header values; nothing here reads a socket.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// The proxies (addresses or CIDR networks) whose `X-Forwarded-For` is believed. Empty (the
/// default) believes nobody: a client could otherwise write any address it likes in the header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses `10.0.0.0/8`, `192.168.1.7`, `::1`…; the error names the entry that is neither.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        entries
            .iter()
            .map(|entry| {
                let entry = entry.as_ref().trim();
                IpNet::from_str(entry)
                    .or_else(|_| IpAddr::from_str(entry).map(IpNet::from))
                    .map_err(|_| format!("trusted proxy {entry:?} is not an IP address or network"))
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    fn trusts(&self, addr: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&addr))
    }

    /// The client behind `peer`. A trusted peer's `X-Forwarded-For` (every header line, in order)
    /// is read from the right, skipping the proxies that are trusted too; the first address that
    /// is not is the client. Anything unparsable stops the walk at the last address believed.
    pub fn client_addr<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl IntoIterator<Item = &'a str>,
    ) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for
            .into_iter()
            .flat_map(|line| line.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Ok(addr) = IpAddr::from_str(hop) else {
                break;
            };
            client = addr;
            if !self.trusts(addr) {
                break;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        let got = proxies.client_addr(ip("203.0.113.9"), ["198.51.100.1"]);
        assert_eq!(got, ip("203.0.113.9"));
        let nobody = TrustedProxies::default();
        assert_eq!(
            nobody.client_addr(ip("10.0.0.1"), ["198.51.100.1"]),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_behind_trusted_proxies_is_the_client() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8", "192.168.1.7"]).unwrap();
        // A client spoofing a first hop cannot choose the answer: the proxies appended the real one.
        let got = proxies.client_addr(
            ip("10.1.2.3"),
            ["1.1.1.1, 198.51.100.4", "192.168.1.7, 10.9.9.9"],
        );
        assert_eq!(got, ip("198.51.100.4"));
    }

    #[test]
    fn without_a_header_or_with_garbage_the_last_believed_address_stands() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        assert_eq!(proxies.client_addr(ip("10.0.0.2"), []), ip("10.0.0.2"));
        let got = proxies.client_addr(ip("10.0.0.2"), ["not-an-ip, 10.0.0.3"]);
        assert_eq!(got, ip("10.0.0.3"));
    }

    #[test]
    fn a_bad_entry_is_named() {
        let err = TrustedProxies::parse(&["10.0.0.0/8", "proxy.local"]).unwrap_err();
        assert!(err.contains("proxy.local"), "{err}");
    }
}
