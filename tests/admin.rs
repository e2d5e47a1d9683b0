//! Topic admin APIs over raw frames: DeleteTopics, CreatePartitions, DescribeConfigs,
//! AlterConfigs, IncrementalAlterConfigs, DeleteRecords, DescribeCluster and DescribeLogDirs,
//! every version of each range, Kafka's error codes, and the changes surviving a restart.

#[macro_use]
mod support;

use minikafka::protocol::messages::alter_configs_request as alter;
use minikafka::protocol::messages::alter_configs_response::AlterConfigsResponse;
use minikafka::protocol::messages::create_partitions_request::*;
use minikafka::protocol::messages::create_partitions_response::CreatePartitionsResponse;
use minikafka::protocol::messages::delete_records_request::*;
use minikafka::protocol::messages::delete_records_response::DeleteRecordsResponse;
use minikafka::protocol::messages::delete_topics_request::*;
use minikafka::protocol::messages::delete_topics_response::DeleteTopicsResponse;
use minikafka::protocol::messages::describe_cluster_request::DescribeClusterRequest;
use minikafka::protocol::messages::describe_cluster_response::DescribeClusterResponse;
use minikafka::protocol::messages::describe_configs_request::*;
use minikafka::protocol::messages::describe_configs_response::DescribeConfigsResponse;
use minikafka::protocol::messages::describe_log_dirs_request::*;
use minikafka::protocol::messages::describe_log_dirs_response::DescribeLogDirsResponse;
use minikafka::protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use minikafka::protocol::messages::fetch_response::FetchResponse;
use minikafka::protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use minikafka::protocol::messages::incremental_alter_configs_request as inc;
use minikafka::protocol::messages::incremental_alter_configs_response::IncrementalAlterConfigsResponse;
use minikafka::protocol::messages::metadata_response::MetadataResponse;
use support::*;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const NONE: i16 = 0;
const OFFSET_OUT_OF_RANGE: i16 = 1;
const UNKNOWN_TOPIC: i16 = 3;
const MESSAGE_TOO_LARGE: i16 = 10;
const INVALID_PARTITIONS: i16 = 37;
const INVALID_CONFIG: i16 = 40;
const INVALID_REQUEST: i16 = 42;
const UNKNOWN_TOPIC_ID: i16 = 100;

/// DeleteTopics by name (v1-5) or id (v6): (name, id, error) per topic.
fn delete_topics(
    c: &mut Client,
    v: i16,
    names: &[&str],
    ids: &[[u8; 16]],
) -> Vec<(Option<String>, [u8; 16], i16)> {
    let req = DeleteTopicsRequest {
        topics: names
            .iter()
            .map(|n| DeleteTopicState {
                name: Some(n),
                topic_id: [0; 16],
            })
            .chain(ids.iter().map(|id| DeleteTopicState {
                name: None,
                topic_id: *id,
            }))
            .collect(),
        topic_names: names.to_vec(),
        timeout_ms: 5000,
    };
    let body = c.call(DELETE_TOPICS, v, |w| req.encode(w, v));
    let resp = decode!(DeleteTopicsResponse, &body, v);
    resp.responses
        .iter()
        .map(|r| (r.name.map(str::to_string), r.topic_id, r.error_code))
        .collect()
}

fn topic_names(c: &mut Client) -> Vec<String> {
    c.metadata_topics(None, false)
        .into_iter()
        .map(|t| t.0)
        .collect()
}

