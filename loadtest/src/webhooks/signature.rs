//! The receiver's check of a delivery's signature, written from the scheme in docs/BOTS.md
//! rather than by calling `chorus_webhooks::signature`: a benchmark that verified with the
//! sender's own code would not notice the two drifting apart.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a delivery's timestamp may be from the sink's clock, as docs/BOTS.md advises.
pub const TOLERANCE_SECS: i64 = 300;

/// True when `signature` (`v1=` and 64 hex digits) is HMAC-SHA256 with `secret` over
/// `timestamp + "." + body`, and `timestamp` (unix seconds, as sent) is within
/// [`TOLERANCE_SECS`] of `now`.
pub fn verified(secret: &str, timestamp: &str, body: &[u8], signature: &str, now: i64) -> bool {
    let Ok(sent_at) = timestamp.parse::<i64>() else {
        return false;
    };
    if (now - sent_at).abs() > TOLERANCE_SECS {
        return false;
    }
    let Some(digest) = signature.strip_prefix("v1=").and_then(hex_digest) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    // Constant time, as a real receiver must compare.
    mac.verify_slice(&digest).is_ok()
}

/// 64 hex digits as 32 bytes.
fn hex_digest(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Computed independently with
    // `printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test`.
    const KNOWN: &str = "v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789";

    #[test]
    fn a_known_signature_is_accepted() {
        assert!(verified(
            "whsec_test",
            "1700000000",
            br#"{"a":1}"#,
            KNOWN,
            1_700_000_000
        ));
    }

    #[test]
    fn a_changed_body_key_or_timestamp_is_refused() {
        let now = 1_700_000_000;
        assert!(!verified(
            "whsec_test",
            "1700000000",
            br#"{"a":2}"#,
            KNOWN,
            now
        ));
        assert!(!verified(
            "whsec_other",
            "1700000000",
            br#"{"a":1}"#,
            KNOWN,
            now
        ));
        assert!(!verified(
            "whsec_test",
            "1700000001",
            br#"{"a":1}"#,
            KNOWN,
            now
        ));
    }

    #[test]
    fn stale_or_malformed_headers_are_refused() {
        let body = br#"{"a":1}"#;
        let late = 1_700_000_000 + TOLERANCE_SECS + 1;
        assert!(!verified("whsec_test", "1700000000", body, KNOWN, late));
        assert!(!verified("whsec_test", "soon", body, KNOWN, 1_700_000_000));
        assert!(!verified(
            "whsec_test",
            "1700000000",
            body,
            &KNOWN[1..],
            1_700_000_000
        ));
        let not_hex = format!("v1={}", "zz".repeat(32));
        assert!(!verified(
            "whsec_test",
            "1700000000",
            body,
            &not_hex,
            1_700_000_000
        ));
    }
}
