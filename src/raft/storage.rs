//! The Raft log as the quorum sees it: the [`RaftLog`] trait (ours, free of protobuf types), an
//! in-memory implementation ([`MemLog`]) and the adapter that lets raft-rs read it
//! ([`LogStorage`], an implementation of `raft::Storage`).
//!
//! A log holds, in this order: the latest snapshot (index, term, opaque state-machine bytes; index 0
//! means "none yet"), then the entries `snapshot.index + 1 ..= last_index`, plus the hard state
//! (current term, vote, commit index). Raft indexes start at 1.
//!
//! ## Mapping to a Kafka partition log (ARCHITECTURE §6)
//!
//! The entry at Raft index `i` is the record at Kafka offset `i - 1`; its term is the batch's
//! partition leader epoch. With that choice every Kafka quantity is a Raft index as it stands:
//!
//! | Kafka                                   | Raft                                       |
//! |-----------------------------------------|--------------------------------------------|
//! | log end offset                          | `last_index()`                             |
//! | high watermark                          | commit index (`HardState::commit`)         |
//! | log start offset                        | snapshot index (`first_index() - 1`)       |
//! | snapshot `<endOffset>-<epoch>.checkpoint` | snapshot `(index, term)`                 |
//! | leader-epoch-checkpoint `epoch start`   | first index of a term, minus 1             |
//! | a voter's log end offset (DescribeQuorum) | its match index                          |
//!
//! Raft needs one index per entry, so a partition-log backend writes each entry as a batch whose
//! records occupy one offset: the leader's empty entry at the start of a term is Kafka's
//! `LeaderChangeMessage` control record, and a proposal is one record whose value is the proposal's
//! bytes (a group of metadata records that must be applied atomically travels as one entry). A
//! backend that wants multi-record batches instead must keep an index→offset table and report
//! offsets through it; nothing in the quorum depends on which.
//!
//! ## Errors
//!
//! Writes return [`StoreError`]; [`super::Quorum::poll`] hands it up, and the caller takes the
//! directory offline (ARCHITECTURE §6). A failing *read* inside raft-rs (`entries`, `term`) is fatal
//! there: raft-rs panics on storage errors other than "compacted"/"unavailable". A disk backend
//! must therefore answer reads from data it has already validated at load time.

use std::fmt;

use raft::eraftpb::{ConfState, Entry, HardState as PbHardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};

/// Term, vote and commit index: what must survive a crash besides the entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HardState {
    /// Current term (Kafka: leader epoch).
    pub term: u64,
    /// Candidate voted for in `term`, 0 for none.
    pub vote: u64,
    /// Highest index known committed (Kafka: high watermark).
    pub commit: u64,
}

/// One log entry. Empty `data` is the leader's no-op at the start of its term.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogEntry {
    pub index: u64,
    pub term: u64,
    pub data: Vec<u8>,
}

/// A state-machine snapshot covering every entry up to and including `index`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredSnapshot {
    pub index: u64,
    pub term: u64,
    /// Opaque bytes produced by the state machine.
    pub data: Vec<u8>,
}

/// A storage failure. Any of them makes the quorum on this node unusable.
#[derive(Debug)]
pub enum StoreError {
    Io(std::io::Error),
    /// An append or compaction that would leave a hole in the log.
    NonContiguous {
        expected: u64,
        got: u64,
    },
    /// A request for indexes the log does not hold.
    OutOfRange {
        index: u64,
        first: u64,
        last: u64,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io(e) => write!(f, "raft log I/O error: {e}"),
            StoreError::NonContiguous { expected, got } => {
                write!(
                    f,
                    "raft log append at index {got}, expected at most {expected}"
                )
            }
            StoreError::OutOfRange { index, first, last } => {
                write!(f, "raft log index {index} outside [{first}, {last}]")
            }
        }
    }
}

impl std::error::Error for StoreError {}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(e)
    }
}

