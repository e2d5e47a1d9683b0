//! The transactional side of a partition log: transaction markers, the last stable offset, the
//! aborted transactions a read_committed fetch needs, and producer state that survives a
//! restart (Kafka's `.snapshot` files plus a replay of the log after the snapshot).

use super::partition::PartitionLog;
use super::producer_state::{decode_snapshot, encode_snapshot, BatchMeta, ProducerStates};
use super::segment::{file_name, parse_file_name};
use super::txn_index::{self, AbortedTxn};
use super::{faults, LogError};
use crate::records::{BatchBuilder, BatchHeader};
use std::fs;
use std::path::PathBuf;

/// Snapshots kept per partition (older ones are deleted when a new one is written).
const SNAPSHOTS_KEPT: usize = 2;
/// At a clean shutdown the snapshot is taken early enough for every producer's retained batches
/// to be replayed at the next start, but never more than this much of the log before its end:
/// start-up stays fast with thousands of producers.
const MAX_REPLAY_BYTES: u64 = 16 << 20;

impl PartitionLog {
    /// The last stable offset: the first offset of the oldest open transaction, or the high
    /// watermark. read_committed consumers read below it.
    pub fn last_stable_offset(&self) -> i64 {
        let hw = self.safe_end_offset();
        self.producers
            .first_unstable_offset()
            .map_or(hw, |o| o.min(hw))
    }

    /// The aborted transactions a read of `[from, to)` must report: those whose data may lie
    /// in the range (Kafka's `collectAbortedTxns`), as (producer id, first offset).
    pub fn aborted_between(&self, from: i64, to: i64) -> Vec<(i64, i64)> {
        let start = self.aborted.partition_point(|a| a.last_offset < from);
        self.aborted[start..]
            .iter()
            .filter(|a| a.first_offset < to)
            .map(|a| (a.producer_id, a.first_offset))
            .collect()
    }

    /// The producer state (DescribeProducers).
    pub fn producer_states(&self) -> &ProducerStates {
        &self.producers
    }

    /// Appends batches whose offsets and leader epochs a leader already assigned (a follower's
    /// fetch, a Raft entry), as they are: checked (CRC, offsets following the log end), never
    /// rewritten; control batches included. Producer state, aborted transactions and leader
    /// epochs follow what was appended, as they do in recovery. Returns the new log end.
    pub fn append_as_follower(&mut self, batches: &[u8], now_ms: i64) -> Result<i64, LogError> {
        self.check_online()?;
        let mut headers = Vec::new();
        let mut next = self.log_end_offset();
        for item in crate::records::batches_checked(batches) {
            let (h, _) = item?;
            if h.base_offset != next {
                return Err(LogError::InvalidBatch(format!(
                    "a batch at offset {} does not follow the log end {next}",
                    h.base_offset
                )));
            }
            next = h.next_offset();
            headers.push(h);
        }
        self.write_batches(batches, &headers, now_ms)?;
        let mut pos = 0;
        for h in &headers {
            let len = h.total_len();
            let marker = h
                .is_control()
                .then(|| super::segment::marker_type(&batches[pos..pos + len]))
                .flatten();
            let mut aborted = Vec::new();
            replay_batch(&mut self.producers, h, marker, &mut aborted);
            for entry in aborted {
                self.record_aborted(entry)?;
            }
            pos += len;
        }
        Ok(next)
    }

