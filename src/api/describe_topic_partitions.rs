//! DescribeTopicPartitions: topics sorted by name, paged by `response_partition_limit` and a
//! cursor (topic name, first partition) that says where the next page starts.

use super::{encode, ALL_TOPIC_OPERATIONS};
use crate::broker::{is_internal_topic, Broker, Outcome};
use crate::protocol::error;
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::describe_topic_partitions_request::DescribeTopicPartitionsRequest;
use crate::protocol::messages::describe_topic_partitions_response::*;
use crate::protocol::wire::{DResult, Reader};

pub fn handle(b: &mut Broker, hdr: &RequestHeader<'_>, body: &[u8]) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = DescribeTopicPartitionsRequest::decode(&mut Reader::new(body), v)?;
    let image = b.image();
    // An empty list describes every topic; otherwise the named ones, sorted and deduplicated.
    let mut names: Vec<&str> = if req.topics.is_empty() {
        image.topics().map(|t| t.name.as_str()).collect()
    } else {
        req.topics.iter().map(|t| t.name).collect()
    };
    names.sort_unstable();
    names.dedup();
    let (cursor_topic, cursor_partition) = match &req.cursor {
        Some(c) => (Some(c.topic_name), c.partition_index.max(0)),
        None => (None, 0),
    };
    let mut budget = req.response_partition_limit.max(1) as usize;
    let mut topics = Vec::new();
    let mut next_cursor = None;
    for name in names {
        if cursor_topic.is_some_and(|c| name < c) {
            continue;
        }
        let Some(t) = image.topic(name) else {
            topics.push(DescribeTopicPartitionsResponseTopic {
                error_code: error::UNKNOWN_TOPIC_OR_PARTITION,
                name: Some(name),
                topic_id: [0; 16],
                is_internal: false,
                partitions: Vec::new(),
                topic_authorized_operations: ALL_TOPIC_OPERATIONS,
            });
            continue;
        };
        if budget == 0 {
            next_cursor = Some(Cursor {
                topic_name: name,
                partition_index: 0,
            });
            break;
        }
        let first = if cursor_topic == Some(name) {
            cursor_partition as usize
        } else {
            0
        };
        let mut partitions = Vec::new();
        for p in t.partitions.iter().skip(first) {
            if budget == 0 {
                next_cursor = Some(Cursor {
                    topic_name: name,
                    partition_index: p.partition,
                });
                break;
            }
            budget -= 1;
            partitions.push(DescribeTopicPartitionsResponsePartition {
                error_code: error::NONE,
                partition_index: p.partition,
                leader_id: p.leader,
                leader_epoch: p.leader_epoch,
                replica_nodes: p.replicas.clone(),
                isr_nodes: p.isr.clone(),
                eligible_leader_replicas: Some(Vec::new()),
                last_known_elr: Some(Vec::new()),
                offline_replicas: b.offline_replicas(&t.name, p),
            });
        }
        topics.push(DescribeTopicPartitionsResponseTopic {
            error_code: error::NONE,
            name: Some(t.name.as_str()),
            topic_id: t.id,
            is_internal: is_internal_topic(&t.name),
            partitions,
            topic_authorized_operations: ALL_TOPIC_OPERATIONS,
        });
        if next_cursor.is_some() {
            break;
        }
    }
    let resp = DescribeTopicPartitionsResponse {
        throttle_time_ms: 0,
        topics,
        next_cursor,
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}
