//! InitProducerId: a fresh producer id for an idempotent producer (no transactional id), or
//! the transaction coordinator's answer for a transactional id (see `api::txn`).

use super::encode;
use crate::broker::{Broker, Outcome};
use crate::protocol::error;
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::init_producer_id_request::InitProducerIdRequest;
use crate::protocol::messages::init_producer_id_response::InitProducerIdResponse;
use crate::protocol::wire::{DResult, Reader};
use std::time::Instant;

pub fn handle(
    b: &mut Broker,
    hdr: &RequestHeader<'_>,
    body: &[u8],
    now: Instant,
) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = InitProducerIdRequest::decode(&mut Reader::new(body), v)?;
    let mut resp = InitProducerIdResponse {
        producer_id: -1,
        producer_epoch: -1,
        ..Default::default()
    };
    if let Some(id) = req.transactional_id {
        // v3+: a producer recovering from an error names its current id and epoch.
        let expected = (req.producer_id >= 0).then_some((req.producer_id, req.producer_epoch));
        let (code, pid, epoch) =
            super::txn::init_transactional(b, id, req.transaction_timeout_ms, expected, now);
        // PRODUCER_FENCED exists from v4; older versions get INVALID_PRODUCER_EPOCH.
        resp.error_code = if code == crate::txn::coordinator::PRODUCER_FENCED && v < 4 {
            error::INVALID_PRODUCER_EPOCH
        } else {
            code
        };
        resp.producer_id = pid;
        resp.producer_epoch = epoch;
    } else {
        match b.next_producer_id(now) {
            Ok(pid) => {
                resp.producer_id = pid;
                resp.producer_epoch = 0;
            }
            // A cluster broker waiting for its block from the active controller: retriable,
            // as Kafka answers it (the client retries InitProducerId, no lookup).
            Err(e) if Broker::not_controller(&e) => {
                resp.error_code = error::COORDINATOR_LOAD_IN_PROGRESS;
            }
            Err(e) => {
                log::error!("allocating a producer id: {e}");
                resp.error_code = error::COORDINATOR_NOT_AVAILABLE;
            }
        }
    }
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}
