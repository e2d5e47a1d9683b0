//! Golden bytes for the generated message codec, written by hand from Kafka's protocol guide and
//! JSON schemas (not from our generator), at the oldest and newest version of each message.
//!
//! Each case checks both directions: encode(struct) == bytes, decode(bytes) == struct with
//! nothing left over. Flexible versions cover compact strings/arrays/bytes (length + 1 as an
//! unsigned varint, 0 = null), per-struct tagged-field sections and uuids.

use minikafka::protocol::header::{frame_response, RequestHeader};
use minikafka::protocol::messages::api_versions_request::ApiVersionsRequest;
use minikafka::protocol::messages::api_versions_response::{
    ApiVersion, ApiVersionsResponse, FinalizedFeatureKey, SupportedFeatureKey,
};
use minikafka::protocol::messages::fetch_request::{
    FetchPartition, FetchRequest, FetchTopic, ForgottenTopic, ReplicaState,
};
use minikafka::protocol::messages::fetch_response::{self, FetchResponse, FetchableTopicResponse};
use minikafka::protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use minikafka::protocol::messages::metadata_response::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use minikafka::protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use minikafka::protocol::messages::produce_response::{
    self, BatchIndexAndErrorMessage, PartitionProduceResponse, ProduceResponse,
    TopicProduceResponse,
};
use minikafka::protocol::wire::{Reader, Writer};

/// Concatenates byte pieces (keeps the expected frames readable field by field).
fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

const UUID_A: [u8; 16] = [
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10,
];
const UUID_B: [u8; 16] = [0xab; 16];
const ZERO_UUID: [u8; 16] = [0; 16];
const NULL_I64: [u8; 8] = [0xff; 8];

/// encode == bytes, decode(bytes) == msg with the whole body consumed.
macro_rules! golden {
    ($ty:ident, $version:expr, $msg:expr, $bytes:expr) => {{
        let version: i16 = $version;
        let msg = $msg;
        let bytes: Vec<u8> = $bytes;
        let mut out = Vec::new();
        msg.encode(&mut Writer::new(&mut out), version);
        assert_eq!(
            hex(&out),
            hex(&bytes),
            "{} v{version}: encoded bytes differ",
            stringify!($ty)
        );
        let mut r = Reader::new(&bytes);
        let decoded = $ty::decode(&mut r, version)
            .unwrap_or_else(|e| panic!("{} v{version}: decode failed: {e}", stringify!($ty)));
        assert_eq!(
            decoded,
            msg,
            "{} v{version}: decoded struct",
            stringify!($ty)
        );
        assert_eq!(
            r.remaining(),
            0,
            "{} v{version}: bytes left after decode",
            stringify!($ty)
        );
    }};
}

// ---------------------------------------------------------------- ApiVersions

#[test]
fn api_versions_request_v0_is_empty() {
    golden!(ApiVersionsRequest, 0, ApiVersionsRequest::default(), vec![]);
}

#[test]
fn api_versions_request_v4_compact_strings() {
    golden!(
        ApiVersionsRequest,
        4,
        ApiVersionsRequest {
            client_software_name: "kcat",
            client_software_version: "1.7",
        },
        cat(&[
            &[0x05],
            b"kcat", // compact string: length + 1
            &[0x04],
            b"1.7",
            &[0x00], // no tagged fields
        ])
    );
}

fn two_api_keys() -> Vec<ApiVersion> {
    vec![
        ApiVersion {
            api_key: 0,
            min_version: 3,
            max_version: 13,
        },
        ApiVersion {
            api_key: 18,
            min_version: 0,
            max_version: 4,
        },
    ]
}

#[test]
fn api_versions_response_v0() {
    golden!(
        ApiVersionsResponse,
        0,
        ApiVersionsResponse {
            error_code: 0,
            api_keys: two_api_keys(),
            ..Default::default()
        },
        cat(&[
            &[0x00, 0x00],             // error_code
            &[0x00, 0x00, 0x00, 0x02], // int32 array length
            &[0x00, 0x00, 0x00, 0x03, 0x00, 0x0d],
            &[0x00, 0x12, 0x00, 0x00, 0x00, 0x04],
        ])
    );
}

