//! The 61-byte v2 batch header: parse, validate, iterate, and the in-place rewrites the broker does.

use super::{attr, off, RecordsError, BATCH_HEADER_LEN, LOG_OVERHEAD, MAGIC_V2};
use byteorder::{BigEndian, ByteOrder};

/// Codec named by attribute bits 0..2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
    Unknown(u8),
}

impl Compression {
    pub fn from_bits(bits: u8) -> Compression {
        match bits & 7 {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            x => Compression::Unknown(x),
        }
    }

    pub fn bits(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
            Compression::Unknown(x) => (x & 7) as i16,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl BatchHeader {
    /// Parses the header at the start of `buf`. Reads magic first (it sits at byte 16 in every
    /// format), so an old-format batch is reported as `UnsupportedMagic`, not as garbage.
    /// Checks that `batchLength` can hold a header; not that `buf` holds the whole batch.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, RecordsError> {
        if buf.len() <= off::MAGIC {
            return Err(RecordsError::Truncated);
        }
        let magic = buf[off::MAGIC] as i8;
        if magic != MAGIC_V2 {
            return Err(RecordsError::UnsupportedMagic(magic));
        }
        if buf.len() < BATCH_HEADER_LEN {
            return Err(RecordsError::Truncated);
        }
        let batch_length = BigEndian::read_i32(&buf[off::LENGTH..]);
        if batch_length < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32 {
            return Err(RecordsError::BadLength(batch_length));
        }
        Ok(BatchHeader {
            base_offset: BigEndian::read_i64(&buf[off::BASE_OFFSET..]),
            batch_length,
            partition_leader_epoch: BigEndian::read_i32(&buf[off::LEADER_EPOCH..]),
            magic,
            crc: BigEndian::read_u32(&buf[off::CRC..]),
            attributes: BigEndian::read_i16(&buf[off::ATTRIBUTES..]),
            last_offset_delta: BigEndian::read_i32(&buf[off::LAST_OFFSET_DELTA..]),
            base_timestamp: BigEndian::read_i64(&buf[off::BASE_TIMESTAMP..]),
            max_timestamp: BigEndian::read_i64(&buf[off::MAX_TIMESTAMP..]),
            producer_id: BigEndian::read_i64(&buf[off::PRODUCER_ID..]),
            producer_epoch: BigEndian::read_i16(&buf[off::PRODUCER_EPOCH..]),
            base_sequence: BigEndian::read_i32(&buf[off::BASE_SEQUENCE..]),
            record_count: BigEndian::read_i32(&buf[off::RECORD_COUNT..]),
        })
    }

    /// Whole batch size on disk / on the wire: `batchLength` + 12.
    pub fn total_len(&self) -> usize {
        self.batch_length.max(0) as usize + LOG_OVERHEAD
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset.wrapping_add(self.last_offset_delta as i64)
    }

    /// The offset after this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().wrapping_add(1)
    }

    pub fn compression(&self) -> Compression {
        Compression::from_bits((self.attributes & attr::COMPRESSION_MASK) as u8)
    }

    pub fn timestamp_type_is_log_append(&self) -> bool {
        self.attributes & attr::TIMESTAMP_TYPE != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & attr::TRANSACTIONAL != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & attr::CONTROL != 0
    }

    /// True when the batch carries idempotent-producer state.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
}

/// CRC-32C of everything after the crc field (attributes to the end of the batch).
/// `batch` must hold at least the header; the caller passes exactly one batch.
pub fn compute_crc(batch: &[u8]) -> u32 {
    if batch.len() < off::ATTRIBUTES {
        return crc32c::crc32c(&[]);
    }
    crc32c::crc32c(&batch[off::ATTRIBUTES..])
}

/// Fully checks the batch at the start of `batch`: magic 2, a length that fits the buffer, the
/// CRC over exactly that length, and sane counts. Bytes after the batch are ignored; use
/// `total_len()` of the result to step over it.
pub fn validate_batch(batch: &[u8]) -> Result<BatchHeader, RecordsError> {
    let h = BatchHeader::parse(batch)?;
    let total = h.total_len();
    if total > batch.len() {
        return Err(RecordsError::Truncated);
    }
    let actual = compute_crc(&batch[..total]);
    if actual != h.crc {
        return Err(RecordsError::BadCrc {
            expected: h.crc,
            actual,
        });
    }
    if h.record_count < 0 {
        return Err(RecordsError::Corrupt("negative record count"));
    }
    if h.last_offset_delta < 0 {
        return Err(RecordsError::Corrupt("negative last offset delta"));
    }
    if h.record_count > 0 && h.record_count as i64 > h.last_offset_delta as i64 + 1 {
        return Err(RecordsError::Corrupt("more records than offsets"));
    }
    Ok(h)
}

/// Iterates back-to-back batches. Yields `(header, bytes_of_that_batch)`; stops with `None` at a
/// clean end, or yields one `Err` (then `None`) at a partial or malformed batch.
pub struct BatchIter<'a> {
    buf: &'a [u8],
    pos: usize,
    check_crc: bool,
    done: bool,
}

impl<'a> BatchIter<'a> {
    /// Byte position of the next batch (after iteration stops: the end of the valid prefix).
    pub fn position(&self) -> usize {
        self.pos
    }
}

/// Iterates batches checking header structure and lengths only (no CRC: for data already on disk).
pub fn batches(buf: &[u8]) -> BatchIter<'_> {
    BatchIter {
        buf,
        pos: 0,
        check_crc: false,
        done: false,
    }
}

/// Iterates batches running `validate_batch` on each (for untrusted input and recovery).
pub fn batches_checked(buf: &[u8]) -> BatchIter<'_> {
    BatchIter {
        buf,
        pos: 0,
        check_crc: true,
        done: false,
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<(BatchHeader, &'a [u8]), RecordsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.buf.len() {
            return None;
        }
        let rest = &self.buf[self.pos..];
        let parsed = if self.check_crc {
            validate_batch(rest)
        } else {
            BatchHeader::parse(rest).and_then(|h| {
                if h.total_len() > rest.len() {
                    Err(RecordsError::Truncated)
                } else {
                    Ok(h)
                }
            })
        };
        match parsed {
            Ok(h) => {
                let total = h.total_len();
                self.pos += total;
                Some(Ok((h, &rest[..total])))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Rewrites baseOffset (not covered by the CRC).
pub fn set_base_offset(batch: &mut [u8], base: i64) {
    if batch.len() >= off::BASE_OFFSET + 8 {
        BigEndian::write_i64(&mut batch[off::BASE_OFFSET..], base);
    }
}

/// Rewrites partitionLeaderEpoch (not covered by the CRC).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    if batch.len() >= off::LEADER_EPOCH + 4 {
        BigEndian::write_i32(&mut batch[off::LEADER_EPOCH..], epoch);
    }
}

/// What Kafka's `setMaxTimestamp(LOG_APPEND_TIME, ts)` does: set the timestamp-type bit and
/// maxTimestamp, leave baseTimestamp and the record deltas alone, recompute the CRC.
/// `batch` must be exactly one batch.
pub fn set_log_append_time(batch: &mut [u8], ts: i64) {
    if batch.len() < BATCH_HEADER_LEN {
        return;
    }
    let a = BigEndian::read_i16(&batch[off::ATTRIBUTES..]) | attr::TIMESTAMP_TYPE;
    BigEndian::write_i16(&mut batch[off::ATTRIBUTES..], a);
    BigEndian::write_i64(&mut batch[off::MAX_TIMESTAMP..], ts);
    let crc = compute_crc(batch);
    BigEndian::write_u32(&mut batch[off::CRC..], crc);
}