    /// Writes a transaction marker (a control batch: COMMIT or ABORT) for `producer_id` and
    /// closes its transaction here. Returns the marker's offset.
    pub fn append_marker(
        &mut self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        now_ms: i64,
    ) -> Result<i64, LogError> {
        self.check_online()?;
        if !self.producers.check_marker(producer_id, epoch) {
            return Err(LogError::InvalidProducerEpoch(producer_id));
        }
        let mut b = BatchBuilder::new(0, now_ms)
            .producer(producer_id, epoch, -1)
            .transactional(true)
            .control(true);
        b.push(
            None,
            now_ms,
            Some(&crate::txn::log::marker_key(commit)),
            Some(&crate::txn::log::marker_value(coordinator_epoch)),
            &[],
        );
        let mut batch = b.finish();
        let offset = self.log_end_offset();
        crate::records::set_base_offset(&mut batch, offset);
        // The epoch of the leader's latest write (a new leader records its epoch first).
        let leader_epoch = self.epochs.latest_epoch().unwrap_or(0);
        crate::records::set_partition_leader_epoch(&mut batch, leader_epoch);
        let h = BatchHeader::parse(&batch)?;
        self.write_batches(&batch, &[h], now_ms)?;
        if let Some(done) = self.producers.complete_txn(
            producer_id,
            epoch,
            offset,
            commit,
            coordinator_epoch,
            now_ms,
        ) {
            if done.aborted {
                self.record_aborted(AbortedTxn {
                    producer_id,
                    first_offset: done.first_offset,
                    last_offset: offset,
                    last_stable_offset: done.last_stable_offset,
                })?;
            }
        }
        Ok(offset)
    }

    /// An aborted transaction: in the active segment's `.txnindex` and in memory.
    fn record_aborted(&mut self, entry: AbortedTxn) -> Result<(), LogError> {
        let path = self.active_txn_index_path()?;
        if let Err(e) = txn_index::append(&path, &entry) {
            // The index is rebuilt from the log at the next start; a full disk only costs
            // that rebuild.
            if !super::health::is_disk_full(&e) {
                return Err(self.write_failed("writing the transaction index", e.into()));
            }
            log::warn!("{}: {e}", path.display());
        }
        self.aborted.push(entry);
        Ok(())
    }

    fn active_txn_index_path(&self) -> Result<PathBuf, LogError> {
        self.segments
            .values()
            .next_back()
            .map(|s| s.txn_index_path())
            .ok_or_else(|| LogError::Corrupt("partition log without a segment".into()))
    }

    fn snapshot_path(&self, offset: i64) -> PathBuf {
        self.dir.join(file_name(offset, "snapshot"))
    }

