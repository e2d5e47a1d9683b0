//! Log compaction (`cleanup.policy=compact`), Kafka's `LogCleaner` / `Cleaner` /
//! `LogCleanerManager` as a resumable state machine: each `LogManager::clean_step` call reads and
//! writes about `budget_bytes`, then returns, so the broker loop stays responsive.
//!
//! A job cleans one partition: (1) map every key of the dirty section (from the partition's
//! `cleaner-offset-checkpoint` offset up to the first uncleanable segment) to its latest offset;
//! (2) rewrite the cleanable segments in groups (each group below `segment.bytes`) keeping, per
//! key, only the latest record, and tombstones until `delete.retention.ms` has passed; (3) swap
//! each group's output into place by rename. Offsets are preserved; the active segment is never
//! touched. Output goes to `<base>.log.cleaned` (+ indexes), is renamed to `.swap`, the old
//! segments are renamed to `.deleted` (unlinked by later calls) and the `.swap` files renamed
//! into place; `recover_leftovers` finishes or
//! discards that at open, so a crash at any point loses nothing.

use super::manager::{read_checkpoint, write_checkpoint, LogManager};
use super::partition::PartitionLog;
use super::scan::{Scanner, Step};
use super::segment::{file_name, parse_file_name, Segment};
use super::LogError;
use crate::records::{
    batches, iter_records, records_payload, BatchBuilder, BatchHeader, Compression, Record,
    DEFAULT_DECOMPRESS_CAP,
};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

pub const CLEANER_OFFSET_CHECKPOINT: &str = "cleaner-offset-checkpoint";
const CLEANED: &str = ".cleaned";
/// Replaced segment files waiting to be unlinked (Kafka's suffix for async deletes).
const DELETED: &str = ".deleted";
/// Largest single read (a huge budget must not read a whole segment into memory).
const MAX_CHUNK: usize = 1 << 20;
/// A partition whose cleaning failed is left alone this long (Kafka marks it uncleanable).
const FAILURE_BACKOFF_MS: i64 = 5 * 60 * 1000;
/// Replaced files unlinked per call.
const UNLINKS_PER_CALL: usize = 3;
/// A replaced segment is shrunk by this much per call before it is unlinked: freeing 100 MB of
/// blocks in one unlink stalls the loop for several milliseconds.
const SHRINK_PER_CALL: u64 = 16 << 20;
const SWAP: &str = ".swap";
/// Memory for the key → offset map (Kafka's `log.cleaner.dedupe.buffer.size`).
const MAP_MEMORY: usize = 128 << 20;
/// Assumed per-entry cost on top of the key bytes (hash slot, Vec header, offset).
const ENTRY_OVERHEAD: usize = 48;
/// Cleaned output is fsynced every this many bytes.
const SYNC_EVERY: usize = 4 << 20;
const SEGMENT_EXTS: [&str; 3] = ["index", "timeindex", "log"];

/// What one `clean_step` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CleanProgress {
    /// Bytes read plus bytes written.
    pub bytes_processed: u64,
    /// Cleaned segment groups swapped into place.
    pub segments_swapped: usize,
    /// Nothing to clean: no job was running or could be started.
    pub idle: bool,
}

/// The cleaner's state between calls (owned by `LogManager`).
pub(super) struct Cleaner {
    /// First dirty offset per partition (`cleaner-offset-checkpoint`).
    checkpoint: HashMap<(String, i32), i64>,
    /// When a retained tombstone may go (in memory: after a restart tombstones wait for the
    /// next cleaning that dirt triggers).
    tombstones_due: HashMap<(String, i32), i64>,
    job: Option<Job>,
    map_memory: usize,
    /// Replaced segment files still to unlink.
    trash: Vec<PathBuf>,
    /// Partitions whose last cleaning failed, and until when they are skipped.
    failed_until: HashMap<(String, i32), i64>,
}

#[derive(Clone, Copy, Debug)]
struct SegInfo {
    base: i64,
    size: u64,
    next_offset: i64,
    max_timestamp: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Map,
    Clean,
}

