//! The one seam between the handlers that serve partition data to clients (Fetch, ListOffsets,
//! OffsetForLeaderEpoch, DescribeLogDirs, Produce's durability check) and the partition logs.
//!
//! A handler asks `Broker::served` for a partition and gets either the error to answer
//! (unknown partition, not led here) or a `Served` view. Every offset that bounds what a client
//! may see — the high watermark, the last stable offset — comes from the view, and reads are
//! cut at the high watermark there. On one replica the high watermark is what is safely
//! readable from the log; with replicas it becomes what the in-sync replicas hold, decided
//! here without any handler changing.

use super::Broker;
use crate::log::{LogError, PartitionLog, ReadInfo};
use crate::protocol::error::{self, ErrorCode};

/// A partition this broker serves to clients as its leader.
pub struct Served<'a> {
    /// `None`: the partition exists but nothing was ever written (its log is created lazily).
    log: Option<&'a PartitionLog>,
    leader_epoch: i32,
    /// The log directory failed (a partition never written has no log to say so).
    dir_offline: bool,
    /// Replicated and led here: the high watermark the in-sync replicas hold.
    replicated_hw: Option<i64>,
}

impl Broker {
    /// A partition as this broker serves it, or the error to answer for it:
    /// UNKNOWN_TOPIC_OR_PARTITION (no such topic or partition), NOT_LEADER_OR_FOLLOWER (another
    /// broker of the cluster leads it).
    pub fn served(&self, topic: &str, partition: i32) -> Result<Served<'_>, ErrorCode> {
        let info = self
            .meta
            .image()
            .topic(topic)
            .and_then(|t| t.partition(partition))
            .ok_or(error::UNKNOWN_TOPIC_OR_PARTITION)?;
        if self.cluster.is_some()
            && (info.leader != self.config.node_id
                || !self.leads_replicated(topic, partition, info.replicas.len()))
        {
            return Err(error::NOT_LEADER_OR_FOLLOWER);
        }
        Ok(Served {
            log: self.logs.get(topic, partition),
            leader_epoch: info.leader_epoch,
            dir_offline: self.logs.is_offline(),
            replicated_hw: self.replicated_high_watermark(topic, partition),
        })
    }
}

impl Served<'_> {
    /// The current leader epoch from the metadata image (-1 in images written before epochs).
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    /// Whether the partition's log is offline (its directory failed, or work on it panicked).
    pub fn is_offline(&self) -> bool {
        self.dir_offline || self.log.is_some_and(|l| l.is_offline())
    }

    /// The offset below which clients may read: what is safely readable from the log, and
    /// for a replicated partition no more than the in-sync replicas hold.
    pub fn high_watermark(&self) -> i64 {
        let safe = self.log.map_or(0, |l| l.safe_end_offset());
        self.replicated_hw.map_or(safe, |hw| hw.min(safe))
    }

    /// read_committed consumers read below this: the oldest open transaction's first offset,
    /// or the high watermark.
    pub fn last_stable_offset(&self) -> i64 {
        self.log
            .map_or(0, |l| l.last_stable_offset().min(self.high_watermark()))
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log.map_or(0, |l| l.log_start_offset())
    }

    /// Offsets below this have reached the disk (fsynced).
    pub fn recovery_point(&self) -> i64 {
        self.log.map_or(0, |l| l.recovery_point())
    }

    pub fn size_bytes(&self) -> u64 {
        self.log.map_or(0, |l| l.size_bytes())
    }

    /// Appends whole batches from `offset` to `out` (see `PartitionLog::read`), none at or past
    /// the high watermark — or, for read_committed, the last stable offset.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        out: &mut Vec<u8>,
        read_committed: bool,
    ) -> Result<ReadInfo, LogError> {
        let upper = if read_committed {
            self.last_stable_offset()
        } else {
            self.high_watermark()
        };
        match self.log {
            Some(log) => log.read_below(offset, max_bytes, min_one, out, upper),
            // An empty log: offset 0 reads nothing, anything else is out of range.
            None if offset == 0 => Ok(ReadInfo {
                bytes: 0,
                high_watermark: 0,
                log_start_offset: 0,
            }),
            None => Err(LogError::OffsetOutOfRange {
                requested: offset,
                start: 0,
                end: 0,
            }),
        }
    }

    /// Whole batches from `offset` up to the log end, whatever the high watermark: what a
    /// follower fetches.
    pub fn read_for_follower(
        &self,
        offset: i64,
        max_bytes: usize,
        out: &mut Vec<u8>,
    ) -> Result<ReadInfo, LogError> {
        match self.log {
            Some(log) => log.read(offset, max_bytes, true, out),
            None => self.read(offset, max_bytes, true, out, false),
        }
    }

    /// The aborted transactions a read_committed read of `[from, to)` must report.
    pub fn aborted_between(&self, from: i64, to: i64) -> Vec<(i64, i64)> {
        self.log.map_or(Vec::new(), |l| l.aborted_between(from, to))
    }

    /// The leader epoch of the batch holding `offset`, if the log knows it.
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        self.log.and_then(|l| l.epoch_for_offset(offset))
    }

    /// OffsetForLeaderEpoch as the leader answers it: the largest epoch ≤ `requested` and
    /// where it ended.
    pub fn end_offset_for_epoch(&self, requested: i32) -> (i32, i64) {
        match self.log {
            Some(log) => log.end_offset_as_leader(requested, self.leader_epoch),
            // Never written: empty, in the current epoch.
            None => crate::log::leader_epoch::LeaderEpochCache::default().end_offset_as_leader(
                requested,
                self.leader_epoch,
                0,
            ),
        }
    }

    /// The offset and timestamp of the record with the largest timestamp.
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        self.log.and_then(|l| l.max_timestamp())
    }

    /// The first offset whose timestamp is at least `ts`, and that timestamp.
    pub fn offset_for_timestamp(&self, ts: i64) -> Option<(i64, i64)> {
        self.log.and_then(|l| l.offset_for_timestamp(ts))
    }

    /// The active producers (DescribeProducers): id, epoch, last sequence, last timestamp,
    /// coordinator epoch, first offset of the open transaction (-1: none).
    pub fn producers(&self) -> Vec<(i64, i16, i32, i64, i32, i64)> {
        self.log
            .map(|l| l.producer_states().describe())
            .unwrap_or_default()
    }
}
