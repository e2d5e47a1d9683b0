//! Metadata: brokers, cluster id, controller, and topics with their partitions. This broker
//! leads every partition. Unknown topics are created when the client and the config allow it.

use super::{encode, ALL_TOPIC_OPERATIONS, OPERATIONS_NOT_REQUESTED};
use crate::broker::{is_internal_topic, Broker, Outcome};
use crate::metadata::{validate_topic_name, TopicInfo};
use crate::protocol::error;
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::metadata_request::MetadataRequest;
use crate::protocol::messages::metadata_response::*;
use crate::protocol::wire::{DResult, Reader};
use std::time::Instant;

pub fn handle(
    b: &mut Broker,
    hdr: &RequestHeader<'_>,
    body: &[u8],
    now: Instant,
) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = MetadataRequest::decode(&mut Reader::new(body), v)?;
    // v0: an empty list means all topics; v1+: null means all, empty means none.
    let all = match &req.topics {
        None => true,
        Some(t) => t.is_empty() && v == 0,
    };
    let allow_create =
        (v < 4 || req.allow_auto_topic_creation) && b.config().auto_create_topics_enable;

    // Resolve what was asked for (creating where allowed) before building the response.
    enum Want<'a> {
        Name(&'a str),
        Id([u8; 16]),
    }
    let mut wants = Vec::new();
    if !all {
        for t in req.topics.iter().flatten() {
            match t.name {
                Some(n) => wants.push(Want::Name(n)),
                None => wants.push(Want::Id(t.topic_id)),
            }
        }
    }
    for w in &wants {
        if let Want::Name(n) = w {
            if allow_create && b.image().topic(n).is_none() && validate_topic_name(n).is_ok() {
                let parts = b.config().num_partitions;
                let rf = b.config().default_replication_factor;
                match b.create_topic(n, parts, rf, &[], now) {
                    // Asked of the active controller (a cluster node that is not it).
                    Err(e) if Broker::not_controller(&e) => {}
                    Err(e) => log::error!("auto-creating topic {n}: {e}"),
                    Ok(()) => {}
                }
            }
        }
    }

    let ops = if req.include_topic_authorized_operations {
        ALL_TOPIC_OPERATIONS
    } else {
        OPERATIONS_NOT_REQUESTED
    };
    let image = b.image();
    let offline = |t: &str, p: &crate::metadata::PartitionInfo| b.offline_replicas(t, p);
    let describe = |t, ops| describe(t, ops, &offline);
    let mut topics = Vec::new();
    if all {
        topics.extend(image.topics().map(|t| describe(t, ops)));
    } else {
        for w in &wants {
            match w {
                Want::Name(n) => match image.topic(n) {
                    Some(t) => topics.push(describe(t, ops)),
                    None => topics.push(MetadataResponseTopic {
                        error_code: if validate_topic_name(n).is_err() {
                            error::INVALID_TOPIC_EXCEPTION
                        } else {
                            error::UNKNOWN_TOPIC_OR_PARTITION
                        },
                        name: Some(n),
                        topic_authorized_operations: ops,
                        ..Default::default()
                    }),
                },
                Want::Id(id) => match image.topic_by_id(id) {
                    Some(t) => topics.push(describe(t, ops)),
                    None => topics.push(MetadataResponseTopic {
                        error_code: error::UNKNOWN_TOPIC_ID,
                        name: None,
                        topic_id: *id,
                        topic_authorized_operations: ops,
                        ..Default::default()
                    }),
                },
            }
        }
    }
    let addresses = b.broker_addresses(false);
    let resp = MetadataResponse {
        throttle_time_ms: 0,
        brokers: addresses
            .iter()
            .map(|a| MetadataResponseBroker {
                node_id: a.id,
                host: a.host.as_str(),
                port: a.port,
                rack: a.rack.as_deref(),
            })
            .collect(),
        cluster_id: Some(b.cluster_id()),
        controller_id: b.metadata_controller_id(),
        topics,
        cluster_authorized_operations: OPERATIONS_NOT_REQUESTED,
        error_code: error::NONE,
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}

/// A partition whose log is offline keeps its leader (this broker still serves what reached the
/// disk) and lists the replica as offline.
fn describe<'a>(
    t: &'a TopicInfo,
    ops: i32,
    offline: &dyn Fn(&str, &crate::metadata::PartitionInfo) -> Vec<i32>,
) -> MetadataResponseTopic<'a> {
    MetadataResponseTopic {
        error_code: error::NONE,
        name: Some(t.name.as_str()),
        topic_id: t.id,
        is_internal: is_internal_topic(&t.name),
        partitions: t
            .partitions
            .iter()
            .map(|p| MetadataResponsePartition {
                // No leader (every in-sync replica is gone): clients wait and ask again.
                error_code: if p.leader < 0 {
                    error::LEADER_NOT_AVAILABLE
                } else {
                    error::NONE
                },
                partition_index: p.partition,
                leader_id: p.leader,
                leader_epoch: p.leader_epoch,
                replica_nodes: p.replicas.clone(),
                isr_nodes: p.isr.clone(),
                offline_replicas: offline(&t.name, p),
            })
            .collect(),
        topic_authorized_operations: ops,
    }
}