struct Job {
    topic: String,
    partition: i32,
    /// The dirty section is `[first_dirty, end)`; everything below `end` is rewritten.
    first_dirty: i64,
    end: i64,
    /// The sealed segments below `end` when the job started, oldest first.
    segs: Vec<SegInfo>,
    groups: Vec<Range<usize>>,
    phase: Phase,
    seg_idx: usize,
    group_idx: usize,
    pos: u64,
    map: HashMap<Vec<u8>, i64>,
    map_bytes: usize,
    out: Option<Segment>,
    /// Bytes appended to `out` since its last fsync.
    unsynced: usize,
    stage: Stage,
    /// The partition directory (for removing output once `out` is closed).
    dir: PathBuf,
    tombstone_due: Option<i64>,
    buf: Vec<u8>,
    /// Aborted transactions of the partition when the job started: producer id -> offset
    /// ranges. Their records are neither mapped nor kept (Kafka's cleaner drops aborted data);
    /// markers are kept.
    aborted: HashMap<i64, Vec<(i64, i64)>>,
}

impl Job {
    /// Whether a batch belongs to an aborted transaction.
    fn is_aborted(&self, h: &BatchHeader) -> bool {
        h.is_transactional()
            && !h.is_control()
            && self.aborted.get(&h.producer_id).is_some_and(|ranges| {
                ranges
                    .iter()
                    .any(|&(first, last)| (first..=last).contains(&h.base_offset))
            })
    }
}

impl Cleaner {
    pub(super) fn load(log_dir: &Path) -> Cleaner {
        let path = log_dir.join(CLEANER_OFFSET_CHECKPOINT);
        let checkpoint = read_checkpoint(&path).unwrap_or_else(|e| {
            log::warn!("ignoring {}: {}", path.display(), e);
            HashMap::new()
        });
        Cleaner {
            checkpoint,
            tombstones_due: HashMap::new(),
            job: None,
            map_memory: MAP_MEMORY,
            trash: Vec::new(),
            failed_until: HashMap::new(),
        }
    }

    /// Drops all state for a deleted partition (its files are gone with its directory).
    pub(super) fn forget(&mut self, log_dir: &Path, topic: &str, partition: i32) {
        if self
            .job
            .as_ref()
            .is_some_and(|j| j.topic == topic && j.partition == partition)
        {
            self.job = None;
        }
        let key = (topic.to_string(), partition);
        self.tombstones_due.remove(&key);
        if self.checkpoint.remove(&key).is_some() {
            if let Err(e) = self.write(log_dir) {
                log::warn!("{CLEANER_OFFSET_CHECKPOINT}: {e}");
            }
        }
    }

    /// Abandons the running job and removes its unfinished output and replaced files (clean
    /// shutdown).
    pub(super) fn stop(&mut self) {
        if let Some(job) = self.job.take() {
            abort(job);
        }
        for p in self.trash.drain(..) {
            if let Err(e) = remove_if_present(&p) {
                log::warn!("removing {}: {}", p.display(), e);
            }
        }
    }

    /// Where each partition has been cleaned up to.
    pub(super) fn cleaned_up_to(&self, topic: &str, partition: i32) -> Option<i64> {
        self.checkpoint
            .get(&(topic.to_string(), partition))
            .copied()
    }

    #[cfg(test)]
    pub(super) fn set_map_memory(&mut self, bytes: usize) {
        self.map_memory = bytes;
    }

    fn write(&self, log_dir: &Path) -> io::Result<()> {
        let mut entries: Vec<_> = self
            .checkpoint
            .iter()
            .map(|((t, p), o)| (t.clone(), *p, *o))
            .collect();
        entries.sort();
        write_checkpoint(&log_dir.join(CLEANER_OFFSET_CHECKPOINT), &entries)
    }

