use super::*;
use crate::metadata::records::register_broker_record::BrokerEndpoint;
use crate::metadata::{uuid_to_string, FeatureLevelRecord, RegisterBrokerRecord, TopicRecord};
use crate::records::BatchBuilder;

use crate::test_util::TempDir;

fn value(rec: &MetadataRecord<'_>) -> Vec<u8> {
    let mut v = Vec::new();
    rec.encode(&mut v);
    v
}

fn batch(base: i64, recs: &[Vec<u8>]) -> Vec<u8> {
    let mut b = BatchBuilder::new(base, 1_700_000_000_000).partition_leader_epoch(1);
    for v in recs {
        b.push(None, 1_700_000_000_000, None, Some(v), &[]);
    }
    b.finish()
}

fn partition(topic: TopicId, p: i32) -> MetadataRecord<'static> {
    MetadataRecord::Partition(PartitionRecord {
        partition_id: p,
        topic_id: topic,
        replicas: vec![1],
        isr: vec![1],
        removing_replicas: vec![],
        adding_replicas: vec![],
        leader: 1,
        leader_recovery_state: 0,
        leader_epoch: 0,
        partition_epoch: 0,
        directories: vec![[7; 16]],
        eligible_leader_replicas: None,
        last_known_elr: None,
    })
}

fn topic(name: &str, id: u8) -> MetadataRecord<'_> {
    MetadataRecord::Topic(TopicRecord {
        name,
        topic_id: [id; 16],
    })
}

fn seg_path(dir: &Path) -> PathBuf {
    dir.join(METADATA_DIR).join("00000000000000000000.log")
}

#[test]
fn a_fresh_dir_is_an_empty_cluster_with_new_meta_properties() {
    let d = TempDir::new("fresh");
    let s = MetadataStore::open(&d.0, 1, 0).unwrap();
    assert_eq!(s.image().topics().count(), 0);
    assert_eq!(s.cluster_id().len(), 22);
    assert!(
        !d.0.join(METADATA_DIR).exists(),
        "nothing written until a change"
    );
    let text = fs::read_to_string(d.0.join("meta.properties")).unwrap();
    let p = parse_properties(&text);
    assert_eq!(p.get("version"), Some("1"));
    assert_eq!(p.get("node.id"), Some("1"));
    assert_eq!(p.get("cluster.id"), Some(s.cluster_id()));
    assert_eq!(
        p.get("directory.id"),
        Some(uuid_to_string(s.directory_id()).as_str())
    );
    // Reopening keeps the cluster id.
    let cid = s.cluster_id().to_string();
    drop(s);
    assert_eq!(MetadataStore::open(&d.0, 1, 0).unwrap().cluster_id(), cid);
}

#[test]
fn kafka_meta_properties_are_read() {
    let d = TempDir::new("props");
    fs::write(
        d.0.join("meta.properties"),
        "#\n#Tue Jan 02 10:00:00 UTC 2024\nnode.id=1\ndirectory.id=AAAAAAAAAAAAAAAAAAAAAQ\n\
         version=1\ncluster.id=MkU3OEVBNTcwNTJENDM2Qg\n",
    )
    .unwrap();
    let s = MetadataStore::open(&d.0, 1, 0).unwrap();
    assert_eq!(s.cluster_id(), "MkU3OEVBNTcwNTJENDM2Qg");
    assert_eq!(*s.directory_id(), crate::metadata::METADATA_TOPIC_ID);
    // A different configured node id is a warning, not a failure.
    assert!(MetadataStore::open(&d.0, 2, 0).is_ok());
    // The CodeCrafters harness writes directory.id in standard base64 with padding.
    let harness = "#\n#Thu Jan 01 00:00:00 UTC 2026\ncluster.id=IAAAAAAAQACAAAAAAAAAAQ\n\
                   directory.id=EAAAAAAAQACAAAAAAAAAAQ==\nnode.id=1\nversion=1\n";
    fs::write(d.0.join("meta.properties"), harness).unwrap();
    let s = MetadataStore::open(&d.0, 1, 0).unwrap();
    assert_eq!(s.cluster_id(), "IAAAAAAAQACAAAAAAAAAAQ");
    assert_eq!(s.directory_id()[0], 0x10);
    assert_eq!(
        fs::read_to_string(d.0.join("meta.properties")).unwrap(),
        harness
    );
    // An unreadable directory.id is tolerated.
    fs::write(
        d.0.join("meta.properties"),
        "cluster.id=abc\ndirectory.id=?\n",
    )
    .unwrap();
    assert_eq!(MetadataStore::open(&d.0, 1, 0).unwrap().cluster_id(), "abc");
    fs::write(d.0.join("meta.properties"), "version=7\ncluster.id=x\n").unwrap();
    assert!(MetadataStore::open(&d.0, 1, 0).is_err());
}

