use super::*;
use crate::records::{batches, validate_batch, BatchBuilder};
use std::fs;
use std::path::{Path, PathBuf};

use crate::test_util::TempDir;

/// A batch of `records` records of `value_len` bytes, timestamps `ts, ts+1, ...`.
fn batch(records: usize, ts: i64, value_len: usize) -> Vec<u8> {
    let mut b = BatchBuilder::new(0, ts);
    let v = vec![b'v'; value_len];
    for i in 0..records {
        b.push(None, ts + i as i64, Some(b"k"), Some(&v), &[]);
    }
    b.finish()
}

fn small() -> LogConfig {
    LogConfig {
        segment_bytes: 1000,
        index_interval_bytes: 100,
        ..LogConfig::default()
    }
}

/// Base and next offsets of the batches in `buf`, checking each is whole and valid.
fn offsets(buf: &[u8]) -> Vec<(i64, i64)> {
    batches(buf)
        .map(|r| {
            let (h, b) = r.expect("whole batches");
            validate_batch(b).expect("valid batch");
            (h.base_offset, h.next_offset())
        })
        .collect()
}

fn read_all(log: &PartitionLog) -> Vec<u8> {
    let mut out = Vec::new();
    log.read(log.log_start_offset(), usize::MAX, true, &mut out)
        .unwrap();
    out
}

#[test]
fn append_assigns_offsets_and_reads_back() {
    let d = TempDir::new("rt");
    let mut log = PartitionLog::open(d.path(), LogConfig::default(), 0).unwrap();
    assert_eq!(log.log_end_offset(), 0);
    let mut b = batch(3, 100, 10);
    let info = log.append(&mut b, 5, 7).unwrap();
    assert_eq!(
        (info.base_offset, info.last_offset, info.record_count),
        (0, 2, 3)
    );
    assert_eq!(info.log_append_time, -1);
    assert_eq!(info.max_timestamp, 102);
    // Two batches in one request.
    let mut two = batch(2, 200, 10);
    two.extend_from_slice(&batch(1, 300, 10));
    let info = log.append(&mut two, 6, 7).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (3, 5));
    assert_eq!(log.log_end_offset(), 6);
    let all = read_all(&log);
    assert_eq!(offsets(&all), vec![(0, 3), (3, 5), (5, 6)]);
    let h = validate_batch(&all).unwrap();
    assert_eq!(h.partition_leader_epoch, 7);
    assert_eq!(log.size_bytes() as usize, all.len());
    assert!(d.path().join("00000000000000000000.log").exists());
    assert!(d.path().join("00000000000000000000.index").exists());
    assert!(d.path().join("00000000000000000000.timeindex").exists());
}

#[test]
fn bad_requests_append_nothing() {
    let d = TempDir::new("bad");
    let mut log = PartitionLog::open(d.path(), LogConfig::default(), 0).unwrap();
    let mut good = batch(1, 1, 10);
    log.append(&mut good, 0, 0).unwrap();
    // Second batch of the request has a bad CRC.
    let mut req = batch(1, 1, 10);
    let mut bad = batch(1, 1, 10);
    let n = bad.len();
    bad[n - 1] ^= 1;
    req.extend_from_slice(&bad);
    assert!(matches!(
        log.append(&mut req, 0, 0),
        Err(LogError::Records(RecordsError::BadCrc { .. }))
    ));
    // Trailing garbage.
    let mut req = batch(1, 1, 10);
    req.extend_from_slice(&[0, 1, 2]);
    assert!(matches!(
        log.append(&mut req, 0, 0),
        Err(LogError::Records(_))
    ));
    // Old magic.
    let mut old = batch(1, 1, 10);
    old[16] = 1;
    assert!(matches!(
        log.append(&mut old, 0, 0),
        Err(LogError::UnsupportedMagic(1))
    ));
    // Too large.
    log.set_config(LogConfig {
        max_message_bytes: 100,
        ..LogConfig::default()
    });
    let mut big = batch(1, 1, 200);
    assert!(matches!(
        log.append(&mut big, 0, 0),
        Err(LogError::MessageTooLarge)
    ));
    assert_eq!(log.log_end_offset(), 1);
    assert_eq!(offsets(&read_all(&log)), vec![(0, 1)]);
}