    /// Kafka's `grabFilthiestCompactedLog`: the compacted partition with the highest dirty
    /// ratio at or above its `min.cleanable.dirty.ratio`, or one whose retained tombstones are due.
    fn pick(&self, logs: &HashMap<String, HashMap<i32, PartitionLog>>, now_ms: i64) -> Option<Job> {
        let mut best: Option<(f64, Job)> = None;
        for (topic, ps) in logs {
            for (&p, log) in ps {
                if !log.config.cleanup_policy_compact || log.is_offline() {
                    continue;
                }
                let key = (topic.clone(), p);
                if self.failed_until.get(&key).is_some_and(|&t| now_ms < t) {
                    continue;
                }
                let (segs, end) = cleanable_segments(log, now_ms);
                if segs.is_empty() {
                    continue;
                }
                let first_dirty = self
                    .checkpoint
                    .get(&key)
                    .copied()
                    .unwrap_or(0)
                    .max(segs[0].base)
                    .min(end);
                let dirty: u64 = segs
                    .iter()
                    .filter(|s| s.base >= first_dirty)
                    .map(|s| s.size)
                    .sum();
                let total: u64 = segs.iter().map(|s| s.size).sum();
                let ratio = if total == 0 {
                    0.0
                } else {
                    dirty as f64 / total as f64
                };
                let due = self.tombstones_due.get(&key).is_some_and(|&d| now_ms >= d);
                let eligible = (dirty > 0 && ratio >= log.config.min_cleanable_dirty_ratio) || due;
                if !eligible || best.as_ref().is_some_and(|(r, _)| *r >= ratio) {
                    continue;
                }
                let seg_idx = segs.iter().take_while(|s| s.base < first_dirty).count();
                best = Some((
                    ratio,
                    Job {
                        topic: topic.clone(),
                        partition: p,
                        first_dirty,
                        end,
                        segs,
                        groups: Vec::new(),
                        phase: Phase::Map,
                        seg_idx,
                        group_idx: 0,
                        pos: 0,
                        map: HashMap::new(),
                        map_bytes: 0,
                        out: None,
                        unsynced: 0,
                        stage: Stage::Writing,
                        dir: log.dir.clone(),
                        tombstone_due: None,
                        buf: Vec::new(),
                        aborted: aborted_ranges(log),
                    },
                ));
            }
        }
        best.map(|(_, j)| j)
    }
}

/// The sealed segments that may be cleaned and the offset where cleaning must stop: the
/// active segment, or the first segment with a record newer than `min.compaction.lag.ms`.
fn cleanable_segments(log: &PartitionLog, now_ms: i64) -> (Vec<SegInfo>, i64) {
    let lag = log.config.min_compaction_lag_ms;
    let sealed = log.segments.len().saturating_sub(1);
    let mut out = Vec::new();
    let mut end = log.segments.keys().next_back().copied().unwrap_or(0);
    // Never past an open transaction: its records may still be aborted (Kafka stops at the
    // first unstable offset).
    let unstable = log.producers.first_unstable_offset().unwrap_or(i64::MAX);
    for seg in log.segments.values().take(sealed) {
        let too_new =
            lag > 0 && seg.max_timestamp >= 0 && now_ms.saturating_sub(seg.max_timestamp) < lag;
        if too_new || seg.next_offset > unstable {
            end = seg.base_offset;
            break;
        }
        out.push(SegInfo {
            base: seg.base_offset,
            size: seg.size,
            next_offset: seg.next_offset,
            max_timestamp: seg.max_timestamp,
        });
    }
    (out, end)
}

/// The partition's aborted transactions as producer id -> [(first offset, marker offset)].
fn aborted_ranges(log: &PartitionLog) -> HashMap<i64, Vec<(i64, i64)>> {
    let mut out: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
    for a in &log.aborted {
        out.entry(a.producer_id)
            .or_default()
            .push((a.first_offset, a.last_offset));
    }
    out
}

/// Kafka's `groupSegmentsBySize`: consecutive segments whose total stays within `max_bytes`
/// and whose offsets stay indexable from the first one's base.
fn group_segments(segs: &[SegInfo], max_bytes: u64) -> Vec<Range<usize>> {
    let mut groups = Vec::new();
    let mut i = 0;
    while i < segs.len() {
        let start = i;
        let mut size = segs[i].size;
        i += 1;
        while i < segs.len()
            && size + segs[i].size <= max_bytes
            && segs[i].next_offset - segs[start].base <= i32::MAX as i64
        {
            size += segs[i].size;
            i += 1;
        }
        groups.push(start..i);
    }
    groups
}

