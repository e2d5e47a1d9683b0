//! Produce: each partition's batch is checked and appended as it arrived, with its offsets
//! rewritten in place in the request buffer, so the bytes written are the bytes received.

use super::encode;
use crate::broker::{Broker, Outcome};
use crate::log::{LogError, RecordError};
use crate::protocol::error::{self, ErrorCode};
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::produce_request::ProduceRequest;
use crate::protocol::messages::produce_response::*;
use crate::protocol::wire::{DResult, Reader};
use crate::records::{
    recompress_batch_with, BatchHeader, Compression, RecordsError, BATCH_HEADER_LEN,
    DEFAULT_DECOMPRESS_CAP,
};
use std::borrow::Cow;
use std::ops::Range;
use std::time::Instant;

/// One partition of the request, with its records located in the body.
struct Part {
    index: i32,
    records: Option<Range<usize>>,
}

struct Topic {
    /// As the request named it (v12 and below).
    name: Option<String>,
    id: [u8; 16],
    parts: Vec<Part>,
}

struct PartResult {
    error: ErrorCode,
    message: Option<Cow<'static, str>>,
    base_offset: i64,
    log_append_time: i64,
    log_start_offset: i64,
    /// KIP-467: the records that made the batch fail.
    record_errors: Vec<RecordError>,
    /// Acknowledged only once the partition's recovery point reaches this offset (the batch
    /// waits for this turn's fsync).
    durable_at: Option<i64>,
    /// acks=all on a replicated partition: acknowledged once its high watermark reaches this
    /// offset (the in-sync replicas hold the batch).
    replicated_at: Option<i64>,
}

impl PartResult {
    fn err(error: ErrorCode, message: Option<&'static str>) -> PartResult {
        PartResult {
            error,
            message: message.map(Cow::Borrowed),
            base_offset: -1,
            log_append_time: -1,
            log_start_offset: -1,
            record_errors: Vec::new(),
            durable_at: None,
            replicated_at: None,
        }
    }
}

/// A response that waits for the turn's fsync: settled against the partitions' recovery points,
/// so a batch whose fsync failed is answered KAFKA_STORAGE_ERROR, never success.
struct Pending {
    hdr: RequestHeader<'static>,
    topics: Vec<Topic>,
    /// The topic each entry of `topics` resolved to.
    names: Vec<Option<String>>,
    results: Vec<Vec<PartResult>>,
}

impl Pending {
    /// acks=all: the answer once every replicated partition's high watermark passed its
    /// records (or their error: NOT_ENOUGH_REPLICAS_AFTER_APPEND, NOT_LEADER_OR_FOLLOWER), or
    /// at the deadline (REQUEST_TIMED_OUT for those still waiting, as Kafka's DelayedProduce).
    /// None: keep waiting.
    fn replicated(&mut self, b: &Broker, expired: bool) -> Option<Vec<u8>> {
        let mut verdicts = Vec::new();
        for (ti, (t, name)) in self.topics.iter().zip(&self.names).enumerate() {
            for (pi, p) in t.parts.iter().enumerate() {
                let Some(required) = self.results[ti][pi].replicated_at else {
                    continue;
                };
                let verdict = name
                    .as_deref()
                    .map_or(Some(error::UNKNOWN_TOPIC_OR_PARTITION), |n| {
                        b.replicated_to(n, p.index, required)
                    });
                match verdict {
                    None if !expired => return None,
                    None => verdicts.push((ti, pi, error::REQUEST_TIMED_OUT)),
                    Some(code) => verdicts.push((ti, pi, code)),
                }
            }
        }
        for (ti, pi, code) in verdicts {
            let r = &mut self.results[ti][pi];
            r.replicated_at = None;
            if code != error::NONE {
                *r = PartResult::err(code, None);
            }
        }
        Some(self.settle_ref(b))
    }

    fn settle(mut self, b: &Broker) -> Vec<u8> {
        self.settle_ref(b)
    }