#[test]
fn reads_across_many_segments_without_gap_or_repeat() {
    let d = TempDir::new("segs");
    let mut log = PartitionLog::open(d.path(), small(), 0).unwrap();
    let mut expected_next = 0;
    for i in 0..80 {
        let mut b = batch(1 + i % 4, 1000 + i as i64, (i * 7) % 90);
        let info = log.append(&mut b, 0, 0).unwrap();
        assert_eq!(info.base_offset, expected_next);
        expected_next = info.last_offset + 1;
    }
    assert!(log.segment_count() > 5, "{}", log.segment_count());
    let leo = log.log_end_offset();
    for max_bytes in [
        1usize,
        40,
        100,
        150,
        333,
        999,
        1000,
        1001,
        5000,
        1 << 30,
        usize::MAX,
    ] {
        for min_one in [true, false] {
            let mut at = 0;
            let mut seen = Vec::new();
            while at < leo {
                let mut out = Vec::new();
                let info = log.read(at, max_bytes, min_one, &mut out).unwrap();
                assert_eq!(info.bytes, out.len());
                assert_eq!(info.high_watermark, leo);
                if out.is_empty() {
                    assert!(!min_one);
                    break;
                }
                let got = offsets(&out);
                assert!(got.len() == 1 || out.len() <= max_bytes, "over budget");
                seen.extend(got.iter().copied());
                at = got.last().unwrap().1;
            }
            if min_one {
                let flat: Vec<_> = seen.windows(2).map(|w| (w[0].1, w[1].0)).collect();
                assert!(flat.iter().all(|(a, b)| a == b), "gap or repeat");
                assert_eq!(seen.first().unwrap().0, 0);
                assert_eq!(seen.last().unwrap().1, leo);
            }
        }
    }
    // A read from any offset starts with the batch containing it.
    for o in 0..leo {
        let mut out = Vec::new();
        log.read(o, 1, true, &mut out).unwrap();
        let got = offsets(&out);
        assert_eq!(got.len(), 1);
        assert!(got[0].0 <= o && o < got[0].1);
    }
}

#[test]
fn min_one_returns_a_batch_bigger_than_max_bytes() {
    let d = TempDir::new("minone");
    let mut log = PartitionLog::open(d.path(), LogConfig::default(), 0).unwrap();
    let mut big = batch(1, 0, 5000);
    let len = big.len();
    log.append(&mut big, 0, 0).unwrap();
    let mut out = Vec::new();
    let info = log.read(0, 100, true, &mut out).unwrap();
    assert_eq!(info.bytes, len);
    let mut out = Vec::new();
    assert_eq!(log.read(0, 100, false, &mut out).unwrap().bytes, 0);
    assert!(out.is_empty());
}

#[test]
fn out_of_range() {
    let d = TempDir::new("oor");
    let mut log = PartitionLog::open(d.path(), LogConfig::default(), 0).unwrap();
    log.append(&mut batch(2, 0, 1), 0, 0).unwrap();
    let mut out = Vec::new();
    assert_eq!(log.read(2, 100, true, &mut out).unwrap().bytes, 0);
    assert!(matches!(
        log.read(3, 100, true, &mut out),
        Err(LogError::OffsetOutOfRange {
            requested: 3,
            start: 0,
            end: 2
        })
    ));
    assert!(matches!(
        log.read(-1, 100, true, &mut out),
        Err(LogError::OffsetOutOfRange { .. })
    ));
}

fn active_log_file(dir: &Path) -> PathBuf {
    let mut logs: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs.pop().unwrap()
}

fn fill(log: &mut PartitionLog, n: usize) -> Vec<i64> {
    (0..n)
        .map(|i| {
            log.append(&mut batch(2, 10 * i as i64, 30), 0, 0)
                .unwrap()
                .base_offset
        })
        .collect()
}