impl LogManager {
    /// Does at most about `budget_bytes` of compaction work (reading plus writing; one batch
    /// may go over) and returns. Call on every timer tick.
    pub fn clean_step(&mut self, now_ms: i64, budget_bytes: usize) -> CleanProgress {
        let mut progress = CleanProgress::default();
        if self.health.is_offline() {
            progress.idle = true;
            return progress;
        }
        let LogManager {
            dir,
            logs,
            cleaner,
            health,
            ..
        } = self;
        discard_trash(&mut cleaner.trash);
        if cleaner.job.is_none() {
            match cleaner.pick(logs, now_ms) {
                Some(job) => cleaner.job = Some(job),
                None => {
                    progress.idle = cleaner.trash.is_empty();
                    return progress;
                }
            }
        }
        let what = match &cleaner.job {
            Some(j) => format!("cleaning {}-{}", j.topic, j.partition),
            None => "cleaning".to_string(),
        };
        let result = crate::contain::contain(&what, || {
            run(
                cleaner,
                logs,
                dir,
                now_ms,
                budget_bytes.max(1),
                &mut progress,
            )
        });
        let (e, backoff) = match result {
            Ok(Ok(())) => return progress,
            Ok(Err(e)) => (e, FAILURE_BACKOFF_MS),
            // A bug: this partition is not cleaned again until a restart (Kafka marks it
            // uncleanable); everything else goes on.
            Err(why) => (LogError::Corrupt(format!("panicked: {why}")), i64::MAX),
        };
        if let LogError::Io(err) = &e {
            health.on_write_error(&what, err);
        }
        if let Some(job) = cleaner.job.take() {
            let key = (job.topic.clone(), job.partition);
            cleaner
                .failed_until
                .insert(key, now_ms.saturating_add(backoff));
            log::warn!("cleaning {}-{} aborted: {}", job.topic, job.partition, e);
            if !simulated_crash(&e) {
                abort(job);
            }
        }
        progress
    }

    /// The first dirty offset recorded for a partition in `cleaner-offset-checkpoint`.
    pub fn cleaned_up_to(&self, topic: &str, partition: i32) -> Option<i64> {
        self.cleaner.cleaned_up_to(topic, partition)
    }
}

/// Discards a job's unfinished output.
fn abort(mut job: Job) {
    if let Some(out) = job.out.take() {
        if let Err(e) = out.delete_files() {
            log::warn!("removing cleaner output: {e}");
        }
    }
    let Some(g) = job.groups.get(job.group_idx) else {
        return;
    };
    let dir = &job.dir;
    let base = job.segs[g.start].base;
    match job.stage {
        Stage::Writing => {}
        Stage::Synced | Stage::Swapping => {
            for ext in SEGMENT_EXTS {
                for suffix in [CLEANED, SWAP] {
                    if let Err(e) = remove_if_present(&dir.join(file_name(base, ext) + suffix)) {
                        log::warn!("removing cleaner output: {e}");
                    }
                }
            }
        }
        // Old segments may be gone already: the `.swap` files are completed at next open.
        Stage::Committing => log::warn!(
            "{}: swap at {} left to finish at the next start",
            dir.display(),
            base
        ),
    }
}

fn run(
    cleaner: &mut Cleaner,
    logs: &mut HashMap<String, HashMap<i32, PartitionLog>>,
    log_dir: &Path,
    now_ms: i64,
    budget: usize,
    progress: &mut CleanProgress,
) -> Result<(), LogError> {
    let Some(job) = cleaner.job.as_mut() else {
        return Ok(());
    };
    let log = logs
        .get_mut(&job.topic)
        .and_then(|ps| ps.get_mut(&job.partition));
    let Some(log) = log else {
        cleaner.job = None;
        return Ok(());
    };
    if !log.config.cleanup_policy_compact || !job.still_valid(log) {
        // Retention, DeleteRecords or a config change got there first: start over later.
        if let Some(job) = cleaner.job.take() {
            abort(job);
        }
        return Ok(());
    }
    let mut spent = 0usize;
    while spent < budget {
        match job.phase {
            Phase::Map => spent += job.map_step(log, budget - spent, cleaner.map_memory)?,
            Phase::Clean => {
                if job.group_idx >= job.groups.len() {
                    let key = (job.topic.clone(), job.partition);
                    cleaner.checkpoint.insert(key.clone(), job.end);
                    match job.tombstone_due {
                        Some(d) => cleaner.tombstones_due.insert(key, d),
                        None => cleaner.tombstones_due.remove(&key),
                    };
                    cleaner.job = None;
                    // No flush needed: swaps not yet durable are completed at open.
                    cleaner.write(log_dir)?;
                    break;
                }
                let (n, end) = job.clean_step(log, budget - spent, now_ms, &mut cleaner.trash)?;
                spent += n;
                match end {
                    StepEnd::More => {}
                    // Each swap stage costs an fsync: one per call.
                    StepEnd::Yield => break,
                    StepEnd::Swapped => {
                        progress.segments_swapped += 1;
                        break;
                    }
                }
            }
        }
    }
    progress.bytes_processed += spent as u64;
    Ok(())
}

