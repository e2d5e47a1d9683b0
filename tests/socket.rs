//! The broker started in-process on port 0 with a temp log dir, spoken to over TCP with raw
//! frames built from the generated encoders (as the CodeCrafters harness does). Every test has
//! its own broker and directory.

#[macro_use]
mod support;

use minikafka::protocol::messages::api_versions_request::ApiVersionsRequest;
use minikafka::protocol::messages::api_versions_response::ApiVersionsResponse;
use minikafka::protocol::messages::describe_topic_partitions_request::{
    Cursor, DescribeTopicPartitionsRequest, TopicRequest,
};
use minikafka::protocol::messages::describe_topic_partitions_response::DescribeTopicPartitionsResponse;
use minikafka::protocol::messages::metadata_response::MetadataResponse;
use minikafka::protocol::wire::Writer;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

const EXPECTED_RANGES: &[(i16, i16, i16)] = &[
    (0, 3, 13), // Produce
    (1, 4, 18), // Fetch
    (2, 1, 9),  // ListOffsets
    (3, 0, 13), // Metadata
    (18, 0, 4), // ApiVersions
    (19, 2, 7), // CreateTopics
    (75, 0, 0), // DescribeTopicPartitions
];

fn api_versions_body(c: &mut Client, version: i16) -> Vec<u8> {
    let req = ApiVersionsRequest {
        client_software_name: "socket-test",
        client_software_version: "0.1",
    };
    // ApiVersions above v4 is encoded like v4 (what a newer client's body starts with).
    c.call(API_VERSIONS, version, |w| req.encode(w, version.min(4)))
}

// ---------------------------------------------------------------- ApiVersions

#[test]
fn api_versions_every_version_lists_the_served_ranges() {
    let b = TestBroker::start("apiv");
    let mut c = b.client();
    for v in 0..=4 {
        let body = api_versions_body(&mut c, v);
        let r = decode!(ApiVersionsResponse, &body, v);
        assert_eq!(r.error_code, 0, "v{v}");
        for &(k, min, max) in EXPECTED_RANGES {
            let e = r.api_keys.iter().find(|a| a.api_key == k);
            let e = e.unwrap_or_else(|| panic!("v{v}: api {k} missing"));
            assert_eq!((e.min_version, e.max_version), (min, max), "v{v} api {k}");
        }
        if v >= 3 {
            // Response header v0 even for flexible versions: the body starts right after the
            // correlation id with the error code, then the compact array length.
            assert_eq!(&body[..2], &[0, 0]);
            assert_eq!(body[2] as usize, r.api_keys.len() + 1);
        }
    }
}

#[test]
fn api_versions_unsupported_version_answers_v0_layout_with_error_35() {
    let b = TestBroker::start("apiv5");
    let mut c = b.client();
    for v in [5, 100] {
        let body = api_versions_body(&mut c, v);
        let r = decode!(ApiVersionsResponse, &body, 0);
        assert_eq!(r.error_code, 35, "v{v}");
        let av = r.api_keys.iter().find(|a| a.api_key == API_VERSIONS);
        let av = av.expect("ApiVersions listed");
        assert_eq!((av.min_version, av.max_version), (0, 4));
    }
    // The connection stays usable.
    let body = api_versions_body(&mut c, 4);
    assert_eq!(decode!(ApiVersionsResponse, &body, 4).error_code, 0);
}

// ---------------------------------------------------------------- CreateTopics

#[test]
fn create_topics_rules() {
    let b = TestBroker::start_with("create", |c| c.num_partitions = 2);
    let mut c = b.client();

    let r = c.create_topics(7, &[("t1", 3, 1)], false);
    assert_eq!(r[0].error, 0, "{r:?}");
    assert_ne!(r[0].topic_id, [0; 16]);
    assert_eq!(r[0].num_partitions, 3);
    assert_eq!(r[0].replication_factor, 1);

    let r = c.create_topics(7, &[("t1", 3, 1)], false);
    assert_eq!(r[0].error, 36, "TOPIC_ALREADY_EXISTS: {r:?}");

    let long = "x".repeat(250);
    for name in ["", ".", "..", long.as_str(), "a/b", "a b", "ä"] {
        let r = c.create_topics(7, &[(name, 1, 1)], false);
        assert_eq!(
            r[0].error, 17,
            "INVALID_TOPIC_EXCEPTION for {name:?}: {r:?}"
        );
    }
    // 249 characters is the longest legal name.
    let ok = "y".repeat(249);
    assert_eq!(c.create_topics(7, &[(&ok, 1, 1)], false)[0].error, 0);

    let r = c.create_topics(7, &[("zero", 0, 1)], false);
    assert_eq!(r[0].error, 37, "INVALID_PARTITIONS: {r:?}");
    let r = c.create_topics(7, &[("rf3", 1, 3)], false);
    assert_eq!(r[0].error, 38, "INVALID_REPLICATION_FACTOR: {r:?}");

    let r = c.create_topics(7, &[("dry", 4, 1)], true);
    assert_eq!(r[0].error, 0, "{r:?}");
    let r = c.create_topics(5, &[("dry-old", 4, 1)], true);
    assert_eq!(r[0].error, 0, "{r:?}");

    let r = c.create_topics(7, &[("dflt", -1, -1)], false);
    assert_eq!(r[0].error, 0, "{r:?}");
    assert_eq!(r[0].num_partitions, 2, "broker default num.partitions");
    assert_eq!(r[0].replication_factor, 1);

    // Oldest version, several topics in one request, one of them bad.
    let r = c.create_topics(2, &[("old1", 1, 1), ("t1", 1, 1), ("old2", 2, 1)], false);
    let errs: Vec<_> = r.iter().map(|t| (t.name.as_str(), t.error)).collect();
    assert_eq!(errs, vec![("old1", 0), ("t1", 36), ("old2", 0)]);

    let names: Vec<String> = c
        .metadata_topics(None, false)
        .into_iter()
        .map(|t| t.0)
        .collect();
    for n in ["t1", "dflt", "old1", "old2", ok.as_str()] {
        assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
    }
    for n in ["dry", "dry-old", "zero", "rf3", "", "a/b"] {
        assert!(
            !names.iter().any(|x| x == n),
            "{n} should not exist: {names:?}"
        );
    }
    let parts: Vec<_> = c.metadata_topics(Some(&["dflt", "t1"]), false);
    let count = |n: &str| parts.iter().find(|t| t.0 == n).map(|t| t.3);
    assert_eq!(count("dflt"), Some(2));
    assert_eq!(count("t1"), Some(3));
}

// ---------------------------------------------------------------- Metadata

