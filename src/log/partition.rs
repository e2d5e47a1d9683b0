//! One partition's log: an ordered map of segments, the active one last.

use super::health::{DirHealth, SharedHealth};
use super::producer_state::{BatchMeta, ProducerStates, SequenceCheck};
use super::segment::{file_name, parse_file_name, Segment};
use super::{AppendInfo, LogConfig, LogError, ReadInfo, TimestampType};
use crate::records::{
    batches_checked, set_base_offset, set_log_append_time, set_partition_leader_epoch, RecordsError,
};
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// What the caller knows about how the log was left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecoveryState {
    /// `None` after a clean shutdown (no scan); otherwise the checkpointed recovery point:
    /// the segment holding it and all later ones are scanned.
    pub recovery_point: Option<i64>,
    /// From `log-start-offset-checkpoint` (0 if unknown).
    pub log_start_offset: i64,
    /// The directory failed in the previous run: the recovered segments are written again and
    /// fsynced, because after a failed fsync the kernel may keep pages that never reached the
    /// disk as clean cache, which a plain fsync would not write.
    pub rewrite_recovered: bool,
}

/// What `open` had to do (for logs and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenStats {
    pub segments: usize,
    /// Segments fully scanned with CRC checks (recovery or index rebuild).
    pub segments_recovered: usize,
    /// Bytes of invalid data cut off.
    pub bytes_truncated: u64,
    /// Bytes read by the active segment's tail check.
    pub tail_bytes_scanned: u64,
}

pub struct PartitionLog {
    pub(super) dir: PathBuf,
    pub(super) config: LogConfig,
    pub(super) segments: BTreeMap<i64, Segment>,
    log_start_offset: i64,
    recovery_point: i64,
    last_flush_ms: i64,
    last_now_ms: i64,
    /// Files were created or removed since the last directory fsync.
    pub(super) dir_dirty: bool,
    stats: OpenStats,
    /// Producers' recent batches and open transactions (saved in `.snapshot` files).
    pub(super) producers: ProducerStates,
    /// Aborted transactions, by marker offset (from the segments' `.txnindex` files).
    pub(super) aborted: Vec<super::txn_index::AbortedTxn>,
    /// The health of the log directory this partition lives in (shared with its neighbours).
    health: SharedHealth,
    /// Set when work on this partition panicked: it is offline on its own.
    failed: Option<String>,
    /// Where each leader epoch began (`leader-epoch-checkpoint`).
    pub(super) epochs: super::leader_epoch::LeaderEpochCache,
    /// The checkpoint was rewritten and not fsynced yet.
    pub(super) epochs_unsynced: bool,
}

impl PartitionLog {
    /// Opens (or creates) the log in `dir`, scanning every segment: the safe choice when
    /// nothing is known about how it was closed. `LogManager` uses `open_with`.
    pub fn open(dir: &Path, config: LogConfig, now_ms: i64) -> Result<PartitionLog, LogError> {
        Self::open_with(
            dir,
            config,
            now_ms,
            RecoveryState {
                recovery_point: Some(0),
                log_start_offset: 0,
                rewrite_recovered: false,
            },
        )
    }