/// Durable storage of one node's Raft log. Implemented in memory by [`MemLog`]; later by the
/// partition log of `__cluster_metadata-0`.
///
/// Writes are expected to be durable by the time the caller sends the messages that
/// [`super::Output::send_after_sync`] holds (the loop's flush point).
pub trait RaftLog {
    fn hard_state(&self) -> HardState;
    fn set_hard_state(&mut self, hs: HardState) -> Result<(), StoreError>;
    /// Index and term of the latest snapshot; `(0, 0)` when there is none.
    fn snapshot_id(&self) -> (u64, u64);
    /// The latest snapshot with its data, `None` when there is none.
    fn snapshot(&self) -> Result<Option<StoredSnapshot>, StoreError>;
    /// Index of the last entry, or the snapshot index when no entry follows it.
    fn last_index(&self) -> u64;
    /// Term of the entry at `index`, for `snapshot index < index <= last_index`.
    fn term(&self, index: u64) -> Option<u64>;
    /// Entries `[low, high)`, stopping once `max_bytes` of data is exceeded (at least one entry).
    fn entries(&self, low: u64, high: u64, max_bytes: u64) -> Result<Vec<LogEntry>, StoreError>;
    /// Appends `entries` (consecutive indexes), first dropping every stored entry at or after
    /// `entries[0].index`: a conflicting uncommitted suffix is truncated this way.
    fn append(&mut self, entries: &[LogEntry]) -> Result<(), StoreError>;
    /// Replaces the whole log by a snapshot received from the leader.
    fn install_snapshot(&mut self, snapshot: StoredSnapshot) -> Result<(), StoreError>;
    /// Records a snapshot the local state machine took at `snapshot.index` (an applied index) and
    /// drops the entries it covers.
    fn compact(&mut self, snapshot: StoredSnapshot) -> Result<(), StoreError>;

    /// Index of the first entry that can be read.
    fn first_index(&self) -> u64 {
        self.snapshot_id().0 + 1
    }
}

/// An in-memory [`RaftLog`]. Cloning it is how the tests "crash" a node and restart it from what
/// it had stored.
#[derive(Clone, Debug, Default)]
pub struct MemLog {
    hard: HardState,
    snap: StoredSnapshot,
    /// `entries[i].index == snap.index + 1 + i`.
    entries: Vec<LogEntry>,
}

impl MemLog {
    pub fn new() -> MemLog {
        MemLog::default()
    }

    fn offset(&self, index: u64) -> usize {
        (index - self.snap.index - 1) as usize
    }
}

impl RaftLog for MemLog {
    fn hard_state(&self) -> HardState {
        self.hard
    }

    fn set_hard_state(&mut self, hs: HardState) -> Result<(), StoreError> {
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
        self.snap.index + self.entries.len() as u64
    }

    fn term(&self, index: u64) -> Option<u64> {
        if index <= self.snap.index || index > self.last_index() {
            return None;
        }
        Some(self.entries[self.offset(index)].term)
    }

    fn entries(&self, low: u64, high: u64, max_bytes: u64) -> Result<Vec<LogEntry>, StoreError> {
        check_range(low, high, self.first_index(), self.last_index())?;
        let mut out = Vec::new();
        let mut size = 0u64;
        for e in &self.entries[self.offset(low)..self.offset(high)] {
            size += e.data.len() as u64;
            if !out.is_empty() && size > max_bytes {
                break;
            }
            out.push(e.clone());
        }
        Ok(out)
    }

    fn append(&mut self, entries: &[LogEntry]) -> Result<(), StoreError> {
        let Some(head) = check_append(entries, self.snap.index, self.last_index())? else {
            return Ok(());
        };
        let keep = self.offset(head.index);
        self.entries.truncate(keep);
        self.entries.extend_from_slice(entries);
        Ok(())
    }

