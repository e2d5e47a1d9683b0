//! The log under a failing disk, through the fault-injection seam: a failed fsync takes the
//! directory offline for good and keeps the recovery point; a full disk undoes the write and
//! lets appends resume; nothing half-written is ever read back.

use super::faults::{self, Op, Rule};
use super::*;
use crate::records::{batches, BatchBuilder};
use crate::test_util::TempDir;

const EIO: i32 = 5;
const ENOSPC: i32 = 28;

fn batch(n: usize, tag: &str) -> Vec<u8> {
    let mut b = BatchBuilder::new(0, 1_000);
    for i in 0..n {
        let v = format!("{tag}-{i}");
        b.push(None, 1_000, Some(b"k"), Some(v.as_bytes()), &[]);
    }
    b.finish()
}

fn every_append_flushed() -> LogConfig {
    LogConfig {
        flush_messages: 1,
        ..LogConfig::default()
    }
}

fn read_offsets(log: &PartitionLog, from: i64) -> Result<Vec<i64>, LogError> {
    let mut out = Vec::new();
    log.read(from, usize::MAX, true, &mut out)?;
    Ok(batches(&out)
        .map(|b| b.expect("whole batches").0.base_offset)
        .collect())
}

fn file_len(dir: &std::path::Path) -> u64 {
    std::fs::metadata(dir.join("00000000000000000000.log"))
        .unwrap()
        .len()
}

#[test]
fn a_failed_fsync_takes_the_directory_offline_for_good() {
    let d = TempDir::new("fsync-eio");
    let mut log = PartitionLog::open(d.path(), every_append_flushed(), 0).unwrap();
    log.append(&mut batch(2, "a"), 0, 0).unwrap();
    log.flush_at(0).unwrap();
    assert_eq!(log.recovery_point(), 2);

    log.append(&mut batch(3, "b"), 0, 0).unwrap();
    let guard = faults::fail(d.path(), Op::Sync, EIO);
    assert!(log.needs_flush(0));
    let err = log.flush_at(0).unwrap_err();
    assert!(matches!(err, LogError::Io(_)), "{err:?}");
    assert!(log.is_offline());
    assert_eq!(
        log.recovery_point(),
        2,
        "a failed fsync never moves the recovery point"
    );
    drop(guard);

    // Never retried: the disk may have dropped the pages, a second fsync could lie.
    assert!(!log.needs_flush(0));
    assert!(matches!(log.flush_at(0), Err(LogError::Offline)));
    assert_eq!(log.recovery_point(), 2);
    // No more writes.
    assert!(matches!(
        log.append(&mut batch(1, "c"), 0, 0),
        Err(LogError::Offline)
    ));
    assert!(matches!(
        log.delete_records_before(1, 0),
        Err(LogError::Offline)
    ));
    // Reads serve what was fsynced before the failure, and no further.
    assert_eq!(log.safe_end_offset(), 2);
    assert_eq!(read_offsets(&log, 0).unwrap(), vec![0]);
    assert!(matches!(read_offsets(&log, 2), Err(LogError::Offline)));
    let mut out = Vec::new();
    let info = log.read(1, usize::MAX, true, &mut out).unwrap();
    assert_eq!(info.high_watermark, 2);
    assert!(matches!(log.close(), Err(LogError::Offline)));
}

#[test]
fn a_full_disk_undoes_the_write_and_appends_resume_when_space_returns() {
    let d = TempDir::new("enospc");
    let mut log = PartitionLog::open(d.path(), every_append_flushed(), 0).unwrap();
    log.append(&mut batch(2, "a"), 0, 0).unwrap();
    let size = file_len(d.path());
    {
        // A torn write: half of the batch reaches the file before ENOSPC.
        let _full = faults::inject(Rule {
            prefix: d.path().to_path_buf(),
            op: Op::Write,
            errno: ENOSPC,
            skip: 0,
            torn: true,
        });
        let err = log.append(&mut batch(3, "b"), 0, 0).unwrap_err();
        assert!(
            matches!(&err, LogError::Io(e) if health::is_disk_full(e)),
            "{err:?}"
        );
        assert!(!log.is_offline(), "a full disk is not a failed disk");
        assert_eq!(log.log_end_offset(), 2);
        assert_eq!(file_len(d.path()), size, "the torn half was cut off");
        assert_eq!(read_offsets(&log, 0).unwrap(), vec![0]);
        // The earlier append is still flushed fine (nothing to write for it).
        log.flush_at(0).unwrap();
    }
    let info = log.append(&mut batch(1, "c"), 0, 0).unwrap();
    assert_eq!(info.base_offset, 2);
    log.flush_at(0).unwrap();
    assert_eq!(log.recovery_point(), 3);
    drop(log);
    let log = PartitionLog::open(d.path(), every_append_flushed(), 0).unwrap();
    assert_eq!(read_offsets(&log, 0).unwrap(), vec![0, 2]);
}