    /// Kafka's `LogLoader`: load segments; recover those at or after the recovery point
    /// (length + CRC, truncate at the first bad batch, drop later segments, rebuild indexes);
    /// rebuild any missing or implausible index.
    pub fn open_with(
        dir: &Path,
        config: LogConfig,
        now_ms: i64,
        state: RecoveryState,
    ) -> Result<PartitionLog, LogError> {
        fs::create_dir_all(dir)?;
        // A clean interrupted by a crash: drop `.cleaned` output, finish `.swap` renames.
        let mut dir_dirty = super::cleaner::recover_leftovers(dir)?;
        let mut bases = Vec::new();
        let mut index_files = Vec::new();
        for entry in fs::read_dir(dir)? {
            let name = entry?.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(b) = parse_file_name(name, "log") {
                bases.push(b);
            } else if let Some(b) = parse_file_name(name, "index")
                .or_else(|| parse_file_name(name, "timeindex"))
                .or_else(|| parse_file_name(name, "txnindex"))
            {
                index_files.push((b, name.to_string()));
            }
        }
        bases.sort_unstable();
        // An index without its log is left over from a deletion: remove it, as Kafka does.
        for (b, name) in index_files {
            if bases.binary_search(&b).is_err() {
                fs::remove_file(dir.join(name))?;
                dir_dirty = true;
            }
        }

        let mut stats = OpenStats::default();
        let mut segments = BTreeMap::new();
        let mut last_scanned = false;
        let mut i = 0;
        while i < bases.len() {
            let base = bases[i];
            let next = bases.get(i + 1).copied();
            let recover = match state.recovery_point {
                None => false,
                Some(rp) => next.is_none_or(|n| n > rp),
            };
            let (mut seg, cut) = Segment::open(dir, base, &config, now_ms, recover)?;
            if recover && state.rewrite_recovered {
                seg.rewrite()?;
            }
            if let Some(cut) = cut {
                stats.segments_recovered += 1;
                stats.bytes_truncated += cut;
            }
            last_scanned = cut.is_some();
            if let Some(n) = next {
                seg.next_offset = seg.next_offset.max(n);
            }
            segments.insert(base, seg);
            i += 1;
            // Data after a cut cannot be trusted to follow on: drop the later segments.
            if recover && cut.unwrap_or(0) > 0 && i < bases.len() {
                for &b in &bases[i..] {
                    for ext in ["log", "index", "timeindex"] {
                        match fs::remove_file(dir.join(file_name(b, ext))) {
                            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e.into()),
                            _ => {}
                        }
                    }
                    log::warn!(
                        "{}: deleted segment {} after a truncation",
                        dir.display(),
                        b
                    );
                }
                dir_dirty = true;
                last_scanned = true;
                break;
            }
        }
        if segments.is_empty() {
            let base = state.log_start_offset.max(0);
            segments.insert(base, Segment::create(dir, base, &config, now_ms)?);
            dir_dirty = true;
        } else if !last_scanned {
            if let Some(active) = segments.values_mut().next_back() {
                // The next offset of a scanned segment is already exact; others derive it
                // from the next segment's base, so only the active one needs its tail read.
                active.next_offset = active.base_offset;
                stats.tail_bytes_scanned = active.load_tail()?;
            }
        }
        stats.segments = segments.len();
        // Only the active segment keeps its indexes in memory.
        let sealed = segments.len().saturating_sub(1);
        for seg in segments.values_mut().take(sealed) {
            seg.release_indexes()?;
        }

        let mut log = PartitionLog {
            dir: dir.to_path_buf(),
            config,
            segments,
            log_start_offset: 0,
            recovery_point: 0,
            last_flush_ms: now_ms,
            last_now_ms: now_ms,
            dir_dirty,
            stats,
            producers: ProducerStates::default(),
            aborted: Vec::new(),
            health: DirHealth::new(dir),
            failed: None,
            epochs: Default::default(),
            epochs_unsynced: false,
        };
        let leo = log.log_end_offset();
        let first = log.segments.keys().next().copied().unwrap_or(0);
        log.log_start_offset = state.log_start_offset.max(first).min(leo);
        log.load_txn_state(now_ms)?;
        log.load_epochs()?;
        // Whatever was scanned is made durable now, so all of the log is below the
        // recovery point.
        if log.stats.segments_recovered > 0 || log.dir_dirty {
            log.flush_at(now_ms)?;
        }
        log.recovery_point = leo;
        Ok(log)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// New settings (from a topic config change); they apply from the next append.
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    /// Shares the health of the log directory (the log manager's), so an I/O error here takes
    /// the whole directory offline and the directory's state is seen here.
    pub fn set_health(&mut self, health: SharedHealth) {
        self.health = health;
    }

    /// Takes this partition offline on its own (work on it panicked).
    pub fn mark_failed(&mut self, why: String) {
        log::error!(
            "{}: partition taken offline: {why}; restart the broker to recover it",
            self.dir.display()
        );
        self.failed = Some(why);
    }

    /// Whether writes are refused: the directory is offline or this partition failed.
    pub fn is_offline(&self) -> bool {
        self.failed.is_some() || self.health.is_offline()
    }

    pub(super) fn check_online(&self) -> Result<(), LogError> {
        if self.is_offline() {
            return Err(LogError::Offline);
        }
        Ok(())
    }