#[test]
fn delete_topics_by_name_and_id_in_every_version() {
    let mut b = TestBroker::start("admin-delete");
    let mut c = b.client();
    for v in 1..=6i16 {
        let name = format!("del-{v}");
        let id = c.create_topic(&name, 2);
        assert_eq!(c.produce(&name, 1, &batch(5, "old")).0, NONE);
        let r = if v < 6 {
            delete_topics(&mut c, v, &[&name], &[])
        } else {
            delete_topics(&mut c, v, &[], &[id])
        };
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].2, NONE, "v{v}: {r:?}");
        assert_eq!(r[0].0.as_deref(), Some(name.as_str()), "v{v}");
        if v >= 6 {
            assert_eq!(r[0].1, id);
        }
        assert!(!topic_names(&mut c).contains(&name), "v{v}");
        for p in 0..2 {
            assert!(!b.config.log_dir.join(format!("{name}-{p}")).exists());
        }
        // Unknown names and ids.
        let r = delete_topics(&mut c, v, &[&name], &[]);
        if v < 6 {
            assert_eq!(r[0].2, UNKNOWN_TOPIC);
        } else {
            assert_eq!(r[0].2, UNKNOWN_TOPIC);
            let r = delete_topics(&mut c, v, &[], &[id]);
            assert_eq!(r[0].2, UNKNOWN_TOPIC_ID);
        }
        // Re-created: a new id and none of the old data.
        let id2 = c.create_topic(&name, 2);
        assert_ne!(id2, id);
        let f = c.fetch(&FetchArgs {
            partition: 1,
            ..FetchArgs::new(&name, 0)
        });
        assert_eq!(f.error, NONE);
        assert_eq!(f.high_watermark, 0);
    }
    // Both a name and an id, or the same topic twice: INVALID_REQUEST.
    let id = c.create_topic("both", 1);
    let req = DeleteTopicsRequest {
        topics: vec![DeleteTopicState {
            name: Some("both"),
            topic_id: id,
        }],
        ..Default::default()
    };
    let body = c.call(DELETE_TOPICS, 6, |w| req.encode(w, 6));
    let resp = decode!(DeleteTopicsResponse, &body, 6);
    assert_eq!(resp.responses[0].error_code, INVALID_REQUEST);
    let r = delete_topics(&mut c, 5, &["both", "both"], &[]);
    assert!(r.iter().all(|t| t.2 == INVALID_REQUEST), "{r:?}");
    assert!(topic_names(&mut c).contains(&"both".to_string()));

    // Deletions and re-creations survive a restart.
    let before = c.metadata_topics(None, false);
    b.restart();
    let mut c = b.client();
    let mut after = c.metadata_topics(None, false);
    let mut before = before;
    before.sort();
    after.sort();
    assert_eq!(before, after);
    let f = c.fetch(&FetchArgs {
        partition: 1,
        ..FetchArgs::new("del-3", 0)
    });
    assert_eq!((f.error, f.high_watermark), (NONE, 0));
}

fn create_partitions(
    c: &mut Client,
    v: i16,
    topics: &[(&str, i32)],
    validate_only: bool,
) -> Vec<(i16, Option<String>)> {
    let req = CreatePartitionsRequest {
        topics: topics
            .iter()
            .map(|&(name, count)| CreatePartitionsTopic {
                name,
                count,
                assignments: None,
            })
            .collect(),
        timeout_ms: 5000,
        validate_only,
    };
    let body = c.call(CREATE_PARTITIONS, v, |w| req.encode(w, v));
    let resp = decode!(CreatePartitionsResponse, &body, v);
    resp.results
        .iter()
        .map(|r| (r.error_code, r.error_message.map(str::to_string)))
        .collect()
}

fn partition_count(c: &mut Client, topic: &str) -> usize {
    c.metadata_topics(Some(&[topic]), false)[0].3
}