impl Job {
    /// The segments not yet swapped are still there, unchanged.
    fn still_valid(&self, log: &PartitionLog) -> bool {
        let from = match self.phase {
            Phase::Map => 0,
            Phase::Clean => self
                .groups
                .get(self.group_idx)
                .map_or(self.segs.len(), |g| g.start),
        };
        let last = log.segments.keys().next_back().copied();
        self.segs[from..].iter().all(|i| {
            Some(i.base) != last && log.segments.get(&i.base).is_some_and(|s| s.size == i.size)
        })
    }

    /// Reads the next piece of the dirty section into the offset map. Returns bytes read.
    fn map_step(
        &mut self,
        log: &PartitionLog,
        budget: usize,
        map_memory: usize,
    ) -> Result<usize, LogError> {
        let Some(info) = self
            .segs
            .get(self.seg_idx)
            .copied()
            .filter(|i| i.base < self.end)
        else {
            self.phase = Phase::Clean;
            self.groups = group_segments(&self.segs, log.config.segment_bytes);
            self.seg_idx = 0;
            self.pos = 0;
            return Ok(0);
        };
        let seg = log
            .segments
            .get(&info.base)
            .ok_or_else(|| LogError::Corrupt("segment vanished".into()))?;
        self.buf.clear();
        let (n, at_end) = seg.read_into(self.pos, budget.min(MAX_CHUNK), true, &mut self.buf)?;
        for item in batches(&self.buf) {
            let (h, bytes) = item?;
            if h.is_control() || self.is_aborted(&h) {
                continue;
            }
            let Some(p) = payload(&h, bytes) else {
                continue;
            };
            if !records_ok(&h, &p) {
                continue;
            }
            for r in iter_records(&p, h.record_count).flatten() {
                if let Some(k) = r.key {
                    let offset = h.base_offset + r.offset_delta as i64;
                    match self.map.get_mut(k) {
                        Some(o) => *o = (*o).max(offset),
                        None => {
                            self.map_bytes += k.len() + ENTRY_OVERHEAD;
                            self.map.insert(k.to_vec(), offset);
                        }
                    }
                }
            }
        }
        self.pos += n as u64;
        let first_dirty_seg = info.base <= self.first_dirty;
        if self.map_bytes > map_memory && !first_dirty_seg {
            // Full: clean up to this segment; its keys already mapped point past `end`, which
            // only removes records that a later, still present one supersedes.
            self.end = info.base;
            self.segs.retain(|s| s.base < info.base);
        } else if at_end || n == 0 {
            self.seg_idx += 1;
            self.pos = 0;
        }
        Ok(n)
    }

    /// Rewrites the next piece of the current group; swaps the group when it is done.
    /// Returns bytes read + written and whether a group was swapped.
    fn clean_step(
        &mut self,
        log: &mut PartitionLog,
        budget: usize,
        now_ms: i64,
        trash: &mut Vec<PathBuf>,
    ) -> Result<(usize, StepEnd), LogError> {
        let g = self.groups[self.group_idx].clone();
        if self.stage != Stage::Writing || (self.out.is_some() && self.seg_idx >= g.end) {
            let end = swap_stage(
                log,
                &self.segs[g],
                &mut self.out,
                &mut self.stage,
                now_ms,
                trash,
            )?;
            if end == StepEnd::Swapped {
                self.group_idx += 1;
                self.unsynced = 0;
            }
            return Ok((0, end));
        }
        if self.out.is_none() {
            let base = self.segs[g.start].base;
            self.out = Some(Segment::create_suffixed(
                &log.dir,
                base,
                &log.config,
                now_ms,
                CLEANED,
            )?);
            self.seg_idx = g.start;
            self.pos = 0;
        }
        let info = self.segs[self.seg_idx];
        let retention = log.config.delete_retention_ms;
        // Kafka measures from the segment's last modification; the largest timestamp is its
        // sans-IO stand-in.
        let drop_tombstones =
            info.max_timestamp >= 0 && now_ms.saturating_sub(info.max_timestamp) > retention;
        let seg = log
            .segments
            .get(&info.base)
            .ok_or_else(|| LogError::Corrupt("segment vanished".into()))?;
        self.buf.clear();
        // Half for reading, half for writing what survives.
        let (n, at_end) =
            seg.read_into(self.pos, (budget / 2).min(MAX_CHUNK), true, &mut self.buf)?;
        let mut out_bytes = Vec::new();
        let mut headers = Vec::new();
        let mut kept_tombstone = false;
        for item in batches(&self.buf) {
            let (h, bytes) = item?;
            match self.filter(&h, bytes, drop_tombstones, &mut kept_tombstone) {
                Filtered::Keep => {
                    out_bytes.extend_from_slice(bytes);
                    headers.push(h);
                }
                Filtered::Drop => {}
                Filtered::Rewrite(b) => {
                    headers.push(BatchHeader::parse(&b)?);
                    out_bytes.extend_from_slice(&b);
                }
            }
        }
        if kept_tombstone && info.max_timestamp >= 0 {
            let due = info
                .max_timestamp
                .saturating_add(retention)
                .saturating_add(1);
            self.tombstone_due = Some(self.tombstone_due.map_or(due, |d| d.min(due)));
        }
        if !headers.is_empty() {
            let out = self
                .out
                .as_mut()
                .ok_or_else(|| LogError::Corrupt("no output".into()))?;
            out.append(&out_bytes, &headers)?;
            // Synced as it grows, so the sync before the swap stays short.
            self.unsynced += out_bytes.len();
            if self.unsynced >= SYNC_EVERY {
                out.sync()?;
                self.unsynced = 0;
            }
        }
        self.pos += n as u64;
        if at_end || n == 0 {
            self.seg_idx += 1;
            self.pos = 0;
        }
        Ok((n + out_bytes.len(), StepEnd::More))
    }