#[test]
fn configured_cluster_id_is_used_for_a_new_dir() {
    let d = TempDir::new("cid");
    let s = MetadataStore::open_with(&d.0, 1, Some("abcdefghijklmnopqrstuv"), 0).unwrap();
    assert_eq!(s.cluster_id(), "abcdefghijklmnopqrstuv");
}

#[test]
fn created_topics_survive_a_restart() {
    let d = TempDir::new("restart");
    let mut s = MetadataStore::open(&d.0, 1, 0).unwrap();
    let cfg = vec![("cleanup.policy".to_string(), "compact".to_string())];
    let a = s.create_topic("alpha", 3, 1, &cfg, 1, 1000).unwrap();
    let b = s.create_topic("beta", 1, 1, &[], 1, 2000).unwrap();
    assert_eq!(a.partitions.len(), 3);
    assert_eq!(a.configs["cleanup.policy"], "compact");
    let p = &a.partitions[2];
    assert_eq!((p.partition, p.leader, p.leader_epoch), (2, 1, 0));
    assert_eq!((p.replicas.clone(), p.isr.clone()), (vec![1], vec![1]));
    assert_ne!(a.id, b.id);
    // metadata.version + topic + config + 3 partitions, then topic + partition.
    assert_eq!(s.next_offset(), 8);
    s.shutdown().unwrap();
    drop(s);

    let s = MetadataStore::open(&d.0, 1, 0).unwrap();
    let names: Vec<_> = s.image().topics().map(|t| t.name.clone()).collect();
    assert_eq!(names, vec!["alpha", "beta"]);
    assert_eq!(s.image().topic("alpha").unwrap(), &a);
    assert_eq!(s.image().topic_by_id(&b.id).unwrap().name, "beta");
    assert_eq!(s.image().feature("metadata.version"), Some(21));
    assert_eq!(s.next_offset(), 8);
    assert_eq!(s.replay_stats().batches, 2);
    assert_eq!(s.replay_stats().corrupt_tail_bytes, 0);
}

#[test]
fn create_topic_errors() {
    let d = TempDir::new("errors");
    let mut s = MetadataStore::open(&d.0, 1, 0).unwrap();
    s.create_topic("a.b", 1, 1, &[], 1, 0).unwrap();
    let cases: Vec<(Result<TopicInfo, MetadataError>, i16)> = vec![
        (s.create_topic("a.b", 1, 1, &[], 1, 0), 36),
        (s.create_topic("a_b", 1, 1, &[], 1, 0), 17),
        (s.create_topic("bad name", 1, 1, &[], 1, 0), 17),
        (s.create_topic("", 1, 1, &[], 1, 0), 17),
        (s.create_topic("x", 0, 1, &[], 1, 0), 37),
        (s.create_topic("x", MAX_PARTITIONS + 1, 1, &[], 1, 0), 37),
        (s.create_topic("x", 1, 0, &[], 1, 0), 38),
        (s.create_topic("x", 1, 3, &[], 1, 0), 38),
    ];
    for (r, code) in cases {
        assert_eq!(r.unwrap_err().error_code(), code);
    }
    assert_eq!(s.image().topics().count(), 1);
}

