use super::super::{LogConfig, LogError, LogManager, PartitionLog};
use super::{CleanProgress, CLEANER_OFFSET_CHECKPOINT, CRASH_AT};
use crate::records::{batches, parse_records, records_payload, validate_batch, BatchBuilder};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::test_util::TempDir;

/// (offset, key, value)
type Rec = (i64, Vec<u8>, Option<Vec<u8>>);

const KEYS: usize = 100;
const UPDATES: usize = 20_000;
const PER_BATCH: usize = 5;
const TOMBSTONED: usize = 10;
const RETENTION: i64 = 1_000_000;

fn compact_config() -> LogConfig {
    LogConfig {
        segment_bytes: 16 << 10,
        index_interval_bytes: 512,
        cleanup_policy_compact: true,
        cleanup_policy_delete: false,
        delete_retention_ms: RETENTION,
        ..LogConfig::default()
    }
}

fn key(k: usize) -> Vec<u8> {
    format!("key-{k:03}").into_bytes()
}

fn value(i: usize) -> Vec<u8> {
    format!("value-{i:06}-{}", "x".repeat(40)).into_bytes()
}

/// Update `i` writes a pseudo-random key at timestamp `i`; the last update of keys below
/// `TOMBSTONED` is a tombstone. Then a roll and one unrelated record in the active segment.
/// Returns the expected live map and the log end before the extra record.
fn fill(log: &mut PartitionLog) -> BTreeMap<Vec<u8>, Vec<u8>> {
    // Keys in a scrambled order, so the latest updates are spread over the log.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let keys: Vec<usize> = (0..UPDATES)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % KEYS as u64) as usize
        })
        .collect();
    let mut last = vec![0; KEYS];
    for (i, &k) in keys.iter().enumerate() {
        last[k] = i;
    }
    let mut expected = BTreeMap::new();
    for start in (0..UPDATES).step_by(PER_BATCH) {
        let mut b = BatchBuilder::new(0, start as i64);
        for i in start..start + PER_BATCH {
            let k = key(keys[i]);
            let tombstone = keys[i] < TOMBSTONED && last[keys[i]] == i;
            let v = value(i);
            if tombstone {
                b.push(None, i as i64, Some(&k), None, &[]);
                expected.remove(&k);
            } else {
                b.push(None, i as i64, Some(&k), Some(&v), &[("h", Some(b"1"))]);
                expected.insert(k, v);
            }
        }
        let mut bytes = b.finish();
        log.append(&mut bytes, UPDATES as i64, 0).unwrap();
    }
    log.roll(UPDATES as i64).unwrap();
    let mut b = BatchBuilder::new(0, UPDATES as i64);
    b.push(None, UPDATES as i64, Some(b"other"), Some(b"o"), &[]);
    let mut bytes = b.finish();
    log.append(&mut bytes, UPDATES as i64, 0).unwrap();
    expected.insert(b"other".to_vec(), b"o".to_vec());
    expected
}

/// Every record in the log: (offset, key, value), checking batches are valid and offsets
/// strictly ascending.
fn read_records(log: &PartitionLog) -> Vec<Rec> {
    let mut buf = Vec::new();
    log.read(log.log_start_offset(), usize::MAX, true, &mut buf)
        .unwrap();
    let mut out = Vec::new();
    let mut last = -1;
    for item in batches(&buf) {
        let (h, b) = item.unwrap();
        validate_batch(b).unwrap();
        let p = records_payload(b, 1 << 30).unwrap();
        for r in parse_records(&p, h.record_count).unwrap() {
            let o = h.base_offset + r.offset_delta as i64;
            assert!(o > last, "offsets ascend: {o} after {last}");
            last = o;
            out.push((o, r.key.unwrap().to_vec(), r.value.map(|v| v.to_vec())));
        }
    }
    out
}

fn live(records: &[Rec]) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut m = BTreeMap::new();
    for (_, k, v) in records {
        match v {
            Some(v) => m.insert(k.clone(), v.clone()),
            None => m.remove(k),
        };
    }
    m
}

