//! Record batches, magic v2, at the byte level (Kafka's `DefaultRecordBatch` / `DefaultRecord`).
//!
//! The broker stores batches exactly as producers send them. This module checks their header and
//! CRC-32C, rewrites the fields the broker owns (base offset, leader epoch, log-append time) in
//! place, and decodes records only for the few paths that need keys or values.

mod batch;
mod builder;
mod compression;
mod record;
pub mod stream;

pub use batch::{
    batches, batches_checked, compute_crc, set_base_offset, set_log_append_time,
    set_partition_leader_epoch, validate_batch, BatchHeader, BatchIter, Compression,
};
pub use builder::BatchBuilder;
pub use compression::{
    compress, compress_with, decompress, recompress_batch, recompress_batch_with,
};
pub use record::{
    decode_records, iter_records, parse_records, records_payload, Record, RecordIter,
};

use std::fmt;

/// Size of the v2 batch header; records start here.
pub const BATCH_HEADER_LEN: usize = 61;
/// baseOffset (8) + batchLength (4): the bytes not counted by `batchLength`.
pub const LOG_OVERHEAD: usize = 12;
/// The only batch format this broker accepts.
pub const MAGIC_V2: i8 = 2;
/// Default cap for decompressing one batch (a hostile gzip bomb stops here).
pub const DEFAULT_DECOMPRESS_CAP: usize = 64 << 20;

/// Field offsets inside a batch.
pub(crate) mod off {
    pub const BASE_OFFSET: usize = 0;
    pub const LENGTH: usize = 8;
    pub const LEADER_EPOCH: usize = 12;
    pub const MAGIC: usize = 16;
    pub const CRC: usize = 17;
    pub const ATTRIBUTES: usize = 21;
    pub const LAST_OFFSET_DELTA: usize = 23;
    pub const BASE_TIMESTAMP: usize = 27;
    pub const MAX_TIMESTAMP: usize = 35;
    pub const PRODUCER_ID: usize = 43;
    pub const PRODUCER_EPOCH: usize = 51;
    pub const BASE_SEQUENCE: usize = 53;
    pub const RECORD_COUNT: usize = 57;
}

/// Attribute bits.
pub(crate) mod attr {
    pub const COMPRESSION_MASK: i16 = 0x07;
    pub const TIMESTAMP_TYPE: i16 = 0x08;
    pub const TRANSACTIONAL: i16 = 0x10;
    pub const CONTROL: i16 = 0x20;
}

/// Why a batch or record was rejected.
#[derive(Debug)]
pub enum RecordsError {
    /// The buffer ends before the batch (or a field) does.
    Truncated,
    /// Magic 0 or 1 (or anything but 2).
    UnsupportedMagic(i8),
    /// A batchLength that cannot hold a v2 header.
    BadLength(i32),
    /// The stored CRC (`expected`) does not match the bytes (`actual`).
    BadCrc { expected: u32, actual: u32 },
    /// Any other structural problem.
    Corrupt(&'static str),
    /// Decompression failed, exceeded its cap, or the codec is not supported.
    Compression(String),
}

impl fmt::Display for RecordsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordsError::Truncated => write!(f, "record batch truncated"),
            RecordsError::UnsupportedMagic(m) => write!(f, "unsupported record batch magic {m}"),
            RecordsError::BadLength(n) => write!(f, "bad record batch length {n}"),
            RecordsError::BadCrc { expected, actual } => {
                write!(
                    f,
                    "record batch CRC mismatch: stored {expected:#010x}, computed {actual:#010x}"
                )
            }
            RecordsError::Corrupt(what) => write!(f, "corrupt record batch: {what}"),
            RecordsError::Compression(what) => write!(f, "record batch compression: {what}"),
        }
    }
}

impl std::error::Error for RecordsError {}

impl From<crate::protocol::wire::DecodeError> for RecordsError {
    fn from(e: crate::protocol::wire::DecodeError) -> Self {
        use crate::protocol::wire::DecodeError as D;
        match e {
            D::Truncated { .. } => RecordsError::Corrupt("record extends past its batch"),
            D::BadLength(_) => RecordsError::Corrupt("record field length out of range"),
            D::BadVarint => RecordsError::Corrupt("malformed varint"),
            D::BadUtf8 => RecordsError::Corrupt("header key is not UTF-8"),
            D::UnexpectedNull(_) => RecordsError::Corrupt("unexpected null"),
            D::Invalid(what) => RecordsError::Corrupt(what),
        }
    }
}

#[cfg(test)]
mod tests;
