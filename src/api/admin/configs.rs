//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topic and broker resources.
//! Topic overrides live in the metadata log (ConfigRecord); broker configs are static (read
//! from the config file at start) and cannot be altered here.

use super::{RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::api::encode;
use crate::broker::{default_log_config, topic_config, Broker, Outcome};
use crate::config::Config;
use crate::protocol::error;
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::alter_configs_request::AlterConfigsRequest;
use crate::protocol::messages::alter_configs_response as alter_resp;
use crate::protocol::messages::describe_configs_request::DescribeConfigsRequest;
use crate::protocol::messages::describe_configs_response::*;
use crate::protocol::messages::incremental_alter_configs_request::IncrementalAlterConfigsRequest;
use crate::protocol::messages::incremental_alter_configs_response as inc_resp;
use crate::protocol::wire::{DResult, Reader};
use std::collections::BTreeMap;
use std::time::Instant;

/// Kafka's `ConfigSource` codes.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;

/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

type Failure = (i16, String);

/// A topic config's broker-level synonym and its value on a broker with config `c`.
fn topic_default(name: &str, c: &Config) -> (Option<&'static str>, String) {
    let lc = default_log_config(c);
    let max = i64::MAX.to_string();
    let (syn, value): (Option<&'static str>, String) = match name {
        "cleanup.policy" => (Some("log.cleanup.policy"), c.log_cleanup_policy.clone()),
        "compression.type" => (Some("compression.type"), c.compression_type.clone()),
        "compression.gzip.level" => (Some("compression.gzip.level"), "-1".into()),
        "compression.lz4.level" => (Some("compression.lz4.level"), "9".into()),
        "compression.zstd.level" => (Some("compression.zstd.level"), "3".into()),
        "delete.retention.ms" => (
            Some("log.cleaner.delete.retention.ms"),
            c.log_cleaner_delete_retention_ms.to_string(),
        ),
        "file.delete.delay.ms" => (Some("log.segment.delete.delay.ms"), "60000".into()),
        "flush.messages" => (
            Some("log.flush.interval.messages"),
            c.log_flush_interval_messages
                .min(i64::MAX as u64)
                .to_string(),
        ),
        "flush.ms" => (
            Some("log.flush.interval.ms"),
            c.log_flush_interval_ms.to_string(),
        ),
        "index.interval.bytes" => (
            Some("log.index.interval.bytes"),
            c.log_index_interval_bytes.to_string(),
        ),
        "local.retention.bytes" => (Some("log.local.retention.bytes"), "-2".into()),
        "local.retention.ms" => (Some("log.local.retention.ms"), "-2".into()),
        "max.compaction.lag.ms" => (Some("log.cleaner.max.compaction.lag.ms"), max),
        "max.message.bytes" => (Some("message.max.bytes"), c.message_max_bytes.to_string()),
        "message.downconversion.enable" => {
            (Some("log.message.downconversion.enable"), "true".into())
        }
        "message.format.version" => (Some("log.message.format.version"), "3.0-IV1".into()),
        "message.timestamp.after.max.ms" => (
            Some("log.message.timestamp.after.max.ms"),
            lc.timestamp_after_max_ms.to_string(),
        ),
        "message.timestamp.before.max.ms" => (
            Some("log.message.timestamp.before.max.ms"),
            lc.timestamp_before_max_ms.to_string(),
        ),
        "message.timestamp.difference.max.ms" => {
            (Some("log.message.timestamp.difference.max.ms"), max)
        }
        "message.timestamp.type" => (
            Some("log.message.timestamp.type"),
            c.log_message_timestamp_type.clone(),
        ),
        "min.cleanable.dirty.ratio" => (
            Some("log.cleaner.min.cleanable.ratio"),
            c.log_cleaner_min_cleanable_ratio.to_string(),
        ),
        "min.compaction.lag.ms" => (
            Some("log.cleaner.min.compaction.lag.ms"),
            c.log_cleaner_min_compaction_lag_ms.to_string(),
        ),
        "min.insync.replicas" => (
            Some("min.insync.replicas"),
            c.min_insync_replicas.to_string(),
        ),
        "preallocate" => (Some("log.preallocate"), "false".into()),
        "remote.storage.enable" => (None, "false".into()),
        "retention.bytes" => (
            Some("log.retention.bytes"),
            c.log_retention_bytes.to_string(),
        ),
        "retention.ms" => (Some("log.retention.ms"), c.log_retention_ms.to_string()),
        "segment.bytes" => (Some("log.segment.bytes"), c.log_segment_bytes.to_string()),
        "segment.index.bytes" => (
            Some("log.index.size.max.bytes"),
            c.log_index_size_max_bytes.to_string(),
        ),
        "segment.jitter.ms" => (Some("log.roll.jitter.ms"), "0".into()),
        "segment.ms" => (Some("log.roll.ms"), c.log_segment_ms.to_string()),
        "unclean.leader.election.enable" => {
            (Some("unclean.leader.election.enable"), "false".into())
        }
        _ => (None, String::new()),
    };
    (syn, value)
}

/// Broker configs described for a BROKER resource: name, value, Kafka `ConfigType`.
fn broker_configs(c: &Config) -> Vec<(&'static str, String, i8)> {
    let mut out: Vec<(&'static str, String, i8)> = vec![
        ("node.id", c.node_id.to_string(), 3),
        ("broker.id", c.node_id.to_string(), 3),
        ("log.dirs", c.log_dir.to_string_lossy().into_owned(), 2),
        ("num.partitions", c.num_partitions.to_string(), 3),
        (
            "default.replication.factor",
            c.default_replication_factor.to_string(),
            3,
        ),
        (
            "auto.create.topics.enable",
            c.auto_create_topics_enable.to_string(),
            1,
        ),
        ("delete.topic.enable", c.delete_topic_enable.to_string(), 1),
        (
            "log.retention.check.interval.ms",
            c.log_retention_check_interval_ms.to_string(),
            5,
        ),
        ("log.cleaner.enable", c.log_cleaner_enable.to_string(), 1),
        (
            "socket.request.max.bytes",
            c.socket_request_max_bytes.to_string(),
            3,
        ),
        (
            "offsets.topic.num.partitions",
            c.offsets_topic_num_partitions.to_string(),
            3,
        ),
        (
            "offsets.retention.minutes",
            (c.offsets_retention_ms / 60_000).to_string(),
            3,
        ),
    ];
    for name in topic_config::names() {
        if let (Some(syn), value) = topic_default(name, c) {
            if !out.iter().any(|(n, _, _)| *n == syn) {
                let ty = topic_config::config_type(name).unwrap_or(2);
                out.push((syn, value, ty));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(b.0));
    out
}

/// One described config, owned until the response borrows it.
struct Entry {
    name: String,
    value: Option<String>,
    source: i8,
    read_only: bool,
    ty: i8,
    doc: String,
    synonyms: Vec<(String, String, i8)>,
}

fn doc_for(name: &str, topic: bool) -> String {
    if topic {
        format!("The topic-level setting {name}; see Kafka's topic configuration reference.")
    } else {
        format!("The broker setting {name}; see Kafka's broker configuration reference.")
    }
}

fn describe_topic(b: &Broker, topic: &str, defaults: &Config) -> Result<Vec<Entry>, Failure> {
    let Some(t) = b.image().topic(topic) else {
        return Err((
            error::UNKNOWN_TOPIC_OR_PARTITION,
            format!("The topic '{topic}' does not exist."),
        ));
    };
    let mut out = Vec::new();
    for name in topic_config::names() {
        let (syn, broker_value) = topic_default(name, b.config());
        let (_, kafka_default) = topic_default(name, defaults);
        let broker_source = if broker_value != kafka_default {
            STATIC_BROKER_CONFIG
        } else {
            DEFAULT_CONFIG
        };
        let mut synonyms = Vec::new();
        let own = t.configs.get(name);
        if let Some(v) = own {
            synonyms.push((name.to_string(), v.clone(), DYNAMIC_TOPIC_CONFIG));
        }
        if let Some(s) = syn {
            if broker_source == STATIC_BROKER_CONFIG {
                synonyms.push((s.to_string(), broker_value.clone(), STATIC_BROKER_CONFIG));
            }
            synonyms.push((s.to_string(), kafka_default.clone(), DEFAULT_CONFIG));
        }
        let (value, source) = match own {
            Some(v) => (v.clone(), DYNAMIC_TOPIC_CONFIG),
            None => (broker_value, broker_source),
        };
        out.push(Entry {
            name: name.to_string(),
            value: Some(value),
            source,
            read_only: false,
            ty: topic_config::config_type(name).unwrap_or(2),
            doc: doc_for(name, true),
            synonyms,
        });
    }
    Ok(out)
}

/// Checks that a BROKER resource names this broker ("" is the cluster-wide default).
fn check_broker_name(b: &Broker, name: &str) -> Result<(), Failure> {
    if name.is_empty() {
        return Ok(());
    }
    match name.parse::<i32>() {
        Ok(id) if id == b.config().node_id => Ok(()),
        Ok(_) => Err((
            error::INVALID_REQUEST,
            format!(
                "Unexpected broker id, expected {}, but received {name}",
                b.config().node_id
            ),
        )),
        Err(_) => Err((
            error::INVALID_REQUEST,
            format!("Broker id must be an integer, but it is: {name}"),
        )),
    }
}

fn describe_broker(b: &Broker, name: &str, defaults: &Config) -> Result<Vec<Entry>, Failure> {
    check_broker_name(b, name)?;
    let kafka_defaults = broker_configs(defaults);
    let out = broker_configs(b.config())
        .into_iter()
        .map(|(n, value, ty)| {
            let default = kafka_defaults.iter().find(|d| d.0 == n).map(|d| &d.1);
            let source = if default == Some(&value) {
                DEFAULT_CONFIG
            } else {
                STATIC_BROKER_CONFIG
            };
            Entry {
                name: n.to_string(),
                value: Some(value.clone()),
                source,
                read_only: true,
                ty,
                doc: doc_for(n, false),
                synonyms: vec![(n.to_string(), value, source)],
            }
        })
        .collect();
    Ok(out)
}

pub fn describe(b: &mut Broker, hdr: &RequestHeader<'_>, body: &[u8]) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = DescribeConfigsRequest::decode(&mut Reader::new(body), v)?;
    let defaults = Config::default();
    let described: Vec<Result<Vec<Entry>, Failure>> = req
        .resources
        .iter()
        .map(|r| {
            let all = match r.resource_type {
                RESOURCE_TOPIC => describe_topic(b, r.resource_name, &defaults),
                RESOURCE_BROKER => describe_broker(b, r.resource_name, &defaults),
                other => Err((
                    error::INVALID_REQUEST,
                    format!("Unsupported resource type {other}"),
                )),
            }?;
            Ok(match &r.configuration_keys {
                Some(keys) => all
                    .into_iter()
                    .filter(|e| keys.contains(&e.name.as_str()))
                    .collect(),
                None => all,
            })
        })
        .collect();
    let results = req
        .resources
        .iter()
        .zip(&described)
        .map(|(r, d)| {
            let (code, msg, entries): (i16, Option<&str>, &[Entry]) = match d {
                Ok(e) => (error::NONE, None, e),
                Err((c, m)) => (*c, Some(m.as_str()), &[]),
            };
            DescribeConfigsResult {
                error_code: code,
                error_message: msg,
                resource_type: r.resource_type,
                resource_name: r.resource_name,
                configs: entries
                    .iter()
                    .map(|e| DescribeConfigsResourceResult {
                        name: &e.name,
                        value: e.value.as_deref(),
                        read_only: e.read_only,
                        config_source: e.source,
                        is_sensitive: false,
                        synonyms: if req.include_synonyms {
                            e.synonyms
                                .iter()
                                .map(|(n, v, s)| DescribeConfigsSynonym {
                                    name: n,
                                    value: Some(v),
                                    source: *s,
                                })
                                .collect()
                        } else {
                            Vec::new()
                        },
                        config_type: e.ty,
                        documentation: req.include_documentation.then_some(e.doc.as_str()),
                    })
                    .collect(),
            }
        })
        .collect();
    let resp = DescribeConfigsResponse {
        throttle_time_ms: 0,
        results,
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}

/// The resource an alter request names: only existing topics can be altered.
fn alterable(b: &Broker, rtype: i8, name: &str) -> Result<(), Failure> {
    match rtype {
        RESOURCE_TOPIC => match b.image().topic(name) {
            Some(_) => Ok(()),
            None => Err((
                error::UNKNOWN_TOPIC_OR_PARTITION,
                format!("The topic '{name}' does not exist."),
            )),
        },
        RESOURCE_BROKER => {
            check_broker_name(b, name)?;
            Err((
                error::INVALID_REQUEST,
                "Dynamic broker configs are not supported: set broker configs in the broker's \
                 config file and restart it."
                    .into(),
            ))
        }
        other => Err((
            error::INVALID_REQUEST,
            format!("Unsupported resource type {other}"),
        )),
    }
}

/// Kafka's code for a rejected config: a null value is a bad request, the rest INVALID_CONFIG.
fn check_value(name: &str, value: Option<&str>) -> Result<(), Failure> {
    topic_config::validate(name, value).map_err(|why| {
        let code = if value.is_none() && topic_config::config_type(name).is_some() {
            error::INVALID_REQUEST
        } else {
            error::INVALID_CONFIG
        };
        (code, why)
    })
}

/// The metadata changes (set or remove) that turn `old` into `new`.
fn diff(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    out.extend(
        old.keys()
            .filter(|k| !new.contains_key(*k))
            .map(|k| (k.clone(), None)),
    );
    out
}

/// Writes the changes as ConfigRecords and applies them to the topic's logs at once.
fn commit(
    b: &mut Broker,
    topic: &str,
    changes: &[(String, Option<String>)],
    now: Instant,
) -> Result<(), Failure> {
    if changes.is_empty() {
        return Ok(());
    }
    b.alter_topic_configs(topic, changes, now)
        .map_err(|e| (e.error_code(), e.to_string()))?;
    log::info!("topic {topic}: {} config change(s)", changes.len());
    Ok(())
}

fn has_duplicates<'a>(names: impl Iterator<Item = &'a str>) -> bool {
    let mut seen = std::collections::HashSet::new();
    names.into_iter().any(|n| !seen.insert(n))
}

/// AlterConfigs for one topic: the given set replaces all its overrides.
fn replace(
    b: &mut Broker,
    topic: &str,
    configs: &[(&str, Option<&str>)],
    validate_only: bool,
    now: Instant,
) -> Result<(), Failure> {
    if has_duplicates(configs.iter().map(|c| c.0)) {
        return Err((
            error::INVALID_REQUEST,
            "Error due to duplicate config keys".into(),
        ));
    }
    let mut new = BTreeMap::new();
    for &(name, value) in configs {
        check_value(name, value)?;
        new.insert(name.to_string(), value.unwrap_or_default().to_string());
    }
    let old = b
        .image()
        .topic(topic)
        .map(|t| t.configs.clone())
        .unwrap_or_default();
    if validate_only {
        return Ok(());
    }
    commit(b, topic, &diff(&old, &new), now)
}

/// IncrementalAlterConfigs for one topic: SET, DELETE, APPEND, SUBTRACT on its overrides.
fn incremental(
    b: &mut Broker,
    topic: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
    now: Instant,
) -> Result<(), Failure> {
    if has_duplicates(ops.iter().map(|c| c.0)) {
        return Err((
            error::INVALID_REQUEST,
            "Error due to duplicate config keys".into(),
        ));
    }
    let old = b
        .image()
        .topic(topic)
        .map(|t| t.configs.clone())
        .unwrap_or_default();
    let mut new = old.clone();
    for &(name, op, value) in ops {
        if topic_config::config_type(name).is_none() {
            return Err((
                error::INVALID_CONFIG,
                format!("Unknown topic config name: {name}"),
            ));
        }
        match op {
            OP_SET => {
                check_value(name, value)?;
                new.insert(name.to_string(), value.unwrap_or_default().to_string());
            }
            OP_DELETE => {
                new.remove(name);
            }
            OP_APPEND | OP_SUBTRACT => {
                if !topic_config::is_list(name) {
                    let what = if op == OP_APPEND {
                        "append"
                    } else {
                        "subtract"
                    };
                    return Err((
                        error::INVALID_CONFIG,
                        format!("Config value {what} is not allowed for config key: {name}"),
                    ));
                }
                let Some(value) = value else {
                    return Err((
                        error::INVALID_REQUEST,
                        format!("Null value not supported for : {name}"),
                    ));
                };
                let current = match new.get(name) {
                    Some(v) => v.clone(),
                    None => topic_default(name, b.config()).1,
                };
                let mut items: Vec<String> = split_list(&current);
                for item in split_list(value) {
                    if op == OP_APPEND {
                        if !items.contains(&item) {
                            items.push(item);
                        }
                    } else {
                        items.retain(|i| *i != item);
                    }
                }
                let joined = items.join(",");
                check_value(name, Some(&joined))?;
                new.insert(name.to_string(), joined);
            }
            other => {
                return Err((
                    error::INVALID_REQUEST,
                    format!("Unknown config operation {other} for {name}"),
                ))
            }
        }
    }
    if validate_only {
        return Ok(());
    }
    commit(b, topic, &diff(&old, &new), now)
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Resources named more than once in one request are all rejected, as Kafka does.
/// Per resource: INVALID_REQUEST when named twice, else whether it may be altered, else what
/// `apply` says.
fn resource_verdicts<R>(
    b: &mut Broker,
    resources: &[R],
    key: impl Fn(&R) -> (i8, &str),
    mut apply: impl FnMut(&mut Broker, &R) -> Result<(), Failure>,
) -> Vec<Result<(), Failure>> {
    let count = crate::api::occurrences(resources.iter().map(&key));
    resources
        .iter()
        .map(|r| {
            let (rtype, name) = key(r);
            if count[&(rtype, name)] > 1 {
                return Err(duplicate_failure());
            }
            alterable(b, rtype, name)?;
            apply(b, r)
        })
        .collect()
}

fn duplicate_failure() -> Failure {
    (
        error::INVALID_REQUEST,
        "Error due to duplicate resources".into(),
    )
}

pub fn alter(
    b: &mut Broker,
    hdr: &RequestHeader<'_>,
    body: &[u8],
    now: Instant,
) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = AlterConfigsRequest::decode(&mut Reader::new(body), v)?;
    let verdicts = resource_verdicts(
        b,
        &req.resources,
        |r| (r.resource_type, r.resource_name),
        |b, r| {
            let configs: Vec<(&str, Option<&str>)> =
                r.configs.iter().map(|c| (c.name, c.value)).collect();
            replace(b, r.resource_name, &configs, req.validate_only, now)
        },
    );
    let resp = alter_resp::AlterConfigsResponse {
        throttle_time_ms: 0,
        responses: req
            .resources
            .iter()
            .zip(&verdicts)
            .map(|(r, d)| alter_resp::AlterConfigsResourceResponse {
                error_code: d.as_ref().err().map_or(error::NONE, |f| f.0),
                error_message: d.as_ref().err().map(|f| f.1.as_str()),
                resource_type: r.resource_type,
                resource_name: r.resource_name,
            })
            .collect(),
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}

pub fn incremental_alter(
    b: &mut Broker,
    hdr: &RequestHeader<'_>,
    body: &[u8],
    now: Instant,
) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = IncrementalAlterConfigsRequest::decode(&mut Reader::new(body), v)?;
    let verdicts = resource_verdicts(
        b,
        &req.resources,
        |r| (r.resource_type, r.resource_name),
        |b, r| {
            let ops: Vec<(&str, i8, Option<&str>)> = r
                .configs
                .iter()
                .map(|c| (c.name, c.config_operation, c.value))
                .collect();
            incremental(b, r.resource_name, &ops, req.validate_only, now)
        },
    );
    let resp = inc_resp::IncrementalAlterConfigsResponse {
        throttle_time_ms: 0,
        responses: req
            .resources
            .iter()
            .zip(&verdicts)
            .map(|(r, d)| inc_resp::AlterConfigsResourceResponse {
                error_code: d.as_ref().err().map_or(error::NONE, |f| f.0),
                error_message: d.as_ref().err().map(|f| f.1.as_str()),
                resource_type: r.resource_type,
                resource_name: r.resource_name,
            })
            .collect(),
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}