    fn settle_ref(&mut self, b: &Broker) -> Vec<u8> {
        for ((t, name), rs) in self
            .topics
            .iter()
            .zip(&self.names)
            .zip(self.results.iter_mut())
        {
            for (p, r) in t.parts.iter().zip(rs.iter_mut()) {
                let Some(end) = r.durable_at else { continue };
                let durable = name
                    .as_deref()
                    .and_then(|n| b.served(n, p.index).ok())
                    .is_some_and(|s| s.recovery_point() >= end);
                if !durable {
                    *r = PartResult::err(
                        error::KAFKA_STORAGE_ERROR,
                        Some("The records could not be made durable: the log directory failed."),
                    );
                }
            }
        }
        encode_response(&self.hdr, &self.topics, &self.results)
    }
}

fn range_in(outer: &[u8], inner: &[u8]) -> Range<usize> {
    let start = inner.as_ptr() as usize - outer.as_ptr() as usize;
    start..start + inner.len()
}

/// Kafka's checks on the shape of a v3+ produce payload: exactly one magic-2 batch.
fn check_shape(records: &[u8]) -> Result<(), (ErrorCode, &'static str)> {
    if records.len() < BATCH_HEADER_LEN {
        if records.len() > 16 && records[16] != 2 {
            return Err((
                error::INVALID_RECORD,
                "Produce requests with version 3+ may only contain record batches with magic 2",
            ));
        }
        return Err((
            error::CORRUPT_MESSAGE,
            "record batch is shorter than its header",
        ));
    }
    match BatchHeader::parse(records) {
        Err(RecordsError::UnsupportedMagic(_)) => Err((
            error::INVALID_RECORD,
            "Produce requests with version 3+ may only contain record batches with magic 2",
        )),
        Err(_) => Err((error::CORRUPT_MESSAGE, "malformed record batch header")),
        Ok(h) if h.total_len() < records.len() => Err((
            error::INVALID_RECORD,
            "Produce requests with version 3+ must contain exactly one record batch per partition",
        )),
        Ok(h) if h.total_len() > records.len() => Err((
            error::CORRUPT_MESSAGE,
            "record batch is longer than the bytes sent",
        )),
        Ok(_) => Ok(()),
    }
}

fn log_error_code(e: &LogError) -> (ErrorCode, &'static str) {
    match e {
        LogError::MessageTooLarge => (
            error::MESSAGE_TOO_LARGE,
            "The request included a message larger than the max message size the server will accept.",
        ),
        LogError::UnsupportedMagic(_) => (error::INVALID_RECORD, "unsupported record batch magic"),
        LogError::OutOfOrderSequence { .. } => (
            error::OUT_OF_ORDER_SEQUENCE_NUMBER,
            "The broker received an out of order sequence number.",
        ),
        LogError::InvalidProducerEpoch(_) => (
            error::INVALID_PRODUCER_EPOCH,
            "Producer attempted to produce with an old epoch.",
        ),
        LogError::RecordErrors(e) if e.invalid_timestamp => (
            error::INVALID_TIMESTAMP,
            "One or more records have been rejected due to invalid timestamp",
        ),
        LogError::RecordErrors(_) => (error::INVALID_RECORD, "One or more records have been rejected"),
        LogError::Offline => (
            error::KAFKA_STORAGE_ERROR,
            "The log directory of this partition is offline after a disk error.",
        ),
        LogError::Records(_) | LogError::Corrupt(_) => (
            error::CORRUPT_MESSAGE,
            "This message has failed its CRC checksum, exceeds the valid size, has a null key for a compacted topic, or is otherwise corrupt.",
        ),
        LogError::OffsetOutOfRange { .. } => (error::UNKNOWN_SERVER_ERROR, "unexpected"),
        LogError::Io(e) if crate::log::health::is_disk_full(e) => {
            (error::KAFKA_STORAGE_ERROR, "The disk holding this partition is full.")
        }
        LogError::Io(_) => (error::KAFKA_STORAGE_ERROR, "Disk error when trying to access log file on the disk."),
        LogError::InvalidBatch(_) => (error::INVALID_RECORD, "invalid record batch"),
        LogError::InvalidTxnState(_) => (
            crate::txn::coordinator::INVALID_TXN_STATE,
            "The producer attempted a transactional operation in an invalid state.",
        ),
    }
}