    fn install_snapshot(&mut self, snapshot: StoredSnapshot) -> Result<(), StoreError> {
        self.hard.commit = self.hard.commit.max(snapshot.index);
        self.hard.term = self.hard.term.max(snapshot.term);
        self.entries.clear();
        self.snap = snapshot;
        Ok(())
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
        let drop = (snapshot.index - self.snap.index) as usize;
        self.entries.drain(..drop);
        self.snap = snapshot;
        Ok(())
    }
}

/// Whether `entries(low, high)` can be answered by a log holding `first..=last`.
pub(crate) fn check_range(low: u64, high: u64, first: u64, last: u64) -> Result<(), StoreError> {
    if low < first || high > last + 1 || low > high {
        return Err(StoreError::OutOfRange {
            index: if low < first { low } else { high },
            first,
            last,
        });
    }
    Ok(())
}

/// Whether `entries` may be appended to a log whose snapshot ends at `snap` and whose last
/// index is `last`: consecutive, starting after the snapshot and at most one past the end.
/// Returns the first entry (None when there are none).
pub(crate) fn check_append(
    entries: &[LogEntry],
    snap: u64,
    last: u64,
) -> Result<Option<&LogEntry>, StoreError> {
    let Some(head) = entries.first() else {
        return Ok(None);
    };
    if head.index <= snap || head.index > last + 1 {
        return Err(StoreError::NonContiguous {
            expected: last + 1,
            got: head.index,
        });
    }
    for (i, e) in entries.iter().enumerate() {
        if e.index != head.index + i as u64 {
            return Err(StoreError::NonContiguous {
                expected: head.index + i as u64,
                got: e.index,
            });
        }
    }
    Ok(Some(head))
}

/// `raft::Storage` over a [`RaftLog`]. The voter set is static (from configuration), so the
/// configuration state is not stored: it is handed to raft-rs from here.
pub struct LogStorage<L> {
    pub(crate) log: L,
    voters: Vec<u64>,
}

impl<L: RaftLog> LogStorage<L> {
    pub fn new(log: L, voters: Vec<u64>) -> Self {
        LogStorage { log, voters }
    }

    pub fn log(&self) -> &L {
        &self.log
    }

    pub(crate) fn conf_state(&self) -> ConfState {
        ConfState {
            voters: self.voters.clone(),
            ..Default::default()
        }
    }
}

pub(crate) fn to_pb_entry(e: &LogEntry) -> Entry {
    Entry {
        index: e.index,
        term: e.term,
        data: e.data.clone().into(),
        ..Default::default()
    }
}

pub(crate) fn from_pb_entry(e: Entry) -> LogEntry {
    LogEntry {
        index: e.index,
        term: e.term,
        data: Vec::from(e.data),
    }
}

fn store_err(e: StoreError) -> raft::Error {
    raft::Error::Store(StorageError::Other(Box::new(e)))
}