    /// An error from writing to this log: a full disk is only reported, anything else takes
    /// the directory offline.
    pub(super) fn write_failed(&self, what: &str, e: LogError) -> LogError {
        if let LogError::Io(err) = &e {
            let what = format!("{what} in {}", self.dir.display());
            self.health.on_write_error(&what, err);
        }
        e
    }

    /// The offset below which everything is known to be on disk: all of the log while the
    /// directory is healthy; after a failure only what was fsynced before it.
    pub fn safe_end_offset(&self) -> i64 {
        let leo = self.log_end_offset();
        if self.is_offline() {
            self.recovery_point.min(leo)
        } else {
            leo
        }
    }

    pub fn open_stats(&self) -> OpenStats {
        self.stats
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Base offsets of all segments, oldest first.
    pub fn segment_bases(&self) -> Vec<i64> {
        self.segments.keys().copied().collect()
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// The next offset to be assigned; also the high watermark on a single broker.
    pub fn log_end_offset(&self) -> i64 {
        self.segments
            .values()
            .next_back()
            .map_or(self.log_start_offset, |s| s.next_offset)
    }

    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    /// The last segment. `open_with` always leaves one and deletions keep one.
    fn active(&mut self) -> Result<&mut Segment, LogError> {
        self.segments
            .values_mut()
            .next_back()
            .ok_or_else(|| LogError::Corrupt("partition log without a segment".into()))
    }

    /// `topic-partition`, from the directory name (for messages).
    fn topic_partition_name(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Appends the batches of a Produce request. Everything is validated before anything is
    /// written, so a bad request appends nothing. Offsets, the leader epoch and (if configured)
    /// LogAppendTime are written into `batches` in place; records are never decoded.
    pub fn append(
        &mut self,
        batches: &mut [u8],
        now_ms: i64,
        leader_epoch: i32,
    ) -> Result<AppendInfo, LogError> {
        self.check_online()?;
        self.last_now_ms = now_ms;
        let mut headers = Vec::new();
        for item in batches_checked(batches) {
            let (h, bytes) = item?;
            if h.is_control() {
                return Err(LogError::InvalidBatch(format!(
                    "Clients are not allowed to write control records in topic partition {}",
                    self.topic_partition_name()
                )));
            }
            if h.producer_id >= 0
                && !h.is_transactional()
                && self.producers.has_open_txn(h.producer_id)
            {
                return Err(LogError::InvalidTxnState(format!(
                    "Expected transactional write from producer {} in partition {}",
                    h.producer_id,
                    self.topic_partition_name()
                )));
            }
            if bytes.len() > self.config.max_message_bytes {
                return Err(LogError::MessageTooLarge);
            }
            // Kafka's LogValidator: the offset range must match the record count.
            if h.record_count as i64 != h.last_offset_delta as i64 + 1 {
                return Err(LogError::Records(RecordsError::Corrupt(
                    "inconsistent batch offset range and record count",
                )));
            }
            let name = || self.topic_partition_name();
            super::validate::check_records(&h, bytes, &self.config, now_ms, &name)?;
            // A batch without a sequence (the coordinator's TxnOffsetCommit records) is checked
            // for its epoch only, as Kafka does for coordinator appends.
            if h.producer_id >= 0 && h.base_sequence < 0 && !h.is_control() {
                if !self.producers.check_marker(h.producer_id, h.producer_epoch) {
                    return Err(LogError::InvalidProducerEpoch(h.producer_id));
                }
            } else if h.producer_id >= 0 && !h.is_control() {
                let last_seq = h.base_sequence.wrapping_add(h.last_offset_delta);
                match self.producers.check(
                    h.producer_id,
                    h.producer_epoch,
                    h.base_sequence,
                    last_seq,
                ) {
                    SequenceCheck::Append => {}
                    // A retry of a batch already written: answer with its offsets, write nothing.
                    SequenceCheck::Duplicate(m) => return Ok(self.duplicate_info(m)),
                    SequenceCheck::StaleEpoch => {
                        return Err(LogError::InvalidProducerEpoch(h.producer_id))
                    }
                    SequenceCheck::OutOfOrder { expected, got } => {
                        return Err(LogError::OutOfOrderSequence {
                            producer_id: h.producer_id,
                            expected,
                            got,
                        })
                    }
                }
            }
            headers.push(h);
        }
        if batches.len() as u64 > self.config.segment_bytes {
            return Err(LogError::MessageTooLarge);
        }
        let base = self.log_end_offset();
        let log_append = self.config.timestamp_type == TimestampType::LogAppendTime;
        let mut next = base;
        let mut pos = 0;
        let mut max_timestamp = -1;
        for h in headers.iter_mut() {
            let len = h.total_len();
            let b = &mut batches[pos..pos + len];
            set_base_offset(b, next);
            set_partition_leader_epoch(b, leader_epoch);
            h.base_offset = next;
            h.partition_leader_epoch = leader_epoch;
            if log_append {
                set_log_append_time(b, now_ms);
                h.max_timestamp = now_ms;
                h.attributes |= 0x08;
            }
            max_timestamp = max_timestamp.max(h.max_timestamp);
            next = h.next_offset();
            pos += len;
        }
        let info = AppendInfo {
            base_offset: base,
            last_offset: next - 1,
            log_append_time: if log_append { now_ms } else { -1 },
            log_start_offset: self.log_start_offset,
            max_timestamp,
            record_count: next - base,
        };
        if headers.is_empty() {
            return Ok(info);
        }
        self.write_batches(batches, &headers, now_ms)?;
        for h in headers
            .iter()
            .filter(|h| h.producer_id >= 0 && !h.is_control())
        {
            let meta = BatchMeta {
                first_seq: h.base_sequence,
                last_seq: h.base_sequence.wrapping_add(h.last_offset_delta),
                first_offset: h.base_offset,
                last_offset: h.last_offset(),
                max_timestamp: h.max_timestamp,
            };
            let (pid, epoch, txn) = (h.producer_id, h.producer_epoch, h.is_transactional());
            if h.base_sequence < 0 {
                self.producers.update_unsequenced(pid, epoch, meta, txn);
            } else {
                self.producers.update_batch(pid, epoch, meta, txn);
            }
        }
        Ok(info)
    }

    /// Writes batches whose offsets are already assigned (rolling first if due).
    pub(super) fn write_batches(
        &mut self,
        batches: &[u8],
        headers: &[crate::records::BatchHeader],
        now_ms: i64,
    ) -> Result<(), LogError> {
        let Some(last) = headers.last() else {
            return Ok(());
        };
        let max_timestamp = headers.iter().map(|h| h.max_timestamp).max().unwrap_or(-1);
        let roll = self.segments.values().next_back().is_some_and(|seg| {
            seg.should_roll(
                &self.config,
                batches.len(),
                max_timestamp,
                last.last_offset(),
                now_ms,
            )
        });
        if roll {
            if let Err(e) = self.roll(now_ms) {
                return Err(self.write_failed("rolling a segment", e));
            }
        }
        if let Err(e) = self.active()?.append(batches, headers) {
            return Err(self.write_failed("appending", e.into()));
        }
        self.note_epochs(headers)
    }

    fn duplicate_info(&self, m: BatchMeta) -> AppendInfo {
        let log_append = self.config.timestamp_type == TimestampType::LogAppendTime;
        AppendInfo {
            base_offset: m.first_offset,
            last_offset: m.last_offset,
            log_append_time: if log_append { m.max_timestamp } else { -1 },
            log_start_offset: self.log_start_offset,
            max_timestamp: m.max_timestamp,
            record_count: 0,
        }
    }

    /// Closes the active segment and starts a new one at the log end offset.
    pub fn roll(&mut self, now_ms: i64) -> Result<(), LogError> {
        let leo = self.log_end_offset();
        if self.active()?.base_offset == leo {
            return Ok(());
        }
        // The new segment first: if it cannot be created (a full disk), the active one stays
        // active and open for appends.
        let seg = Segment::create(&self.dir, leo, &self.config, now_ms)?;
        self.active()?.seal()?;
        self.segments.insert(leo, seg);
        self.dir_dirty = true;
        // Producer state at the new segment's base, so a restart replays at most one segment.
        if let Err(e) = self.take_snapshot(false) {
            log::warn!("{}: producer snapshot at the roll: {e}", self.dir.display());
        }
        Ok(())
    }

    /// Appends to `out` whole batches starting with the one that holds `offset`, across
    /// segments, without passing `max_bytes` — except that with `min_one` the first batch is
    /// returned whatever its size.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        out: &mut Vec<u8>,
    ) -> Result<ReadInfo, LogError> {
        self.read_below(offset, max_bytes, min_one, out, self.safe_end_offset())
    }

    /// `read` for a read_committed consumer: nothing at or past the last stable offset.
    pub fn read_committed(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        out: &mut Vec<u8>,
    ) -> Result<ReadInfo, LogError> {
        self.read_below(offset, max_bytes, min_one, out, self.last_stable_offset())
    }

    /// Whole batches from `offset`, none starting at or past `upper` (at most the safe end).
    pub(crate) fn read_below(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        out: &mut Vec<u8>,
        upper: i64,
    ) -> Result<ReadInfo, LogError> {
        let leo = self.log_end_offset();
        if offset < self.log_start_offset || offset > leo {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                start: self.log_start_offset,
                end: leo,
            });
        }
        // Offline, only what reached the disk before the failure is served.
        let safe_end = self.safe_end_offset();
        if offset >= safe_end && self.is_offline() {
            return Err(LogError::Offline);
        }
        let upper = upper.min(safe_end);
        let mut info = ReadInfo {
            bytes: 0,
            high_watermark: safe_end,
            log_start_offset: self.log_start_offset,
        };
        if offset >= upper {
            return Ok(info);
        }
        let old = out.len();
        match self.read_batches(offset, max_bytes, min_one, out, &mut info) {
            Ok(()) => {}
            Err(LogError::Io(e)) => {
                out.truncate(old);
                let what = format!("reading {}", self.dir.display());
                self.health.fail(&what, &e);
                return Err(LogError::Io(e));
            }
            Err(e) => {
                out.truncate(old);
                return Err(e);
            }
        }
        if upper < leo {
            let kept = crate::records::batches(&out[old..])
                .filter_map(Result::ok)
                .take_while(|(h, _)| h.base_offset < upper)
                .map(|(h, _)| h.total_len())
                .sum::<usize>();
            out.truncate(old + kept);
            info.bytes = kept;
        }
        Ok(info)
    }

