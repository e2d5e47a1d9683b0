//! DeleteTopics and CreatePartitions.

use super::TOPIC_DELETION_DISABLED;
use crate::api::encode;
use crate::broker::{is_internal_topic, Broker, Outcome};
use crate::protocol::error;
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::create_partitions_request::CreatePartitionsRequest;
use crate::protocol::messages::create_partitions_response::*;
use crate::protocol::messages::delete_topics_request::DeleteTopicsRequest;
use crate::protocol::messages::delete_topics_response::*;
use crate::protocol::wire::{DResult, Reader};
use std::time::Instant;

/// The metadata store's limit on partitions per topic.
const MAX_PARTITIONS: i32 = 100_000;
/// Kafka's `QuorumController.MAX_RECORDS_PER_USER_OP`.
const MAX_RECORDS_PER_USER_OP: i64 = 10_000;

/// One topic of a DeleteTopics request, resolved against the image.
struct Deletion {
    name: Option<String>,
    id: [u8; 16],
    error: i16,
    message: Option<String>,
}

/// Decides what happens to one named topic (or topic id, v6), in Kafka's order of checks.
fn resolve(b: &Broker, v: i16, name: Option<&str>, id: [u8; 16], dup: bool) -> Deletion {
    let fail = |name: Option<&str>, error, message: &str| Deletion {
        name: name.map(str::to_string),
        id,
        error,
        message: Some(message.to_string()),
    };
    if !b.config().delete_topic_enable {
        // Kafka fails the whole request; before v3 the code did not exist.
        let code = if v < 3 {
            error::INVALID_REQUEST
        } else {
            TOPIC_DELETION_DISABLED
        };
        return fail(name, code, "Topic deletion is disabled.");
    }
    let by_id = id != [0; 16];
    if name.is_some() && by_id {
        return fail(
            name,
            error::INVALID_REQUEST,
            "You may not specify both topic name and topic id.",
        );
    }
    if name.is_none() && !by_id {
        return fail(
            None,
            error::INVALID_REQUEST,
            "Neither topic name nor id were specified.",
        );
    }
    if dup {
        let why = if by_id {
            "Duplicate topic id."
        } else {
            "Duplicate topic name."
        };
        return fail(name, error::INVALID_REQUEST, why);
    }
    let image = b.image();
    let topic = match name {
        Some(n) => image.topic(n),
        None => image.topic_by_id(&id),
    };
    let Some(topic) = topic else {
        return if by_id {
            fail(
                None,
                error::UNKNOWN_TOPIC_ID,
                "This server does not host this topic ID.",
            )
        } else {
            fail(
                name,
                error::UNKNOWN_TOPIC_OR_PARTITION,
                "This server does not host this topic-partition.",
            )
        };
    };
    if is_internal_topic(&topic.name) {
        // The group coordinator keeps its state in __consumer_offsets: refuse rather than
        // lose every group's offsets.
        return Deletion {
            name: Some(topic.name.clone()),
            id: topic.id,
            error: error::INVALID_REQUEST,
            message: Some(format!("Internal topic {} cannot be deleted.", topic.name)),
        };
    }
    Deletion {
        name: Some(topic.name.clone()),
        id: topic.id,
        error: error::NONE,
        message: None,
    }
}

pub fn delete_topics(
    b: &mut Broker,
    hdr: &RequestHeader<'_>,
    body: &[u8],
    now: Instant,
) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = DeleteTopicsRequest::decode(&mut Reader::new(body), v)?;
    // v6 names topics by name or id; earlier versions by name only.
    let wanted: Vec<(Option<&str>, [u8; 16])> = if v >= 6 {
        req.topics.iter().map(|t| (t.name, t.topic_id)).collect()
    } else {
        req.topic_names
            .iter()
            .map(|n| (Some(*n), [0; 16]))
            .collect()
    };
    let count = crate::api::occurrences(wanted.iter().copied());
    let mut results = Vec::with_capacity(wanted.len());
    for w in &wanted {
        let mut d = resolve(b, v, w.0, w.1, count[w] > 1);
        if d.error == error::NONE {
            let name = d.name.clone().unwrap_or_default();
            if let Err((code, e)) = b.delete_topic(&name, now) {
                log::warn!("deleting topic {name}: {e}");
                d.error = code;
                d.message = Some(e);
            }
        }
        results.push(d);
    }
    if results.iter().any(|d| d.error == error::NONE) {
        // Deleted partitions must leave the checkpoint files now: a re-created topic of the
        // same name would otherwise inherit their log start offsets after a crash.
        if let Err(e) = b.checkpoint_logs() {
            log::error!("writing checkpoints after DeleteTopics: {e}");
        }
    }
    let resp = DeleteTopicsResponse {
        throttle_time_ms: 0,
        responses: results
            .iter()
            .map(|d| DeletableTopicResult {
                name: d.name.as_deref(),
                topic_id: d.id,
                error_code: d.error,
                error_message: d.message.as_deref(),
            })
            .collect(),
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}

