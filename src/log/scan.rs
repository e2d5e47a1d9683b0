//! Walks the batches of a segment file through a read window, so recovery and lookups do a
//! few large `pread`s instead of one per batch.

use crate::records::{validate_batch, BatchHeader, RecordsError, BATCH_HEADER_LEN};
use std::fs::File;

/// The CRC covers the batch from the attributes field on.
const CRC_START: usize = 21;
use std::io;
use std::os::unix::fs::FileExt;

pub(crate) enum Step {
    /// A whole batch at `pos` of `len` bytes.
    Batch(BatchHeader),
    /// Clean end of the file.
    End,
    /// A partial or invalid batch starts here: the valid data ends at `pos`.
    Bad(RecordsError),
}

pub(crate) struct Scanner<'f> {
    file: &'f File,
    end: u64,
    window: usize,
    buf: Vec<u8>,
    buf_start: u64,
    pub pos: u64,
}

impl<'f> Scanner<'f> {
    pub fn new(file: &'f File, start: u64, end: u64, window: usize) -> Self {
        Scanner {
            file,
            end,
            window,
            buf: Vec::new(),
            buf_start: 0,
            pos: start,
        }
    }

    /// Bytes `[pos, pos + n)`, loading a window if needed; `None` if they pass `end`.
    fn get(&mut self, pos: u64, n: usize) -> io::Result<Option<&[u8]>> {
        if pos.saturating_add(n as u64) > self.end {
            return Ok(None);
        }
        let have =
            pos >= self.buf_start && pos + n as u64 <= self.buf_start + self.buf.len() as u64;
        if !have {
            let len = (n.max(self.window) as u64).min(self.end - pos) as usize;
            self.buf.resize(len, 0);
            self.file.read_exact_at(&mut self.buf, pos)?;
            self.buf_start = pos;
        }
        let from = (pos - self.buf_start) as usize;
        Ok(Some(&self.buf[from..from + n]))
    }

    /// Reads the batch at `pos` (checking its CRC when `check_crc`) and advances past it.
    pub fn next(&mut self, check_crc: bool) -> io::Result<Step> {
        let pos = self.pos;
        if pos >= self.end {
            return Ok(Step::End);
        }
        let h = match self.get(pos, BATCH_HEADER_LEN)? {
            None => return Ok(Step::Bad(RecordsError::Truncated)),
            Some(b) => match BatchHeader::parse(b) {
                Ok(h) => h,
                Err(e) => return Ok(Step::Bad(e)),
            },
        };
        let total = h.total_len();
        if pos.saturating_add(total as u64) > self.end {
            return Ok(Step::Bad(RecordsError::Truncated));
        }
        if check_crc {
            if total <= self.window {
                let bytes = match self.get(pos, total)? {
                    Some(b) => b,
                    None => return Ok(Step::Bad(RecordsError::Truncated)),
                };
                if let Err(e) = validate_batch(bytes) {
                    return Ok(Step::Bad(e));
                }
            } else if let Some(e) = self.check_large(pos, &h)? {
                // A (possibly bogus) huge length: CRC it in window-sized pieces rather than
                // allocating the whole claimed size.
                return Ok(Step::Bad(e));
            }
        }
        self.pos = pos + total as u64;
        Ok(Step::Batch(h))
    }

    /// `validate_batch` for a batch larger than the window, streaming the CRC.
    fn check_large(&mut self, pos: u64, h: &BatchHeader) -> io::Result<Option<RecordsError>> {
        let mut crc = 0u32;
        let mut at = pos + CRC_START as u64;
        let end = pos + h.total_len() as u64;
        while at < end {
            let n = ((end - at) as usize).min(self.window);
            match self.get(at, n)? {
                Some(b) => crc = crc32c::crc32c_append(crc, b),
                None => return Ok(Some(RecordsError::Truncated)),
            }
            at += n as u64;
        }
        if crc != h.crc {
            return Ok(Some(RecordsError::BadCrc {
                expected: h.crc,
                actual: crc,
            }));
        }
        if h.record_count < 0 || h.last_offset_delta < 0 {
            return Ok(Some(RecordsError::Corrupt("negative count")));
        }
        Ok(None)
    }

    /// The whole batch at `pos` (for record-level searches). Call before `next` moves on.
    pub fn batch_bytes(&mut self, pos: u64, len: usize) -> io::Result<Option<&[u8]>> {
        self.get(pos, len)
    }
}
