//! Streaming over a batch's records without holding them: the records section is decompressed a
//! block at a time (capped in total) and each record is read, checked against its length and
//! handed to a visitor as a small summary. Memory stays constant whatever the batch expands to,
//! so a compression bomb costs CPU up to the cap, never memory.

use super::compression::{
    too_big, xerial_blocks, XerialBlocks, XERIAL_HEADER_LEN, XERIAL_MAGIC, ZSTD_MIN_WINDOW_CAP,
};
use super::{BatchHeader, Compression, RecordsError, BATCH_HEADER_LEN};
use std::io::{self, BufRead, BufReader, Read};

/// What validation needs to know of one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordInfo {
    /// Position in the batch (Kafka's `batchIndex`).
    pub index: i32,
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub has_key: bool,
}

/// The records section of one batch as a byte stream, decompressed on the fly. Reading more than
/// `cap` bytes in total is an error.
pub struct PayloadReader<'a> {
    inner: Inner<'a>,
    codec: &'static str,
    produced: usize,
    cap: usize,
}

enum Inner<'a> {
    Plain(&'a [u8]),
    Gzip(Box<flate2::read::MultiGzDecoder<&'a [u8]>>),
    Lz4(Box<lz4_flex::frame::FrameDecoder<&'a [u8]>>),
    Zstd(Option<Box<ZstdFrame<'a>>>),
    Snappy(SnappyReader<'a>),
}

type ZstdFrame<'a> = ruzstd::decoding::StreamingDecoder<&'a [u8], ruzstd::decoding::FrameDecoder>;

/// Snappy, raw or xerial-framed: one decompressed block held at a time.
struct SnappyReader<'a> {
    blocks: Option<XerialBlocks<'a>>,
    raw: Option<&'a [u8]>,
    buf: Vec<u8>,
    pos: usize,
    cap: usize,
}

impl<'a> PayloadReader<'a> {
    /// The reader over `batch`'s records section (`batch` holds at least the whole batch).
    pub fn new(batch: &'a [u8], cap: usize) -> Result<PayloadReader<'a>, RecordsError> {
        let h = BatchHeader::parse(batch)?;
        if h.total_len() > batch.len() {
            return Err(RecordsError::Truncated);
        }
        Self::of(
            h.compression(),
            &batch[BATCH_HEADER_LEN..h.total_len()],
            cap,
        )
    }

    /// The reader over a records section compressed with `codec`.
    pub fn of(
        codec: Compression,
        body: &'a [u8],
        cap: usize,
    ) -> Result<PayloadReader<'a>, RecordsError> {
        let zstd_window = cap.max(ZSTD_MIN_WINDOW_CAP) as u64;
        let (inner, name) = match codec {
            Compression::None => (Inner::Plain(body), "none"),
            Compression::Gzip => (
                Inner::Gzip(Box::new(flate2::read::MultiGzDecoder::new(body))),
                "gzip",
            ),
            Compression::Lz4 => (
                Inner::Lz4(Box::new(lz4_flex::frame::FrameDecoder::new(body))),
                "lz4",
            ),
            Compression::Zstd => {
                if body.is_empty() {
                    return Err(super::compression::err("zstd", "empty payload"));
                }
                let dec =
                    ruzstd::decoding::StreamingDecoder::new_with_max_window_size(body, zstd_window)
                        .map_err(|e| super::compression::err("zstd", e))?;
                (Inner::Zstd(Some(Box::new(dec))), "zstd")
            }
            Compression::Snappy => {
                let xerial = body.len() >= XERIAL_HEADER_LEN && &body[..8] == XERIAL_MAGIC;
                let r = SnappyReader {
                    blocks: xerial.then(|| xerial_blocks(body)),
                    raw: (!xerial).then_some(body),
                    buf: Vec::new(),
                    pos: 0,
                    cap,
                };
                (Inner::Snappy(r), "snappy")
            }
            Compression::Unknown(x) => {
                return Err(super::compression::err(
                    "codec",
                    format!("unknown compression codec {x}"),
                ))
            }
        };
        Ok(PayloadReader {
            inner,
            codec: name,
            produced: 0,
            cap,
        })
    }

    fn read_inner(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Plain(b) => b.read(buf),
            Inner::Gzip(d) => d.read(buf),
            Inner::Lz4(d) => d.read(buf),
            Inner::Snappy(s) => s.read(buf),
            Inner::Zstd(slot) => loop {
                let Some(dec) = slot.as_mut() else {
                    return Ok(0);
                };
                let n = dec.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                // This frame is done: the next one, if any bytes are left.
                let rest = slot.take().map(|d| d.into_inner()).unwrap_or(&[]);
                if rest.is_empty() {
                    return Ok(0);
                }
                let window = self.cap.max(ZSTD_MIN_WINDOW_CAP) as u64;
                let next =
                    ruzstd::decoding::StreamingDecoder::new_with_max_window_size(rest, window)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                *slot = Some(Box::new(next));
            },
        }
    }

    /// Maps an error of this reader to the batch error it stands for.
    pub fn error(&self, e: io::Error) -> RecordsError {
        if self.produced > self.cap {
            too_big(self.codec, self.cap)
        } else if e.kind() == io::ErrorKind::UnexpectedEof {
            RecordsError::Corrupt("record extends past its batch")
        } else {
            super::compression::err(self.codec, e)
        }
    }
}

impl Read for PayloadReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Never ask for more than the cap allows, plus one byte to notice an overrun.
        let room = (self.cap - self.produced.min(self.cap)).saturating_add(1);
        let want = buf.len().min(room);
        let n = self.read_inner(&mut buf[..want])?;
        self.produced += n;
        if self.produced > self.cap {
            return Err(io::Error::other("decompressed size exceeds the cap"));
        }
        Ok(n)
    }
}