#[test]
fn create_partitions_grows_topics_in_every_version() {
    let mut b = TestBroker::start("admin-grow");
    let mut c = b.client();
    for v in 0..=3i16 {
        let name = format!("grow-{v}");
        c.create_topic(&name, 1);
        let r = create_partitions(&mut c, v, &[(&name, 3)], true);
        assert_eq!(r[0].0, NONE, "v{v}: {r:?}");
        assert_eq!(
            partition_count(&mut c, &name),
            1,
            "validate_only changed it"
        );
        let r = create_partitions(&mut c, v, &[(&name, 3)], false);
        assert_eq!(r[0].0, NONE, "v{v}: {r:?}");
        assert_eq!(partition_count(&mut c, &name), 3);
        assert_eq!(c.produce(&name, 2, &batch(3, "new")).0, NONE);
        assert!(b.config.log_dir.join(format!("{name}-2")).is_dir());
        for n in [3, 2] {
            let r = create_partitions(&mut c, v, &[(&name, n)], false);
            assert_eq!(r[0].0, INVALID_PARTITIONS, "v{v} -> {n}: {r:?}");
            assert!(r[0].1.is_some());
        }
        let r = create_partitions(&mut c, v, &[("no-such-topic", 3)], false);
        assert_eq!(r[0].0, UNKNOWN_TOPIC);
        let r = create_partitions(&mut c, v, &[(&name, 5), (&name, 6)], false);
        assert!(r.iter().all(|x| x.0 == INVALID_REQUEST), "{r:?}");
    }
    b.restart();
    let mut c = b.client();
    assert_eq!(partition_count(&mut c, "grow-2"), 3);
    let f = c.fetch(&FetchArgs {
        partition: 2,
        ..FetchArgs::new("grow-2", 0)
    });
    assert_eq!((f.error, f.high_watermark), (NONE, 3));
}

/// (name, value, source, read_only, synonyms, config_type, documentation) of a described config.
#[derive(Debug, Clone)]
struct Described {
    name: String,
    value: Option<String>,
    source: i8,
    read_only: bool,
    synonyms: Vec<(String, i8)>,
    config_type: i8,
    doc: Option<String>,
}

fn describe(
    c: &mut Client,
    v: i16,
    rtype: i8,
    name: &str,
    keys: Option<Vec<&str>>,
    synonyms: bool,
) -> (i16, Vec<Described>) {
    let req = DescribeConfigsRequest {
        resources: vec![DescribeConfigsResource {
            resource_type: rtype,
            resource_name: name,
            configuration_keys: keys,
        }],
        include_synonyms: synonyms,
        include_documentation: true,
    };
    let body = c.call(DESCRIBE_CONFIGS, v, |w| req.encode(w, v));
    let resp = decode!(DescribeConfigsResponse, &body, v);
    assert_eq!(resp.results.len(), 1);
    let r = &resp.results[0];
    assert_eq!((r.resource_type, r.resource_name), (rtype, name));
    let configs = r
        .configs
        .iter()
        .map(|e| Described {
            name: e.name.to_string(),
            value: e.value.map(str::to_string),
            source: e.config_source,
            read_only: e.read_only,
            synonyms: e
                .synonyms
                .iter()
                .map(|s| (s.name.to_string(), s.source))
                .collect(),
            config_type: e.config_type,
            doc: e.documentation.map(str::to_string),
        })
        .collect();
    (r.error_code, configs)
}

fn config_of(c: &mut Client, topic: &str, key: &str) -> Described {
    let (e, cs) = describe(c, 4, TOPIC, topic, Some(vec![key]), false);
    assert_eq!(e, NONE);
    assert_eq!(cs.len(), 1, "{key}: {cs:?}");
    cs[0].clone()
}

