//! A small raw Kafka client for integration tests: the broker started in-process on port 0 with a
//! temp log dir, and a blocking TCP client that frames requests by hand (size prefix, request
//! header v1/v2, body from the generated encoders) the way the CodeCrafters harness does.
//!
//! Header versions come from a table written here, not from the crate's `apis`, so a mistake
//! there shows up as a failing test rather than being mirrored.

#![allow(dead_code)]

use minikafka::config::Config;
use minikafka::protocol::wire::{Reader, Writer};
use minikafka::records::BatchBuilder;
use minikafka::server::{self, Running};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

pub const PRODUCE: i16 = 0;
pub const FETCH: i16 = 1;
pub const LIST_OFFSETS: i16 = 2;
pub const METADATA: i16 = 3;
pub const API_VERSIONS: i16 = 18;
pub const CREATE_TOPICS: i16 = 19;
pub const DESCRIBE_TOPIC_PARTITIONS: i16 = 75;
pub const INIT_PRODUCER_ID: i16 = 22;
pub const OFFSET_COMMIT: i16 = 8;
pub const OFFSET_FETCH: i16 = 9;
pub const FIND_COORDINATOR: i16 = 10;
pub const JOIN_GROUP: i16 = 11;
pub const HEARTBEAT: i16 = 12;
pub const LEAVE_GROUP: i16 = 13;
pub const SYNC_GROUP: i16 = 14;
pub const DESCRIBE_GROUPS: i16 = 15;
pub const LIST_GROUPS: i16 = 16;
pub const DELETE_GROUPS: i16 = 42;
pub const OFFSET_DELETE: i16 = 47;
pub const DELETE_TOPICS: i16 = 20;
pub const DELETE_RECORDS: i16 = 21;
pub const DESCRIBE_CONFIGS: i16 = 32;
pub const ALTER_CONFIGS: i16 = 33;
pub const DESCRIBE_LOG_DIRS: i16 = 35;
pub const CREATE_PARTITIONS: i16 = 37;
pub const INCREMENTAL_ALTER_CONFIGS: i16 = 44;
pub const DESCRIBE_CLUSTER: i16 = 60;

/// First flexible version of each API (from Kafka's schemas' `flexibleVersions`).
pub fn first_flexible(api_key: i16) -> i16 {
    match api_key {
        PRODUCE => 9,
        FETCH => 12,
        LIST_OFFSETS => 6,
        METADATA => 9,
        API_VERSIONS => 3,
        CREATE_TOPICS => 5,
        DESCRIBE_TOPIC_PARTITIONS => 0,
        INIT_PRODUCER_ID => 2,
        OFFSET_COMMIT => 8,
        OFFSET_FETCH => 6,
        FIND_COORDINATOR => 3,
        JOIN_GROUP => 6,
        HEARTBEAT => 4,
        LEAVE_GROUP => 4,
        SYNC_GROUP => 4,
        DESCRIBE_GROUPS => 5,
        LIST_GROUPS => 3,
        DELETE_GROUPS => 2,
        DELETE_TOPICS => 4,
        DELETE_RECORDS => 2,
        DESCRIBE_CONFIGS => 4,
        ALTER_CONFIGS => 2,
        DESCRIBE_LOG_DIRS => 2,
        CREATE_PARTITIONS => 2,
        INCREMENTAL_ALTER_CONFIGS => 1,
        DESCRIBE_CLUSTER => 0,
        // The transaction APIs.
        24..=26 | 28 => 3,
        27 | 61 | 65 | 66 => 0,
        23 => 4,      // OffsetForLeaderEpoch
        55 => 0,      // DescribeQuorum
        62 | 63 => 0, // BrokerRegistration, BrokerHeartbeat
        43 => 2,      // ElectLeaders
        56 => 0,      // AlterPartition
        _ => i16::MAX,
    }
}

pub fn is_flexible(api_key: i16, version: i16) -> bool {
    version >= first_flexible(api_key)
}

#[path = "../shared/tempdir.rs"]
mod tempdir;
pub use tempdir::TempDir;
#[path = "../shared/ports.rs"]
mod ports;
#[allow(unused_imports)]
pub use ports::free_port;

/// A broker running in this process, with its own log dir.
pub struct TestBroker {
    pub running: Option<Running>,
    pub addr: SocketAddr,
    pub config: Config,
    // Dropped after `running` (field order), so the broker stops before its dir goes.
    pub dir: TempDir,
}