    /// Offsets of the snapshot files present, oldest first.
    fn snapshot_offsets(&self) -> Vec<i64> {
        let mut v: Vec<i64> = fs::read_dir(&self.dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter_map(|e| parse_file_name(e.file_name().to_str()?, "snapshot"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort_unstable();
        v
    }

    /// Writes the producer state as a snapshot. At a roll it is the state at the new segment's
    /// base; at a clean shutdown the state as of the oldest batch any producer still retains
    /// (within the active segment), so that after the restart a replay of the few batches
    /// since rebuilds every producer's last five batches, and a retry is still recognised.
    pub(super) fn take_snapshot(&mut self, closing: bool) -> Result<(), LogError> {
        let leo = self.log_end_offset();
        let active_base = self.segments.keys().next_back().copied().unwrap_or(leo);
        let (offset, state) = if closing {
            let bound = self
                .segments
                .values()
                .next_back()
                .and_then(|s| s.offset_within_tail(MAX_REPLAY_BYTES))
                .unwrap_or(active_base);
            let at = self
                .producers
                .earliest_retained_offset()
                .unwrap_or(leo)
                .clamp(active_base.max(bound), leo);
            (at, self.producers.as_of(at))
        } else {
            (leo, self.producers.clone())
        };
        let path = self.snapshot_path(offset);
        let bytes = encode_snapshot(&state);
        let written = (|| {
            faults::check(&path, faults::Op::Create)?;
            let f = fs::File::create(&path)?;
            faults::write_all(&f, &path, &bytes)?;
            faults::sync_data(&f, &path)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&path);
            return Err(self.write_failed("writing a producer snapshot", e.into()));
        }
        self.dir_dirty = true;
        let offsets = self.snapshot_offsets();
        let keep_from = offsets.len().saturating_sub(SNAPSHOTS_KEPT);
        for &o in offsets[..keep_from].iter().filter(|&&o| o != offset) {
            let _ = fs::remove_file(self.snapshot_path(o));
        }
        Ok(())
    }

    /// Drops what retention or DeleteRecords removed: aborted transactions whose markers were
    /// in deleted segments, snapshots below the log start (the newest is always kept).
    pub(super) fn prune_txn_state(&mut self) {
        let first = self.segments.keys().next().copied().unwrap_or(0);
        self.aborted.retain(|a| a.last_offset >= first);
        let offsets = self.snapshot_offsets();
        for &o in offsets.iter().rev().skip(1) {
            if o < first {
                let _ = fs::remove_file(self.snapshot_path(o));
            }
        }
    }

    /// At open: the aborted transactions from the segments' `.txnindex` files, and the producer
    /// state from the newest usable snapshot plus a replay of the log after it (which also
    /// rebuilds index entries a crash lost). Kafka's `LogLoader` + `ProducerStateManager`.
    pub(super) fn load_txn_state(&mut self, now_ms: i64) -> Result<(), LogError> {
        let leo = self.log_end_offset();
        let first = self.segments.keys().next().copied().unwrap_or(0);
        let mut from = first;
        let mut state = ProducerStates::default();
        let mut chosen = false;
        for o in self.snapshot_offsets().into_iter().rev() {
            let path = self.snapshot_path(o);
            // Past the end (the log was cut in recovery) or before the log start: unusable.
            let loaded = if o > leo || o < first {
                None
            } else {
                fs::read(&path).ok().and_then(|b| decode_snapshot(&b))
            };
            match loaded {
                Some(s) if !chosen => {
                    state = s;
                    from = o;
                    chosen = true;
                }
                Some(_) => {}
                None => {
                    log::warn!("{}: dropping producer snapshot {o}", self.dir.display());
                    let _ = fs::remove_file(&path);
                    self.dir_dirty = true;
                }
            }
        }
        let mut aborted = Vec::new();
        for seg in self.segments.values() {
            aborted.extend(txn_index::load(&seg.txn_index_path())?);
        }
        aborted.retain(|a| a.last_offset < from);
        // Replay what the snapshot does not cover.
        let mut rebuilt = Vec::new();
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        let start_seg = bases.iter().rposition(|&b| b <= from).unwrap_or(0);
        for &base in &bases[start_seg..] {
            let seg = &self.segments[&base];
            let mut entries_here = Vec::new();
            seg.replay_from(from.max(base), |h, marker| {
                replay_batch(&mut state, h, marker, &mut entries_here)
            })?;
            rebuilt.push((seg.txn_index_path(), entries_here));
        }
        for (path, entries) in rebuilt {
            let mut all: Vec<AbortedTxn> = txn_index::load(&path)?
                .into_iter()
                .filter(|a| a.last_offset < from)
                .collect();
            let before = all.len();
            all.extend(entries.iter().copied());
            aborted.extend(entries);
            if all.len() != before || path.exists() {
                if let Err(e) = txn_index::rewrite(&path, &all) {
                    return Err(LogError::Io(e));
                }
            }
        }
        aborted.sort_by_key(|a| a.last_offset);
        self.aborted = aborted;
        state.expire(now_ms, self.config.producer_id_expiration_ms);
        self.producers = state;
        Ok(())
    }
}

/// One batch of the replay into the producer state.
fn replay_batch(
    state: &mut ProducerStates,
    h: &BatchHeader,
    marker: Option<bool>,
    aborted: &mut Vec<AbortedTxn>,
) {
    if h.producer_id < 0 {
        return;
    }
    if h.is_control() {
        let Some(commit) = marker else { return };
        let done = state.complete_txn(
            h.producer_id,
            h.producer_epoch,
            h.base_offset,
            commit,
            0,
            h.max_timestamp,
        );
        if let Some(d) = done.filter(|d| d.aborted) {
            aborted.push(AbortedTxn {
                producer_id: d.producer_id,
                first_offset: d.first_offset,
                last_offset: d.last_offset,
                last_stable_offset: d.last_stable_offset,
            });
        }
        return;
    }
    let meta = BatchMeta {
        first_seq: h.base_sequence,
        last_seq: h.base_sequence.wrapping_add(h.last_offset_delta),
        first_offset: h.base_offset,
        last_offset: h.last_offset(),
        max_timestamp: h.max_timestamp,
    };
    if h.base_sequence < 0 {
        state.update_unsequenced(h.producer_id, h.producer_epoch, meta, h.is_transactional());
    } else {
        state.update_batch(h.producer_id, h.producer_epoch, meta, h.is_transactional());
    }
}
