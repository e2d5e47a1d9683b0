//! The fuzz harness: one entry point per cargo-fuzz target (`fuzz/fuzz_targets/*.rs` call these
//! and nothing else), shared with the regression tests (`tests/fuzz_regressions.rs` includes this
//! file by path), so a crash input replays through exactly the code that found it.
//!
//! Besides "no panic", each entry point checks what must hold for any input: a response frame's
//! size prefix and correlation id and that it decodes with the response schema; decoded output
//! within its cap; two decoders of the same bytes agreeing; decode -> encode -> decode giving the
//! same value; and nothing written by the broker lost on the next open.
//!
//! Only minikafka's public API and std are used. Inputs are small (libFuzzer's `-max_len`), so a
//! large allocation can only come from trusting a length in the input: the fuzz script runs with
//! `-malloc_limit_mb` to turn that into a crash.

#![allow(clippy::type_complexity)]

use std::cell::RefCell;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use minikafka::broker::{Broker, Clock};
use minikafka::config::Config;
use minikafka::group::offsets::{CommittedOffset, OffsetStore, Replayed};
use minikafka::metadata::{MetadataRecord, MetadataStore, METADATA_DIR};
use minikafka::protocol::apis;
use minikafka::protocol::header::RequestHeader;
use minikafka::protocol::messages::*;
use minikafka::protocol::wire::{Reader, Writer};
use minikafka::reactor::{Reply, Service};
use minikafka::records::{
    self, batches, batches_checked, compute_crc, decode_records, decompress, iter_records,
    parse_records, recompress_batch, records_payload, stream, validate_batch, BatchHeader,
    Compression, Record, RecordsError, BATCH_HEADER_LEN, LOG_OVERHEAD,
};

// ------------------------------------------------------------------ shared helpers

/// Decompression caps an input can choose (its flags byte): none at all up to 1 MiB.
pub const CAPS: [usize; 8] = [0, 1, 16, 100, 4096, 65536, 256 << 10, 1 << 20];

/// Where the harness keeps its files: `$MINIKAFKA_FUZZ_TMP` (tools/fuzz.sh sets it and removes
/// it afterwards), else /dev/shm when there is one (fsync is free on tmpfs), else the temp dir.
fn scratch_root() -> PathBuf {
    if let Some(p) = std::env::var_os("MINIKAFKA_FUZZ_TMP") {
        return PathBuf::from(p);
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        return shm.to_path_buf();
    }
    std::env::temp_dir()
}

