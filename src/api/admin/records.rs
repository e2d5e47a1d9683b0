//! DeleteRecords: moves partitions' log start offsets forward.

use crate::api::encode;
use crate::broker::{Broker, Outcome};
use crate::log::LogError;
use crate::protocol::error;
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::delete_records_request::DeleteRecordsRequest;
use crate::protocol::messages::delete_records_response::*;
use crate::protocol::wire::{DResult, Reader};
use std::time::Instant;

/// Offset -1 in a request: delete up to the high watermark.
const HIGH_WATERMARK: i64 = -1;

/// Deletes below `offset` in one partition; the new low watermark or an error code.
fn delete_before(
    b: &mut Broker,
    topic: &str,
    partition: i32,
    offset: i64,
    now: Instant,
) -> (i64, i16) {
    let now_ms = b.now_ms(now);
    if b.led_elsewhere(topic, partition) {
        return (-1, error::NOT_LEADER_OR_FOLLOWER);
    }
    let Some(log) = b.partition_log_mut(topic, partition, now) else {
        return (-1, error::UNKNOWN_TOPIC_OR_PARTITION);
    };
    // One broker: the high watermark is the log end offset.
    let hw = log.log_end_offset();
    let target = if offset == HIGH_WATERMARK { hw } else { offset };
    if target < 0 || target > hw {
        return (-1, error::OFFSET_OUT_OF_RANGE);
    }
    match log.delete_records_before(target, now_ms) {
        Ok(low) => (low, error::NONE),
        Err(LogError::OffsetOutOfRange { .. }) => (-1, error::OFFSET_OUT_OF_RANGE),
        Err(e) => {
            log::error!("DeleteRecords {topic}-{partition}: {e}");
            (-1, error::KAFKA_STORAGE_ERROR)
        }
    }
}

pub fn handle(
    b: &mut Broker,
    hdr: &RequestHeader<'_>,
    body: &[u8],
    now: Instant,
) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = DeleteRecordsRequest::decode(&mut Reader::new(body), v)?;
    let mut moved = false;
    let topics = req
        .topics
        .iter()
        .map(|t| DeleteRecordsTopicResult {
            name: t.name,
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    let (low, code) = delete_before(b, t.name, p.partition_index, p.offset, now);
                    moved |= code == error::NONE;
                    DeleteRecordsPartitionResult {
                        partition_index: p.partition_index,
                        low_watermark: low,
                        error_code: code,
                    }
                })
                .collect(),
        })
        .collect();
    if moved {
        // The new log start offsets must survive a restart.
        if let Err(e) = b.checkpoint_logs() {
            log::error!("writing checkpoints after DeleteRecords: {e}");
        }
    }
    let resp = DeleteRecordsResponse {
        throttle_time_ms: 0,
        topics,
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}