#[test]
fn api_versions_response_v0_unsupported_version_error() {
    // What a broker sends to an ApiVersions request of a version it does not know.
    golden!(
        ApiVersionsResponse,
        0,
        ApiVersionsResponse {
            error_code: 35,
            api_keys: two_api_keys()[1..].to_vec(),
            ..Default::default()
        },
        cat(&[
            &[0x00, 0x23],
            &[0x00, 0x00, 0x00, 0x01],
            &[0x00, 0x12, 0x00, 0x00, 0x00, 0x04],
        ])
    );
}

#[test]
fn api_versions_response_v4() {
    golden!(
        ApiVersionsResponse,
        4,
        ApiVersionsResponse {
            error_code: 0,
            api_keys: two_api_keys(),
            throttle_time_ms: 0,
            ..Default::default()
        },
        cat(&[
            &[0x00, 0x00],
            &[0x03],                                     // compact array: 2 + 1
            &[0x00, 0x00, 0x00, 0x03, 0x00, 0x0d, 0x00], // each element ends with its tagged fields
            &[0x00, 0x12, 0x00, 0x00, 0x00, 0x04, 0x00],
            &[0x00, 0x00, 0x00, 0x00], // throttle_time_ms
            &[0x00],                   // top-level tagged fields: none
        ])
    );
}

#[test]
fn api_versions_response_v3_with_tagged_features() {
    let sf = cat(&[
        &[0x02], // compact array of 1
        &[0x11],
        b"metadata.version",
        &[0x00, 0x01], // min
        &[0x00, 0x1b], // max
        &[0x00],
    ]);
    let ff = cat(&[
        &[0x02],
        &[0x11],
        b"metadata.version",
        &[0x00, 0x1b], // max level
        &[0x00, 0x01], // min level
        &[0x00],
    ]);
    assert_eq!(sf.len(), 23);
    golden!(
        ApiVersionsResponse,
        3,
        ApiVersionsResponse {
            error_code: 0,
            api_keys: two_api_keys()[1..].to_vec(),
            throttle_time_ms: 0,
            supported_features: vec![SupportedFeatureKey {
                name: "metadata.version",
                min_version: 1,
                max_version: 27,
            }],
            finalized_features_epoch: 5,
            finalized_features: vec![FinalizedFeatureKey {
                name: "metadata.version",
                max_version_level: 27,
                min_version_level: 1,
            }],
            zk_migration_ready: false,
        },
        cat(&[
            &[0x00, 0x00],
            &[0x02, 0x00, 0x12, 0x00, 0x00, 0x00, 0x04, 0x00],
            &[0x00, 0x00, 0x00, 0x00],
            &[0x03], // three tagged fields, ascending tags: tag, size, data
            &[0x00, 23],
            &sf,
            &[0x01, 0x08],
            &5i64.to_be_bytes(),
            &[0x02, 23],
            &ff,
        ])
    );
}

#[test]
fn api_versions_response_v3_unknown_tag_is_skipped() {
    // A newer broker may send tags we do not know: they are skipped, not an error.
    let bytes = cat(&[
        &[0x00, 0x00],
        &[0x01], // no api keys
        &[0x00, 0x00, 0x00, 0x07],
        &[0x02],
        &[0x01, 0x08],
        &9i64.to_be_bytes(),
        &[0x3f, 0x03, 0xaa, 0xbb, 0xcc], // tag 63, 3 bytes
    ]);
    let mut r = Reader::new(&bytes);
    let d = ApiVersionsResponse::decode(&mut r, 3).unwrap();
    assert_eq!(r.remaining(), 0);
    assert_eq!(d.throttle_time_ms, 7);
    assert_eq!(d.finalized_features_epoch, 9);
    assert!(d.api_keys.is_empty());
}

// ---------------------------------------------------------------- Metadata

#[test]
fn metadata_request_v0() {
    golden!(
        MetadataRequest,
        0,
        MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                topic_id: ZERO_UUID,
                name: Some("foo"),
            }]),
            ..Default::default()
        },
        cat(&[&[0x00, 0x00, 0x00, 0x01], &[0x00, 0x03], b"foo"])
    );
    // v0 has no null array: an empty one means "all topics".
    golden!(
        MetadataRequest,
        0,
        MetadataRequest {
            topics: Some(vec![]),
            ..Default::default()
        },
        vec![0, 0, 0, 0]
    );
}