#[test]
fn metadata_topics_brokers_cluster_and_auto_creation() {
    let b = TestBroker::start("meta");
    let mut c = b.client();
    let id_a = c.create_topic("alpha", 2);
    let id_b = c.create_topic("beta", 1);

    // Newest version, all topics.
    let body = c.metadata_body(13, None, false);
    let m = decode!(MetadataResponse, &body, 13);
    assert_eq!(m.error_code, 0);
    assert_eq!(m.brokers.len(), 1);
    assert_eq!(m.brokers[0].node_id, b.config.node_id);
    assert_eq!(m.brokers[0].port, b.addr.port() as i32);
    assert_eq!(m.brokers[0].host, "127.0.0.1");
    assert_eq!(m.controller_id, b.config.node_id);
    let cluster = m.cluster_id.expect("cluster id").to_string();
    assert!(!cluster.is_empty());
    let alpha = m.topics.iter().find(|t| t.name == Some("alpha")).unwrap();
    assert_eq!(alpha.error_code, 0);
    assert_eq!(alpha.topic_id, id_a);
    assert_eq!(alpha.partitions.len(), 2);
    for (i, p) in alpha.partitions.iter().enumerate() {
        assert_eq!(p.partition_index, i as i32);
        assert_eq!(p.error_code, 0);
        assert_eq!(p.leader_id, b.config.node_id);
        assert_eq!(p.replica_nodes, vec![b.config.node_id]);
        assert_eq!(p.isr_nodes, vec![b.config.node_id]);
    }
    let beta = m.topics.iter().find(|t| t.name == Some("beta")).unwrap();
    assert_eq!(beta.topic_id, id_b);

    // Oldest version, all topics (empty array).
    let body = c.metadata_body(0, None, false);
    let m0 = decode!(MetadataResponse, &body, 0);
    assert_eq!(m0.brokers[0].port, b.addr.port() as i32);
    let mut names: Vec<_> = m0.topics.iter().filter_map(|t| t.name).collect();
    names.sort();
    assert_eq!(names, vec!["alpha", "beta"]);

    // Cluster id is stable across versions; topic ids only from v10.
    for v in [2, 9, 10, 12] {
        let body = c.metadata_body(v, Some(&["beta"]), false);
        let m = decode!(MetadataResponse, &body, v);
        assert_eq!(m.cluster_id, Some(cluster.as_str()), "v{v}");
        assert_eq!(m.topics.len(), 1);
        assert_eq!(m.topics[0].name, Some("beta"));
        let want = if v >= 10 { id_b } else { [0; 16] };
        assert_eq!(m.topics[0].topic_id, want, "v{v}");
    }

    // Unknown topic without auto-creation: UNKNOWN_TOPIC_OR_PARTITION, and not created.
    let t = c.metadata_topics(Some(&["ghost"]), false);
    assert_eq!(t.len(), 1);
    assert_eq!((t[0].0.as_str(), t[0].1), ("ghost", 3));
    let t = c.metadata_topics(Some(&["ghost"]), false);
    assert_eq!(
        t[0].1, 3,
        "ghost was created by a metadata request without auto-creation"
    );

    // With auto-creation: created (first answer may be LEADER_NOT_AVAILABLE while it is).
    let t = c.metadata_topics(Some(&["auto"]), true);
    assert!(t[0].1 == 0 || t[0].1 == 5, "{t:?}");
    let t = c.metadata_topics(Some(&["auto"]), false);
    assert_eq!(t[0].1, 0, "{t:?}");
    assert_ne!(t[0].2, [0; 16]);
    assert_eq!(t[0].3, b.config.num_partitions as usize);
    // Metadata v3 (before AllowAutoTopicCreation existed) auto-creates too.
    let body = c.metadata_body(3, Some(&["auto3"]), true);
    let m = decode!(MetadataResponse, &body, 3);
    assert!(m.topics[0].error_code == 0 || m.topics[0].error_code == 5);
    assert_eq!(c.metadata_topics(Some(&["auto3"]), false)[0].1, 0);

    // An illegal name is never auto-created.
    let t = c.metadata_topics(Some(&["bad/name"]), true);
    assert_eq!(t[0].1, 17, "{t:?}");
}

#[test]
fn metadata_auto_creation_disabled_by_broker_config() {
    let b = TestBroker::start_with("meta-noauto", |c| c.auto_create_topics_enable = false);
    let mut c = b.client();
    let t = c.metadata_topics(Some(&["nope"]), true);
    assert_eq!(t[0].1, 3, "{t:?}");
}

// ---------------------------------------------------------------- Produce / Fetch

/// Batches equal except baseOffset (0..8) and partitionLeaderEpoch (12..16).
fn assert_same_batch(got: &[u8], sent: &[u8]) {
    assert_eq!(got.len(), sent.len());
    assert_eq!(&got[8..12], &sent[8..12]);
    assert_eq!(&got[16..], &sent[16..]);
}

#[test]
fn produce_then_fetch_round_trip() {
    let b = TestBroker::start("rt");
    let mut c = b.client();
    let id = c.create_topic("rt", 2);
    let b1 = batch(3, "a");
    let b2 = batch(2, "b");
    let b3 = batch(1, "c");
    assert_eq!(c.produce("rt", 0, &b1), (0, 0));
    assert_eq!(c.produce("rt", 0, &b2), (0, 3));
    // Oldest and newest Produce versions (v13 by topic id).
    assert_eq!(c.produce_to(3, "rt", [0; 16], 0, &b3, -1).0, 0);
    let (e, off, start) = c.produce_to(13, "", id, 0, &b3, 1);
    assert_eq!((e, off, start), (0, 6, 0));
    assert_eq!(
        c.produce("rt", 1, &b3),
        (0, 0),
        "partitions are independent"
    );

    for v in [4, 11, 12] {
        let f = c.fetch(&FetchArgs {
            version: v,
            ..FetchArgs::new("rt", 0)
        });
        assert_eq!(f.error, 0, "v{v}");
        assert_eq!(f.high_watermark, 7, "v{v}");
        assert_eq!(f.last_stable_offset, 7, "v{v}");
        if v >= 5 {
            assert_eq!(f.log_start_offset, 0);
        }
        let (bs, partial) = split_batches(f.records.as_deref().unwrap());
        assert_eq!(partial, 0);
        let offs: Vec<_> = bs.iter().map(|b| (b.base_offset, b.last_offset)).collect();
        assert_eq!(offs, vec![(0, 2), (3, 4), (5, 5), (6, 6)], "v{v}");
        assert_same_batch(&bs[0].bytes, &b1);
        assert_same_batch(&bs[1].bytes, &b2);
        assert_same_batch(&bs[3].bytes, &b3);
        assert_eq!(values(&bs[1].bytes), vec![b"b-0".to_vec(), b"b-1".to_vec()]);
    }

    // From the middle of a batch: that batch is returned whole (the client skips into it).
    let f = c.fetch(&FetchArgs::new("rt", 4));
    let (bs, _) = split_batches(f.records.as_deref().unwrap());
    assert_eq!(bs[0].base_offset, 3);

    // By topic id, v13 and v18.
    for v in [13, 18] {
        let f = c.fetch(&FetchArgs {
            version: v,
            topic: "",
            topic_id: id,
            ..FetchArgs::new("", 3)
        });
        assert_eq!((f.error, f.high_watermark), (0, 7), "v{v}");
        let (bs, _) = split_batches(f.records.as_deref().unwrap());
        assert_eq!(bs[0].base_offset, 3);
        assert_eq!(bs.last().unwrap().last_offset, 6);
    }

    // Unknown topic id: UNKNOWN_TOPIC_ID (100).
    let f = c.fetch(&FetchArgs {
        version: 13,
        topic_id: [7; 16],
        ..FetchArgs::new("", 0)
    });
    assert_eq!(f.error, 100);
    // Unknown topic name (v12): UNKNOWN_TOPIC_OR_PARTITION; unknown partition too.
    assert_eq!(c.fetch(&FetchArgs::new("nope", 0)).error, 3);
    let f = c.fetch(&FetchArgs {
        partition: 9,
        ..FetchArgs::new("rt", 0)
    });
    assert_eq!(f.error, 3);

    // Past the end, or negative: OFFSET_OUT_OF_RANGE.
    for off in [8, 1000, -5] {
        let f = c.fetch(&FetchArgs::new("rt", off));
        assert_eq!(f.error, 1, "offset {off}");
    }
    // At the end: no error, no data, and records empty rather than null.
    let f = c.fetch(&FetchArgs::new("rt", 7));
    assert_eq!(f.error, 0);
    assert_eq!(f.records.as_deref(), Some(&[][..]));

    // An empty partition of a new topic.
    let id2 = c.create_topic("empty", 1);
    for (v, name, tid) in [(4, "empty", [0; 16]), (12, "empty", [0; 16]), (18, "", id2)] {
        let f = c.fetch(&FetchArgs {
            version: v,
            topic: name,
            topic_id: tid,
            ..FetchArgs::new(name, 0)
        });
        assert_eq!(f.error, 0, "v{v}");
        assert_eq!(f.high_watermark, 0, "v{v}");
        assert_eq!(f.records.as_deref(), Some(&[][..]), "v{v}: empty, not null");
    }
}

#[test]
fn produce_to_unknown_topic_or_partition() {
    let b = TestBroker::start("produce-unknown");
    let mut c = b.client();
    c.create_topic("one", 1);
    let bt = batch(1, "x");
    assert_eq!(c.produce("nope", 0, &bt).0, 3);
    assert_eq!(c.produce("one", 1, &bt).0, 3);
    assert_eq!(c.produce("one", -1, &bt).0, 3);
    let (e, _, _) = c.produce_to(13, "", [9; 16], 0, &bt, 1);
    assert_eq!(e, 100, "UNKNOWN_TOPIC_ID");
    // Nothing was stored.
    assert_eq!(c.fetch(&FetchArgs::new("one", 0)).high_watermark, 0);
}

