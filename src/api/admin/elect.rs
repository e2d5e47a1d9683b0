//! ElectLeaders (key 43): preferred or unclean leader elections, decided by the active
//! controller's writer (a cluster node forwards it there).

use super::super::encode;
use crate::broker::{Broker, Outcome};
use crate::protocol::error;
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::elect_leaders_request::ElectLeadersRequest;
use crate::protocol::messages::elect_leaders_response::*;
use crate::protocol::wire::{DResult, Reader};
use std::time::Instant;

pub fn handle(
    b: &mut Broker,
    hdr: &RequestHeader<'_>,
    body: &[u8],
    now: Instant,
) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = ElectLeadersRequest::decode(&mut Reader::new(body), v)?;
    if let Some(ts) = &req.topic_partitions {
        super::super::check_partition_count(ts.iter().map(|t| t.partitions.len()).sum())?;
    }
    let asked = req.topic_partitions.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.topic.to_string(), t.partitions.clone()))
            .collect()
    });
    // Version 0 has no election type: preferred.
    let kind = if v == 0 { 0 } else { req.election_type };
    let (code, results) = match b.elect_leaders_request(kind, asked, now) {
        Ok(r) => (error::NONE, r),
        Err(code) => (code, Vec::new()),
    };
    let resp = ElectLeadersResponse {
        throttle_time_ms: 0,
        error_code: code,
        replica_election_results: results
            .iter()
            .map(|(topic, parts)| ReplicaElectionResult {
                topic,
                partition_result: parts
                    .iter()
                    .map(|(p, code, message)| PartitionResult {
                        partition_id: *p,
                        error_code: *code,
                        error_message: message.as_deref(),
                    })
                    .collect(),
            })
            .collect(),
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}