/// Steps until idle; checks each call stays within the budget (plus one batch read and its
/// rewrite). Returns the number of calls.
fn clean_until_idle(mgr: &mut LogManager, now: i64, budget: usize) -> usize {
    for calls in 0..100_000 {
        let p: CleanProgress = mgr.clean_step(now, budget);
        assert!(
            p.bytes_processed as usize <= budget + 4096,
            "call {calls} did {} bytes on a {budget} budget",
            p.bytes_processed
        );
        if p.idle {
            return calls;
        }
    }
    panic!("cleaner never went idle");
}

fn open_filled(dir: &Path) -> (LogManager, BTreeMap<Vec<u8>, Vec<u8>>) {
    let mut mgr = LogManager::open(dir, compact_config(), 0).unwrap();
    let log = mgr
        .create("t", 0, [1; 16], compact_config(), UPDATES as i64)
        .unwrap();
    let expected = fill(log);
    (mgr, expected)
}

#[test]
fn compaction_keeps_the_latest_value_per_key_and_expires_tombstones() {
    let dir = TempDir::new("latest");
    let (mut mgr, expected) = open_filled(dir.path());
    let log = mgr.get("t", 0).unwrap();
    let before = log.size_bytes();
    let active = *log.segment_bases().last().unwrap();
    let active_file = log.dir().join(format!("{active:020}.log"));
    let active_bytes = fs::read(&active_file).unwrap();
    let leo = log.log_end_offset();
    assert!(log.segment_count() > 50);

    let now = UPDATES as i64 + 10;
    let calls = clean_until_idle(&mut mgr, now, 64 << 10);
    assert!(calls > 10, "bounded work takes many calls ({calls})");
    let log = mgr.get("t", 0).unwrap();
    let recs = read_records(log);
    // One record per key: live keys with their latest value, tombstones still there.
    assert_eq!(recs.len(), KEYS + 1);
    assert_eq!(
        recs.iter().filter(|r| r.2.is_none()).count(),
        TOMBSTONED,
        "tombstones survive before delete.retention.ms"
    );
    assert_eq!(live(&recs), expected);
    assert!(recs.windows(2).any(|w| w[1].0 > w[0].0 + 1), "offset gaps");
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(
        fs::read(&active_file).unwrap(),
        active_bytes,
        "active untouched"
    );
    assert_eq!(
        with_suffix(log.dir(), &[".swap", ".cleaned", ".deleted"]),
        0
    );
    let after = log.size_bytes();
    assert!(after * 10 < before, "{before} -> {after} bytes");
    assert_eq!(mgr.cleaned_up_to("t", 0), Some(active));
    let cp = fs::read_to_string(dir.path().join(CLEANER_OFFSET_CHECKPOINT)).unwrap();
    assert_eq!(cp, format!("0\n1\nt 0 {active}\n"));
    // Nothing new: idle at once.
    assert!(mgr.clean_step(now, 64 << 10).idle);

    // Past delete.retention.ms the tombstones go.
    let later = now + RETENTION + 10;
    clean_until_idle(&mut mgr, later, 64 << 10);
    let recs = read_records(mgr.get("t", 0).unwrap());
    assert_eq!(recs.len(), KEYS - TOMBSTONED + 1);
    assert_eq!(live(&recs), expected);

    // And it all survives a restart.
    mgr.shutdown().unwrap();
    drop(mgr);
    let mgr = LogManager::open(dir.path(), compact_config(), later).unwrap();
    let recs = read_records(mgr.get("t", 0).unwrap());
    assert_eq!(live(&recs), expected);
    assert_eq!(mgr.cleaned_up_to("t", 0), Some(active));
}

#[test]
fn a_crash_at_any_step_of_a_swap_loses_nothing() {
    for step in 1..=4u8 {
        let dir = TempDir::new("crash");
        let (mut mgr, expected) = open_filled(dir.path());
        let leo = mgr.get("t", 0).unwrap().log_end_offset();
        CRASH_AT.with(|c| c.set(step));
        let mut crashed = false;
        for _ in 0..10_000 {
            // A swap that fails aborts the job and leaves its files: stop as the process would.
            let p = mgr.clean_step(UPDATES as i64 + 10, 64 << 10);
            if mgr.cleaner.job.is_none() && leftovers(mgr.get("t", 0).unwrap().dir()) > 0 {
                crashed = true;
                break;
            }
            if p.idle {
                break;
            }
        }
        CRASH_AT.with(|c| c.set(0));
        assert!(crashed, "step {step}: crash point reached");
        drop(mgr);
        let mut mgr = LogManager::open(dir.path(), compact_config(), UPDATES as i64 + 10).unwrap();
        let log = mgr.get("t", 0).unwrap();
        assert_eq!(
            with_suffix(log.dir(), &[".swap", ".cleaned", ".deleted"]),
            0,
            "step {step}: leftovers handled"
        );
        assert_eq!(log.log_end_offset(), leo);
        assert_eq!(live(&read_records(log)), expected, "step {step}");
        // The cleaner finishes the job after the restart.
        clean_until_idle(&mut mgr, UPDATES as i64 + 10, 64 << 10);
        let recs = read_records(mgr.get("t", 0).unwrap());
        assert_eq!(recs.len(), KEYS + 1, "step {step}");
        assert_eq!(live(&recs), expected, "step {step}");
    }
}