    /// Kafka's `Cleaner.shouldRetainRecord` for one record: keyless records stay, a key stays
    /// at its latest offset, a tombstone until `delete.retention.ms` has passed.
    fn retain(&self, h: &BatchHeader, r: &Record<'_>, drop_tombstones: bool) -> bool {
        let Some(k) = r.key else {
            return true;
        };
        let offset = h.base_offset + r.offset_delta as i64;
        let latest = self.map.get(k).is_none_or(|&o| offset >= o);
        latest && !(r.value.is_none() && drop_tombstones)
    }

    /// Kafka's `Cleaner.shouldRetainRecord` over one batch.
    fn filter(
        &self,
        h: &BatchHeader,
        bytes: &[u8],
        drop_tombstones: bool,
        kept_tombstone: &mut bool,
    ) -> Filtered {
        // Control batches (transaction markers) are kept as they are; aborted data goes.
        if h.is_control() {
            return Filtered::Keep;
        }
        if self.is_aborted(h) {
            return Filtered::Drop;
        }
        let Some(p) = payload(h, bytes) else {
            return Filtered::Keep;
        };
        if !records_ok(h, &p) {
            return Filtered::Keep;
        }
        // Records are decoded one at a time, twice (count, then rebuild): a batch of millions
        // of records never becomes a vector of them.
        let (mut total, mut kept) = (0usize, 0usize);
        for r in iter_records(&p, h.record_count).flatten() {
            total += 1;
            if self.retain(h, &r, drop_tombstones) {
                kept += 1;
                if r.key.is_some() && r.value.is_none() {
                    *kept_tombstone = true;
                }
            }
        }
        if kept == total {
            return Filtered::Keep;
        }
        if kept == 0 {
            return Filtered::Drop;
        }
        let log_append = h.timestamp_type_is_log_append();
        let mut b = BatchBuilder::new(h.base_offset, h.base_timestamp)
            .producer(h.producer_id, h.producer_epoch, h.base_sequence)
            .partition_leader_epoch(h.partition_leader_epoch)
            .transactional(h.is_transactional())
            .log_append_time(log_append);
        // The batch keeps its codec, as in Kafka's cleaner.
        if !matches!(h.compression(), Compression::None | Compression::Unknown(_)) {
            b = b.compression(h.compression());
        }
        for r in iter_records(&p, h.record_count).flatten() {
            if !self.retain(h, &r, drop_tombstones) {
                continue;
            }
            let ts = if log_append {
                h.max_timestamp
            } else {
                h.base_timestamp.wrapping_add(r.timestamp_delta)
            };
            b.push(Some(r.offset_delta), ts, r.key, r.value, &r.headers);
        }
        Filtered::Rewrite(b.finish())
    }
}

enum Filtered {
    Keep,
    Drop,
    Rewrite(Vec<u8>),
}

