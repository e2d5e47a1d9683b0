//! The broker over a socket while its disk fails, through the log's fault-injection seam
//! (`minikafka::log::faults`, which matches by path so parallel tests do not see each other):
//! a failed fsync is never acknowledged, the broker keeps answering everything that does not
//! write, a full disk refuses writes until space returns, and a restart recovers whatever was
//! acknowledged. Also KIP-467 record errors for records a topic refuses.

#[macro_use]
mod support;

use minikafka::log::faults::{self, Op};
use minikafka::protocol::messages::describe_log_dirs_request::*;
use minikafka::protocol::messages::describe_log_dirs_response::DescribeLogDirsResponse;
use minikafka::protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use minikafka::protocol::messages::find_coordinator_response::FindCoordinatorResponse;
use minikafka::protocol::messages::metadata_response::MetadataResponse;
use minikafka::protocol::messages::produce_request::*;
use minikafka::protocol::messages::produce_response::ProduceResponse;
use minikafka::records::BatchBuilder;
use support::*;

const EIO: i32 = 5;
const ENOSPC: i32 = 28;
const KAFKA_STORAGE_ERROR: i16 = 56;
const INVALID_RECORD: i16 = 87;
const INVALID_TIMESTAMP: i16 = 32;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;

fn values_from(c: &mut Client, topic: &str, from: i64) -> (Vec<String>, Fetched) {
    let f = c.fetch(&FetchArgs::new(topic, from));
    let mut out = Vec::new();
    if let Some(r) = &f.records {
        let (bs, _) = split_batches(r);
        for b in bs {
            out.extend(
                values(&b.bytes)
                    .into_iter()
                    .map(|v| String::from_utf8(v).unwrap()),
            );
        }
    }
    (out, f)
}

fn offline_replicas(c: &mut Client, topic: &str) -> Vec<i32> {
    let v = 12;
    let body = c.metadata_body(v, Some(&[topic]), false);
    let resp = decode!(MetadataResponse, &body, v);
    resp.topics[0].partitions[0].offline_replicas.clone()
}

#[test]
fn a_failed_fsync_is_answered_with_an_error_and_the_broker_keeps_serving() {
    let mut b = TestBroker::start_with("fsync-eio", |c| c.log_flush_interval_messages = 1);
    let dir = b.dir.path().to_path_buf();
    let mut c = b.client();
    c.create_topic("t", 1);
    for i in 0..3 {
        let (e, off, _) = c.produce_to(9, "t", [0; 16], 0, &batch(2, &format!("ok{i}")), -1);
        assert_eq!((e, off), (0, i * 2));
    }
    assert!(offline_replicas(&mut c, "t").is_empty());

    let bad = faults::fail(&dir, Op::Sync, EIO);
    let (e, off, _) = c.produce_to(9, "t", [0; 16], 0, &batch(2, "lost"), -1);
    assert_eq!(
        (e, off),
        (KAFKA_STORAGE_ERROR, -1),
        "a failed fsync is never acknowledged"
    );
    drop(bad);
    // Offline until a restart: no second fsync is trusted.
    let (e, _, _) = c.produce_to(9, "t", [0; 16], 0, &batch(1, "after"), 1);
    assert_eq!(e, KAFKA_STORAGE_ERROR);

    // Everything that does not write is still served.
    assert_eq!(offline_replicas(&mut c, "t"), vec![1]);
    let (vals, f) = values_from(&mut c, "t", 0);
    assert_eq!(f.error, 0);
    assert_eq!(f.high_watermark, 6, "only what reached the disk");
    assert_eq!(vals.len(), 6);
    assert!(vals.iter().all(|v| v.starts_with("ok")), "{vals:?}");
    assert_eq!(c.fetch(&FetchArgs::new("t", 6)).error, KAFKA_STORAGE_ERROR);
    assert_eq!(c.list_offset(7, "t", 0, -1), (0, -1, 6));
    let req = FindCoordinatorRequest {
        key: "g",
        key_type: 0,
        coordinator_keys: vec![],
    };
    let body = c.call(FIND_COORDINATOR, 3, |w| req.encode(w, 3));
    let fc = decode!(FindCoordinatorResponse, &body, 3);
    assert_eq!(fc.error_code, COORDINATOR_NOT_AVAILABLE);
    let req = DescribeLogDirsRequest { topics: None };
    let body = c.call(DESCRIBE_LOG_DIRS, 4, |w| req.encode(w, 4));
    let logdirs = decode!(DescribeLogDirsResponse, &body, 4);
    assert_eq!(logdirs.results[0].error_code, KAFKA_STORAGE_ERROR);
    let created = c.create_topics(7, &[("new", 1, 1)], false);
    assert_eq!(created[0].error, KAFKA_STORAGE_ERROR);

    // A restart recovers everything acknowledged, and the directory is writable again.
    b.restart();
    let mut c = b.client();
    assert!(offline_replicas(&mut c, "t").is_empty());
    let (vals, _) = values_from(&mut c, "t", 0);
    let acked: Vec<String> = (0..3)
        .flat_map(|i| (0..2).map(move |j| format!("ok{i}-{j}")))
        .collect();
    assert_eq!(&vals[..6], &acked[..]);
    let (e, _, _) = c.produce_to(9, "t", [0; 16], 0, &batch(1, "again"), -1);
    assert_eq!(e, 0);
}