    fn read_batches(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        out: &mut Vec<u8>,
        info: &mut ReadInfo,
    ) -> Result<(), LogError> {
        let first = self
            .segments
            .range(..=offset)
            .next_back()
            .map_or(i64::MIN, |(b, _)| *b);
        let mut first_segment = true;
        for seg in self.segments.range(first..).map(|(_, s)| s) {
            let pos = if first_segment {
                first_segment = false;
                match seg.find_position(offset)? {
                    Some(p) => p,
                    // Past this segment's last batch (a gap): continue with the next one.
                    None => continue,
                }
            } else {
                0
            };
            let budget = max_bytes.saturating_sub(info.bytes);
            let (n, at_end) = seg.read_into(pos, budget, min_one && info.bytes == 0, out)?;
            info.bytes += n;
            if !at_end {
                break;
            }
        }
        Ok(())
    }

    /// `(offset, timestamp)` of the first record with timestamp `>= ts` (ListOffsets).
    pub fn offset_for_timestamp(&self, ts: i64) -> Option<(i64, i64)> {
        for seg in self.segments.values() {
            if seg.max_timestamp < ts || seg.size == 0 {
                continue;
            }
            match seg.find_timestamp(ts, self.log_start_offset) {
                Ok(Some(found)) => return Some(found),
                Ok(None) => {}
                Err(e) => {
                    log::warn!("{}: timestamp search: {}", self.dir.display(), e);
                    return None;
                }
            }
        }
        None
    }

