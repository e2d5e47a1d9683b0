//! ApiVersions: which APIs and versions we serve, from the one table in `protocol::apis`.

use super::encode;
use crate::broker::{Broker, Outcome};
use crate::protocol::apis::APIS;
use crate::protocol::error;
use crate::protocol::header::{frame_response, RequestHeader};
use crate::protocol::messages::api_versions_request::ApiVersionsRequest;
use crate::protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};
use crate::protocol::wire::{DResult, Reader};

fn api_list() -> Vec<ApiVersion> {
    APIS.iter()
        .map(|a| ApiVersion {
            api_key: a.key,
            min_version: a.min,
            max_version: a.max,
        })
        .collect()
}

pub fn handle(_b: &mut Broker, hdr: &RequestHeader<'_>, body: &[u8]) -> DResult<Outcome> {
    let v = hdr.api_version;
    // The body (client software name and version, v3+) is informational; a malformed one is
    // still an error, as in Kafka, but we read it only to check it.
    let _req = ApiVersionsRequest::decode(&mut Reader::new(body), v)?;
    let resp = ApiVersionsResponse {
        error_code: error::NONE,
        api_keys: api_list(),
        throttle_time_ms: 0,
        ..Default::default()
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}

/// The answer to an ApiVersions request at a version we do not speak: the v0 layout with
/// UNSUPPORTED_VERSION and our list, as Kafka sends it.
pub fn unsupported_version_response(hdr: &RequestHeader<'_>) -> Vec<u8> {
    let resp = ApiVersionsResponse {
        error_code: error::UNSUPPORTED_VERSION,
        api_keys: api_list(),
        ..Default::default()
    };
    frame_response(hdr, |w| resp.encode(w, 0), 128)
}