/// `.cleaned` and `.swap` files in `dir`.
fn leftovers(dir: &Path) -> usize {
    with_suffix(dir, &[".swap", ".cleaned"])
}

fn with_suffix(dir: &Path, suffixes: &[&str]) -> usize {
    fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            let n = e.as_ref().unwrap().file_name();
            let n = n.to_string_lossy();
            suffixes.iter().any(|s| n.ends_with(s))
        })
        .count()
}

#[test]
fn an_interrupted_clean_leaves_cleaned_files_that_open_discards() {
    let dir = TempDir::new("cleaned");
    let (mut mgr, expected) = open_filled(dir.path());
    // Small steps until output is being written to `.cleaned`.
    for _ in 0..10_000 {
        mgr.clean_step(UPDATES as i64 + 10, 4096);
        if leftovers(mgr.get("t", 0).unwrap().dir()) > 0 {
            break;
        }
    }
    assert!(leftovers(mgr.get("t", 0).unwrap().dir()) > 0);
    drop(mgr);
    let mgr = LogManager::open(dir.path(), compact_config(), UPDATES as i64 + 10).unwrap();
    let log = mgr.get("t", 0).unwrap();
    assert_eq!(leftovers(log.dir()), 0);
    let recs = read_records(log);
    assert_eq!(recs.len(), UPDATES + 1, "nothing lost, nothing cleaned yet");
    assert_eq!(live(&recs), expected);
}

#[test]
fn dirty_ratio_and_compaction_lag_hold_cleaning_back() {
    let dir = TempDir::new("lag");
    let (mut mgr, _) = open_filled(dir.path());
    let mut cfg = compact_config();
    cfg.min_compaction_lag_ms = i64::MAX / 4;
    mgr.get_mut("t", 0).unwrap().set_config(cfg.clone());
    assert!(mgr.clean_step(UPDATES as i64 + 10, 1 << 20).idle);
    cfg.min_compaction_lag_ms = 0;
    cfg.min_cleanable_dirty_ratio = 1.01;
    mgr.get_mut("t", 0).unwrap().set_config(cfg.clone());
    assert!(mgr.clean_step(UPDATES as i64 + 10, 1 << 20).idle);
    cfg.cleanup_policy_compact = false;
    cfg.min_cleanable_dirty_ratio = 0.5;
    mgr.get_mut("t", 0).unwrap().set_config(cfg);
    assert!(mgr.clean_step(UPDATES as i64 + 10, 1 << 20).idle);
}

#[test]
fn a_small_offset_map_cleans_in_several_passes() {
    let dir = TempDir::new("smallmap");
    let (mut mgr, expected) = open_filled(dir.path());
    mgr.cleaner.set_map_memory(10);
    // Each pass maps one segment; the last dirty segment is small, so clean whatever is dirty.
    let cfg = LogConfig {
        min_cleanable_dirty_ratio: 0.0,
        ..compact_config()
    };
    mgr.get_mut("t", 0).unwrap().set_config(cfg);
    let now = UPDATES as i64 + 10;
    let mut passes = 0;
    while !mgr.clean_step(now, 1 << 20).idle {
        passes += 1;
        assert!(passes < 10_000);
    }
    assert!(passes > 20, "{passes} steps");
    let recs = read_records(mgr.get("t", 0).unwrap());
    assert_eq!(live(&recs), expected);
    assert_eq!(recs.len(), KEYS + 1);
}