#[test]
fn fetch_size_limits() {
    let b = TestBroker::start("limits");
    let mut c = b.client();
    c.create_topic("big", 1);
    let sent: Vec<Vec<u8>> = (0..3).map(|_| big_batch(1000)).collect();
    for (i, s) in sent.iter().enumerate() {
        assert_eq!(c.produce("big", 0, s), (0, i as i64));
    }
    let one = sent[0].len();

    // max_bytes and partition_max_bytes smaller than the first batch: still one whole batch.
    for (max, pmax) in [(1, 1 << 20), (1 << 20, 1), (10, 10), (0, 0)] {
        let f = c.fetch(&FetchArgs {
            max_bytes: max,
            partition_max_bytes: pmax,
            ..FetchArgs::new("big", 0)
        });
        assert_eq!(f.error, 0);
        let recs = f.records.unwrap();
        let (bs, _) = split_batches(&recs);
        assert_eq!(bs.len(), 1, "max {max} pmax {pmax}: {} bytes", recs.len());
        assert_eq!(
            recs.len(),
            one,
            "max {max} pmax {pmax}: only the first batch"
        );
    }
    // Room for two batches and a half: two whole batches, at most max_bytes in total.
    for (max, pmax) in [(one * 5 / 2, 1 << 20), (1 << 20, one * 5 / 2)] {
        let f = c.fetch(&FetchArgs {
            max_bytes: max as i32,
            partition_max_bytes: pmax as i32,
            ..FetchArgs::new("big", 0)
        });
        let recs = f.records.unwrap();
        assert!(recs.len() <= one * 5 / 2, "{} bytes", recs.len());
        let (bs, _) = split_batches(&recs);
        assert_eq!(bs.len(), 2);
    }
    // Everything.
    let f = c.fetch(&FetchArgs::new("big", 0));
    assert_eq!(split_batches(&f.records.unwrap()).0.len(), 3);
}

