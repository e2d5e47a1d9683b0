//! The transaction APIs: AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit,
//! WriteTxnMarkers, DescribeTransactions, ListTransactions, DescribeProducers. The decisions
//! are the coordinator's (`crate::txn`); persisting them and writing markers is the broker's
//! (`broker/txn.rs`).

use super::encode;
use crate::broker::{Broker, Outcome};
use crate::group::offsets::{partition_for, CommittedOffset, OffsetStore, OFFSETS_TOPIC};
use crate::log::LogError;
use crate::protocol::error::{self, ErrorCode};
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use crate::protocol::messages::add_offsets_to_txn_response::AddOffsetsToTxnResponse;
use crate::protocol::messages::add_partitions_to_txn_request::*;
use crate::protocol::messages::add_partitions_to_txn_response::*;
use crate::protocol::messages::describe_producers_request::DescribeProducersRequest;
use crate::protocol::messages::describe_producers_response as dp;
use crate::protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
use crate::protocol::messages::describe_transactions_response as dt;
use crate::protocol::messages::end_txn_request::EndTxnRequest;
use crate::protocol::messages::end_txn_response::EndTxnResponse;
use crate::protocol::messages::list_transactions_request::ListTransactionsRequest;
use crate::protocol::messages::list_transactions_response as lt;
use crate::protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequest;
use crate::protocol::messages::txn_offset_commit_response::*;
use crate::protocol::messages::write_txn_markers_request::WriteTxnMarkersRequest;
use crate::protocol::messages::write_txn_markers_response::*;
use crate::protocol::wire::{DResult, Reader};
use crate::txn::coordinator::{
    CONCURRENT_TRANSACTIONS, INVALID_TXN_STATE, PRODUCER_FENCED, TRANSACTIONAL_ID_NOT_FOUND,
};
use crate::txn::{EndPlan, EndTxn, TopicPartition, TxnState};
use std::time::Instant;

const OPERATION_NOT_ATTEMPTED: ErrorCode = 55;

/// Older versions of each API cannot carry PRODUCER_FENCED: Kafka answers
/// INVALID_PRODUCER_EPOCH there.
fn fenced_for(code: ErrorCode, version: i16, first_with_fenced: i16) -> ErrorCode {
    if code == PRODUCER_FENCED && version < first_with_fenced {
        error::INVALID_PRODUCER_EPOCH
    } else {
        code
    }
}

/// InitProducerId with a transactional id: `(error, producer id, epoch)`.
pub(crate) fn init_transactional(
    b: &mut Broker,
    transactional_id: &str,
    timeout_ms: i32,
    expected: Option<(i64, i16)>,
    now: Instant,
) -> (ErrorCode, i64, i16) {
    if !b.ensure_txn_topic(now) {
        return (error::COORDINATOR_NOT_AVAILABLE, -1, -1);
    }
    if !b.coordinates_txn(transactional_id) {
        return (error::NOT_COORDINATOR, -1, -1);
    }
    let now_ms = b.now_ms(now);
    let plan = b.with_txn_coordinator(now, |c, alloc| {
        c.init_producer_id(transactional_id, timeout_ms, expected, now_ms, alloc)
    });
    match plan {
        Err(code) => (code, -1, -1),
        Ok(crate::txn::InitPlan::Ready(m)) => {
            let (pid, epoch) = (m.producer_id, m.producer_epoch);
            match b.persist_txn(m, now) {
                Ok(()) => (error::NONE, pid, epoch),
                Err(code) => (code, -1, -1),
            }
        }
        Ok(crate::txn::InitPlan::AbortFirst(m)) => {
            log::info!(
                "fencing producer {} of transactional id {}: aborting its open transaction",
                m.producer_id,
                m.transactional_id
            );
            match b.finish_txn(m, now) {
                // The client retries and gets the next epoch.
                Ok(()) => (CONCURRENT_TRANSACTIONS, -1, -1),
                Err(code) => (code, -1, -1),
            }
        }
    }
}

/// Partitions of a request that exist, and the verdict for those that do not: Kafka answers
/// UNKNOWN_TOPIC_OR_PARTITION for those and OPERATION_NOT_ATTEMPTED for the rest.
fn check_partitions(b: &Broker, parts: &[TopicPartition]) -> Option<Vec<ErrorCode>> {
    let image = b.image();
    let missing: Vec<bool> = parts
        .iter()
        .map(|(t, p)| {
            !image
                .topic(t)
                .is_some_and(|i| *p >= 0 && (*p as usize) < i.partitions.len())
        })
        .collect();
    missing.iter().any(|m| *m).then(|| {
        missing
            .into_iter()
            .map(|m| {
                if m {
                    error::UNKNOWN_TOPIC_OR_PARTITION
                } else {
                    OPERATION_NOT_ATTEMPTED
                }
            })
            .collect()
    })
}

