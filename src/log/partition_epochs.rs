//! A partition's leader epochs (see `leader_epoch.rs`): learned from the batches it appends,
//! kept in its `leader-epoch-checkpoint`, trimmed as the log's start moves, and answered for
//! OffsetForLeaderEpoch.

use super::leader_epoch::LeaderEpochCache;
use super::partition::PartitionLog;
use super::LogError;
use crate::records::BatchHeader;

impl PartitionLog {
    /// Loads the checkpoint at open. Without one (a log written before epochs were kept, or a
    /// damaged file), the epochs of the first and the last batch are taken: exact for logs this
    /// broker wrote, whose batches all carry the epoch of its single leadership.
    pub(super) fn load_epochs(&mut self) -> Result<(), LogError> {
        let loaded = match LeaderEpochCache::read(&self.dir) {
            Ok(c) => c,
            Err(e) => {
                log::warn!(
                    "{}: leader-epoch-checkpoint unreadable ({e}); rebuilding it from the log",
                    self.dir.display()
                );
                None
            }
        };
        let (start, end) = (self.log_start_offset(), self.log_end_offset());
        let mut cache = match loaded {
            Some(c) => c,
            None => {
                let mut c = LeaderEpochCache::default();
                if end > start {
                    for offset in [start, end - 1] {
                        if let Some(h) = self.header_at(offset)? {
                            c.assign(h.partition_leader_epoch, h.base_offset.max(start));
                        }
                    }
                }
                c
            }
        };
        // Recovery may have cut the tail, retention or DeleteRecords moved the start.
        let mut changed = cache.truncate_from_end(end);
        changed |= cache.truncate_from_start(start);
        let missing = !self.dir.join(super::leader_epoch::CHECKPOINT_FILE).exists();
        self.epochs = cache;
        if (changed || missing) && !self.epochs.entries().is_empty() {
            self.write_epochs()?;
        }
        Ok(())
    }

    /// The header of the batch holding `offset`.
    fn header_at(&self, offset: i64) -> Result<Option<BatchHeader>, LogError> {
        match self.segments.range(..=offset).next_back() {
            Some((_, seg)) => seg.header_at(offset),
            None => Ok(None),
        }
    }

    /// After an append: a batch of a new epoch starts it.
    pub(super) fn note_epochs(&mut self, headers: &[BatchHeader]) -> Result<(), LogError> {
        let mut changed = false;
        for h in headers {
            changed |= self.epochs.assign(h.partition_leader_epoch, h.base_offset);
        }
        if changed {
            self.write_epochs()?;
        }
        Ok(())
    }

    /// After the log start moved (retention, DeleteRecords).
    pub(super) fn trim_epochs_to_start(&mut self) -> Result<(), LogError> {
        if self.epochs.truncate_from_start(self.log_start_offset()) {
            self.write_epochs()?;
        }
        Ok(())
    }

    pub(super) fn write_epochs(&mut self) -> Result<(), LogError> {
        let path = self.dir.join(super::leader_epoch::CHECKPOINT_FILE);
        let written = super::faults::check(&path, super::faults::Op::Write)
            .and_then(|_| self.epochs.write(&self.dir));
        if let Err(e) = written {
            return Err(self.write_failed("writing leader-epoch-checkpoint", e.into()));
        }
        // Made durable with the segments at the next flush, off the append path.
        self.dir_dirty = true;
        self.epochs_unsynced = true;
        Ok(())
    }

    /// fsyncs the checkpoint written since the last flush, if any (from `flush_at`).
    pub(super) fn sync_epochs(&mut self) -> std::io::Result<()> {
        if std::mem::take(&mut self.epochs_unsynced) {
            let path = self.dir.join(super::leader_epoch::CHECKPOINT_FILE);
            super::faults::sync_data(&std::fs::File::open(&path)?, &path)?;
        }
        Ok(())
    }

    /// OffsetForLeaderEpoch: the largest epoch at most `epoch` and where it ends.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
    }

    /// OffsetForLeaderEpoch answered as the partition's leader in `leader_epoch`.
    pub fn end_offset_as_leader(&self, epoch: i32, leader_epoch: i32) -> (i32, i64) {
        self.epochs
            .end_offset_as_leader(epoch, leader_epoch, self.log_end_offset())
    }

    /// The epoch of the batch holding `offset`.
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        self.epochs.epoch_for_offset(offset)
    }

    /// The epoch of the latest batch, if any batch carries one.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest_epoch()
    }

    /// Every (epoch, start offset) known.
    pub fn epoch_entries(&self) -> Vec<(i32, i64)> {
        self.epochs.entries()
    }
}
