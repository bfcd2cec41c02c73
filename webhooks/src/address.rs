//! Which IP addresses are on the public internet: everything outside the IANA special-purpose
//! ranges (this host, private networks, link-local — where cloud metadata services answer —,
//! shared address space, documentation, multicast, reserved). IPv6 forms that carry an IPv4
//! address (mapped, NAT64, 6to4) are judged by that address. Pure.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// True when `ip` is a public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

/// IPv4 ranges that are not the public internet (RFC 6890 and its updates).
const SPECIAL_V4: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),       // "this network"
    (Ipv4Addr::new(10, 0, 0, 0), 8),      // private
    (Ipv4Addr::new(100, 64, 0, 0), 10),   // shared address space (carrier-grade NAT)
    (Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16),  // link-local (cloud metadata services)
    (Ipv4Addr::new(172, 16, 0, 0), 12),   // private
    (Ipv4Addr::new(192, 0, 0, 0), 24),    // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24),    // documentation
    (Ipv4Addr::new(192, 88, 99, 0), 24),  // 6to4 relay anycast
    (Ipv4Addr::new(192, 168, 0, 0), 16),  // private
    (Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation
    (Ipv4Addr::new(203, 0, 113, 0), 24),  // documentation
    (Ipv4Addr::new(224, 0, 0, 0), 4),     // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),     // reserved, broadcast
];

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let bits = u32::from(ip);
    !SPECIAL_V4.iter().any(|(net, prefix)| {
        let mask = u32::MAX << (32 - u32::from(*prefix));
        bits & mask == u32::from(*net) & mask
    })
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    let first = segments[0];
    // Global unicast is 2000::/3; within it, Teredo (2001::/32), ORCHIDv2 (2001:20::/28) and
    // documentation (2001:db8::/32) are not public destinations.
    (first & 0xe000) == 0x2000
        && !(first == 0x2001 && segments[1] == 0)
        && !(first == 0x2001 && (segments[1] & 0xfff0) == 0x0020)
        && !(first == 0x2001 && segments[1] == 0x0db8)
}

/// The IPv4 address an IPv6 address stands for, if it is one of the forms that route to one:
/// IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d, deprecated), NAT64
/// (64:ff9b::a.b.c.d) and 6to4 (2002:AABB:CCDD::).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        // :: and ::1 are not IPv4-compatible addresses; any other ::a.b.c.d is.
        [0, 0, 0, 0, 0, 0, _, _] if u32::from(low) > 1 => Some(low),
        [0x2002, high, mid, ..] => Some(Ipv4Addr::new(
            (high >> 8) as u8,
            high as u8,
            (mid >> 8) as u8,
            mid as u8,
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(text: &str) -> bool {
        is_public(text.parse().unwrap())
    }

    #[test]
    fn public_v4_addresses() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
        ] {
            assert!(public(ip), "{ip}");
        }
    }

    #[test]
    fn internal_v4_addresses() {
        for ip in [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "192.0.2.1",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!public(ip), "{ip}");
        }
    }

    #[test]
    fn v6_addresses() {
        assert!(public("2606:4700:4700::1111"));
        assert!(public("2a00:1450:4001:80b::200e"));
        for ip in [
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "2001:db8::1",
            "2001::1",
            "100::1",
        ] {
            assert!(!public(ip), "{ip}");
        }
    }

    #[test]
    fn v6_forms_of_v4_addresses_are_judged_by_the_v4_address() {
        assert!(!public("::ffff:127.0.0.1"));
        assert!(!public("::ffff:169.254.169.254"));
        assert!(public("::ffff:8.8.8.8"));
        assert!(!public("64:ff9b::10.0.0.1"));
        assert!(public("64:ff9b::8.8.8.8"));
        assert!(!public("2002:7f00:0001::"));
        assert!(public("2002:0808:0808::"));
        assert!(!public("::127.0.0.1"));
    }
}
