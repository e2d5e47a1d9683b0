//! The CodeCrafters "Build your own Kafka" stages, replayed against the real binary.
//!
//! Each test lays out the log directory the harness (codecrafters-io/kafka-tester) writes, starts
//! `minikafka <server.properties>` like `./your_program.sh /tmp/server.properties` does (on a free
//! port instead of 9092, so tests run in parallel), sends the harness's exact request bytes and
//! checks the response the way the harness decodes it: strictly, field by field, to the last byte.
//! Stage slugs are in the test names.

mod common;
#[path = "fixtures/kraft.rs"]
mod kraft;

use common::{free_port, hex, request, BrokerProcess, Client, Reader, TempDir};
use kraft::{Batch, TopicSpec};

const API_VERSIONS: i16 = 18;
const FETCH: i16 = 1;
const PRODUCE: i16 = 0;
const DESCRIBE_TOPIC_PARTITIONS: i16 = 75;

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const UNSUPPORTED_VERSION: i16 = 35;
const UNKNOWN_TOPIC_ID: i16 = 100;

struct Stage {
    dir: TempDir,
    broker: BrokerProcess,
}

impl Stage {
    fn start(tag: &str, topics: Vec<TopicSpec>) -> Stage {
        let dir = TempDir::new(tag);
        let log_dir = dir.path().join("kraft-combined-logs");
        kraft::write_log_dir(&log_dir, &topics).expect("write log dir");
        let port = free_port();
        let props = dir.path().join("server.properties");
        std::fs::write(
            &props,
            kraft::server_properties(port, free_port(), &log_dir),
        )
        .unwrap();
        let broker = BrokerProcess::start(&props, port, dir.path());
        Stage { dir, broker }
    }

    fn client(&self) -> Client {
        self.broker.client()
    }

    fn log_file(&self, topic: &str, partition: i32) -> Vec<u8> {
        let p = self
            .dir
            .path()
            .join("kraft-combined-logs")
            .join(format!("{topic}-{partition}"))
            .join("00000000000000000000.log");
        std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }
}

// ------------------------------------------------------------------ requests

/// ApiVersions body as the harness sends it (v4 layout whatever the header version says).
fn api_versions_request(version: i16, correlation_id: i32) -> Vec<u8> {
    let mut body = Vec::new();
    kraft::put_compact_string(&mut body, "kafka-cli");
    kraft::put_compact_string(&mut body, "0.1");
    body.push(0);
    request(API_VERSIONS, version, correlation_id, &body)
}

fn describe_topic_partitions_request(
    correlation_id: i32,
    topics: &[&str],
    partition_limit: i32,
) -> Vec<u8> {
    let mut body = Vec::new();
    kraft::put_uvarint(&mut body, topics.len() as u64 + 1);
    for t in topics {
        kraft::put_compact_string(&mut body, t);
        body.push(0);
    }
    body.extend_from_slice(&partition_limit.to_be_bytes());
    body.push(0xff); // cursor: null
    body.push(0);
    request(DESCRIBE_TOPIC_PARTITIONS, 0, correlation_id, &body)
}

/// Fetch v16 as the harness builds it: max_wait 500, min_bytes 1, max_bytes i32::MAX, session 0/0,
/// per partition current_leader_epoch -1, fetch_offset 0, last_fetched_epoch -1,
/// log_start_offset -1, partition_max_bytes i32::MAX; no forgotten topics, rack "".
fn fetch_request(correlation_id: i32, topics: &[([u8; 16], Vec<i32>)]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&500i32.to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&i32::MAX.to_be_bytes());
    b.push(0); // isolation level
    b.extend_from_slice(&0i32.to_be_bytes()); // session id
    b.extend_from_slice(&0i32.to_be_bytes()); // session epoch
    kraft::put_uvarint(&mut b, topics.len() as u64 + 1);
    for (id, parts) in topics {
        b.extend_from_slice(id);
        kraft::put_uvarint(&mut b, parts.len() as u64 + 1);
        for p in parts {
            b.extend_from_slice(&p.to_be_bytes());
            b.extend_from_slice(&(-1i32).to_be_bytes());
            b.extend_from_slice(&0i64.to_be_bytes());
            b.extend_from_slice(&(-1i32).to_be_bytes());
            b.extend_from_slice(&(-1i64).to_be_bytes());
            b.extend_from_slice(&i32::MAX.to_be_bytes());
            b.push(0);
        }
        b.push(0);
    }
    b.push(1); // forgotten topics: empty
    b.push(1); // rack id: ""
    b.push(0);
    request(FETCH, 16, correlation_id, &b)
}

