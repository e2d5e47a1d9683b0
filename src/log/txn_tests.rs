//! A partition log with transactions: the last stable offset, aborted transactions, markers,
//! and producer state that survives a clean restart and a crash.

use super::*;
use crate::records::{batches, BatchBuilder};
use crate::test_util::TempDir;

fn txn_batch(pid: i64, epoch: i16, seq: i32, n: usize, transactional: bool) -> Vec<u8> {
    let mut b = BatchBuilder::new(0, 1_000)
        .producer(pid, epoch, seq)
        .transactional(transactional);
    for i in 0..n {
        let v = format!("p{pid}-{}", seq as usize + i);
        b.push(None, 1_000, Some(b"k"), Some(v.as_bytes()), &[]);
    }
    b.finish()
}

fn bases(log: &PartitionLog, from: i64, upto_lso: bool) -> Vec<(i64, bool)> {
    let mut out = Vec::new();
    let end = if upto_lso {
        log.last_stable_offset()
    } else {
        log.log_end_offset()
    };
    let mut at = from;
    while at < end {
        let mut buf = Vec::new();
        log.read(at, usize::MAX, true, &mut buf).unwrap();
        let mut any = false;
        for b in batches(&buf) {
            let (h, _) = b.unwrap();
            if h.base_offset >= end {
                break;
            }
            out.push((h.base_offset, h.is_control()));
            at = h.next_offset();
            any = true;
        }
        if !any {
            break;
        }
    }
    out
}

#[test]
fn open_transactions_hold_the_last_stable_offset_and_markers_release_it() {
    let d = TempDir::new("txn-lso");
    let mut log = PartitionLog::open(d.path(), LogConfig::default(), 0).unwrap();
    log.append(&mut txn_batch(1, 0, 0, 3, false), 0, 0).unwrap(); // 0..2, idempotent
    assert_eq!(log.last_stable_offset(), 3);
    log.append(&mut txn_batch(2, 0, 0, 2, true), 0, 0).unwrap(); // 3..4
    log.append(&mut txn_batch(3, 0, 0, 2, true), 0, 0).unwrap(); // 5..6
    log.append(&mut txn_batch(2, 0, 2, 2, true), 0, 0).unwrap(); // 7..8
    assert_eq!(log.log_end_offset(), 9);
    assert_eq!(log.last_stable_offset(), 3);
    // Producer 2 aborts: its data (3..8 range) is reported, the LSO moves to producer 3's.
    let marker = log.append_marker(2, 0, false, 0, 0).unwrap();
    assert_eq!(marker, 9);
    assert_eq!(log.last_stable_offset(), 5);
    assert_eq!(log.aborted_between(0, 10), vec![(2, 3)]);
    assert_eq!(log.aborted_between(10, 20), vec![]);
    assert_eq!(
        log.aborted_between(0, 3),
        vec![],
        "ends before the transaction"
    );
    // Producer 3 commits: everything is stable.
    assert_eq!(log.append_marker(3, 0, true, 0, 0).unwrap(), 10);
    assert_eq!(log.last_stable_offset(), 11);
    assert_eq!(log.aborted_between(0, 11), vec![(2, 3)]);
    assert_eq!(
        bases(&log, 0, true),
        vec![
            (0, false),
            (3, false),
            (5, false),
            (7, false),
            (9, true),
            (10, true)
        ]
    );
    // The .txnindex file holds the abort in Kafka's layout.
    let idx = std::fs::read(d.path().join("00000000000000000000.txnindex")).unwrap();
    assert_eq!(idx.len(), 34);
}

#[test]
fn writes_that_break_the_transaction_rules_are_refused() {
    let d = TempDir::new("txn-rules");
    let mut log = PartitionLog::open(d.path(), LogConfig::default(), 0).unwrap();
    // Clients may not write markers.
    let mut c = BatchBuilder::new(0, 0).control(true).transactional(true);
    c.push(None, 0, Some(&[0, 0, 0, 1]), Some(&[0, 0, 0, 0, 0, 0]), &[]);
    let err = log.append(&mut c.finish(), 0, 0).unwrap_err();
    assert!(
        matches!(&err, LogError::InvalidBatch(m) if m.contains("control records")),
        "{err:?}"
    );
    // A producer with an open transaction may not write outside it.
    log.append(&mut txn_batch(5, 0, 0, 1, true), 0, 0).unwrap();
    let err = log
        .append(&mut txn_batch(5, 0, 1, 1, false), 0, 0)
        .unwrap_err();
    assert!(matches!(err, LogError::InvalidTxnState(_)), "{err:?}");
    // A marker older than the producer's epoch is refused.
    log.append(&mut txn_batch(5, 3, 0, 1, true), 0, 0).unwrap();
    assert!(matches!(
        log.append_marker(5, 2, true, 0, 0),
        Err(LogError::InvalidProducerEpoch(5))
    ));
    assert_eq!(log.log_end_offset(), 2);
}

