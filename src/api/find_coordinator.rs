//! FindCoordinator: this broker coordinates every group. The first lookup creates the internal
//! `__consumer_offsets` topic, as Kafka does. Transactions are not served yet.

use super::encode;
use crate::broker::{Broker, Outcome};
use crate::protocol::error::{self, ErrorCode};
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use crate::protocol::messages::find_coordinator_response::*;
use crate::protocol::wire::{DResult, Reader};
use std::time::Instant;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

pub fn handle(
    b: &mut Broker,
    hdr: &RequestHeader<'_>,
    body: &[u8],
    now: Instant,
) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = FindCoordinatorRequest::decode(&mut Reader::new(body), v)?;
    let verdict: (ErrorCode, Option<&str>) = match req.key_type {
        KEY_TYPE_GROUP => {
            // An offline log directory holds no coordinator (Kafka: the partition has no leader).
            if !b.logs.is_offline() && b.ensure_offsets_topic(now) {
                (error::NONE, None)
            } else {
                (
                    error::COORDINATOR_NOT_AVAILABLE,
                    Some("The coordinator is not available."),
                )
            }
        }
        KEY_TYPE_TRANSACTION => {
            if !b.logs.is_offline() && b.ensure_txn_topic(now) {
                (error::NONE, None)
            } else {
                (
                    error::COORDINATOR_NOT_AVAILABLE,
                    Some("The coordinator is not available."),
                )
            }
        }
        _ => (
            error::INVALID_REQUEST,
            Some("Unknown coordinator key type."),
        ),
    };
    let ok = verdict.0 == error::NONE;
    let (node, host, port) = if ok {
        (
            b.config.node_id,
            b.config.advertised_host.as_str(),
            b.config.advertised_port as i32,
        )
    } else {
        (-1, "", -1)
    };
    let resp = if v >= 4 {
        FindCoordinatorResponse {
            coordinators: req
                .coordinator_keys
                .iter()
                .map(|k| Coordinator {
                    key: k,
                    node_id: node,
                    host,
                    port,
                    error_code: verdict.0,
                    error_message: verdict.1,
                })
                .collect(),
            ..Default::default()
        }
    } else {
        FindCoordinatorResponse {
            throttle_time_ms: 0,
            error_code: verdict.0,
            error_message: verdict.1,
            node_id: node,
            host,
            port,
            coordinators: Vec::new(),
        }
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}
