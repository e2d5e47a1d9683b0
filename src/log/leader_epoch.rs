//! A partition's leader epochs: at which offset each leader epoch began, as Kafka's
//! `LeaderEpochFileCache` keeps them, persisted in its `leader-epoch-checkpoint` file.
//!
//! Followers ask a leader where their epoch ended (OffsetForLeaderEpoch) and truncate a
//! diverging tail to that point; consumers validate their position the same way (KIP-320).
//! Entries are monotonic in both epoch and start offset: a new entry removes every entry it
//! contradicts. The file is Kafka's text checkpoint format:
//!
//! ```text
//! 0            version
//! 2            number of entries
//! 0 0          epoch start-offset
//! 3 1042
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// Kafka's `UNDEFINED_EPOCH` and `UNDEFINED_EPOCH_OFFSET`.
pub const UNDEFINED_EPOCH: i32 = -1;
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;
pub const CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LeaderEpochCache {
    /// epoch -> start offset
    epochs: BTreeMap<i32, i64>,
}

impl LeaderEpochCache {
    /// Records that `epoch` began at `start_offset` (a batch of that epoch was appended there).
    /// Returns whether anything changed (then the checkpoint should be written). Negative
    /// values (batches written before epochs were kept) are ignored.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || start_offset < 0 {
            return false;
        }
        let needed = match self.latest_entry() {
            Some((e, o)) => epoch != e || start_offset < o,
            None => true,
        };
        if !needed {
            return false;
        }
        // Remove, from the newest down, every entry the new one contradicts.
        while let Some((&e, &o)) = self.epochs.iter().next_back() {
            if e >= epoch || o >= start_offset {
                self.epochs.remove(&e);
            } else {
                break;
            }
        }
        self.epochs.insert(epoch, start_offset);
        true
    }

    pub fn latest_entry(&self) -> Option<(i32, i64)> {
        self.epochs.iter().next_back().map(|(&e, &o)| (e, o))
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.latest_entry().map(|(e, _)| e)
    }

    pub fn entries(&self) -> Vec<(i32, i64)> {
        self.epochs.iter().map(|(&e, &o)| (e, o)).collect()
    }

    /// Kafka's `endOffsetFor`: the largest epoch at most `requested` and where it ended (the
    /// start of the next epoch, or the log end offset for the latest epoch). Undefined when
    /// `requested` is undefined or newer than every epoch known.
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> (i32, i64) {
        if requested == UNDEFINED_EPOCH {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        }
        if self.latest_epoch() == Some(requested) {
            return (requested, log_end_offset);
        }
        let Some((_, &higher_start)) = self
            .epochs
            .range((
                std::ops::Bound::Excluded(requested),
                std::ops::Bound::Unbounded,
            ))
            .next()
        else {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        };
        match self.epochs.range(..=requested).next_back() {
            Some((&floor, _)) => (floor, higher_start),
            None => (requested, higher_start),
        }
    }

    /// `end_offset_for` as a leader in `leader_epoch` answers it: Kafka adds the leader's epoch
    /// at the log end when it becomes leader, so that epoch is known before it writes anything.
    pub fn end_offset_as_leader(
        &self,
        requested: i32,
        leader_epoch: i32,
        log_end_offset: i64,
    ) -> (i32, i64) {
        if leader_epoch >= 0 && self.latest_epoch().is_none_or(|e| e < leader_epoch) {
            let mut with_leader = self.clone();
            with_leader.assign(leader_epoch, log_end_offset);
            return with_leader.end_offset_for(requested, log_end_offset);
        }
        self.end_offset_for(requested, log_end_offset)
    }

    /// The epoch of the batch at `offset`.
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        let mut previous = None;
        for (&e, &o) in &self.epochs {
            if o == offset {
                return Some(e);
            }
            if o > offset {
                return previous;
            }
            previous = Some(e);
        }
        previous
    }

    /// The log was truncated to end at `end_offset`: entries starting there or later go.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        if end_offset < 0 || self.latest_entry().is_none_or(|(_, o)| o < end_offset) {
            return false;
        }
        let before = self.epochs.len();
        self.epochs.retain(|_, o| *o < end_offset);
        self.epochs.len() != before
    }

    /// The log now starts at `start_offset`: entries wholly before it go, and the epoch in force
    /// there starts at it.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let removed: Vec<i32> = self
            .epochs
            .iter()
            .take_while(|(_, &o)| o <= start_offset)
            .map(|(&e, _)| e)
            .collect();
        let Some(&last) = removed.last() else {
            return false;
        };
        for e in &removed {
            self.epochs.remove(e);
        }
        self.epochs.insert(last, start_offset);
        true
    }

    /// Reads the checkpoint file; None when it does not exist. A damaged file is an error (the
    /// caller rebuilds the cache from the log's batches, as after losing the file).
    pub fn read(dir: &Path) -> io::Result<Option<LeaderEpochCache>> {
        let text = match fs::read_to_string(dir.join(CHECKPOINT_FILE)) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
        let mut lines = text.lines();
        if lines.next().map(str::trim) != Some("0") {
            return Err(bad("unsupported leader-epoch-checkpoint version"));
        }
        let n: usize = lines
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| bad("bad entry count"))?;
        let mut cache = LeaderEpochCache::default();
        let mut seen = 0;
        for line in lines.filter(|l| !l.trim().is_empty()) {
            let mut f = line.split_whitespace();
            let (Some(e), Some(o), None) = (f.next(), f.next(), f.next()) else {
                return Err(bad("bad entry"));
            };
            let (Ok(e), Ok(o)) = (e.parse::<i32>(), o.parse::<i64>()) else {
                return Err(bad("bad entry"));
            };
            cache.assign(e, o);
            seen += 1;
        }
        if seen != n {
            return Err(bad("entry count does not match"));
        }
        Ok(Some(cache))
    }

    /// Writes the checkpoint atomically (temporary file, rename). Not fsynced here: the
    /// partition fsyncs it with its segments at its next flush (until then a crash can only
    /// lose it, and it is rebuilt from the log).
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        let mut text = format!("0\n{}\n", self.epochs.len());
        for (e, o) in &self.epochs {
            text.push_str(&format!("{e} {o}\n"));
        }
        let tmp = dir.join(format!("{CHECKPOINT_FILE}.tmp"));
        fs::File::create(&tmp)?.write_all(text.as_bytes())?;
        fs::rename(&tmp, dir.join(CHECKPOINT_FILE))
    }
}

