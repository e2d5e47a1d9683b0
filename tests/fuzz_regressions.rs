//! Every input the fuzz targets (fuzz/, tools/fuzz.sh) found a bug with, replayed through the
//! same entry point as its target (fuzz/src/lib.rs, included here by path): one named test per
//! bug, with the input under tests/fuzz_regressions/<target>/<name>. The committed seed corpora
//! (fuzz/seeds/) run too, so the harness stays working on the stable toolchain.
//!
//! A panic fails the test even where the broker contains it (`contain` logs and goes on): the
//! fuzzer aborts on every panic, so these tests count them too.

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::Once;

thread_local! {
    static PANICS: Cell<usize> = const { Cell::new(0) };
}

/// Counts panics per thread (each test runs on its own), then reports them as usual.
fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.with(|p| p.set(p.get() + 1));
            default(info);
        }));
    });
}

/// Runs one input through `target`'s entry point; a fresh broker for `broker_frame`.
fn run(target: &str, data: &[u8]) {
    match target {
        "broker_frame" => harness::BrokerHarness::new().run(data),
        "request_decoders" => harness::request_decoders(data),
        "record_batch" => harness::record_batch(data),
        "codecs" => harness::codecs(data),
        "metadata_replay" => harness::metadata_replay(data),
        "offsets_replay" => harness::offsets_replay(data),
        t => panic!("unknown fuzz target {t}"),
    }
}