#[test]
fn keyless_records_are_rejected_by_a_compacted_log() {
    let dir = TempDir::new("keyless");
    let mut log = PartitionLog::open(dir.path(), compact_config(), 0).unwrap();
    let mut b = BatchBuilder::new(0, 0);
    b.push(None, 0, Some(b"k"), Some(b"v"), &[]);
    b.push(None, 0, None, Some(b"v"), &[]);
    let mut keyless = b.finish();
    assert!(matches!(
        log.append(&mut keyless.clone(), 0, 0),
        Err(LogError::RecordErrors(e)) if e.errors.len() == 1 && e.errors[0].batch_index == 1
    ));
    assert_eq!(log.log_end_offset(), 0);
    let mut b = BatchBuilder::new(0, 0);
    b.push(None, 0, Some(b"k"), None, &[]);
    log.append(&mut b.finish(), 0, 0).unwrap();
    log.set_config(LogConfig::default());
    log.append(&mut keyless, 0, 0).unwrap();
}

#[test]
fn compact_only_logs_skip_time_retention() {
    let dir = TempDir::new("noretention");
    let cfg = LogConfig {
        retention_ms: 10,
        ..compact_config()
    };
    let mut log = PartitionLog::open(dir.path(), cfg, 0).unwrap();
    for i in 0..3 {
        let mut b = BatchBuilder::new(0, i);
        b.push(None, i, Some(b"k"), Some(b"v"), &[]);
        log.append(&mut b.finish(), i, 0).unwrap();
        log.roll(i).unwrap();
    }
    assert_eq!(log.enforce_retention(1_000_000).unwrap(), 0);
}

#[test]
fn appends_and_rolls_during_cleaning_are_kept() {
    let dir = TempDir::new("interleaved");
    let (mut mgr, mut expected) = open_filled(dir.path());
    let now = UPDATES as i64 + 10;
    let mut i = 0usize;
    let mut swapped = 0;
    for _ in 0..3000 {
        swapped += mgr.clean_step(now, 8 << 10).segments_swapped;
        let mut b = BatchBuilder::new(0, now);
        for _ in 0..PER_BATCH {
            let k = key(i * 7 % KEYS);
            let v = format!("late-{i}").into_bytes();
            b.push(None, now, Some(&k), Some(&v), &[]);
            expected.insert(k, v);
            i += 1;
        }
        let log = mgr.get_mut("t", 0).unwrap();
        log.append(&mut b.finish(), now, 0).unwrap();
    }
    assert!(swapped > 0);
    clean_until_idle(&mut mgr, now, 64 << 10);
    let log = mgr.get("t", 0).unwrap();
    assert_eq!(leftovers(log.dir()), 0);
    let recs = read_records(log);
    assert_eq!(live(&recs), expected);
    assert!(recs.len() < 1000, "{} records left", recs.len());
}

#[test]
fn retention_during_a_clean_aborts_it_and_leaves_no_files() {
    let dir = TempDir::new("retention");
    let (mut mgr, expected) = open_filled(dir.path());
    let now = UPDATES as i64 + 10;
    for _ in 0..10_000 {
        mgr.clean_step(now, 4096);
        if leftovers(mgr.get("t", 0).unwrap().dir()) > 0 {
            break;
        }
    }
    assert!(mgr.cleaner.job.is_some());
    let cfg = LogConfig {
        cleanup_policy_delete: true,
        retention_ms: UPDATES as i64 / 2,
        ..compact_config()
    };
    mgr.get_mut("t", 0).unwrap().set_config(cfg);
    assert!(mgr.enforce_retention(now).unwrap() > 0);
    mgr.clean_step(now, 4096);
    assert_eq!(leftovers(mgr.get("t", 0).unwrap().dir()), 0);
    clean_until_idle(&mut mgr, now, 64 << 10);
    let recs = read_records(mgr.get("t", 0).unwrap());
    // Retention removed a prefix; what is left is each key's latest value.
    for (k, v) in live(&recs) {
        assert_eq!(expected.get(&k), Some(&v));
    }
    assert_eq!(recs.len(), live(&recs).len() + TOMBSTONED);
}