#[test]
fn recovery_truncates_a_torn_tail() {
    let d = TempDir::new("torn");
    let cfg = small();
    let mut log = PartitionLog::open(d.path(), cfg.clone(), 0).unwrap();
    fill(&mut log, 30);
    let leo = log.log_end_offset();
    drop(log); // a crash: no close, no checkpoint
    let f = active_log_file(d.path());
    let len = fs::metadata(&f).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    let mut log = PartitionLog::open(d.path(), cfg, 0).unwrap();
    assert_eq!(log.log_end_offset(), leo - 2);
    assert!(log.open_stats().bytes_truncated > 0);
    assert_eq!(log.recovery_point(), leo - 2);
    let info = log.append(&mut batch(1, 0, 1), 0, 0).unwrap();
    assert_eq!(info.base_offset, leo - 2);
    let all = read_all(&log);
    assert_eq!(offsets(&all).last().unwrap().1, leo - 1);
}

#[test]
fn recovery_truncates_a_corrupt_last_batch() {
    let d = TempDir::new("crc");
    let mut log = PartitionLog::open(d.path(), LogConfig::default(), 0).unwrap();
    fill(&mut log, 5);
    let leo = log.log_end_offset();
    drop(log);
    let f = active_log_file(d.path());
    let mut bytes = fs::read(&f).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x40;
    fs::write(&f, &bytes).unwrap();
    let log = PartitionLog::open(d.path(), LogConfig::default(), 0).unwrap();
    assert_eq!(log.log_end_offset(), leo - 2);
    assert_eq!(offsets(&read_all(&log)).len(), 4);
}

#[test]
fn missing_and_garbage_indexes_are_rebuilt() {
    let d = TempDir::new("idx");
    let cfg = small();
    let mut log = PartitionLog::open(d.path(), cfg.clone(), 0).unwrap();
    fill(&mut log, 60);
    log.close().unwrap();
    let before = read_all(&log);
    let segs = log.segment_count();
    let leo = log.log_end_offset();
    drop(log);
    let mut n = 0;
    for e in fs::read_dir(d.path()).unwrap() {
        let p = e.unwrap().path();
        match p.extension().and_then(|x| x.to_str()) {
            Some("index") if n % 2 == 0 => fs::remove_file(&p).unwrap(),
            Some("index") => fs::write(&p, [0xffu8; 13]).unwrap(),
            Some("timeindex") => fs::write(&p, [7u8; 24]).unwrap(),
            _ => continue,
        }
        n += 1;
    }
    let clean = RecoveryState {
        recovery_point: None,
        log_start_offset: 0,
        rewrite_recovered: false,
    };
    let log = PartitionLog::open_with(d.path(), cfg, 0, clean).unwrap();
    assert_eq!(log.open_stats().segments_recovered, segs);
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(read_all(&log), before);
    assert_eq!(log.offset_for_timestamp(100), Some((20, 100)));
    for e in fs::read_dir(d.path()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "index") {
            assert_eq!(fs::metadata(&p).unwrap().len() % 8, 0);
        }
    }
}

