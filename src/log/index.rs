//! Kafka's sparse offset index (`.index`: relative offset u32 + position u32) and time index
//! (`.timeindex`: timestamp i64 + relative offset u32). Plain files, appended as entries are
//! added. The active segment's indexes are mirrored in a `Vec` for lookups; a sealed segment's
//! are released from memory and searched in the file, so memory does not grow with the log.

use byteorder::{BigEndian, ByteOrder};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub(crate) trait Entry: Copy {
    const SIZE: usize;
    fn encode(&self, out: &mut [u8]);
    fn decode(b: &[u8]) -> Self;
}

/// `(relative offset, file position)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub rel: u32,
    pub pos: u32,
}

/// `(timestamp, relative offset)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub ts: i64,
    pub rel: u32,
}

impl Entry for OffsetEntry {
    const SIZE: usize = 8;
    fn encode(&self, out: &mut [u8]) {
        BigEndian::write_u32(&mut out[0..4], self.rel);
        BigEndian::write_u32(&mut out[4..8], self.pos);
    }
    fn decode(b: &[u8]) -> Self {
        OffsetEntry {
            rel: BigEndian::read_u32(&b[0..4]),
            pos: BigEndian::read_u32(&b[4..8]),
        }
    }
}

impl Entry for TimeEntry {
    const SIZE: usize = 12;
    fn encode(&self, out: &mut [u8]) {
        BigEndian::write_i64(&mut out[0..8], self.ts);
        BigEndian::write_u32(&mut out[8..12], self.rel);
    }
    fn decode(b: &[u8]) -> Self {
        TimeEntry {
            ts: BigEndian::read_i64(&b[0..8]),
            rel: BigEndian::read_u32(&b[8..12]),
        }
    }
}

pub(crate) struct Index<E: Entry> {
    path: PathBuf,
    file: File,
    /// The entries while resident; empty after `release` (then `count` says how many).
    entries: Vec<E>,
    resident: bool,
    count: usize,
    /// Entries already in the file; the rest are written by `write_pending`.
    written: usize,
    max_entries: usize,
    dirty: bool,
}