#[test]
fn describe_configs_topics_and_broker_in_every_version() {
    let b = TestBroker::start("admin-describe");
    let mut c = b.client();
    c.create_topic("described", 1);
    let r = inc_alter(
        &mut c,
        1,
        TOPIC,
        "described",
        &[("retention.ms", 0, Some("123456"))],
    );
    assert_eq!(r, (NONE, None));
    for v in 1..=4i16 {
        let (e, all) = describe(&mut c, v, TOPIC, "described", None, true);
        assert_eq!(e, NONE);
        assert!(all.len() >= 30, "v{v}: {} configs", all.len());
        let ret = all.iter().find(|d| d.name == "retention.ms").unwrap();
        assert_eq!(ret.value.as_deref(), Some("123456"));
        assert_eq!(ret.source, 1, "DYNAMIC_TOPIC_CONFIG");
        assert!(!ret.read_only);
        assert_eq!(ret.synonyms[0], ("retention.ms".to_string(), 1));
        assert!(ret.synonyms.iter().any(|s| s.0 == "log.retention.ms"));
        let cp = all.iter().find(|d| d.name == "cleanup.policy").unwrap();
        assert_eq!(cp.value.as_deref(), Some("delete"));
        assert!(cp.source == 5 || cp.source == 4, "{cp:?}");
        if v >= 3 {
            assert_eq!(ret.config_type, 5, "LONG");
            assert_eq!(cp.config_type, 7, "LIST");
            assert!(ret.doc.is_some());
        }
        // A key list filters; without synonyms asked none are sent.
        let (_, some) = describe(
            &mut c,
            v,
            TOPIC,
            "described",
            Some(vec!["segment.bytes"]),
            false,
        );
        assert_eq!(some.len(), 1);
        assert_eq!(some[0].name, "segment.bytes");
        assert!(some[0].synonyms.is_empty());
        let (e, none) = describe(&mut c, v, TOPIC, "missing", None, false);
        assert_eq!((e, none.len()), (UNKNOWN_TOPIC, 0));
        let node = b.config.node_id.to_string();
        let (e, broker) = describe(&mut c, v, BROKER, &node, None, false);
        assert_eq!(e, NONE);
        let seg = broker
            .iter()
            .find(|d| d.name == "log.segment.bytes")
            .unwrap();
        assert_eq!(seg.value, Some(b.config.log_segment_bytes.to_string()));
        assert!(seg.read_only);
        let (e, _) = describe(&mut c, v, BROKER, "77", None, false);
        assert_eq!(e, INVALID_REQUEST);
    }
}

fn alter_configs(
    c: &mut Client,
    v: i16,
    rtype: i8,
    name: &str,
    configs: &[(&str, Option<&str>)],
    validate_only: bool,
) -> (i16, Option<String>) {
    let req = alter::AlterConfigsRequest {
        resources: vec![alter::AlterConfigsResource {
            resource_type: rtype,
            resource_name: name,
            configs: configs
                .iter()
                .map(|&(name, value)| alter::AlterableConfig { name, value })
                .collect(),
        }],
        validate_only,
    };
    let body = c.call(ALTER_CONFIGS, v, |w| req.encode(w, v));
    let resp = decode!(AlterConfigsResponse, &body, v);
    let r = &resp.responses[0];
    assert_eq!(r.resource_name, name);
    (r.error_code, r.error_message.map(str::to_string))
}

fn inc_alter(
    c: &mut Client,
    v: i16,
    rtype: i8,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
) -> (i16, Option<String>) {
    let req = inc::IncrementalAlterConfigsRequest {
        resources: vec![inc::AlterConfigsResource {
            resource_type: rtype,
            resource_name: name,
            configs: ops
                .iter()
                .map(|&(name, config_operation, value)| inc::AlterableConfig {
                    name,
                    config_operation,
                    value,
                })
                .collect(),
        }],
        validate_only: false,
    };
    let body = c.call(INCREMENTAL_ALTER_CONFIGS, v, |w| req.encode(w, v));
    let resp = decode!(IncrementalAlterConfigsResponse, &body, v);
    let r = &resp.responses[0];
    (r.error_code, r.error_message.map(str::to_string))
}