/// The batch's records section, or `None` (with a warning) when it cannot be decoded: such a
/// batch is kept untouched rather than lost.
fn payload<'a>(h: &BatchHeader, bytes: &'a [u8]) -> Option<Cow<'a, [u8]>> {
    match records_payload(bytes, DEFAULT_DECOMPRESS_CAP) {
        Ok(p) => Some(p),
        Err(e) => {
            log::warn!(
                "cleaner: batch at offset {} kept as is: {}",
                h.base_offset,
                e
            );
            None
        }
    }
}

/// Whether every record of the batch decodes (checked before any is used, so a damaged batch
/// is kept whole rather than half-applied).
fn records_ok(h: &BatchHeader, payload: &[u8]) -> bool {
    match iter_records(payload, h.record_count).find_map(Result::err) {
        None => true,
        Some(e) => {
            log::warn!(
                "cleaner: batch at offset {} kept as is: {}",
                h.base_offset,
                e
            );
            false
        }
    }
}

/// What a piece of cleaning work left to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StepEnd {
    /// Go on within the budget.
    More,
    /// A swap stage (an fsync) was done: end the call.
    Yield,
    /// A group went live.
    Swapped,
}

/// Where a group's output is on its way to replacing the old segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// `.cleaned` files being written.
    Writing,
    /// `.cleaned` files complete and synced.
    Synced,
    /// Renamed to `.swap` (durably): from here on open completes the swap.
    Swapping,
    /// Old segments being replaced: nothing may be removed any more.
    Committing,
}