pub fn test_config(dir: &Path) -> Config {
    // Not `Config::default()` + `port = 0`: that keeps advertising the default port 9092.
    Config::ephemeral(dir)
}

impl TestBroker {
    pub fn start(tag: &str) -> TestBroker {
        Self::start_with(tag, |_| {})
    }

    pub fn start_with(tag: &str, f: impl FnOnce(&mut Config)) -> TestBroker {
        let dir = TempDir::new(tag);
        let mut config = test_config(dir.path());
        f(&mut config);
        let running = server::spawn(config.clone()).expect("broker starts");
        TestBroker {
            addr: running.addr,
            running: Some(running),
            config,
            dir,
        }
    }

    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Stops the broker gracefully and starts a new one on the same dir (a new port).
    pub fn restart(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown();
        }
        let running = server::spawn(self.config.clone()).expect("broker restarts");
        self.addr = running.addr;
        self.running = Some(running);
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown();
        }
    }
}

/// A blocking client speaking raw frames.
pub struct Client {
    pub stream: TcpStream,
    next_correlation: i32,
    pub client_id: Option<String>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            next_correlation: 1,
            client_id: Some("test-client".into()),
        }
    }

    pub fn set_read_timeout(&self, d: Duration) {
        self.stream.set_read_timeout(Some(d)).unwrap();
    }

    /// Request header (v1, or v2 for flexible versions) followed by the body.
    pub fn frame(
        &self,
        api_key: i16,
        version: i16,
        correlation_id: i32,
        body: impl FnOnce(&mut Writer<'_>),
    ) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut w = Writer::new(&mut buf);
        w.i32(0);
        w.i16(api_key);
        w.i16(version);
        w.i32(correlation_id);
        w.nullable_string(self.client_id.as_deref());
        if is_flexible(api_key, version) {
            w.uvarint(0);
        }
        body(&mut w);
        let size = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        buf
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Returns once the broker has read every byte sent on this connection: this side has no
    /// unacknowledged bytes and the broker's socket has none waiting to be read (from
    /// /proc/net/tcp). The broker handles a request in the turn that reads it, so a request sent
    /// before this returns has been handled (answered or parked) before any request sent after it
    /// on another connection: ordering without sleeping.
    pub fn wait_until_read(&self) {
        let local = self.stream.local_addr().unwrap().port();
        let peer = self.stream.peer_addr().unwrap().port();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (mut unacked, mut unread) = (None, None);
            for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
                for line in std::fs::read_to_string(table)
                    .unwrap_or_default()
                    .lines()
                    .skip(1)
                {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    let port = |a: &str| u16::from_str_radix(a.rsplit(':').next()?, 16).ok();
                    let queues = f.get(4).and_then(|q| q.split_once(':'));
                    let (Some(l), Some(r), Some((tx, rx))) = (
                        f.get(1).and_then(|a| port(a)),
                        f.get(2).and_then(|a| port(a)),
                        queues,
                    ) else {
                        continue;
                    };
                    if (l, r) == (local, peer) {
                        unacked = u64::from_str_radix(tx, 16).ok();
                    } else if (l, r) == (peer, local) {
                        unread = u64::from_str_radix(rx, 16).ok();
                    }
                }
            }
            if unacked == Some(0) && unread == Some(0) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the broker did not read what was sent ({unacked:?} unacknowledged, {unread:?} unread)"
            );
            std::thread::yield_now();
        }
    }

    /// Sends a request and returns its correlation id.
    pub fn send(
        &mut self,
        api_key: i16,
        version: i16,
        body: impl FnOnce(&mut Writer<'_>),
    ) -> io::Result<i32> {
        let corr = self.next_correlation;
        self.next_correlation += 1;
        let f = self.frame(api_key, version, corr, body);
        self.send_raw(&f)?;
        Ok(corr)
    }

    /// Reads one response frame (without its size prefix).
    pub fn read_frame(&mut self) -> io::Result<Vec<u8>> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size)?;
        let size = i32::from_be_bytes(size);
        if !(4..=(64 << 20)).contains(&size) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad response size {size}"),
            ));
        }
        let mut buf = vec![0u8; size as usize];
        self.stream.read_exact(&mut buf)?;
        Ok(buf)
    }

    /// Reads the response to `corr` for (api_key, version): checks the correlation id, strips the
    /// response header (v0 for ApiVersions and non-flexible versions, else v1) and returns the body.
    pub fn read_response(&mut self, api_key: i16, version: i16, corr: i32) -> io::Result<Vec<u8>> {
        let frame = self.read_frame()?;
        let mut r = Reader::new(&frame);
        let got = r.i32().map_err(invalid)?;
        if got != corr {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("correlation id {got}, expected {corr}"),
            ));
        }
        if api_key != API_VERSIONS && is_flexible(api_key, version) {
            r.skip_tagged_fields().map_err(invalid)?;
        }
        Ok(r.rest().to_vec())
    }

    /// Sends a request and returns the response body; panics on I/O errors.
    pub fn call(
        &mut self,
        api_key: i16,
        version: i16,
        body: impl FnOnce(&mut Writer<'_>),
    ) -> Vec<u8> {
        self.try_call(api_key, version, body)
            .unwrap_or_else(|e| panic!("api {api_key} v{version}: {e}"))
    }

    pub fn try_call(
        &mut self,
        api_key: i16,
        version: i16,
        body: impl FnOnce(&mut Writer<'_>),
    ) -> io::Result<Vec<u8>> {
        let corr = self.send(api_key, version, body)?;
        self.read_response(api_key, version, corr)
    }

    /// True if the broker closed this connection (EOF or reset) within the read timeout.
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        match self.stream.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
        }
    }
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Decodes a response body with a generated decoder and checks that it consumed every byte.
/// (Load the module with `#[macro_use] mod support;`.)
macro_rules! decode {
    ($ty:ty, $body:expr, $version:expr) => {{
        let mut r = minikafka::protocol::wire::Reader::new($body);
        let v = <$ty>::decode(&mut r, $version)
            .unwrap_or_else(|e| panic!("{} v{}: {e}", stringify!($ty), $version));
        assert_eq!(
            r.remaining(),
            0,
            "{} v{}: bytes left over",
            stringify!($ty),
            $version
        );
        v
    }};
}