#[test]
fn a_segment_that_cannot_be_created_leaves_the_active_one_usable() {
    let d = TempDir::new("roll-enospc");
    let cfg = LogConfig {
        segment_bytes: 150,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(d.path(), cfg, 0).unwrap();
    log.append(&mut batch(3, "a"), 0, 0).unwrap();
    {
        let _full = faults::fail(d.path(), Op::Create, ENOSPC);
        assert!(log.append(&mut batch(3, "b"), 0, 0).is_err());
        assert!(!log.is_offline());
    }
    log.append(&mut batch(3, "b"), 0, 0).unwrap();
    assert_eq!(log.segment_count(), 2);
    assert_eq!(read_offsets(&log, 0).unwrap(), vec![0, 3]);
}

#[test]
fn an_io_error_on_a_write_takes_the_directory_offline() {
    let d = TempDir::new("write-eio");
    let mut log = PartitionLog::open(d.path(), LogConfig::default(), 0).unwrap();
    log.append(&mut batch(1, "a"), 0, 0).unwrap();
    let _bad = faults::fail(d.path(), Op::Write, EIO);
    assert!(log.append(&mut batch(1, "b"), 0, 0).is_err());
    assert!(log.is_offline());
    assert_eq!(log.log_end_offset(), 1);
}

#[test]
fn an_io_error_on_a_read_takes_the_directory_offline() {
    let d = TempDir::new("read-eio");
    let mut log = PartitionLog::open(d.path(), LogConfig::default(), 0).unwrap();
    log.append(&mut batch(1, "a"), 0, 0).unwrap();
    let _bad = faults::fail(d.path(), Op::Read, EIO);
    assert!(matches!(read_offsets(&log, 0), Err(LogError::Io(_))));
    assert!(log.is_offline());
}

#[test]
fn an_offline_directory_is_not_marked_cleanly_shut_down() {
    let d = TempDir::new("mgr-offline");
    let cfg = every_append_flushed();
    let mut mgr = LogManager::open(d.path(), cfg.clone(), 0).unwrap();
    mgr.create("t", 0, [1; 16], cfg.clone(), 0)
        .unwrap()
        .append(&mut batch(2, "a"), 0, 0)
        .unwrap();
    mgr.create("u", 0, [2; 16], cfg.clone(), 0)
        .unwrap()
        .append(&mut batch(2, "a"), 0, 0)
        .unwrap();
    assert!(mgr.flush_due(0).is_empty());
    for t in ["t", "u"] {
        mgr.get_mut(t, 0)
            .unwrap()
            .append(&mut batch(1, "b"), 0, 0)
            .unwrap();
    }
    let fail_t = faults::fail(&d.path().join("t-0"), Op::Sync, EIO);
    let mut failed = mgr.flush_due(0);
    failed.sort();
    assert_eq!(failed, vec![("t".to_string(), 0)]);
    drop(fail_t);
    // One partition's failed fsync takes the whole directory offline; the other partition is
    // fsynced only if its turn came first (a produce waiting for it is answered by its
    // recovery point either way).
    assert!(mgr.is_offline());
    assert!([2, 3].contains(&mgr.get("u", 0).unwrap().recovery_point()));
    assert_eq!(mgr.get("t", 0).unwrap().recovery_point(), 2);
    assert!(matches!(mgr.checkpoint(), Err(LogError::Offline)));
    assert!(mgr.shutdown().is_err());
    assert!(!d.path().join(CLEAN_SHUTDOWN_FILE).exists());
    assert!(d.path().join(health::FAILED_MARKER).exists());
    drop(mgr);
    // The next start recovers from what is on disk, writing the recovered tail again (the
    // kernel may hold pages that never reached the disk as clean) before trusting it.
    let mgr = LogManager::open(d.path(), cfg.clone(), 0).unwrap();
    assert!(!mgr.had_clean_shutdown());
    assert!(!mgr.is_offline());
    assert_eq!(mgr.get("t", 0).unwrap().log_end_offset(), 3);
    assert!(mgr.get("t", 0).unwrap().open_stats().segments_recovered > 0);
    assert!(!d.path().join(health::FAILED_MARKER).exists());
    drop(mgr);
    // A disk that still fails the rewrite keeps the broker from starting on it.
    health::DirHealth::new(d.path()).fail("test", &"simulated");
    let _bad = faults::fail(&d.path().join("t-0"), Op::Write, EIO);
    assert!(LogManager::open(d.path(), cfg, 0).is_err());
}

#[test]
fn a_checkpoint_that_cannot_be_written_on_a_full_disk_is_retried_later() {
    let d = TempDir::new("ckpt-enospc");
    let mut mgr = LogManager::open(d.path(), LogConfig::default(), 0).unwrap();
    mgr.create("t", 0, [1; 16], LogConfig::default(), 0)
        .unwrap();
    {
        let _full = faults::fail(d.path(), Op::Write, ENOSPC);
        assert!(mgr.checkpoint().is_err());
        assert!(!mgr.is_offline());
    }
    mgr.checkpoint().unwrap();
    let _bad = faults::fail(d.path(), Op::Sync, EIO);
    assert!(mgr.checkpoint().is_err());
    assert!(mgr.is_offline());
}

#[test]
fn a_panicking_flush_takes_only_its_partition_offline() {
    let d = TempDir::new("panic-flush");
    let cfg = every_append_flushed();
    let mut mgr = LogManager::open(d.path(), cfg.clone(), 0).unwrap();
    for t in ["t", "u"] {
        mgr.create(t, 0, [1; 16], cfg.clone(), 0)
            .unwrap()
            .append(&mut batch(1, "a"), 0, 0)
            .unwrap();
    }
    let bug = faults::fail(&d.path().join("t-0"), Op::Sync, faults::PANIC);
    let failed = mgr.flush_due(0);
    drop(bug);
    assert_eq!(failed, vec![("t".to_string(), 0)]);
    assert!(!mgr.is_offline(), "the directory stays online");
    assert!(
        mgr.flush_due(0).is_empty(),
        "a failed partition is not flushed again"
    );
    assert!(mgr.get("t", 0).unwrap().is_offline());
    assert_eq!(mgr.get("u", 0).unwrap().recovery_point(), 1);
    assert!(matches!(
        mgr.get_mut("t", 0)
            .unwrap()
            .append(&mut batch(1, "b"), 0, 0),
        Err(LogError::Offline)
    ));
    mgr.get_mut("u", 0)
        .unwrap()
        .append(&mut batch(1, "b"), 0, 0)
        .unwrap();
}
