//! Seed corpora for the fuzz targets in `fuzz/` (test builds only).
//!
//! The generated sample of every request message (the values the round-trip tests use, which the
//! golden-bytes tests pin to Kafka's encoding) at every version, the CodeCrafters harness's
//! request frames, short request sequences through the broker, real record batches in every
//! codec, KRaft metadata logs (including the harness's own) and `__consumer_offsets` batches.
//! Each is written in the input format of its target (see `fuzz/src/lib.rs`).
//!
//! Regenerate (tools/fuzz.sh --seeds does this) with
//! `cargo test --lib fuzzing::write_seed_corpora -- --ignored`; `MINIKAFKA_FUZZ_SEEDS` overrides
//! the output directory (default `fuzz/seeds`).

#![allow(clippy::too_many_lines)]

#[allow(clippy::duplicate_mod)]
#[path = "../tests/fixtures/kraft.rs"]
mod kraft;

use crate::group::offsets::{CommittedOffset, OffsetStore};
use crate::group::{GroupSnapshot, MemberSnapshot};
use crate::metadata::records::{
    register_broker_record::BrokerEndpoint, ConfigRecord, FeatureLevelRecord, FenceBrokerRecord,
    MetadataRecord, NoOpRecord, PartitionChangeRecord, PartitionRecord, ProducerIdsRecord,
    RegisterBrokerRecord, RemoveTopicRecord, TopicRecord, UnfenceBrokerRecord,
};
use crate::protocol::apis::{self, APIS};
use crate::protocol::messages::*;
use crate::protocol::wire::Writer;
use crate::records::{compress, BatchBuilder, Compression};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The harness's fixed wall clock (`WALL_MS` in fuzz/src/lib.rs): batches are stamped near it.
const WALL_MS: i64 = 2_000_000_000_000;

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// The selector of the `__consumer_offsets` schemas in `request_decoders` (RECORD_SCHEMA_KEYS).
const RECORD_SCHEMA_KEYS: u8 = 200;

/// Seeds by target, by file name.
#[derive(Default)]
struct Seeds(BTreeMap<&'static str, BTreeMap<String, Vec<u8>>>);

impl Seeds {
    fn add(&mut self, target: &'static str, name: impl Into<String>, bytes: Vec<u8>) {
        self.0.entry(target).or_default().insert(name.into(), bytes);
    }

    fn write(&self, root: &Path) {
        for (target, files) in &self.0 {
            let dir = root.join(target);
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            for (name, bytes) in files {
                std::fs::write(dir.join(name), bytes).unwrap();
            }
        }
    }
}

/// The sample body of a request at `version`.
fn sample_request(key: i16, version: i16) -> Vec<u8> {
    let mut b = Vec::new();
    let w = &mut Writer::new(&mut b);
    macro_rules! samples {
        ($($m:ident),* $(,)?) => {
            match key {
                $(k if k == $m::API_KEY => $m::sample::$m().encode(w, version),)*
                k => panic!("no sample for api {k}"),
            }
        };
    }
    samples!(
        produce_request,
        fetch_request,
        list_offsets_request,
        metadata_request,
        offset_commit_request,
        offset_fetch_request,
        find_coordinator_request,
        join_group_request,
        heartbeat_request,
        leave_group_request,
        sync_group_request,
        describe_groups_request,
        list_groups_request,
        api_versions_request,
        create_topics_request,
        delete_topics_request,
        delete_records_request,
        init_producer_id_request,
        describe_configs_request,
        alter_configs_request,
        describe_log_dirs_request,
        elect_leaders_request,
        create_partitions_request,
        delete_groups_request,
        incremental_alter_configs_request,
        offset_delete_request,
        describe_cluster_request,
        describe_topic_partitions_request,
        add_partitions_to_txn_request,
        add_offsets_to_txn_request,
        end_txn_request,
        write_txn_markers_request,
        txn_offset_commit_request,
        describe_producers_request,
        describe_transactions_request,
        list_transactions_request,
        offset_for_leader_epoch_request,
        describe_quorum_request,
    );
    b
}

/// A whole request frame (no size prefix): header v1, or v2 for flexible versions.
fn frame(key: i16, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    let mut w = Writer::new(&mut f);
    w.i16(key);
    w.i16(version);
    w.i32(correlation_id);
    w.nullable_string(Some("fuzz-seed"));
    if apis::is_flexible(key, version) {
        w.uvarint(0);
    }
    f.extend_from_slice(body);
    f
}

/// A `broker_frame` chunk: control byte (connection, time step), u16 length, frame.
fn chunk(conn: u8, step: u8, frame: &[u8]) -> Vec<u8> {
    let mut v = vec![(conn & 1) | ((step & 7) << 1)];
    v.extend_from_slice(&(frame.len() as u16).to_be_bytes());
    v.extend_from_slice(frame);
    v
}

/// Builds `broker_frame` inputs: a sequence of requests on connection 0.
struct Script {
    bytes: Vec<u8>,
    corr: i32,
}

impl Script {
    fn new() -> Script {
        Script {
            bytes: Vec::new(),
            corr: 1,
        }
    }

    fn req(&mut self, key: i16, version: i16, encode: impl FnOnce(&mut Writer<'_>)) -> &mut Self {
        self.req_after(0, key, version, encode)
    }

    /// A request after time step `step` (an index into the harness's STEPS_MS).
    fn req_after(
        &mut self,
        step: u8,
        key: i16,
        version: i16,
        encode: impl FnOnce(&mut Writer<'_>),
    ) -> &mut Self {
        let mut body = Vec::new();
        encode(&mut Writer::new(&mut body));
        let f = frame(key, version, self.corr, &body);
        self.corr += 1;
        self.bytes.extend(chunk(0, step, &f));
        self
    }

    fn raw(&mut self, frame: &[u8]) -> &mut Self {
        self.bytes.extend(chunk(0, 0, frame));
        self
    }

    fn done(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }
}

/// A batch of `n` keyed records with a header, in `codec`.
fn batch(codec: Compression, n: usize, base_ts: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new(0, base_ts).compression(codec);
    for i in 0..n {
        let k = format!("key-{}", i % 3);
        let v = format!("value {i} {}", "v".repeat(i * 7));
        b.push(
            None,
            base_ts + i as i64,
            Some(k.as_bytes()),
            if i == n - 1 && n > 2 {
                None
            } else {
                Some(v.as_bytes())
            },
            &[("h", Some(b"1")), ("trace", None)],
        );
    }
    b.finish()
}

fn create_topics(w: &mut Writer<'_>, v: i16, name: &str, parts: i32, configs: &[(&str, &str)]) {
    use create_topics_request::*;
    CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name,
            num_partitions: parts,
            replication_factor: 1,
            configs: configs
                .iter()
                .map(|(k, val)| CreatableTopicConfig {
                    name: k,
                    value: Some(val),
                })
                .collect(),
            ..Default::default()
        }],
        timeout_ms: 1000,
        validate_only: false,
    }
    .encode(w, v)
}