fn run_file(target: &str, path: &Path) {
    count_panics();
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let before = PANICS.with(Cell::get);
    run(target, &data);
    let after = PANICS.with(Cell::get);
    assert_eq!(
        before,
        after,
        "{}: a panic was contained, but it is still a bug",
        path.display()
    );
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// One regression input by target and name.
fn regression(target: &str, name: &str) {
    run_file(
        target,
        &root()
            .join("tests/fuzz_regressions")
            .join(target)
            .join(name),
    );
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

const TARGETS: [&str; 6] = [
    "broker_frame",
    "request_decoders",
    "record_batch",
    "codecs",
    "metadata_replay",
    "offsets_replay",
];

/// Every file under tests/fuzz_regressions/ (named tests below or not) and every seed.
#[test]
fn every_regression_input_and_seed() {
    let mut n = 0;
    for t in TARGETS {
        for dir in [
            root().join("tests/fuzz_regressions").join(t),
            root().join("fuzz/seeds").join(t),
        ] {
            for f in files(&dir) {
                run_file(t, &f);
                n += 1;
            }
        }
    }
    assert!(n > 100, "only {n} inputs: are the seed corpora there?");
}

// ------------------------------------------------------------------ one test per bug

/// JoinGroup v0-v6 answered an error with a null protocol name, which those versions cannot
/// carry (Kafka sends ""): clients before v7 could not read the response.
#[test]
fn join_group_v0_error_null_protocol_name() {
    regression("broker_frame", "join_group_v0_error_null_protocol_name");
}

/// A header key that is not UTF-8 passed produce validation (the streaming walk) but not the
/// record decoder the cleaner uses, so such a batch was stored and then never compacted. The walk
/// now refuses it (CORRUPT_MESSAGE to the producer), as the decoder does.
#[test]
fn header_key_not_utf8() {
    regression("record_batch", "header_key_not_utf8");
}

/// A metadata record of another frame version comes back as `Unknown` and is skipped; the
/// harness expected it to re-encode to itself (it is never written back). Harness fix only.
#[test]
fn unknown_frame_version_record() {
    regression("metadata_replay", "unknown_frame_version_record");
}

/// Metadata replay skipped batches covered by the snapshot without reading their records, but
/// the corrupt-tail repair recomputed the valid prefix reading every batch: with a bad record in
/// such a batch, later batches were applied to the image and then cut from the log by the next
/// append, so topics the broker had served were gone after a restart. The kept prefix is now
/// exactly what was replayed.
#[test]
fn replay_applies_batches_past_the_kept_prefix() {
    regression(
        "metadata_replay",
        "replay_applies_batches_past_the_kept_prefix",
    );
}

/// The fuzzer's slowest inputs created topics of tens of thousands of partitions in one
/// CreateTopics (three open files each: one request could use up the process's descriptors).
/// Kafka 4 refuses a request for more than 10,000 partitions in all with POLICY_VIOLATION, before
/// creating anything; so does this broker now.
#[test]
fn create_topics_over_10000_partitions_is_a_policy_violation() {
    use minikafka::broker::Broker;
    use minikafka::config::Config;
    use minikafka::protocol::messages::create_topics_request::{
        CreatableTopic, CreateTopicsRequest,
    };
    use minikafka::protocol::messages::create_topics_response::CreateTopicsResponse;
    use minikafka::protocol::wire::{Reader, Writer};
    use minikafka::reactor::{Reply, Service};

    fn create(b: &mut Broker, topics: &[(&str, i32)], validate_only: bool) -> Vec<(i16, i32)> {
        let now = std::time::Instant::now();
        let req = CreateTopicsRequest {
            topics: topics
                .iter()
                .map(|(name, n)| CreatableTopic {
                    name,
                    num_partitions: *n,
                    replication_factor: 1,
                    ..Default::default()
                })
                .collect(),
            timeout_ms: 1000,
            validate_only,
        };
        let mut frame = Vec::new();
        let mut w = Writer::new(&mut frame);
        w.i16(19);
        w.i16(7);
        w.i32(1);
        w.nullable_string(Some("t"));
        w.uvarint(0);
        req.encode(&mut w, 7);
        let Reply::Now(resp) = b.handle(0, &mut frame, now) else {
            panic!("CreateTopics is answered at once");
        };
        let mut r = Reader::new(&resp[8..]);
        r.skip_tagged_fields().unwrap();
        let resp = CreateTopicsResponse::decode(&mut r, 7).unwrap();
        resp.topics
            .iter()
            .map(|t| (t.error_code, t.num_partitions))
            .collect()
    }
    let dir = harness::ScratchDir::new("policy");
    let mut b = Broker::open(Config::ephemeral(dir.path()), std::time::Instant::now()).unwrap();
    assert_eq!(
        create(&mut b, &[("a", 6000), ("b", 4001)], false),
        vec![(44, -1), (44, -1)]
    );
    assert_eq!(create(&mut b, &[("c", 30_000)], false), vec![(44, -1)]);
    assert_eq!(b.logs().partitions().count(), 0, "nothing was created");
    assert!(b.image().topic("a").is_none());
    // At the limit: accepted (validated only, to keep the test fast).
    assert_eq!(
        create(&mut b, &[("a", 3), ("b", 9997)], true),
        vec![(0, 3), (0, 9997)]
    );
}

/// A 10-byte varlong (a record's timestamp delta) whose last byte is over 1 passed produce
/// validation, which dropped the extra bits, while the record decoder refuses it: stored, then
/// never compacted. The walk now refuses it too (CORRUPT_MESSAGE). Found by the record_batch
/// oracle (walk vs. decoder) on a hand-made input after reading why they could differ.
#[test]
fn varlong_tenth_byte_over_one() {
    regression("record_batch", "varlong_tenth_byte_over_one");
}

/// A new API must be added to the harness (request decoder, response schema) and to the seed
/// generator (src/fuzzing.rs), or the fuzzer would treat its answers as crashes.
#[test]
fn every_served_api_is_fuzzed() {
    for a in minikafka::protocol::apis::APIS {
        assert!(
            harness::DECODERS.iter().any(|d| d.key == a.key),
            "{} (api {}) has no request decoder in fuzz/src/lib.rs DECODERS",
            a.name,
            a.key
        );
        assert!(
            harness::has_response_schema(a.key),
            "{} (api {}) has no response schema in fuzz/src/lib.rs decode_response",
            a.name,
            a.key
        );
    }
}
