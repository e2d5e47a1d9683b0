//! The Raft log on disk, as Kafka lays out `__cluster_metadata-0`: a partition log whose record
//! at offset `i - 1` is the entry at Raft index `i`, with the entry's term as the batch's partition
//! leader epoch (see `storage.rs` for the mapping).
//!
//! - An entry with data is a batch of one record whose value is the data (a metadata record, or
//!   a group of them bracketed by BeginTransaction/EndTransaction records, KIP-868).
//! - A leader's empty entry at the start of its term is a control batch holding Kafka's
//!   `LeaderChangeMessage` control record.
//! - The hard state (term, vote, commit) is in `quorum-state` (JSON, Kafka's field names where
//!   Kafka has them), replaced atomically; a change of term or vote is fsynced before the
//!   messages that depend on it go out, a change of commit only is not (a lower commit after a
//!   crash is learned again from the leader).
//! - The latest snapshot is `<end offset>-<epoch>.checkpoint` (named as Kafka names them; the
//!   content is the state machine's bytes), and the log starts at its end offset.
//!
//! Entries are fsynced with the partition log at the loop's flush point ([`DiskLog::sync`]).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::storage::{
    check_append, check_range, HardState, LogEntry, RaftLog, StoreError, StoredSnapshot,
};
use crate::log::{LogConfig, LogError, PartitionLog};
use crate::records::{batches, parse_records, records_payload, BatchBuilder};

const QUORUM_STATE: &str = "quorum-state";
const CHECKPOINT: &str = ".checkpoint";
/// Control record type of a `LeaderChangeMessage` (Kafka's `ControlRecordType.LEADER_CHANGE`).
const LEADER_CHANGE: i16 = 2;

pub struct DiskLog {
    dir: PathBuf,
    log: PartitionLog,
    hard: HardState,
    snap: StoredSnapshot,
    now_ms: i64,
}

fn io(e: LogError) -> StoreError {
    StoreError::Io(std::io::Error::other(e.to_string()))
}

fn checkpoint_name(index: u64, term: u64) -> String {
    format!("{index:020}-{term:010}{CHECKPOINT}")
}

fn parse_checkpoint_name(name: &str) -> Option<(u64, u64)> {
    let (offset, epoch) = name.strip_suffix(CHECKPOINT)?.split_once('-')?;
    Some((offset.parse().ok()?, epoch.parse().ok()?))
}

/// Writes `bytes` to `dir/name` through a temporary file, fsynced and renamed over it.
fn replace_file(dir: &Path, name: &str, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    if sync {
        f.sync_all()?;
    }
    fs::rename(&tmp, dir.join(name))?;
    if sync {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl DiskLog {
    /// Opens (or creates) the Raft log in `dir` (the `__cluster_metadata-0` directory).
    pub fn open(dir: &Path, config: LogConfig, now_ms: i64) -> Result<DiskLog, StoreError> {
        fs::create_dir_all(dir)?;
        let mut log = PartitionLog::open(dir, config, now_ms).map_err(io)?;
        let hard = read_hard_state(dir)?;
        // The newest readable snapshot; older ones are left for `compact` to remove.
        let mut snap = StoredSnapshot::default();
        let mut ids: Vec<(u64, u64)> = fs::read_dir(dir)?
            .filter_map(|e| parse_checkpoint_name(e.ok()?.file_name().to_str()?))
            .collect();
        ids.sort_unstable();
        if let Some(&(index, term)) = ids.last() {
            let data = fs::read(dir.join(checkpoint_name(index, term)))?;
            snap = StoredSnapshot { index, term, data };
        }
        // The log starts where the snapshot ends (a crash may have come between the two).
        let start = snap.index as i64;
        if log.log_end_offset() < start {
            log.truncate_fully_and_start_at(start, now_ms).map_err(io)?;
        } else if log.log_start_offset() < start {
            log.delete_records_before(start, now_ms).map_err(io)?;
        }
        Ok(DiskLog {
            dir: dir.to_path_buf(),
            log,
            hard,
            snap,
            now_ms,
        })
    }

    /// fsyncs appended entries (the flush point, before `send_after_sync` messages go out).
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.log.flush().map_err(io)
    }

    /// The latest snapshot: its bytes and the index it covers (0: none).
    pub fn latest_snapshot(&self) -> (&[u8], u64) {
        (&self.snap.data, self.snap.index)
    }

    /// The partition log under the Raft log (for DescribeQuorum, dump tools, fetch).
    pub fn partition(&self) -> &PartitionLog {
        &self.log
    }

    fn write_snapshot(&mut self, snapshot: &StoredSnapshot) -> Result<(), StoreError> {
        let name = checkpoint_name(snapshot.index, snapshot.term);
        replace_file(&self.dir, &name, &snapshot.data, true)?;
        // Older snapshots are of no use once a newer one is durable.
        for e in fs::read_dir(&self.dir)? {
            let e = e?;
            let Some(n) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if n != name && parse_checkpoint_name(&n).is_some() {
                fs::remove_file(e.path())?;
            }
        }
        Ok(())
    }

    /// One entry as the batch that holds it on disk.
    fn batch(e: &LogEntry) -> Vec<u8> {
        let offset = e.index as i64 - 1;
        let b = BatchBuilder::new(offset, 0).partition_leader_epoch(e.term as i32);
        let mut b = if e.data.is_empty() {
            b.control(true)
        } else {
            b
        };
        if e.data.is_empty() {
            let key = [0u8, 0, (LEADER_CHANGE >> 8) as u8, LEADER_CHANGE as u8];
            // LeaderChangeMessage v0: version, leader id (unknown here), no voters, no tags.
            let value = [0u8, 0, 0xff, 0xff, 0xff, 0xff, 1, 1, 0];
            b.push(None, 0, Some(&key), Some(&value), &[]);
        } else {
            b.push(None, 0, None, Some(&e.data), &[]);
        }
        b.finish()
    }
}

fn read_hard_state(dir: &Path) -> Result<HardState, StoreError> {
    let text = match fs::read_to_string(dir.join(QUORUM_STATE)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HardState::default()),
        Err(e) => return Err(e.into()),
    };
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        StoreError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{QUORUM_STATE}: {e}"),
        ))
    })?;
    let field = |k: &str| v.get(k).and_then(serde_json::Value::as_i64).unwrap_or(0);
    Ok(HardState {
        term: field("leaderEpoch").max(0) as u64,
        vote: field("votedId").max(0) as u64,
        commit: field("committedIndex").max(0) as u64,
    })
}