impl<L: RaftLog> raft::Storage for LogStorage<L> {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let hs = self.log.hard_state();
        Ok(RaftState {
            hard_state: PbHardState {
                term: hs.term,
                vote: hs.vote,
                commit: hs.commit,
                ..Default::default()
            },
            conf_state: self.conf_state(),
        })
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.log.first_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.log.last_index() + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let max = max_size.into().unwrap_or(u64::MAX);
        let entries = self.log.entries(low, high, max).map_err(store_err)?;
        Ok(entries.iter().map(to_pb_entry).collect())
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let (snap_index, snap_term) = self.log.snapshot_id();
        if idx == snap_index {
            return Ok(snap_term);
        }
        if idx < snap_index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        self.log
            .term(idx)
            .ok_or(raft::Error::Store(StorageError::Unavailable))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.log.first_index())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.log.last_index())
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        match self.log.snapshot().map_err(store_err)? {
            Some(s) if s.index >= request_index => {
                let mut snap = Snapshot {
                    data: s.data.into(),
                    ..Default::default()
                };
                let meta = snap.mut_metadata();
                meta.index = s.index;
                meta.term = s.term;
                meta.set_conf_state(self.conf_state());
                Ok(snap)
            }
            _ => Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(index: u64, term: u64, data: &str) -> LogEntry {
        LogEntry {
            index,
            term,
            data: data.as_bytes().to_vec(),
        }
    }

    #[test]
    fn append_truncates_conflicting_suffix() {
        let mut log = MemLog::new();
        log.append(&[e(1, 1, "a"), e(2, 1, "b"), e(3, 1, "c")])
            .unwrap();
        log.append(&[e(2, 2, "x")]).unwrap();
        assert_eq!(log.last_index(), 2);
        assert_eq!(log.term(2), Some(2));
        assert_eq!(log.term(3), None);
        assert!(matches!(
            log.append(&[e(5, 2, "gap")]),
            Err(StoreError::NonContiguous {
                expected: 3,
                got: 5
            })
        ));
        assert!(log.append(&[e(3, 2, "a"), e(5, 2, "b")]).is_err());
        assert_eq!(log.last_index(), 2);
    }

    #[test]
    fn compact_and_install_snapshot() {
        let mut log = MemLog::new();
        log.append(&[e(1, 1, "a"), e(2, 1, "b"), e(3, 2, "c")])
            .unwrap();
        let snap = StoredSnapshot {
            index: 2,
            term: 1,
            data: b"ab".to_vec(),
        };
        log.compact(snap.clone()).unwrap();
        assert_eq!(log.first_index(), 3);
        assert_eq!(log.last_index(), 3);
        assert_eq!(log.snapshot().unwrap(), Some(snap));
        assert!(log.entries(2, 4, u64::MAX).is_err());
        assert_eq!(log.entries(3, 4, u64::MAX).unwrap(), vec![e(3, 2, "c")]);
        assert!(log.append(&[e(2, 3, "old")]).is_err());
        assert!(log
            .compact(StoredSnapshot {
                index: 9,
                ..Default::default()
            })
            .is_err());

        log.install_snapshot(StoredSnapshot {
            index: 10,
            term: 4,
            data: b"all".to_vec(),
        })
        .unwrap();
        assert_eq!((log.first_index(), log.last_index()), (11, 10));
        assert_eq!(log.hard_state().commit, 10);
        log.append(&[e(11, 4, "d")]).unwrap();
        assert_eq!(log.last_index(), 11);
    }

    #[test]
    fn entries_respect_max_bytes_but_return_one() {
        let mut log = MemLog::new();
        log.append(&[e(1, 1, "aaaa"), e(2, 1, "bbbb"), e(3, 1, "cccc")])
            .unwrap();
        assert_eq!(log.entries(1, 4, 0).unwrap().len(), 1);
        assert_eq!(log.entries(1, 4, 8).unwrap().len(), 2);
        assert_eq!(log.entries(1, 4, u64::MAX).unwrap().len(), 3);
    }

    #[test]
    fn storage_adapter_answers_raft_queries() {
        use raft::Storage;
        let mut log = MemLog::new();
        log.append(&[e(1, 1, "a"), e(2, 2, "b")]).unwrap();
        log.compact(StoredSnapshot {
            index: 1,
            term: 1,
            data: vec![],
        })
        .unwrap();
        let st = LogStorage::new(log, vec![1, 2, 3]);
        assert_eq!(st.term(1).unwrap(), 1);
        assert_eq!(st.term(2).unwrap(), 2);
        assert!(matches!(
            st.term(0),
            Err(raft::Error::Store(StorageError::Compacted))
        ));
        assert!(matches!(
            st.term(3),
            Err(raft::Error::Store(StorageError::Unavailable))
        ));
        assert_eq!(st.initial_state().unwrap().conf_state.voters, vec![1, 2, 3]);
        let snap = st.snapshot(0, 2).unwrap();
        assert_eq!(snap.get_metadata().index, 1);
        assert_eq!(snap.get_metadata().get_conf_state().voters, vec![1, 2, 3]);
        assert!(st.snapshot(5, 2).is_err());
    }
}
