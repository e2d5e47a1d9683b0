//! Time and size retention through the broker's timer: old segments disappear within a few
//! ticks, the log start offset moves (and survives a restart), and a fetch below it is
//! OFFSET_OUT_OF_RANGE while the remaining data is intact.

#[macro_use]
mod support;

use minikafka::records::BatchBuilder;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::*;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A batch of `n` records of 1 KiB stamped `ts`.
fn kib_batch(n: usize, ts: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new(0, ts);
    for _ in 0..n {
        b.push(None, ts, None, Some(&[b'r'; 1024][..]), &[]);
    }
    b.finish()
}

fn wait_for(what: &str, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn time_retention_deletes_old_segments_and_moves_the_log_start() {
    let mut b = TestBroker::start_with("retention-time", |c| {
        c.log_segment_bytes = 16 * 1024;
        c.log_retention_ms = 60_000;
        c.log_retention_check_interval_ms = 100;
    });
    let mut c = b.client();
    c.create_topic("old-and-new", 1);
    // Ten minutes old: past retention. Then fresh data, which stays.
    let old = now_ms() - 600_000;
    for _ in 0..8 {
        assert_eq!(c.produce("old-and-new", 0, &kib_batch(8, old)).0, 0);
    }
    for _ in 0..4 {
        assert_eq!(c.produce("old-and-new", 0, &kib_batch(8, now_ms())).0, 0);
    }
    let end = c.list_offset(7, "old-and-new", 0, -1).2;
    assert_eq!(end, 96);
    wait_for("the log start offset to move", || {
        c.list_offset(7, "old-and-new", 0, -2).2 > 0
    });
    let start = c.list_offset(7, "old-and-new", 0, -2).2;
    assert!(start <= 64, "fresh data deleted: log start {start}");
    let below = c.fetch(&FetchArgs::new("old-and-new", 0));
    assert_eq!(below.error, 1, "OFFSET_OUT_OF_RANGE below the log start");
    assert_eq!(below.log_start_offset, start);
    let from_start = c.fetch(&FetchArgs::new("old-and-new", start));
    assert_eq!(from_start.error, 0);
    assert!(from_start.records.is_some_and(|r| !r.is_empty()));
    drop(c);
    b.restart();
    let mut c = b.client();
    assert!(
        c.list_offset(7, "old-and-new", 0, -2).2 >= start,
        "log start checkpointed"
    );
    assert_eq!(c.list_offset(7, "old-and-new", 0, -1).2, end);
}

#[test]
fn size_retention_keeps_the_log_under_its_bound() {
    let b = TestBroker::start_with("retention-size", |c| {
        c.log_segment_bytes = 16 * 1024;
        c.log_retention_bytes = 48 * 1024;
        c.log_retention_check_interval_ms = 100;
    });
    let mut c = b.client();
    c.create_topic("bounded", 1);
    for _ in 0..20 {
        assert_eq!(c.produce("bounded", 0, &kib_batch(8, now_ms())).0, 0);
    }
    wait_for("size retention", || {
        c.list_offset(7, "bounded", 0, -2).2 > 0
    });
    let dir = b.dir.path().join("bounded-0");
    let total: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    // Whole segments go: what stays is at most the bound plus the active segment.
    assert!(
        total <= 48 * 1024 + 16 * 1024 + 9 * 1024,
        "{total} bytes kept"
    );
    assert_eq!(c.list_offset(7, "bounded", 0, -1).2, 160);
}
