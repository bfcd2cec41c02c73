//! How every timestamp is spelled, on the socket and in the REST API: RFC 3339 in UTC with exactly
//! three fraction digits, `2026-11-24T12:00:00.120Z`. One precision everywhere, so a message's
//! `created_at` in its `ack`, its `message` frame, its history entry and its `/events` entry is
//! the same string, whichever store it was read from (ScyllaDB keeps milliseconds, PostgreSQL
//! microseconds, the clock nanoseconds). Reading accepts any RFC 3339 precision.
//!
//! Use with `#[serde(with = "chorus_protocol::timestamp")]`, or `timestamp::option` for an
//! `Option`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// The wire spelling of `at`.
pub fn format(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format(at))
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    DateTime::<Utc>::deserialize(deserializer)
}

/// The same for an optional timestamp (`null` when absent).
pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(
        at: &Option<DateTime<Utc>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => serializer.serialize_some(&format(at)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<DateTime<Utc>>::deserialize(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn every_precision_is_written_with_three_fraction_digits() {
        let whole = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
        assert_eq!(format(&whole), "2026-11-24T12:00:00.000Z");
        let nanos = whole + chrono::Duration::nanoseconds(123_456_789);
        assert_eq!(format(&nanos), "2026-11-24T12:00:00.123Z");
        let micros = whole + chrono::Duration::microseconds(120_500);
        assert_eq!(format(&micros), "2026-11-24T12:00:00.120Z");
    }

    #[test]
    fn any_rfc3339_precision_is_read() {
        #[derive(serde::Deserialize)]
        struct At {
            #[serde(with = "super")]
            at: DateTime<Utc>,
            #[serde(with = "super::option", default)]
            maybe: Option<DateTime<Utc>>,
        }
        let at: At =
            serde_json::from_str(r#"{"at": "2026-11-24T12:00:00.123456789Z", "maybe": null}"#)
                .unwrap();
        assert_eq!(at.at.timestamp_subsec_nanos(), 123_456_789);
        assert_eq!(at.maybe, None);
        let at: At = serde_json::from_str(
            r#"{"at": "2026-11-24T13:00:00+01:00", "maybe": "2026-11-24T12:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(at.at, at.maybe.unwrap());
    }
}
