//! Request and response headers.
//!
//! Request header v0: api_key, api_version, correlation_id; v1 adds client_id (a *non-compact*
//! nullable string even in v2); v2 adds tagged fields. Flexible API versions use v2. Response
//! header v0 is the correlation id; v1 adds tagged fields. ApiVersions responses always use v0
//! so that a client can read them before it knows which versions the broker speaks.

use super::apis;
use super::wire::{DResult, Reader, Writer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeader<'a> {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<&'a str>,
}

impl<'a> RequestHeader<'a> {
    /// Parses the header of a frame and returns it with the body that follows.
    /// An API key or version we do not serve still parses (as header v1) so that the caller can
    /// answer ApiVersions with UNSUPPORTED_VERSION or log the request it refuses.
    pub fn parse(frame: &'a [u8]) -> DResult<(RequestHeader<'a>, &'a [u8])> {
        let mut r = Reader::new(frame);
        let api_key = r.i16()?;
        let api_version = r.i16()?;
        let correlation_id = r.i32()?;
        let client_id = r.nullable_string()?;
        let hdr = RequestHeader {
            api_key,
            api_version,
            correlation_id,
            client_id,
        };
        if apis::is_flexible(api_key, api_version) {
            let tags = r.skip_tagged_fields();
            // An ApiVersions we cannot serve is answered from its correlation id alone, so a
            // header we cannot fully read (a newer client's, or a v1 header) is still enough.
            let answerable =
                api_key == apis::API_VERSIONS && !apis::is_supported(api_key, api_version);
            if !answerable {
                tags?;
            }
        }
        Ok((hdr, r.rest()))
    }
}

/// Builds a whole response frame: 4-byte size, response header, body.
pub fn frame_response(
    hdr: &RequestHeader<'_>,
    body: impl FnOnce(&mut Writer<'_>),
    capacity_hint: usize,
) -> Vec<u8> {
    let mut buf = Vec::with_capacity(capacity_hint.max(64));
    let mut w = Writer::new(&mut buf);
    let size_at = w.reserve_i32();
    w.i32(hdr.correlation_id);
    if hdr.api_key != apis::API_VERSIONS && apis::is_flexible(hdr.api_key, hdr.api_version) {
        w.uvarint(0);
    }
    body(&mut w);
    let size = (w.len() - 4) as i32;
    w.patch_i32(size_at, size);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v2_header_with_tagged_fields() {
        // ApiVersions v4, correlation 7, client "ab", empty tagged fields, then body byte 0x09.
        let f = [0, 18, 0, 4, 0, 0, 0, 7, 0, 2, b'a', b'b', 0, 9];
        let (h, body) = RequestHeader::parse(&f).unwrap();
        assert_eq!(h.api_key, 18);
        assert_eq!(h.api_version, 4);
        assert_eq!(h.correlation_id, 7);
        assert_eq!(h.client_id, Some("ab"));
        assert_eq!(body, &[9]);
    }

    #[test]
    fn api_versions_response_uses_header_v0() {
        let h = RequestHeader {
            api_key: 18,
            api_version: 4,
            correlation_id: 1,
            client_id: None,
        };
        let f = frame_response(&h, |w| w.i16(0), 0);
        assert_eq!(f, vec![0, 0, 0, 6, 0, 0, 0, 1, 0, 0]);
        let h = RequestHeader {
            api_key: 1,
            api_version: 12,
            ..h
        };
        let f = frame_response(&h, |w| w.i16(0), 0);
        assert_eq!(f, vec![0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0]);
    }

    #[test]
    fn unsupported_api_versions_header_is_read_leniently() {
        // ApiVersions v99 with a v1 header (no tagged-field byte): still answerable.
        let f = [0, 18, 0, 99, 0, 0, 0, 7, 0, 0];
        let (h, _) = RequestHeader::parse(&f).unwrap();
        assert_eq!((h.api_key, h.api_version, h.correlation_id), (18, 99, 7));
        // A supported flexible version must carry its tagged fields.
        assert!(RequestHeader::parse(&[0, 18, 0, 3, 0, 0, 0, 7, 0, 0]).is_err());
    }

    #[test]
    fn truncated_header_is_an_error() {
        assert!(RequestHeader::parse(&[0, 18, 0]).is_err());
        assert!(RequestHeader::parse(&[0, 18, 0, 4, 0, 0, 0, 7, 0, 9, b'a']).is_err());
    }
}