/// One stage of a group's swap per call (each ends with an fsync): seal and sync the
/// `.cleaned` output; rename it to `.swap`; rename the old segments to `.deleted`, then the
/// `.swap` files into place.
fn swap_stage(
    log: &mut PartitionLog,
    olds: &[SegInfo],
    out: &mut Option<Segment>,
    stage: &mut Stage,
    now_ms: i64,
    trash: &mut Vec<PathBuf>,
) -> Result<StepEnd, LogError> {
    let base = olds[0].base;
    let next = olds[olds.len() - 1].next_offset;
    let dir = log.dir.clone();
    let name = |ext: &str, suffix: &str| dir.join(file_name(base, ext) + suffix);
    match *stage {
        Stage::Writing => {
            let mut seg = out
                .take()
                .ok_or_else(|| LogError::Corrupt("no cleaner output".into()))?;
            seg.seal()?;
            seg.sync()?;
            drop(seg);
            *stage = Stage::Synced;
            crash_point(1)?;
            Ok(StepEnd::Yield)
        }
        Stage::Synced => {
            *stage = Stage::Swapping;
            // The log last, so a `.log.swap` means its indexes are complete too.
            for ext in SEGMENT_EXTS {
                fs::rename(name(ext, CLEANED), name(ext, SWAP))?;
            }
            sync_dir(&dir)?;
            crash_point(2)?;
            Ok(StepEnd::Yield)
        }
        Stage::Swapping | Stage::Committing => {
            *stage = Stage::Committing;
            // Old segments are renamed aside and unlinked by later calls: unlinking a large
            // file can take long enough to stall the loop.
            for (i, info) in olds.iter().enumerate() {
                if let Some(seg) = log.segments.remove(&info.base) {
                    drop(seg);
                    for ext in SEGMENT_EXTS {
                        let from = dir.join(file_name(info.base, ext));
                        let to = dir.join(file_name(info.base, ext) + DELETED);
                        match fs::rename(&from, &to) {
                            Ok(()) => trash.push(to),
                            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
                if i == 0 {
                    crash_point(3)?;
                }
            }
            // Durable before the swap goes live, so no old segment can reappear beside it.
            sync_dir(&dir)?;
            for ext in SEGMENT_EXTS {
                fs::rename(name(ext, SWAP), name(ext, ""))?;
                crash_point(4)?;
            }
            // Not synced here: if these renames are lost, open completes the swap again.
            log.dir_dirty = true;
            let (mut seg, _) = Segment::open(&dir, base, &log.config, now_ms, false)?;
            seg.next_offset = seg.next_offset.max(next);
            seg.release_indexes()?;
            log.segments.insert(base, seg);
            *stage = Stage::Writing;
            Ok(StepEnd::Swapped)
        }
    }
}

#[cfg(test)]
thread_local! {
    /// Tests: `swap_stage` stops with an error at this step, as if the process died there.
    pub(super) static CRASH_AT: std::cell::Cell<u8> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
fn crash_point(step: u8) -> Result<(), LogError> {
    if CRASH_AT.with(|c| c.get()) == step {
        return Err(LogError::Corrupt(format!("simulated crash at step {step}")));
    }
    Ok(())
}

#[cfg(not(test))]
fn crash_point(_step: u8) -> Result<(), LogError> {
    Ok(())
}

/// Tests: a simulated crash leaves its files behind, as a dead process would.
fn simulated_crash(e: &LogError) -> bool {
    cfg!(test) && matches!(e, LogError::Corrupt(s) if s.starts_with("simulated crash"))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// At partition open: removes `.cleaned` output of an interrupted clean and replaced
/// `.deleted` segments, and completes any
/// swap (a `.log.swap` was complete and synced before it got that name). Returns whether
/// files changed.
pub(super) fn recover_leftovers(dir: &Path) -> io::Result<bool> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        if let Some(n) = entry?.file_name().to_str() {
            names.push(n.to_string());
        }
    }
    let mut changed = false;
    let mut swaps = Vec::new();
    let mut index_swaps = Vec::new();
    for n in &names {
        if n.ends_with(CLEANED) || n.ends_with(DELETED) {
            remove_if_present(&dir.join(n))?;
            changed = true;
        } else if let Some(stem) = n.strip_suffix(SWAP) {
            if let Some(b) = parse_file_name(stem, "log") {
                swaps.push(b);
            } else if let Some(b) =
                parse_file_name(stem, "index").or_else(|| parse_file_name(stem, "timeindex"))
            {
                index_swaps.push((b, n.clone()));
            }
        }
    }
    // Index swaps without their log swap come from a rename step cut short: the `.cleaned`
    // log is gone above, so they are orphans.
    for (b, n) in &index_swaps {
        if !swaps.contains(b) {
            remove_if_present(&dir.join(n))?;
            changed = true;
        }
    }
    swaps.sort_unstable();
    let live: Vec<i64> = names
        .iter()
        .filter_map(|n| parse_file_name(n, "log"))
        .collect();
    for b in swaps {
        let swap_log = dir.join(file_name(b, "log") + SWAP);
        let next = next_offset_of(&swap_log, b)?;
        // The old segments it replaces (the one at `b` is replaced by the renames).
        for &old in live.iter().filter(|&&o| o > b && o < next) {
            for ext in SEGMENT_EXTS {
                remove_if_present(&dir.join(file_name(old, ext)))?;
            }
        }
        for ext in SEGMENT_EXTS {
            let from = dir.join(file_name(b, ext) + SWAP);
            if from.exists() {
                fs::rename(&from, dir.join(file_name(b, ext)))?;
            }
        }
        log::info!(
            "{}: completed an interrupted segment swap at {}",
            dir.display(),
            b
        );
        changed = true;
    }
    if changed {
        sync_dir(dir)?;
    }
    Ok(changed)
}

/// Removes up to `UNLINKS_PER_CALL` replaced files, shrinking a large one by
/// `SHRINK_PER_CALL` per call first, so no call frees more than that many blocks.
fn discard_trash(trash: &mut Vec<PathBuf>) {
    let mut removed = 0;
    while removed < UNLINKS_PER_CALL && !trash.is_empty() {
        let p = &trash[0];
        let len = fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        if len > SHRINK_PER_CALL {
            let shrunk = fs::OpenOptions::new()
                .write(true)
                .open(p)
                .and_then(|f| f.set_len(len - SHRINK_PER_CALL));
            match shrunk {
                Ok(()) => return,
                Err(e) => log::warn!("shrinking {}: {}", p.display(), e),
            }
        }
        let p = trash.remove(0);
        if let Err(e) = remove_if_present(&p) {
            log::warn!("removing {}: {}", p.display(), e);
        }
        removed += 1;
    }
}

fn remove_if_present(p: &Path) -> io::Result<()> {
    match fs::remove_file(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The offset after the last whole batch of a segment file (`base` if none).
fn next_offset_of(path: &Path, base: i64) -> io::Result<i64> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut sc = Scanner::new(&file, 0, len, 1 << 20);
    let mut next = base;
    while let Step::Batch(h) = sc.next(true)? {
        next = h.next_offset();
    }
    Ok(next)
}

#[cfg(test)]
mod tests;
