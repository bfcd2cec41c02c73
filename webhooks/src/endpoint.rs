//! Which URLs a subscription or a slash command may name: `https://` to a public address or a
//! name, plain `http://` only to an address the operator allowed as internal (for development
//! and tests, e.g. loopback), and never an internal address the operator did not allow
//! ([`TargetPolicy`]). Names are checked again at connect time, address by address
//! ([`resolver`](crate::resolver)). Pure.

use std::net::{IpAddr, Ipv4Addr};

use reqwest::Url;

use crate::target::TargetPolicy;

/// Longest URL accepted.
pub const MAX_URL_BYTES: usize = 2_048;

/// Why a URL is refused (the message is shown to the admin).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadUrl {
    #[error("not an absolute URL")]
    Unparsable,
    #[error("longer than 2048 bytes")]
    TooLong,
    #[error(
        "only https URLs are allowed, or http to an address the operator allows ([webhooks] allow_internal)"
    )]
    Scheme,
    #[error("a URL with a user name or password is not allowed")]
    Credentials,
    #[error(
        "{0} is an internal address (this host, a private or link-local network …) the operator does not allow ([webhooks] allow_internal)"
    )]
    Internal(IpAddr),
}

/// The URL, if a subscription may use it under `policy`.
pub fn check_url(text: &str, policy: &TargetPolicy) -> Result<Url, BadUrl> {
    if text.len() > MAX_URL_BYTES {
        return Err(BadUrl::TooLong);
    }
    let url = Url::parse(text).map_err(|_| BadUrl::Unparsable)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(BadUrl::Credentials);
    }
    let host = url.host().ok_or(BadUrl::Unparsable)?;
    let literal = literal_address(&host);
    if let Some(ip) = literal
        && !policy.permits(ip)
    {
        return Err(BadUrl::Internal(ip));
    }
    match url.scheme() {
        "https" => Ok(url),
        // Plain HTTP would carry signed payloads in the clear: only to allowed internal
        // addresses, named literally.
        "http" if literal.is_some_and(|ip| policy.allows_internal(ip)) => Ok(url),
        _ => Err(BadUrl::Scheme),
    }
}

/// The address a host stands for without a resolver: a literal, or `localhost` (which every
/// resolver maps to this host — judged as 127.0.0.1).
fn literal_address(host: &url::Host<&str>) -> Option<IpAddr> {
    match host {
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            (name == "localhost" || name.ends_with(".localhost"))
                .then_some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        }
        url::Host::Ipv4(ip) => Some(IpAddr::V4(*ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(*ip)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> TargetPolicy {
        TargetPolicy::parse(&["127.0.0.0/8".into(), "::1".into()]).unwrap()
    }

    #[test]
    fn https_to_names_and_public_addresses() {
        let policy = TargetPolicy::public_only();
        assert!(check_url("https://hooks.example.com/chorus?x=1", &policy).is_ok());
        assert!(check_url("https://93.184.216.34/hook", &policy).is_ok());
        assert_eq!(
            check_url("http://example.com/hook", &policy),
            Err(BadUrl::Scheme)
        );
        assert_eq!(
            check_url("http://93.184.216.34/hook", &policy),
            Err(BadUrl::Scheme)
        );
        assert_eq!(
            check_url("ftp://example.com/", &policy),
            Err(BadUrl::Scheme)
        );
    }

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        let policy = TargetPolicy::public_only();
        for url in [
            "https://127.0.0.1/",
            "https://localhost:8443/",
            "https://api.localhost/",
            "https://169.254.169.254/latest/meta-data/",
            "https://10.0.0.1/",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "http://127.0.0.1:9000/hook",
            "https://0.0.0.0/",
        ] {
            assert!(
                matches!(check_url(url, &policy), Err(BadUrl::Internal(_))),
                "{url}"
            );
        }
    }

    #[test]
    fn http_only_to_allowed_internal_addresses() {
        let policy = loopback();
        assert!(check_url("http://127.0.0.1:9000/hook", &policy).is_ok());
        assert!(check_url("http://127.8.9.10/hook", &policy).is_ok());
        assert!(check_url("http://[::1]:9000/", &policy).is_ok());
        assert!(check_url("http://localhost:9000/", &policy).is_ok());
        assert!(check_url("https://localhost:9000/", &policy).is_ok());
        assert_eq!(
            check_url("http://10.0.0.1/", &policy),
            Err(BadUrl::Internal("10.0.0.1".parse().unwrap()))
        );
        assert_eq!(
            check_url("http://example.com/hook", &policy),
            Err(BadUrl::Scheme)
        );
    }

    #[test]
    fn malformed_urls() {
        let policy = loopback();
        assert_eq!(check_url("/relative", &policy), Err(BadUrl::Unparsable));
        assert_eq!(
            check_url("https://user:pw@example.com/", &policy),
            Err(BadUrl::Credentials)
        );
        assert_eq!(
            check_url(
                &format!("https://example.com/{}", "a".repeat(2_048)),
                &policy
            ),
            Err(BadUrl::TooLong)
        );
    }
}