#[test]
fn clean_shutdown_reopens_without_scanning() {
    let d = TempDir::new("clean");
    let cfg = LogConfig {
        segment_bytes: 20_000,
        ..LogConfig::default()
    };
    let mut mgr = LogManager::open(d.path(), cfg.clone(), 0).unwrap();
    assert!(!mgr.had_clean_shutdown());
    let id = *uuid::Uuid::new_v4().as_bytes();
    let log = mgr.create("t", 0, id, cfg.clone(), 0).unwrap();
    fill(log, 500);
    let leo = log.log_end_offset();
    let before = read_all(log);
    mgr.create("u", 3, id, cfg.clone(), 0).unwrap();
    mgr.shutdown().unwrap();
    drop(mgr);
    assert!(d.path().join(CLEAN_SHUTDOWN_FILE).exists());
    let ckpt = read_checkpoint(&d.path().join(RECOVERY_POINT_CHECKPOINT)).unwrap();
    assert_eq!(ckpt.get(&("t".to_string(), 0)), Some(&leo));
    assert_eq!(ckpt.get(&("u".to_string(), 3)), Some(&0));
    let text = fs::read_to_string(d.path().join(RECOVERY_POINT_CHECKPOINT)).unwrap();
    assert!(text.starts_with("0\n2\n"));
    assert_eq!(
        read_partition_metadata(&d.path().join("t-0")).unwrap(),
        Some(id)
    );

    let mut mgr = LogManager::open(d.path(), cfg.clone(), 1).unwrap();
    assert!(mgr.had_clean_shutdown());
    assert!(!d.path().join(CLEAN_SHUTDOWN_FILE).exists());
    let log = mgr.get_mut("t", 0).unwrap();
    let st = log.open_stats();
    assert!(st.segments > 1);
    assert_eq!(st.segments_recovered, 0);
    assert!(st.tail_bytes_scanned < 4096 + 200, "{st:?}");
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(read_all(log), before);
    assert_eq!(log.offset_for_timestamp(2_000), Some((400, 2_000)));
    assert_eq!(
        log.append(&mut batch(1, 0, 1), 1, 0).unwrap().base_offset,
        leo
    );
    assert!(mgr.get("u", 3).is_some());
    drop(mgr); // crash: no marker, checkpoint from the last shutdown
    let mgr = LogManager::open(d.path(), cfg, 2).unwrap();
    let log = mgr.get("t", 0).unwrap();
    assert_eq!(log.open_stats().segments_recovered, 1);
    assert_eq!(log.log_end_offset(), leo + 1);
}

#[test]
fn offset_for_timestamp_finds_the_first_record() {
    let d = TempDir::new("ts");
    let mut log = PartitionLog::open(d.path(), small(), 0).unwrap();
    // Batch i has records at 10i .. 10i+2 (offsets 3i .. 3i+2), one out-of-order batch.
    for i in 0..40 {
        log.append(&mut batch(3, 10 * i, 20), 0, 0).unwrap();
    }
    log.append(&mut batch(1, 5, 20), 0, 0).unwrap(); // offset 120, ts 5
    assert_eq!(log.offset_for_timestamp(0), Some((0, 0)));
    assert_eq!(log.offset_for_timestamp(101), Some((31, 101)));
    assert_eq!(log.offset_for_timestamp(103), Some((33, 110)));
    assert_eq!(log.offset_for_timestamp(392), Some((119, 392)));
    assert_eq!(log.offset_for_timestamp(393), None);
    assert_eq!(log.max_timestamp(), Some((392, 119)));
}

#[test]
fn log_append_time_is_stamped() {
    let d = TempDir::new("lat");
    let cfg = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(d.path(), cfg, 0).unwrap();
    let info = log.append(&mut batch(2, 5, 1), 777, 0).unwrap();
    assert_eq!(info.log_append_time, 777);
    let all = read_all(&log);
    let h = validate_batch(&all).unwrap();
    assert!(h.timestamp_type_is_log_append());
    assert_eq!(h.max_timestamp, 777);
    assert_eq!(log.offset_for_timestamp(700), Some((0, 777)));
}

