//! Fetch: whole batches read from the log as stored, with Kafka's size rules and long polling.
//!
//! Size rules (KIP-74): `max_bytes` bounds the response and `partition_max_bytes` each partition,
//! but the first batch of the first partition that has data is returned whole even when it is
//! larger, so a consumer can always make progress.

use super::encode;
use crate::broker::{Broker, Outcome};
use crate::log::LogError;
use crate::protocol::error::{self, ErrorCode};
use crate::protocol::header::{frame_response, RequestHeader};
use crate::protocol::messages::fetch_request::FetchRequest;
use crate::protocol::messages::fetch_response::*;
use crate::protocol::wire::{DResult, Reader};
use std::ops::Range;
use std::time::{Duration, Instant};

/// Kafka's `fetch.max.bytes` broker default: no response is larger than this.
const BROKER_FETCH_MAX_BYTES: usize = 55 * 1024 * 1024;
const FETCH_SESSION_ID_NOT_FOUND: ErrorCode = 70;
const READ_COMMITTED: i8 = 1;

struct PartOut {
    index: i32,
    error: ErrorCode,
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
    data: Range<usize>,
    /// read_committed: (producer id, first offset) of aborted transactions in the data.
    aborted: Vec<(i64, i64)>,
    /// A follower's fetch whose last fetched epoch diverges from the leader's log (KIP-595).
    diverging: Option<crate::replication::EpochEndOffset>,
}