#[test]
fn delete_alter_grow_and_producer_ids_persist() {
    let d = TempDir::new("ops");
    let mut s = MetadataStore::open(&d.0, 1, 0).unwrap();
    s.create_topic("keep", 1, 1, &[], 1, 0).unwrap();
    s.create_topic("gone", 2, 1, &[("retention.ms".into(), "1".into())], 1, 0)
        .unwrap();
    s.delete_topic("gone", 1).unwrap();
    assert!(s.delete_topic("gone", 1).is_err());
    s.alter_topic_configs("keep", &[("segment.ms".into(), Some("100".into()))], 2)
        .unwrap();
    s.create_partitions("keep", 4, 1, 3).unwrap();
    assert!(s.create_partitions("keep", 2, 1, 3).is_err());
    assert_eq!(s.allocate_producer_ids(1000, 4).unwrap(), 0);
    assert_eq!(s.allocate_producer_ids(1000, 4).unwrap(), 1000);
    drop(s);
    let mut s = MetadataStore::open(&d.0, 1, 0).unwrap();
    assert!(s.image().topic("gone").is_none());
    let k = s.image().topic("keep").unwrap();
    assert_eq!(k.partitions.len(), 4);
    assert_eq!(k.configs["segment.ms"], "100");
    assert_eq!(s.allocate_producer_ids(1000, 5).unwrap(), 2000);
    // Re-creating a deleted name gets a fresh topic with no leftover configs.
    let g = s.create_topic("gone", 1, 1, &[], 1, 6).unwrap();
    assert!(g.configs.is_empty());
}

#[test]
fn replays_a_kafka_written_log_skipping_what_it_does_not_know() {
    let d = TempDir::new("kafka");
    let dir = d.0.join(METADATA_DIR);
    fs::create_dir_all(&dir).unwrap();
    let feature = value(&MetadataRecord::FeatureLevel(FeatureLevelRecord {
        name: "metadata.version",
        feature_level: 20,
    }));
    let broker = value(&MetadataRecord::RegisterBroker(RegisterBrokerRecord {
        broker_id: 1,
        is_migrating_zk_broker: false,
        incarnation_id: [3; 16],
        broker_epoch: 5,
        end_points: vec![BrokerEndpoint {
            name: "PLAINTEXT",
            host: "localhost",
            port: 9092,
            security_protocol: 0,
        }],
        features: vec![],
        rack: None,
        fenced: false,
        in_controlled_shutdown: false,
        log_dirs: vec![[7; 16]],
    }));
    // A type no schema has (a newer Kafka's) and a future frame version.
    let unknown = vec![0x01, 99, 0, 0x00];
    let future = vec![0x02, 2, 0, 0xAA];
    let mut log = Vec::new();
    // A control batch (as KRaft writes LeaderChange / KRaftVersion records) first.
    let mut ctl = BatchBuilder::new(0, 0).control(true);
    ctl.push(
        None,
        0,
        Some(&[0, 0, 0, 2]),
        Some(&[0, 0, 0, 0, 0, 0, 0, 0]),
        &[],
    );
    log.extend(ctl.finish());
    log.extend(batch(1, &[feature, broker]));
    log.extend(batch(
        3,
        &[
            value(&topic("foo", 1)),
            value(&partition([1; 16], 0)),
            unknown,
            future,
            value(&partition([1; 16], 1)),
            value(&topic("bar", 2)),
            value(&partition([2; 16], 0)),
        ],
    ));
    fs::write(seg_path(&d.0), &log).unwrap();

    let mut s = MetadataStore::open(&d.0, 1, 0).unwrap();
    let img = s.image();
    assert_eq!(img.feature("metadata.version"), Some(20));
    assert_eq!(img.brokers()[&1].endpoints[0].port, 9092);
    let names: Vec<_> = img.topics().map(|t| t.name.as_str()).collect();
    assert_eq!(names, vec!["bar", "foo"]);
    assert_eq!(img.topic("foo").unwrap().partitions.len(), 2);
    assert_eq!(
        img.topic("foo").unwrap().partitions[1].directories,
        vec![[7; 16]]
    );
    assert_eq!(s.replay_stats().skipped_records, 2);
    assert_eq!(s.next_offset(), 10);
    // Our append continues the log; no second metadata.version is written.
    s.create_topic("baz", 1, 1, &[], 1, 0).unwrap();
    assert_eq!(s.next_offset(), 12);
    drop(s);
    let s = MetadataStore::open(&d.0, 1, 0).unwrap();
    assert_eq!(s.image().topics().count(), 3);
    assert_eq!(s.image().feature("metadata.version"), Some(20));
}