#[test]
fn compressed_and_control_batches() {
    let dir = TempDir::new("codecs");
    let mut mgr = LogManager::open(dir.path(), compact_config(), 0).unwrap();
    let log = mgr.create("t", 0, [2; 16], compact_config(), 0).unwrap();
    for round in 0..3 {
        let mut b = BatchBuilder::new(0, round)
            .compression(crate::records::Compression::Gzip)
            .producer(7, 0, round as i32 * 3);
        for k in 0..3u8 {
            let v = [round as u8, k];
            b.push(None, round, Some(&[b'k', k]), Some(&v), &[]);
        }
        log.append(&mut b.finish(), round, 0).unwrap();
        // A transaction marker (control batch without key checks).
        log.append_marker(7, 0, true, 0, round).unwrap();
        log.roll(round).unwrap();
    }
    let mut b = BatchBuilder::new(0, 5);
    b.push(None, 5, Some(b"k\x00"), None, &[]);
    log.append(&mut b.finish(), 5, 0).unwrap();
    log.roll(5).unwrap();
    let mut b = BatchBuilder::new(0, 6);
    b.push(None, 6, Some(b"x"), Some(b"x"), &[]);
    log.append(&mut b.finish(), 6, 0).unwrap();
    clean_until_idle(&mut mgr, 10, 1 << 20);
    let mut buf = Vec::new();
    let log = mgr.get("t", 0).unwrap();
    log.read(0, usize::MAX, true, &mut buf).unwrap();
    let mut controls = 0;
    let mut data = Vec::new();
    for item in batches(&buf) {
        let (h, b) = item.unwrap();
        validate_batch(b).unwrap();
        if h.is_control() {
            controls += 1;
            continue;
        }
        if h.base_offset < 12 {
            assert_eq!(h.compression(), crate::records::Compression::Gzip, "{h:?}");
        }
        let p = records_payload(b, 1 << 20).unwrap();
        for r in parse_records(&p, h.record_count).unwrap() {
            data.push((
                h.base_offset + r.offset_delta as i64,
                r.key.unwrap().to_vec(),
                r.value.map(|v| v.to_vec()),
            ));
        }
    }
    assert_eq!(controls, 3);
    assert_eq!(
        data,
        vec![
            (9, b"k\x01".to_vec(), Some(vec![2, 1])),
            (10, b"k\x02".to_vec(), Some(vec![2, 2])),
            (12, b"k\x00".to_vec(), None),
            (13, b"x".to_vec(), Some(b"x".to_vec())),
        ]
    );
}

#[test]
fn empty_cleaned_segments_do_not_block_retention() {
    let dir = TempDir::new("empty");
    let cfg = LogConfig {
        cleanup_policy_delete: true,
        retention_ms: 100,
        min_cleanable_dirty_ratio: 0.0,
        // One segment per group.
        segment_bytes: 100,
        ..compact_config()
    };
    let mut mgr = LogManager::open(dir.path(), cfg.clone(), 0).unwrap();
    let log = mgr.create("t", 0, [3; 16], cfg, 0).unwrap();
    for (ts, k) in [(0, b"k"), (1, b"k"), (2, b"j"), (500, b"k")] {
        let mut b = BatchBuilder::new(0, ts);
        b.push(None, ts, Some(k), Some(b"v"), &[]);
        log.append(&mut b.finish(), ts, 0).unwrap();
        log.roll(ts).unwrap();
    }
    clean_until_idle(&mut mgr, 550, 1 << 20);
    let log = mgr.get_mut("t", 0).unwrap();
    assert_eq!(read_records(log).len(), 2);
    assert_eq!(log.segment_bases(), vec![0, 1, 2, 3, 4]);
    // The two empty segments go with the expired one after them.
    assert_eq!(log.enforce_retention(300).unwrap(), 3);
    assert_eq!(log.log_start_offset(), 3);
}