/// A fresh directory, removed on drop.
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    pub fn new(tag: &str) -> ScratchDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = scratch_root().join(format!(
            "minikafka-fuzz-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("creating a scratch dir");
        ScratchDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Rewrites the CRC of every batch that `buf` holds back to back (as far as their lengths can be
/// followed), so that mutated inputs get past the CRC check into the record decoders.
pub fn fix_crcs(buf: &mut [u8]) {
    let mut pos = 0;
    while buf.len() - pos >= BATCH_HEADER_LEN {
        let len = i32::from_be_bytes(buf[pos + 8..pos + 12].try_into().unwrap());
        if len < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32 {
            return;
        }
        let total = len as usize + LOG_OVERHEAD;
        if total > buf.len() - pos {
            return;
        }
        let batch = &mut buf[pos..pos + total];
        let crc = compute_crc(batch);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
        pos += total;
    }
}

// ------------------------------------------------------------------ request_decoders

/// One generated message codec: its name, version range and a round-trip check.
pub struct Decoder {
    /// The API key (requests) or `RECORD_SCHEMA_KEYS + i` (the record schemas).
    pub key: i16,
    pub name: &'static str,
    pub min: i16,
    pub max: i16,
    pub run: fn(&[u8], i16),
}

macro_rules! decoder {
    ($m:ident :: $t:ident) => {
        decoder!($m::$t, $m::API_KEY)
    };
    ($m:ident :: $t:ident, $key:expr) => {
        Decoder {
            key: $key,
            name: stringify!($t),
            min: $m::MIN_VERSION,
            max: $m::MAX_VERSION,
            run: {
                fn run(data: &[u8], version: i16) {
                    let mut r = Reader::new(data);
                    let Ok(m) = $m::$t::decode(&mut r, version) else {
                        return;
                    };
                    let mut out = Vec::new();
                    m.encode(&mut Writer::new(&mut out), version);
                    let mut r2 = Reader::new(&out);
                    let m2 = $m::$t::decode(&mut r2, version).unwrap_or_else(|e| {
                        panic!(
                            "{} v{version}: the re-encoded message does not decode: {e}",
                            stringify!($t)
                        )
                    });
                    assert_eq!(
                        m,
                        m2,
                        "{} v{version}: decode(encode(m)) != m",
                        stringify!($t)
                    );
                    assert!(
                        r2.is_empty(),
                        "{} v{version}: {} bytes left after decoding the re-encoded message",
                        stringify!($t),
                        r2.remaining()
                    );
                    let mut again = Vec::new();
                    m2.encode(&mut Writer::new(&mut again), version);
                    assert_eq!(
                        out,
                        again,
                        "{} v{version}: encoding is not stable",
                        stringify!($t)
                    );
                }
                run
            },
        }
    };
}

/// Every request message, then the `__consumer_offsets` and `__transaction_state` key and value
/// schemas (tests/fuzz_regressions.rs checks that every served API is here). The first input
/// byte picks one by its key (any other byte: by position, modulo the length), the second the
/// version within its range (as an offset from its first version, modulo the range).
pub const DECODERS: &[Decoder] = &[
    decoder!(produce_request::ProduceRequest),
    decoder!(fetch_request::FetchRequest),
    decoder!(list_offsets_request::ListOffsetsRequest),
    decoder!(metadata_request::MetadataRequest),
    decoder!(offset_commit_request::OffsetCommitRequest),
    decoder!(offset_fetch_request::OffsetFetchRequest),
    decoder!(find_coordinator_request::FindCoordinatorRequest),
    decoder!(join_group_request::JoinGroupRequest),
    decoder!(heartbeat_request::HeartbeatRequest),
    decoder!(leave_group_request::LeaveGroupRequest),
    decoder!(sync_group_request::SyncGroupRequest),
    decoder!(describe_groups_request::DescribeGroupsRequest),
    decoder!(list_groups_request::ListGroupsRequest),
    decoder!(api_versions_request::ApiVersionsRequest),
    decoder!(create_topics_request::CreateTopicsRequest),
    decoder!(delete_topics_request::DeleteTopicsRequest),
    decoder!(delete_records_request::DeleteRecordsRequest),
    decoder!(init_producer_id_request::InitProducerIdRequest),
    decoder!(describe_configs_request::DescribeConfigsRequest),
    decoder!(alter_configs_request::AlterConfigsRequest),
    decoder!(describe_log_dirs_request::DescribeLogDirsRequest),
    decoder!(elect_leaders_request::ElectLeadersRequest),
    decoder!(create_partitions_request::CreatePartitionsRequest),
    decoder!(delete_groups_request::DeleteGroupsRequest),
    decoder!(incremental_alter_configs_request::IncrementalAlterConfigsRequest),
    decoder!(offset_delete_request::OffsetDeleteRequest),
    decoder!(describe_cluster_request::DescribeClusterRequest),
    decoder!(describe_topic_partitions_request::DescribeTopicPartitionsRequest),
    decoder!(add_partitions_to_txn_request::AddPartitionsToTxnRequest),
    decoder!(add_offsets_to_txn_request::AddOffsetsToTxnRequest),
    decoder!(end_txn_request::EndTxnRequest),
    decoder!(write_txn_markers_request::WriteTxnMarkersRequest),
    decoder!(txn_offset_commit_request::TxnOffsetCommitRequest),
    decoder!(describe_producers_request::DescribeProducersRequest),
    decoder!(describe_transactions_request::DescribeTransactionsRequest),
    decoder!(list_transactions_request::ListTransactionsRequest),
    decoder!(offset_for_leader_epoch_request::OffsetForLeaderEpochRequest),
    decoder!(describe_quorum_request::DescribeQuorumRequest),
    decoder!(offset_commit_key::OffsetCommitKey, RECORD_SCHEMA_KEYS),
    decoder!(
        offset_commit_value::OffsetCommitValue,
        RECORD_SCHEMA_KEYS + 1
    ),
    decoder!(group_metadata_key::GroupMetadataKey, RECORD_SCHEMA_KEYS + 2),
    decoder!(
        group_metadata_value::GroupMetadataValue,
        RECORD_SCHEMA_KEYS + 3
    ),
    decoder!(
        transaction_log_key::TransactionLogKey,
        RECORD_SCHEMA_KEYS + 4
    ),
    decoder!(
        transaction_log_value::TransactionLogValue,
        RECORD_SCHEMA_KEYS + 5
    ),
];

/// Selector bytes of the `__consumer_offsets` key and value schemas in `request_decoders`.
pub const RECORD_SCHEMA_KEYS: i16 = 200;

/// Input: `[selector][version][body...]` (see `DECODERS`). Also parses `[version][body...]` as a
/// request header.
pub fn request_decoders(data: &[u8]) {
    let [sel, ver, body @ ..] = data else {
        return;
    };
    let d = DECODERS
        .iter()
        .find(|d| d.key == *sel as i16)
        .unwrap_or(&DECODERS[*sel as usize % DECODERS.len()]);
    let span = (d.max - d.min + 1) as u8;
    let version = d.min + (ver % span) as i16;
    (d.run)(body, version);
    let _ = RequestHeader::parse(&data[1..]);
}

// ------------------------------------------------------------------ record_batch

/// Input: `[flags][batches...]`. Flags: bit 0 fixes the CRCs, bits 1-3 pick the decompression
/// cap, bit 4 recompresses each valid batch with the codec of bits 5-7 (modulo 5).
///
/// Every batch that passes `validate_batch` is decoded three ways (records_payload +
/// parse_records, iter_records, and the streaming walk used to validate produce requests); they
/// must agree, and a recompressed batch must hold the same records.
pub fn record_batch(data: &[u8]) {
    let [flags, rest @ ..] = data else {
        return;
    };
    let mut buf = rest.to_vec();
    if flags & 1 != 0 {
        fix_crcs(&mut buf);
    }
    let cap = CAPS[((flags >> 1) & 7) as usize];
    for item in batches_checked(&buf) {
        let Ok((h, batch)) = item else { break };
        assert_eq!(batch.len(), h.total_len());
        check_batch(&h, batch, cap, *flags);
    }
    // The unchecked iterator (recovery of data already on disk) must not panic either, and
    // must stop at the same place or later.
    let mut checked = batches_checked(&buf);
    checked.by_ref().for_each(drop);
    let mut plain = batches(&buf);
    plain.by_ref().for_each(drop);
    assert!(plain.position() >= checked.position());
}

fn codec_of(bits: u8) -> Compression {
    [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ][(bits % 5) as usize]
}

fn check_batch(h: &BatchHeader, batch: &[u8], cap: usize, flags: u8) {
    // `records_payload` borrows an uncompressed section whatever the cap; the walk caps it.
    let walk_cap = if h.compression() == Compression::None {
        batch.len()
    } else {
        cap
    };
    let walked = {
        let mut infos = Vec::new();
        stream::walk_batch(batch, walk_cap, |i| infos.push(*i)).map(|()| infos)
    };
    let payload = records_payload(batch, cap);
    if let Ok(p) = &payload {
        if h.compression() != Compression::None {
            assert!(
                p.len() <= cap,
                "decompressed {} bytes past the cap {cap}",
                p.len()
            );
        }
    }
    let parsed: Result<Vec<Record<'_>>, String> = match &payload {
        Ok(p) => parse_records(p, h.record_count).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Ok(p) = &payload {
        let iterated: Result<Vec<Record<'_>>, RecordsError> =
            iter_records(p, h.record_count).collect();
        assert_eq!(
            parsed.as_ref().ok(),
            iterated.as_ref().ok(),
            "parse_records and iter_records disagree: {:?} / {:?}",
            parsed.as_ref().err(),
            iterated.as_ref().err()
        );
    }
    if h.compression() == Compression::None {
        let direct = decode_records(batch);
        assert_eq!(
            parsed.as_ref().ok(),
            direct.as_ref().ok(),
            "decode_records disagrees"
        );
    }
    match (&parsed, &walked) {
        (Ok(recs), Ok(infos)) => {
            assert_eq!(recs.len(), infos.len());
            for (r, i) in recs.iter().zip(infos) {
                assert_eq!(
                    (
                        r.attributes,
                        r.timestamp_delta,
                        r.offset_delta,
                        r.key.is_some()
                    ),
                    (i.attributes, i.timestamp_delta, i.offset_delta, i.has_key),
                    "walk_batch and parse_records read record {} differently",
                    i.index
                );
            }
        }
        (Err(_), Err(_)) => {}
        (Ok(_), Err(e)) => panic!("parse_records accepts what walk_batch refuses: {e}"),
        (Err(e), Ok(_)) => panic!("walk_batch accepts what parse_records refuses: {e}"),
    }
    if flags & 0x10 != 0 && walked.is_ok() {
        let target = codec_of(flags >> 5);
        if let Ok(out) = recompress_batch(batch, target, cap) {
            let oh = validate_batch(&out).expect("a recompressed batch validates");
            assert_eq!(oh.total_len(), out.len());
            assert_eq!(oh.compression(), target);
            assert_eq!(
                (oh.base_offset, oh.record_count, oh.last_offset_delta),
                (h.base_offset, h.record_count, h.last_offset_delta)
            );
            let p = records_payload(&out, cap.max(1 << 20)).expect("recompressed payload");
            let again = parse_records(&p, oh.record_count).expect("recompressed records parse");
            assert_eq!(
                parsed.ok(),
                Some(again),
                "recompression changed the records"
            );
        }
    }
}

// ------------------------------------------------------------------ codecs

/// Input: `[flags][payload...]`. Flags: bits 0-2 the codec (5-7 are unknown codecs), bits 3-5
/// the cap, bit 6 also compresses the payload and checks it decompresses to itself.
///
/// Decompresses with `records::decompress` and with the streaming `PayloadReader`: output never
/// exceeds the cap (nor does the buffer holding it), and the two agree.
pub fn codecs(data: &[u8]) {
    let [flags, payload @ ..] = data else {
        return;
    };
    let codec = Compression::from_bits(flags & 7);
    let cap = CAPS[((flags >> 3) & 7) as usize];
    let whole = decompress(codec, payload, cap);
    if let Ok(out) = &whole {
        assert!(
            out.len() <= cap,
            "{codec:?}: {} bytes past the cap {cap}",
            out.len()
        );
        assert!(
            out.capacity() <= cap,
            "{codec:?}: a buffer of {} bytes for the cap {cap}",
            out.capacity()
        );
    }
    let streamed = stream::PayloadReader::of(codec, payload, cap).and_then(|mut r| {
        let mut v = Vec::new();
        match r.read_to_end(&mut v) {
            Ok(_) => Ok(v),
            Err(e) => Err(r.error(e)),
        }
    });
    if let Ok(out) = &streamed {
        assert!(out.len() <= cap, "{codec:?} streamed past the cap {cap}");
    }
    match (&whole, &streamed) {
        (Ok(a), Ok(b)) => assert!(a == b, "{codec:?}: decompress and PayloadReader differ"),
        (Err(_), Err(_)) => {}
        (Ok(_), Err(e)) => panic!("{codec:?}: only PayloadReader refuses: {e}"),
        (Err(e), Ok(_)) => panic!("{codec:?}: only decompress refuses: {e}"),
    }
    if flags & 0x40 != 0 && !matches!(codec, Compression::Unknown(_)) {
        let z = records::compress(codec, payload).expect("compressing never fails");
        let back = decompress(codec, &z, payload.len()).expect("our own output decompresses");
        assert!(
            back == payload,
            "{codec:?}: compress/decompress changed the bytes"
        );
    }
}

// ------------------------------------------------------------------ offsets_replay

/// Input: `[flags][batches...]`, replayed as a `__consumer_offsets` partition log (bit 0 of the
/// flags fixes the CRCs first). What was replayed, written back as records and replayed into a
/// new store, must give the same offsets and group states.
pub fn offsets_replay(data: &[u8]) {
    let [flags, rest @ ..] = data else {
        return;
    };
    let mut buf = rest.to_vec();
    if flags & 1 != 0 {
        fix_crcs(&mut buf);
    }
    let mut store = OffsetStore::new();
    let (seen, _err) = store.replay_partial(&buf);

    let mut again = OffsetStore::new();
    for g in store.groups() {
        let commits: Vec<(&str, i32, CommittedOffset)> = store
            .group_offsets(g)
            .into_iter()
            .map(|(t, p, c)| (t, p, c.clone()))
            .collect();
        if commits.is_empty() {
            continue;
        }
        let recs = OffsetStore::commit_records(g, &commits);
        let batch = OffsetStore::batch(&recs, 0);
        again
            .replay(&batch)
            .unwrap_or_else(|e| panic!("our own offset records do not replay: {e}"));
        for (t, p, c) in &commits {
            let back = again.fetch(g, t, *p).expect("a written offset replays");
            let mut want = c.clone();
            if want.expire_timestamp != -1 {
                // Written as value v1 (an old OffsetCommit's expiry), which has no leader epoch.
                want.leader_epoch = -1;
            }
            assert_eq!(
                back, &want,
                "offset of {g}/{t}-{p} changed through its record"
            );
        }
    }
    for x in seen {
        if let Replayed::Group(s) = x {
            let (k, v) = OffsetStore::group_record(&s);
            match again.apply(&k, v.as_deref()) {
                Ok(Replayed::Group(back)) => {
                    assert_eq!(back, s, "group {} changed through its record", s.group_id)
                }
                other => panic!("our own group record does not replay: {other:?}"),
            }
        }
    }
}

// ------------------------------------------------------------------ metadata_replay

thread_local! {
    static META_DIR: ScratchDir = ScratchDir::new("meta");
}

/// Name of the topic the metadata check creates after replay.
const CHECK_TOPIC: &str = "fuzz-check";

/// Input: `[flags][bytes...]`, written as `__cluster_metadata-0/00000000000000000000.log` (bit 1
/// of the flags: the first `u16` of the bytes splits them into a snapshot `.checkpoint` and the
/// log) and replayed by `MetadataStore::open`; bit 0 fixes the CRCs first. Each record value of a
/// valid batch also goes through decode -> encode -> decode.
///
/// Then a topic is created and the store reopened: the replay must find everything it had
/// before plus the new topic, whatever the log held (a corrupt tail is cut before appending).
pub fn metadata_replay(data: &[u8]) {
    META_DIR.with(|d| metadata_replay_in(d.path(), data));
}

fn metadata_replay_in(log_dir: &Path, data: &[u8]) {
    let [flags, rest @ ..] = data else {
        return;
    };
    let mut buf = rest.to_vec();
    let (snapshot, log) = if flags & 2 != 0 && buf.len() >= 2 {
        let at = u16::from_be_bytes([buf[0], buf[1]]) as usize % (buf.len() - 1);
        let mut log = buf.split_off(2 + at);
        let mut snap = buf.split_off(2);
        if flags & 1 != 0 {
            fix_crcs(&mut snap);
            fix_crcs(&mut log);
        }
        (Some(snap), log)
    } else {
        let mut log = buf.split_off(0);
        if flags & 1 != 0 {
            fix_crcs(&mut log);
        }
        (None, log)
    };
    for bytes in snapshot.iter().chain([&log]) {
        metadata_records_round_trip(bytes);
    }

    let dir = log_dir.join(METADATA_DIR);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating the metadata dir");
    if let Some(s) = &snapshot {
        std::fs::write(dir.join("00000000000000000002-0000000001.checkpoint"), s).unwrap();
    }
    std::fs::write(dir.join("00000000000000000000.log"), &log).unwrap();

    let Ok(mut store) = MetadataStore::open(log_dir, 1, 0) else {
        return;
    };
    let before: Vec<(String, usize)> = store
        .image()
        .topics()
        .map(|t| (t.name.clone(), t.partitions.len()))
        .collect();
    if store.image().topic(CHECK_TOPIC).is_some() {
        return;
    }
    if store.create_topic(CHECK_TOPIC, 2, 1, &[], 1, 0).is_err() {
        return;
    }
    drop(store);
    let store = MetadataStore::open(log_dir, 1, 0).expect("reopening after an append");
    let img = store.image();
    let t = img
        .topic(CHECK_TOPIC)
        .expect("a topic created after replay is there after the next replay");
    assert_eq!(t.partitions.len(), 2);
    for (name, n) in before {
        let t = img
            .topic(&name)
            .unwrap_or_else(|| panic!("topic {name:?} lost by an append after replay"));
        assert_eq!(t.partitions.len(), n, "partitions of {name:?}");
    }
}

fn metadata_records_round_trip(bytes: &[u8]) {
    for item in batches_checked(bytes) {
        let Ok((h, batch)) = item else { break };
        if h.is_control() {
            continue;
        }
        let Ok(payload) = records_payload(batch, 1 << 20) else {
            continue;
        };
        let Ok(recs) = parse_records(&payload, h.record_count) else {
            continue;
        };
        for r in recs {
            let Some(v) = r.value else { continue };
            // Unknown records (other frame versions, types, newer versions) are errors the
            // replay skips and never writes back, so only known ones must survive a round trip.
            let Ok(rec) = MetadataRecord::decode(v) else {
                continue;
            };
            let mut out = Vec::new();
            rec.encode(&mut out);
            let back = MetadataRecord::decode(&out)
                .unwrap_or_else(|e| panic!("re-encoded {rec:?} does not decode: {e}"));
            // Bytes, not values: a ClientQuotaRecord may hold a NaN.
            let mut again = Vec::new();
            back.encode(&mut again);
            assert_eq!(
                again, out,
                "metadata record changed through encode/decode: {rec:?}"
            );
        }
    }
}

// ------------------------------------------------------------------ broker_frame

/// The broker's settings for fuzzing: small segments (rolls and indexes get exercised), two
/// `__consumer_offsets` partitions (not 50 directories per FindCoordinator), a short initial
/// rebalance delay.
fn fuzz_config(dir: &Path) -> Config {
    let mut c = Config::ephemeral(dir);
    c.log_segment_bytes = 16 << 10;
    c.log_index_interval_bytes = 512;
    c.offsets_topic_num_partitions = 2;
    c.transaction_state_log_num_partitions = 2;
    c.group_initial_rebalance_delay_ms = 10;
    c.cluster_id = Some("ZnV6emluZy1jbHVzdGVyAA".into());
    c
}

/// A fixed wall clock (2033), so that a run does not depend on the day it runs.
const WALL_MS: i64 = 2_000_000_000_000;

/// Time steps a frame can ask for before it is handled (bits 1-3 of its control byte).
const STEPS_MS: [u64; 8] = [0, 1, 20, 500, 5_000, 60_000, 600_000, 3_600_000];

/// A broker on a scratch dir and the two connections the input talks on.
pub struct BrokerHarness {
    broker: Broker,
    now: Instant,
    opened: Instant,
    pristine: Fingerprint,
    _dir: ScratchDir,
}

/// What a broker holds that one input can change. Equal fingerprints: nothing to reset.
#[derive(Debug, PartialEq, Eq)]
struct Fingerprint {
    metadata_offset: i64,
    partitions: usize,
    log_offsets: i64,
    committed: usize,
    groups: usize,
}

impl BrokerHarness {
    pub fn new() -> BrokerHarness {
        let dir = ScratchDir::new("broker");
        let now = Instant::now();
        let mut broker = Broker::open(fuzz_config(dir.path()), now).expect("opening the broker");
        broker.set_clock(Clock::new(now, WALL_MS));
        let pristine = fingerprint(&broker);
        BrokerHarness {
            broker,
            now,
            opened: now,
            pristine,
            _dir: dir,
        }
    }

    /// Whether the last input left state behind (topics, data, groups, offsets, configs) or
    /// moved the clock (the broker's timers would then fire at other points of the next input
    /// than on a fresh broker).
    pub fn is_dirty(&self) -> bool {
        self.now != self.opened || fingerprint(&self.broker) != self.pristine
    }

    /// Input: a sequence of `[control][len: u16][len bytes]` chunks, each one request frame
    /// (without the size prefix). Control bit 0 picks connection 0 or 1, bits 1-3 a time step
    /// taken before the frame (`STEPS_MS`). After each frame the loop's `tick` and `flush` run
    /// and completed requests are collected, as the reactor does.
    ///
    /// A connection whose request is parked sends nothing more (the reactor reads no further
    /// frames from it): a frame for it closes it first and reopens it. At the end, time moves on
    /// until what is parked completes, then both connections close.
    pub fn run(&mut self, data: &[u8]) {
        let mut conns = [Conn::default(), Conn::default()];
        let mut rest = data;
        while let [ctl, hi, lo, tail @ ..] = rest {
            let len = (u16::from_be_bytes([*hi, *lo]) as usize).min(tail.len());
            let (frame, after) = tail.split_at(len);
            rest = after;
            let c = (ctl & 1) as usize;
            self.step(STEPS_MS[((ctl >> 1) & 7) as usize], &mut conns);
            if conns[c].waiting.is_some() {
                self.close(c, &mut conns);
            }
            if too_many_partitions(frame) {
                continue;
            }
            let mut frame = frame.to_vec();
            let expect = Expect::of(&frame);
            let reply = self.broker.handle(c, &mut frame, self.now);
            match reply {
                Reply::Now(bytes) => check_response(&bytes, expect.as_ref()),
                Reply::Parked => conns[c].waiting = Some(expect),
                Reply::None => {}
                Reply::Close => self.close(c, &mut conns),
            }
            self.step(0, &mut conns);
        }
        for _ in 0..6 {
            if conns.iter().all(|c| c.waiting.is_none()) {
                break;
            }
            self.step(60_000, &mut conns);
        }
        for c in 0..2 {
            self.close(c, &mut conns);
        }
    }

    /// One loop turn after `ms` milliseconds: tick, flush, completions.
    fn step(&mut self, ms: u64, conns: &mut [Conn; 2]) {
        self.now += Duration::from_millis(ms);
        self.broker.tick(self.now);
        self.broker.flush(self.now);
        let mut done = Vec::new();
        self.broker.take_completions(&mut done);
        for (c, bytes) in done {
            let Some(conn) = conns.get_mut(c) else {
                panic!("a completion for connection {c}, which never sent anything");
            };
            let Some(expect) = conn.waiting.take() else {
                panic!("a completion for connection {c}, which has nothing parked");
            };
            if bytes.is_empty() {
                // An empty completion closes the connection.
                self.close(c, conns);
            } else {
                check_response(&bytes, expect.as_ref());
            }
        }
    }

    fn close(&mut self, c: usize, conns: &mut [Conn; 2]) {
        conns[c].waiting = None;
        self.broker.connection_closed(c);
    }
}

impl Default for BrokerHarness {
    fn default() -> Self {
        BrokerHarness::new()
    }
}

/// Partitions one frame may create in the fuzzer. Each costs a directory and three files (tens
/// of microseconds); the broker accepts up to 10,000 per CreateTopics (Kafka's limit) and 100,000
/// per topic, so without this the fuzzer spends its time in mkdir. Refusals above the limits are
/// fast and still fuzzed.
const MAX_NEW_PARTITIONS: i64 = 64;

/// Whether `frame` is a CreateTopics or CreatePartitions that would make more than
/// `MAX_NEW_PARTITIONS` partitions and less than what the broker refuses outright: skipped.
fn too_many_partitions(frame: &[u8]) -> bool {
    let Ok((h, body)) = RequestHeader::parse(frame) else {
        return false;
    };
    if !apis::is_supported(h.api_key, h.api_version) {
        return false;
    }
    let mut r = Reader::new(body);
    let (total, refused_above) = match h.api_key {
        apis::CREATE_TOPICS => {
            let Ok(req) = create_topics_request::CreateTopicsRequest::decode(&mut r, h.api_version)
            else {
                return false;
            };
            let total = req
                .topics
                .iter()
                .map(|t| match (t.assignments.len(), t.num_partitions) {
                    (0, n) => n.max(1) as i64,
                    (n, _) => n as i64,
                })
                .sum();
            (total, 10_000)
        }
        apis::CREATE_PARTITIONS => {
            let Ok(req) =
                create_partitions_request::CreatePartitionsRequest::decode(&mut r, h.api_version)
            else {
                return false;
            };
            let total = req
                .topics
                .iter()
                .map(|t| t.count.max(0) as i64)
                .sum::<i64>();
            (total, 100_000)
        }
        _ => return false,
    };
    total > MAX_NEW_PARTITIONS && total <= refused_above
}

fn fingerprint(b: &Broker) -> Fingerprint {
    let mut partitions = 0;
    let mut log_offsets = 0i64;
    for (_, _, log) in b.logs().partitions() {
        partitions += 1;
        log_offsets = log_offsets
            .wrapping_add(log.log_end_offset())
            .wrapping_add(log.log_start_offset());
    }
    Fingerprint {
        metadata_offset: b.metadata().next_offset(),
        partitions,
        log_offsets,
        committed: b.offsets().offset_count(),
        groups: b.groups().list().len(),
    }
}

#[derive(Default)]
struct Conn {
    /// The parked request, if any (and what its answer must look like).
    waiting: Option<Option<Expect>>,
}

/// What the response to a frame must start with, when its header parses and is served.
struct Expect {
    api_key: i16,
    version: i16,
    correlation_id: i32,
}

impl Expect {
    fn of(frame: &[u8]) -> Option<Expect> {
        let (h, _) = RequestHeader::parse(frame).ok()?;
        Some(Expect {
            api_key: h.api_key,
            version: h.api_version,
            correlation_id: h.correlation_id,
        })
    }
}

/// A response frame: size prefix, correlation id, and a body the response schema decodes to the
/// last byte.
fn check_response(bytes: &[u8], expect: Option<&Expect>) {
    assert!(bytes.len() >= 8, "a response of {} bytes", bytes.len());
    let size = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
    assert_eq!(size, bytes.len() - 4, "response size prefix");
    let Some(e) = expect else {
        panic!("a response to a request whose header does not parse");
    };
    let corr = i32::from_be_bytes(bytes[4..8].try_into().unwrap());
    assert_eq!(corr, e.correlation_id, "response correlation id");
    let mut r = Reader::new(&bytes[8..]);
    let version = if e.api_key == apis::API_VERSIONS {
        // Always response header v0; an unsupported version is answered in the v0 layout.
        if apis::is_supported(e.api_key, e.version) {
            e.version
        } else {
            0
        }
    } else {
        assert!(
            apis::is_supported(e.api_key, e.version),
            "an answer to api {} v{}, which is not served",
            e.api_key,
            e.version
        );
        if apis::is_flexible(e.api_key, e.version) {
            r.skip_tagged_fields()
                .expect("response header v1 tagged fields");
        }
        e.version
    };
    if let Err(why) = decode_response(e.api_key, &mut r, version) {
        panic!(
            "the response to api {} v{version} does not decode: {why}",
            e.api_key
        );
    }
    assert!(
        r.is_empty(),
        "{} bytes after the response to api {} v{version}",
        r.remaining(),
        e.api_key
    );
}

fn decode_response(api_key: i16, r: &mut Reader<'_>, v: i16) -> Result<(), String> {
    macro_rules! resp {
        ($($m:ident :: $t:ident),* $(,)?) => {
            match api_key {
                $(k if k == $m::API_KEY => $m::$t::decode(r, v).map(drop).map_err(|e| e.to_string()),)*
                k => Err(no_schema(k)),
            }
        };
    }
    resp!(
        produce_response::ProduceResponse,
        fetch_response::FetchResponse,
        list_offsets_response::ListOffsetsResponse,
        metadata_response::MetadataResponse,
        offset_commit_response::OffsetCommitResponse,
        offset_fetch_response::OffsetFetchResponse,
        find_coordinator_response::FindCoordinatorResponse,
        join_group_response::JoinGroupResponse,
        heartbeat_response::HeartbeatResponse,
        leave_group_response::LeaveGroupResponse,
        sync_group_response::SyncGroupResponse,
        describe_groups_response::DescribeGroupsResponse,
        list_groups_response::ListGroupsResponse,
        api_versions_response::ApiVersionsResponse,
        create_topics_response::CreateTopicsResponse,
        delete_topics_response::DeleteTopicsResponse,
        delete_records_response::DeleteRecordsResponse,
        init_producer_id_response::InitProducerIdResponse,
        describe_configs_response::DescribeConfigsResponse,
        alter_configs_response::AlterConfigsResponse,
        describe_log_dirs_response::DescribeLogDirsResponse,
        elect_leaders_response::ElectLeadersResponse,
        create_partitions_response::CreatePartitionsResponse,
        delete_groups_response::DeleteGroupsResponse,
        incremental_alter_configs_response::IncrementalAlterConfigsResponse,
        offset_delete_response::OffsetDeleteResponse,
        describe_cluster_response::DescribeClusterResponse,
        describe_topic_partitions_response::DescribeTopicPartitionsResponse,
        add_partitions_to_txn_response::AddPartitionsToTxnResponse,
        add_offsets_to_txn_response::AddOffsetsToTxnResponse,
        end_txn_response::EndTxnResponse,
        write_txn_markers_response::WriteTxnMarkersResponse,
        txn_offset_commit_response::TxnOffsetCommitResponse,
        describe_producers_response::DescribeProducersResponse,
        describe_transactions_response::DescribeTransactionsResponse,
        list_transactions_response::ListTransactionsResponse,
        offset_for_leader_epoch_response::OffsetForLeaderEpochResponse,
        describe_quorum_response::DescribeQuorumResponse,
    )
}

/// Whether `check_response` knows the response schema of `api_key`.
pub fn has_response_schema(api_key: i16) -> bool {
    decode_response(api_key, &mut Reader::new(&[]), 0) != Err(no_schema(api_key))
}

fn no_schema(api_key: i16) -> String {
    format!("no response schema for api {api_key}")
}

thread_local! {
    static BROKER: RefCell<Option<BrokerHarness>> = const { RefCell::new(None) };
}

/// The fuzz target: one broker per process, reopened on a fresh directory after any input that
/// left state behind, so every input starts from the same empty broker (a crash replays alone).
pub fn broker_frame(data: &[u8]) {
    BROKER.with(|b| {
        let mut b = b.borrow_mut();
        if b.as_ref().is_none_or(BrokerHarness::is_dirty) {
            *b = None; // the old directory goes before the new one is made
            *b = Some(BrokerHarness::new());
        }
        b.as_mut().unwrap().run(data);
    });
}

/// A frame chunk as `broker_frame` reads it.
pub fn broker_chunk(conn: u8, step: u8, frame: &[u8]) -> Vec<u8> {
    let len = u16::try_from(frame.len()).expect("a seed frame under 64 KiB");
    let mut v = vec![(conn & 1) | ((step & 7) << 1)];
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(frame);
    v
}