/// One transaction of AddPartitionsToTxn: an error per partition.
fn add_partitions(
    b: &mut Broker,
    transactional_id: &str,
    producer_id: i64,
    epoch: i16,
    verify_only: bool,
    parts: &[TopicPartition],
    now: Instant,
) -> Vec<ErrorCode> {
    if let Some(errors) = check_partitions(b, parts) {
        return errors;
    }
    let same = |code| vec![code; parts.len()];
    if !b.coordinates_txn(transactional_id) {
        return same(error::NOT_COORDINATOR);
    }
    if verify_only {
        return match b
            .txns_mut()
            .verify_partitions(transactional_id, producer_id, epoch, parts)
        {
            Ok(codes) => codes,
            Err(code) => same(code),
        };
    }
    let now_ms = b.now_ms(now);
    match b
        .txns_mut()
        .add_partitions(transactional_id, producer_id, epoch, parts, now_ms)
    {
        Ok(None) => same(error::NONE),
        Ok(Some(m)) => same(b.persist_txn(m, now).err().unwrap_or(error::NONE)),
        Err(code) => same(code),
    }
}

fn partitions_of(topics: &[AddPartitionsToTxnTopic<'_>]) -> Vec<TopicPartition> {
    topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|&p| (t.name.to_string(), p)))
        .collect()
}

fn topic_results<'a>(
    topics: &[AddPartitionsToTxnTopic<'a>],
    codes: &[ErrorCode],
) -> Vec<AddPartitionsToTxnTopicResult<'a>> {
    let mut codes = codes.iter();
    topics
        .iter()
        .map(|t| AddPartitionsToTxnTopicResult {
            name: t.name,
            results_by_partition: t
                .partitions
                .iter()
                .map(|&p| AddPartitionsToTxnPartitionResult {
                    partition_index: p,
                    partition_error_code: codes.next().copied().unwrap_or(error::NONE),
                })
                .collect(),
        })
        .collect()
}

pub fn add_partitions_to_txn(
    b: &mut Broker,
    hdr: &RequestHeader<'_>,
    body: &[u8],
    now: Instant,
) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = AddPartitionsToTxnRequest::decode(&mut Reader::new(body), v)?;
    let resp = if v <= 3 {
        let parts = partitions_of(&req.v3_and_below_topics);
        let codes: Vec<ErrorCode> = add_partitions(
            b,
            req.v3_and_below_transactional_id,
            req.v3_and_below_producer_id,
            req.v3_and_below_producer_epoch,
            false,
            &parts,
            now,
        )
        .into_iter()
        .map(|c| fenced_for(c, v, 2))
        .collect();
        AddPartitionsToTxnResponse {
            results_by_topic_v3_and_below: topic_results(&req.v3_and_below_topics, &codes),
            ..Default::default()
        }
    } else {
        // The batched broker form (v4+): several transactions, each maybe VerifyOnly.
        let mut results = Vec::with_capacity(req.transactions.len());
        for t in &req.transactions {
            let parts = partitions_of(&t.topics);
            let codes = add_partitions(
                b,
                t.transactional_id,
                t.producer_id,
                t.producer_epoch,
                t.verify_only,
                &parts,
                now,
            );
            // Before v5 there is no TRANSACTION_ABORTABLE: a partition not in the transaction
            // is INVALID_TXN_STATE.
            let codes: Vec<ErrorCode> = codes
                .into_iter()
                .map(|c| {
                    if c == crate::txn::coordinator::TRANSACTION_ABORTABLE && v < 5 {
                        INVALID_TXN_STATE
                    } else {
                        c
                    }
                })
                .collect();
            results.push(AddPartitionsToTxnResult {
                transactional_id: t.transactional_id,
                topic_results: topic_results(&t.topics, &codes),
            });
        }
        AddPartitionsToTxnResponse {
            results_by_transaction: results,
            ..Default::default()
        }
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}