/// The codec a topic's batches must be stored with, and its level (`compression.<codec>.level`):
/// `None` = as the producer sent them (`compression.type=producer`, the default).
fn target_codec(b: &Broker, topic: &str) -> Option<(Compression, Option<i32>)> {
    let image = b.image();
    let configs = image.topic(topic).map(|t| &t.configs);
    let v = configs
        .and_then(|c| c.get("compression.type"))
        .map(String::as_str)
        .unwrap_or(b.config().compression_type.as_str());
    let (codec, level_key) = match v.trim() {
        "uncompressed" | "none" => (Compression::None, None),
        "gzip" => (Compression::Gzip, Some("compression.gzip.level")),
        "snappy" => (Compression::Snappy, None),
        "lz4" => (Compression::Lz4, Some("compression.lz4.level")),
        "zstd" => (Compression::Zstd, Some("compression.zstd.level")),
        _ => return None,
    };
    let level = level_key
        .and_then(|k| configs.and_then(|c| c.get(k)))
        .and_then(|l| l.trim().parse().ok());
    Some((codec, level))
}

/// KIP-890 part 1, the partition leader's defence: a transactional batch is stored only if its
/// producer's transaction is open and already includes this partition (a late or stray write
/// from a client that thinks its transaction still runs would otherwise be stored in the next
/// one, or hang the last stable offset).
fn check_transaction(
    b: &Broker,
    transactional_id: Option<&str>,
    batch: &[u8],
    topic: &str,
    partition: i32,
) -> Result<(), (ErrorCode, &'static str)> {
    use crate::txn::TxnState;
    let Ok(h) = BatchHeader::parse(batch) else {
        return Ok(());
    };
    if !h.is_transactional() || h.producer_id < 0 {
        return Ok(());
    }
    // The coordinator of this transaction is another broker of the cluster: the check needs
    // a verification round trip to it (KIP-890's AddPartitionsToTxn VerifyOnly), which is
    // not made yet; the batch is stored as before KIP-890.
    if transactional_id.is_some_and(|id| !b.coordinates_txn(id)) {
        return Ok(());
    }
    let Some(m) = transactional_id.and_then(|id| b.txns().get(id)) else {
        return Err((
            crate::txn::coordinator::INVALID_PRODUCER_ID_MAPPING,
            "The transactional id is unknown to the coordinator.",
        ));
    };
    if m.producer_id != h.producer_id {
        return Err((
            crate::txn::coordinator::INVALID_PRODUCER_ID_MAPPING,
            "The producer id does not belong to the transactional id.",
        ));
    }
    if m.producer_epoch != h.producer_epoch {
        return Err((
            error::INVALID_PRODUCER_EPOCH,
            "Producer attempted to produce with an old epoch.",
        ));
    }
    match m.state {
        // Retriable for the client, as Kafka maps CONCURRENT_TRANSACTIONS on produce.
        TxnState::PrepareCommit | TxnState::PrepareAbort => Err((
            error::NOT_ENOUGH_REPLICAS,
            "The transaction is being completed; retry.",
        )),
        TxnState::Ongoing if m.partitions.contains(&(topic.to_string(), partition)) => Ok(()),
        _ => Err((
            crate::txn::coordinator::INVALID_TXN_STATE,
            "The partition was not added to the transaction.",
        )),
    }
}

/// acks=-1 needs at least `min.insync.replicas` (topic config, else the broker's) in the ISR.
fn enough_in_sync(b: &Broker, topic: &str, partition: i32) -> bool {
    let Some(t) = b.image().topic(topic) else {
        return true;
    };
    let min = t
        .configs
        .get("min.insync.replicas")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(b.config().min_insync_replicas);
    // A partition that does not exist is answered UNKNOWN_TOPIC_OR_PARTITION by the caller.
    let Some(p) = usize::try_from(partition)
        .ok()
        .and_then(|i| t.partitions.get(i))
    else {
        return true;
    };
    p.isr.len() as i32 >= min
}