#[test]
fn alter_configs_replaces_the_whole_set_in_every_version() {
    let mut b = TestBroker::start("admin-alter");
    let mut c = b.client();
    c.create_topic("altered", 1);
    for v in 0..=2i16 {
        let set = [
            ("retention.ms", Some("5000")),
            ("segment.bytes", Some("2000000")),
        ];
        assert_eq!(
            alter_configs(&mut c, v, TOPIC, "altered", &set, true),
            (NONE, None)
        );
        // validate_only leaves the topic as it was.
        assert_ne!(config_of(&mut c, "altered", "retention.ms").source, 1);
        assert_eq!(
            alter_configs(&mut c, v, TOPIC, "altered", &set, false),
            (NONE, None)
        );
        let r = config_of(&mut c, "altered", "retention.ms");
        assert_eq!((r.value.as_deref(), r.source), (Some("5000"), 1));
        // Replacing with a set without retention.ms drops it back to the default.
        let only = [("segment.bytes", Some("3000000"))];
        assert_eq!(
            alter_configs(&mut c, v, TOPIC, "altered", &only, false).0,
            NONE
        );
        assert_ne!(config_of(&mut c, "altered", "retention.ms").source, 1);
        let s = config_of(&mut c, "altered", "segment.bytes");
        assert_eq!((s.value.as_deref(), s.source), (Some("3000000"), 1));
        // Bad values and unknown names: INVALID_CONFIG with a message, nothing changed.
        for bad in [
            [("retention.ms", Some("soon"))],
            [("no.such.config", Some("1"))],
            [("segment.bytes", Some("-4"))],
        ] {
            let (e, msg) = alter_configs(&mut c, v, TOPIC, "altered", &bad, false);
            assert_eq!(e, INVALID_CONFIG, "{bad:?}");
            assert!(msg.is_some_and(|m| !m.is_empty()));
        }
        assert_eq!(
            config_of(&mut c, "altered", "segment.bytes")
                .value
                .as_deref(),
            Some("3000000")
        );
        let (e, _) = alter_configs(&mut c, v, TOPIC, "missing", &only, false);
        assert_eq!(e, UNKNOWN_TOPIC);
        let (e, msg) = alter_configs(
            &mut c,
            v,
            BROKER,
            "",
            &[("log.retention.ms", Some("1"))],
            false,
        );
        assert_eq!(e, INVALID_REQUEST);
        assert!(msg.is_some());
    }
    b.restart();
    let mut c = b.client();
    let s = config_of(&mut c, "altered", "segment.bytes");
    assert_eq!((s.value.as_deref(), s.source), (Some("3000000"), 1));
}

#[test]
fn incremental_alter_configs_set_delete_append_subtract() {
    let mut b = TestBroker::start("admin-incremental");
    let mut c = b.client();
    c.create_topic("inc", 1);
    for v in 0..=1i16 {
        let ok = |r: (i16, Option<String>)| assert_eq!(r, (NONE, None));
        ok(inc_alter(
            &mut c,
            v,
            TOPIC,
            "inc",
            &[("cleanup.policy", 2, Some("compact"))],
        ));
        assert_eq!(
            config_of(&mut c, "inc", "cleanup.policy").value.as_deref(),
            Some("delete,compact")
        );
        ok(inc_alter(
            &mut c,
            v,
            TOPIC,
            "inc",
            &[("cleanup.policy", 3, Some("delete"))],
        ));
        assert_eq!(
            config_of(&mut c, "inc", "cleanup.policy").value.as_deref(),
            Some("compact")
        );
        ok(inc_alter(
            &mut c,
            v,
            TOPIC,
            "inc",
            &[("cleanup.policy", 1, None)],
        ));
        let cp = config_of(&mut c, "inc", "cleanup.policy");
        assert_eq!(
            (cp.value.as_deref(), cp.source == 1),
            (Some("delete"), false)
        );
        // A list operation on a scalar, a bad value, an unknown name, an unknown op.
        let (e, msg) = inc_alter(&mut c, v, TOPIC, "inc", &[("retention.ms", 2, Some("5"))]);
        assert_eq!(e, INVALID_CONFIG);
        assert!(msg.is_some());
        let (e, _) = inc_alter(&mut c, v, TOPIC, "inc", &[("retention.ms", 0, Some("x"))]);
        assert_eq!(e, INVALID_CONFIG);
        let (e, _) = inc_alter(&mut c, v, TOPIC, "inc", &[("nope", 0, Some("1"))]);
        assert_eq!(e, INVALID_CONFIG);
        let (e, _) = inc_alter(&mut c, v, TOPIC, "inc", &[("retention.ms", 9, Some("1"))]);
        assert_eq!(e, INVALID_REQUEST);
        let (e, _) = inc_alter(
            &mut c,
            v,
            TOPIC,
            "missing",
            &[("retention.ms", 0, Some("1"))],
        );
        assert_eq!(e, UNKNOWN_TOPIC);
    }
    // A change takes effect at once: max.message.bytes below a batch rejects it.
    assert_eq!(c.produce("inc", 0, &big_batch(4000)).0, NONE);
    let r = inc_alter(
        &mut c,
        1,
        TOPIC,
        "inc",
        &[("max.message.bytes", 0, Some("1000"))],
    );
    assert_eq!(r.0, NONE);
    assert_eq!(c.produce("inc", 0, &big_batch(4000)).0, MESSAGE_TOO_LARGE);
    // And survives a restart.
    b.restart();
    let mut c = b.client();
    assert_eq!(c.produce("inc", 0, &big_batch(4000)).0, MESSAGE_TOO_LARGE);
    let m = config_of(&mut c, "inc", "max.message.bytes");
    assert_eq!((m.value.as_deref(), m.source), (Some("1000"), 1));
}

