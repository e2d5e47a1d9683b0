//! Walks the batches of a segment file through a read window, so recovery and lookups do a
//! few large `pread`s instead of one per batch.

use crate::records::{validate_batch, BatchHeader, RecordsError, BATCH_HEADER_LEN};
use std::fs::File;
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
            let bytes = match self.get(pos, total)? {
                Some(b) => b,
                None => return Ok(Step::Bad(RecordsError::Truncated)),
            };
            if let Err(e) = validate_batch(bytes) {
                return Ok(Step::Bad(e));
            }
        }
        self.pos = pos + total as u64;
        Ok(Step::Batch(h))
    }

    /// The whole batch at `pos` (for record-level searches). Call before `next` moves on.
    pub fn batch_bytes(&mut self, pos: u64, len: usize) -> io::Result<Option<&[u8]>> {
        self.get(pos, len)
    }
}