impl Read for SnappyReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            let block = if let Some(raw) = self.raw.take() {
                raw
            } else if let Some(blocks) = self.blocks.as_mut() {
                match blocks.next() {
                    None => return Ok(0),
                    Some(Ok(b)) => b,
                    Some(Err(e)) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
                }
            } else {
                return Ok(0);
            };
            let n = snap::raw::decompress_len(block)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if n > self.cap {
                return Err(io::Error::other("decompressed size exceeds the cap"));
            }
            self.buf.clear();
            self.buf.resize(n, 0);
            let written = snap::raw::Decoder::new()
                .decompress(block, &mut self.buf)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            self.buf.truncate(written);
            self.pos = 0;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Reads records one at a time from a records section, checking each against its length.
struct Walker<R: Read> {
    r: BufReader<R>,
    /// Bytes consumed from the stream.
    pos: u64,
}

#[derive(Debug)]
enum WalkError {
    Io(io::Error),
    Bad(&'static str),
}

impl From<io::Error> for WalkError {
    fn from(e: io::Error) -> Self {
        WalkError::Io(e)
    }
}

impl<R: Read> Walker<R> {
    fn byte(&mut self) -> Result<u8, WalkError> {
        let mut b = [0u8; 1];
        self.r.read_exact(&mut b)?;
        self.pos += 1;
        Ok(b[0])
    }

    fn uvarlong(&mut self, max_bytes: usize) -> Result<u64, WalkError> {
        let mut value: u64 = 0;
        for i in 0..max_bytes {
            let b = self.byte()?;
            // A 10th byte holds bit 63 only, as the record decoder (`Reader::uvarlong`) requires.
            if i == 9 && b > 0x01 {
                return Err(WalkError::Bad("malformed varint"));
            }
            value |= ((b & 0x7f) as u64) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WalkError::Bad("malformed varint"))
    }

    fn varint(&mut self) -> Result<i32, WalkError> {
        let v = self.uvarlong(5)?;
        if v > u32::MAX as u64 {
            return Err(WalkError::Bad("malformed varint"));
        }
        let v = v as u32;
        Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
    }