#[test]
fn metadata_request_v13() {
    golden!(
        MetadataRequest,
        13,
        MetadataRequest {
            topics: Some(vec![
                MetadataRequestTopic {
                    topic_id: UUID_A,
                    name: None,
                },
                MetadataRequestTopic {
                    topic_id: ZERO_UUID,
                    name: Some("foo"),
                },
            ]),
            allow_auto_topic_creation: false,
            include_cluster_authorized_operations: false, // versions 8-10 only
            include_topic_authorized_operations: true,
        },
        cat(&[
            &[0x03],
            &UUID_A,
            &[0x00], // null name
            &[0x00],
            &ZERO_UUID,
            &[0x04],
            b"foo",
            &[0x00],
            &[0x00], // allow_auto_topic_creation
            &[0x01], // include_topic_authorized_operations
            &[0x00],
        ])
    );
    // Null topics array = all topics.
    golden!(
        MetadataRequest,
        13,
        MetadataRequest {
            topics: None,
            allow_auto_topic_creation: true,
            ..Default::default()
        },
        vec![0x00, 0x01, 0x00, 0x00]
    );
}

#[test]
fn metadata_response_v0() {
    golden!(
        MetadataResponse,
        0,
        MetadataResponse {
            brokers: vec![MetadataResponseBroker {
                node_id: 1,
                host: "localhost",
                port: 9092,
                rack: None,
            }],
            topics: vec![MetadataResponseTopic {
                error_code: 0,
                name: Some("foo"),
                partitions: vec![MetadataResponsePartition {
                    error_code: 0,
                    partition_index: 0,
                    leader_id: 1,
                    replica_nodes: vec![1],
                    isr_nodes: vec![1],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        },
        cat(&[
            &[0, 0, 0, 1],
            &[0, 0, 0, 1],
            &[0x00, 0x09],
            b"localhost",
            &[0x00, 0x00, 0x23, 0x84],
            &[0, 0, 0, 1],
            &[0x00, 0x00],
            &[0x00, 0x03],
            b"foo",
            &[0, 0, 0, 1],
            &[0x00, 0x00],
            &[0, 0, 0, 0],
            &[0, 0, 0, 1],
            &[0, 0, 0, 1, 0, 0, 0, 1],
            &[0, 0, 0, 1, 0, 0, 0, 1],
        ])
    );
}

#[test]
fn metadata_response_v13() {
    golden!(
        MetadataResponse,
        13,
        MetadataResponse {
            throttle_time_ms: 0,
            brokers: vec![MetadataResponseBroker {
                node_id: 1,
                host: "localhost",
                port: 9092,
                rack: None,
            }],
            cluster_id: Some("abc"),
            controller_id: 1,
            topics: vec![
                MetadataResponseTopic {
                    error_code: 3,
                    name: Some("nope"),
                    topic_id: ZERO_UUID,
                    is_internal: false,
                    partitions: vec![],
                    topic_authorized_operations: i32::MIN,
                },
                MetadataResponseTopic {
                    error_code: 0,
                    name: Some("foo"),
                    topic_id: UUID_A,
                    is_internal: false,
                    partitions: vec![MetadataResponsePartition {
                        error_code: 0,
                        partition_index: 0,
                        leader_id: 1,
                        leader_epoch: 0,
                        replica_nodes: vec![1],
                        isr_nodes: vec![1],
                        offline_replicas: vec![],
                    }],
                    topic_authorized_operations: i32::MIN,
                },
            ],
            cluster_authorized_operations: i32::MIN, // versions 8-10 only
            error_code: 0,
        },
        cat(&[
            &[0, 0, 0, 0],
            &[0x02],
            &[0, 0, 0, 1],
            &[0x0a],
            b"localhost",
            &[0x00, 0x00, 0x23, 0x84],
            &[0x00], // null rack
            &[0x00],
            &[0x04],
            b"abc",
            &[0, 0, 0, 1],
            &[0x03],
            // topic 1
            &[0x00, 0x03],
            &[0x05],
            b"nope",
            &ZERO_UUID,
            &[0x00],
            &[0x01], // empty partitions
            &[0x80, 0x00, 0x00, 0x00],
            &[0x00],
            // topic 2
            &[0x00, 0x00],
            &[0x04],
            b"foo",
            &UUID_A,
            &[0x00],
            &[0x02],
            &[0x00, 0x00],
            &[0, 0, 0, 0],
            &[0, 0, 0, 1],
            &[0, 0, 0, 0],
            &[0x02, 0, 0, 0, 1],
            &[0x02, 0, 0, 0, 1],
            &[0x01],
            &[0x00],
            &[0x80, 0x00, 0x00, 0x00],
            &[0x00],
            // top level
            &[0x00, 0x00],
            &[0x00],
        ])
    );
}

// ---------------------------------------------------------------- Produce

#[test]
fn produce_request_v3() {
    golden!(
        ProduceRequest,
        3,
        ProduceRequest {
            transactional_id: None,
            acks: -1,
            timeout_ms: 30000,
            topic_data: vec![TopicProduceData {
                name: "foo",
                topic_id: ZERO_UUID,
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(&[1, 2, 3, 4, 5]),
                }],
            }],
        },
        cat(&[
            &[0xff, 0xff], // null transactional id
            &[0xff, 0xff], // acks -1
            &[0x00, 0x00, 0x75, 0x30],
            &[0, 0, 0, 1],
            &[0x00, 0x03],
            b"foo",
            &[0, 0, 0, 1],
            &[0, 0, 0, 0],
            &[0, 0, 0, 5],
            &[1, 2, 3, 4, 5],
        ])
    );
}

#[test]
fn produce_request_v13_topic_ids() {
    golden!(
        ProduceRequest,
        13,
        ProduceRequest {
            transactional_id: Some("tx"),
            acks: 1,
            timeout_ms: 1000,
            topic_data: vec![TopicProduceData {
                name: "", // versions 0-12 only
                topic_id: UUID_A,
                partition_data: vec![
                    PartitionProduceData {
                        index: 0,
                        records: Some(&[1, 2, 3]),
                    },
                    PartitionProduceData {
                        index: 1,
                        records: None,
                    },
                ],
            }],
        },
        cat(&[
            &[0x03],
            b"tx",
            &[0x00, 0x01],
            &[0x00, 0x00, 0x03, 0xe8],
            &[0x02],
            &UUID_A,
            &[0x03],
            &[0, 0, 0, 0],
            &[0x04, 1, 2, 3], // compact bytes
            &[0x00],
            &[0, 0, 0, 1],
            &[0x00], // null records
            &[0x00],
            &[0x00], // topic tagged fields
            &[0x00], // top-level tagged fields
        ])
    );
}

#[test]
fn produce_response_v3() {
    golden!(
        ProduceResponse,
        3,
        ProduceResponse {
            responses: vec![TopicProduceResponse {
                name: "foo",
                topic_id: ZERO_UUID,
                partition_responses: vec![PartitionProduceResponse {
                    index: 0,
                    error_code: 0,
                    base_offset: 5,
                    log_append_time_ms: -1,
                    ..Default::default()
                }],
            }],
            throttle_time_ms: 0,
            node_endpoints: vec![],
        },
        cat(&[
            &[0, 0, 0, 1],
            &[0x00, 0x03],
            b"foo",
            &[0, 0, 0, 1],
            &[0, 0, 0, 0],
            &[0x00, 0x00],
            &5i64.to_be_bytes(),
            &NULL_I64,
            &[0, 0, 0, 0],
        ])
    );
}

#[test]
fn produce_response_v13_with_tagged_fields() {
    let endpoints = cat(&[
        &[0x02],
        &[0, 0, 0, 1],
        &[0x02],
        b"h",
        &[0x00, 0x00, 0x23, 0x84],
        &[0x00],
        &[0x00],
    ]);
    assert_eq!(endpoints.len(), 13);
    golden!(
        ProduceResponse,
        13,
        ProduceResponse {
            responses: vec![TopicProduceResponse {
                name: "",
                topic_id: UUID_A,
                partition_responses: vec![PartitionProduceResponse {
                    index: 0,
                    error_code: 6,
                    base_offset: -1,
                    log_append_time_ms: -1,
                    log_start_offset: -1,
                    record_errors: vec![BatchIndexAndErrorMessage {
                        batch_index: 0,
                        batch_index_error_message: Some("bad"),
                    }],
                    error_message: Some("nl"),
                    current_leader: produce_response::LeaderIdAndEpoch {
                        leader_id: 1,
                        leader_epoch: 2,
                    },
                }],
            }],
            throttle_time_ms: 0,
            node_endpoints: vec![produce_response::NodeEndpoint {
                node_id: 1,
                host: "h",
                port: 9092,
                rack: None,
            }],
        },
        cat(&[
            &[0x02],
            &UUID_A,
            &[0x02],
            &[0, 0, 0, 0],
            &[0x00, 0x06],
            &NULL_I64,
            &NULL_I64,
            &NULL_I64,
            &[0x02, 0, 0, 0, 0, 0x04],
            b"bad",
            &[0x00],
            &[0x03],
            b"nl",
            // CurrentLeader, tag 0: a struct, so it carries its own (empty) tagged section.
            &[0x01, 0x00, 0x09, 0, 0, 0, 1, 0, 0, 0, 2, 0x00],
            &[0x00], // topic tagged fields
            &[0, 0, 0, 0],
            &[0x01, 0x00, 13],
            &endpoints,
        ])
    );
}

// ---------------------------------------------------------------- Fetch

#[test]
fn fetch_request_v4() {
    golden!(
        FetchRequest,
        4,
        FetchRequest {
            replica_id: -1,
            max_wait_ms: 500,
            min_bytes: 1,
            max_bytes: 1 << 20,
            isolation_level: 1,
            topics: vec![FetchTopic {
                topic: "foo",
                topic_id: ZERO_UUID,
                partitions: vec![FetchPartition {
                    partition: 0,
                    fetch_offset: 7,
                    partition_max_bytes: 65536,
                    ..Default::default()
                }],
            }],
            ..Default::default()
        },
        cat(&[
            &[0xff, 0xff, 0xff, 0xff],
            &[0x00, 0x00, 0x01, 0xf4],
            &[0, 0, 0, 1],
            &[0x00, 0x10, 0x00, 0x00],
            &[0x01],
            &[0, 0, 0, 1],
            &[0x00, 0x03],
            b"foo",
            &[0, 0, 0, 1],
            &[0, 0, 0, 0],
            &7i64.to_be_bytes(),
            &[0x00, 0x01, 0x00, 0x00],
        ])
    );
}

#[test]
fn fetch_request_v18_with_tagged_fields() {
    golden!(
        FetchRequest,
        18,
        FetchRequest {
            cluster_id: Some("c1"),
            replica_id: -1, // versions 0-14 only
            replica_state: ReplicaState {
                replica_id: 2,
                replica_epoch: 3,
            },
            max_wait_ms: 500,
            min_bytes: 1,
            max_bytes: 52428800,
            isolation_level: 0,
            session_id: 0,
            session_epoch: -1,
            topics: vec![FetchTopic {
                topic: "",
                topic_id: UUID_A,
                partitions: vec![FetchPartition {
                    partition: 0,
                    current_leader_epoch: -1,
                    fetch_offset: 10,
                    last_fetched_epoch: -1,
                    log_start_offset: -1,
                    partition_max_bytes: 1 << 20,
                    replica_directory_id: ZERO_UUID,
                    high_watermark: 100,
                }],
            }],
            forgotten_topics_data: vec![ForgottenTopic {
                topic: "",
                topic_id: UUID_B,
                partitions: vec![1, 2],
            }],
            rack_id: "",
        },
        cat(&[
            &[0x00, 0x00, 0x01, 0xf4],
            &[0, 0, 0, 1],
            &[0x03, 0x20, 0x00, 0x00],
            &[0x00],
            &[0, 0, 0, 0],
            &[0xff, 0xff, 0xff, 0xff],
            &[0x02],
            &UUID_A,
            &[0x02],
            &[0, 0, 0, 0],
            &[0xff, 0xff, 0xff, 0xff],
            &10i64.to_be_bytes(),
            &[0xff, 0xff, 0xff, 0xff],
            &NULL_I64,
            &[0x00, 0x10, 0x00, 0x00],
            &[0x01, 0x01, 0x08], // HighWatermark, tag 1
            &100i64.to_be_bytes(),
            &[0x00], // topic tagged fields
            &[0x02],
            &UUID_B,
            &[0x03, 0, 0, 0, 1, 0, 0, 0, 2],
            &[0x00],
            &[0x01], // rack_id ""
            &[0x02],
            &[0x00, 0x03, 0x03],
            b"c1",
            &[0x01, 0x0d, 0, 0, 0, 2],
            &3i64.to_be_bytes(),
            &[0x00],
        ])
    );
}

#[test]
fn fetch_response_v4() {
    golden!(
        FetchResponse,
        4,
        FetchResponse {
            responses: vec![FetchableTopicResponse {
                topic: "foo",
                topic_id: ZERO_UUID,
                partitions: vec![
                    fetch_response::PartitionData {
                        partition_index: 0,
                        error_code: 0,
                        high_watermark: 3,
                        last_stable_offset: 3,
                        aborted_transactions: None,
                        records: Some(&[1, 2, 3]),
                        ..Default::default()
                    },
                    fetch_response::PartitionData {
                        partition_index: 1,
                        error_code: 1,
                        high_watermark: -1,
                        last_stable_offset: -1,
                        aborted_transactions: Some(vec![fetch_response::AbortedTransaction {
                            producer_id: 9,
                            first_offset: 2,
                        }]),
                        records: None,
                        ..Default::default()
                    },
                ],
            }],
            ..Default::default()
        },
        cat(&[
            &[0, 0, 0, 0],
            &[0, 0, 0, 1],
            &[0x00, 0x03],
            b"foo",
            &[0, 0, 0, 2],
            &[0, 0, 0, 0],
            &[0x00, 0x00],
            &3i64.to_be_bytes(),
            &3i64.to_be_bytes(),
            &[0xff, 0xff, 0xff, 0xff], // null aborted transactions
            &[0, 0, 0, 3, 1, 2, 3],
            &[0, 0, 0, 1],
            &[0x00, 0x01],
            &NULL_I64,
            &NULL_I64,
            &[0, 0, 0, 1],
            &9i64.to_be_bytes(),
            &2i64.to_be_bytes(),
            &[0xff, 0xff, 0xff, 0xff], // null records
        ])
    );
}

#[test]
fn fetch_response_v18_with_tagged_fields() {
    let endpoints = cat(&[
        &[0x02],
        &[0, 0, 0, 2],
        &[0x03],
        b"b2",
        &[0x00, 0x00, 0x23, 0x85],
        &[0x03],
        b"r1",
        &[0x00],
    ]);
    assert_eq!(endpoints.len(), 16);
    golden!(
        FetchResponse,
        18,
        FetchResponse {
            throttle_time_ms: 0,
            error_code: 0,
            session_id: 0,
            responses: vec![FetchableTopicResponse {
                topic: "",
                topic_id: UUID_A,
                partitions: vec![
                    fetch_response::PartitionData {
                        partition_index: 0,
                        error_code: 0,
                        high_watermark: 10,
                        last_stable_offset: 10,
                        log_start_offset: 0,
                        aborted_transactions: None,
                        preferred_read_replica: -1,
                        records: Some(&[1, 2, 3]),
                        ..Default::default()
                    },
                    fetch_response::PartitionData {
                        partition_index: 1,
                        error_code: 6,
                        high_watermark: -1,
                        last_stable_offset: -1,
                        log_start_offset: -1,
                        diverging_epoch: fetch_response::EpochEndOffset {
                            epoch: 4,
                            end_offset: 8,
                        },
                        current_leader: fetch_response::LeaderIdAndEpoch {
                            leader_id: 2,
                            leader_epoch: 5,
                        },
                        snapshot_id: fetch_response::SnapshotId {
                            end_offset: 7,
                            epoch: 1,
                        },
                        aborted_transactions: Some(vec![]),
                        preferred_read_replica: -1,
                        records: None,
                    },
                ],
            }],
            node_endpoints: vec![fetch_response::NodeEndpoint {
                node_id: 2,
                host: "b2",
                port: 9093,
                rack: Some("r1"),
            }],
        },
        cat(&[
            &[0, 0, 0, 0],
            &[0x00, 0x00],
            &[0, 0, 0, 0],
            &[0x02],
            &UUID_A,
            &[0x03],
            // partition 0
            &[0, 0, 0, 0],
            &[0x00, 0x00],
            &10i64.to_be_bytes(),
            &10i64.to_be_bytes(),
            &0i64.to_be_bytes(),
            &[0x00], // null aborted transactions
            &[0xff, 0xff, 0xff, 0xff],
            &[0x04, 1, 2, 3],
            &[0x00],
            // partition 1
            &[0, 0, 0, 1],
            &[0x00, 0x06],
            &NULL_I64,
            &NULL_I64,
            &NULL_I64,
            &[0x01], // empty (not null) aborted transactions
            &[0xff, 0xff, 0xff, 0xff],
            &[0x00], // null records
            &[0x03],
            &[0x00, 0x0d, 0, 0, 0, 4],
            &8i64.to_be_bytes(),
            &[0x00],
            &[0x01, 0x09, 0, 0, 0, 2, 0, 0, 0, 5, 0x00],
            &[0x02, 0x0d],
            &7i64.to_be_bytes(),
            &[0, 0, 0, 1, 0x00],
            &[0x00], // topic tagged fields
            &[0x01, 0x00, 16],
            &endpoints,
        ])
    );
}

// ---------------------------------------------------------------- Headers

#[test]
fn request_header_v1_non_flexible() {
    // Metadata v8: header v1 (client id as an int16-length string, no tagged fields).
    let f = cat(&[
        &[0x00, 0x03, 0x00, 0x08],
        &[0x00, 0x00, 0x00, 0x2a],
        &[0x00, 0x03],
        b"cli",
        &[0xde, 0xad],
    ]);
    let (h, body) = RequestHeader::parse(&f).unwrap();
    assert_eq!(
        h,
        RequestHeader {
            api_key: 3,
            api_version: 8,
            correlation_id: 42,
            client_id: Some("cli"),
        }
    );
    assert_eq!(body, &[0xde, 0xad]);

    // A null client id, and a body that begins with a byte that would look like tagged fields.
    let f = [0x00, 0x12, 0x00, 0x02, 0, 0, 0, 1, 0xff, 0xff, 0x00];
    let (h, body) = RequestHeader::parse(&f).unwrap();
    assert_eq!(h.client_id, None);
    assert_eq!(h.api_version, 2);
    assert_eq!(body, &[0x00]);
}

#[test]
fn request_header_v2_flexible() {
    // Metadata v12: header v2. The client id stays a *non-compact* string; tagged fields follow,
    // and unknown header tags are skipped.
    let f = cat(&[
        &[0x00, 0x03, 0x00, 0x0c],
        &[0x7f, 0xff, 0xff, 0xff],
        &[0x00, 0x02],
        b"id",
        &[0x01, 0x05, 0x02, 0xaa, 0xbb], // one tagged field: tag 5, 2 bytes
        &[0x01, 0x01, 0x00],
    ]);
    let (h, body) = RequestHeader::parse(&f).unwrap();
    assert_eq!(h.api_key, 3);
    assert_eq!(h.api_version, 12);
    assert_eq!(h.correlation_id, i32::MAX);
    assert_eq!(h.client_id, Some("id"));
    assert_eq!(body, &[0x01, 0x01, 0x00]);
}

#[test]
fn request_header_truncated_or_bad_is_an_error() {
    for f in [
        &[][..],
        &[0x00, 0x03, 0x00][..],
        &[0x00, 0x03, 0x00, 0x0c, 0, 0, 0][..],
        &[0x00, 0x03, 0x00, 0x0c, 0, 0, 0, 1, 0x00][..],
        &[0x00, 0x03, 0x00, 0x0c, 0, 0, 0, 1, 0x00, 0x05, b'a'][..],
        &[0x00, 0x03, 0x00, 0x0c, 0, 0, 0, 1, 0xff, 0xff][..], // v2 without tagged section
        &[
            0x00, 0x03, 0x00, 0x0c, 0, 0, 0, 1, 0xff, 0xff, 0x01, 0x00, 0x05,
        ][..],
    ] {
        assert!(RequestHeader::parse(f).is_err(), "{}", hex(f));
    }
}

fn hdr(api_key: i16, api_version: i16, correlation_id: i32) -> RequestHeader<'static> {
    RequestHeader {
        api_key,
        api_version,
        correlation_id,
        client_id: Some("x"),
    }
}

#[test]
fn response_header_v0_and_v1() {
    let body = |w: &mut Writer<'_>| w.bytes(&[0xaa, 0xbb]);
    // Produce v8: header v0 = correlation id only.
    assert_eq!(
        frame_response(&hdr(0, 8, 7), body, 0),
        vec![0, 0, 0, 6, 0, 0, 0, 7, 0xaa, 0xbb]
    );
    // Produce v9 (flexible): header v1 adds an empty tagged-field section.
    assert_eq!(
        frame_response(&hdr(0, 9, 7), body, 0),
        vec![0, 0, 0, 7, 0, 0, 0, 7, 0x00, 0xaa, 0xbb]
    );
    // Metadata v8 / v9, Fetch v11 / v12, DescribeTopicPartitions v0 (flexible from v0).
    assert_eq!(frame_response(&hdr(3, 8, 1), body, 0).len(), 10);
    assert_eq!(frame_response(&hdr(3, 9, 1), body, 0).len(), 11);
    assert_eq!(frame_response(&hdr(1, 11, 1), body, 0).len(), 10);
    assert_eq!(frame_response(&hdr(1, 12, 1), body, 0).len(), 11);
    assert_eq!(frame_response(&hdr(75, 0, 1), body, 0).len(), 11);
}

#[test]
fn api_versions_response_header_is_always_v0() {
    let body = |w: &mut Writer<'_>| w.bytes(&[0x00, 0x23]);
    for v in [0, 2, 3, 4, 5, 127] {
        assert_eq!(
            frame_response(&hdr(18, v, -5), body, 0),
            vec![0, 0, 0, 6, 0xff, 0xff, 0xff, 0xfb, 0x00, 0x23],
            "ApiVersions v{v}"
        );
    }
}

#[test]
fn multi_byte_varint_lengths() {
    // A 200-byte compact string: length + 1 = 201 = 0xc9 0x01 as an unsigned varint.
    let name = "n".repeat(200);
    let mut bytes = vec![0xc9, 0x01];
    bytes.extend_from_slice(name.as_bytes());
    bytes.extend_from_slice(&[0x01, 0x00]);
    golden!(
        ApiVersionsRequest,
        3,
        ApiVersionsRequest {
            client_software_name: &name,
            client_software_version: "",
        },
        bytes
    );
    // 130 api keys: compact array length 131 = 0x83 0x01.
    let keys: Vec<ApiVersion> = (0..130)
        .map(|k| ApiVersion {
            api_key: k,
            min_version: 0,
            max_version: 1,
        })
        .collect();
    let mut bytes = vec![0x00, 0x00, 0x83, 0x01];
    for k in 0..130i16 {
        bytes.extend_from_slice(&k.to_be_bytes());
        bytes.extend_from_slice(&[0, 0, 0, 1, 0]);
    }
    bytes.extend_from_slice(&[0, 0, 0, 0, 0]);
    golden!(
        ApiVersionsResponse,
        4,
        ApiVersionsResponse {
            api_keys: keys,
            ..Default::default()
        },
        bytes
    );
}

#[test]
fn hostile_lengths_are_errors_not_allocations() {
    // int32 array count of 2^31-1 with nothing behind it.
    let b = [0x00, 0x00, 0x7f, 0xff, 0xff, 0xff];
    assert!(ApiVersionsResponse::decode(&mut Reader::new(&b), 0).is_err());
    // Compact array length of 2^32-1 (5-byte varint).
    let b = [0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x0f];
    assert!(ApiVersionsResponse::decode(&mut Reader::new(&b), 4).is_err());
    // Negative (non-null) string length in a non-nullable field.
    let b = [0, 0, 0, 1, 0xff, 0xfe];
    assert!(MetadataRequest::decode(&mut Reader::new(&b), 0).is_err());
    // Records length past the end of the frame.
    let b = cat(&[
        &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0],
        &[0, 0, 0, 1, 0x00, 0x01, b'a', 0, 0, 0, 1, 0, 0, 0, 0],
        &[0x7f, 0xff, 0xff, 0xff, 1, 2],
    ]);
    assert!(ProduceRequest::decode(&mut Reader::new(&b), 3).is_err());
    // A tagged field whose size runs past the end.
    let b = [0x00, 0x00, 0x01, 0, 0, 0, 0, 0x01, 0x05, 0x10, 0xaa];
    assert!(ApiVersionsResponse::decode(&mut Reader::new(&b), 4).is_err());
    // A varint that never ends.
    let b = [0x00, 0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80];
    assert!(ApiVersionsResponse::decode(&mut Reader::new(&b), 4).is_err());
}