#[test]
fn producer_state_survives_a_clean_restart() {
    let d = TempDir::new("txn-clean");
    let cfg = LogConfig::default();
    let mut log = PartitionLog::open(d.path(), cfg.clone(), 0).unwrap();
    for i in 0..7 {
        log.append(&mut txn_batch(1, 0, i * 2, 2, false), 0, 0)
            .unwrap();
    }
    log.append(&mut txn_batch(2, 0, 0, 1, true), 0, 0).unwrap(); // 14
    log.append(&mut txn_batch(3, 0, 0, 1, true), 0, 0).unwrap(); // 15
    log.append_marker(3, 0, false, 0, 0).unwrap(); // 16
    log.close().unwrap();
    drop(log);
    let state = RecoveryState {
        recovery_point: None,
        log_start_offset: 0,
        rewrite_recovered: false,
    };
    let mut log = PartitionLog::open_with(d.path(), cfg, 0, state).unwrap();
    assert_eq!(
        log.last_stable_offset(),
        14,
        "producer 2's transaction is still open"
    );
    assert_eq!(log.aborted_between(0, 20), vec![(3, 15)]);
    // Each of producer 1's last five batches is still recognised as a retry.
    for i in 2..7 {
        let info = log
            .append(&mut txn_batch(1, 0, i * 2, 2, false), 0, 0)
            .unwrap();
        assert_eq!(
            (info.base_offset, info.record_count),
            (i as i64 * 2, 0),
            "batch {i}"
        );
    }
    assert_eq!(log.log_end_offset(), 17);
    // And its next batch follows on.
    log.append(&mut txn_batch(1, 0, 14, 1, false), 0, 0)
        .unwrap();
    assert!(matches!(
        log.append(&mut txn_batch(1, 0, 20, 1, false), 0, 0),
        Err(LogError::OutOfOrderSequence { .. })
    ));
}