#[test]
fn a_corrupt_tail_is_dropped_and_the_rest_kept() {
    for damage in ["flip", "torn", "zeros"] {
        let d = TempDir::new("corrupt");
        let mut s = MetadataStore::open(&d.0, 1, 0).unwrap();
        s.create_topic("first", 1, 1, &[], 1, 0).unwrap();
        s.create_topic("second", 1, 1, &[], 1, 0).unwrap();
        drop(s);
        let path = seg_path(&d.0);
        let mut bytes = fs::read(&path).unwrap();
        match damage {
            "flip" => {
                let n = bytes.len();
                bytes[n - 3] ^= 0xff;
            }
            "torn" => bytes.truncate(bytes.len() - 5),
            _ => bytes.extend_from_slice(&[0; 100]),
        }
        fs::write(&path, &bytes).unwrap();

        let mut s = MetadataStore::open(&d.0, 1, 0).unwrap();
        assert!(s.image().topic("first").is_some(), "{damage}");
        let expect_second = damage == "zeros";
        assert_eq!(
            s.image().topic("second").is_some(),
            expect_second,
            "{damage}"
        );
        assert!(s.replay_stats().corrupt_tail_bytes > 0, "{damage}");
        // Nothing is rewritten by opening.
        assert_eq!(fs::read(&path).unwrap(), bytes);
        s.create_topic("third", 1, 1, &[], 1, 0).unwrap();
        drop(s);
        let s = MetadataStore::open(&d.0, 1, 0).unwrap();
        assert!(s.image().topic("third").is_some(), "{damage}");
        assert_eq!(
            s.image().topic("second").is_some(),
            expect_second,
            "{damage}"
        );
        assert_eq!(s.replay_stats().corrupt_tail_bytes, 0, "{damage}");
        if !expect_second {
            // metadata.version + first (2 records), then third (2 records).
            assert_eq!(s.next_offset(), 3 + 2, "{damage}");
        }
    }
}

#[test]
fn snapshot_then_log() {
    let d = TempDir::new("snap");
    let dir = d.0.join(METADATA_DIR);
    fs::create_dir_all(&dir).unwrap();
    let snap = batch(
        0,
        &[value(&topic("fromsnap", 1)), value(&partition([1; 16], 0))],
    );
    fs::write(dir.join("00000000000000000002-0000000001.checkpoint"), snap).unwrap();
    // The log holds the same two records again, then one more topic.
    let mut log = batch(
        0,
        &[value(&topic("fromsnap", 1)), value(&partition([1; 16], 0))],
    );
    log.extend(batch(2, &[value(&topic("fromlog", 2))]));
    fs::write(seg_path(&d.0), log).unwrap();
    let s = MetadataStore::open(&d.0, 1, 0).unwrap();
    assert!(s.replay_stats().snapshot);
    assert_eq!(s.image().topic("fromsnap").unwrap().partitions.len(), 1);
    assert!(s.image().topic("fromlog").is_some());
    assert_eq!(s.next_offset(), 3);
}

/// The exact files the CodeCrafters harness writes (shared fixture of the integration tests).
#[path = "../../tests/fixtures/kraft.rs"]
mod kraft;

#[test]
fn loads_the_codecrafters_harness_log_dir() {
    let d = TempDir::new("harness");
    let topics = vec![
        kraft::TopicSpec::new("saz", kraft::topic_uuid(0x91), vec![vec!["a"]]),
        kraft::TopicSpec::new("bar", kraft::topic_uuid(0x92), vec![vec![], vec!["b", "c"]]),
    ];
    kraft::write_log_dir(&d.0, &topics).unwrap();
    let before = fs::read(seg_path(&d.0)).unwrap();
    let mut s = MetadataStore::open(&d.0, 1, 0).unwrap();
    assert_eq!(s.cluster_id(), kraft::CLUSTER_ID);
    assert_eq!(*s.directory_id(), kraft::DIRECTORY_UUID);
    assert_eq!(s.image().feature("metadata.version"), Some(20));
    let names: Vec<_> = s.image().topics().map(|t| t.name.as_str()).collect();
    assert_eq!(names, vec!["bar", "saz"]);
    let bar = s.image().topic_by_id(&kraft::topic_uuid(0x92)).unwrap();
    assert_eq!(bar.partitions.len(), 2);
    assert_eq!(bar.partitions[1].leader, 1);
    assert_eq!(bar.partitions[1].directories, vec![kraft::DIRECTORY_UUID]);
    assert_eq!(s.replay_stats().skipped_records, 0);
    assert_eq!(s.next_offset(), 1 + 2 + 3);
    // Opening changes nothing on disk; creating a topic appends after the harness's batches.
    assert_eq!(fs::read(seg_path(&d.0)).unwrap(), before);
    s.create_topic("new", 1, 1, &[], 1, 0).unwrap();
    let after = fs::read(seg_path(&d.0)).unwrap();
    assert_eq!(&after[..before.len()], &before[..]);
    drop(s);
    let s = MetadataStore::open(&d.0, 1, 0).unwrap();
    assert_eq!(s.image().topics().count(), 3);
}