#[test]
fn flush_policy() {
    let d = TempDir::new("flush");
    let cfg = LogConfig {
        flush_messages: 1,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(d.path(), cfg, 0).unwrap();
    assert!(!log.needs_flush(0));
    for i in 0..3 {
        log.append(&mut batch(1, 0, 1), i, 0).unwrap();
        assert_eq!(log.unflushed_messages(), 1);
        assert!(log.needs_flush(i));
        log.flush().unwrap();
        assert!(!log.needs_flush(i));
        assert_eq!(log.recovery_point(), i + 1);
    }
    let cfg = LogConfig {
        flush_ms: 100,
        ..LogConfig::default()
    };
    log.set_config(cfg);
    log.append(&mut batch(1, 0, 1), 10, 0).unwrap();
    assert!(!log.needs_flush(50));
    assert!(log.needs_flush(110));
    log.flush_at(110).unwrap();
    assert!(!log.needs_flush(500));
}

#[test]
fn rolls_on_segment_ms_and_keeps_file_names() {
    let d = TempDir::new("roll");
    let cfg = LogConfig {
        segment_ms: 1000,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(d.path(), cfg, 0).unwrap();
    log.append(&mut batch(1, 0, 1), 0, 0).unwrap();
    log.append(&mut batch(1, 500, 1), 0, 0).unwrap();
    assert_eq!(log.segment_count(), 1);
    log.append(&mut batch(1, 1500, 1), 0, 0).unwrap();
    assert_eq!(log.segment_bases(), vec![0, 2]);
    assert!(d.path().join("00000000000000000002.log").exists());
}

#[test]
fn a_one_mib_batch_round_trips() {
    let d = TempDir::new("big");
    let cfg = LogConfig {
        max_message_bytes: 2 << 20,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(d.path(), cfg, 0).unwrap();
    let mut b = batch(16, 0, 64 << 10);
    assert!(b.len() > 1 << 20);
    let copy = b.clone();
    log.append(&mut b, 0, 0).unwrap();
    let all = read_all(&log);
    assert_eq!(all.len(), copy.len());
    assert_eq!(&all[61..], &copy[61..]);
}

#[test]
fn retention_deletes_whole_old_segments() {
    let d = TempDir::new("ret");
    let mut log = PartitionLog::open(d.path(), small(), 0).unwrap();
    for i in 0..40 {
        log.append(&mut batch(1, 1000 * i, 100), 0, 0).unwrap();
    }
    let segs = log.segment_count();
    let leo = log.log_end_offset();
    // Size: keep at most ~3000 bytes.
    log.set_config(LogConfig {
        retention_bytes: 3000,
        ..small()
    });
    let deleted = log.enforce_retention(40_000).unwrap();
    assert!(deleted > 0);
    assert_eq!(log.segment_count(), segs - deleted);
    assert!(log.size_bytes() <= 3000 + 1000);
    let start = log.log_start_offset();
    assert_eq!(start, log.segment_bases()[0]);
    let mut out = Vec::new();
    assert!(log.read(0, 100, true, &mut out).is_err());
    assert_eq!(offsets(&read_all(&log)).last().unwrap().1, leo);
    // Time: everything older than 10 s at t = 100 s, the active segment included.
    log.set_config(LogConfig {
        retention_ms: 10_000,
        ..small()
    });
    log.enforce_retention(100_000).unwrap();
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.log_start_offset(), leo);
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(
        log.append(&mut batch(1, 0, 1), 0, 0).unwrap().base_offset,
        leo
    );
    // Files are gone, and a reopen agrees.
    let n_logs = fs::read_dir(d.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "log")
        })
        .count();
    assert_eq!(n_logs, 1);
    drop(log);
    let log = PartitionLog::open(d.path(), small(), 0).unwrap();
    assert_eq!(log.log_start_offset(), leo);
    assert_eq!(log.log_end_offset(), leo + 1);
}

#[test]
fn delete_records_moves_the_start() {
    let d = TempDir::new("delrec");
    let mut log = PartitionLog::open(d.path(), small(), 0).unwrap();
    fill(&mut log, 30);
    assert_eq!(log.delete_records_before(25, 0).unwrap(), 25);
    assert_eq!(log.log_start_offset(), 25);
    let mut out = Vec::new();
    assert!(log.read(24, 100, true, &mut out).is_err());
    log.read(25, 1, true, &mut out).unwrap();
    assert!(offsets(&out)[0].0 <= 25);
    assert!(log.segment_bases()[0] <= 25);
    assert!(log.delete_records_before(1000, 0).is_err());
}