/// Produce v11: transactional id null, acks -1, timeout 30000, one batch per partition.
/// (topic name, [(partition, record batch bytes)]).
type ProduceTopic<'a> = (&'a str, Vec<(i32, Vec<u8>)>);

fn produce_request(correlation_id: i32, topics: &[ProduceTopic]) -> Vec<u8> {
    let mut b = vec![0]; // transactional id: null
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&30000i32.to_be_bytes());
    kraft::put_uvarint(&mut b, topics.len() as u64 + 1);
    for (name, parts) in topics {
        kraft::put_compact_string(&mut b, name);
        kraft::put_uvarint(&mut b, parts.len() as u64 + 1);
        for (p, records) in parts {
            b.extend_from_slice(&p.to_be_bytes());
            kraft::put_uvarint(&mut b, records.len() as u64 + 1);
            b.extend_from_slice(records);
            b.push(0);
        }
        b.push(0);
    }
    b.push(0);
    request(PRODUCE, 11, correlation_id, &b)
}

// ----------------------------------------------------------------- responses

struct ApiKey {
    key: i16,
    min: i16,
    max: i16,
}

/// ApiVersions v4 response: header v0 (no tagged fields!), error, compact array of
/// (key, min, max, tags), throttle, tags; nothing after.
fn decode_api_versions(payload: &[u8], correlation_id: i32) -> Vec<ApiKey> {
    let mut r = Reader::new(payload);
    assert_eq!(r.i32("correlation id"), correlation_id);
    assert_eq!(r.i16("error code"), 0, "ApiVersions error code");
    let n = r.compact_len("api keys").expect("api keys: null array");
    let keys = (0..n)
        .map(|_| {
            let k = ApiKey {
                key: r.i16("api key"),
                min: r.i16("min version"),
                max: r.i16("max version"),
            };
            r.tagged_fields("api key tags");
            k
        })
        .collect();
    r.i32("throttle time");
    r.tagged_fields("body tags");
    r.expect_end("ApiVersions v4 response");
    keys
}

fn assert_supports(keys: &[ApiKey], key: i16, version: i16) {
    let k = keys
        .iter()
        .find(|k| k.key == key)
        .unwrap_or_else(|| panic!("ApiVersions does not list API key {key}"));
    assert!(
        k.min <= version && k.max >= version,
        "API key {key}: range {}..={} must include {version}",
        k.min,
        k.max
    );
}

/// Response header v1: correlation id + tagged fields.
fn header_v1(r: &mut Reader, correlation_id: i32) {
    assert_eq!(r.i32("correlation id"), correlation_id);
    r.tagged_fields("response header tags");
}

/// (topic id, partitions).
type FetchTopic = ([u8; 16], Vec<FetchPartition>);

struct FetchPartition {
    id: i32,
    error: i16,
    high_watermark: i64,
    log_start: i64,
    records: Vec<u8>,
}

