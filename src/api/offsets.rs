//! OffsetCommit, OffsetFetch and OffsetDelete: committed offsets, validated against the group's
//! generation and member, durable as records in `__consumer_offsets`.

use super::encode;
use crate::broker::{Broker, Outcome};
use crate::group::offsets::CommittedOffset;
use crate::protocol::error::{self, ErrorCode};
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::offset_commit_request::OffsetCommitRequest;
use crate::protocol::messages::offset_commit_response::*;
use crate::protocol::messages::offset_delete_request::OffsetDeleteRequest;
use crate::protocol::messages::offset_delete_response::*;
use crate::protocol::messages::offset_fetch_request::OffsetFetchRequest;
use crate::protocol::messages::offset_fetch_response::*;
use crate::protocol::wire::{DResult, Reader};
use std::time::Instant;

/// KIP-447: a read_committed consumer asking with `require_stable` for an offset that a
/// transaction has written but not yet committed is told to retry.
const UNSTABLE_OFFSET_COMMIT: ErrorCode = 88;

/// Kafka's `offsets.commit.timeout.ms`: how long a commit waits for the replicas.
const OFFSETS_COMMIT_TIMEOUT_MS: u64 = 5_000;

/// Kafka's `offset.metadata.max.bytes`.
const OFFSET_METADATA_MAX_BYTES: usize = 4096;

fn partition_exists(b: &Broker, topic: &str, partition: i32) -> bool {
    b.image()
        .topic(topic)
        .is_some_and(|t| partition >= 0 && (partition as usize) < t.partitions.len())
}

pub fn commit(
    b: &mut Broker,
    hdr: &RequestHeader<'_>,
    body: &[u8],
    now: Instant,
) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = OffsetCommitRequest::decode(&mut Reader::new(body), v)?;
    let now_ms = b.now_ms(now);
    let group_error = if req.group_id.is_empty() {
        error::INVALID_GROUP_ID
    } else {
        b.groups_mut().validate_commit(
            req.group_id,
            req.member_id,
            req.group_instance_id,
            req.generation_id_or_member_epoch,
            now,
        )
    };
    // Per-partition verdicts, then one append for everything accepted.
    let mut verdicts: Vec<Vec<ErrorCode>> = Vec::with_capacity(req.topics.len());
    let mut accepted: Vec<(&str, i32, CommittedOffset)> = Vec::new();
    for t in &req.topics {
        let mut vs = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let code = if group_error != error::NONE {
                group_error
            } else if !partition_exists(b, t.name, p.partition_index) {
                error::UNKNOWN_TOPIC_OR_PARTITION
            } else if p.committed_metadata.map_or(0, str::len) > OFFSET_METADATA_MAX_BYTES {
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
                        // v1 only: an explicit retention for this commit.
                        expire_timestamp: if v == 1 && req.retention_time_ms > 0 {
                            now_ms + req.retention_time_ms
                        } else {
                            -1
                        },
                    },
                ));
                error::NONE
            };
            vs.push(code);
        }
        verdicts.push(vs);
    }
    let mut replicated = None;
    if !accepted.is_empty() {
        match b.commit_offsets(req.group_id, &accepted, now) {
            Err(code) => {
                for vs in verdicts.iter_mut() {
                    for c in vs.iter_mut().filter(|c| **c == error::NONE) {
                        *c = code;
                    }
                }
            }
            Ok(()) => replicated = b.group_records_end(req.group_id),
        }
    }
    let answer = |verdicts: &[Vec<ErrorCode>]| {
        let resp = OffsetCommitResponse {
            throttle_time_ms: 0,
            topics: req
                .topics
                .iter()
                .zip(verdicts)
                .map(|(t, vs)| OffsetCommitResponseTopic {
                    name: t.name,
                    topic_id: [0; 16],
                    partitions: t
                        .partitions
                        .iter()
                        .zip(vs)
                        .map(|(p, &error_code)| OffsetCommitResponsePartition {
                            partition_index: p.partition_index,
                            error_code,
                        })
                        .collect(),
                })
                .collect(),
        };
        encode(hdr, |w| resp.encode(w, v))
    };
    let Some((partition, required)) = replicated else {
        return Ok(Outcome::Body(answer(&verdicts)));
    };
    // A replicated __consumer_offsets partition: answered once the in-sync replicas hold the
    // commit (Kafka's offsets.commit.required.acks=-1), so a new coordinator has it. Failing
    // that, Kafka's codes: COORDINATOR_NOT_AVAILABLE (retry), NOT_COORDINATOR (look it up).
    let ok = answer(&verdicts);
    let failed = |code| {
        let mut vs = verdicts.clone();
        for c in vs.iter_mut().flatten().filter(|c| **c == error::NONE) {
            *c = code;
        }
        answer(&vs)
    };
    let not_available = failed(error::COORDINATOR_NOT_AVAILABLE);
    let not_coordinator = failed(error::NOT_COORDINATOR);
    let mut answers = Some((ok, not_available, not_coordinator));
    Ok(Outcome::AwaitReplicas {
        deadline: now + std::time::Duration::from_millis(OFFSETS_COMMIT_TIMEOUT_MS),
        check: Box::new(move |b, expired| {
            let topic = crate::group::offsets::OFFSETS_TOPIC;
            let code = match b.replicated_to(topic, partition, required) {
                None if !expired => return None,
                None => error::REQUEST_TIMED_OUT,
                Some(code) => code,
            };
            let (ok, not_available, not_coordinator) = answers.take()?;
            Some(match code {
                error::NONE => ok,
                error::NOT_LEADER_OR_FOLLOWER | error::KAFKA_STORAGE_ERROR => not_coordinator,
                _ => not_available,
            })
        }),
    })
}