fn delete_records(c: &mut Client, v: i16, topic: &str, parts: &[(i32, i64)]) -> Vec<(i64, i16)> {
    let req = DeleteRecordsRequest {
        topics: vec![DeleteRecordsTopic {
            name: topic,
            partitions: parts
                .iter()
                .map(|&(partition_index, offset)| DeleteRecordsPartition {
                    partition_index,
                    offset,
                })
                .collect(),
        }],
        timeout_ms: 5000,
    };
    let body = c.call(DELETE_RECORDS, v, |w| req.encode(w, v));
    let resp = decode!(DeleteRecordsResponse, &body, v);
    resp.topics[0]
        .partitions
        .iter()
        .map(|p| (p.low_watermark, p.error_code))
        .collect()
}

#[test]
fn delete_records_moves_the_log_start_offset() {
    let mut b = TestBroker::start_with("admin-records", |c| c.log_segment_bytes = 1024);
    let mut c = b.client();
    for v in 0..=2i16 {
        let name = format!("dr-{v}");
        c.create_topic(&name, 2);
        for i in 0..10 {
            assert_eq!(c.produce(&name, 0, &batch(5, &format!("b{i}"))).0, NONE);
        }
        let r = delete_records(&mut c, v, &name, &[(0, 12), (1, 0), (7, 1)]);
        assert_eq!(r, vec![(12, NONE), (0, NONE), (-1, UNKNOWN_TOPIC)], "v{v}");
        let f = c.fetch(&FetchArgs::new(&name, 0));
        assert_eq!(f.error, OFFSET_OUT_OF_RANGE);
        assert_eq!(c.list_offset(7, &name, 0, -2).2, 12);
        // Lower than the start: no change; beyond the high watermark: OFFSET_OUT_OF_RANGE.
        assert_eq!(
            delete_records(&mut c, v, &name, &[(0, 3)]),
            vec![(12, NONE)]
        );
        assert_eq!(
            delete_records(&mut c, v, &name, &[(0, 51)])[0].1,
            OFFSET_OUT_OF_RANGE
        );
        assert_eq!(
            delete_records(&mut c, v, &name, &[(0, 30)]),
            vec![(30, NONE)]
        );
        let r = delete_records(&mut c, v, "no-such", &[(0, 1)]);
        assert_eq!(r[0].1, UNKNOWN_TOPIC);
    }
    // -1 is the high watermark.
    assert_eq!(
        delete_records(&mut c, 2, "dr-2", &[(0, -1)]),
        vec![(50, NONE)]
    );
    assert_eq!(
        delete_records(&mut c, 2, "dr-1", &[(0, 40)]),
        vec![(40, NONE)]
    );
    b.restart();
    let mut c = b.client();
    assert_eq!(c.list_offset(7, "dr-1", 0, -2).2, 40);
    assert_eq!(c.list_offset(7, "dr-2", 0, -2).2, 50);
    let f = c.fetch(&FetchArgs::new("dr-1", 40));
    assert_eq!((f.error, f.high_watermark), (NONE, 50));
}