#[test]
fn recovery_checks_batches_larger_than_the_read_window() {
    let d = TempDir::new("bigcrc");
    let cfg = LogConfig {
        max_message_bytes: 4 << 20,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(d.path(), cfg.clone(), 0).unwrap();
    log.append(&mut batch(1, 0, 10), 0, 0).unwrap();
    log.append(&mut batch(3, 0, 1 << 20), 0, 0).unwrap();
    drop(log);
    let log = PartitionLog::open(d.path(), cfg.clone(), 0).unwrap();
    assert_eq!(log.log_end_offset(), 4);
    drop(log);
    // Flip a byte deep inside the big batch.
    let f = active_log_file(d.path());
    let mut bytes = fs::read(&f).unwrap();
    let n = bytes.len();
    bytes[n - 1_500_000] ^= 1;
    fs::write(&f, &bytes).unwrap();
    let log = PartitionLog::open(d.path(), cfg, 0).unwrap();
    assert_eq!(log.log_end_offset(), 1);
}

#[test]
fn leader_epochs_are_learned_checkpointed_and_trimmed() {
    let d = TempDir::new("epochs");
    let cp = d.path().join("leader-epoch-checkpoint");
    let mut log = PartitionLog::open(d.path(), small(), 0).unwrap();
    assert!(!cp.exists(), "nothing written for an empty log");
    for _ in 0..3 {
        log.append(&mut batch(2, 100, 10), 1, 0).unwrap();
    }
    assert_eq!(fs::read_to_string(&cp).unwrap(), "0\n1\n0 0\n");
    log.append(&mut batch(2, 100, 10), 1, 3).unwrap(); // a new leader epoch at offset 6
    assert_eq!(log.epoch_entries(), vec![(0, 0), (3, 6)]);
    assert_eq!(log.end_offset_for_epoch(0), (0, 6));
    assert_eq!(log.end_offset_for_epoch(2), (0, 6));
    assert_eq!(log.end_offset_for_epoch(3), (3, 8));
    assert_eq!(log.end_offset_for_epoch(4), (-1, -1));
    assert_eq!(log.latest_epoch(), Some(3));
    log.close().unwrap();
    drop(log);

    // Reopened from the checkpoint.
    let mut log = PartitionLog::open(d.path(), small(), 0).unwrap();
    assert_eq!(log.epoch_entries(), vec![(0, 0), (3, 6)]);
    // The start moves past epoch 0's first offsets: its entry starts at the new start.
    log.delete_records_before(4, 2).unwrap();
    assert_eq!(log.epoch_entries(), vec![(0, 4), (3, 6)]);
    assert_eq!(fs::read_to_string(&cp).unwrap(), "0\n2\n0 4\n3 6\n");
    log.close().unwrap();
    drop(log);

    // Without the file (a log from before epochs were kept, or a damaged file): rebuilt from
    // the first and last batches. (Opened without the manager's log-start checkpoint, the log
    // starts at its first segment again.)
    fs::write(&cp, "garbage").unwrap();
    let log = PartitionLog::open(d.path(), small(), 0).unwrap();
    assert_eq!(log.log_start_offset(), 0);
    assert_eq!(log.epoch_entries(), vec![(0, 0), (3, 6)]);
    assert_eq!(fs::read_to_string(&cp).unwrap(), "0\n2\n0 0\n3 6\n");
}

#[test]
fn a_torn_tail_takes_its_epochs_with_it() {
    let d = TempDir::new("epochs-torn");
    let mut log = PartitionLog::open(d.path(), LogConfig::default(), 0).unwrap();
    log.append(&mut batch(2, 100, 10), 1, 0).unwrap();
    log.append(&mut batch(2, 100, 10), 1, 5).unwrap(); // epoch 5 from offset 2
    log.flush().unwrap();
    assert_eq!(log.epoch_entries(), vec![(0, 0), (5, 2)]);
    drop(log); // no clean close: recovery at the next open
               // Tear the last batch (epoch 5's only one).
    let seg = d.path().join("00000000000000000000.log");
    let len = fs::metadata(&seg).unwrap().len();
    let f = fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 3).unwrap();
    let state = RecoveryState {
        recovery_point: Some(0),
        log_start_offset: 0,
        rewrite_recovered: false,
    };
    let log = PartitionLog::open_with(d.path(), LogConfig::default(), 0, state).unwrap();
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(log.epoch_entries(), vec![(0, 0)]);
    assert_eq!(log.end_offset_for_epoch(0), (0, 2));
    assert_eq!(
        log.end_offset_for_epoch(5),
        (-1, -1),
        "epoch 5 is unknown again"
    );
}