#[test]
fn a_crash_rebuilds_producer_state_and_lost_index_entries_from_the_log() {
    let d = TempDir::new("txn-crash");
    let cfg = LogConfig {
        segment_bytes: 400,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(d.path(), cfg.clone(), 0).unwrap();
    let mut seq = 0;
    for round in 0..6 {
        log.append(&mut txn_batch(9, 0, seq, 2, true), 0, 0)
            .unwrap();
        seq += 2;
        log.append_marker(9, 0, round % 2 == 1, 0, 0).unwrap();
    }
    // An open transaction of another producer, then an abort as the last write.
    log.append(&mut txn_batch(8, 0, 0, 1, true), 0, 0).unwrap();
    log.append(&mut txn_batch(9, 0, seq, 1, true), 0, 0)
        .unwrap();
    log.append_marker(9, 0, false, 0, 0).unwrap();
    assert!(
        log.segment_count() > 2,
        "rolled (and snapshotted) along the way"
    );
    let lso = log.last_stable_offset();
    assert!(lso < log.log_end_offset());
    let aborted = log.aborted_between(0, i64::MAX);
    assert_eq!(aborted.len(), 4);
    log.flush().unwrap();
    let active = *log.segment_bases().last().unwrap();
    drop(log); // no close: a crash
               // The active segment's index entries are lost too (written after the last snapshot).
    let active_index = d.path().join(format!("{active:020}.txnindex"));
    std::fs::remove_file(&active_index).expect("an abort in the active segment");
    let log = PartitionLog::open(d.path(), cfg, 0).unwrap();
    assert_eq!(log.last_stable_offset(), lso);
    assert_eq!(log.aborted_between(0, i64::MAX), aborted);
}

#[test]
fn retention_forgets_aborted_transactions_with_their_segments() {
    let d = TempDir::new("txn-retention");
    let cfg = LogConfig {
        segment_bytes: 300,
        retention_bytes: 0,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(d.path(), cfg, 0).unwrap();
    let mut seq = 0;
    for _ in 0..4 {
        log.append(&mut txn_batch(4, 0, seq, 2, true), 0, 0)
            .unwrap();
        seq += 2;
        log.append_marker(4, 0, false, 0, 0).unwrap();
    }
    assert_eq!(log.aborted_between(0, i64::MAX).len(), 4);
    log.enforce_retention(0).unwrap();
    let start = log.log_start_offset();
    assert!(start > 0);
    assert!(log
        .aborted_between(0, i64::MAX)
        .iter()
        .all(|&(_, first)| first >= start - 3));
    assert!(log.aborted_between(0, i64::MAX).len() < 4);
}

#[test]
fn truncation_rebuilds_producers_transactions_and_epochs() {
    let d = TempDir::new("truncate");
    let cfg = LogConfig {
        segment_bytes: 200,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(d.path(), cfg.clone(), 0).unwrap();
    // Idempotent producer 1: offsets 0..10 in five batches of two (several segments).
    for i in 0..5 {
        log.append(&mut txn_batch(1, 0, i * 2, 2, false), 1, 0)
            .unwrap();
    }
    // Producer 2 opens a transaction at 10 (epoch 1 from here), aborts it at 12.
    log.append(&mut txn_batch(2, 0, 0, 2, true), 1, 1).unwrap();
    log.append_marker(2, 0, false, 0, 1).unwrap();
    // More of producer 1 after it: 13..15.
    log.append(&mut txn_batch(1, 0, 10, 2, false), 1, 1)
        .unwrap();
    assert_eq!(log.log_end_offset(), 15);
    assert!(log.segment_count() > 2);
    assert_eq!(log.aborted_between(0, 15), vec![(2, 10)]);
    assert_eq!(log.epoch_entries(), vec![(0, 0), (1, 10)]);

    // A diverging tail from offset 11 (inside producer 2's batch 10..12): cut at the batch.
    assert_eq!(log.truncate_to(11, 2).unwrap(), 10);
    assert_eq!(log.log_end_offset(), 10);
    assert_eq!(bases(&log, 0, false).last(), Some(&(8, false)));
    assert_eq!(log.epoch_entries(), vec![(0, 0)]);
    assert!(
        log.aborted_between(0, 20).is_empty(),
        "the abort went with its marker"
    );
    assert_eq!(log.last_stable_offset(), 10, "no open transaction is left");
    // Producer 1's sequence 10 is new again (its earlier copy was cut), not a duplicate.
    let again = log
        .append(&mut txn_batch(1, 0, 10, 2, false), 3, 2)
        .unwrap();
    assert_eq!((again.base_offset, again.record_count), (10, 2));
    // A gap in producer 1's sequence is still refused.
    assert!(log
        .append(&mut txn_batch(1, 0, 20, 1, false), 3, 2)
        .is_err());
    assert_eq!(log.epoch_entries(), vec![(0, 0), (2, 10)]);
    drop(log);

    // Reopened after a crash: the same state.
    let log = PartitionLog::open(d.path(), cfg.clone(), 0).unwrap();
    assert_eq!(log.log_end_offset(), 12);
    assert_eq!(log.epoch_entries(), vec![(0, 0), (2, 10)]);

    // Below the log start: emptied, starting at the target.
    let mut log = log;
    log.delete_records_before(4, 4).unwrap();
    assert_eq!(log.truncate_to(2, 5).unwrap(), 2);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (2, 2));
    assert_eq!(log.segment_count(), 1);
    assert!(log.epoch_entries().is_empty());
}

#[test]
fn a_follower_appends_a_leaders_batches_as_they_are() {
    let leader_dir = TempDir::new("leader");
    let follower_dir = TempDir::new("follower");
    let mut leader = PartitionLog::open(leader_dir.path(), LogConfig::default(), 0).unwrap();
    leader
        .append(&mut txn_batch(1, 0, 0, 3, false), 1, 4)
        .unwrap();
    leader
        .append(&mut txn_batch(2, 0, 0, 2, true), 1, 4)
        .unwrap();
    leader.append_marker(2, 0, false, 0, 1).unwrap();
    leader
        .append(&mut txn_batch(1, 0, 3, 1, false), 1, 5)
        .unwrap();
    let mut bytes = Vec::new();
    leader.read(0, usize::MAX, true, &mut bytes).unwrap();

    let mut follower = PartitionLog::open(follower_dir.path(), LogConfig::default(), 0).unwrap();
    // Out of place (not at its log end): refused, nothing written.
    let second = batches(&bytes).nth(1).unwrap().unwrap().1.to_vec();
    assert!(follower.append_as_follower(&second, 2).is_err());
    assert_eq!(follower.log_end_offset(), 0);
    assert_eq!(follower.append_as_follower(&bytes, 2).unwrap(), 7);
    let mut copy = Vec::new();
    follower.read(0, usize::MAX, true, &mut copy).unwrap();
    assert_eq!(copy, bytes, "byte-identical batches");
    assert_eq!(follower.epoch_entries(), vec![(4, 0), (5, 6)]);
    assert_eq!(follower.aborted_between(0, 7), vec![(2, 3)]);
    // The follower knows producer 1's sequence: a retry is a duplicate, a gap an error.
    let dup = follower
        .append(&mut txn_batch(1, 0, 3, 1, false), 3, 5)
        .unwrap();
    assert_eq!((dup.base_offset, dup.record_count), (6, 0));
    // A corrupt batch is refused.
    let mut bad = txn_batch(1, 0, 4, 1, false);
    crate::records::set_base_offset(&mut bad, 7);
    let n = bad.len();
    bad[n - 1] ^= 1;
    assert!(follower.append_as_follower(&bad, 3).is_err());
}