#[test]
fn a_corrupt_segment_backs_the_partition_off_and_loses_nothing() {
    let dir = TempDir::new("corrupt");
    let (mut mgr, _) = open_filled(dir.path());
    let log = mgr.get("t", 0).unwrap();
    let second = log.segment_bases()[1];
    let path = log.dir().join(format!("{second:020}.log"));
    let mut bytes = fs::read(&path).unwrap();
    bytes[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    fs::write(&path, &bytes).unwrap();
    let now = UPDATES as i64 + 10;
    let mut steps = 0;
    while !mgr.clean_step(now, 64 << 10).idle {
        steps += 1;
        assert!(steps < 10_000);
    }
    let log = mgr.get("t", 0).unwrap();
    assert_eq!(leftovers(log.dir()), 0);
    assert_eq!(fs::read(&path).unwrap(), bytes, "left as it was");
    assert_eq!(log.segment_bases()[1], second);
    // Five minutes later it is tried again (and fails again, harmlessly).
    assert!(!mgr.clean_step(now + 5 * 60 * 1000, 64 << 10).idle);
}

#[test]
fn a_panic_while_cleaning_stops_cleaning_that_partition_only() {
    use crate::log::faults::{self, Op, PANIC};
    let dir = TempDir::new("clean-panic");
    let (mut mgr, expected) = open_filled(dir.path());
    let now = UPDATES as i64 + 10;
    {
        // The cleaner's first write of its output panics.
        let _bug = faults::fail(&dir.path().join("t-0"), Op::Write, PANIC);
        assert!(
            !mgr.clean_step(now, 64 << 10).idle,
            "there is cleaning to do"
        );
        let calls = clean_until_idle(&mut mgr, now, 64 << 10);
        assert!(calls > 0);
    }
    // No output is left behind, the log is whole and still writable, and the partition is
    // not picked again (until a restart).
    assert_eq!(
        with_suffix(&dir.path().join("t-0"), &[".cleaned", ".swap"]),
        0
    );
    let log = mgr.get_mut("t", 0).unwrap();
    assert!(!log.is_offline());
    assert_eq!(live(&read_records(log)), expected);
    let mut b = BatchBuilder::new(0, now);
    b.push(None, now, Some(b"k"), Some(b"v"), &[]);
    log.append(&mut b.finish(), now, 0).unwrap();
    assert!(mgr.clean_step(now, 64 << 10).idle, "not cleaned again");
    assert!(!mgr.is_offline());
}

#[test]
fn aborted_records_never_win_and_open_transactions_are_not_cleaned() {
    let dir = TempDir::new("clean-txn");
    let cfg = LogConfig {
        segment_bytes: 1 << 20,
        ..compact_config()
    };
    let mut mgr = LogManager::open(dir.path(), cfg.clone(), 0).unwrap();
    let log = mgr.create("t", 0, [1; 16], cfg, 0).unwrap();
    let txn = |pid: i64, seq: i32, v: &[u8]| {
        let mut b = BatchBuilder::new(0, 0)
            .producer(pid, 0, seq)
            .transactional(true);
        b.push(None, 0, Some(b"k"), Some(v), &[]);
        b.finish()
    };
    // Committed "c1", then "a1" in an aborted transaction, then a roll.
    log.append(&mut txn(1, 0, b"c1"), 0, 0).unwrap(); // 0
    log.append_marker(1, 0, true, 0, 0).unwrap(); // 1
    log.append(&mut txn(2, 0, b"a1"), 0, 0).unwrap(); // 2
    log.append_marker(2, 0, false, 0, 0).unwrap(); // 3
    log.roll(0).unwrap();
    // An open transaction in the next segment blocks cleaning past it.
    log.append(&mut txn(3, 0, b"open"), 0, 0).unwrap(); // 4
    log.roll(0).unwrap();
    let mut b = BatchBuilder::new(0, 0);
    b.push(None, 0, Some(b"x"), Some(b"x"), &[]);
    log.append(&mut b.finish(), 0, 0).unwrap(); // 5 (active)
    clean_until_idle(&mut mgr, 10, 1 << 20);
    let log = mgr.get("t", 0).unwrap();
    let mut buf = Vec::new();
    log.read(0, usize::MAX, true, &mut buf).unwrap();
    let mut data = Vec::new();
    let mut markers = 0;
    for item in batches(&buf) {
        let (h, b) = item.unwrap();
        if h.is_control() {
            markers += 1;
            continue;
        }
        let p = records_payload(b, 1 << 20).unwrap();
        for r in parse_records(&p, h.record_count).unwrap() {
            data.push((h.base_offset, r.value.unwrap().to_vec()));
        }
    }
    // The committed value survives; the aborted one is gone; the open one is untouched.
    assert_eq!(
        data,
        vec![
            (0, b"c1".to_vec()),
            (4, b"open".to_vec()),
            (5, b"x".to_vec())
        ]
    );
    assert_eq!(markers, 2, "markers are kept");
}
