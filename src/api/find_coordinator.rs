//! FindCoordinator: the coordinator of a group (or transactional id) is the leader of its
//! partition of `__consumer_offsets` (`__transaction_state`); the first lookup creates the
//! internal topic, as Kafka does.

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
            if !b.logs().is_offline() && b.ensure_offsets_topic(now) {
                (error::NONE, None)
            } else {
                (
                    error::COORDINATOR_NOT_AVAILABLE,
                    Some("The coordinator is not available."),
                )
            }
        }
        KEY_TYPE_TRANSACTION => {
            if !b.logs().is_offline() && b.ensure_txn_topic(now) {
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
    // The coordinator of a key is the leader of its partition of the internal topic: this
    // broker on a single node; in a cluster, whichever broker leads it.
    let topic = if req.key_type == KEY_TYPE_TRANSACTION {
        crate::txn::log::TRANSACTION_STATE_TOPIC
    } else {
        crate::group::offsets::OFFSETS_TOPIC
    };
    let locate = |key: &str| -> (ErrorCode, Option<&str>, i32, String, i32) {
        if verdict.0 != error::NONE {
            return (verdict.0, verdict.1, -1, String::new(), -1);
        }
        if !b.in_cluster() {
            let c = &b.config();
            return (
                error::NONE,
                None,
                c.node_id,
                c.advertised_host.clone(),
                c.advertised_port as i32,
            );
        }
        let leader = b.image().topic(topic).and_then(|t| {
            let p = crate::group::offsets::partition_for(key, t.partitions.len() as i32);
            t.partition(p).map(|p| p.leader)
        });
        match leader.and_then(|id| b.broker_address(id)) {
            Some(a) => (error::NONE, None, a.id, a.host, a.port),
            None => (
                error::COORDINATOR_NOT_AVAILABLE,
                Some("The coordinator is not available."),
                -1,
                String::new(),
                -1,
            ),
        }
    };
    let located: Vec<_> = if v >= 4 {
        req.coordinator_keys.iter().map(|k| locate(k)).collect()
    } else {
        vec![locate(req.key)]
    };
    let resp = if v >= 4 {
        FindCoordinatorResponse {
            coordinators: req
                .coordinator_keys
                .iter()
                .zip(&located)
                .map(|(k, l)| Coordinator {
                    key: k,
                    node_id: l.2,
                    host: &l.3,
                    port: l.4,
                    error_code: l.0,
                    error_message: l.1,
                })
                .collect(),
            ..Default::default()
        }
    } else {
        let l = &located[0];
        FindCoordinatorResponse {
            throttle_time_ms: 0,
            error_code: l.0,
            error_message: l.1,
            node_id: l.2,
            host: &l.3,
            port: l.4,
            coordinators: Vec::new(),
        }
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}
