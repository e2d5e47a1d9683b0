//! OffsetForLeaderEpoch: where a leader epoch ended on this broker's copy of a partition. Consumers
//! use it to validate their position after a leader change (KIP-320), followers to find where
//! their log diverged from the leader's and truncate there (KIP-101, KIP-279).

use super::encode;
use crate::broker::{Broker, Outcome};
use crate::log::leader_epoch::{UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET};
use crate::protocol::error;
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderEpochRequest;
use crate::protocol::messages::offset_for_leader_epoch_response::*;
use crate::protocol::wire::{DResult, Reader};

pub fn handle(b: &mut Broker, hdr: &RequestHeader<'_>, body: &[u8]) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = OffsetForLeaderEpochRequest::decode(&mut Reader::new(body), v)?;
    super::check_partition_count(req.topics.iter().map(|t| t.partitions.len()).sum())?;
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut out = EpochEndOffset {
                        error_code: error::NONE,
                        partition: p.partition,
                        leader_epoch: UNDEFINED_EPOCH,
                        end_offset: UNDEFINED_EPOCH_OFFSET,
                    };
                    let served = match b.served(t.topic, p.partition) {
                        Ok(served) => served,
                        Err(code) => {
                            out.error_code = code;
                            return out;
                        }
                    };
                    // The epoch the client knows must be ours (-1: not checked).
                    let current = served.leader_epoch();
                    if p.current_leader_epoch >= 0 && p.current_leader_epoch != current {
                        out.error_code = if p.current_leader_epoch > current {
                            error::UNKNOWN_LEADER_EPOCH
                        } else {
                            error::FENCED_LEADER_EPOCH
                        };
                        return out;
                    }
                    if served.is_offline() {
                        out.error_code = error::KAFKA_STORAGE_ERROR;
                        return out;
                    }
                    let (epoch, end) = served.end_offset_for_epoch(p.leader_epoch);
                    out.leader_epoch = epoch;
                    out.end_offset = end;
                    out
                })
                .collect();
            OffsetForLeaderTopicResult {
                topic: t.topic,
                partitions,
            }
        })
        .collect();
    let resp = OffsetForLeaderEpochResponse {
        throttle_time_ms: 0,
        topics,
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}