fn log_files(dir: &std::path::Path, topic_dir: &str) -> usize {
    std::fs::read_dir(dir.join(topic_dir))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn many_batches_across_segments_read_back_without_gap_or_repeat() {
    let b = TestBroker::start_with("segments", |c| c.log_segment_bytes = 2048);
    let mut c = b.client();
    c.create_topic("seg", 1);
    let mut expected = Vec::new();
    let mut next = 0i64;
    for i in 0..80 {
        let n = 1 + i % 4;
        let bt = batch(n, &format!("m{i}"));
        assert_eq!(c.produce("seg", 0, &bt), (0, next));
        next += n as i64;
        for j in 0..n {
            expected.push(format!("m{i}-{j}").into_bytes());
        }
    }
    let segments = log_files(b.dir.path(), "seg-0");
    assert!(segments >= 3, "only {segments} segment files");

    for max in [1, 100, 300, 700, 2048, 5000, 1 << 20] {
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut offset = 0i64;
        let mut rounds = 0;
        while offset < next {
            rounds += 1;
            assert!(rounds < 1000, "max_bytes {max}: no progress at {offset}");
            let f = c.fetch(&FetchArgs {
                max_bytes: max,
                partition_max_bytes: max,
                ..FetchArgs::new("seg", offset)
            });
            assert_eq!(f.error, 0, "max_bytes {max} at {offset}");
            assert_eq!(f.high_watermark, next);
            let (bs, _) = split_batches(f.records.as_deref().unwrap());
            assert!(!bs.is_empty(), "max_bytes {max}: nothing at {offset}");
            for bt in bs {
                assert_eq!(bt.base_offset, offset, "max_bytes {max}: gap or repeat");
                got.extend(values(&bt.bytes));
                offset = bt.last_offset + 1;
            }
        }
        assert_eq!(got.len(), expected.len(), "max_bytes {max}");
        assert!(got == expected, "max_bytes {max}: values differ");
    }
}

// ---------------------------------------------------------------- Long poll

#[test]
fn long_poll_times_out_without_data() {
    let b = TestBroker::start("poll-timeout");
    let mut c = b.client();
    c.create_topic("quiet", 1);
    let t0 = Instant::now();
    let f = c.fetch(&FetchArgs {
        max_wait_ms: 500,
        min_bytes: 1,
        ..FetchArgs::new("quiet", 0)
    });
    let ms = t0.elapsed().as_millis();
    assert!((400..1500).contains(&ms), "answered after {ms} ms");
    assert_eq!(f.error, 0);
    assert_eq!(f.records.as_deref().map(|r| r.len()), Some(0));
}

#[test]
fn long_poll_wakes_up_on_produce() {
    let b = TestBroker::start("poll-wake");
    let mut c = b.client();
    c.create_topic("wake", 1);
    let mut producer = b.client();
    let t0 = Instant::now();
    let args = FetchArgs {
        max_wait_ms: 5000,
        min_bytes: 1,
        ..FetchArgs::new("wake", 0)
    };
    let corr = c.send_fetch(&args);
    c.wait_until_read(); // parked: nothing to read yet
    assert_eq!(producer.produce("wake", 0, &batch(2, "late")), (0, 0));
    let f = c.read_fetch(&args, corr);
    let ms = t0.elapsed().as_millis();
    assert!(
        ms < 1000,
        "answered after {ms} ms, not woken by the produce"
    );
    assert_eq!(f.error, 0);
    let (bs, _) = split_batches(f.records.as_deref().unwrap());
    assert_eq!(bs.len(), 1);
    assert_eq!(values(&bs[0].bytes)[1], b"late-1".to_vec());
}

#[test]
fn long_poll_wakes_only_on_its_own_partition() {
    let b = TestBroker::start("poll-own");
    let mut c = b.client();
    c.create_topic("mine", 1);
    c.create_topic("other", 1);
    let mut producer = b.client();
    let args = FetchArgs {
        max_wait_ms: 600,
        min_bytes: 1,
        ..FetchArgs::new("mine", 0)
    };
    let t0 = Instant::now();
    let corr = c.send_fetch(&args);
    c.wait_until_read(); // parked
                         // An append elsewhere does not answer it: it runs to its deadline, empty.
    assert_eq!(producer.produce("other", 0, &batch(1, "x")), (0, 0));
    let f = c.read_fetch(&args, corr);
    let ms = t0.elapsed().as_millis();
    assert!(
        ms >= 590,
        "answered after {ms} ms by an append to another topic"
    );
    assert!(f.records.as_deref().unwrap_or_default().is_empty());
    // An append to its own partition answers at once.
    let args = FetchArgs {
        max_wait_ms: 10_000,
        ..args
    };
    let t0 = Instant::now();
    let corr = c.send_fetch(&args);
    c.wait_until_read();
    assert_eq!(producer.produce("mine", 0, &batch(1, "y")), (0, 0));
    let f = c.read_fetch(&args, corr);
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    let (bs, _) = split_batches(f.records.as_deref().unwrap());
    assert_eq!(bs.len(), 1);
}

#[test]
fn long_poll_does_not_block_other_connections() {
    let b = TestBroker::start("poll-other");
    let mut c = b.client();
    c.create_topic("idle", 1);
    let corr = c
        .send(FETCH, 12, |w| {
            fetch_body(w, "idle", 0, 2000);
        })
        .unwrap();
    let mut other = b.client();
    let t0 = Instant::now();
    let body = api_versions_body(&mut other, 4);
    assert_eq!(decode!(ApiVersionsResponse, &body, 4).error_code, 0);
    assert!(t0.elapsed() < Duration::from_millis(500));
    // The parked fetch still answers.
    c.read_response(FETCH, 12, corr).unwrap();
}

fn fetch_body(w: &mut Writer<'_>, topic: &str, offset: i64, max_wait: i32) {
    use minikafka::protocol::messages::fetch_request::*;
    FetchRequest {
        max_wait_ms: max_wait,
        min_bytes: 1,
        topics: vec![FetchTopic {
            topic,
            topic_id: [0; 16],
            partitions: vec![FetchPartition {
                partition: 0,
                fetch_offset: offset,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
        }],
        ..Default::default()
    }
    .encode(w, 12);
}

// ---------------------------------------------------------------- ListOffsets

#[test]
fn list_offsets_earliest_latest_max_and_by_timestamp() {
    let b = TestBroker::start("listoff");
    let mut c = b.client();
    c.create_topic("lo", 1);
    for v in [1, 9] {
        let (e, _, off) = c.list_offset(v, "lo", 0, -1);
        assert_eq!((e, off), (0, 0), "latest of an empty log, v{v}");
    }
    // Batches at t=1000 (3 records: 1000..1002), t=5000 (2), t=3000 (1).
    assert_eq!(c.produce("lo", 0, &batch_at(3, "a", 1000)), (0, 0));
    assert_eq!(c.produce("lo", 0, &batch_at(2, "b", 5000)), (0, 3));
    assert_eq!(c.produce("lo", 0, &batch_at(1, "c", 3000)), (0, 5));
    for v in [1, 5, 9] {
        assert_eq!(c.list_offset(v, "lo", 0, -2).2, 0, "earliest v{v}");
        assert_eq!(c.list_offset(v, "lo", 0, -1).2, 6, "latest v{v}");
        // First offset whose timestamp >= target.
        let (e, ts, off) = c.list_offset(v, "lo", 0, 1001);
        assert_eq!((e, ts, off), (0, 1001, 1), "by timestamp v{v}");
        let (_, ts, off) = c.list_offset(v, "lo", 0, 2000);
        assert_eq!((ts, off), (5000, 3), "by timestamp v{v}");
        let (_, ts, off) = c.list_offset(v, "lo", 0, 0);
        assert_eq!((ts, off), (1000, 0), "by timestamp v{v}");
        let (e, ts, off) = c.list_offset(v, "lo", 0, 9999);
        assert_eq!((e, ts, off), (0, -1, -1), "past every timestamp v{v}");
    }
    // Max timestamp (v7+): the record with the largest timestamp.
    let (e, ts, off) = c.list_offset(9, "lo", 0, -3);
    assert_eq!((e, ts, off), (0, 5001, 4));
    // Unknown topic / partition.
    assert_eq!(c.list_offset(9, "nope", 0, -1).0, 3);
    assert_eq!(c.list_offset(9, "lo", 4, -1).0, 3);
}

// ---------------------------------------------------------------- DescribeTopicPartitions

/// (name, error, partition indexes) of one topic in a DescribeTopicPartitions answer.
type DescribedTopic = (String, i16, Vec<i32>);

fn describe(
    c: &mut Client,
    topics: &[&str],
    limit: i32,
    cursor: Option<(&str, i32)>,
) -> (Vec<DescribedTopic>, Option<(String, i32)>) {
    let req = DescribeTopicPartitionsRequest {
        topics: topics.iter().map(|&name| TopicRequest { name }).collect(),
        response_partition_limit: limit,
        cursor: cursor.map(|(topic_name, partition_index)| Cursor {
            topic_name,
            partition_index,
        }),
    };
    let body = c.call(DESCRIBE_TOPIC_PARTITIONS, 0, |w| req.encode(w, 0));
    let r = decode!(DescribeTopicPartitionsResponse, &body, 0);
    let topics = r
        .topics
        .iter()
        .map(|t| {
            (
                t.name.unwrap_or("").to_string(),
                t.error_code,
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let next = r
        .next_cursor
        .map(|c| (c.topic_name.to_string(), c.partition_index));
    (topics, next)
}

#[test]
fn describe_topic_partitions_sorting_unknown_and_paging() {
    let b = TestBroker::start("dtp");
    let mut c = b.client();
    c.create_topic("cherry", 1);
    c.create_topic("apple", 3);
    c.create_topic("banana", 2);

    let (t, next) = describe(&mut c, &["cherry", "zzz", "apple", "banana"], 100, None);
    let names: Vec<_> = t.iter().map(|x| (x.0.as_str(), x.1)).collect();
    assert_eq!(
        names,
        vec![("apple", 0), ("banana", 0), ("cherry", 0), ("zzz", 3)]
    );
    assert_eq!(t[0].2, vec![0, 1, 2]);
    assert_eq!(t[1].2, vec![0, 1]);
    assert!(t[3].2.is_empty());
    assert_eq!(next, None);

    // Paging two partitions at a time over apple(3) + banana(2).
    let (t, next) = describe(&mut c, &["banana", "apple"], 2, None);
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!((t[0].0.as_str(), t[0].2.clone()), ("apple", vec![0, 1]));
    assert_eq!(next, Some(("apple".to_string(), 2)));

    let (t, next) = describe(&mut c, &["banana", "apple"], 2, Some(("apple", 2)));
    let got: Vec<_> = t.iter().map(|x| (x.0.as_str(), x.2.clone())).collect();
    assert_eq!(got, vec![("apple", vec![2]), ("banana", vec![0])]);
    assert_eq!(next, Some(("banana".to_string(), 1)));

    let (t, next) = describe(&mut c, &["banana", "apple"], 2, Some(("banana", 1)));
    let got: Vec<_> = t.iter().map(|x| (x.0.as_str(), x.2.clone())).collect();
    assert_eq!(got, vec![("banana", vec![1])]);
    assert_eq!(next, None);
}

// ---------------------------------------------------------------- Bad input

/// A client producing and fetching in a loop on its own connection until told to stop.
struct Background {
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicUsize>,
    thread: std::thread::JoinHandle<Result<(), String>>,
}

impl Background {
    fn start(b: &TestBroker, topic: &'static str) -> Background {
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicUsize::new(0));
        let mut c = b.client();
        let (s, r) = (stop.clone(), rounds.clone());
        let thread = std::thread::spawn(move || {
            let mut next = 0i64;
            while !s.load(Ordering::Relaxed) {
                let (e, off) = c.produce(topic, 0, &batch(2, "bg"));
                if (e, off) != (0, next) {
                    return Err(format!("produce: {e} at {off}, expected offset {next}"));
                }
                let f = c.fetch(&FetchArgs::new(topic, next));
                let (bs, _) = split_batches(f.records.as_deref().unwrap_or(&[]));
                if f.error != 0 || bs.first().map(|b| b.base_offset) != Some(next) {
                    return Err(format!("fetch at {next}: {f:?}"));
                }
                next += 2;
                r.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        });
        Background {
            stop,
            rounds,
            thread,
        }
    }

    /// Waits until the background client completes `n` more rounds (panics after 5 s).
    fn progress(&self, n: usize, what: &str) {
        let start = self.rounds.load(Ordering::Relaxed);
        let t0 = Instant::now();
        while self.rounds.load(Ordering::Relaxed) < start + n {
            assert!(
                !self.thread.is_finished(),
                "background client stopped ({what})"
            );
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "background client stalled: {what}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn finish(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap().unwrap();
        self.rounds.load(Ordering::Relaxed)
    }
}

fn closes(b: &TestBroker, bytes: &[u8]) -> bool {
    let mut c = b.client();
    c.set_read_timeout(Duration::from_secs(3));
    let _ = c.send_raw(bytes);
    c.is_closed()
}

fn xorshift(seed: &mut u64) -> u8 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    (*seed >> 24) as u8
}

/// A magic 0 or 1 message set of one message (legacy format, rejected by Kafka 4 brokers).
fn legacy_message_set(magic: i8) -> Vec<u8> {
    let mut m = Vec::new();
    let mut w = Writer::new(&mut m);
    w.i8(magic);
    w.i8(0);
    if magic == 1 {
        w.i64(1_700_000_000_000);
    }
    w.i32(-1);
    w.i32(3);
    w.bytes(b"abc");
    let mut crc = flate2::Crc::new();
    crc.update(&m);
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out);
    w.i64(0);
    w.i32(4 + m.len() as i32);
    w.u32(crc.sum());
    w.bytes(&m);
    out
}

#[test]
fn bad_input_never_hurts_other_clients() {
    let b = TestBroker::start_with("bad", |c| c.message_max_bytes = 10_000);
    let mut c = b.client();
    c.create_topic("bg", 1);
    c.create_topic("victim", 1);
    let bg = Background::start(&b, "bg");
    bg.progress(3, "before any bad input");

    // Framing and header errors close the connection.
    assert!(closes(&b, &[0, 0, 0, 0]), "size 0");
    assert!(
        closes(&b, &[0xff, 0xff, 0xff, 0xfe, 1, 2, 3]),
        "negative size"
    );
    assert!(
        closes(&b, &[0x7f, 0xff, 0xff, 0xff, 0, 18, 0, 0]),
        "size 2^31-1"
    );
    assert!(closes(&b, &[0, 0, 0, 3, 0, 18, 0]), "truncated header");
    assert!(
        closes(&b, &[0, 0, 0, 10, 0, 18, 0, 4, 0, 0, 0, 1, 0, 9]),
        "client id longer than the frame"
    );
    let probe = b.client();
    let f = probe.frame(999, 0, 1, |_| {});
    assert!(closes(&b, &f), "unknown api key");
    let f = probe.frame(PRODUCE, 2, 1, |w| {
        w.bytes(&[0xff, 0xff, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    });
    assert!(closes(&b, &f), "Produce v2 (unsupported)");
    let f = probe.frame(FETCH, 19, 1, |w| w.bytes(&[0; 32]));
    assert!(closes(&b, &f), "Fetch v19 (unsupported)");
    // A supported version whose body does not decode.
    let f = probe.frame(METADATA, 12, 1, |w| w.bytes(&[0x05, b'a']));
    assert!(closes(&b, &f), "truncated Metadata body");
    bg.progress(3, "after framing errors");

    // Random bytes, as frames and raw.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..20 {
        let n = 1 + (xorshift(&mut seed) as usize) * 4;
        let mut junk: Vec<u8> = (0..n).map(|_| xorshift(&mut seed)).collect();
        if i % 2 == 0 && junk.len() >= 4 {
            let size = (junk.len() - 4) as u32;
            junk[..4].copy_from_slice(&size.to_be_bytes());
        }
        let mut r = b.client();
        r.set_read_timeout(Duration::from_millis(300));
        let _ = r.send_raw(&junk);
        let _ = r.is_closed();
    }
    bg.progress(3, "after random bytes");

    // Record-level errors are answered in the Produce response.
    let mut bad_crc = batch(3, "crc");
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0xff;
    assert_eq!(c.produce("victim", 0, &bad_crc).0, 2, "CORRUPT_MESSAGE");
    for magic in [0, 1] {
        let e = c.produce("victim", 0, &legacy_message_set(magic)).0;
        assert_eq!(e, 87, "INVALID_RECORD for magic {magic}");
    }
    assert_eq!(
        c.produce("victim", 0, &big_batch(20_000)).0,
        10,
        "MESSAGE_TOO_LARGE"
    );
    let mut short = batch(2, "short");
    short.truncate(short.len() - 5);
    let e = c.produce("victim", 0, &short).0;
    assert!(e == 2 || e == 87, "truncated batch: {e}");
    let e = c.produce("bad/name", 0, &batch(1, "x")).0;
    assert!(e == 17 || e == 3, "illegal topic name in Produce: {e}");
    let t = c.metadata_topics(Some(&["bad/name", ".."]), true);
    assert_eq!(t.iter().map(|x| x.1).collect::<Vec<_>>(), vec![17, 17]);
    // None of that was stored; the connection still works.
    assert_eq!(c.fetch(&FetchArgs::new("victim", 0)).high_watermark, 0);
    assert_eq!(c.produce("victim", 0, &batch(1, "ok")), (0, 0));

    bg.progress(3, "after bad records");
    let rounds = bg.finish();
    assert!(rounds > 0, "background client made no progress");
    // And the broker still serves new connections.
    let mut fresh = b.client();
    let body = api_versions_body(&mut fresh, 4);
    assert_eq!(decode!(ApiVersionsResponse, &body, 4).error_code, 0);
}

// ---------------------------------------------------------------- acks=0

#[test]
fn acks_zero_gets_no_response_but_is_stored() {
    let b = TestBroker::start("acks0");
    let mut c = b.client();
    c.create_topic("fire", 1);
    use minikafka::protocol::messages::produce_request::*;
    let records = batch(2, "f");
    let req = ProduceRequest {
        acks: 0,
        timeout_ms: 1000,
        topic_data: vec![TopicProduceData {
            name: "fire",
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(&records),
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    c.send(PRODUCE, 9, |w| req.encode(w, 9)).unwrap();
    c.send(PRODUCE, 9, |w| req.encode(w, 9)).unwrap();
    // The next response on this connection is the ListOffsets one.
    let (e, _, off) = c.list_offset(9, "fire", 0, -1);
    assert_eq!((e, off), (0, 4));
    let f = c.fetch(&FetchArgs::new("fire", 0));
    let (bs, _) = split_batches(f.records.as_deref().unwrap());
    assert_eq!(bs.len(), 2);
}

// ---------------------------------------------------------------- Restart

#[test]
fn restart_keeps_topics_and_data() {
    let mut b = TestBroker::start_with("restart", |c| c.log_segment_bytes = 4096);
    let mut c = b.client();
    let id = c.create_topic("keep", 2);
    let sent = batch(5, "persist");
    for _ in 0..30 {
        assert_eq!(c.produce("keep", 0, &sent).0, 0);
    }
    assert_eq!(c.produce("keep", 1, &sent), (0, 0));
    let cluster = {
        let body = c.metadata_body(12, None, false);
        decode!(MetadataResponse, &body, 12)
            .cluster_id
            .map(str::to_string)
    };
    drop(c);

    b.restart();
    let mut c = b.client();
    let t = c.metadata_topics(Some(&["keep"]), false);
    assert_eq!(t[0].1, 0);
    assert_eq!(t[0].2, id, "topic id survives restart");
    assert_eq!(t[0].3, 2);
    let body = c.metadata_body(12, None, false);
    assert_eq!(
        decode!(MetadataResponse, &body, 12)
            .cluster_id
            .map(str::to_string),
        cluster
    );
    let f = c.fetch(&FetchArgs::new("keep", 0));
    assert_eq!(f.high_watermark, 150);
    let mut offset = 0;
    while offset < 150 {
        let f = c.fetch(&FetchArgs::new("keep", offset));
        let (bs, _) = split_batches(f.records.as_deref().unwrap());
        assert!(!bs.is_empty());
        for bt in bs {
            assert_eq!(bt.base_offset, offset);
            assert_same_batch(&bt.bytes, &sent);
            offset = bt.last_offset + 1;
        }
    }
    assert_eq!(c.produce("keep", 0, &sent), (0, 150), "offsets continue");
    assert_eq!(c.produce("keep", 1, &sent), (0, 5));
    assert_eq!(c.list_offset(9, "keep", 0, -2).2, 0);
    // A topic with the same name cannot be created again.
    assert_eq!(c.create_topics(7, &[("keep", 1, 1)], false)[0].error, 36);
}

// ---------------------------------------------------------------- Framing and ordering

#[test]
fn pipelined_requests_are_answered_in_order_even_behind_a_parked_fetch() {
    let b = TestBroker::start("pipeline");
    let mut c = b.client();
    c.create_topic("pipe", 1);
    // A long-poll fetch, then ApiVersions and Metadata on the same connection without reading.
    let t0 = Instant::now();
    let f = c
        .send(FETCH, 12, |w| fetch_body(w, "pipe", 0, 300))
        .unwrap();
    let req = ApiVersionsRequest::default();
    let a = c.send(API_VERSIONS, 4, |w| req.encode(w, 4)).unwrap();
    let m = c
        .send(METADATA, 12, |w| {
            use minikafka::protocol::messages::metadata_request::MetadataRequest;
            MetadataRequest::default().encode(w, 12)
        })
        .unwrap();
    c.read_response(FETCH, 12, f).expect("fetch first");
    assert!(t0.elapsed() >= Duration::from_millis(250));
    c.read_response(API_VERSIONS, 4, a)
        .expect("then ApiVersions");
    c.read_response(METADATA, 12, m).expect("then Metadata");

    // Many small requests in one write.
    let mut all = Vec::new();
    let mut corrs = Vec::new();
    for i in 0..50 {
        let corr = 1000 + i;
        let v = (i % 5) as i16;
        all.extend(c.frame(API_VERSIONS, v, corr, |w| req.encode(w, v)));
        corrs.push(corr);
    }
    c.send_raw(&all).unwrap();
    for (i, corr) in corrs.into_iter().enumerate() {
        let v = (i % 5) as i16;
        let body = c.read_response(API_VERSIONS, v, corr).unwrap();
        assert_eq!(decode!(ApiVersionsResponse, &body, v).error_code, 0);
    }
}

#[test]
fn a_request_sent_byte_by_byte_is_reassembled() {
    let b = TestBroker::start("bytewise");
    let mut c = b.client();
    let req = ApiVersionsRequest {
        client_software_name: "slow",
        client_software_version: "1",
    };
    let frame = c.frame(API_VERSIONS, 4, 77, |w| req.encode(w, 4));
    for byte in &frame {
        c.send_raw(std::slice::from_ref(byte)).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let body = c.read_response(API_VERSIONS, 4, 77).unwrap();
    assert_eq!(decode!(ApiVersionsResponse, &body, 4).error_code, 0);
    // Null client id (header v1 with length -1).
    c.client_id = None;
    let body = api_versions_body(&mut c, 2);
    assert_eq!(decode!(ApiVersionsResponse, &body, 2).error_code, 0);
}

#[test]
fn frames_above_socket_request_max_bytes_close_the_connection() {
    let b = TestBroker::start_with("maxreq", |c| c.socket_request_max_bytes = 4096);
    let mut c = b.client();
    c.create_topic("cap", 1);
    let bt = big_batch(8000);
    let big = c.frame(PRODUCE, 9, 5, |w| {
        use minikafka::protocol::messages::produce_request::*;
        ProduceRequest {
            acks: 1,
            timeout_ms: 1000,
            topic_data: vec![TopicProduceData {
                name: "cap",
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(&bt),
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
        .encode(w, 9)
    });
    assert!(closes(&b, &big));
    // Just the size prefix is enough to refuse it.
    assert!(closes(&b, &5000i32.to_be_bytes()));
    // Others are fine.
    assert_eq!(c.produce("cap", 0, &batch(1, "small")), (0, 0));
}

#[test]
fn shutdown_with_a_parked_fetch_does_not_hang() {
    let b = TestBroker::start("park-shutdown");
    let mut c = b.client();
    c.create_topic("p", 1);
    c.send(FETCH, 12, |w| fetch_body(w, "p", 0, 30_000))
        .unwrap();
    c.wait_until_read(); // parked
    let t0 = Instant::now();
    drop(b);
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        t0.elapsed()
    );
}

// ---------------------------------------------------------------- More Produce / Fetch

#[test]
fn several_batches_in_one_produce_and_compressed_batches() {
    let b = TestBroker::start("multi");
    let mut c = b.client();
    c.create_topic("m", 1);
    let b1 = batch(2, "x");
    let b2 = batch(3, "y");
    // Kafka: "Produce requests with version 3+ must contain exactly one record batch per
    // partition" (INVALID_RECORD), and nothing of it is stored.
    let both = [b1.clone(), b2.clone()].concat();
    assert_eq!(c.produce("m", 0, &both).0, 87);
    assert_eq!(c.produce("m", 0, &b1), (0, 0));
    assert_eq!(c.produce("m", 0, &b2), (0, 2));
    let mut gz = minikafka::records::BatchBuilder::new(0, 1_700_000_000_000)
        .compression(minikafka::records::Compression::Gzip);
    for i in 0..10 {
        gz.push(
            None,
            1_700_000_000_000,
            None,
            Some(format!("z{i}").as_bytes()),
            &[],
        );
    }
    let gz = gz.finish();
    assert_eq!(c.produce("m", 0, &gz), (0, 5));
    assert_eq!(c.produce("m", 0, &b1), (0, 15));
    let f = c.fetch(&FetchArgs::new("m", 0));
    assert_eq!(f.high_watermark, 17);
    let (bs, _) = split_batches(f.records.as_deref().unwrap());
    let offs: Vec<_> = bs.iter().map(|b| (b.base_offset, b.last_offset)).collect();
    assert_eq!(offs, vec![(0, 1), (2, 4), (5, 14), (15, 16)]);
    assert_same_batch(&bs[1].bytes, &b2);
    assert_same_batch(&bs[2].bytes, &gz);
}

#[test]
fn fetch_of_several_partitions_respects_the_response_max_bytes() {
    let b = TestBroker::start("multi-part");
    let mut c = b.client();
    c.create_topic("mp", 3);
    let one = big_batch(1000);
    for p in 0..3 {
        for _ in 0..2 {
            assert_eq!(c.produce("mp", p, &one).0, 0);
        }
    }
    use minikafka::protocol::messages::fetch_request::*;
    use minikafka::protocol::messages::fetch_response::FetchResponse;
    let fetch = |c: &mut Client, max_bytes: i32, pmax: i32| -> Vec<(i32, i16, usize)> {
        let req = FetchRequest {
            max_bytes,
            topics: vec![FetchTopic {
                topic: "mp",
                topic_id: [0; 16],
                partitions: (0..3)
                    .map(|p| FetchPartition {
                        partition: p,
                        fetch_offset: 0,
                        partition_max_bytes: pmax,
                        ..Default::default()
                    })
                    .collect(),
            }],
            ..Default::default()
        };
        let body = c.call(FETCH, 12, |w| req.encode(w, 12));
        let r = decode!(FetchResponse, &body, 12);
        r.responses[0]
            .partitions
            .iter()
            .map(|p| {
                (
                    p.partition_index,
                    p.error_code,
                    p.records.map(|r| r.len()).unwrap_or(0),
                )
            })
            .collect()
    };
    let n = one.len();
    // Plenty of room: each partition gives both its batches.
    let all = fetch(&mut c, 1 << 20, 1 << 20);
    assert_eq!(all, vec![(0, 0, 2 * n), (1, 0, 2 * n), (2, 0, 2 * n)]);
    // Partition limit of one batch each.
    let per = fetch(&mut c, 1 << 20, n as i32);
    assert_eq!(per, vec![(0, 0, n), (1, 0, n), (2, 0, n)]);
    // Response limit of 1 byte: the first partition still gets one batch, the others nothing.
    let tiny = fetch(&mut c, 1, 1 << 20);
    assert_eq!(tiny[0], (0, 0, n), "{tiny:?}");
    let rest: usize = tiny[1..].iter().map(|p| p.2).sum();
    assert_eq!(rest, 0, "{tiny:?}");
    // Response limit of three batches: at most that many bytes in total.
    let three = fetch(&mut c, 3 * n as i32, 1 << 20);
    let total: usize = three.iter().map(|p| p.2).sum();
    assert_eq!(total, 3 * n, "{three:?}");
}

#[test]
fn fetch_min_bytes_waits_for_enough_data() {
    let b = TestBroker::start("minbytes");
    let mut c = b.client();
    c.create_topic("mb", 1);
    let small = batch(1, "s");
    assert_eq!(c.produce("mb", 0, &small).0, 0);
    // Less than min_bytes available: wait out max_wait, then answer with what there is.
    let t0 = Instant::now();
    let f = c.fetch(&FetchArgs {
        max_wait_ms: 300,
        min_bytes: 100_000,
        ..FetchArgs::new("mb", 0)
    });
    let ms = t0.elapsed().as_millis();
    assert!((250..1500).contains(&ms), "answered after {ms} ms");
    assert_eq!(f.records.as_deref().map(|r| r.len()), Some(small.len()));
    // Enough available: at once.
    let t0 = Instant::now();
    let f = c.fetch(&FetchArgs {
        max_wait_ms: 5000,
        min_bytes: 1,
        ..FetchArgs::new("mb", 0)
    });
    assert!(t0.elapsed() < Duration::from_millis(500));
    assert_eq!(f.records.as_deref().map(|r| r.len()), Some(small.len()));
}

#[test]
fn produce_with_null_or_empty_records() {
    let b = TestBroker::start("nullrec");
    let mut c = b.client();
    c.create_topic("n", 1);
    use minikafka::protocol::messages::produce_request::*;
    use minikafka::protocol::messages::produce_response::ProduceResponse;
    for records in [None, Some(&[][..])] {
        let req = ProduceRequest {
            acks: 1,
            timeout_ms: 1000,
            topic_data: vec![TopicProduceData {
                name: "n",
                partition_data: vec![PartitionProduceData { index: 0, records }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let body = c.call(PRODUCE, 9, |w| req.encode(w, 9));
        let r = decode!(ProduceResponse, &body, 9);
        let e = r.responses[0].partition_responses[0].error_code;
        assert_ne!(e, 0, "records {records:?} accepted");
    }
    assert_eq!(c.produce("n", 0, &batch(1, "after")), (0, 0));
}

// ---------------------------------------------------------------- More CreateTopics

#[test]
fn create_topics_duplicates_configs_and_assignments() {
    let b = TestBroker::start("create2");
    let mut c = b.client();
    use minikafka::protocol::messages::create_topics_request::*;
    use minikafka::protocol::messages::create_topics_response::CreateTopicsResponse;
    let mut call = |topics: Vec<CreatableTopic<'_>>| -> Vec<(String, i16, i32)> {
        let req = CreateTopicsRequest {
            topics,
            timeout_ms: 1000,
            validate_only: false,
        };
        let body = c.call(CREATE_TOPICS, 7, |w| req.encode(w, 7));
        let r = decode!(CreateTopicsResponse, &body, 7);
        r.topics
            .iter()
            .map(|t| (t.name.to_string(), t.error_code, t.num_partitions))
            .collect()
    };
    let plain = |name| CreatableTopic {
        name,
        num_partitions: 1,
        replication_factor: 1,
        ..Default::default()
    };
    // The same name twice in one request: INVALID_REQUEST for it (42).
    let r = call(vec![plain("dup"), plain("dup"), plain("single")]);
    assert!(
        r.iter().filter(|t| t.0 == "dup").all(|t| t.1 == 42),
        "{r:?}"
    );
    assert!(r.iter().any(|t| t.0 == "single" && t.1 == 0), "{r:?}");

    // A valid topic config, an unknown one, a bad value.
    let with = |name, key, value| CreatableTopic {
        configs: vec![CreatableTopicConfig {
            name: key,
            value: Some(value),
        }],
        ..plain(name)
    };
    assert_eq!(call(vec![with("cfg-ok", "retention.ms", "1000")])[0].1, 0);
    assert_eq!(call(vec![with("cfg-unk", "no.such.config", "1")])[0].1, 40);

    // Manual assignment on this broker (node id 1 by default).
    let assigned = CreatableTopic {
        name: "assigned",
        num_partitions: -1,
        replication_factor: -1,
        assignments: (0..2)
            .map(|i| CreatableReplicaAssignment {
                partition_index: i,
                broker_ids: vec![b.config.node_id],
            })
            .collect(),
        configs: vec![],
    };
    let r = call(vec![assigned]);
    assert_eq!((r[0].1, r[0].2), (0, 2), "{r:?}");
    // To a broker that does not exist: INVALID_REPLICA_ASSIGNMENT (39).
    let nowhere = CreatableTopic {
        name: "nowhere",
        num_partitions: -1,
        replication_factor: -1,
        assignments: vec![CreatableReplicaAssignment {
            partition_index: 0,
            broker_ids: vec![b.config.node_id + 41],
        }],
        configs: vec![],
    };
    assert_eq!(call(vec![nowhere])[0].1, 39);

    let names: Vec<String> = c
        .metadata_topics(None, false)
        .into_iter()
        .map(|t| t.0)
        .collect();
    for n in ["dup", "cfg-unk", "nowhere"] {
        assert!(!names.iter().any(|x| x == n), "{n} was created: {names:?}");
    }
}

#[test]

fn create_topics_rejects_bad_config_values() {
    let b = TestBroker::start("create-cfg");
    let mut c = b.client();
    use minikafka::protocol::messages::create_topics_request::*;
    use minikafka::protocol::messages::create_topics_response::CreateTopicsResponse;
    let cases: &[(&str, &str, Option<&str>, i16)] = &[
        ("c1", "retention.ms", Some("soon"), 40),
        ("c2", "cleanup.policy", Some("bogus"), 40),
        ("c3", "segment.bytes", Some("-5"), 40),
        ("c4", "min.cleanable.dirty.ratio", Some("2.5"), 40),
        ("c5", "message.timestamp.type", Some("Sometime"), 40),
        // Kafka: "Null value not supported for topic configs" (INVALID_REQUEST).
        ("c6", "retention.ms", None, 42),
    ];
    let mut wrong = Vec::new();
    for &(name, key, value, want) in cases {
        let req = CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name,
                num_partitions: 1,
                replication_factor: 1,
                configs: vec![CreatableTopicConfig { name: key, value }],
                ..Default::default()
            }],
            timeout_ms: 1000,
            validate_only: false,
        };
        let body = c.call(CREATE_TOPICS, 7, |w| req.encode(w, 7));
        let r = decode!(CreateTopicsResponse, &body, 7);
        if r.topics[0].error_code != want {
            wrong.push(format!(
                "{key}={value:?}: {} (want {want})",
                r.topics[0].error_code
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    let t = c.metadata_topics(None, false);
    assert!(t.is_empty(), "created: {t:?}");
}

// ---------------------------------------------------------------- Every advertised version

#[test]
fn every_advertised_version_works() {
    let b = TestBroker::start("versions");
    let mut c = b.client();
    let id = c.create_topic("ev", 1);
    for v in 3..=13 {
        let (e, off, _) = c.produce_to(v, "ev", id, 0, &batch(1, "v"), 1);
        assert_eq!((e, off), (0, (v - 3) as i64), "Produce v{v}");
    }
    for v in 4..=18 {
        let f = c.fetch(&FetchArgs {
            version: v,
            topic_id: id,
            ..FetchArgs::new("ev", 0)
        });
        assert_eq!((f.error, f.high_watermark), (0, 11), "Fetch v{v}");
        assert_eq!(split_batches(f.records.as_deref().unwrap()).0.len(), 11);
    }
    for v in 1..=9 {
        assert_eq!(
            c.list_offset(v, "ev", 0, -1),
            (0, -1, 11),
            "ListOffsets v{v}"
        );
    }
    for v in 0..=13 {
        let body = c.metadata_body(v, Some(&["ev"]), false);
        let m = decode!(MetadataResponse, &body, v);
        assert_eq!(m.topics.len(), 1, "Metadata v{v}");
        assert_eq!(m.topics[0].error_code, 0, "Metadata v{v}");
        assert_eq!(m.topics[0].partitions.len(), 1, "Metadata v{v}");
    }
    for v in 2..=7 {
        let name = format!("ct{v}");
        let r = c.create_topics(v, &[(&name, 1, 1)], false);
        assert_eq!(r[0].error, 0, "CreateTopics v{v}");
    }
}

// ---------------------------------------------------------------- Record validation

#[test]
fn produce_validation_acks_timestamps_and_batch_fields() {
    let b = TestBroker::start("validate");
    let mut c = b.client();
    c.create_topic("val", 1);
    // acks other than -1, 0, 1: INVALID_REQUIRED_ACKS (21).
    let (e, _, _) = c.produce_to(9, "val", [0; 16], 0, &batch(1, "a"), 2);
    assert_eq!(e, 21);
    // A client's base offset is ignored: the broker assigns offsets.
    let mut b1 = batch(2, "b");
    b1[..8].copy_from_slice(&1234i64.to_be_bytes());
    assert_eq!(c.produce("val", 0, &b1), (0, 0));
    // A record count that does not match the records: CORRUPT_MESSAGE.
    let mut b2 = batch(2, "c");
    b2[57..61].copy_from_slice(&3i32.to_be_bytes());
    let crc = crc32c::crc32c(&b2[21..]);
    b2[17..21].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(c.produce("val", 0, &b2).0, 2);
    assert_eq!(c.fetch(&FetchArgs::new("val", 0)).high_watermark, 2);
}

#[test]

fn produce_rejects_timestamps_too_far_in_the_future() {
    // Kafka 4: message.timestamp.after.max.ms defaults to one hour (INVALID_TIMESTAMP 32).
    let b = TestBroker::start("future");
    let mut c = b.client();
    c.create_topic("fut", 1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert_eq!(c.produce("fut", 0, &batch_at(1, "n", now)).0, 0);
    assert_eq!(
        c.produce("fut", 0, &batch_at(1, "f", now + 3 * 3_600_000))
            .0,
        32
    );
}

#[test]
fn log_append_time_topics_stamp_batches() {
    let b = TestBroker::start("lat");
    let mut c = b.client();
    use minikafka::protocol::messages::create_topics_request::*;
    let req = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: "lat",
            num_partitions: 1,
            replication_factor: 1,
            configs: vec![CreatableTopicConfig {
                name: "message.timestamp.type",
                value: Some("LogAppendTime"),
            }],
            ..Default::default()
        }],
        timeout_ms: 1000,
        validate_only: false,
    };
    c.call(CREATE_TOPICS, 7, |w| req.encode(w, 7));
    use minikafka::protocol::messages::produce_request::*;
    use minikafka::protocol::messages::produce_response::ProduceResponse;
    let records = batch_at(2, "l", 1000);
    let req = ProduceRequest {
        acks: 1,
        timeout_ms: 1000,
        topic_data: vec![TopicProduceData {
            name: "lat",
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(&records),
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let body = c.call(PRODUCE, 9, |w| req.encode(w, 9));
    let r = decode!(ProduceResponse, &body, 9);
    let p = &r.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 0);
    assert!(p.log_append_time_ms >= before - 1000, "{p:?}");
    let f = c.fetch(&FetchArgs::new("lat", 0));
    let (bs, _) = split_batches(f.records.as_deref().unwrap());
    let bt = &bs[0].bytes;
    let attrs = i16::from_be_bytes([bt[21], bt[22]]);
    assert_ne!(attrs & 0x08, 0, "timestamp type bit");
    let max_ts = i64::from_be_bytes(bt[35..43].try_into().unwrap());
    assert_eq!(max_ts, p.log_append_time_ms);
    // Both records carry the append time; MAX_TIMESTAMP gives the first of them (KIP-734,
    // KAFKA-16310).
    let (_, ts, off) = c.list_offset(9, "lat", 0, -3);
    assert_eq!((ts, off), (p.log_append_time_ms, 0));
}

#[test]
fn pipelined_produces_are_answered_in_order_with_increasing_offsets() {
    let b = TestBroker::start("pipe-produce");
    let mut c = b.client();
    c.create_topic("pp", 2);
    use minikafka::protocol::messages::produce_request::*;
    use minikafka::protocol::messages::produce_response::ProduceResponse;
    let records = batch(3, "p");
    let mut all = Vec::new();
    for i in 0..40 {
        let req = ProduceRequest {
            acks: if i % 7 == 3 { -1 } else { 1 },
            timeout_ms: 1000,
            topic_data: vec![TopicProduceData {
                name: "pp",
                partition_data: vec![PartitionProduceData {
                    index: i % 2,
                    records: Some(&records),
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        all.extend(c.frame(PRODUCE, 9, 500 + i, |w| req.encode(w, 9)));
        // An interleaved metadata request.
        if i % 10 == 0 {
            all.extend(c.frame(API_VERSIONS, 0, 10_000 + i, |_| {}));
        }
    }
    c.send_raw(&all).unwrap();
    for i in 0..40 {
        let body = c.read_response(PRODUCE, 9, 500 + i).unwrap();
        let r = decode!(ProduceResponse, &body, 9);
        let p = &r.responses[0].partition_responses[0];
        assert_eq!(
            (p.index, p.error_code, p.base_offset),
            (i % 2, 0, (i / 2 * 3) as i64)
        );
        if i % 10 == 0 {
            c.read_response(API_VERSIONS, 0, 10_000 + i).unwrap();
        }
    }
}

#[test]
fn restart_keeps_topic_configs() {
    let mut b = TestBroker::start("restart-cfg");
    let mut c = b.client();
    use minikafka::protocol::messages::create_topics_request::*;
    let req = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: "small-seg",
            num_partitions: 1,
            replication_factor: 1,
            configs: vec![CreatableTopicConfig {
                name: "segment.bytes",
                value: Some("1048576"), // Kafka 4 minimum
            }],
            ..Default::default()
        }],
        timeout_ms: 1000,
        validate_only: false,
    };
    c.call(CREATE_TOPICS, 7, |w| req.encode(w, 7));
    for _ in 0..10 {
        assert_eq!(c.produce("small-seg", 0, &big_batch(300_000)).0, 0);
    }
    let before = log_files(b.dir.path(), "small-seg-0");
    assert!(
        before >= 3,
        "topic segment.bytes ignored: {before} segments"
    );
    drop(c);
    b.restart();
    let mut c = b.client();
    for _ in 0..10 {
        assert_eq!(c.produce("small-seg", 0, &big_batch(300_000)).0, 0);
    }
    let after = log_files(b.dir.path(), "small-seg-0");
    assert!(
        after >= before + 3,
        "segment.bytes lost on restart: {before} -> {after}"
    );
}

/// An idempotent producer: InitProducerId hands out distinct ids; a retried batch is answered
/// with its original offset and stored once; a sequence gap and a stale epoch are refused.
#[test]
fn idempotent_producer_retries_are_stored_once() {
    use minikafka::protocol::messages::init_producer_id_request::InitProducerIdRequest;
    use minikafka::protocol::messages::init_producer_id_response::InitProducerIdResponse;
    use minikafka::records::BatchBuilder;
    let b = TestBroker::start("idempotence");
    let mut c = b.client();
    c.create_topic("idem", 1);
    let init = |c: &mut Client| {
        let body = c.call(INIT_PRODUCER_ID, 4, |w| {
            InitProducerIdRequest::default().encode(w, 4)
        });
        let r = decode!(InitProducerIdResponse, &body, 4);
        assert_eq!(r.error_code, 0);
        assert_eq!(r.producer_epoch, 0);
        r.producer_id
    };
    let pid = init(&mut c);
    assert_ne!(init(&mut c), pid, "producer ids are never reused");
    let batch = |epoch: i16, seq: i32, n: usize| {
        let mut bb = BatchBuilder::new(0, 1_700_000_000_000).producer(pid, epoch, seq);
        for i in 0..n {
            bb.push(
                None,
                1_700_000_000_000,
                None,
                Some(format!("v{i}").as_bytes()),
                &[],
            );
        }
        bb.finish()
    };
    assert_eq!(c.produce("idem", 0, &batch(0, 0, 3)), (0, 0));
    assert_eq!(c.produce("idem", 0, &batch(0, 3, 2)), (0, 3));
    // The same batch again (a retry): the original offset, nothing appended.
    assert_eq!(c.produce("idem", 0, &batch(0, 3, 2)), (0, 3));
    assert_eq!(c.produce("idem", 0, &batch(0, 0, 3)), (0, 0));
    assert_eq!(c.list_offset(7, "idem", 0, -1).2, 5);
    // A gap in the sequence.
    assert_eq!(c.produce("idem", 0, &batch(0, 9, 1)).0, 45);
    // A new epoch starts at 0; the old epoch is then fenced.
    assert_eq!(c.produce("idem", 0, &batch(1, 0, 1)), (0, 5));
    assert_eq!(c.produce("idem", 0, &batch(0, 5, 1)).0, 47);
    assert_eq!(c.list_offset(7, "idem", 0, -1).2, 6);
}

/// acks=-1 is refused with NOT_ENOUGH_REPLICAS when the ISR (this broker alone) is smaller
/// than `min.insync.replicas`; acks=1 still succeeds.
#[test]
fn acks_all_respects_min_insync_replicas() {
    use minikafka::protocol::messages::create_topics_request::*;
    let b = TestBroker::start("min-isr");
    let mut c = b.client();
    let req = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: "strict",
            num_partitions: 1,
            replication_factor: 1,
            configs: vec![CreatableTopicConfig {
                name: "min.insync.replicas",
                value: Some("2"),
            }],
            ..Default::default()
        }],
        timeout_ms: 1000,
        validate_only: false,
    };
    c.call(CREATE_TOPICS, 7, |w| req.encode(w, 7));
    let (e, _, _) = c.produce_to(9, "strict", [0; 16], 0, &batch(1, "x"), -1);
    assert_eq!(e, 19);
    let (e, off, _) = c.produce_to(9, "strict", [0; 16], 0, &batch(1, "x"), 1);
    assert_eq!((e, off), (0, 0));
}