#[cfg(test)]
mod tests {
    //! Kafka's `LeaderEpochFileCacheTest`, case for case.
    use super::*;

    const U: (i32, i64) = (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        let mut c = LeaderEpochCache::default();
        for &(e, o) in entries {
            c.assign(e, o);
        }
        c
    }

    #[test]
    fn latest_epoch_answers_the_log_end_offset() {
        let c = cache(&[(2, 10)]);
        assert_eq!(c.latest_epoch(), Some(2));
        assert_eq!(c.entries(), [(2, 10)]);
        assert_eq!(c.end_offset_for(2, 11), (2, 11));
        let c = cache(&[(2, 11), (2, 12)]);
        assert_eq!(c.end_offset_for(2, 14), (2, 14));
    }

    #[test]
    fn undefined_and_unknown_epochs() {
        let c = cache(&[(2, 11), (3, 12)]);
        assert_eq!(c.end_offset_for(UNDEFINED_EPOCH, 0), U);
        assert_eq!(LeaderEpochCache::default().end_offset_for(0, 0), U);
        assert_eq!(
            LeaderEpochCache::default().end_offset_for(UNDEFINED_EPOCH, 73),
            U
        );
        assert_eq!(cache(&[(2, 100)]).end_offset_for(3, 100), U);
    }

    #[test]
    fn an_assigned_epoch_keeps_its_start_unless_earlier() {
        let c = cache(&[(2, 9), (2, 10)]);
        assert_eq!(c.entries(), [(2, 9)]);
        let c = cache(&[(2, 6), (2, 10)]);
        assert_eq!(c.entries(), [(2, 6)]);
        let c = cache(&[(2, 6), (2, 7)]);
        assert_eq!(c.entries(), [(2, 6)]);
        // Monotonic start offsets: the later epoch at the same offset replaces the earlier.
        assert_eq!(cache(&[(2, 9), (3, 9)]).entries(), [(3, 9)]);
        assert_eq!(cache(&[(2, 6), (3, 5)]).entries(), [(3, 5)]);
    }