/// Fetch v16 response: returns (error, topics[(id, partitions)]) after checking throttle == 0.
fn decode_fetch(payload: &[u8], correlation_id: i32) -> (i16, Vec<FetchTopic>) {
    let mut r = Reader::new(payload);
    header_v1(&mut r, correlation_id);
    assert_eq!(r.i32("throttle time"), 0, "Fetch throttle_time_ms");
    let error = r.i16("error code");
    r.i32("session id");
    let n = r
        .compact_len("responses")
        .expect("Fetch responses: null array (send an empty array)");
    let mut topics = Vec::new();
    for _ in 0..n {
        let id = r.uuid("topic id");
        let np = r.compact_len("partitions").expect("partitions: null");
        let mut parts = Vec::new();
        for _ in 0..np {
            let id = r.i32("partition index");
            let error = r.i16("partition error");
            let high_watermark = r.i64("high watermark");
            r.i64("last stable offset");
            let log_start = r.i64("log start offset");
            if let Some(n) = r.compact_len("aborted transactions") {
                for _ in 0..n {
                    r.i64("producer id");
                    r.i64("first offset");
                    r.tagged_fields("aborted txn tags");
                }
            }
            assert_eq!(r.i32("preferred read replica"), -1);
            let records = r.compact_bytes("records").unwrap_or(&[]).to_vec();
            r.tagged_fields("partition tags");
            parts.push(FetchPartition {
                id,
                error,
                high_watermark,
                log_start,
                records,
            });
        }
        r.tagged_fields("topic tags");
        topics.push((id, parts));
    }
    r.tagged_fields("body tags");
    r.expect_end("Fetch v16 response");
    (error, topics)
}

struct ProducePartition {
    index: i32,
    error: i16,
    base_offset: i64,
    log_append_time: i64,
    log_start: i64,
}

fn decode_produce(payload: &[u8], correlation_id: i32) -> Vec<(String, Vec<ProducePartition>)> {
    let mut r = Reader::new(payload);
    header_v1(&mut r, correlation_id);
    let n = r.compact_len("responses").expect("responses: null");
    let mut topics = Vec::new();
    for _ in 0..n {
        let name = r.compact_string("topic name");
        let np = r.compact_len("partitions").expect("partitions: null");
        let mut parts = Vec::new();
        for _ in 0..np {
            let p = ProducePartition {
                index: r.i32("index"),
                error: r.i16("error code"),
                base_offset: r.i64("base offset"),
                log_append_time: r.i64("log append time"),
                log_start: r.i64("log start offset"),
            };
            let errs = r.compact_len("record errors").expect("record errors: null");
            for _ in 0..errs {
                r.i32("batch index");
                r.compact_nullable_string("batch index error message");
                r.tagged_fields("record error tags");
            }
            r.compact_nullable_string("error message");
            r.tagged_fields("partition tags");
            parts.push(p);
        }
        r.tagged_fields("topic tags");
        topics.push((name, parts));
    }
    assert_eq!(r.i32("throttle time"), 0, "Produce throttle_time_ms");
    r.tagged_fields("body tags");
    r.expect_end("Produce v11 response");
    topics
}

struct DtpPartition {
    error: i16,
    index: i32,
    leader: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
}

struct DtpTopic {
    error: i16,
    name: Option<String>,
    id: [u8; 16],
    partitions: Vec<DtpPartition>,
}

/// DescribeTopicPartitions v0 response; asserts the cursor is null (-1).
fn decode_dtp(payload: &[u8], correlation_id: i32) -> Vec<DtpTopic> {
    let mut r = Reader::new(payload);
    header_v1(&mut r, correlation_id);
    r.i32("throttle time");
    let n = r.compact_len("topics").expect("topics: null");
    let mut topics = Vec::new();
    for _ in 0..n {
        let error = r.i16("topic error");
        let name = r.compact_nullable_string("topic name");
        let id = r.uuid("topic id");
        r.boolean("is internal");
        let np = r.compact_len("partitions").expect("partitions: null");
        let mut partitions = Vec::new();
        for _ in 0..np {
            let error = r.i16("partition error");
            let index = r.i32("partition index");
            let leader = r.i32("leader id");
            r.i32("leader epoch");
            let replicas = r
                .compact_i32_array("replica nodes")
                .expect("replicas: null");
            let isr = r.compact_i32_array("isr nodes").expect("isr: null");
            r.compact_i32_array("eligible leader replicas");
            r.compact_i32_array("last known elr");
            r.compact_i32_array("offline replicas");
            r.tagged_fields("partition tags");
            partitions.push(DtpPartition {
                error,
                index,
                leader,
                replicas,
                isr,
            });
        }
        r.i32("topic authorized operations");
        r.tagged_fields("topic tags");
        topics.push(DtpTopic {
            error,
            name,
            id,
            partitions,
        });
    }
    assert_eq!(r.i8("cursor"), -1, "next_cursor must be null (-1)");
    r.tagged_fields("body tags");
    r.expect_end("DescribeTopicPartitions v0 response");
    topics
}

