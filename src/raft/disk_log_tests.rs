//! The disk log against the in-memory one: the same operations, the same answers, also after
//! every reopen (a crash keeps what was written; here every write is flushed first).

use super::*;
use crate::raft::storage::MemLog;
use crate::test_util::TempDir;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 600,
        ..LogConfig::default()
    }
}

/// xorshift, seeded: the operation sequences are reproducible.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn same(mem: &MemLog, disk: &DiskLog, what: &str) {
    assert_eq!(mem.last_index(), disk.last_index(), "{what}: last index");
    assert_eq!(mem.snapshot_id(), disk.snapshot_id(), "{what}: snapshot");
    assert_eq!(mem.hard_state(), disk.hard_state(), "{what}: hard state");
    let (first, last) = (mem.first_index(), mem.last_index());
    for i in first.saturating_sub(1)..=last + 1 {
        assert_eq!(mem.term(i), disk.term(i), "{what}: term of {i}");
    }
    if first <= last {
        let m = mem.entries(first, last + 1, u64::MAX).unwrap();
        let d = disk.entries(first, last + 1, u64::MAX).unwrap();
        assert_eq!(m, d, "{what}: entries");
        // A byte limit stops at the same entry (at least one is returned).
        let m = mem.entries(first, last + 1, 10).unwrap();
        let d = disk.entries(first, last + 1, 10).unwrap();
        assert_eq!(m, d, "{what}: limited entries");
    }
    assert_eq!(
        mem.snapshot().unwrap(),
        disk.snapshot().unwrap(),
        "{what}: snapshot data"
    );
}

#[test]
fn behaves_as_the_memory_log_and_survives_reopening() {
    for seed in 1..=12u64 {
        let d = TempDir::new("disk-raft");
        let mut rng = Rng(seed * 0x9E37_79B9);
        let mut mem = MemLog::new();
        let mut disk = DiskLog::open(d.path(), config(), 0).unwrap();
        let mut term = 1u64;
        for step in 0..60 {
            let what = format!("seed {seed} step {step}");
            match rng.below(10) {
                // Appends, sometimes overwriting a suffix (a new leader's entries).
                0..=5 => {
                    let last = mem.last_index();
                    let first = mem.first_index();
                    let from = if last >= first && rng.below(3) == 0 {
                        first + rng.below(last - first + 1)
                    } else {
                        last + 1
                    };
                    if rng.below(4) == 0 {
                        term += 1;
                    }
                    let n = 1 + rng.below(4);
                    let entries: Vec<LogEntry> = (0..n)
                        .map(|k| LogEntry {
                            index: from + k,
                            term,
                            data: if rng.below(5) == 0 {
                                Vec::new()
                            } else {
                                format!("{seed}-{step}-{k}").into_bytes()
                            },
                        })
                        .collect();
                    mem.append(&entries).unwrap();
                    disk.append(&entries).unwrap();
                }
                6 => {
                    let hs = HardState {
                        term,
                        vote: rng.below(3),
                        commit: mem
                            .first_index()
                            .saturating_sub(1)
                            .max(mem.last_index() / 2),
                    };
                    mem.set_hard_state(hs).unwrap();
                    disk.set_hard_state(hs).unwrap();
                }
                7 => {
                    let (first, last) = (mem.first_index(), mem.last_index());
                    if last >= first {
                        let index = first + rng.below(last - first + 1);
                        let snap = StoredSnapshot {
                            index,
                            term: mem.term(index).unwrap(),
                            data: format!("state at {index}").into_bytes(),
                        };
                        mem.compact(snap.clone()).unwrap();
                        disk.compact(snap).unwrap();
                    }
                }
                8 => {
                    let index = mem.last_index() + rng.below(5);
                    let snap = StoredSnapshot {
                        index: index.max(mem.snapshot_id().0 + 1),
                        term,
                        data: b"from the leader".to_vec(),
                    };
                    mem.install_snapshot(snap.clone()).unwrap();
                    disk.install_snapshot(snap).unwrap();
                }
                _ => {
                    // A restart from what is on disk.
                    disk.sync().unwrap();
                    drop(disk);
                    disk = DiskLog::open(d.path(), config(), 0).unwrap();
                }
            }
            same(&mem, &disk, &what);
        }
        disk.sync().unwrap();
        drop(disk);
        let disk = DiskLog::open(d.path(), config(), 0).unwrap();
        same(&mem, &disk, &format!("seed {seed}, reopened at the end"));
    }
}

#[test]
fn entries_are_kafka_batches_with_leader_epochs() {
    let d = TempDir::new("disk-raft-format");
    let mut disk = DiskLog::open(d.path(), config(), 0).unwrap();
    disk.append(&[
        LogEntry {
            index: 1,
            term: 3,
            data: Vec::new(),
        },
        LogEntry {
            index: 2,
            term: 3,
            data: b"record".to_vec(),
        },
    ])
    .unwrap();
    let mut buf = Vec::new();
    disk.partition()
        .read(0, usize::MAX, true, &mut buf)
        .unwrap();
    let got: Vec<(i64, i32, bool)> = batches(&buf)
        .map(|b| {
            let (h, bytes) = b.unwrap();
            crate::records::validate_batch(bytes).unwrap();
            (h.base_offset, h.partition_leader_epoch, h.is_control())
        })
        .collect();
    assert_eq!(got, vec![(0, 3, true), (1, 3, false)]);
    assert_eq!(disk.partition().epoch_entries(), vec![(3, 0)]);
    // The hard state file has Kafka's field names.
    disk.set_hard_state(HardState {
        term: 3,
        vote: 2,
        commit: 2,
    })
    .unwrap();
    let text = fs::read_to_string(d.path().join("quorum-state")).unwrap();
    assert!(
        text.contains("\"leaderEpoch\":3") && text.contains("\"votedId\":2"),
        "{text}"
    );
    fs::write(d.path().join("quorum-state"), "{not json").unwrap();
    assert!(
        DiskLog::open(d.path(), config(), 0).is_err(),
        "a damaged quorum-state is an error"
    );
}

#[test]
fn a_single_voter_commits_on_disk_and_keeps_it_across_restarts() {
    use crate::raft::{Quorum, QuorumConfig};
    use std::time::{Duration, Instant};
    let d = TempDir::new("disk-raft-quorum");
    let t0 = Instant::now();
    let mut want = Vec::new();
    for round in 0..3 {
        let log = DiskLog::open(d.path(), config(), 0).unwrap();
        let mut q = Quorum::new(QuorumConfig::new(1, vec![1]), log, t0).unwrap();
        let mut now = t0;
        // A restarted node applies its whole committed log again (the state machine starts
        // empty: nothing here keeps an applied index), then the new proposals.
        let mut applied = Vec::new();
        for k in 0..5 {
            let data = format!("r{round}-{k}");
            q.propose(data.clone().into_bytes()).unwrap();
            want.push(data);
            now += Duration::from_millis(10);
            q.tick(now);
            let out = q.poll().unwrap();
            applied.extend(
                out.committed
                    .iter()
                    .filter(|e| !e.data.is_empty())
                    .map(|e| String::from_utf8(e.data.clone()).unwrap()),
            );
        }
        assert_eq!(applied, want, "round {round}");
        q.log_mut().sync().unwrap();
    }
    let log = DiskLog::open(d.path(), config(), 0).unwrap();
    assert!(log.hard_state().term >= 3, "a new term at each restart");
    assert_eq!(log.hard_state().commit, log.last_index());
}