#[test]
fn describe_cluster_in_every_version() {
    let b = TestBroker::start("admin-cluster");
    let mut c = b.client();
    let body = c.metadata_body(12, None, false);
    let m = decode!(MetadataResponse, &body, 12);
    let cluster_id = m.cluster_id.unwrap().to_string();
    for v in 0..=2i16 {
        for ops in [false, true] {
            let req = DescribeClusterRequest {
                include_cluster_authorized_operations: ops,
                endpoint_type: 1,
                include_fenced_brokers: false,
            };
            let body = c.call(DESCRIBE_CLUSTER, v, |w| req.encode(w, v));
            let r = decode!(DescribeClusterResponse, &body, v);
            assert_eq!(r.error_code, NONE);
            assert_eq!(r.cluster_id, cluster_id);
            assert_eq!(r.controller_id, b.config.node_id);
            assert_eq!(r.brokers.len(), 1);
            assert_eq!(r.brokers[0].broker_id, b.config.node_id);
            assert_eq!(r.brokers[0].port, b.addr.port() as i32);
            if ops {
                assert!(r.cluster_authorized_operations > 0);
            } else {
                assert_eq!(r.cluster_authorized_operations, i32::MIN);
            }
            if v >= 1 {
                assert_eq!(r.endpoint_type, 1);
            }
        }
    }
}

/// The sum of a partition's segment file sizes, as Kafka's `Log.size` counts them.
fn segment_bytes_on_disk(dir: &std::path::Path) -> i64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .map(|p| std::fs::metadata(p).unwrap().len() as i64)
        .sum()
}

#[test]
fn describe_log_dirs_reports_sizes_that_match_the_files() {
    let b = TestBroker::start_with("admin-logdirs", |c| c.log_segment_bytes = 2048);
    let mut c = b.client();
    c.create_topic("sized", 2);
    c.create_topic("unwritten", 3);
    for i in 0..20 {
        assert_eq!(c.produce("sized", i % 2, &batch(10, "x")).0, NONE);
    }
    for v in 1..=4i16 {
        for filter in [false, true] {
            let req = DescribeLogDirsRequest {
                topics: filter.then(|| {
                    vec![DescribableLogDirTopic {
                        topic: "sized",
                        partitions: vec![0, 1, 9],
                    }]
                }),
            };
            let body = c.call(DESCRIBE_LOG_DIRS, v, |w| req.encode(w, v));
            let r = decode!(DescribeLogDirsResponse, &body, v);
            assert_eq!(r.error_code, NONE);
            assert_eq!(r.results.len(), 1);
            let d = &r.results[0];
            assert!(
                std::path::Path::new(d.log_dir).is_absolute(),
                "{}",
                d.log_dir
            );
            let t = d.topics.iter().find(|t| t.name == "sized").unwrap();
            assert_eq!(t.partitions.len(), 2, "v{v}: {t:?}");
            for p in &t.partitions {
                let dir = b
                    .config
                    .log_dir
                    .join(format!("sized-{}", p.partition_index));
                assert_eq!(p.partition_size, segment_bytes_on_disk(&dir), "v{v}");
                assert!(p.partition_size > 0);
                assert_eq!((p.offset_lag, p.is_future_key), (0, false));
            }
            // A partition never written to is listed too, empty, as Kafka lists it.
            if !filter {
                let t = d.topics.iter().find(|t| t.name == "unwritten").unwrap();
                let sizes: Vec<(i32, i64)> = t
                    .partitions
                    .iter()
                    .map(|p| (p.partition_index, p.partition_size))
                    .collect();
                assert_eq!(sizes, vec![(0, 0), (1, 0), (2, 0)], "v{v}");
            }
        }
    }
}

