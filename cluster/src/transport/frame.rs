//! The bytes of a call on its stream.
//!
//! Request: `group: u64 | method: u16 | length: u32 | body` (big-endian), then the caller
//! finishes its side of the stream. Response: `status: u8 (0 ok, 1 refused) | length: u32 |
//! body`, where a refusal's body is its reason as UTF-8. Lengths are checked against the limit
//! before anything is allocated for the body.

pub const REQUEST_HEADER: usize = 8 + 2 + 4;
pub const RESPONSE_HEADER: usize = 1 + 4;

pub const STATUS_OK: u8 = 0;
pub const STATUS_REFUSED: u8 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestHeader {
    pub group: u64,
    pub method: u16,
    pub len: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseHeader {
    pub status: u8,
    pub len: u32,
}

/// Why a header was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderError {
    TooLarge { size: usize, max: usize },
    BadStatus(u8),
}

pub fn encode_request(header: RequestHeader) -> [u8; REQUEST_HEADER] {
    let mut out = [0u8; REQUEST_HEADER];
    out[..8].copy_from_slice(&header.group.to_be_bytes());
    out[8..10].copy_from_slice(&header.method.to_be_bytes());
    out[10..].copy_from_slice(&header.len.to_be_bytes());
    out
}

pub fn decode_request(
    bytes: &[u8; REQUEST_HEADER],
    max: usize,
) -> Result<RequestHeader, HeaderError> {
    let header = RequestHeader {
        group: u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes")),
        method: u16::from_be_bytes(bytes[8..10].try_into().expect("2 bytes")),
        len: u32::from_be_bytes(bytes[10..].try_into().expect("4 bytes")),
    };
    check_len(header.len as usize, max)?;
    Ok(header)
}

pub fn encode_response(header: ResponseHeader) -> [u8; RESPONSE_HEADER] {
    let mut out = [0u8; RESPONSE_HEADER];
    out[0] = header.status;
    out[1..].copy_from_slice(&header.len.to_be_bytes());
    out
}

pub fn decode_response(
    bytes: &[u8; RESPONSE_HEADER],
    max: usize,
) -> Result<ResponseHeader, HeaderError> {
    let header = ResponseHeader {
        status: bytes[0],
        len: u32::from_be_bytes(bytes[1..].try_into().expect("4 bytes")),
    };
    if header.status != STATUS_OK && header.status != STATUS_REFUSED {
        return Err(HeaderError::BadStatus(header.status));
    }
    check_len(header.len as usize, max)?;
    Ok(header)
}

/// A body length is within the limit (and fits the header's 32 bits).
pub fn check_len(size: usize, max: usize) -> Result<(), HeaderError> {
    let max = max.min(u32::MAX as usize);
    if size > max {
        Err(HeaderError::TooLarge { size, max })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        let request = RequestHeader {
            group: u64::MAX,
            method: 12,
            len: 70_000,
        };
        assert_eq!(
            decode_request(&encode_request(request), 1 << 20),
            Ok(request)
        );
        let response = ResponseHeader {
            status: STATUS_REFUSED,
            len: 3,
        };
        assert_eq!(
            decode_response(&encode_response(response), 10),
            Ok(response)
        );
    }

    #[test]
    fn lengths_over_the_limit_are_refused_before_reading_the_body() {
        let request = RequestHeader {
            group: 1,
            method: 1,
            len: 1_001,
        };
        assert_eq!(
            decode_request(&encode_request(request), 1_000),
            Err(HeaderError::TooLarge {
                size: 1_001,
                max: 1_000
            })
        );
    }

    #[test]
    fn an_unknown_status_is_refused() {
        let bytes = [7, 0, 0, 0, 0];
        assert_eq!(decode_response(&bytes, 10), Err(HeaderError::BadStatus(7)));
    }
}