/// An uncompressed batch of `n` records with values `"{prefix}-{i}"`.
pub fn batch(n: usize, prefix: &str) -> Vec<u8> {
    batch_at(n, prefix, 1_700_000_000_000)
}

pub fn batch_at(n: usize, prefix: &str, timestamp: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new(0, timestamp);
    for i in 0..n {
        let v = format!("{prefix}-{i}");
        b.push(
            None,
            timestamp + i as i64,
            Some(format!("k{i}").as_bytes()),
            Some(v.as_bytes()),
            &[],
        );
    }
    b.finish()
}

/// A batch holding one record with a value of `size` bytes.
pub fn big_batch(size: usize) -> Vec<u8> {
    let mut b = BatchBuilder::new(0, 1_700_000_000_000);
    b.push(None, 1_700_000_000_000, None, Some(&vec![b'x'; size]), &[]);
    b.finish()
}

// ---------------------------------------------------------------- typed helpers

use minikafka::protocol::messages::create_topics_request::{CreatableTopic, CreateTopicsRequest};
use minikafka::protocol::messages::create_topics_response::CreateTopicsResponse;
use minikafka::protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use minikafka::protocol::messages::fetch_response::FetchResponse;
use minikafka::protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use minikafka::protocol::messages::list_offsets_response::ListOffsetsResponse;
use minikafka::protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use minikafka::protocol::messages::metadata_response::MetadataResponse;
use minikafka::protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use minikafka::protocol::messages::produce_response::ProduceResponse;

/// One topic's result of CreateTopics.
#[derive(Debug, Clone)]
pub struct Created {
    pub name: String,
    pub error: i16,
    pub topic_id: [u8; 16],
    pub num_partitions: i32,
    pub replication_factor: i16,
}

impl Client {
    /// CreateTopics at `version` for (name, partitions, replication factor).
    pub fn create_topics(
        &mut self,
        version: i16,
        topics: &[(&str, i32, i16)],
        validate_only: bool,
    ) -> Vec<Created> {
        let req = CreateTopicsRequest {
            topics: topics
                .iter()
                .map(|&(name, p, rf)| CreatableTopic {
                    name,
                    num_partitions: p,
                    replication_factor: rf,
                    ..Default::default()
                })
                .collect(),
            timeout_ms: 5000,
            validate_only,
        };
        let body = self.call(CREATE_TOPICS, version, |w| req.encode(w, version));
        let resp = decode!(CreateTopicsResponse, &body, version);
        resp.topics
            .iter()
            .map(|t| Created {
                name: t.name.to_string(),
                error: t.error_code,
                topic_id: t.topic_id,
                num_partitions: t.num_partitions,
                replication_factor: t.replication_factor,
            })
            .collect()
    }