pub fn add_offsets_to_txn(
    b: &mut Broker,
    hdr: &RequestHeader<'_>,
    body: &[u8],
    now: Instant,
) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = AddOffsetsToTxnRequest::decode(&mut Reader::new(body), v)?;
    let code = if req.group_id.is_empty() {
        error::INVALID_GROUP_ID
    } else if !b.ensure_offsets_topic(now) {
        error::COORDINATOR_NOT_AVAILABLE
    } else {
        let n = b
            .image()
            .topic(OFFSETS_TOPIC)
            .map_or(1, |t| t.partitions.len() as i32);
        let part = (OFFSETS_TOPIC.to_string(), partition_for(req.group_id, n));
        add_partitions(
            b,
            req.transactional_id,
            req.producer_id,
            req.producer_epoch,
            false,
            &[part],
            now,
        )[0]
    };
    let resp = AddOffsetsToTxnResponse {
        throttle_time_ms: 0,
        error_code: fenced_for(code, v, 2),
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}

pub fn end_txn(
    b: &mut Broker,
    hdr: &RequestHeader<'_>,
    body: &[u8],
    now: Instant,
) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = EndTxnRequest::decode(&mut Reader::new(body), v)?;
    let now_ms = b.now_ms(now);
    let end = EndTxn {
        transactional_id: req.transactional_id,
        producer_id: req.producer_id,
        epoch: req.producer_epoch,
        commit: req.committed,
        // EndTxn v5+ is transactions v2: the epoch moves on at every end (KIP-890).
        tv2: v >= 5,
    };
    let plan = if b.coordinates_txn(req.transactional_id) {
        b.with_txn_coordinator(now, |c, alloc| c.end_txn(&end, alloc, now_ms))
    } else {
        Err(error::NOT_COORDINATOR)
    };
    let (code, pid, epoch) = match plan {
        Err(code) => (code, -1, -1),
        Ok(EndPlan::Done { producer_id, epoch }) => (error::NONE, producer_id, epoch),
        Ok(EndPlan::Prepare(m)) => {
            let (pid, epoch) = (m.producer_id, m.producer_epoch);
            match b.finish_txn(m, now) {
                Ok(()) => (error::NONE, pid, epoch),
                Err(code) => (code, -1, -1),
            }
        }
    };
    let resp = EndTxnResponse {
        throttle_time_ms: 0,
        error_code: fenced_for(code, v, 2),
        producer_id: pid,
        producer_epoch: epoch,
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}