/// Handles a fetch. `expired` is true when a parked fetch reached its deadline: answer now
/// with whatever there is.
pub fn handle(
    b: &mut Broker,
    hdr: &RequestHeader<'_>,
    body: &[u8],
    now: Instant,
    expired: bool,
) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = FetchRequest::decode(&mut Reader::new(body), v)?;
    super::check_partition_count(req.topics.iter().map(|t| t.partitions.len()).sum())?;
    if req.session_id != 0 {
        // We keep no fetch sessions, so a session the client believes in does not exist.
        let resp = FetchResponse {
            error_code: FETCH_SESSION_ID_NOT_FOUND,
            session_id: 0,
            ..Default::default()
        };
        return Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))));
    }
    // A follower's fetch (a replica id): recorded by the leader first, read to the log end.
    let replica = if v >= 15 {
        req.replica_state.replica_id
    } else {
        req.replica_id
    };
    let follower: Vec<Vec<_>> = if replica >= 0 {
        follower_checks(b, &req, v, replica, now)
    } else {
        Vec::new()
    };
    let max_total = (req.max_bytes.max(0) as usize).min(BROKER_FETCH_MAX_BYTES);
    // Records are read into the broker's reusable buffer: no fresh allocation (and page faults)
    // per fetch.
    let mut data = b.take_fetch_buf();
    data.clear();
    let read_committed = req.isolation_level == READ_COMMITTED;
    let mut any_error = false;
    let mut topics_out: Vec<(usize, Vec<PartOut>)> = Vec::with_capacity(req.topics.len());
    for (ti, t) in req.topics.iter().enumerate() {
        let image = b.image();
        let topic = if v >= 13 {
            image.topic_by_id(&t.topic_id)
        } else {
            image.topic(t.topic)
        };
        let mut parts = Vec::with_capacity(t.partitions.len());
        for (pi, p) in t.partitions.iter().enumerate() {
            let mut out = PartOut {
                index: p.partition,
                error: error::NONE,
                high_watermark: -1,
                last_stable_offset: -1,
                log_start_offset: -1,
                data: 0..0,
                aborted: Vec::new(),
                diverging: None,
            };
            let Some(topic) = topic else {
                out.error = if v >= 13 {
                    error::UNKNOWN_TOPIC_ID
                } else {
                    error::UNKNOWN_TOPIC_OR_PARTITION
                };
                any_error = true;
                parts.push(out);
                continue;
            };
            if p.partition < 0 || p.partition as usize >= topic.partitions.len() {
                out.error = error::UNKNOWN_TOPIC_OR_PARTITION;
                any_error = true;
                parts.push(out);
                continue;
            }
            let as_follower = follower.get(ti).and_then(|f| f.get(pi));
            if let Some(Err(code)) = as_follower {
                out.error = *code;
                any_error = true;
                parts.push(out);
                continue;
            }
            let served = match b.served(&topic.name, p.partition) {
                Ok(served) => served,
                Err(code) => {
                    out.error = code;
                    any_error = true;
                    parts.push(out);
                    continue;
                }
            };
            out.high_watermark = served.high_watermark();
            out.last_stable_offset = served.last_stable_offset();
            out.log_start_offset = served.log_start_offset();
            let room = max_total.saturating_sub(data.len());
            let limit = (p.partition_max_bytes.max(0) as usize).min(room);
            let start = data.len();
            if let Some(Ok(Some(d))) = as_follower {
                // Diverged: no records; the follower truncates and fetches again.
                out.diverging = Some(*d);
                parts.push(out);
                any_error = true; // answered now
                continue;
            }
            let read = if as_follower.is_some() {
                served.read_for_follower(p.fetch_offset, limit, &mut data)
            } else {
                served.read(
                    p.fetch_offset,
                    limit,
                    data.is_empty(),
                    &mut data,
                    read_committed,
                )
            };
            match read {
                Ok(_) => {
                    out.data = start..data.len();
                    if read_committed && !out.data.is_empty() {
                        let end = crate::records::batches(&data[start..])
                            .filter_map(Result::ok)
                            .last()
                            .map_or(p.fetch_offset, |(h, _)| h.next_offset());
                        out.aborted = served.aborted_between(p.fetch_offset, end);
                    }
                }
                Err(LogError::OffsetOutOfRange { .. }) => {
                    out.error = error::OFFSET_OUT_OF_RANGE;
                    any_error = true;
                }
                // Past what reached the disk before the directory failed.
                Err(LogError::Offline) => {
                    out.error = error::KAFKA_STORAGE_ERROR;
                    any_error = true;
                }
                Err(e) => {
                    log::error!("fetch {}-{}: {e}", topic.name, p.partition);
                    data.truncate(start);
                    out.error = error::KAFKA_STORAGE_ERROR;
                    any_error = true;
                }
            }
            parts.push(out);
        }
        topics_out.push((ti, parts));
    }

    let enough = data.len() >= req.min_bytes.max(0) as usize;
    if !expired && req.max_wait_ms > 0 && !enough && !any_error && !req.topics.is_empty() {
        b.return_fetch_buf(data);
        // Only known partitions are left here (an unknown one is an error, answered now).
        let image = b.image();
        let mut waits_on = Vec::new();
        for t in &req.topics {
            let topic = if v >= 13 {
                image.topic_by_id(&t.topic_id)
            } else {
                image.topic(t.topic)
            };
            if let Some(topic) = topic {
                waits_on.extend(
                    t.partitions
                        .iter()
                        .map(|p| (topic.name.clone(), p.partition)),
                );
            }
        }
        return Ok(Outcome::ParkFetch {
            deadline: now + Duration::from_millis(req.max_wait_ms as u64),
            waits_on,
        });
    }

    let resp = FetchResponse {
        throttle_time_ms: 0,
        error_code: error::NONE,
        session_id: 0,
        responses: topics_out
            .iter()
            .map(|(ti, parts)| {
                let t = &req.topics[*ti];
                FetchableTopicResponse {
                    topic: t.topic,
                    topic_id: t.topic_id,
                    partitions: parts
                        .iter()
                        .map(|p| PartitionData {
                            partition_index: p.index,
                            error_code: p.error,
                            high_watermark: p.high_watermark,
                            last_stable_offset: p.last_stable_offset,
                            log_start_offset: p.log_start_offset,
                            aborted_transactions: read_committed.then(|| {
                                p.aborted
                                    .iter()
                                    .map(|&(producer_id, first_offset)| AbortedTransaction {
                                        producer_id,
                                        first_offset,
                                    })
                                    .collect()
                            }),
                            preferred_read_replica: -1,
                            diverging_epoch: p.diverging.map_or_else(Default::default, |d| {
                                EpochEndOffset {
                                    epoch: d.epoch,
                                    end_offset: d.end_offset,
                                }
                            }),
                            // Never null: librdkafka rejects a null record set.
                            records: Some(&data[p.data.clone()]),
                            ..Default::default()
                        })
                        .collect(),
                }
            })
            .collect(),
        node_endpoints: Vec::new(),
    };
    let out = frame_response(hdr, |w| resp.encode(w, v), data.len() + 256);
    drop(resp);
    b.return_fetch_buf(data);
    Ok(Outcome::Body(out))
}

/// A follower's fetch, partition by partition in request order: the leader's checks and the
/// fetch recorded (`Broker::follower_fetch`), or the error or diverging epoch to answer.
fn follower_checks(
    b: &mut Broker,
    req: &FetchRequest<'_>,
    version: i16,
    replica: i32,
    now: Instant,
) -> Vec<Vec<Result<Option<crate::replication::EpochEndOffset>, ErrorCode>>> {
    let v13 = version >= 13;
    req.topics
        .iter()
        .map(|t| {
            let name = if v13 {
                b.image().topic_by_id(&t.topic_id).map(|i| i.name.clone())
            } else {
                Some(t.topic.to_string())
            };
            t.partitions
                .iter()
                .map(|p| match &name {
                    Some(n) => b.follower_fetch(n, p.partition, replica, p, now),
                    None => Err(error::UNKNOWN_TOPIC_OR_PARTITION),
                })
                .collect()
        })
        .collect()
}
