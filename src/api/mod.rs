//! Request handlers: where the protocol (bytes, versions) meets the log and the metadata image.
//! Each takes the decoded header and body bytes and returns an `Outcome`.

pub mod admin;
pub mod alter_partition;
pub mod api_versions;
pub mod create_topics;
pub mod describe_topic_partitions;
pub mod fetch;
pub mod find_coordinator;
pub mod groups;
pub mod init_producer_id;
pub mod list_offsets;
pub mod metadata;
pub mod offset_for_leader_epoch;
pub mod offsets;
pub mod produce;
pub mod txn;

use crate::protocol::header::{frame_response, RequestHeader};
use crate::protocol::wire::Writer;
use std::collections::HashMap;
use std::hash::Hash;

/// Partitions one Produce, Fetch or ListOffsets request may name. Kafka has no such limit, but
/// a 6 MiB request naming a million partitions would make a 70 MiB answer and hold the loop for
/// most of a second; no client sends anywhere near this many. Above it the connection is
/// closed with a log line.
pub(crate) const MAX_PARTITIONS_PER_REQUEST: usize = 200_000;

/// `Err` (closing the connection) when a request names more partitions than allowed.
pub(crate) fn check_partition_count(n: usize) -> crate::protocol::wire::DResult<()> {
    if n > MAX_PARTITIONS_PER_REQUEST {
        return Err(crate::protocol::wire::DecodeError::Invalid(
            "more than 200,000 partitions in one request",
        ));
    }
    Ok(())
}

/// Encodes a whole response frame (size, header, body) with the message's generated encoder.
pub(crate) fn encode(hdr: &RequestHeader<'_>, f: impl FnOnce(&mut Writer<'_>)) -> Vec<u8> {
    frame_response(hdr, f, 256)
}

/// How often each key occurs: requests that name a topic or resource twice get INVALID_REQUEST
/// for it.
pub(crate) fn occurrences<K: Hash + Eq>(keys: impl Iterator<Item = K>) -> HashMap<K, usize> {
    let mut count = HashMap::new();
    for k in keys {
        *count.entry(k).or_insert(0) += 1;
    }
    count
}

/// Kafka's answer for the authorized operations of a topic when no authorizer is configured:
/// every topic operation (READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS,
/// ALTER_CONFIGS) as a bit field.
pub const ALL_TOPIC_OPERATIONS: i32 = 0x0df8;
/// "Not requested" marker for authorized operations.
pub const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;