pub fn txn_offset_commit(
    b: &mut Broker,
    hdr: &RequestHeader<'_>,
    body: &[u8],
    now: Instant,
) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = TxnOffsetCommitRequest::decode(&mut Reader::new(body), v)?;
    let now_ms = b.now_ms(now);
    let n = b
        .image()
        .topic(OFFSETS_TOPIC)
        .map_or(0, |t| t.partitions.len() as i32);
    // The transaction must own the group's offsets partition (AddOffsetsToTxn first).
    // In a cluster the transaction may be coordinated by another broker: its state is not
    // checked here then (that needs KIP-890's verification round trip), only the group's.
    let remote_txn = !b.coordinates_txn(req.transactional_id);
    let txn_error = match b.txns().get(req.transactional_id) {
        _ if n == 0 => error::COORDINATOR_NOT_AVAILABLE,
        _ if !b.groups().owns(req.group_id) => error::NOT_COORDINATOR,
        _ if remote_txn => b.groups_mut().validate_txn_commit(
            req.group_id,
            req.member_id,
            req.group_instance_id,
            req.generation_id,
            now,
        ),
        None => crate::txn::coordinator::INVALID_PRODUCER_ID_MAPPING,
        Some(m) if m.producer_id != req.producer_id => {
            crate::txn::coordinator::INVALID_PRODUCER_ID_MAPPING
        }
        Some(m) if m.producer_epoch != req.producer_epoch => PRODUCER_FENCED,
        Some(m)
            if m.state != TxnState::Ongoing
                || !m
                    .partitions
                    .contains(&(OFFSETS_TOPIC.to_string(), partition_for(req.group_id, n))) =>
        {
            INVALID_TXN_STATE
        }
        Some(_) => b.groups_mut().validate_txn_commit(
            req.group_id,
            req.member_id,
            req.group_instance_id,
            req.generation_id,
            now,
        ),
    };
    let mut verdicts: Vec<Vec<ErrorCode>> = Vec::with_capacity(req.topics.len());
    let mut accepted: Vec<(&str, i32, CommittedOffset)> = Vec::new();
    for t in &req.topics {
        let mut vs = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let exists = b.image().topic(t.name).is_some_and(|i| {
                p.partition_index >= 0 && (p.partition_index as usize) < i.partitions.len()
            });
            let code = if txn_error != error::NONE {
                txn_error
            } else if !exists {
                error::UNKNOWN_TOPIC_OR_PARTITION
            } else if p.committed_metadata.map_or(0, str::len) > 4096 {
                error::OFFSET_METADATA_TOO_LARGE
            } else {
                accepted.push((
                    t.name,
                    p.partition_index,
                    CommittedOffset {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p.committed_metadata.unwrap_or("").to_string(),
                        commit_timestamp: now_ms,
                        expire_timestamp: -1,
                    },
                ));
                error::NONE
            };
            vs.push(fenced_for(code, v, 3));
        }
        verdicts.push(vs);
    }
    if !accepted.is_empty() {
        let records = OffsetStore::commit_records(req.group_id, &accepted);
        let mut batch =
            OffsetStore::txn_batch(&records, now_ms, req.producer_id, req.producer_epoch);
        let p = partition_for(req.group_id, n);
        let epoch = b.leader_epoch_of(OFFSETS_TOPIC, p);
        let written = match b.partition_log_mut(OFFSETS_TOPIC, p, now) {
            None => Err(error::COORDINATOR_NOT_AVAILABLE),
            Some(log) => log.append(&mut batch, now_ms, epoch).map_err(|e| {
                log::error!("writing transactional offsets to {OFFSETS_TOPIC}-{p}: {e}");
                match e {
                    LogError::Offline | LogError::Io(_) => error::NOT_COORDINATOR,
                    LogError::InvalidProducerEpoch(_) => error::INVALID_PRODUCER_EPOCH,
                    _ => error::UNKNOWN_SERVER_ERROR,
                }
            }),
        };
        match written {
            Ok(_) => {
                b.note_append(OFFSETS_TOPIC, p);
                b.offsets_mut().add_pending(req.producer_id, records)
            }
            Err(code) => {
                for vs in verdicts.iter_mut() {
                    for c in vs.iter_mut().filter(|c| **c == error::NONE) {
                        *c = code;
                    }
                }
            }
        }
    }
    let resp = TxnOffsetCommitResponse {
        throttle_time_ms: 0,
        topics: req
            .topics
            .iter()
            .zip(&verdicts)
            .map(|(t, vs)| TxnOffsetCommitResponseTopic {
                name: t.name,
                partitions: t
                    .partitions
                    .iter()
                    .zip(vs)
                    .map(|(p, &error_code)| TxnOffsetCommitResponsePartition {
                        partition_index: p.partition_index,
                        error_code,
                    })
                    .collect(),
            })
            .collect(),
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}

/// WriteTxnMarkers (the inter-broker API a coordinator on another broker will call): the markers
/// are written as EndTxn writes them here.
pub fn write_txn_markers(
    b: &mut Broker,
    hdr: &RequestHeader<'_>,
    body: &[u8],
    now: Instant,
) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = WriteTxnMarkersRequest::decode(&mut Reader::new(body), v)?;
    let now_ms = b.now_ms(now);
    let mut markers = Vec::with_capacity(req.markers.len());
    for m in &req.markers {
        let mut topics = Vec::with_capacity(m.topics.len());
        for t in &m.topics {
            let mut partitions = Vec::with_capacity(t.partition_indexes.len());
            for &p in &t.partition_indexes {
                let led_elsewhere = b.led_elsewhere(t.name, p);
                let code = match b.partition_log_mut(t.name, p, now) {
                    None if led_elsewhere => error::NOT_LEADER_OR_FOLLOWER,
                    None => error::UNKNOWN_TOPIC_OR_PARTITION,
                    Some(log) => match log.append_marker(
                        m.producer_id,
                        m.producer_epoch,
                        m.transaction_result,
                        m.coordinator_epoch,
                        now_ms,
                    ) {
                        Ok(_) => error::NONE,
                        Err(LogError::InvalidProducerEpoch(_)) => error::INVALID_PRODUCER_EPOCH,
                        Err(LogError::Offline | LogError::Io(_)) => error::KAFKA_STORAGE_ERROR,
                        Err(e) => {
                            log::error!("WriteTxnMarkers to {}-{p}: {e}", t.name);
                            error::UNKNOWN_SERVER_ERROR
                        }
                    },
                };
                if code == error::NONE {
                    b.note_append(t.name, p);
                    if t.name == OFFSETS_TOPIC {
                        if let Err(e) = b.offsets_mut().end_txn(m.producer_id, m.transaction_result)
                        {
                            log::error!("applying transactional offsets: {e}");
                        }
                    }
                }
                partitions.push(WritableTxnMarkerPartitionResult {
                    partition_index: p,
                    error_code: code,
                });
            }
            topics.push(WritableTxnMarkerTopicResult {
                name: t.name,
                partitions,
            });
        }
        markers.push(WritableTxnMarkerResult {
            producer_id: m.producer_id,
            topics,
        });
    }
    let resp = WriteTxnMarkersResponse { markers };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}