fn produce(w: &mut Writer<'_>, v: i16, topic: &str, partition: i32, acks: i16, records: &[u8]) {
    use produce_request::*;
    ProduceRequest {
        transactional_id: None,
        acks,
        timeout_ms: 1000,
        topic_data: vec![TopicProduceData {
            name: topic,
            partition_data: vec![PartitionProduceData {
                index: partition,
                records: Some(records),
            }],
            ..Default::default()
        }],
    }
    .encode(w, v)
}

fn fetch(w: &mut Writer<'_>, v: i16, topic: &str, offset: i64, max_wait_ms: i32, min_bytes: i32) {
    use fetch_request::*;
    FetchRequest {
        replica_id: -1,
        max_wait_ms,
        min_bytes,
        max_bytes: 1 << 20,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic,
            partitions: (0..2)
                .map(|p| FetchPartition {
                    partition: p,
                    current_leader_epoch: -1,
                    fetch_offset: offset,
                    last_fetched_epoch: -1,
                    log_start_offset: -1,
                    partition_max_bytes: 1 << 20,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
    .encode(w, v)
}

fn list_offsets(w: &mut Writer<'_>, v: i16, topic: &str, timestamp: i64) {
    use list_offsets_request::*;
    ListOffsetsRequest {
        replica_id: -1,
        isolation_level: 0,
        topics: vec![ListOffsetsTopic {
            name: topic,
            partitions: vec![ListOffsetsPartition {
                partition_index: 0,
                current_leader_epoch: -1,
                timestamp,
            }],
        }],
    }
    .encode(w, v)
}

fn metadata(w: &mut Writer<'_>, v: i16, topics: Option<&[&str]>, auto_create: bool) {
    use metadata_request::*;
    MetadataRequest {
        topics: topics.map(|ts| {
            ts.iter()
                .map(|t| MetadataRequestTopic {
                    topic_id: [0; 16],
                    name: Some(t),
                })
                .collect()
        }),
        allow_auto_topic_creation: auto_create,
        ..Default::default()
    }
    .encode(w, v)
}

/// Request sequences through the broker: topics, data in every codec, groups, admin.
fn broker_scripts(seeds: &mut Seeds) {
    let t = "seed-topic";
    for (i, codec) in CODECS.iter().enumerate() {
        let records = batch(*codec, 5, WALL_MS - 1000);
        for (pv, fv) in [(3, 4), (9, 12), (11, 16)] {
            let s = Script::new()
                .req(apis::CREATE_TOPICS, 5, |w| create_topics(w, 5, t, 2, &[]))
                .req(apis::PRODUCE, pv, |w| produce(w, pv, t, 0, 1, &records))
                .req(apis::PRODUCE, pv, |w| produce(w, pv, t, 1, -1, &records))
                .req(apis::FETCH, fv, |w| fetch(w, fv, t, 0, 0, 1))
                .req(apis::LIST_OFFSETS, 7, |w| list_offsets(w, 7, t, -1))
                .req(apis::LIST_OFFSETS, 7, |w| {
                    list_offsets(w, 7, t, WALL_MS - 999)
                })
                .req(apis::METADATA, 12, |w| metadata(w, 12, Some(&[t]), false))
                .done();
            seeds.add("broker_frame", format!("produce-fetch-{i}-v{pv}"), s);
        }
    }
    // A long-poll fetch parked until a produce arrives from the other connection, then DeleteRecords.
    let records = batch(Compression::None, 3, WALL_MS - 1000);
    let mut s = Script::new();
    s.req(apis::CREATE_TOPICS, 7, |w| create_topics(w, 7, t, 2, &[]))
        .req(apis::FETCH, 12, |w| fetch(w, 12, t, 0, 5000, 1));
    let f = frame(apis::PRODUCE, 9, 99, &{
        let mut b = Vec::new();
        produce(&mut Writer::new(&mut b), 9, t, 0, 1, &records);
        b
    });
    s.bytes.extend(chunk(1, 2, &f));
    s.req(apis::DELETE_RECORDS, 2, |w| {
        use delete_records_request::*;
        DeleteRecordsRequest {
            topics: vec![DeleteRecordsTopic {
                name: t,
                partitions: vec![DeleteRecordsPartition {
                    partition_index: 0,
                    offset: 2,
                }],
            }],
            timeout_ms: 100,
        }
        .encode(w, 2)
    })
    .req(apis::FETCH, 4, |w| fetch(w, 4, t, 0, 0, 1));
    seeds.add("broker_frame", "parked-fetch", s.done());

    // A compacted topic: keyed records, then time for the cleaner.
    let mut s = Script::new();
    s.req(apis::CREATE_TOPICS, 7, |w| {
        create_topics(
            w,
            7,
            "compacted",
            1,
            &[
                ("cleanup.policy", "compact"),
                ("segment.bytes", "1048576"),
                ("min.cleanable.dirty.ratio", "0.01"),
            ],
        )
    });
    for codec in CODECS {
        let records = batch(codec, 6, WALL_MS - 500);
        s.req(apis::PRODUCE, 9, |w| {
            produce(w, 9, "compacted", 0, 1, &records)
        });
    }
    s.req_after(4, apis::FETCH, 12, |w| fetch(w, 12, "compacted", 0, 0, 1));
    seeds.add("broker_frame", "compacted", s.done());

    // Topic admin.
    let s = Script::new()
        .req(apis::CREATE_TOPICS, 2, |w| {
            create_topics(w, 2, "admin", 1, &[("retention.ms", "1000")])
        })
        .req(apis::CREATE_PARTITIONS, 3, |w| {
            use create_partitions_request::*;
            CreatePartitionsRequest {
                topics: vec![CreatePartitionsTopic {
                    name: "admin",
                    count: 3,
                    assignments: None,
                }],
                timeout_ms: 1000,
                validate_only: false,
            }
            .encode(w, 3)
        })
        .req(apis::ALTER_CONFIGS, 2, |w| {
            use alter_configs_request::*;
            AlterConfigsRequest {
                resources: vec![AlterConfigsResource {
                    resource_type: 2,
                    resource_name: "admin",
                    configs: vec![AlterableConfig {
                        name: "cleanup.policy",
                        value: Some("compact,delete"),
                    }],
                }],
                validate_only: false,
            }
            .encode(w, 2)
        })
        .req(apis::INCREMENTAL_ALTER_CONFIGS, 1, |w| {
            use incremental_alter_configs_request::*;
            IncrementalAlterConfigsRequest {
                resources: vec![AlterConfigsResource {
                    resource_type: 2,
                    resource_name: "admin",
                    configs: vec![
                        AlterableConfig {
                            name: "max.message.bytes",
                            config_operation: 0,
                            value: Some("2000"),
                        },
                        AlterableConfig {
                            name: "cleanup.policy",
                            config_operation: 3,
                            value: Some("delete"),
                        },
                    ],
                }],
                validate_only: false,
            }
            .encode(w, 1)
        })
        .req(apis::DESCRIBE_CONFIGS, 4, |w| {
            use describe_configs_request::*;
            DescribeConfigsRequest {
                resources: vec![
                    DescribeConfigsResource {
                        resource_type: 2,
                        resource_name: "admin",
                        configuration_keys: None,
                    },
                    DescribeConfigsResource {
                        resource_type: 4,
                        resource_name: "1",
                        configuration_keys: Some(vec!["log.retention.ms"]),
                    },
                ],
                include_synonyms: true,
                include_documentation: true,
            }
            .encode(w, 4)
        })
        .req(apis::DESCRIBE_LOG_DIRS, 4, |w| {
            describe_log_dirs_request::DescribeLogDirsRequest { topics: None }.encode(w, 4)
        })
        .req(apis::ELECT_LEADERS, 2, |w| {
            use elect_leaders_request::*;
            ElectLeadersRequest {
                election_type: 0,
                topic_partitions: Some(vec![TopicPartitions {
                    topic: "admin",
                    partitions: vec![0, 1],
                }]),
                timeout_ms: 1000,
            }
            .encode(w, 2)
        })
        .req(apis::DESCRIBE_CLUSTER, 1, |w| {
            describe_cluster_request::DescribeClusterRequest::default().encode(w, 1)
        })
        .req(apis::DESCRIBE_TOPIC_PARTITIONS, 0, |w| {
            use describe_topic_partitions_request::*;
            DescribeTopicPartitionsRequest {
                topics: vec![
                    TopicRequest { name: "admin" },
                    TopicRequest { name: "nope" },
                ],
                response_partition_limit: 2,
                cursor: Some(Cursor {
                    topic_name: "admin",
                    partition_index: 1,
                }),
            }
            .encode(w, 0)
        })
        .req_after(3, apis::METADATA, 0, |w| metadata(w, 0, None, true))
        .req(apis::METADATA, 4, |w| {
            metadata(w, 4, Some(&["auto-created"]), true)
        })
        .req(apis::DELETE_TOPICS, 6, |w| {
            use delete_topics_request::*;
            DeleteTopicsRequest {
                topics: vec![DeleteTopicState {
                    name: Some("admin"),
                    topic_id: [0; 16],
                }],
                topic_names: vec![],
                timeout_ms: 1000,
            }
            .encode(w, 6)
        })
        .req(apis::DELETE_TOPICS, 1, |w| {
            delete_topics_request::DeleteTopicsRequest {
                topic_names: vec!["auto-created"],
                timeout_ms: 1000,
                ..Default::default()
            }
            .encode(w, 1)
        })
        .done();
    seeds.add("broker_frame", "admin", s);

    // Groups: coordinator, a join (parked for the initial delay), simple-group commits.
    let g = "seed-group";
    let s = Script::new()
        .req(apis::CREATE_TOPICS, 7, |w| create_topics(w, 7, t, 2, &[]))
        .req(apis::FIND_COORDINATOR, 4, |w| {
            find_coordinator_request::FindCoordinatorRequest {
                key: "",
                key_type: 0,
                coordinator_keys: vec![g],
            }
            .encode(w, 4)
        })
        .req(apis::FIND_COORDINATOR, 1, |w| {
            find_coordinator_request::FindCoordinatorRequest {
                key: g,
                ..Default::default()
            }
            .encode(w, 1)
        })
        .req(apis::JOIN_GROUP, 3, |w| {
            use join_group_request::*;
            JoinGroupRequest {
                group_id: g,
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 10_000,
                member_id: "",
                protocol_type: "consumer",
                protocols: vec![JoinGroupRequestProtocol {
                    name: "range",
                    metadata: b"\x00\x01\x00\x00\x00\x01\x00\x0aseed-topic\x00\x00\x00\x00",
                }],
                ..Default::default()
            }
            .encode(w, 3)
        })
        .req_after(2, apis::JOIN_GROUP, 9, |w| {
            use join_group_request::*;
            JoinGroupRequest {
                group_id: g,
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 10_000,
                member_id: "",
                group_instance_id: Some("static-1"),
                protocol_type: "consumer",
                protocols: vec![JoinGroupRequestProtocol {
                    name: "range",
                    metadata: b"",
                }],
                reason: Some("seed"),
            }
            .encode(w, 9)
        })
        .req_after(2, apis::DESCRIBE_GROUPS, 5, |w| {
            describe_groups_request::DescribeGroupsRequest {
                groups: vec![g, "other"],
                include_authorized_operations: true,
            }
            .encode(w, 5)
        })
        .req(apis::LIST_GROUPS, 5, |w| {
            list_groups_request::ListGroupsRequest {
                states_filter: vec!["Stable", "Empty"],
                types_filter: vec!["classic"],
            }
            .encode(w, 5)
        })
        .req(apis::OFFSET_COMMIT, 8, |w| {
            use offset_commit_request::*;
            OffsetCommitRequest {
                group_id: "simple",
                generation_id_or_member_epoch: -1,
                member_id: "",
                group_instance_id: None,
                retention_time_ms: -1,
                topics: vec![OffsetCommitRequestTopic {
                    name: t,
                    partitions: vec![OffsetCommitRequestPartition {
                        partition_index: 1,
                        committed_offset: 42,
                        committed_leader_epoch: 3,
                        committed_metadata: Some("meta"),
                    }],
                }],
            }
            .encode(w, 8)
        })
        .req(apis::OFFSET_COMMIT, 2, |w| {
            use offset_commit_request::*;
            OffsetCommitRequest {
                group_id: "simple",
                generation_id_or_member_epoch: -1,
                retention_time_ms: 60_000,
                topics: vec![OffsetCommitRequestTopic {
                    name: t,
                    partitions: vec![OffsetCommitRequestPartition {
                        partition_index: 0,
                        committed_offset: 7,
                        committed_leader_epoch: -1,
                        committed_metadata: None,
                    }],
                }],
                ..Default::default()
            }
            .encode(w, 2)
        })
        .req(apis::OFFSET_FETCH, 8, |w| {
            use offset_fetch_request::*;
            OffsetFetchRequest {
                groups: vec![OffsetFetchRequestGroup {
                    group_id: "simple",
                    member_id: None,
                    member_epoch: -1,
                    topics: None,
                }],
                require_stable: true,
                ..Default::default()
            }
            .encode(w, 8)
        })
        .req(apis::OFFSET_FETCH, 1, |w| {
            use offset_fetch_request::*;
            OffsetFetchRequest {
                group_id: "simple",
                topics: Some(vec![OffsetFetchRequestTopic {
                    name: t,
                    partition_indexes: vec![0, 1, 5],
                }]),
                ..Default::default()
            }
            .encode(w, 1)
        })
        .req(apis::HEARTBEAT, 4, |w| {
            heartbeat_request::HeartbeatRequest {
                group_id: g,
                generation_id: 1,
                member_id: "nobody",
                group_instance_id: None,
            }
            .encode(w, 4)
        })
        .req(apis::SYNC_GROUP, 5, |w| {
            use sync_group_request::*;
            SyncGroupRequest {
                group_id: g,
                generation_id: 1,
                member_id: "nobody",
                protocol_type: Some("consumer"),
                protocol_name: Some("range"),
                assignments: vec![SyncGroupRequestAssignment {
                    member_id: "nobody",
                    assignment: b"\x00\x01",
                }],
                ..Default::default()
            }
            .encode(w, 5)
        })
        .req(apis::LEAVE_GROUP, 5, |w| {
            use leave_group_request::*;
            LeaveGroupRequest {
                group_id: g,
                member_id: "",
                members: vec![MemberIdentity {
                    member_id: "",
                    group_instance_id: Some("static-1"),
                    reason: None,
                }],
            }
            .encode(w, 5)
        })
        .req(apis::OFFSET_DELETE, 0, |w| {
            use offset_delete_request::*;
            OffsetDeleteRequest {
                group_id: "simple",
                topics: vec![OffsetDeleteRequestTopic {
                    name: t,
                    partitions: vec![OffsetDeleteRequestPartition { partition_index: 1 }],
                }],
            }
            .encode(w, 0)
        })
        .req(apis::DELETE_GROUPS, 2, |w| {
            delete_groups_request::DeleteGroupsRequest {
                groups_names: vec!["simple", g],
            }
            .encode(w, 2)
        })
        .done();
    seeds.add("broker_frame", "groups", s);

    // An idempotent producer: InitProducerId, then sequenced batches (one retried, one gap).
    let mut s = Script::new();
    s.req(apis::CREATE_TOPICS, 7, |w| create_topics(w, 7, t, 2, &[]))
        .req(apis::INIT_PRODUCER_ID, 4, |w| {
            init_producer_id_request::InitProducerIdRequest {
                transactional_id: None,
                transaction_timeout_ms: 60_000,
                producer_id: -1,
                producer_epoch: -1,
            }
            .encode(w, 4)
        });
    for seq in [0, 0, 5] {
        let mut b = BatchBuilder::new(0, WALL_MS - 10).producer(0, 0, seq);
        b.push(None, WALL_MS - 10, Some(b"k"), Some(b"v"), &[]);
        let records = b.finish();
        s.req(apis::PRODUCE, 9, |w| produce(w, 9, t, 0, -1, &records));
    }
    seeds.add("broker_frame", "idempotent", s.done());

    // A transaction: producer id for a transactional id, partitions and offsets added, a
    // transactional batch, its offsets, then commit (and a second one aborted).
    let tx = "seed-txn";
    for commit in [true, false] {
        let mut s = Script::new();
        s.req(apis::CREATE_TOPICS, 7, |w| create_topics(w, 7, t, 2, &[]))
            .req(apis::FIND_COORDINATOR, 4, |w| {
                find_coordinator_request::FindCoordinatorRequest {
                    key: "",
                    key_type: 1,
                    coordinator_keys: vec![tx],
                }
                .encode(w, 4)
            })
            .req(apis::INIT_PRODUCER_ID, 5, |w| {
                init_producer_id_request::InitProducerIdRequest {
                    transactional_id: Some(tx),
                    transaction_timeout_ms: 60_000,
                    producer_id: -1,
                    producer_epoch: -1,
                }
                .encode(w, 5)
            })
            .req(apis::ADD_PARTITIONS_TO_TXN, 3, |w| {
                use add_partitions_to_txn_request::*;
                AddPartitionsToTxnRequest {
                    v3_and_below_transactional_id: tx,
                    v3_and_below_producer_id: 0,
                    v3_and_below_producer_epoch: 0,
                    v3_and_below_topics: vec![AddPartitionsToTxnTopic {
                        name: t,
                        partitions: vec![0, 1],
                    }],
                    ..Default::default()
                }
                .encode(w, 3)
            });
        let mut b = BatchBuilder::new(0, WALL_MS - 10)
            .producer(0, 0, 0)
            .transactional(true);
        b.push(
            None,
            WALL_MS - 10,
            Some(b"k"),
            Some(b"in a transaction"),
            &[],
        );
        let records = b.finish();
        s.req(apis::PRODUCE, 9, |w| {
            use produce_request::*;
            ProduceRequest {
                transactional_id: Some(tx),
                acks: -1,
                timeout_ms: 1000,
                topic_data: vec![TopicProduceData {
                    name: t,
                    partition_data: vec![PartitionProduceData {
                        index: 0,
                        records: Some(&records),
                    }],
                    ..Default::default()
                }],
            }
            .encode(w, 9)
        })
        .req(apis::ADD_OFFSETS_TO_TXN, 3, |w| {
            add_offsets_to_txn_request::AddOffsetsToTxnRequest {
                transactional_id: tx,
                producer_id: 0,
                producer_epoch: 0,
                group_id: "txn-group",
            }
            .encode(w, 3)
        })
        .req(apis::TXN_OFFSET_COMMIT, 3, |w| {
            use txn_offset_commit_request::*;
            TxnOffsetCommitRequest {
                transactional_id: tx,
                group_id: "txn-group",
                producer_id: 0,
                producer_epoch: 0,
                generation_id: -1,
                member_id: "",
                group_instance_id: None,
                topics: vec![TxnOffsetCommitRequestTopic {
                    name: t,
                    partitions: vec![TxnOffsetCommitRequestPartition {
                        partition_index: 0,
                        committed_offset: 1,
                        committed_leader_epoch: -1,
                        committed_metadata: None,
                    }],
                }],
            }
            .encode(w, 3)
        })
        .req(apis::DESCRIBE_TRANSACTIONS, 0, |w| {
            describe_transactions_request::DescribeTransactionsRequest {
                transactional_ids: vec![tx, "unknown"],
            }
            .encode(w, 0)
        })
        .req(apis::END_TXN, 3, |w| {
            end_txn_request::EndTxnRequest {
                transactional_id: tx,
                producer_id: 0,
                producer_epoch: 0,
                committed: commit,
            }
            .encode(w, 3)
        })
        .req_after(1, apis::FETCH, 12, |w| {
            use fetch_request::*;
            FetchRequest {
                replica_id: -1,
                max_bytes: 1 << 20,
                isolation_level: 1,
                session_epoch: -1,
                topics: vec![FetchTopic {
                    topic: t,
                    partitions: vec![FetchPartition {
                        partition: 0,
                        current_leader_epoch: -1,
                        last_fetched_epoch: -1,
                        log_start_offset: -1,
                        partition_max_bytes: 1 << 20,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }
            .encode(w, 12)
        })
        .req(apis::LIST_TRANSACTIONS, 1, |w| {
            list_transactions_request::ListTransactionsRequest {
                duration_filter: -1,
                ..Default::default()
            }
            .encode(w, 1)
        })
        .req(apis::OFFSET_FOR_LEADER_EPOCH, 4, |w| {
            use offset_for_leader_epoch_request::*;
            OffsetForLeaderEpochRequest {
                replica_id: -1,
                topics: vec![OffsetForLeaderTopic {
                    topic: t,
                    partitions: vec![OffsetForLeaderPartition {
                        partition: 0,
                        current_leader_epoch: 0,
                        leader_epoch: 0,
                    }],
                }],
            }
            .encode(w, 4)
        })
        .req(apis::DESCRIBE_QUORUM, 2, |w| {
            use describe_quorum_request::*;
            DescribeQuorumRequest {
                topics: vec![TopicData {
                    topic_name: "__cluster_metadata",
                    partitions: vec![PartitionData { partition_index: 0 }],
                }],
            }
            .encode(w, 2)
        })
        .req(apis::DESCRIBE_PRODUCERS, 0, |w| {
            use describe_producers_request::*;
            DescribeProducersRequest {
                topics: vec![TopicRequest {
                    name: t,
                    partition_indexes: vec![0, 1],
                }],
            }
            .encode(w, 0)
        })
        .req(apis::OFFSET_FETCH, 8, |w| {
            use offset_fetch_request::*;
            OffsetFetchRequest {
                groups: vec![OffsetFetchRequestGroup {
                    group_id: "txn-group",
                    member_id: None,
                    member_epoch: -1,
                    topics: None,
                }],
                require_stable: true,
                ..Default::default()
            }
            .encode(w, 8)
        });
        let name = if commit { "txn-commit" } else { "txn-abort" };
        seeds.add("broker_frame", name, s.done());
    }

    // Bad input the broker must answer or close on: a broken CRC, a frame cut short, an unknown
    // api key, an unsupported ApiVersions.
    let mut bad = batch(Compression::Lz4, 3, WALL_MS);
    let n = bad.len();
    bad[n - 2] ^= 0x40;
    let produce_v9 = {
        let mut b = Vec::new();
        produce(&mut Writer::new(&mut b), 9, t, 0, 1, &bad);
        frame(apis::PRODUCE, 9, 5, &b)
    };
    let s = Script::new()
        .req(apis::CREATE_TOPICS, 7, |w| create_topics(w, 7, t, 1, &[]))
        .raw(&produce_v9)
        .raw(&produce_v9[..produce_v9.len() - 9])
        .raw(&frame(1000, 0, 7, b""))
        .raw(&frame(apis::API_VERSIONS, 99, 8, b"\x02a\x02b\x00"))
        .done();
    seeds.add("broker_frame", "bad-input", s);
}

/// The request frames of the CodeCrafters harness (tests/codecrafters.rs): header v2 with client
/// id `kafka-tester`.
fn codecrafters_frames(seeds: &mut Seeds) {
    fn request(key: i16, version: i16, corr: i32, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&key.to_be_bytes());
        m.extend_from_slice(&version.to_be_bytes());
        m.extend_from_slice(&corr.to_be_bytes());
        m.extend_from_slice(&12i16.to_be_bytes());
        m.extend_from_slice(b"kafka-tester");
        m.push(0);
        m.extend_from_slice(body);
        m
    }
    let mut api_versions = Vec::new();
    kraft::put_compact_string(&mut api_versions, "kafka-cli");
    kraft::put_compact_string(&mut api_versions, "0.1");
    api_versions.push(0);
    let mut dtp = Vec::new();
    kraft::put_uvarint(&mut dtp, 3);
    for t in ["foo", "bar"] {
        kraft::put_compact_string(&mut dtp, t);
        dtp.push(0);
    }
    dtp.extend_from_slice(&100i32.to_be_bytes());
    dtp.push(0xff);
    dtp.push(0);
    let topic_id = kraft::topic_uuid(0x91);
    let mut fetch = Vec::new();
    fetch.extend_from_slice(&500i32.to_be_bytes());
    fetch.extend_from_slice(&1i32.to_be_bytes());
    fetch.extend_from_slice(&i32::MAX.to_be_bytes());
    fetch.push(0);
    fetch.extend_from_slice(&0i32.to_be_bytes());
    fetch.extend_from_slice(&0i32.to_be_bytes());
    kraft::put_uvarint(&mut fetch, 2);
    fetch.extend_from_slice(&topic_id);
    kraft::put_uvarint(&mut fetch, 2);
    fetch.extend_from_slice(&0i32.to_be_bytes());
    fetch.extend_from_slice(&(-1i32).to_be_bytes());
    fetch.extend_from_slice(&0i64.to_be_bytes());
    fetch.extend_from_slice(&(-1i32).to_be_bytes());
    fetch.extend_from_slice(&(-1i64).to_be_bytes());
    fetch.extend_from_slice(&i32::MAX.to_be_bytes());
    fetch.push(0);
    fetch.push(0);
    fetch.push(1);
    fetch.push(1);
    fetch.push(0);
    let records = kraft::partition_log(&["Hello Earth!".to_string()]);
    let mut produce = vec![0];
    produce.extend_from_slice(&(-1i16).to_be_bytes());
    produce.extend_from_slice(&30000i32.to_be_bytes());
    kraft::put_uvarint(&mut produce, 2);
    kraft::put_compact_string(&mut produce, "foo");
    kraft::put_uvarint(&mut produce, 2);
    produce.extend_from_slice(&0i32.to_be_bytes());
    kraft::put_uvarint(&mut produce, records.len() as u64 + 1);
    produce.extend_from_slice(&records);
    produce.push(0);
    produce.push(0);
    produce.push(0);

    let frames = [
        (
            "api-versions-v4",
            request(apis::API_VERSIONS, 4, 7, &api_versions),
        ),
        ("api-versions-v0", request(apis::API_VERSIONS, 0, 8, &[])),
        (
            "api-versions-unsupported",
            request(apis::API_VERSIONS, 17, 9, &api_versions),
        ),
        (
            "describe-topic-partitions",
            request(apis::DESCRIBE_TOPIC_PARTITIONS, 0, 10, &dtp),
        ),
        (
            "fetch-v16-unknown-topic",
            request(apis::FETCH, 16, 11, &fetch),
        ),
        ("produce-v11", request(apis::PRODUCE, 11, 12, &produce)),
    ];
    let mut all = Vec::new();
    for (name, f) in &frames {
        seeds.add(
            "broker_frame",
            format!("codecrafters-{name}"),
            chunk(0, 0, f),
        );
        all.extend(chunk(0, 0, f));
    }
    seeds.add("broker_frame", "codecrafters-all", all);
    seeds.add("record_batch", "codecrafters-message", {
        let mut v = vec![0];
        v.extend_from_slice(&records);
        v
    });
    let mut log = vec![0];
    log.extend(kraft::cluster_metadata_log(&[
        kraft::TopicSpec::new("foo", kraft::topic_uuid(0x91), vec![vec![], vec![]]),
        kraft::TopicSpec::new("bar", kraft::topic_uuid(0x92), vec![vec!["x"]]),
    ]));
    seeds.add("metadata_replay", "codecrafters-cluster-metadata", log);
}

fn requests(seeds: &mut Seeds) {
    for a in APIS {
        for v in a.min..=a.max {
            let body = sample_request(a.key, v);
            let mut d = vec![a.key as u8, (v - a.min) as u8];
            d.extend_from_slice(&body);
            seeds.add("request_decoders", format!("{}-v{v}", a.name), d);
            let f = frame(a.key, v, 1000 + v as i32, &body);
            seeds.add("broker_frame", format!("{}-v{v}", a.name), chunk(0, 0, &f));
        }
    }
    let mut record_schemas = Vec::new();
    macro_rules! schemas {
        ($($m:ident),*) => {$(
            for v in $m::MIN_VERSION..=$m::MAX_VERSION {
                let mut b = Vec::new();
                $m::sample::$m().encode(&mut Writer::new(&mut b), v);
                record_schemas.push((stringify!($m), v, $m::MIN_VERSION, b));
            }
        )*};
    }
    schemas!(
        offset_commit_key,
        offset_commit_value,
        group_metadata_key,
        group_metadata_value,
        transaction_log_key,
        transaction_log_value
    );
    let order = [
        "offset_commit_key",
        "offset_commit_value",
        "group_metadata_key",
        "group_metadata_value",
        "transaction_log_key",
        "transaction_log_value",
    ];
    for (name, v, min, body) in record_schemas {
        let i = order.iter().position(|n| *n == name).unwrap() as u8;
        let mut d = vec![RECORD_SCHEMA_KEYS + i, (v - min) as u8];
        d.extend(body);
        seeds.add("request_decoders", format!("{name}-v{v}"), d);
    }
}

fn record_batches(seeds: &mut Seeds) {
    // record_batch flags: bit 0 fixes CRCs, bits 1-3 the cap (7: 1 MiB), bit 4 recompresses to
    // the codec of bits 5-7.
    for (i, codec) in CODECS.into_iter().enumerate() {
        let b = batch(codec, 8, 1_700_000_000_000);
        let name = format!("{codec:?}").to_lowercase();
        let mut plain = vec![0b0000_1110];
        plain.extend_from_slice(&b);
        seeds.add("record_batch", name.clone(), plain);
        // CRCs fixed, recompressed to the next codec.
        let mut recompress = vec![0b0001_1111 | ((((i + 1) % CODECS.len()) as u8) << 5)];
        recompress.extend_from_slice(&b);
        seeds.add("record_batch", format!("{name}-recompress"), recompress);
        // Two batches back to back, the second transactional with a producer id.
        let mut two = vec![0b0000_1111];
        two.extend_from_slice(&b);
        let mut t = BatchBuilder::new(8, 1_700_000_000_000)
            .producer(17, 1, 4)
            .transactional(true)
            .compression(codec);
        t.push(Some(3), 1_700_000_000_005, None, Some(b"x"), &[]);
        two.extend(t.finish());
        seeds.add("record_batch", format!("{name}-two"), two);

        // The codec payloads alone, at each cap.
        let payload = &b[crate::records::BATCH_HEADER_LEN..];
        seeds.add("codecs", format!("{name}-records"), {
            let mut v = vec![(codec.bits() as u8) | (7 << 3)];
            v.extend_from_slice(payload);
            v
        });
        let text = "hello kafka compression ".repeat(300);
        let z = compress(codec, text.as_bytes()).unwrap();
        for (ci, cap) in [(3u8, "cap100"), (5, "cap64k"), (7, "cap1m")] {
            let mut v = vec![(codec.bits() as u8) | (ci << 3) | 0x40];
            v.extend_from_slice(&z);
            seeds.add("codecs", format!("{name}-text-{cap}"), v);
        }
    }
    // A control batch (transaction marker) and a LogAppendTime batch.
    let mut c = BatchBuilder::new(0, 0)
        .control(true)
        .transactional(true)
        .producer(5, 0, -1);
    c.push(None, 0, Some(&[0, 0, 0, 1]), Some(&[0, 0, 0, 0, 0, 0]), &[]);
    let mut v = vec![0b0000_1110];
    v.extend(c.finish());
    seeds.add("record_batch", "control", v);
    let mut l = BatchBuilder::new(100, 5).log_append_time(true);
    l.push(None, 5, Some(b"a"), Some(b"b"), &[]);
    let mut v = vec![0b0000_1110];
    v.extend(l.finish());
    seeds.add("record_batch", "log-append-time", v);

    // Raw snappy (no xerial framing) and frames from the reference tools (see the codec tests).
    let raw = snap::raw::Encoder::new()
        .compress_vec("raw snappy block raw snappy block".as_bytes())
        .unwrap();
    let mut v = vec![2 | (5 << 3)];
    v.extend(raw);
    seeds.add("codecs", "snappy-raw", v);
    let unhex = |h: &str| -> Vec<u8> {
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect()
    };
    let zst = unhex(
        "28b52ffd64c002050100c068656c6c6f206b61666b6120636f6d7072657373696f6e20010094de6a8e\
         016dc9c96428b52ffd00582900007461696c21",
    );
    let lz4 = unhex(
        "04224d186c40c003000000000000af26000000ff0968656c6c6f206b61666b6120636f6d707265737369\
         6f6e201800ffffff935073696f6e200000000098c5eb2f",
    );
    let mut v = vec![4 | (5 << 3)];
    v.extend(zst);
    seeds.add("codecs", "zstd-cli-two-frames", v);
    let mut v = vec![3 | (5 << 3)];
    v.extend(lz4);
    seeds.add("codecs", "lz4-cli-content-checksum", v);
}

/// Record values in v2 batches, `per_batch` records each, in `codec`.
fn metadata_batches(recs: &[MetadataRecord<'_>], per_batch: usize, codec: Compression) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = 0i64;
    for group in recs.chunks(per_batch) {
        let mut b = BatchBuilder::new(offset, 1_700_000_000_000)
            .partition_leader_epoch(1)
            .compression(codec);
        for r in group {
            let mut v = Vec::new();
            r.encode(&mut v);
            b.push(None, 1_700_000_000_000, None, Some(&v), &[]);
        }
        out.extend(b.finish());
        offset += group.len() as i64;
    }
    out
}

fn metadata_logs(seeds: &mut Seeds) {
    let a = [0xa1; 16];
    let b = [0xb2; 16];
    let dir = [7; 16];
    let part = |id: i32, topic: [u8; 16]| {
        MetadataRecord::Partition(PartitionRecord {
            partition_id: id,
            topic_id: topic,
            replicas: vec![1],
            isr: vec![1],
            removing_replicas: vec![],
            adding_replicas: vec![],
            leader: 1,
            leader_recovery_state: 0,
            leader_epoch: 0,
            partition_epoch: 0,
            directories: vec![dir],
            eligible_leader_replicas: None,
            last_known_elr: None,
        })
    };
    let recs = vec![
        MetadataRecord::FeatureLevel(FeatureLevelRecord {
            name: "metadata.version",
            feature_level: 21,
        }),
        MetadataRecord::RegisterBroker(RegisterBrokerRecord {
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
            rack: Some("r1"),
            fenced: false,
            in_controlled_shutdown: false,
            log_dirs: vec![dir],
        }),
        MetadataRecord::Topic(TopicRecord {
            name: "alpha",
            topic_id: a,
        }),
        part(0, a),
        part(1, a),
        MetadataRecord::Config(ConfigRecord {
            resource_type: 2,
            resource_name: "alpha",
            name: "cleanup.policy",
            value: Some("compact"),
        }),
        MetadataRecord::Topic(TopicRecord {
            name: "beta",
            topic_id: b,
        }),
        part(0, b),
        MetadataRecord::PartitionChange(PartitionChangeRecord {
            topic_id: a,
            partition_id: 1,
            isr: Some(vec![1]),
            leader: 1,
            ..Default::default()
        }),
        MetadataRecord::ProducerIds(ProducerIdsRecord {
            broker_id: 1,
            broker_epoch: 5,
            next_producer_id: 1000,
        }),
        MetadataRecord::Config(ConfigRecord {
            resource_type: 4,
            resource_name: "1",
            name: "log.retention.ms",
            value: None,
        }),
        MetadataRecord::NoOp(NoOpRecord {}),
        MetadataRecord::RemoveTopic(RemoveTopicRecord { topic_id: b }),
        MetadataRecord::FenceBroker(FenceBrokerRecord { id: 1, epoch: 5 }),
        MetadataRecord::UnfenceBroker(UnfenceBrokerRecord { id: 1, epoch: 5 }),
    ];
    for codec in CODECS {
        let name = format!("{codec:?}").to_lowercase();
        let mut v = vec![0];
        v.extend(metadata_batches(&recs, 3, codec));
        seeds.add("metadata_replay", format!("log-{name}"), v);
    }
    // Snapshot + log: the first u16 splits the bytes (flag bit 1).
    let snap = metadata_batches(&recs[..5], 5, Compression::None);
    let log = metadata_batches(&recs[5..], 2, Compression::None);
    let mut v = vec![0b10];
    v.extend_from_slice(&(snap.len() as u16).to_be_bytes());
    v.extend(snap);
    v.extend(log);
    seeds.add("metadata_replay", "snapshot-and-log", v);
    // A torn tail.
    let mut v = vec![0];
    let whole = metadata_batches(&recs, 4, Compression::None);
    v.extend_from_slice(&whole[..whole.len() - 10]);
    seeds.add("metadata_replay", "torn-tail", v);
}

fn offsets_logs(seeds: &mut Seeds) {
    let c = |o: i64, e: i64| CommittedOffset {
        offset: o,
        leader_epoch: 2,
        metadata: "m".into(),
        commit_timestamp: 1_700_000_000_000,
        expire_timestamp: e,
    };
    let mut store = OffsetStore::new();
    let commits = OffsetStore::commit_records(
        "g1",
        &[
            ("t", 0, c(10, -1)),
            ("t", 1, c(11, -1)),
            ("u", 0, c(5, 1_700_000_100_000)),
        ],
    );
    let group = OffsetStore::group_record(&GroupSnapshot {
        group_id: "g1".into(),
        protocol_type: "consumer".into(),
        generation: 3,
        protocol: Some("range".into()),
        leader: Some("m-1".into()),
        current_state_timestamp: 1_700_000_000_000,
        members: vec![MemberSnapshot {
            member_id: "m-1".into(),
            group_instance_id: Some("i-1".into()),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            rebalance_timeout_ms: 30_000,
            session_timeout_ms: 10_000,
            subscription: vec![0, 1, 2],
            assignment: vec![3, 4],
        }],
    });
    let empty = OffsetStore::group_record(&GroupSnapshot {
        group_id: "g2".into(),
        protocol_type: "consumer".into(),
        generation: 1,
        current_state_timestamp: 1_700_000_000_000,
        ..Default::default()
    });
    let mut log = OffsetStore::batch(&commits, 1_700_000_000_000);
    log.extend(OffsetStore::batch(&[group, empty], 1_700_000_000_000));
    store.replay(&log).unwrap();
    log.extend(OffsetStore::batch(
        &store.offset_tombstones("g1", &[("t", 1)]),
        1_700_000_000_001,
    ));
    log.extend(OffsetStore::batch(
        &[OffsetStore::group_tombstone("g2")],
        1_700_000_000_002,
    ));
    let mut v = vec![0];
    v.extend_from_slice(&log);
    seeds.add("offsets_replay", "commits-groups-tombstones", v);

    // Transactional offset commits, then a commit marker and an abort marker.
    let mut v = vec![0];
    for (pid, marker) in [(9i64, 1u8), (10, 0)] {
        let mut t = BatchBuilder::new(0, 1_700_000_000_000)
            .producer(pid, 0, 0)
            .transactional(true);
        for (k, val) in OffsetStore::commit_records("tx", &[("t", pid as i32, c(1, -1))]) {
            t.push(None, 1_700_000_000_000, Some(&k), val.as_deref(), &[]);
        }
        v.extend(t.finish());
        let mut m = BatchBuilder::new(1, 1_700_000_000_000)
            .producer(pid, 0, -1)
            .transactional(true)
            .control(true);
        m.push(
            None,
            1_700_000_000_000,
            Some(&[0, 0, 0, marker]),
            Some(&[0, 0, 0, 0, 0, 0]),
            &[],
        );
        v.extend(m.finish());
    }
    seeds.add("offsets_replay", "transactional", v);
    for codec in &CODECS[1..] {
        let mut b = BatchBuilder::new(0, 1_700_000_000_000).compression(*codec);
        for (k, val) in &commits {
            b.push(None, 1_700_000_000_000, Some(k), val.as_deref(), &[]);
        }
        let mut v = vec![0];
        v.extend(b.finish());
        seeds.add("offsets_replay", format!("{codec:?}").to_lowercase(), v);
    }
}

fn seed_root() -> PathBuf {
    match std::env::var_os("MINIKAFKA_FUZZ_SEEDS") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz")
            .join("seeds"),
    }
}

#[test]
#[ignore = "writes fuzz/seeds; run by tools/fuzz.sh --seeds"]
fn write_seed_corpora() {
    let mut seeds = Seeds::default();
    requests(&mut seeds);
    broker_scripts(&mut seeds);
    codecrafters_frames(&mut seeds);
    record_batches(&mut seeds);
    metadata_logs(&mut seeds);
    offsets_logs(&mut seeds);
    seeds.write(&seed_root());
}