/// One topic's answer: partitions with their committed offset, if any.
type TopicOffsets<'a> = (&'a str, Vec<(i32, Option<&'a CommittedOffset>)>);

/// The committed offsets of one group for the topics asked (all of the group's when `None`).
fn fetch_group<'a>(
    b: &'a Broker,
    group: &str,
    topics: Option<Vec<(&'a str, Vec<i32>)>>,
) -> Vec<TopicOffsets<'a>> {
    match topics {
        Some(ts) => ts
            .into_iter()
            .map(|(name, parts)| {
                let ps = parts
                    .into_iter()
                    .map(|p| (p, b.offsets().fetch(group, name, p)))
                    .collect();
                (name, ps)
            })
            .collect(),
        None => {
            let mut out: Vec<TopicOffsets<'_>> = Vec::new();
            for (topic, p, c) in b.offsets().group_offsets(group) {
                match out.last_mut() {
                    Some((t, ps)) if *t == topic => ps.push((p, Some(c))),
                    _ => out.push((topic, vec![(p, Some(c))])),
                }
            }
            out
        }
    }
}

pub fn fetch(b: &mut Broker, hdr: &RequestHeader<'_>, body: &[u8]) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = OffsetFetchRequest::decode(&mut Reader::new(body), v)?;
    let b = &*b;
    let resp = if v >= 8 {
        let groups = req
            .groups
            .iter()
            .map(|g| {
                let topics = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .map(|t| (t.name, t.partition_indexes.clone()))
                        .collect()
                });
                if !b.groups().owns(g.group_id) {
                    return OffsetFetchResponseGroup {
                        group_id: g.group_id,
                        topics: Vec::new(),
                        error_code: error::NOT_COORDINATOR,
                    };
                }
                OffsetFetchResponseGroup {
                    group_id: g.group_id,
                    topics: fetch_group(b, g.group_id, topics)
                        .into_iter()
                        .map(|(name, ps)| OffsetFetchResponseTopics {
                            name,
                            topic_id: [0; 16],
                            partitions: ps
                                .into_iter()
                                .map(|(p, c)| {
                                    let unstable = req.require_stable
                                        && b.offsets().has_pending(g.group_id, name, p);
                                    let c = c.filter(|_| !unstable);
                                    OffsetFetchResponsePartitions {
                                        partition_index: p,
                                        committed_offset: c.map_or(-1, |c| c.offset),
                                        committed_leader_epoch: c.map_or(-1, |c| c.leader_epoch),
                                        metadata: Some(c.map_or("", |c| c.metadata.as_str())),
                                        error_code: if unstable {
                                            UNSTABLE_OFFSET_COMMIT
                                        } else {
                                            error::NONE
                                        },
                                    }
                                })
                                .collect(),
                        })
                        .collect(),
                    error_code: error::NONE,
                }
            })
            .collect();
        OffsetFetchResponse {
            groups,
            ..Default::default()
        }
    } else if !b.groups().owns(req.group_id) {
        OffsetFetchResponse {
            error_code: error::NOT_COORDINATOR,
            ..Default::default()
        }
    } else {
        let topics = req.topics.as_ref().map(|ts| {
            ts.iter()
                .map(|t| (t.name, t.partition_indexes.clone()))
                .collect()
        });
        OffsetFetchResponse {
            throttle_time_ms: 0,
            topics: fetch_group(b, req.group_id, topics)
                .into_iter()
                .map(|(name, ps)| OffsetFetchResponseTopic {
                    name,
                    partitions: ps
                        .into_iter()
                        .map(|(p, c)| {
                            let unstable = req.require_stable
                                && b.offsets().has_pending(req.group_id, name, p);
                            let c = c.filter(|_| !unstable);
                            OffsetFetchResponsePartition {
                                partition_index: p,
                                committed_offset: c.map_or(-1, |c| c.offset),
                                committed_leader_epoch: c.map_or(-1, |c| c.leader_epoch),
                                metadata: Some(c.map_or("", |c| c.metadata.as_str())),
                                error_code: if unstable {
                                    UNSTABLE_OFFSET_COMMIT
                                } else {
                                    error::NONE
                                },
                            }
                        })
                        .collect(),
                })
                .collect(),
            error_code: error::NONE,
            groups: Vec::new(),
        }
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}