// -------------------------------------------------------------- golden bytes

/// The GG1 request from the harness's passing-run fixture (topic "apple", value "apple",
/// correlation id 0x517f2d86): our encoder must produce the harness's bytes exactly.
const GG1_REQUEST: &str = "00000077000000 0b517f2d86000c6b61\
    66 6b 61 2d 74 65 73 74 65 72 00 00 ff ff 00 00 \
    75 30 02 06 61 70 70 6c 65 02 00 00 00 00 4a 00 \
    00 00 00 00 00 00 00 00 00 00 3d 00 00 00 00 02 \
    a4 37 a6 ee 00 00 00 00 00 00 00 00 01 91 e0 5b \
    6d 8b 00 00 01 91 e0 5b 6d 8b 00 00 00 00 00 00 \
    00 00 00 00 00 00 00 00 00 00 00 01 16 00 00 00 \
    01 0a 61 70 70 6c 65 00 00 00 00";

/// The ApiVersions v4 request of the same run (correlation id 177586623).
const XZ1_REQUEST: &str = "00 00 00 26 00 12 00 04 0a 95 c1 bf 00 0c 6b 61 \
    66 6b 61 2d 74 65 73 74 65 72 00 0a 6b 61 66 6b \
    61 2d 63 6c 69 04 30 2e 31 00";

fn unhex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
    digits
        .chunks(2)
        .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap())
        .collect()
}

#[test]
fn encoders_reproduce_harness_bytes() {
    let batch = Batch::data(0, &["apple"]).encode();
    let req = produce_request(0x517f2d86, &[("apple", vec![(0, batch)])]);
    assert_eq!(hex(&req), hex(&unhex(GG1_REQUEST)));
    assert_eq!(
        hex(&api_versions_request(4, 177586623)),
        hex(&unhex(XZ1_REQUEST))
    );
    assert_eq!(
        kraft::base64_std(&kraft::DIRECTORY_UUID),
        "EAAAAAAAQACAAAAAAAAAAQ=="
    );
}

// -------------------------------------------------------------------- stages

#[test]
fn stage_vi6_nv3_wa6_pv1_api_versions() {
    let s = Stage::start("apiversions", vec![]);
    let mut c = s.client();
    // nv3/wa6: the correlation id comes back; pv1: the full v4 body decodes.
    let payload = c.roundtrip(&unhex(XZ1_REQUEST));
    let keys = decode_api_versions(&payload, 177586623);
    // gs0, yk1, xz1: the keys each extension needs, at the versions the harness sends.
    assert_supports(&keys, API_VERSIONS, 4);
    assert_supports(&keys, API_VERSIONS, 0);
    assert_supports(&keys, FETCH, 16);
    assert_supports(&keys, DESCRIBE_TOPIC_PARTITIONS, 0);
    assert_supports(&keys, PRODUCE, 11);
    let mut sorted: Vec<i16> = keys.iter().map(|k| k.key).collect();
    sorted.dedup();
    assert_eq!(sorted.len(), keys.len(), "duplicate API keys");
}

#[test]
fn stage_nc5_unsupported_api_versions_version() {
    let s = Stage::start("nc5", vec![]);
    let mut c = s.client();
    // Newer harness: 1000..2000; older one: any version outside 0..=4, negative ones too.
    for (i, v) in [1337i16, 1000, 2000, 5, -1, -1234].into_iter().enumerate() {
        let cid = 0x1234_0000 + i as i32;
        let payload = c.roundtrip(&api_versions_request(v, cid));
        let mut r = Reader::new(&payload);
        assert_eq!(r.i32("correlation id"), cid, "version {v}");
        assert_eq!(r.i16("error code"), UNSUPPORTED_VERSION, "version {v}");
    }
    // The connection is still usable afterwards.
    let payload = c.roundtrip(&api_versions_request(4, 99));
    decode_api_versions(&payload, 99);
}