    fn varlong(&mut self) -> Result<i64, WalkError> {
        let v = self.uvarlong(10)?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    fn skip(&mut self, n: u64) -> Result<(), WalkError> {
        let mut left = n;
        while left > 0 {
            let avail = self.r.fill_buf()?;
            if avail.is_empty() {
                return Err(WalkError::Bad("record extends past its batch"));
            }
            let k = (avail.len() as u64).min(left) as usize;
            self.r.consume(k);
            left -= k as u64;
        }
        self.pos += n;
        Ok(())
    }

    /// A length-prefixed field that must fit in the record's remaining `budget` bytes.
    /// Returns whether it was non-null.
    fn skip_field(&mut self, end: u64) -> Result<bool, WalkError> {
        let len = self.varint()?;
        if len == -1 {
            return Ok(false);
        }
        if len < 0 || self.pos + len as u64 > end {
            return Err(WalkError::Bad("record field length out of range"));
        }
        self.skip(len as u64)?;
        Ok(true)
    }

    /// `skip_field` for a string (a header key): its bytes must be UTF-8, as the record decoder
    /// (`parse_records`, used by the cleaner) requires. Checked as the bytes stream past.
    fn skip_utf8_field(&mut self, end: u64) -> Result<bool, WalkError> {
        const NOT_UTF8: WalkError = WalkError::Bad("header key is not UTF-8");
        let len = self.varint()?;
        if len == -1 {
            return Ok(false);
        }
        if len < 0 || self.pos + len as u64 > end {
            return Err(WalkError::Bad("record field length out of range"));
        }
        let mut left = len as usize;
        while left > 0 {
            let avail = self.r.fill_buf()?;
            if avail.is_empty() {
                return Err(WalkError::Bad("record extends past its batch"));
            }
            let chunk = &avail[..avail.len().min(left)];
            let good = match std::str::from_utf8(chunk) {
                Ok(_) => chunk.len(),
                Err(e) if e.error_len().is_some() => return Err(NOT_UTF8),
                Err(e) if e.valid_up_to() > 0 => e.valid_up_to(),
                Err(_) => {
                    // One character split across buffer refills: read it byte by byte.
                    let width = match chunk[0] {
                        0xc2..=0xdf => 2,
                        0xe0..=0xef => 3,
                        0xf0..=0xf4 => 4,
                        _ => return Err(NOT_UTF8),
                    };
                    if width > left {
                        return Err(NOT_UTF8);
                    }
                    let mut c = [0u8; 4];
                    for b in &mut c[..width] {
                        *b = self.byte()?;
                    }
                    std::str::from_utf8(&c[..width]).map_err(|_| NOT_UTF8)?;
                    left -= width;
                    continue;
                }
            };
            self.r.consume(good);
            self.pos += good as u64;
            left -= good;
        }
        Ok(true)
    }

    fn record(&mut self, index: i32) -> Result<RecordInfo, WalkError> {
        let len = self.varint()?;
        if len < 0 {
            return Err(WalkError::Bad("record length out of range"));
        }
        let end = self.pos + len as u64;
        let attributes = self.byte()? as i8;
        let timestamp_delta = self.varlong()?;
        let offset_delta = self.varint()?;
        let has_key = self.skip_field(end)?;
        self.skip_field(end)?;
        let headers = self.varint()?;
        if headers < 0 || headers as u64 > end.saturating_sub(self.pos) / 2 {
            return Err(WalkError::Bad("header count out of range"));
        }
        for _ in 0..headers {
            if !self.skip_utf8_field(end)? {
                return Err(WalkError::Bad("null header key"));
            }
            self.skip_field(end)?;
        }
        if self.pos != end {
            return Err(WalkError::Bad("record length does not match its fields"));
        }
        Ok(RecordInfo {
            index,
            attributes,
            timestamp_delta,
            offset_delta,
            has_key,
        })
    }
}

/// Reads the `count` records of a batch's records section from `payload`, calling `visit` for
/// each; the section must end exactly after the last one. Nothing is kept between records.
pub fn walk_records(
    payload: &mut PayloadReader<'_>,
    count: i32,
    mut visit: impl FnMut(&RecordInfo),
) -> Result<(), RecordsError> {
    if count < 0 {
        return Err(RecordsError::Corrupt("negative record count"));
    }
    let result = (|| {
        let mut w = Walker {
            r: BufReader::with_capacity(8 * 1024, &mut *payload),
            pos: 0,
        };
        for i in 0..count {
            let info = w.record(i)?;
            visit(&info);
        }
        if !w.r.fill_buf()?.is_empty() {
            return Err(WalkError::Bad("bytes after the last record"));
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(()),
        Err(WalkError::Bad(what)) => Err(RecordsError::Corrupt(what)),
        Err(WalkError::Io(e)) => Err(payload.error(e)),
    }
}

/// `walk_records` over one whole batch, decompressing up to `cap` bytes.
pub fn walk_batch(
    batch: &[u8],
    cap: usize,
    visit: impl FnMut(&RecordInfo),
) -> Result<(), RecordsError> {
    let h = BatchHeader::parse(batch)?;
    let mut payload = PayloadReader::new(batch, cap)?;
    walk_records(&mut payload, h.record_count, visit)
}