impl<E: Entry> Index<E> {
    /// A new, empty index (an existing file is truncated).
    pub fn create(path: &Path, max_bytes: usize) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Index {
            path: path.to_path_buf(),
            file,
            entries: Vec::new(),
            resident: true,
            count: 0,
            written: 0,
            max_entries: (max_bytes / E::SIZE).max(1),
            dirty: true,
        })
    }

    /// Loads an existing index. `Ok(None)` when the file is missing or its size is not a whole
    /// number of entries (the caller rebuilds it). Entry contents are checked by the caller.
    pub fn load(path: &Path, max_bytes: usize) -> io::Result<Option<Self>> {
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        // Even a full index is a few MiB; refuse anything absurd instead of allocating it.
        if len % E::SIZE as u64 != 0 || len > (max_bytes as u64).max(1 << 20) * 4 {
            return Ok(None);
        }
        let mut raw = vec![0u8; len as usize];
        file.read_exact_at(&mut raw, 0)?;
        let entries: Vec<E> = raw.chunks_exact(E::SIZE).map(E::decode).collect();
        Ok(Some(Index {
            path: path.to_path_buf(),
            written: entries.len(),
            resident: true,
            count: entries.len(),
            entries,
            file,
            max_entries: (max_bytes / E::SIZE).max(1),
            dirty: false,
        }))
    }

    pub fn push(&mut self, e: E) {
        if !self.resident {
            // Appending to a released index (rare: a sealed segment written to again) brings
            // it back into memory first.
            if let Err(err) = self.reload() {
                ::log::error!("reloading index {}: {err}", self.path.display());
            }
        }
        self.entries.push(e);
        self.count = self.entries.len();
    }

    /// Entry `i`, from memory or from the file.
    fn get(&self, i: usize) -> Option<E> {
        if self.resident {
            return self.entries.get(i).copied();
        }
        if i >= self.count {
            return None;
        }
        let mut raw = [0u8; 16];
        let raw = &mut raw[..E::SIZE];
        self.file.read_exact_at(raw, (i * E::SIZE) as u64).ok()?;
        Some(E::decode(raw))
    }

    pub fn last(&self) -> Option<E> {
        self.count.checked_sub(1).and_then(|i| self.get(i))
    }

    pub fn is_full(&self) -> bool {
        self.count >= self.max_entries
    }

    /// The number of entries `e` for which `pred(e)` holds, for a `pred` true on a prefix
    /// (binary search, in memory or in the file).
    fn partition_point(&self, pred: impl Fn(&E) -> bool) -> usize {
        if self.resident {
            return self.entries.partition_point(pred);
        }
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid) {
                Some(e) if pred(&e) => lo = mid + 1,
                _ => hi = mid,
            }
        }
        lo
    }

    /// Writes what is pending and frees the in-memory copy (a sealed segment's index).
    pub fn release(&mut self) -> io::Result<()> {
        self.write_pending()?;
        self.count = self.entries.len();
        self.entries = Vec::new();
        self.resident = false;
        Ok(())
    }

    fn reload(&mut self) -> io::Result<()> {
        let mut raw = vec![0u8; self.count * E::SIZE];
        self.file.read_exact_at(&mut raw, 0)?;
        self.entries = raw.chunks_exact(E::SIZE).map(E::decode).collect();
        self.resident = true;
        Ok(())
    }

    /// Appends entries not yet in the file with one write.
    pub fn write_pending(&mut self) -> io::Result<()> {
        if !self.resident || self.written >= self.entries.len() {
            return Ok(());
        }
        let mut buf = vec![0u8; (self.entries.len() - self.written) * E::SIZE];
        for (e, chunk) in self.entries[self.written..]
            .iter()
            .zip(buf.chunks_exact_mut(E::SIZE))
        {
            e.encode(chunk);
        }
        super::faults::write_all_at(
            &self.file,
            &self.path,
            &buf,
            (self.written * E::SIZE) as u64,
        )?;
        self.written = self.entries.len();
        self.dirty = true;
        Ok(())
    }

    /// Drops all entries (memory and file).
    pub fn clear(&mut self) -> io::Result<()> {
        self.entries.clear();
        self.resident = true;
        self.count = 0;
        self.written = 0;
        self.file.set_len(0)?;
        self.dirty = true;
        Ok(())
    }

    /// Cuts the file to exactly the entries it should hold.
    pub fn trim(&mut self) -> io::Result<()> {
        self.write_pending()?;
        let want = (self.count * E::SIZE) as u64;
        if self.file.metadata()?.len() != want {
            self.file.set_len(want)?;
            self.dirty = true;
        }
        Ok(())
    }

    /// Writes pending entries and fsyncs. On a full disk the entries stay pending (an index can
    /// be rebuilt from its log) and what is already in the file is still synced.
    pub fn sync(&mut self) -> io::Result<()> {
        if let Err(e) = self.write_pending() {
            if !super::health::is_disk_full(&e) {
                return Err(e);
            }
            ::log::warn!("{}: index write failed: {e}", self.path.display());
        }
        if self.dirty {
            super::faults::sync_data(&self.file, &self.path)?;
            self.dirty = false;
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Index<OffsetEntry> {
    /// The last entry whose offset is `<= rel` (Kafka's `OffsetIndex.lookup`).
    pub fn floor(&self, rel: u32) -> Option<OffsetEntry> {
        let i = self.partition_point(|e| e.rel <= rel);
        i.checked_sub(1).and_then(|i| self.get(i))
    }

    /// The first entry at or after file position `pos` (a batch boundary there).
    pub fn at_or_after_position(&self, pos: u32) -> Option<OffsetEntry> {
        let i = self.partition_point(|e| e.pos < pos);
        self.get(i)
    }

    /// Entries strictly increasing in offset and position, all inside the log file.
    pub fn is_sane(&self, log_size: u64) -> bool {
        let ordered = self
            .entries
            .windows(2)
            .all(|w| w[0].rel < w[1].rel && w[0].pos < w[1].pos);
        ordered && self.entries.iter().all(|e| (e.pos as u64) < log_size)
    }
}

impl Index<TimeEntry> {
    /// The last entry whose timestamp is `<= ts` (Kafka's `TimeIndex.lookup`).
    pub fn floor(&self, ts: i64) -> Option<TimeEntry> {
        let i = self.partition_point(|e| e.ts <= ts);
        i.checked_sub(1).and_then(|i| self.get(i))
    }

    /// Kafka's `maybeAppend`: only a strictly larger timestamp at a not-smaller offset.
    pub fn maybe_append(&mut self, ts: i64, rel: u32) {
        // An empty index behaves as if its last entry were (NO_TIMESTAMP = -1, 0), as in Kafka.
        let (last_ts, last_rel) = self.last().map_or((-1, 0), |l| (l.ts, l.rel));
        if ts > last_ts && rel >= last_rel {
            self.push(TimeEntry { ts, rel });
        }
    }

    pub fn is_sane(&self) -> bool {
        self.entries
            .windows(2)
            .all(|w| w[0].ts <= w[1].ts && w[0].rel <= w[1].rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_released_index_answers_from_its_file() {
        let dir = std::env::temp_dir().join(format!("minikafka-index-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut ix: Index<OffsetEntry> = Index::create(&dir.join("0.index"), 1 << 20).unwrap();
        for i in 0..1000u32 {
            ix.push(OffsetEntry {
                rel: i * 10,
                pos: i * 4096,
            });
        }
        let probes = [0u32, 5, 10, 9_990, 9_999, 50_000];
        let before: Vec<_> = probes.iter().map(|&r| ix.floor(r)).collect();
        ix.release().unwrap();
        assert!(ix.entries.is_empty(), "memory freed");
        let after: Vec<_> = probes.iter().map(|&r| ix.floor(r)).collect();
        assert_eq!(before, after);
        assert_eq!(
            ix.last(),
            Some(OffsetEntry {
                rel: 9_990,
                pos: 999 * 4096
            })
        );
        // Appending again brings it back into memory, whole.
        ix.push(OffsetEntry {
            rel: 10_000,
            pos: 1000 * 4096,
        });
        assert_eq!(ix.floor(10_005).map(|e| e.rel), Some(10_000));
        assert_eq!(ix.floor(15).map(|e| e.rel), Some(10));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
