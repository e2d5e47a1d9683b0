//! DescribeCluster and DescribeLogDirs.

use crate::api::{encode, OPERATIONS_NOT_REQUESTED};
use crate::broker::{Broker, Outcome};
use crate::protocol::error;
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::describe_cluster_request::DescribeClusterRequest;
use crate::protocol::messages::describe_cluster_response::*;
use crate::protocol::messages::describe_log_dirs_request::DescribeLogDirsRequest;
use crate::protocol::messages::describe_log_dirs_response::*;
use crate::protocol::wire::{DResult, Reader};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Kafka's cluster operations (CREATE 5, ALTER 7, DESCRIBE 8, CLUSTER_ACTION 9,
/// DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11, IDEMPOTENT_WRITE 12) as a bit field, all allowed
/// without an authorizer.
const ALL_CLUSTER_OPERATIONS: i32 = 0x1fa0;
/// DescribeCluster v1 `endpoint_type`: brokers.
const ENDPOINT_BROKERS: i8 = 1;
/// DescribeCluster v1 `endpoint_type`: controllers (answered by controller listeners only).
const ENDPOINT_CONTROLLERS: i8 = 2;
const MISMATCHED_ENDPOINT_TYPE: i16 = 114;
const UNSUPPORTED_ENDPOINT_TYPE: i16 = 115;

pub fn describe_cluster(b: &mut Broker, hdr: &RequestHeader<'_>, body: &[u8]) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = DescribeClusterRequest::decode(&mut Reader::new(body), v)?;
    let wrong_endpoint = v >= 1 && req.endpoint_type != ENDPOINT_BROKERS;
    let (code, message) = match req.endpoint_type {
        _ if !wrong_endpoint => (error::NONE, None),
        ENDPOINT_CONTROLLERS => (
            MISMATCHED_ENDPOINT_TYPE,
            Some("The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER"),
        ),
        _ => (
            UNSUPPORTED_ENDPOINT_TYPE,
            Some("Unsupported endpoint type"),
        ),
    };
    // v2 may ask for fenced brokers too (KIP-1073).
    let addresses = b.broker_addresses(v >= 2 && req.include_fenced_brokers);
    let resp = DescribeClusterResponse {
        throttle_time_ms: 0,
        error_code: code,
        error_message: message,
        endpoint_type: ENDPOINT_BROKERS,
        cluster_id: b.cluster_id(),
        controller_id: b.controller_id(),
        brokers: if wrong_endpoint {
            Vec::new()
        } else {
            addresses
                .iter()
                .map(|a| DescribeClusterBroker {
                    broker_id: a.id,
                    host: a.host.as_str(),
                    port: a.port,
                    rack: a.rack.as_deref(),
                    is_fenced: a.fenced,
                })
                .collect()
        },
        cluster_authorized_operations: if req.include_cluster_authorized_operations {
            ALL_CLUSTER_OPERATIONS
        } else {
            OPERATIONS_NOT_REQUESTED
        },
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}

/// The log directory as an absolute path, as Kafka reports it.
fn absolute_log_dir(b: &Broker) -> String {
    let dir = b.logs().dir();
    let abs: PathBuf = std::fs::canonicalize(dir).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|c| c.join(dir))
            .unwrap_or_else(|_| dir.to_path_buf())
    });
    abs.to_string_lossy().into_owned()
}

pub fn describe_log_dirs(b: &mut Broker, hdr: &RequestHeader<'_>, body: &[u8]) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = DescribeLogDirsRequest::decode(&mut Reader::new(body), v)?;
    // (topic -> [(partition, size)]), ordered for a stable answer. Every partition of the
    // metadata is in the directory, with size 0 until its log is first written, as Kafka lists
    // an empty partition.
    let size = |t: &str, p: i32| b.served(t, p).map_or(0, |s| s.size_bytes() as i64);
    let mut found: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
    let image = b.image();
    match &req.topics {
        None => {
            for t in image.topics() {
                for p in 0..t.partitions.len() as i32 {
                    found
                        .entry(t.name.as_str())
                        .or_default()
                        .push((p, size(&t.name, p)));
                }
            }
        }
        Some(wanted) => {
            for t in wanted {
                let n = image
                    .topic(t.topic)
                    .map_or(0, |i| i.partitions.len() as i32);
                for &p in t.partitions.iter().filter(|&&p| p >= 0 && p < n) {
                    found
                        .entry(t.topic)
                        .or_default()
                        .push((p, size(t.topic, p)));
                }
            }
        }
    }
    let log_dir = absolute_log_dir(b);
    // Kafka reports an offline directory with KAFKA_STORAGE_ERROR and nothing in it.
    let dir_error = if b.logs().is_offline() {
        found.clear();
        error::KAFKA_STORAGE_ERROR
    } else {
        error::NONE
    };
    let topics = found
        .into_iter()
        .map(|(name, mut parts)| {
            parts.sort_unstable();
            parts.dedup_by_key(|p| p.0);
            DescribeLogDirsTopic {
                name,
                partitions: parts
                    .into_iter()
                    .map(|(p, size)| DescribeLogDirsPartition {
                        partition_index: p,
                        partition_size: size,
                        offset_lag: 0,
                        is_future_key: false,
                    })
                    .collect(),
            }
        })
        .collect();
    let resp = DescribeLogDirsResponse {
        throttle_time_ms: 0,
        error_code: error::NONE,
        results: vec![DescribeLogDirsResult {
            error_code: dir_error,
            log_dir: &log_dir,
            topics,
            // Disk totals need statvfs, which std does not expose: unknown.
            total_bytes: -1,
            usable_bytes: -1,
        }],
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}
