//! The one way Chorus opens a Redis client: RESP3, fail fast at start (5 s), reconnect with
//! exponential backoff forever afterwards. Used by the bus, presence and rate limits.

use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::prelude::{Builder, Client, ClientLike, Config, ReconnectPolicy};
use fred::types::RespVersion;

/// How long a start-up connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A URL with its password hidden, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// Refuses what this build cannot honour instead of connecting less safely than asked: the Redis
/// client is built without TLS, and `rediss://` asks for TLS.
fn check_scheme(url: &str) -> Result<(), String> {
    if url.starts_with("rediss://") {
        return Err(format!(
            "{} asks for TLS, which this build's Redis client does not speak; refusing rather \
             than connecting unencrypted. Use redis:// on a private network, or a TLS tunnel \
             (stunnel, a sidecar) that Chorus reaches as redis:// (docs/OPERATIONS.md, TLS)",
            redact(url)
        ));
    }
    Ok(())
}

fn builder(url: &str) -> Result<Builder, String> {
    check_scheme(url)?;
    let mut config = Config::from_url(url).map_err(|e| format!("invalid Redis URL: {e}"))?;
    config.version = RespVersion::RESP3;
    config.fail_fast = true;
    let mut builder = Builder::from_config(config);
    builder
        .set_policy(ReconnectPolicy::new_exponential(0, 50, 2_000, 2))
        .with_performance_config(|perf| {
            // Subscribers' internal broadcast buffer; overflowing it is detected (lag) and
            // answered with a resync, so it only needs to absorb ordinary bursts.
            perf.broadcast_channel_capacity = 4096;
        });
    Ok(builder)
}

async fn started<F>(url: &str, init: F) -> Result<(), String>
where
    F: std::future::Future<Output = Result<(), fred::error::Error>>,
{
    match tokio::time::timeout(CONNECT_TIMEOUT, init).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(format!("cannot reach Redis at {}: {err}", redact(url))),
        Err(_) => Err(format!(
            "cannot reach Redis at {}: timed out after 5 s",
            redact(url)
        )),
    }
}

/// A connected command client.
pub async fn connect(url: &str) -> Result<Client, String> {
    let client = builder(url)?.build().map_err(|e| e.to_string())?;
    started(url, async { client.init().await.map(drop) }).await?;
    Ok(client)
}

/// A connected subscriber client.
pub async fn connect_subscriber(url: &str) -> Result<SubscriberClient, String> {
    let client = builder(url)?
        .build_subscriber_client()
        .map_err(|e| e.to_string())?;
    started(url, async { client.init().await.map(drop) }).await?;
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::{builder, redact};

    #[test]
    fn a_tls_url_is_refused_never_downgraded() {
        let Err(err) = builder("rediss://user:secret@cache.example:6380") else {
            panic!("rediss:// must be refused");
        };
        assert!(err.contains("rediss://***@cache.example:6380"), "{err}");
        assert!(err.contains("TLS") && !err.contains("secret"), "{err}");
        assert!(builder("redis://127.0.0.1:6379").is_ok());
    }

    #[test]
    fn passwords_never_appear_in_messages() {
        assert_eq!(
            redact("redis://user:secret@host:6379/0"),
            "redis://***@host:6379/0"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