    #[test]
    fn requested_epochs_between_and_before_known_ones() {
        let c = cache(&[(5, 11), (6, 12), (7, 13)]);
        assert_eq!(c.end_offset_for(4, 0), (4, 11));
        let mut c = c;
        c.assign(7, 12); // same epoch, earlier start: truncates 6 and 7
        assert_eq!(c.end_offset_for(5, 0), (5, 12));
        assert_eq!(c.end_offset_for(6, 0), (5, 12));
        let c = cache(&[(1, 11), (1, 12), (2, 13), (2, 14), (3, 15), (3, 16)]);
        assert_eq!(c.end_offset_for(2, 17), (2, 15));
        let c = cache(&[(0, 10), (2, 13), (4, 17)]);
        assert_eq!(c.end_offset_for(1, 0), (0, 13));
        assert_eq!(c.end_offset_for(2, 0), (2, 17));
        assert_eq!(c.end_offset_for(3, 0), (2, 17));
    }

    #[test]
    fn a_leader_knows_its_epoch_before_writing_in_it() {
        let c = cache(&[(0, 0), (2, 10)]);
        assert_eq!(c.end_offset_as_leader(4, 4, 15), (4, 15));
        assert_eq!(c.end_offset_as_leader(3, 4, 15), (2, 15));
        assert_eq!(c.end_offset_as_leader(2, 2, 15), (2, 15));
        assert_eq!(c.end_offset_as_leader(0, 4, 15), (0, 10));
        assert_eq!(
            LeaderEpochCache::default().end_offset_as_leader(0, 0, 0),
            (0, 0)
        );
        assert_eq!(c.end_offset_as_leader(5, 4, 15), U);
    }

    #[test]
    fn epochs_increase_monotonically() {
        let mut c = cache(&[(1, 5), (2, 6)]);
        c.assign(1, 7); // an older epoch after a newer one replaces it
        assert_eq!(c.latest_epoch(), Some(1));
        assert_eq!(c.end_offset_for(1, 8), (1, 8));
        assert_eq!(c.end_offset_for(2, 8), U);
        assert_eq!(c.entries(), [(1, 7)]);
    }

    #[test]
    fn leaders_changing_many_times() {
        let mut c = cache(&[(0, 0), (1, 0)]);
        assert_eq!(c.latest_epoch(), Some(1));
        assert_eq!(c.end_offset_for(1, 0), (1, 0));
        // 0 was replaced by 1 at offset 0: epoch 0 ended where 1 began.
        assert_eq!(c.end_offset_for(0, 0), (0, 0));
        assert_eq!(c.end_offset_for(1, 5), (1, 5));
        c.assign(2, 5);
        assert_eq!(c.end_offset_for(2, 10), (2, 10));
        assert_eq!(c.end_offset_for(1, 10), (1, 5));
        assert_eq!(c.end_offset_for(0, 10), (0, 0));
        assert_eq!(c.epoch_for_offset(4), Some(1));
        assert_eq!(c.epoch_for_offset(5), Some(2));
        assert_eq!(c.epoch_for_offset(50), Some(2));
    }

    #[test]
    fn truncation_from_end_and_start() {
        let mut c = cache(&[(2, 6), (3, 8), (4, 11)]);
        assert!(!c.truncate_from_end(12));
        assert!(c.truncate_from_end(9));
        assert_eq!(c.entries(), [(2, 6), (3, 8)]);
        assert!(c.truncate_from_end(8));
        assert_eq!(c.entries(), [(2, 6)]);
        let mut c = cache(&[(2, 6), (3, 8), (4, 11)]);
        assert!(c.truncate_from_start(9));
        assert_eq!(c.entries(), [(3, 9), (4, 11)]);
        assert!(c.truncate_from_start(11));
        assert_eq!(c.entries(), [(4, 11)]);
        assert!(!c.truncate_from_start(5));
    }

    #[test]
    fn the_checkpoint_file_round_trips_and_refuses_damage() {
        let d = crate::test_util::TempDir::new("leader-epochs");
        assert_eq!(LeaderEpochCache::read(d.path()).unwrap(), None);
        let c = cache(&[(0, 0), (3, 1042)]);
        c.write(d.path()).unwrap();
        let text = fs::read_to_string(d.path().join(CHECKPOINT_FILE)).unwrap();
        assert_eq!(text, "0\n2\n0 0\n3 1042\n");
        assert_eq!(LeaderEpochCache::read(d.path()).unwrap(), Some(c));
        for damaged in ["1\n0\n", "0\n2\n0 0\n", "0\nx\n", "0\n1\n0 zero\n", ""] {
            fs::write(d.path().join(CHECKPOINT_FILE), damaged).unwrap();
            assert!(LeaderEpochCache::read(d.path()).is_err(), "{damaged:?}");
        }
    }
}