pub fn handle(
    b: &mut Broker,
    hdr: &RequestHeader<'_>,
    body: &mut [u8],
    now: Instant,
    internal_topics_allowed: bool,
) -> DResult<Outcome> {
    let v = hdr.api_version;
    let (acks, timeout_ms, topics, transactional_id) = {
        let req = ProduceRequest::decode(&mut Reader::new(body), v)?;
        super::check_partition_count(req.topic_data.iter().map(|t| t.partition_data.len()).sum())?;
        let topics: Vec<Topic> = req
            .topic_data
            .iter()
            .map(|t| Topic {
                name: (v <= 12).then(|| t.name.to_string()),
                id: t.topic_id,
                parts: t
                    .partition_data
                    .iter()
                    .map(|p| Part {
                        index: p.index,
                        records: p.records.map(|r| range_in(body, r)),
                    })
                    .collect(),
            })
            .collect();
        (
            req.acks,
            req.timeout_ms,
            topics,
            req.transactional_id.map(str::to_string),
        )
    };
    let now_ms = b.now_ms(now);
    let mut needs_flush = false;
    let mut awaits_replicas = false;
    let mut results: Vec<Vec<PartResult>> = Vec::with_capacity(topics.len());
    let mut names: Vec<Option<String>> = Vec::with_capacity(topics.len());
    for t in &topics {
        let name: Option<String> = match &t.name {
            Some(n) => Some(n.clone()),
            None => b.image().topic_by_id(&t.id).map(|i| i.name.clone()),
        };
        let target = name.as_deref().and_then(|n| target_codec(b, n));
        let mut rs = Vec::with_capacity(t.parts.len());
        for p in &t.parts {
            if !matches!(acks, -1..=1) {
                rs.push(PartResult::err(error::INVALID_REQUIRED_ACKS, None));
                continue;
            }
            let unknown = if v >= 13 {
                error::UNKNOWN_TOPIC_ID
            } else {
                error::UNKNOWN_TOPIC_OR_PARTITION
            };
            let Some(name) = name.as_deref() else {
                rs.push(PartResult::err(unknown, None));
                continue;
            };
            // Internal topics (`__consumer_offsets`, ...) are written by the broker only.
            if crate::broker::is_internal_topic(name) && !internal_topics_allowed {
                rs.push(PartResult::err(
                    error::INVALID_TOPIC_EXCEPTION,
                    Some("Cannot append to an internal topic"),
                ));
                continue;
            }
            let Some(range) = p.records.clone() else {
                rs.push(PartResult::err(
                    error::INVALID_RECORD,
                    Some("Produce requests must carry a record batch"),
                ));
                continue;
            };
            if let Err((code, msg)) = check_shape(&body[range.clone()]) {
                rs.push(PartResult::err(code, Some(msg)));
                continue;
            }
            if let Err((code, msg)) = check_transaction(
                b,
                transactional_id.as_deref(),
                &body[range.clone()],
                name,
                p.index,
            ) {
                rs.push(PartResult::err(code, Some(msg)));
                continue;
            }
            let replicated = b.replicated_append_check(name, p.index, acks);
            if let Some(Err(code)) = replicated {
                rs.push(PartResult::err(
                    code,
                    Some("Messages are rejected since there are fewer in-sync replicas than required."),
                ));
                continue;
            }
            if replicated.is_none() && acks == -1 && !enough_in_sync(b, name, p.index) {
                rs.push(PartResult::err(
                    error::NOT_ENOUGH_REPLICAS,
                    Some("Messages are rejected since there are fewer in-sync replicas than required."),
                ));
                continue;
            }
            // Batches carry the leader epoch they were written in (OffsetForLeaderEpoch).
            let leader_epoch = b
                .image()
                .topic(name)
                .and_then(|t| t.partitions.get(usize::try_from(p.index).ok()?))
                .map_or(0, |info| info.leader_epoch.max(0));
            if b.led_elsewhere(name, p.index) {
                rs.push(PartResult::err(error::NOT_LEADER_OR_FOLLOWER, None));
                continue;
            }
            let Some(log) = b.partition_log_mut(name, p.index, now) else {
                rs.push(PartResult::err(error::UNKNOWN_TOPIC_OR_PARTITION, None));
                continue;
            };
            // Kafka's LogValidator: a topic with its own codec gets the batch rebuilt with it.
            let mut rebuilt;
            let batch: &mut [u8] = match target {
                Some((c, level))
                    if BatchHeader::parse(&body[range.clone()])
                        .map(|h| h.compression())
                        .ok()
                        != Some(c) =>
                {
                    match recompress_batch_with(&body[range], c, level, DEFAULT_DECOMPRESS_CAP) {
                        Ok(v) => {
                            rebuilt = v;
                            &mut rebuilt
                        }
                        Err(e) => {
                            log::debug!("produce to {name}-{}: {e}", p.index);
                            rs.push(PartResult::err(
                                error::CORRUPT_MESSAGE,
                                Some("The record batch could not be decompressed or is corrupt."),
                            ));
                            continue;
                        }
                    }
                }
                _ => &mut body[range],
            };
            match log.append(batch, now_ms, leader_epoch) {
                Ok(info) => {
                    let flush = log.needs_flush(now_ms);
                    needs_flush |= flush;
                    rs.push(PartResult {
                        error: error::NONE,
                        message: None,
                        base_offset: info.base_offset,
                        log_append_time: info.log_append_time,
                        log_start_offset: info.log_start_offset,
                        record_errors: Vec::new(),
                        durable_at: flush.then_some(info.last_offset + 1),
                        replicated_at: (acks == -1 && replicated.is_some())
                            .then_some(info.last_offset + 1),
                    });
                    awaits_replicas |= acks == -1 && replicated.is_some();
                    b.note_append(name, p.index);
                }
                Err(LogError::RecordErrors(e)) => {
                    log::debug!("produce to {name}-{}: {}", p.index, e.summary());
                    let code = if e.invalid_timestamp {
                        error::INVALID_TIMESTAMP
                    } else {
                        error::INVALID_RECORD
                    };
                    let mut r = PartResult::err(code, None);
                    r.message = Some(Cow::Owned(e.summary()));
                    r.record_errors = e.errors;
                    rs.push(r);
                }
                Err(e) => {
                    let (code, msg) = log_error_code(&e);
                    log::debug!("produce to {name}-{}: {e}", p.index);
                    let mut r = PartResult::err(code, Some(msg));
                    if let LogError::InvalidBatch(m) | LogError::InvalidTxnState(m) = e {
                        r.message = Some(Cow::Owned(m));
                    }
                    rs.push(r);
                }
            }
        }
        names.push(name);
        results.push(rs);
    }
    if acks == 0 {
        return Ok(Outcome::NoResponse);
    }
    if needs_flush || awaits_replicas {
        let mut pending = Pending {
            hdr: RequestHeader {
                api_key: hdr.api_key,
                api_version: hdr.api_version,
                correlation_id: hdr.correlation_id,
                client_id: None,
            },
            topics,
            names,
            results,
        };
        if awaits_replicas {
            return Ok(Outcome::AwaitReplicas {
                deadline: now + std::time::Duration::from_millis(timeout_ms.max(0) as u64),
                check: Box::new(move |b, expired| pending.replicated(b, expired)),
            });
        }
        return Ok(Outcome::AfterFlush(Box::new(move |b| pending.settle(b))));
    }
    Ok(Outcome::Body(encode_response(hdr, &topics, &results)))
}

fn encode_response(
    hdr: &RequestHeader<'_>,
    topics: &[Topic],
    results: &[Vec<PartResult>],
) -> Vec<u8> {
    let v = hdr.api_version;
    let resp = ProduceResponse {
        responses: topics
            .iter()
            .zip(results)
            .map(|(t, rs)| TopicProduceResponse {
                name: t.name.as_deref().unwrap_or(""),
                topic_id: t.id,
                partition_responses: t
                    .parts
                    .iter()
                    .zip(rs)
                    .map(|(p, r)| PartitionProduceResponse {
                        index: p.index,
                        error_code: r.error,
                        base_offset: r.base_offset,
                        log_append_time_ms: r.log_append_time,
                        log_start_offset: r.log_start_offset,
                        error_message: r.message.as_deref(),
                        record_errors: r
                            .record_errors
                            .iter()
                            .map(|e| BatchIndexAndErrorMessage {
                                batch_index: e.batch_index,
                                batch_index_error_message: Some(&e.message),
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
            })
            .collect(),
        throttle_time_ms: 0,
        node_endpoints: Vec::new(),
    };
    encode(hdr, |w| resp.encode(w, v))
}
