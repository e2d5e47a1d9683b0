//! One segment: `<base>.log` plus its `.index` and `.timeindex` (Kafka's `LogSegment`).

use super::faults;
use super::health::is_disk_full;
use super::index::{Index, OffsetEntry, TimeEntry};
use super::scan::{Scanner, Step};
use super::{LogConfig, LogError};
use crate::records::stream::walk_batch;
use crate::records::{BatchHeader, BATCH_HEADER_LEN, LOG_OVERHEAD};
use byteorder::{BigEndian, ByteOrder};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Read window for lookups that scan forward from an index entry.
const LOOKUP_WINDOW: usize = 16 << 10;
/// Read window for recovery and rebuilds.
const RECOVERY_WINDOW: usize = 1 << 20;
/// Cap when decompressing one batch to search it by timestamp.
const SEARCH_DECOMPRESS_CAP: usize = 64 << 20;

pub(crate) fn file_name(base: i64, ext: &str) -> String {
    format!("{base:020}.{ext}")
}

/// Base offset from a `00000000000000000123.log` style name.
pub(crate) fn parse_file_name(name: &str, ext: &str) -> Option<i64> {
    let stem = name.strip_suffix(ext)?.strip_suffix('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

pub(crate) struct Segment {
    pub base_offset: i64,
    log_path: PathBuf,
    log: File,
    /// Bytes of valid batches in `.log`.
    pub size: u64,
    /// Offset after the last batch (== base when empty; for older segments loaded without a
    /// scan, the next segment's base offset).
    pub next_offset: i64,
    offset_index: Index<OffsetEntry>,
    time_index: Index<TimeEntry>,
    /// Largest batch max timestamp, -1 if none.
    pub max_timestamp: i64,
    /// Last offset of the batch that holds `max_timestamp`.
    pub offset_of_max_timestamp: i64,
    /// Max timestamp of the first batch: the clock `segment.ms` measures from (Kafka's
    /// `rollingBasedTimestamp`).
    first_batch_timestamp: Option<i64>,
    created_ms: i64,
    bytes_since_index: usize,
    index_interval: usize,
    dirty: bool,
}

impl Segment {
    fn paths(dir: &Path, base: i64) -> (PathBuf, PathBuf, PathBuf) {
        Self::suffixed_paths(dir, base, "")
    }

    /// `<base>.log<suffix>` and its indexes (the cleaner writes `.cleaned` files).
    fn suffixed_paths(dir: &Path, base: i64, suffix: &str) -> (PathBuf, PathBuf, PathBuf) {
        (
            dir.join(file_name(base, "log") + suffix),
            dir.join(file_name(base, "index") + suffix),
            dir.join(file_name(base, "timeindex") + suffix),
        )
    }

    /// A new empty segment (existing files with that base are truncated).
    pub fn create(dir: &Path, base: i64, cfg: &LogConfig, now_ms: i64) -> io::Result<Segment> {
        Self::create_suffixed(dir, base, cfg, now_ms, "")
    }

    /// `create` with `suffix` after each file name.
    pub fn create_suffixed(
        dir: &Path,
        base: i64,
        cfg: &LogConfig,
        now_ms: i64,
        suffix: &str,
    ) -> io::Result<Segment> {
        let (lp, ip, tp) = Self::suffixed_paths(dir, base, suffix);
        faults::check(&lp, faults::Op::Create)?;
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&lp)?;
        Ok(Segment {
            base_offset: base,
            log_path: lp,
            log,
            size: 0,
            next_offset: base,
            offset_index: Index::create(&ip, cfg.max_index_bytes)?,
            time_index: Index::create(&tp, cfg.max_index_bytes)?,
            max_timestamp: -1,
            offset_of_max_timestamp: base,
            first_batch_timestamp: None,
            created_ms: now_ms,
            bytes_since_index: 0,
            index_interval: cfg.index_interval_bytes,
            dirty: true,
        })
    }

    /// Opens an existing segment. With `recover`, or when an index is missing or implausible,
    /// every batch is checked (length + CRC), the file is cut at the first bad one and both
    /// indexes are rebuilt. Returns the segment and, when it was scanned, the bytes cut off.
    pub fn open(
        dir: &Path,
        base: i64,
        cfg: &LogConfig,
        now_ms: i64,
        recover: bool,
    ) -> Result<(Segment, Option<u64>), LogError> {
        let (lp, ip, tp) = Self::paths(dir, base);
        let log = OpenOptions::new().read(true).write(true).open(&lp)?;
        let size = log.metadata()?.len();
        let loaded = if recover {
            None
        } else {
            match (
                Index::<OffsetEntry>::load(&ip, cfg.max_index_bytes)?,
                Index::<TimeEntry>::load(&tp, cfg.max_index_bytes)?,
            ) {
                (Some(oi), Some(ti)) if oi.is_sane(size) && ti.is_sane() => Some((oi, ti)),
                _ => {
                    log::warn!("rebuilding indexes of {}", lp.display());
                    None
                }
            }
        };
        let rebuild = loaded.is_none();
        let (offset_index, time_index) = match loaded {
            Some(x) => x,
            None => (
                Index::create(&ip, cfg.max_index_bytes)?,
                Index::create(&tp, cfg.max_index_bytes)?,
            ),
        };
        let (max_timestamp, offset_of_max_timestamp) = match time_index.last() {
            Some(e) => (e.ts, base + e.rel as i64),
            None => (-1, base),
        };
        let mut seg = Segment {
            base_offset: base,
            log_path: lp,
            log,
            size,
            next_offset: base,
            offset_index,
            time_index,
            max_timestamp,
            offset_of_max_timestamp,
            first_batch_timestamp: None,
            created_ms: now_ms,
            bytes_since_index: 0,
            index_interval: cfg.index_interval_bytes,
            dirty: false,
        };
        let cut = if rebuild { Some(seg.recover()?) } else { None };
        Ok((seg, cut))
    }

    /// Kafka's `LogSegment.recover`: rescan every batch with CRC checks, rebuild both indexes,
    /// truncate at the first invalid batch. Returns the bytes cut off.
    pub fn recover(&mut self) -> Result<u64, LogError> {
        self.offset_index.clear()?;
        self.time_index.clear()?;
        self.max_timestamp = -1;
        self.offset_of_max_timestamp = self.base_offset;
        self.first_batch_timestamp = None;
        self.bytes_since_index = 0;
        self.next_offset = self.base_offset;
        let end = self.size;
        let valid = self.scan_from(0, end, true)?;
        let cut = end - valid;
        if cut > 0 {
            log::warn!(
                "{}: truncating {} bytes of invalid data at position {}",
                self.log_path.display(),
                cut,
                valid
            );
            self.log.set_len(valid)?;
        }
        self.size = valid;
        self.offset_index.write_pending()?;
        self.time_index.write_pending()?;
        self.dirty = true;
        Ok(cut)
    }

    /// Cuts the segment before the batch holding `offset` (or the first batch after it) and
    /// rebuilds its indexes from what is left. Returns the bytes cut.
    pub fn truncate_to(&mut self, offset: i64) -> Result<u64, LogError> {
        let Some(pos) = self.find_position(offset)? else {
            return Ok(0);
        };
        let cut = self.size - pos;
        faults::check(&self.log_path, faults::Op::Write)?;
        self.log.set_len(pos)?;
        self.size = pos;
        self.recover()?;
        Ok(cut)
    }

    /// Writes the segment's bytes again where they are, so the next fsync writes them to the
    /// disk even if the page cache held them as clean after a failed writeback.
    pub fn rewrite(&mut self) -> io::Result<()> {
        let mut buf = vec![0u8; RECOVERY_WINDOW];
        let mut pos = 0;
        while pos < self.size {
            let n = (self.size - pos).min(buf.len() as u64) as usize;
            faults::read_exact_at(&self.log, &self.log_path, &mut buf[..n], pos)?;
            faults::write_all_at(&self.log, &self.log_path, &buf[..n], pos)?;
            pos += n as u64;
        }
        self.dirty = true;
        Ok(())
    }

    /// For the active segment after a clean open: scan headers from the last index entry to
    /// the end to learn the next offset (Kafka's `readNextOffset`), and read the first batch's
    /// timestamp for `segment.ms`. Returns the bytes scanned.
    pub fn load_tail(&mut self) -> Result<u64, LogError> {
        let start = self.offset_index.last().map_or(0, |e| e.pos as u64);
        self.next_offset = self.base_offset;
        self.bytes_since_index = 0;
        let end = self.size;
        let valid = self.scan_from(start, end, false)?;
        if valid < end {
            log::warn!(
                "{}: torn batch at {} after a clean shutdown; truncating",
                self.log_path.display(),
                valid
            );
            self.log.set_len(valid)?;
            self.size = valid;
            self.dirty = true;
        }
        self.offset_index.write_pending()?;
        self.time_index.write_pending()?;
        if self.first_batch_timestamp.is_none() && self.size >= BATCH_HEADER_LEN as u64 {
            let mut h = [0u8; BATCH_HEADER_LEN];
            self.log.read_exact_at(&mut h, 0)?;
            if let Ok(h) = BatchHeader::parse(&h) {
                self.set_first_batch_timestamp(h.max_timestamp);
            }
        }
        Ok(end - start)
    }

    fn set_first_batch_timestamp(&mut self, ts: i64) {
        if self.first_batch_timestamp.is_none() && ts >= 0 {
            self.first_batch_timestamp = Some(ts);
        }
    }

    /// Scans `[start, end)`, indexing each batch; returns the end of the valid prefix.
    fn scan_from(&mut self, start: u64, end: u64, check_crc: bool) -> Result<u64, LogError> {
        let file = self.log.try_clone()?;
        let window = if check_crc {
            RECOVERY_WINDOW
        } else {
            LOOKUP_WINDOW
        };
        let mut sc = Scanner::new(&file, start, end, window);
        loop {
            let pos = sc.pos;
            match sc.next(check_crc)? {
                Step::Batch(h) => {
                    // Offsets must move forward and stay indexable from this base.
                    let rel = h.last_offset() - self.base_offset;
                    if h.base_offset < self.next_offset || !(0..=i32::MAX as i64).contains(&rel) {
                        return Ok(pos);
                    }
                    self.index_batch(&h, pos);
                }
                Step::End => return Ok(pos),
                Step::Bad(e) => {
                    log::warn!("{}: at {}: {}", self.log_path.display(), pos, e);
                    return Ok(pos);
                }
            }
        }
    }

    fn rel(&self, offset: i64) -> u32 {
        (offset - self.base_offset).clamp(0, u32::MAX as i64) as u32
    }

    /// Bookkeeping for one batch written at `pos` (Kafka's per-batch loop in `LogSegment.append`).
    fn index_batch(&mut self, h: &BatchHeader, pos: u64) {
        if h.max_timestamp > self.max_timestamp {
            self.max_timestamp = h.max_timestamp;
            self.offset_of_max_timestamp = h.last_offset();
        }
        if self.bytes_since_index > self.index_interval {
            let rel = self.rel(h.last_offset());
            self.offset_index.push(OffsetEntry {
                rel,
                pos: pos as u32,
            });
            let trel = self.rel(self.offset_of_max_timestamp);
            self.time_index.maybe_append(self.max_timestamp, trel);
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += h.total_len();
        self.set_first_batch_timestamp(h.max_timestamp);
        self.next_offset = h.next_offset();
    }

    /// Kafka's `shouldRoll`, for a non-empty segment.
    pub fn should_roll(
        &self,
        cfg: &LogConfig,
        incoming: usize,
        max_timestamp_in: i64,
        last_offset_in: i64,
        now_ms: i64,
    ) -> bool {
        if self.size == 0 {
            return false;
        }
        let new_size = self.size.saturating_add(incoming as u64);
        let waited = match self.first_batch_timestamp {
            Some(t) => max_timestamp_in.saturating_sub(t),
            None => now_ms.saturating_sub(self.created_ms),
        };
        new_size > cfg.segment_bytes
            || new_size > u32::MAX as u64
            || waited > cfg.segment_ms
            || self.offset_index.is_full()
            || self.time_index.is_full()
            || last_offset_in - self.base_offset > i32::MAX as i64
    }

    /// Appends already-validated batches with one write, then indexes them.
    pub fn append(&mut self, bytes: &[u8], headers: &[BatchHeader]) -> io::Result<()> {
        let start = self.size;
        if let Err(e) = faults::write_all_at(&self.log, &self.log_path, bytes, start) {
            // Leave no partial batch behind.
            let _ = self.log.set_len(start);
            return Err(e);
        }
        self.dirty = true;
        let mut pos = start;
        for h in headers {
            self.index_batch(h, pos);
            pos += h.total_len() as u64;
        }
        self.size = pos;
        // The index is rebuildable: on a full disk its entries stay pending and are written at
        // the next append or flush. Any other error is reported (the batch itself is written).
        if let Err(e) = self
            .offset_index
            .write_pending()
            .and_then(|_| self.time_index.write_pending())
        {
            if !is_disk_full(&e) {
                return Err(e);
            }
            log::warn!("{}: index write failed: {}", self.log_path.display(), e);
        }
        Ok(())
    }

    /// Position of the first batch whose last offset is `>= offset`, or `None` past the end.
    pub fn find_position(&self, offset: i64) -> Result<Option<u64>, LogError> {
        Ok(self.locate(offset)?.map(|(pos, _)| pos))
    }

    /// The position and header of the batch holding `offset` (or the first after it).
    fn locate(&self, offset: i64) -> Result<Option<(u64, BatchHeader)>, LogError> {
        let start = self
            .offset_index
            .floor(self.rel(offset))
            .map_or(0, |e| e.pos as u64);
        let mut sc = Scanner::new(&self.log, start, self.size, LOOKUP_WINDOW);
        loop {
            let pos = sc.pos;
            match sc.next(false)? {
                Step::Batch(h) if h.last_offset() >= offset => return Ok(Some((pos, h))),
                Step::Batch(_) => {}
                Step::End => return Ok(None),
                Step::Bad(e) => return Err(LogError::Corrupt(format!("{}: {e}", self.name()))),
            }
        }
    }

    /// The header of the batch holding `offset` (or the first after it), if any.
    pub fn header_at(&self, offset: i64) -> Result<Option<BatchHeader>, LogError> {
        Ok(self.locate(offset)?.map(|(_, h)| h))
    }

    /// Appends whole batches from `pos` to `out`, at most `budget` bytes (or the first batch
    /// whatever its size when `min_one`). Returns the bytes added and whether the segment's
    /// end was reached.
    pub fn read_into(
        &self,
        pos: u64,
        budget: usize,
        min_one: bool,
        out: &mut Vec<u8>,
    ) -> Result<(usize, bool), LogError> {
        let avail = self.size.saturating_sub(pos);
        if avail == 0 {
            return Ok((0, true));
        }
        let want = (budget as u64).min(avail) as usize;
        let old = out.len();
        let mut taken = 0;
        if want >= LOG_OVERHEAD {
            out.resize(old + want, 0);
            if let Err(e) = faults::read_exact_at(&self.log, &self.log_path, &mut out[old..], pos) {
                out.truncate(old);
                return Err(e.into());
            }
            // Keep only whole batches.
            while taken + LOG_OVERHEAD <= want {
                let len = BigEndian::read_i32(&out[old + taken + 8..]);
                if len < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32 {
                    break;
                }
                let total = len as usize + LOG_OVERHEAD;
                if taken + total > want {
                    break;
                }
                taken += total;
            }
            out.truncate(old + taken);
        }
        if taken == 0 && min_one {
            let mut hdr = [0u8; LOG_OVERHEAD];
            if avail < LOG_OVERHEAD as u64 {
                return Err(LogError::Corrupt(format!("{}: partial batch", self.name())));
            }
            faults::read_exact_at(&self.log, &self.log_path, &mut hdr, pos)?;
            let len = BigEndian::read_i32(&hdr[8..]);
            let total = len as i64 + LOG_OVERHEAD as i64;
            if len < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32 || total as u64 > avail {
                return Err(LogError::Corrupt(format!(
                    "{}: bad batch length {len} at {pos}",
                    self.name()
                )));
            }
            out.resize(old + total as usize, 0);
            if let Err(e) = faults::read_exact_at(&self.log, &self.log_path, &mut out[old..], pos) {
                out.truncate(old);
                return Err(e.into());
            }
            taken = total as usize;
        }
        Ok((taken, pos + taken as u64 == self.size))
    }

    /// First record with timestamp `>= ts` and offset `>= min_offset`: `(offset, timestamp)`.
    /// Kafka's `findOffsetByTimestamp`: time index, then offset index, then a forward scan.
    pub fn find_timestamp(&self, ts: i64, min_offset: i64) -> Result<Option<(i64, i64)>, LogError> {
        let from = self
            .time_index
            .floor(ts)
            .map_or(self.base_offset, |e| self.base_offset + e.rel as i64)
            .max(min_offset);
        let start = self
            .offset_index
            .floor(self.rel(from))
            .map_or(0, |e| e.pos as u64);
        let mut sc = Scanner::new(&self.log, start, self.size, LOOKUP_WINDOW);
        loop {
            let pos = sc.pos;
            let h = match sc.next(false)? {
                Step::Batch(h) => h,
                Step::End => return Ok(None),
                Step::Bad(e) => return Err(LogError::Corrupt(format!("{}: {e}", self.name()))),
            };
            if h.max_timestamp < ts || h.last_offset() < min_offset {
                continue;
            }
            // LogAppendTime: every record carries the batch's max timestamp.
            if h.timestamp_type_is_log_append() {
                return Ok(Some((h.base_offset.max(min_offset), h.max_timestamp)));
            }
            let bytes = match sc.batch_bytes(pos, h.total_len())? {
                Some(b) => b,
                None => return Ok(None),
            };
            let batch_level = Some((h.base_offset.max(min_offset), h.max_timestamp));
            // Streamed, so a batch of millions of records costs no memory. Undecodable (e.g.
            // an unsupported codec): the batch is the best answer.
            let mut found = None;
            let walked = walk_batch(bytes, SEARCH_DECOMPRESS_CAP, |r| {
                let t = h.base_timestamp.wrapping_add(r.timestamp_delta);
                let o = h.base_offset + r.offset_delta as i64;
                if found.is_none() && t >= ts && o >= min_offset {
                    found = Some((o, t));
                }
            });
            if walked.is_err() {
                return Ok(batch_level);
            }
            if found.is_some() {
                return Ok(found);
            }
        }
    }

    /// Adds the final time index entry (Kafka's `onBecomeInactiveSegment`) and trims indexes.
    pub fn seal(&mut self) -> io::Result<()> {
        if self.max_timestamp >= 0 {
            let rel = self.rel(self.offset_of_max_timestamp);
            self.time_index.maybe_append(self.max_timestamp, rel);
        }
        self.offset_index.trim()?;
        self.time_index.trim()?;
        self.release_indexes()?;
        self.dirty = true;
        Ok(())
    }

    /// A sealed segment's indexes are searched in their files, not kept in memory.
    pub fn release_indexes(&mut self) -> io::Result<()> {
        self.offset_index.release()?;
        self.time_index.release()
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// fdatasync the log and both indexes.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.dirty {
            faults::sync_data(&self.log, &self.log_path)?;
            self.offset_index.sync()?;
            self.time_index.sync()?;
            super::txn_index::sync(&self.txn_index_path())?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Removes the segment's files (retention).
    pub fn delete_files(self) -> io::Result<()> {
        let paths = [
            self.log_path.clone(),
            self.offset_index.path().to_path_buf(),
            self.time_index.path().to_path_buf(),
            self.txn_index_path(),
        ];
        drop(self);
        for p in paths {
            match std::fs::remove_file(&p) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    fn name(&self) -> String {
        self.log_path.display().to_string()
    }

    /// The offset of an indexed batch starting at least `bytes` before the segment's end, if
    /// the index has one (a bound for how much of the tail a restart reads).
    pub fn offset_within_tail(&self, bytes: u64) -> Option<i64> {
        let from = self.size.saturating_sub(bytes).min(u32::MAX as u64) as u32;
        self.offset_index
            .at_or_after_position(from)
            .map(|e| self.base_offset + e.rel as i64)
    }

    /// `<base>.txnindex` beside the log (the aborted transactions whose markers are here).
    pub fn txn_index_path(&self) -> PathBuf {
        self.log_path.with_extension("txnindex")
    }

    /// Calls `f` with each batch header from the first batch holding `from` to the end, and,
    /// for a transaction marker, whether it commits. Records are not decoded otherwise.
    pub fn replay_from(
        &self,
        from: i64,
        mut f: impl FnMut(&BatchHeader, Option<bool>),
    ) -> Result<(), LogError> {
        let Some(start) = self.find_position(from)? else {
            return Ok(());
        };
        let mut sc = Scanner::new(&self.log, start, self.size, LOOKUP_WINDOW);
        loop {
            let pos = sc.pos;
            let h = match sc.next(false)? {
                Step::Batch(h) => h,
                Step::End => return Ok(()),
                Step::Bad(e) => return Err(LogError::Corrupt(format!("{}: {e}", self.name()))),
            };
            let marker = if h.is_control() {
                match sc.batch_bytes(pos, h.total_len())? {
                    Some(b) => marker_type(b),
                    None => None,
                }
            } else {
                None
            };
            f(&h, marker);
        }
    }
}

/// Whether a control batch is a COMMIT (`Some(true)`) or ABORT marker; `None` for other control
/// records or an unreadable one.
pub(crate) fn marker_type(batch: &[u8]) -> Option<bool> {
    let h = BatchHeader::parse(batch).ok()?;
    let payload = crate::records::records_payload(batch, 1 << 20).ok()?;
    let r = crate::records::iter_records(&payload, h.record_count)
        .next()?
        .ok()?;
    let key = r.key?;
    if key.len() < 4 {
        return None;
    }
    match i16::from_be_bytes([key[2], key[3]]) {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}