/// The topics a consumer-protocol member subscribes to (ConsumerProtocolSubscription: a
/// version, then an array of topic names). Unreadable metadata subscribes to nothing.
fn subscribed_topics(metadata: &[u8]) -> Vec<String> {
    let mut r = Reader::new(metadata);
    let read = |r: &mut Reader<'_>| -> DResult<Vec<String>> {
        r.i16()?;
        let n = r.array_len(false, 2)?.unwrap_or(0);
        (0..n).map(|_| r.string().map(str::to_string)).collect()
    };
    read(&mut r).unwrap_or_default()
}

pub fn delete(
    b: &mut Broker,
    hdr: &RequestHeader<'_>,
    body: &[u8],
    now: Instant,
) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = OffsetDeleteRequest::decode(&mut Reader::new(body), v)?;
    let desc = b.groups().describe(req.group_id);
    let known = desc.state != "Dead" || b.offsets().has_offsets(req.group_id);
    let subscribed: Vec<String> = if desc.protocol_type == "consumer" {
        desc.members
            .iter()
            .flat_map(|m| subscribed_topics(&m.metadata))
            .collect()
    } else {
        Vec::new()
    };
    let active = !b.groups().is_empty_group(req.group_id);
    let mut per_topic: Vec<Vec<ErrorCode>> = Vec::new();
    let mut delete: Vec<(&str, i32)> = Vec::new();
    for t in &req.topics {
        let busy = active && subscribed.iter().any(|s| s == t.name);
        let mut codes = Vec::new();
        for p in &t.partitions {
            if busy {
                codes.push(error::GROUP_SUBSCRIBED_TO_TOPIC);
            } else if !partition_exists(b, t.name, p.partition_index) {
                codes.push(error::UNKNOWN_TOPIC_OR_PARTITION);
            } else {
                delete.push((t.name, p.partition_index));
                codes.push(error::NONE);
            }
        }
        per_topic.push(codes);
    }
    let mut top = error::NONE;
    if !known {
        top = error::GROUP_ID_NOT_FOUND;
    } else if !delete.is_empty() {
        let records = b.offsets().offset_tombstones(req.group_id, &delete);
        if let Err(code) = b.append_group_records(req.group_id, records, now) {
            top = code;
        }
    }
    let resp = OffsetDeleteResponse {
        error_code: top,
        throttle_time_ms: 0,
        topics: if top != error::NONE {
            Vec::new()
        } else {
            req.topics
                .iter()
                .zip(&per_topic)
                .map(|(t, codes)| OffsetDeleteResponseTopic {
                    name: t.name,
                    partitions: t
                        .partitions
                        .iter()
                        .zip(codes)
                        .map(|(p, &error_code)| OffsetDeleteResponsePartition {
                            partition_index: p.partition_index,
                            error_code,
                        })
                        .collect(),
                })
                .collect()
        },
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}
