//! InitProducerId: a fresh producer id for an idempotent producer, as Kafka's coordinator
//! hands out for requests without a transactional id. Transactions are not served yet.

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
    if req.transactional_id.is_some_and(|t| !t.is_empty()) {
        log::warn!("InitProducerId with a transactional id: transactions are not supported");
        resp.error_code = error::TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    } else {
        match b.next_producer_id(now) {
            Ok(pid) => {
                resp.producer_id = pid;
                resp.producer_epoch = 0;
            }
            Err(e) => {
                log::error!("allocating a producer id: {e}");
                resp.error_code = error::COORDINATOR_NOT_AVAILABLE;
            }
        }
    }
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}