#[test]
fn stage_nh4_sequential_and_pipelined_requests() {
    let s = Stage::start("nh4", vec![]);
    let mut c = s.client();
    for cid in [5, 6, 7, i32::MAX - 1, 0] {
        decode_api_versions(&c.roundtrip(&api_versions_request(4, cid)), cid);
    }
    // Pipelined: several requests written before any response is read; answers keep order.
    let mut all = Vec::new();
    for cid in 100..110 {
        all.extend(api_versions_request(4, cid));
    }
    c.send(&all);
    for cid in 100..110 {
        decode_api_versions(&c.recv(), cid);
    }
}

#[test]
fn stage_sk0_concurrent_clients() {
    let s = Stage::start("sk0", vec![]);
    let mut clients: Vec<Client> = (0..5).map(|_| s.client()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(&api_versions_request(4, 1000 + i as i32));
    }
    for (i, c) in clients.iter_mut().enumerate().rev() {
        decode_api_versions(&c.recv(), 1000 + i as i32);
    }
    // One client leaving does not disturb the others.
    drop(clients.remove(2));
    for (i, c) in clients.iter_mut().enumerate() {
        decode_api_versions(
            &c.roundtrip(&api_versions_request(4, 2000 + i as i32)),
            2000 + i as i32,
        );
    }
}

#[test]
fn stage_dh6_fetch_no_topics() {
    let s = Stage::start("dh6", vec![]);
    let (error, topics) = decode_fetch(&s.client().roundtrip(&fetch_request(42, &[])), 42);
    assert_eq!(error, 0);
    assert!(topics.is_empty());
}

#[test]
fn stage_hn6_fetch_unknown_topic_id() {
    let s = Stage::start("hn6", vec![]);
    let id = kraft::topic_uuid(0x4242);
    let (error, topics) = decode_fetch(
        &s.client().roundtrip(&fetch_request(43, &[(id, vec![0])])),
        43,
    );
    assert_eq!(error, 0);
    assert_eq!(topics.len(), 1);
    assert_eq!(topics[0].0, id, "topic id echoed");
    assert_eq!(topics[0].1.len(), 1);
    assert_eq!(topics[0].1[0].id, 0);
    assert_eq!(topics[0].1[0].error, UNKNOWN_TOPIC_ID);
}

#[test]
fn stage_cm4_fetch_empty_topic() {
    let id = kraft::topic_uuid(0xc4);
    let s = Stage::start("cm4", vec![TopicSpec::new("pear", id, vec![vec![]])]);
    let (error, topics) = decode_fetch(
        &s.client().roundtrip(&fetch_request(44, &[(id, vec![0])])),
        44,
    );
    assert_eq!(error, 0);
    assert_eq!(topics.len(), 1);
    assert_eq!(topics[0].0, id);
    let p = &topics[0].1[0];
    assert_eq!((p.id, p.error), (0, 0));
    assert!(
        p.records.is_empty(),
        "no records expected:\n{}",
        hex(&p.records)
    );
    assert_eq!(p.high_watermark, 0);
}