#[test]
fn delete_topics_refuses_internal_topics_and_disabled_deletion() {
    let b = TestBroker::start("admin-delete-internal");
    let mut c = b.client();
    // FindCoordinator creates __consumer_offsets.
    let req = FindCoordinatorRequest {
        key: "g",
        key_type: 0,
        coordinator_keys: vec!["g"],
    };
    c.call(FIND_COORDINATOR, 4, |w| req.encode(w, 4));
    assert!(topic_names(&mut c).contains(&"__consumer_offsets".to_string()));
    let r = delete_topics(&mut c, 6, &["__consumer_offsets"], &[]);
    assert_eq!(r[0].2, INVALID_REQUEST);
    assert!(topic_names(&mut c).contains(&"__consumer_offsets".to_string()));

    let b = TestBroker::start_with("admin-delete-disabled", |c| c.delete_topic_enable = false);
    let mut c = b.client();
    c.create_topic("kept", 1);
    assert_eq!(
        delete_topics(&mut c, 2, &["kept"], &[])[0].2,
        INVALID_REQUEST
    );
    assert_eq!(delete_topics(&mut c, 3, &["kept"], &[])[0].2, 73);
    assert!(topic_names(&mut c).contains(&"kept".to_string()));
}

#[test]
fn a_parked_fetch_of_a_deleted_topic_answers_unknown_topic() {
    let b = TestBroker::start("admin-delete-parked");
    let mut c = b.client();
    let mut waiting = b.client();
    c.create_topic("parked", 1);
    let v = 12;
    let req = FetchRequest {
        max_wait_ms: 1500,
        min_bytes: 1,
        max_bytes: 1 << 20,
        isolation_level: 0,
        session_id: 0,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: "parked",
            topic_id: [0; 16],
            partitions: vec![FetchPartition {
                partition: 0,
                fetch_offset: 0,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
        }],
        ..Default::default()
    };
    let corr = waiting.send(FETCH, v, |w| req.encode(w, v)).unwrap();
    waiting.wait_until_read(); // the fetch is parked
    assert_eq!(delete_topics(&mut c, 6, &["parked"], &[])[0].2, NONE);
    let body = waiting.read_response(FETCH, v, corr).unwrap();
    let r = decode!(FetchResponse, &body, v);
    assert_eq!(r.responses[0].partitions[0].error_code, UNKNOWN_TOPIC);
}

#[test]
fn describe_cluster_rejects_the_controller_endpoint_type() {
    let b = TestBroker::start("admin-cluster-endpoint");
    let mut c = b.client();
    for (endpoint_type, code) in [(2i8, 114i16), (7, 115)] {
        let req = DescribeClusterRequest {
            include_cluster_authorized_operations: false,
            endpoint_type,
            include_fenced_brokers: false,
        };
        let body = c.call(DESCRIBE_CLUSTER, 1, |w| req.encode(w, 1));
        let r = decode!(DescribeClusterResponse, &body, 1);
        assert_eq!(r.error_code, code);
        assert!(r.error_message.is_some());
    }
}

#[test]
fn create_partitions_checks_manual_assignments() {
    let b = TestBroker::start("admin-grow-assign");
    let mut c = b.client();
    c.create_topic("assigned", 1);
    let node = b.config.node_id;
    let grow = |c: &mut Client, count: i32, assignments: Vec<Vec<i32>>| {
        let req = CreatePartitionsRequest {
            topics: vec![CreatePartitionsTopic {
                name: "assigned",
                count,
                assignments: Some(
                    assignments
                        .into_iter()
                        .map(|broker_ids| CreatePartitionsAssignment { broker_ids })
                        .collect(),
                ),
            }],
            timeout_ms: 5000,
            validate_only: false,
        };
        let body = c.call(CREATE_PARTITIONS, 3, |w| req.encode(w, 3));
        decode!(CreatePartitionsResponse, &body, 3).results[0].error_code
    };
    const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
    assert_eq!(
        grow(&mut c, 3, vec![vec![node]]),
        INVALID_REPLICA_ASSIGNMENT
    );
    assert_eq!(
        grow(&mut c, 2, vec![vec![node + 1]]),
        INVALID_REPLICA_ASSIGNMENT
    );
    assert_eq!(grow(&mut c, 2, vec![vec![]]), INVALID_REPLICA_ASSIGNMENT);
    assert_eq!(partition_count(&mut c, "assigned"), 1);
    assert_eq!(grow(&mut c, 3, vec![vec![node], vec![node]]), NONE);
    assert_eq!(partition_count(&mut c, "assigned"), 3);
}
