//! CreateTopics: validate each topic as Kafka does, then append its records to the metadata log.
//!
//! Only the metadata is written here: each partition's log (directory, segment and index files,
//! about eight fsyncs) is created on its first write (`Broker::partition_log_mut`), and a
//! partition without a log reads as empty. Creating them all in the request held the one loop
//! for about a millisecond per partition — 2.2 s for 2,000 partitions, 11 s for the 10,000 a
//! request may ask for — and every other client's request, a fresh connection's ApiVersions
//! too, waited behind it.

use super::encode;
use crate::broker::{topic_config, Broker, Outcome};
use crate::metadata::validate_topic_name;
use crate::protocol::error;
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::create_topics_request::{CreatableTopic, CreateTopicsRequest};
use crate::protocol::messages::create_topics_response::*;
use crate::protocol::wire::{DResult, Reader};
use std::time::Instant;

/// Kafka's `MAX_PARTITIONS_PER_BATCH`.
const MAX_PARTITIONS_PER_REQUEST: i64 = 10_000;

struct Verdict {
    error: i16,
    message: Option<String>,
    partitions: i32,
    replication: i16,
}

fn check(b: &Broker, t: &CreatableTopic<'_>) -> Verdict {
    let fail = |error, message: String| Verdict {
        error,
        message: Some(message),
        partitions: -1,
        replication: -1,
    };
    if let Err(why) = validate_topic_name(t.name) {
        return fail(error::INVALID_TOPIC_EXCEPTION, why.to_string());
    }
    if b.image().topic(t.name).is_some() {
        return fail(
            error::TOPIC_ALREADY_EXISTS,
            format!("Topic '{}' already exists.", t.name),
        );
    }
    let live_brokers = b.broker_addresses(false).len() as i32;
    let (partitions, replication) = if !t.assignments.is_empty() {
        if t.num_partitions != -1 || t.replication_factor != -1 {
            return fail(
                error::INVALID_REQUEST,
                "Both numPartitions or replicationFactor and replicasAssignments were set. \
                 Both cannot be used at the same time."
                    .into(),
            );
        }
        let rf = t.assignments[0].broker_ids.len();
        for (i, a) in t.assignments.iter().enumerate() {
            if a.partition_index != i as i32 {
                return fail(
                    error::INVALID_REPLICA_ASSIGNMENT,
                    "Partitions should be numbered consecutively from 0.".into(),
                );
            }
            if a.broker_ids.is_empty() || a.broker_ids.len() != rf {
                return fail(
                    error::INVALID_REPLICA_ASSIGNMENT,
                    format!("Invalid replica assignment for partition {}.", i),
                );
            }
            // Kafka's ReplicationControlManager.validateManualPartitionAssignment.
            for (j, &id) in a.broker_ids.iter().enumerate() {
                let known = if b.in_cluster() {
                    b.image().brokers().contains_key(&id)
                } else {
                    id == b.config().node_id
                };
                if !known {
                    return fail(
                        error::INVALID_REPLICA_ASSIGNMENT,
                        format!(
                            "The manual partition assignment includes broker {id}, but no such \
                             broker is registered."
                        ),
                    );
                }
                if a.broker_ids[..j].contains(&id) {
                    return fail(
                        error::INVALID_REPLICA_ASSIGNMENT,
                        format!(
                            "The manual partition assignment includes the broker {id} more \
                             than once."
                        ),
                    );
                }
            }
        }
        (t.assignments.len() as i32, rf as i16)
    } else {
        let p = if t.num_partitions == -1 {
            b.config().num_partitions
        } else {
            t.num_partitions
        };
        let rf = if t.replication_factor == -1 {
            b.config().default_replication_factor
        } else {
            t.replication_factor
        };
        (p, rf)
    };
    if partitions <= 0 {
        return fail(
            error::INVALID_PARTITIONS,
            "Number of partitions must be larger than 0.".into(),
        );
    }
    if replication <= 0 {
        return fail(
            error::INVALID_REPLICATION_FACTOR,
            "Replication factor must be larger than 0.".into(),
        );
    }
    if replication as i32 > live_brokers {
        return fail(
            error::INVALID_REPLICATION_FACTOR,
            format!(
                "Unable to replicate the partition {replication} time(s): The target replication \
                 factor of {replication} cannot be reached because only {live_brokers} broker(s) \
                 are registered."
            ),
        );
    }
    for c in &t.configs {
        if let Err(why) = topic_config::validate(c.name, c.value) {
            let code = if c.value.is_none() {
                error::INVALID_REQUEST
            } else {
                error::INVALID_CONFIG
            };
            return fail(code, why);
        }
    }
    Verdict {
        error: error::NONE,
        message: None,
        partitions,
        replication,
    }
}