#[test]
fn a_full_disk_refuses_writes_until_space_returns() {
    let mut b = TestBroker::start_with("enospc", |c| c.log_flush_interval_messages = 1);
    let dir = b.dir.path().to_path_buf();
    let mut c = b.client();
    c.create_topic("t", 1);
    assert_eq!(c.produce_to(9, "t", [0; 16], 0, &batch(2, "a"), -1).0, 0);
    {
        let _full = faults::fail(&dir, Op::Write, ENOSPC);
        for _ in 0..3 {
            let (e, _, _) = c.produce_to(9, "t", [0; 16], 0, &batch(2, "x"), -1);
            assert_eq!(e, KAFKA_STORAGE_ERROR);
        }
        // Consumers still read everything acknowledged; the partition is not offline.
        let (vals, f) = values_from(&mut c, "t", 0);
        assert_eq!((vals.len(), f.high_watermark), (2, 2));
        assert!(offline_replicas(&mut c, "t").is_empty());
    }
    let (e, off, _) = c.produce_to(9, "t", [0; 16], 0, &batch(2, "b"), -1);
    assert_eq!((e, off), (0, 2), "appends resume, offsets continue");
    b.restart();
    let mut c = b.client();
    let (vals, _) = values_from(&mut c, "t", 0);
    assert_eq!(vals, vec!["a-0", "a-1", "b-0", "b-1"]);
}

fn produce_v(c: &mut Client, v: i16, topic: &str, records: &[u8]) -> ProduceResponse<'static> {
    let req = ProduceRequest {
        transactional_id: None,
        acks: -1,
        timeout_ms: 5000,
        topic_data: vec![TopicProduceData {
            name: topic,
            topic_id: [0; 16],
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(records),
            }],
        }],
    };
    let body = c.call(PRODUCE, v, |w| req.encode(w, v));
    let body: &'static [u8] = Box::leak(body.into_boxed_slice());
    decode!(ProduceResponse, body, v)
}