#[test]
fn stage_eg2_fd8_fetch_messages_from_disk() {
    let single = kraft::topic_uuid(0xe2);
    let multi = kraft::topic_uuid(0xfd8);
    let s = Stage::start(
        "eg2",
        vec![
            TopicSpec::new("quz", single, vec![vec!["Hello World!"]]),
            TopicSpec::new(
                "paz",
                multi,
                vec![vec!["Hello Earth!", "Hello Reverse World!", "third"]],
            ),
        ],
    );
    let mut c = s.client();
    for (cid, topic, id, n) in [(45, "quz", single, 1), (46, "paz", multi, 3)] {
        let (error, topics) =
            decode_fetch(&c.roundtrip(&fetch_request(cid, &[(id, vec![0])])), cid);
        assert_eq!(error, 0);
        assert_eq!(topics.len(), 1);
        assert_eq!(topics[0].0, id);
        let p = &topics[0].1[0];
        assert_eq!((p.id, p.error), (0, 0));
        assert_eq!((p.high_watermark, p.log_start), (n, 0));
        // The harness compares the record batches byte for byte with what it wrote to disk.
        assert_eq!(
            hex(&p.records),
            hex(&s.log_file(topic, 0)),
            "{topic}: records differ from the log file"
        );
    }
}

#[test]
fn stage_vt6_describe_unknown_topic() {
    let s = Stage::start("vt6", vec![]);
    let topics = decode_dtp(
        &s.client().roundtrip(&describe_topic_partitions_request(
            47,
            &["unknown-topic-saz"],
            1,
        )),
        47,
    );
    assert_eq!(topics.len(), 1);
    let t = &topics[0];
    assert_eq!(t.error, UNKNOWN_TOPIC_OR_PARTITION);
    assert_eq!(t.name.as_deref(), Some("unknown-topic-saz"));
    assert_eq!(t.id, [0u8; 16], "unknown topic: all-zero topic id");
    assert!(t.partitions.is_empty());
}

#[test]
fn stage_ea7_lk1_ku4_wq2_describe_topics() {
    let specs = vec![
        TopicSpec::new("foo", kraft::topic_uuid(0xf00), vec![vec!["a message"]]),
        TopicSpec::new("bar", kraft::topic_uuid(0xba2), vec![vec![], vec![]]),
        TopicSpec::new(
            "baz",
            kraft::topic_uuid(0xba3),
            vec![vec![], vec!["x"], vec![]],
        ),
    ];
    let s = Stage::start("dtp", specs.clone());
    let mut c = s.client();
    // ea7: one topic, one partition, partition limit 1 (exactly reached: still no cursor).
    // lk1/ku4: one topic, several partitions, in partition order.
    for (cid, name, n) in [(48, "foo", 1usize), (49, "bar", 2), (50, "baz", 3)] {
        let topics = decode_dtp(
            &c.roundtrip(&describe_topic_partitions_request(cid, &[name], n as i32)),
            cid,
        );
        assert_eq!(topics.len(), 1);
        let spec = specs.iter().find(|t| t.name == name).unwrap();
        check_dtp_topic(&topics[0], spec);
    }
    // wq2: several topics, asked in any order, answered sorted by name.
    let topics = decode_dtp(
        &c.roundtrip(&describe_topic_partitions_request(
            51,
            &["foo", "baz", "bar"],
            6,
        )),
        51,
    );
    let names: Vec<_> = topics
        .iter()
        .map(|t| t.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        names,
        ["bar", "baz", "foo"],
        "topics must be sorted by name"
    );
    for t in &topics {
        let spec = specs
            .iter()
            .find(|s| Some(&s.name) == t.name.as_ref())
            .unwrap();
        check_dtp_topic(t, spec);
    }
}

fn check_dtp_topic(t: &DtpTopic, spec: &TopicSpec) {
    assert_eq!(t.error, 0, "{}", spec.name);
    assert_eq!(t.name.as_deref(), Some(spec.name.as_str()));
    assert_eq!(
        t.id, spec.id,
        "{}: topic id from the metadata log",
        spec.name
    );
    let idx: Vec<i32> = t.partitions.iter().map(|p| p.index).collect();
    assert_eq!(
        idx,
        (0..spec.partitions.len() as i32).collect::<Vec<_>>(),
        "{}: partitions in order",
        spec.name
    );
    for p in &t.partitions {
        assert_eq!(p.error, 0);
        assert_eq!(p.leader, 1, "leader from the PartitionRecord");
        assert_eq!(
            (p.replicas.as_slice(), p.isr.as_slice()),
            (&[1][..], &[1][..])
        );
    }
}