/// Checks one CreatePartitions topic; the error code and Kafka's message.
fn check_growth(
    b: &Broker,
    name: &str,
    count: i32,
    assignments: Option<&[Vec<i32>]>,
) -> Result<(), (i16, String)> {
    let Some(t) = b.image().topic(name) else {
        return Err((
            error::UNKNOWN_TOPIC_OR_PARTITION,
            format!("The topic '{name}' does not exist."),
        ));
    };
    let have = t.partitions.len() as i32;
    if count < have {
        return Err((
            error::INVALID_PARTITIONS,
            format!("The topic {name} currently has {have} partition(s); {count} would not be an increase."),
        ));
    }
    if count == have {
        return Err((
            error::INVALID_PARTITIONS,
            format!("Topic already has {have} partition(s)."),
        ));
    }
    if count > MAX_PARTITIONS {
        return Err((
            error::INVALID_PARTITIONS,
            format!("Too many partitions: {count}."),
        ));
    }
    if let Some(a) = assignments {
        if a.len() as i32 != count - have {
            return Err((
                error::INVALID_REPLICA_ASSIGNMENT,
                format!(
                    "Attempted to add {} additional partition(s), but only {} assignment(s) were specified.",
                    count - have,
                    a.len()
                ),
            ));
        }
        if a.iter()
            .any(|ids| ids.is_empty() || ids.iter().any(|&id| id != b.config().node_id))
        {
            return Err((
                error::INVALID_REPLICA_ASSIGNMENT,
                "The manual partition assignment includes a broker that is not registered or \
                 an empty replica list."
                    .into(),
            ));
        }
    }
    Ok(())
}

pub fn create_partitions(
    b: &mut Broker,
    hdr: &RequestHeader<'_>,
    body: &[u8],
    now: Instant,
) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = CreatePartitionsRequest::decode(&mut Reader::new(body), v)?;
    let count = crate::api::occurrences(req.topics.iter().map(|t| t.name));
    // Kafka's controller writes at most MAX_RECORDS_PER_USER_OP (10,000) records for one request
    // and fails the whole request otherwise (BoundedListTooLongException, answered as a
    // PolicyViolationException): one PartitionRecord per new partition.
    let new_partitions: i64 = req
        .topics
        .iter()
        .filter(|t| count[t.name] == 1)
        .filter_map(|t| {
            let have = b.image().topic(t.name)?.partitions.len() as i64;
            Some((t.count as i64 - have).max(0))
        })
        .sum();
    let mut verdicts: Vec<(i16, Option<String>)> = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        if new_partitions > MAX_RECORDS_PER_USER_OP {
            verdicts.push((
                error::POLICY_VIOLATION,
                Some("Unable to perform excessively large batch operation.".into()),
            ));
            continue;
        }
        if count[t.name] > 1 {
            verdicts.push((error::INVALID_REQUEST, Some("Duplicate topic name.".into())));
            continue;
        }
        let assignments: Option<Vec<Vec<i32>>> = t
            .assignments
            .as_ref()
            .map(|a| a.iter().map(|x| x.broker_ids.clone()).collect());
        if let Err((code, msg)) = check_growth(b, t.name, t.count, assignments.as_deref()) {
            verdicts.push((code, Some(msg)));
            continue;
        }
        if !req.validate_only {
            if let Err(e) = grow(b, t.name, t.count, now) {
                log::error!("growing topic {}: {e}", t.name);
                verdicts.push((error::UNKNOWN_SERVER_ERROR, Some(e)));
                continue;
            }
        }
        verdicts.push((error::NONE, None));
    }
    let resp = CreatePartitionsResponse {
        throttle_time_ms: 0,
        results: req
            .topics
            .iter()
            .zip(&verdicts)
            .map(|(t, (code, msg))| CreatePartitionsTopicResult {
                name: t.name,
                error_code: *code,
                error_message: msg.as_deref(),
            })
            .collect(),
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}

/// Appends the new PartitionRecords. The new partitions' logs are created on their first write,
/// as CreateTopics does (see `api::create_topics`): creating thousands of them here would hold
/// the loop for seconds.
fn grow(b: &mut Broker, name: &str, total: i32, now: Instant) -> Result<(), String> {
    let before = b.image().topic(name).map_or(0, |t| t.partitions.len()) as i32;
    b.create_partitions(name, total, now)
        .map_err(|e| e.to_string())?;
    log::info!("topic {name} grown from {before} to {total} partitions");
    Ok(())
}
