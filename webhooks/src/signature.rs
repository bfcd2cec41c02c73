//! The signature of a delivery, as Slack and Stripe do it: HMAC-SHA256, keyed with the
//! subscription's secret, over `timestamp + "." + body`, where the timestamp (unix seconds) is
//! sent in its own header. A receiver recomputes it and refuses old timestamps, so a captured
//! delivery cannot be replayed later. Pure; docs/BOTS.md shows a receiver's check.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header with the unix time (seconds) the signature covers.
pub const TIMESTAMP_HEADER: &str = "x-chorus-timestamp";
/// The header with the signature: `v1=` and 64 lowercase hex digits.
pub const SIGNATURE_HEADER: &str = "x-chorus-signature";
/// The header with the delivery's id, the same on every attempt (for receivers to de-duplicate).
pub const DELIVERY_HEADER: &str = "x-chorus-delivery";
/// The header with the event's kind (`message`, `edit`, …).
pub const EVENT_HEADER: &str = "x-chorus-event";

/// The signature header's value for `body` sent at `timestamp`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("v1={hex}")
}

fn mac(secret: &str) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length")
}

/// Why a receiver refuses a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("the signature header is not v1=<64 hex digits>")]
    Malformed,
    #[error("the timestamp is further from now than the tolerance")]
    Stale,
    #[error("the signature does not match")]
    Mismatch,
}

/// A receiver's check: `signature` is the signature of `body` at `timestamp` with `secret`, and
/// `timestamp` is within `tolerance_secs` of `now` (both unix seconds). Compares in constant time.
pub fn verify(
    secret: &str,
    timestamp: i64,
    body: &[u8],
    signature: &str,
    now: i64,
    tolerance_secs: i64,
) -> Result<(), Rejected> {
    let hex = signature.strip_prefix("v1=").ok_or(Rejected::Malformed)?;
    if hex.len() != 64 {
        return Err(Rejected::Malformed);
    }
    let bytes = (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| Rejected::Malformed)?;
    if (now - timestamp).abs() > tolerance_secs {
        return Err(Rejected::Stale);
    }
    let mut mac = mac(secret);
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&bytes).map_err(|_| Rejected::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently with
        // `printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test`.
        assert_eq!(
            sign("whsec_test", 1_700_000_000, br#"{"a":1}"#),
            "v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }

    #[test]
    fn a_receiver_accepts_its_own_signature_and_refuses_changes() {
        let body = br#"{"kind":"message"}"#;
        let signature = sign("s3cret", 1_000, body);
        assert_eq!(
            verify("s3cret", 1_000, body, &signature, 1_100, 300),
            Ok(())
        );
        assert_eq!(
            verify("s3cret", 1_000, b"{}", &signature, 1_000, 300),
            Err(Rejected::Mismatch)
        );
        assert_eq!(
            verify("other", 1_000, body, &signature, 1_000, 300),
            Err(Rejected::Mismatch)
        );
        assert_eq!(
            verify("s3cret", 1_001, body, &signature, 1_000, 300),
            Err(Rejected::Mismatch),
            "the timestamp is signed"
        );
        assert_eq!(
            verify("s3cret", 1_000, body, &signature, 1_000 + 301, 300),
            Err(Rejected::Stale)
        );
        assert_eq!(
            verify("s3cret", 1_000, body, "v0=abc", 1_000, 300),
            Err(Rejected::Malformed)
        );
        assert_eq!(
            verify(
                "s3cret",
                1_000,
                body,
                &format!("v1={}", "zz".repeat(32)),
                1_000,
                300
            ),
            Err(Rejected::Malformed)
        );
    }
}
