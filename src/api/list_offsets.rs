//! ListOffsets: earliest, latest, max-timestamp and by-timestamp lookups per partition.

use super::encode;
use crate::broker::{Broker, Outcome};
use crate::protocol::error;
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::list_offsets_request::ListOffsetsRequest;
use crate::protocol::messages::list_offsets_response::*;
use crate::protocol::wire::{DResult, Reader};
use std::time::Instant;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const EARLIEST_PENDING_UPLOAD: i64 = -5;

pub fn handle(
    b: &mut Broker,
    hdr: &RequestHeader<'_>,
    body: &[u8],
    _now: Instant,
) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = ListOffsetsRequest::decode(&mut Reader::new(body), v)?;
    super::check_partition_count(req.topics.iter().map(|t| t.partitions.len()).sum())?;
    let image = b.image();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let topic = image.topic(t.name);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut out = ListOffsetsPartitionResponse {
                        partition_index: p.partition_index,
                        error_code: error::NONE,
                        timestamp: -1,
                        offset: -1,
                        leader_epoch: -1,
                    };
                    let exists = topic.is_some_and(|t| {
                        p.partition_index >= 0 && (p.partition_index as usize) < t.partitions.len()
                    });
                    if !exists {
                        out.error_code = error::UNKNOWN_TOPIC_OR_PARTITION;
                        return out;
                    }
                    let served = match b.served(t.name, p.partition_index) {
                        Ok(served) => served,
                        Err(code) => {
                            out.error_code = code;
                            return out;
                        }
                    };
                    let start = served.log_start_offset();
                    // read_committed consumers see the log end at the last stable offset.
                    let end = if req.isolation_level == 1 {
                        served.last_stable_offset()
                    } else {
                        served.high_watermark()
                    };
                    // The epoch of the batch holding the offset found (the current leader
                    // epoch for the log end), as Kafka answers it.
                    let current = served.leader_epoch().max(0);
                    out.leader_epoch = current;
                    // Offline, the offsets known in memory are answered; searches that would
                    // read the failed disk are not.
                    let offline = served.is_offline();
                    if offline && !matches!(p.timestamp, LATEST | EARLIEST | EARLIEST_LOCAL) {
                        out.error_code = error::KAFKA_STORAGE_ERROR;
                        out.leader_epoch = -1;
                        return out;
                    }
                    match p.timestamp {
                        LATEST => out.offset = end,
                        EARLIEST | EARLIEST_LOCAL => out.offset = start,
                        EARLIEST_PENDING_UPLOAD => out.offset = -1,
                        MAX_TIMESTAMP => {
                            if let Some((ts, off)) = served.max_timestamp() {
                                out.timestamp = ts;
                                out.offset = off;
                            }
                        }
                        ts if ts >= 0 => {
                            if let Some((off, found)) = served.offset_for_timestamp(ts) {
                                out.offset = off;
                                out.timestamp = found;
                            }
                        }
                        _ => out.error_code = error::INVALID_REQUEST,
                    }
                    if out.error_code == error::NONE && out.offset >= 0 && p.timestamp != LATEST {
                        out.leader_epoch = served.epoch_for_offset(out.offset).unwrap_or(current);
                    }
                    out
                })
                .collect();
            ListOffsetsTopicResponse {
                name: t.name,
                partitions,
            }
        })
        .collect();
    let resp = ListOffsetsResponse {
        throttle_time_ms: 0,
        topics,
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}