#[test]
fn refused_records_are_named_one_by_one() {
    let b = TestBroker::start("kip467");
    let mut c = b.client();
    c.create_topic("plain", 1);
    // A compacted topic refuses keyless records.
    {
        use minikafka::protocol::messages::create_topics_request::*;
        let req = CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: "compacted",
                num_partitions: 1,
                replication_factor: 1,
                configs: vec![CreatableTopicConfig {
                    name: "cleanup.policy",
                    value: Some("compact"),
                }],
                ..Default::default()
            }],
            timeout_ms: 5000,
            validate_only: false,
        };
        c.call(CREATE_TOPICS, 7, |w| req.encode(w, 7));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut bb = BatchBuilder::new(0, now).compression(minikafka::records::Compression::Gzip);
    for k in [Some(&b"a"[..]), None, Some(b"c"), None, None] {
        bb.push(None, now, k, Some(b"v"), &[]);
    }
    let keyless = bb.finish();
    for v in [8, 9, 12] {
        let r = produce_v(&mut c, v, "compacted", &keyless);
        let p = &r.responses[0].partition_responses[0];
        assert_eq!(p.error_code, INVALID_RECORD, "v{v}");
        let idx: Vec<i32> = p.record_errors.iter().map(|e| e.batch_index).collect();
        assert_eq!(idx, vec![1, 3, 4], "v{v}");
        assert!(p.record_errors[0]
            .batch_index_error_message
            .unwrap()
            .starts_with(
                "Compacted topic cannot accept message without key in topic partition compacted-0"
            ));
        assert!(p
            .error_message
            .unwrap()
            .contains("due to 3 record errors in total"));
    }
    // Nothing was stored.
    assert_eq!(c.list_offset(7, "compacted", 0, -1).2, 0);
    // A record two hours ahead among good ones: INVALID_TIMESTAMP naming that record.
    let mut bb = BatchBuilder::new(0, now);
    bb.push(None, now, Some(b"a"), Some(b"v"), &[]);
    bb.push(None, now + 2 * 3_600_000, Some(b"b"), Some(b"v"), &[]);
    bb.push(None, now, Some(b"c"), Some(b"v"), &[]);
    let r = produce_v(&mut c, 9, "plain", &bb.finish());
    let p = &r.responses[0].partition_responses[0];
    assert_eq!(p.error_code, INVALID_TIMESTAMP);
    let idx: Vec<i32> = p.record_errors.iter().map(|e| e.batch_index).collect();
    assert_eq!(idx, vec![1]);
    assert_eq!(
        p.error_message,
        Some("One or more records have been rejected due to invalid timestamp")
    );
    // Older versions carry no record errors but the same error code.
    let mut bb = BatchBuilder::new(0, now);
    bb.push(None, now + 2 * 3_600_000, Some(b"b"), Some(b"v"), &[]);
    let r = produce_v(&mut c, 7, "plain", &bb.finish());
    assert_eq!(
        r.responses[0].partition_responses[0].error_code,
        INVALID_TIMESTAMP
    );
}

#[test]
fn clients_cannot_write_to_internal_topics() {
    let b = TestBroker::start("internal");
    let mut c = b.client();
    // The first group lookup creates __consumer_offsets.
    let req = FindCoordinatorRequest {
        key: "g",
        key_type: 0,
        coordinator_keys: vec![],
    };
    let body = c.call(FIND_COORDINATOR, 3, |w| req.encode(w, 3));
    assert_eq!(decode!(FindCoordinatorResponse, &body, 3).error_code, 0);
    let (e, off, _) = c.produce_to(9, "__consumer_offsets", [0; 16], 0, &batch(1, "x"), 1);
    assert_eq!((e, off), (17, -1), "INVALID_TOPIC_EXCEPTION");
    // Kafka's admin client id may (tools that repair internal topics use it).
    c.client_id = Some("__admin_client".into());
    let (e, _, _) = c.produce_to(9, "__consumer_offsets", [0; 16], 0, &batch(1, "x"), 1);
    assert_eq!(e, 0);
}

#[test]
fn a_request_naming_too_many_partitions_is_refused_by_closing_the_connection() {
    let b = TestBroker::start("many-partitions");
    let mut c = b.client();
    c.create_topic("t", 1);
    let v = 9;
    let req = ProduceRequest {
        transactional_id: None,
        acks: 1,
        timeout_ms: 5000,
        topic_data: vec![TopicProduceData {
            name: "t",
            topic_id: [0; 16],
            partition_data: (0..200_001)
                .map(|i| PartitionProduceData {
                    index: i,
                    records: None,
                })
                .collect(),
        }],
    };
    let corr = c.send(PRODUCE, v, |w| req.encode(w, v)).unwrap();
    assert!(
        c.read_response(PRODUCE, v, corr).is_err(),
        "closed, not answered"
    );
    // Everyone else is still served.
    let mut other = b.client();
    let (e, off, _) = other.produce_to(9, "t", [0; 16], 0, &batch(1, "ok"), 1);
    assert_eq!((e, off), (0, 0));
}