#[test]
fn stage_zf2_produce_invalid_topic_or_partition() {
    let s = Stage::start(
        "zf2",
        vec![TopicSpec::new(
            "orange",
            kraft::topic_uuid(0x0a),
            vec![vec!["x"]],
        )],
    );
    let mut c = s.client();
    for (cid, topic, partition) in [(52, "orange", 720), (53, "pear", 0)] {
        let batch = Batch::data(0, &["mango"]).encode();
        let topics = decode_produce(
            &c.roundtrip(&produce_request(cid, &[(topic, vec![(partition, batch)])])),
            cid,
        );
        assert_eq!(topics.len(), 1);
        assert_eq!(topics[0].0, topic);
        let p = &topics[0].1[0];
        assert_eq!(p.index, partition);
        assert_eq!(p.error, UNKNOWN_TOPIC_OR_PARTITION, "{topic}-{partition}");
        assert_eq!(
            (p.base_offset, p.log_append_time, p.log_start),
            (-1, -1, -1)
        );
    }
}

#[test]
fn stage_gg1_ls8_yd8_produce_then_fetch() {
    let id = kraft::topic_uuid(0x158);
    let s = Stage::start("ls8", vec![TopicSpec::new("pineapple", id, vec![vec![]])]);
    let mut c = s.client();
    let values = ["pineapple", "raspberry", "blueberry"];
    let batch = Batch::data(0, &values).encode();
    let topics = decode_produce(
        &c.roundtrip(&produce_request(
            54,
            &[("pineapple", vec![(0, batch.clone())])],
        )),
        54,
    );
    assert_eq!(topics.len(), 1);
    let p = &topics[0].1[0];
    assert_eq!((p.index, p.error), (0, 0));
    assert_eq!((p.base_offset, p.log_append_time, p.log_start), (0, -1, 0));
    // The log file holds exactly the batch as sent (base offset 0, leader epoch 0, same CRC).
    assert_eq!(
        hex(&s.log_file("pineapple", 0)),
        hex(&batch),
        "log file vs produced batch"
    );
    // And Fetch v16 returns the same bytes.
    let (error, topics) = decode_fetch(&c.roundtrip(&fetch_request(55, &[(id, vec![0])])), 55);
    assert_eq!(error, 0);
    let p = &topics[0].1[0];
    assert_eq!((p.error, p.high_watermark), (0, 3));
    assert_eq!(hex(&p.records), hex(&batch));
}

#[test]
fn stage_ct4_ov0_produce_multiple_partitions_and_topics() {
    let a = kraft::topic_uuid(0xc74);
    let b = kraft::topic_uuid(0x0f0);
    let s = Stage::start(
        "ct4",
        vec![
            TopicSpec::new("banana", a, vec![vec![], vec![], vec![]]),
            TopicSpec::new("grape", b, vec![vec![], vec![]]),
        ],
    );
    let mut c = s.client();
    let batch = |p: i32, t: &str| {
        Batch::data(0, &[&format!("{t}-{p}-one"), &format!("{t}-{p}-two")]).encode()
    };
    let req = produce_request(
        56,
        &[
            ("banana", (0..3).map(|p| (p, batch(p, "banana"))).collect()),
            ("grape", (0..2).map(|p| (p, batch(p, "grape"))).collect()),
        ],
    );
    let topics = decode_produce(&c.roundtrip(&req), 56);
    assert_eq!(topics.len(), 2);
    // The harness matches topics and partitions by name/index, in any order.
    for (name, n) in [("banana", 3), ("grape", 2)] {
        let (_, parts) = topics
            .iter()
            .find(|(t, _)| t == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(parts.len(), n);
        for p in 0..n as i32 {
            let r = parts.iter().find(|x| x.index == p).unwrap();
            assert_eq!(
                (r.error, r.base_offset, r.log_append_time, r.log_start),
                (0, 0, -1, 0)
            );
            assert_eq!(
                hex(&s.log_file(name, p)),
                hex(&batch(p, name)),
                "{name}-{p} log file"
            );
        }
    }
}