impl RaftLog for DiskLog {
    fn hard_state(&self) -> HardState {
        self.hard
    }

    fn set_hard_state(&mut self, hs: HardState) -> Result<(), StoreError> {
        if hs == self.hard {
            return Ok(());
        }
        let durable = hs.term != self.hard.term || hs.vote != self.hard.vote;
        let text = format!(
            "{{\"leaderEpoch\":{},\"votedId\":{},\"committedIndex\":{},\"data_version\":0}}",
            hs.term,
            if hs.vote == 0 { -1 } else { hs.vote as i64 },
            hs.commit
        );
        replace_file(&self.dir, QUORUM_STATE, text.as_bytes(), durable)?;
        self.hard = hs;
        Ok(())
    }

    fn snapshot_id(&self) -> (u64, u64) {
        (self.snap.index, self.snap.term)
    }

    fn snapshot(&self) -> Result<Option<StoredSnapshot>, StoreError> {
        Ok((self.snap.index > 0).then(|| self.snap.clone()))
    }

    fn last_index(&self) -> u64 {
        (self.log.log_end_offset() as u64).max(self.snap.index)
    }

    fn term(&self, index: u64) -> Option<u64> {
        if index <= self.snap.index || index > self.last_index() {
            return None;
        }
        self.log
            .epoch_for_offset(index as i64 - 1)
            .map(|e| e.max(0) as u64)
    }

    fn entries(&self, low: u64, high: u64, max_bytes: u64) -> Result<Vec<LogEntry>, StoreError> {
        let (first, last) = (self.first_index(), self.last_index());
        check_range(low, high, first, last)?;
        let mut out = Vec::new();
        let mut size = 0u64;
        let mut at = low;
        while at < high {
            let mut buf = Vec::new();
            self.log
                .read(at as i64 - 1, 1 << 20, true, &mut buf)
                .map_err(io)?;
            let before = out.len();
            for item in batches(&buf) {
                let (h, bytes) = item.map_err(|e| io(LogError::Records(e)))?;
                let index = h.base_offset as u64 + 1;
                if index < at {
                    continue;
                }
                if index >= high {
                    break;
                }
                let data = if h.is_control() {
                    Vec::new()
                } else {
                    let payload = records_payload(bytes, 1 << 30).map_err(|e| io(e.into()))?;
                    let recs = parse_records(&payload, h.record_count).map_err(|e| io(e.into()))?;
                    recs.first()
                        .and_then(|r| r.value)
                        .map(<[u8]>::to_vec)
                        .unwrap_or_default()
                };
                size += data.len() as u64;
                if !out.is_empty() && size > max_bytes {
                    return Ok(out);
                }
                out.push(LogEntry {
                    index,
                    term: h.partition_leader_epoch.max(0) as u64,
                    data,
                });
                at = index + 1;
            }
            if out.len() == before {
                // Nothing readable where an entry should be: the log and the index disagree.
                return Err(StoreError::OutOfRange {
                    index: at,
                    first,
                    last,
                });
            }
        }
        Ok(out)
    }

    fn append(&mut self, entries: &[LogEntry]) -> Result<(), StoreError> {
        let expected = self.last_index() + 1;
        let Some(head) = check_append(entries, self.snap.index, expected - 1)? else {
            return Ok(());
        };
        if head.index < expected {
            // A conflicting suffix: cut it first.
            self.log
                .truncate_to(head.index as i64 - 1, self.now_ms)
                .map_err(io)?;
        }
        let mut bytes = Vec::new();
        for e in entries {
            bytes.extend_from_slice(&Self::batch(e));
        }
        self.log
            .append_as_follower(&bytes, self.now_ms)
            .map_err(io)?;
        Ok(())
    }

    fn install_snapshot(&mut self, snapshot: StoredSnapshot) -> Result<(), StoreError> {
        self.write_snapshot(&snapshot)?;
        self.log
            .truncate_fully_and_start_at(snapshot.index as i64, self.now_ms)
            .map_err(io)?;
        let hs = HardState {
            commit: self.hard.commit.max(snapshot.index),
            term: self.hard.term.max(snapshot.term),
            vote: self.hard.vote,
        };
        self.snap = snapshot;
        self.set_hard_state(hs)
    }

    fn compact(&mut self, snapshot: StoredSnapshot) -> Result<(), StoreError> {
        let (first, last) = (self.first_index(), self.last_index());
        if snapshot.index < self.snap.index || snapshot.index > last {
            return Err(StoreError::OutOfRange {
                index: snapshot.index,
                first,
                last,
            });
        }
        self.write_snapshot(&snapshot)?;
        self.log
            .delete_records_before(snapshot.index as i64, self.now_ms)
            .map_err(io)?;
        self.snap = snapshot;
        Ok(())
    }
}

#[cfg(test)]
#[path = "disk_log_tests.rs"]
mod tests;