pub fn handle(
    b: &mut Broker,
    hdr: &RequestHeader<'_>,
    body: &[u8],
    now: Instant,
) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = CreateTopicsRequest::decode(&mut Reader::new(body), v)?;
    let count = super::occurrences(req.topics.iter().map(|t| t.name));
    // Kafka 4 (KAFKA-17870) refuses a request that would create more than 10,000 partitions in
    // all, before creating anything: one request cannot make a hundred thousand partition logs.
    let total: i64 = req
        .topics
        .iter()
        .filter(|t| count[t.name] == 1)
        .map(|t| match (t.assignments.len(), t.num_partitions) {
            (0, -1) => b.config().num_partitions.max(0) as i64,
            (0, n) => n.max(0) as i64,
            (n, _) => n as i64,
        })
        .sum();
    let mut verdicts = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let mut verdict = if count[t.name] > 1 {
            Verdict {
                error: error::INVALID_REQUEST,
                message: Some(format!("Duplicate topic name: {}", t.name)),
                partitions: -1,
                replication: -1,
            }
        } else if !b.can_change_metadata() {
            // A cluster node that is not the active controller (and could not forward): the
            // client looks the controller up again; its view here may be stale.
            let e = crate::metadata::MetadataError::NotController;
            Verdict {
                error: e.error_code(),
                message: Some(e.to_string()),
                partitions: -1,
                replication: -1,
            }
        } else if total > MAX_PARTITIONS_PER_REQUEST {
            Verdict {
                error: error::POLICY_VIOLATION,
                message: Some("Excessively large number of partitions per request.".into()),
                partitions: -1,
                replication: -1,
            }
        } else {
            check(b, t)
        };
        if verdict.error == error::NONE && !req.validate_only {
            let configs: Vec<(String, String)> = t
                .configs
                .iter()
                .filter_map(|c| c.value.map(|v| (c.name.to_string(), v.to_string())))
                .collect();
            // Decided here (checked above), so nothing is forwarded from within.
            let made = if t.assignments.is_empty() {
                b.create_topic(
                    t.name,
                    verdict.partitions,
                    verdict.replication,
                    &configs,
                    now,
                )
            } else {
                let assignment = t.assignments.iter().map(|a| a.broker_ids.clone()).collect();
                b.create_topic_assigned(t.name, assignment, &configs, now)
            };
            if let Err(e) = made {
                if !Broker::not_controller(&e) {
                    log::error!("creating topic {}: {e}", t.name);
                }
                verdict.error = e.error_code();
                verdict.message = Some(e.to_string());
            }
        }
        verdicts.push(verdict);
    }
    let image = b.image();
    let topics = req
        .topics
        .iter()
        .zip(&verdicts)
        .map(|(t, verdict)| {
            let ok = verdict.error == error::NONE;
            CreatableTopicResult {
                name: t.name,
                topic_id: if ok {
                    image.topic(t.name).map(|i| i.id).unwrap_or_default()
                } else {
                    [0; 16]
                },
                error_code: verdict.error,
                error_message: verdict.message.as_deref(),
                topic_config_error_code: error::NONE,
                num_partitions: verdict.partitions,
                replication_factor: verdict.replication,
                configs: if ok {
                    Some(
                        t.configs
                            .iter()
                            .map(|c| CreatableTopicConfigs {
                                name: c.name,
                                value: c.value,
                                read_only: false,
                                config_source: 1, // DYNAMIC_TOPIC_CONFIG
                                is_sensitive: false,
                            })
                            .collect(),
                    )
                } else {
                    None
                },
            }
        })
        .collect();
    let resp = CreateTopicsResponse {
        throttle_time_ms: 0,
        topics,
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}