pub fn describe_transactions(
    b: &mut Broker,
    hdr: &RequestHeader<'_>,
    body: &[u8],
) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = DescribeTransactionsRequest::decode(&mut Reader::new(body), v)?;
    let states = req
        .transactional_ids
        .iter()
        .map(
            |&id| match b.txns().get(id).filter(|m| m.state != TxnState::Dead) {
                _ if id.is_empty() => dt::TransactionState {
                    error_code: error::INVALID_REQUEST,
                    transactional_id: id,
                    ..Default::default()
                },
                None => dt::TransactionState {
                    error_code: TRANSACTIONAL_ID_NOT_FOUND,
                    transactional_id: id,
                    ..Default::default()
                },
                Some(m) => {
                    let mut topics: Vec<dt::TopicData<'_>> = Vec::new();
                    for (t, p) in &m.partitions {
                        match topics.last_mut() {
                            Some(last) if last.topic == t.as_str() => last.partitions.push(*p),
                            _ => topics.push(dt::TopicData {
                                topic: t.as_str(),
                                partitions: vec![*p],
                            }),
                        }
                    }
                    dt::TransactionState {
                        error_code: error::NONE,
                        transactional_id: id,
                        transaction_state: m.state.name(),
                        transaction_timeout_ms: m.timeout_ms,
                        transaction_start_time_ms: m.start_ms,
                        producer_id: m.producer_id,
                        producer_epoch: m.producer_epoch,
                        topics,
                    }
                }
            },
        )
        .collect();
    let resp = dt::DescribeTransactionsResponse {
        throttle_time_ms: 0,
        transaction_states: states,
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}

pub fn list_transactions(
    b: &mut Broker,
    hdr: &RequestHeader<'_>,
    body: &[u8],
    now: Instant,
) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = ListTransactionsRequest::decode(&mut Reader::new(body), v)?;
    let now_ms = b.now_ms(now);
    let unknown: Vec<&str> = req
        .state_filters
        .iter()
        .copied()
        .filter(|s| TxnState::from_name(s).is_none())
        .collect();
    let listed = b.txns().list(
        &req.state_filters,
        &req.producer_id_filters,
        req.duration_filter,
        now_ms,
    );
    let resp = lt::ListTransactionsResponse {
        throttle_time_ms: 0,
        error_code: error::NONE,
        unknown_state_filters: unknown,
        transaction_states: listed
            .into_iter()
            .map(|m| lt::TransactionState {
                transactional_id: &m.transactional_id,
                producer_id: m.producer_id,
                transaction_state: m.state.name(),
            })
            .collect(),
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}

pub fn describe_producers(
    b: &mut Broker,
    hdr: &RequestHeader<'_>,
    body: &[u8],
) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = DescribeProducersRequest::decode(&mut Reader::new(body), v)?;
    let topics = req
        .topics
        .iter()
        .map(|t| dp::TopicResponse {
            name: t.name,
            partitions: t
                .partition_indexes
                .iter()
                .map(|&p| {
                    let exists = b
                        .image()
                        .topic(t.name)
                        .is_some_and(|i| p >= 0 && (p as usize) < i.partitions.len());
                    if !exists {
                        return dp::PartitionResponse {
                            partition_index: p,
                            error_code: error::UNKNOWN_TOPIC_OR_PARTITION,
                            ..Default::default()
                        };
                    }
                    let producers = b
                        .served(t.name, p)
                        .map(|s| s.producers())
                        .unwrap_or_default();
                    dp::PartitionResponse {
                        partition_index: p,
                        error_code: error::NONE,
                        error_message: None,
                        active_producers: producers
                            .into_iter()
                            .map(|(pid, epoch, seq, ts, ce, txn)| dp::ProducerState {
                                producer_id: pid,
                                producer_epoch: epoch as i32,
                                last_sequence: seq,
                                last_timestamp: ts,
                                coordinator_epoch: ce,
                                current_txn_start_offset: txn,
                            })
                            .collect(),
                    }
                })
                .collect(),
        })
        .collect();
    let resp = dp::DescribeProducersResponse {
        throttle_time_ms: 0,
        topics,
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}
