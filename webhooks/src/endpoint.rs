//! Which URLs a subscription may send to: `https://` anywhere, plain `http://` only to this
//! machine (loopback addresses and `localhost`), for development and tests. Pure.

use reqwest::Url;

/// Longest URL accepted.
pub const MAX_URL_BYTES: usize = 2_048;

/// Why a URL is refused (the message is shown to the admin).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadUrl {
    #[error("not an absolute URL")]
    Unparsable,
    #[error("longer than 2048 bytes")]
    TooLong,
    #[error("only https URLs, or http to a loopback address, are allowed")]
    Scheme,
    #[error("a URL with a user name or password is not allowed")]
    Credentials,
}

/// The URL, if a subscription may use it.
pub fn check_url(text: &str) -> Result<Url, BadUrl> {
    if text.len() > MAX_URL_BYTES {
        return Err(BadUrl::TooLong);
    }
    let url = Url::parse(text).map_err(|_| BadUrl::Unparsable)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(BadUrl::Credentials);
    }
    let host = url.host().ok_or(BadUrl::Unparsable)?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&host) => Ok(url),
        _ => Err(BadUrl::Scheme),
    }
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_http_only_to_loopback() {
        assert!(check_url("https://hooks.example.com/chorus?x=1").is_ok());
        assert!(check_url("http://127.0.0.1:9000/hook").is_ok());
        assert!(check_url("http://127.8.9.10/hook").is_ok());
        assert!(check_url("http://[::1]:9000/").is_ok());
        assert!(check_url("http://localhost:9000/").is_ok());
        assert_eq!(check_url("http://example.com/hook"), Err(BadUrl::Scheme));
        assert_eq!(check_url("http://10.0.0.1/"), Err(BadUrl::Scheme));
        assert_eq!(check_url("ftp://127.0.0.1/"), Err(BadUrl::Scheme));
        assert_eq!(check_url("/relative"), Err(BadUrl::Unparsable));
        assert_eq!(
            check_url("https://user:pw@example.com/"),
            Err(BadUrl::Credentials)
        );
        assert_eq!(
            check_url(&format!("https://example.com/{}", "a".repeat(2_048))),
            Err(BadUrl::TooLong)
        );
    }
}