    /// Creates one topic (v7) and returns its id; panics if that fails.
    pub fn create_topic(&mut self, name: &str, partitions: i32) -> [u8; 16] {
        let r = self.create_topics(7, &[(name, partitions, 1)], false);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].error, 0, "creating {name}: {r:?}");
        r[0].topic_id
    }

    /// Metadata at `version`; `topics` None = all topics. Returns the raw body to decode.
    pub fn metadata_body(
        &mut self,
        version: i16,
        topics: Option<&[&str]>,
        allow_auto_topic_creation: bool,
    ) -> Vec<u8> {
        let topics = match topics {
            None if version == 0 => Some(vec![]),
            None => None,
            Some(ts) => Some(
                ts.iter()
                    .map(|&n| MetadataRequestTopic {
                        topic_id: [0; 16],
                        name: Some(n),
                    })
                    .collect(),
            ),
        };
        let req = MetadataRequest {
            topics,
            allow_auto_topic_creation,
            ..Default::default()
        };
        self.call(METADATA, version, |w| req.encode(w, version))
    }

    /// (topic name, error, topic id, partition count) per topic in a Metadata v12 answer.
    pub fn metadata_topics(
        &mut self,
        topics: Option<&[&str]>,
        auto_create: bool,
    ) -> Vec<(String, i16, [u8; 16], usize)> {
        let body = self.metadata_body(12, topics, auto_create);
        let m = decode!(MetadataResponse, &body, 12);
        m.topics
            .iter()
            .map(|t| {
                (
                    t.name.unwrap_or("").to_string(),
                    t.error_code,
                    t.topic_id,
                    t.partitions.len(),
                )
            })
            .collect()
    }

    /// Produce one partition's records; returns (error, base_offset, log_start_offset).
    /// Versions 13+ address the topic by id.
    pub fn produce_to(
        &mut self,
        version: i16,
        topic: &str,
        topic_id: [u8; 16],
        partition: i32,
        records: &[u8],
        acks: i16,
    ) -> (i16, i64, i64) {
        let req = ProduceRequest {
            transactional_id: None,
            acks,
            timeout_ms: 5000,
            topic_data: vec![TopicProduceData {
                name: topic,
                topic_id,
                partition_data: vec![PartitionProduceData {
                    index: partition,
                    records: Some(records),
                }],
            }],
        };
        let body = self.call(PRODUCE, version, |w| req.encode(w, version));
        let resp = decode!(ProduceResponse, &body, version);
        assert_eq!(resp.responses.len(), 1, "{resp:?}");
        let p = &resp.responses[0].partition_responses;
        assert_eq!(p.len(), 1, "{resp:?}");
        assert_eq!(p[0].index, partition);
        (p[0].error_code, p[0].base_offset, p[0].log_start_offset)
    }

    /// Produce v9 to `topic` partition `partition`, acks=1.
    pub fn produce(&mut self, topic: &str, partition: i32, records: &[u8]) -> (i16, i64) {
        let (e, o, _) = self.produce_to(9, topic, [0; 16], partition, records, 1);
        (e, o)
    }

    pub fn fetch(&mut self, a: &FetchArgs<'_>) -> Fetched {
        let corr = self.send_fetch(a);
        self.read_fetch(a, corr)
    }

    /// The request half of `fetch`: returns the correlation id for `read_fetch`.
    pub fn send_fetch(&mut self, a: &FetchArgs<'_>) -> i32 {
        let v = a.version;
        let req = FetchRequest {
            max_wait_ms: a.max_wait_ms,
            min_bytes: a.min_bytes,
            max_bytes: a.max_bytes,
            isolation_level: 0,
            session_id: 0,
            session_epoch: -1,
            topics: vec![FetchTopic {
                topic: a.topic,
                topic_id: a.topic_id,
                partitions: vec![FetchPartition {
                    partition: a.partition,
                    fetch_offset: a.offset,
                    partition_max_bytes: a.partition_max_bytes,
                    ..Default::default()
                }],
            }],
            ..Default::default()
        };
        self.send(FETCH, v, |w| req.encode(w, v))
            .unwrap_or_else(|e| panic!("fetch v{v}: {e}"))
    }

    pub fn read_fetch(&mut self, a: &FetchArgs<'_>, corr: i32) -> Fetched {
        let v = a.version;
        let body = self
            .read_response(FETCH, v, corr)
            .unwrap_or_else(|e| panic!("fetch v{v}: {e}"));
        let resp = decode!(FetchResponse, &body, v);
        assert_eq!(resp.error_code, 0, "{resp:?}");
        assert_eq!(resp.responses.len(), 1, "{resp:?}");
        let t = &resp.responses[0];
        if v >= 13 {
            assert_eq!(t.topic_id, a.topic_id);
        } else {
            assert_eq!(t.topic, a.topic);
        }
        assert_eq!(t.partitions.len(), 1, "{resp:?}");
        let p = &t.partitions[0];
        assert_eq!(p.partition_index, a.partition);
        Fetched {
            error: p.error_code,
            high_watermark: p.high_watermark,
            last_stable_offset: p.last_stable_offset,
            log_start_offset: p.log_start_offset,
            records: p.records.map(|r| r.to_vec()),
        }
    }

    /// ListOffsets for one partition: (error, timestamp, offset).
    pub fn list_offset(
        &mut self,
        version: i16,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> (i16, i64, i64) {
        let req = ListOffsetsRequest {
            replica_id: -1,
            isolation_level: 0,
            topics: vec![ListOffsetsTopic {
                name: topic,
                partitions: vec![ListOffsetsPartition {
                    partition_index: partition,
                    current_leader_epoch: -1,
                    timestamp,
                }],
            }],
        };
        let body = self.call(LIST_OFFSETS, version, |w| req.encode(w, version));
        let resp = decode!(ListOffsetsResponse, &body, version);
        let p = &resp.topics[0].partitions[0];
        (p.error_code, p.timestamp, p.offset)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct FetchArgs<'a> {
    pub version: i16,
    pub topic: &'a str,
    pub topic_id: [u8; 16],
    pub partition: i32,
    pub offset: i64,
    pub max_bytes: i32,
    pub partition_max_bytes: i32,
    pub max_wait_ms: i32,
    pub min_bytes: i32,
}

impl<'a> FetchArgs<'a> {
    pub fn new(topic: &'a str, offset: i64) -> FetchArgs<'a> {
        FetchArgs {
            version: 12,
            topic,
            topic_id: [0; 16],
            partition: 0,
            offset,
            max_bytes: 50 << 20,
            partition_max_bytes: 1 << 20,
            max_wait_ms: 0,
            min_bytes: 0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Fetched {
    pub error: i16,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    pub records: Option<Vec<u8>>,
}

/// One v2 batch as fetched: base offset, last offset, and its bytes.
#[derive(Debug, Clone)]
pub struct RawBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub bytes: Vec<u8>,
}

/// Splits fetched records into whole v2 batches; a partial batch at the end (allowed by the
/// protocol) is ignored and its byte count returned.
pub fn split_batches(mut buf: &[u8]) -> (Vec<RawBatch>, usize) {
    let mut out = Vec::new();
    while buf.len() >= 12 {
        let base = i64::from_be_bytes(buf[0..8].try_into().unwrap());
        let len = i32::from_be_bytes(buf[8..12].try_into().unwrap());
        assert!(len >= 49, "batch length {len}");
        let total = 12 + len as usize;
        if total > buf.len() {
            break;
        }
        let b = &buf[..total];
        let delta = i32::from_be_bytes(b[23..27].try_into().unwrap());
        out.push(RawBatch {
            base_offset: base,
            last_offset: base + delta as i64,
            bytes: b.to_vec(),
        });
        buf = &buf[total..];
    }
    (out, buf.len())
}

/// The record values of a batch (uncompressed batches only).
pub fn values(batch: &[u8]) -> Vec<Vec<u8>> {
    let mut r = Reader::new(&batch[61..]);
    let count = i32::from_be_bytes(batch[57..61].try_into().unwrap());
    let mut out = Vec::new();
    for _ in 0..count {
        let len = r.varint().unwrap();
        let rec = r.bytes(len as usize).unwrap();
        let mut rr = Reader::new(rec);
        rr.i8().unwrap();
        rr.varlong().unwrap();
        rr.varint().unwrap();
        let klen = rr.varint().unwrap();
        if klen > 0 {
            rr.bytes(klen as usize).unwrap();
        }
        let vlen = rr.varint().unwrap();
        out.push(if vlen >= 0 {
            rr.bytes(vlen as usize).unwrap().to_vec()
        } else {
            vec![]
        });
    }
    out
}