    /// `(timestamp, offset)` of the first record with the largest timestamp.
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        let max = self
            .segments
            .values()
            .filter(|s| s.size > 0)
            .map(|s| s.max_timestamp)
            .max()?;
        if max < 0 {
            return None;
        }
        self.offset_for_timestamp(max).map(|(o, t)| (t, o))
    }

    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size).sum()
    }

    /// Messages appended since the last flush.
    pub fn unflushed_messages(&self) -> u64 {
        (self.log_end_offset() - self.recovery_point).max(0) as u64
    }

    /// `flush.messages` or `flush.ms` says it is time to fsync.
    pub fn needs_flush(&self, now_ms: i64) -> bool {
        let n = self.unflushed_messages();
        n > 0
            && !self.is_offline()
            && (n >= self.config.flush_messages
                || now_ms.saturating_sub(self.last_flush_ms) >= self.config.flush_ms)
    }

    /// fdatasync everything written since the last flush; advances the recovery point.
    pub fn flush(&mut self) -> Result<(), LogError> {
        self.flush_at(self.last_now_ms)
    }

    /// `flush` that also records `now_ms` as the time of the flush (for `flush.ms`).
    ///
    /// A failed fsync takes the directory offline: it is never retried, because the kernel may
    /// have dropped the pages it could not write and a second fsync would then "succeed". The
    /// recovery point stays where the last good fsync left it.
    pub fn flush_at(&mut self, now_ms: i64) -> Result<(), LogError> {
        self.check_online()?;
        let leo = self.log_end_offset();
        if let Err(e) = self.sync_all_dirty() {
            let what = format!("fsync in {}", self.dir.display());
            self.health.fail(&what, &e);
            return Err(e.into());
        }
        self.recovery_point = leo;
        self.last_flush_ms = now_ms;
        Ok(())
    }

    fn sync_all_dirty(&mut self) -> std::io::Result<()> {
        for seg in self.segments.values_mut() {
            if seg.is_dirty() {
                seg.sync()?;
            }
        }
        self.sync_epochs()?;
        if self.dir_dirty {
            super::faults::sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        Ok(())
    }

    /// Kafka's `deleteOldSegments`: drops whole segments, oldest first, while they are older
    /// than `retention.ms` (by their largest timestamp) or the log is above `retention.bytes`.
    /// The active segment goes too (after a roll) when everything has expired. Returns the
    /// number of segments deleted.
    pub fn enforce_retention(&mut self, now_ms: i64) -> Result<usize, LogError> {
        if !self.config.cleanup_policy_delete || self.is_offline() {
            return Ok(0);
        }
        let cfg = self.config.clone();
        let mut excess = if cfg.retention_bytes >= 0 {
            self.size_bytes() as i64 - cfg.retention_bytes
        } else {
            0
        };
        let mut doomed = Vec::new();
        let active = self.segments.keys().next_back().copied();
        let mut empties = Vec::new();
        for (&base, seg) in &self.segments {
            if seg.size == 0 {
                if Some(base) == active {
                    break;
                }
                // An empty sealed segment (compaction can leave one) holds nothing: it goes
                // with the expired segments after it.
                empties.push(base);
                continue;
            }
            let expired = cfg.retention_ms >= 0
                && seg.max_timestamp >= 0
                && now_ms.saturating_sub(seg.max_timestamp) > cfg.retention_ms;
            let oversize = excess - seg.size as i64 >= 0;
            if !(expired || oversize) {
                break;
            }
            excess -= seg.size as i64;
            doomed.append(&mut empties);
            doomed.push(base);
        }
        if doomed.is_empty() {
            return Ok(0);
        }
        if doomed.len() == self.segments.len() {
            self.roll(now_ms)
                .map_err(|e| self.write_failed("rolling a segment", e))?;
        }
        self.delete_segments(&doomed)
            .map_err(|e| self.write_failed("deleting segments", e))?;
        self.prune_txn_state();
        self.trim_epochs_to_start()?;
        Ok(doomed.len())
    }

    /// DeleteRecords: moves the log start offset up to `offset` (at most the log end) and
    /// deletes the segments wholly below it. Returns the new log start offset.
    pub fn delete_records_before(&mut self, offset: i64, now_ms: i64) -> Result<i64, LogError> {
        self.check_online()?;
        let leo = self.log_end_offset();
        if offset < 0 || offset > leo {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                start: self.log_start_offset,
                end: leo,
            });
        }
        if offset <= self.log_start_offset {
            return Ok(self.log_start_offset);
        }
        self.log_start_offset = offset;
        let bases = self.segment_bases();
        let mut doomed = Vec::new();
        for (i, &b) in bases.iter().enumerate() {
            let next = bases.get(i + 1).copied().unwrap_or(leo);
            if next <= offset && (i + 1 < bases.len() || leo > b) {
                doomed.push(b);
            }
        }
        if doomed.len() == bases.len() {
            self.roll(now_ms)
                .map_err(|e| self.write_failed("rolling a segment", e))?;
        }
        self.delete_segments(&doomed)
            .map_err(|e| self.write_failed("deleting segments", e))?;
        self.prune_txn_state();
        self.trim_epochs_to_start()?;
        Ok(self.log_start_offset)
    }

    /// Truncates the log to end at `target`, or at the start of the batch holding it: a
    /// follower's tail that diverged from its leader (KIP-101), found with
    /// OffsetForLeaderEpoch. Producer state, transaction indexes and leader epochs are rebuilt
    /// for what is left, and the result is fsynced. Below the log start, the log is emptied and
    /// starts at `target` (Kafka's `truncateFullyAndStartAt`). Returns the new log end offset.
    pub fn truncate_to(&mut self, target: i64, now_ms: i64) -> Result<i64, LogError> {
        self.check_online()?;
        let leo = self.log_end_offset();
        if target >= leo {
            return Ok(leo);
        }
        self.cut(target.max(0), leo, now_ms)
    }

    /// Empties the log and starts it at `offset`, wherever its end was (a Raft snapshot
    /// installed, Kafka's `truncateFullyAndStartAt`).
    pub fn truncate_fully_and_start_at(
        &mut self,
        offset: i64,
        now_ms: i64,
    ) -> Result<(), LogError> {
        self.check_online()?;
        let leo = self.log_end_offset();
        self.log_start_offset = self.log_start_offset.max(offset.max(0));
        self.cut(offset.max(0), leo, now_ms).map(|_| ())
    }

    fn cut(&mut self, target: i64, leo: i64, now_ms: i64) -> Result<i64, LogError> {
        let bases = self.segment_bases();
        let result = (|| -> Result<(), LogError> {
            if target <= self.log_start_offset {
                let fresh = Segment::create(&self.dir, target, &self.config, now_ms)?;
                for b in bases.iter().filter(|&&b| b != target) {
                    if let Some(seg) = self.segments.remove(b) {
                        seg.delete_files()?;
                    }
                }
                self.segments.insert(target, fresh);
                self.log_start_offset = target;
            } else {
                // Segments wholly past the target go; the one holding it is cut.
                for b in bases.iter().filter(|&&b| b >= target) {
                    if let Some(seg) = self.segments.remove(b) {
                        seg.delete_files()?;
                    }
                }
                if let Some(seg) = self.segments.values_mut().next_back() {
                    seg.truncate_to(target)?;
                }
            }
            Ok(())
        })();
        self.dir_dirty = true;
        if let Err(e) = result {
            return Err(self.write_failed("truncating", e));
        }
        let end = self.log_end_offset();
        log::info!(
            "{}: truncated from {leo} to {end} (asked {target})",
            self.dir.display()
        );
        self.recovery_point = self.recovery_point.min(end);
        self.epochs.truncate_from_end(end);
        self.epochs.truncate_from_start(self.log_start_offset);
        self.write_epochs()?;
        self.load_txn_state(now_ms)?;
        self.flush_at(now_ms)?;
        Ok(end)
    }

    fn delete_segments(&mut self, bases: &[i64]) -> Result<(), LogError> {
        for b in bases {
            if self.segments.len() <= 1 {
                break;
            }
            if let Some(seg) = self.segments.remove(b) {
                seg.delete_files()?;
                self.dir_dirty = true;
            }
        }
        if let Some(&first) = self.segments.keys().next() {
            self.log_start_offset = self.log_start_offset.max(first);
        }
        Ok(())
    }

    /// Flush, write the active segment's final time index entry and trim the indexes.
    /// An offline log is left as it is: recovery at the next start finds the truth on disk.
    pub fn close(&mut self) -> Result<(), LogError> {
        self.check_online()?;
        if let Err(e) = self.active()?.seal() {
            return Err(self.write_failed("sealing the active segment", e.into()));
        }
        self.take_snapshot(true)?;
        self.flush()
    }

    /// Forgets producers idle past `producer.id.expiration.ms` (none with an open transaction).
    pub fn expire_producers(&mut self, now_ms: i64) -> usize {
        self.producers
            .expire(now_ms, self.config.producer_id_expiration_ms)
    }
}