#[test]
fn a_failed_metadata_fsync_changes_nothing_and_takes_the_directory_offline() {
    use crate::log::faults::{self, Op};
    let d = TempDir::new("meta-fsync");
    let mut s = MetadataStore::open(d.path(), 1, 0).unwrap();
    s.create_topic("kept", 1, 1, &[], 1, 0).unwrap();
    {
        // A full disk: the change is refused, nothing else happens.
        let _full = faults::fail(d.path(), Op::Write, 28);
        let e = s.create_topic("full", 1, 1, &[], 1, 0).unwrap_err();
        assert_eq!(e.error_code(), 56, "{e}");
        assert!(s.image().topic("full").is_none());
    }
    s.create_topic("after-full", 1, 1, &[], 1, 0).unwrap();
    {
        let _bad = faults::fail(d.path(), Op::Sync, 5);
        let e = s.create_topic("lost", 1, 1, &[], 1, 0).unwrap_err();
        assert!(matches!(e, MetadataError::Offline), "{e}");
        assert_eq!(e.error_code(), 56);
    }
    assert!(s.image().topic("lost").is_none(), "not applied");
    // Offline for good: never retried after a failed fsync.
    assert!(matches!(
        s.create_topic("later", 1, 1, &[], 1, 0),
        Err(MetadataError::Offline)
    ));
    drop(s);
    let s = MetadataStore::open(d.path(), 1, 0).unwrap();
    assert!(s.image().topic("kept").is_some());
    assert!(s.image().topic("after-full").is_some());
    // The change whose fsync failed was never acknowledged; whether its bytes reached the
    // disk is the kernel's business, so a restart may find it, as Kafka's recovery would.
    assert!(
        s.image().topic("full").is_none(),
        "a refused write left nothing behind"
    );
}

#[test]
fn a_change_after_an_undecodable_batch_is_found_again() {
    // A batch whose CRC holds but whose records do not parse (it claims more records than it
    // has), far ahead in offsets: replay stops before it, so the next change must take its
    // place, not follow it (found by fuzzing the move onto the partition log).
    let d = TempDir::new("meta-undecodable");
    let dir = d.0.join(METADATA_DIR);
    fs::create_dir_all(&dir).unwrap();
    let mut log = batch(0, &[value(&topic("before", 1))]);
    let mut bad = batch(1, &[value(&topic("bad", 2))]);
    // last offset delta far ahead, record count above the records present; CRC fixed.
    bad[23..27].copy_from_slice(&1_000_000i32.to_be_bytes());
    bad[57..61].copy_from_slice(&5i32.to_be_bytes());
    let crc = crc32c::crc32c(&bad[21..]);
    bad[17..21].copy_from_slice(&crc.to_be_bytes());
    log.extend(bad);
    fs::write(seg_path(&d.0), &log).unwrap();

    let mut s = MetadataStore::open(&d.0, 1, 0).unwrap();
    assert!(s.image().topic("before").is_some());
    assert!(s.image().topic("bad").is_none());
    assert_eq!(
        s.next_offset(),
        1,
        "the next change takes the undecodable batch's place"
    );
    s.create_topic("after", 1, 1, &[], 1, 0).unwrap();
    drop(s);
    let s = MetadataStore::open(&d.0, 1, 0).unwrap();
    assert!(s.image().topic("before").is_some());
    assert!(
        s.image().topic("after").is_some(),
        "found again after a restart"
    );
}
