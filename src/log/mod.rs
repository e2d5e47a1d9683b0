//! The partition log in Kafka's on-disk format (`LogSegment`, `OffsetIndex`, `TimeIndex`,
//! `LogLoader`): `<log_dir>/<topic>-<partition>/` holding `<20-digit base>.log` segments with
//! sparse `.index` and `.timeindex` files, recovery from the recovery point after a crash, and
//! checkpoint files so a clean restart does not scan.

mod cleaner;
pub mod faults;
pub mod health;
mod index;
pub mod leader_epoch;
mod manager;
mod partition;
mod partition_epochs;
mod partition_txn;
pub mod producer_state;
mod scan;
mod segment;
pub mod txn_index;
pub mod validate;

pub use cleaner::{CleanProgress, CLEANER_OFFSET_CHECKPOINT};
pub use health::{DirHealth, SharedHealth};
pub use manager::{
    read_checkpoint, read_partition_metadata, write_checkpoint, LogManager, CLEAN_SHUTDOWN_FILE,
    LOG_START_OFFSET_CHECKPOINT, RECOVERY_POINT_CHECKPOINT,
};
pub use partition::{OpenStats, PartitionLog, RecoveryState};
pub use validate::{RecordError, RecordErrors};

use crate::records::RecordsError;
use std::fmt;
use std::io;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// Per-partition settings (Kafka's topic configs of the same names).
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// `segment.bytes`
    pub segment_bytes: u64,
    /// `segment.ms`
    pub segment_ms: i64,
    /// `index.interval.bytes`
    pub index_interval_bytes: usize,
    /// `segment.index.bytes`
    pub max_index_bytes: usize,
    /// `flush.messages`
    pub flush_messages: u64,
    /// `flush.ms`
    pub flush_ms: i64,
    /// `message.timestamp.type`
    pub timestamp_type: TimestampType,
    /// `max.message.bytes`
    pub max_message_bytes: usize,
    /// `retention.ms` (-1: keep forever)
    pub retention_ms: i64,
    /// `retention.bytes` (-1: no size limit)
    pub retention_bytes: i64,
    /// `message.timestamp.before.max.ms`: how far in the past a CreateTime may be.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: how far in the future a CreateTime may be (Kafka 4: 1 h).
    pub timestamp_after_max_ms: i64,
    /// `cleanup.policy` contains `compact`.
    pub cleanup_policy_compact: bool,
    /// `cleanup.policy` contains `delete` (time and size retention apply).
    pub cleanup_policy_delete: bool,
    /// `delete.retention.ms`: how long tombstones survive compaction.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: segments with newer records are not compacted.
    pub min_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`
    pub min_cleanable_dirty_ratio: f64,
    /// `producer.id.expiration.ms`: idle producers (without an open transaction) are forgotten.
    pub producer_id_expiration_ms: i64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            index_interval_bytes: 4096,
            max_index_bytes: 10 << 20,
            flush_messages: u64::MAX,
            flush_ms: i64::MAX,
            timestamp_type: TimestampType::CreateTime,
            max_message_bytes: 1_048_588,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: 3_600_000,
            cleanup_policy_compact: false,
            cleanup_policy_delete: true,
            delete_retention_ms: 86_400_000,
            min_compaction_lag_ms: 0,
            min_cleanable_dirty_ratio: 0.5,
            producer_id_expiration_ms: 86_400_000,
        }
    }
}

#[derive(Debug)]
pub enum LogError {
    Io(io::Error),
    /// A batch failed validation (maps to CORRUPT_MESSAGE).
    Records(RecordsError),
    /// A batch above `max.message.bytes`, or a request above `segment.bytes`.
    MessageTooLarge,
    OffsetOutOfRange {
        requested: i64,
        start: i64,
        end: i64,
    },
    UnsupportedMagic(i8),
    /// An idempotent producer's sequence does not follow its last one (OUT_OF_ORDER_SEQUENCE_NUMBER).
    OutOfOrderSequence {
        producer_id: i64,
        expected: i64,
        got: i32,
    },
    /// An idempotent producer's epoch is older than its current one (INVALID_PRODUCER_EPOCH).
    InvalidProducerEpoch(i64),
    /// Records the topic does not accept: keyless records on a compacted topic (INVALID_RECORD),
    /// CreateTimes outside `message.timestamp.before/after.max.ms` (INVALID_TIMESTAMP).
    RecordErrors(RecordErrors),
    /// On-disk data that cannot be read.
    Corrupt(String),
    /// The log directory went offline after an I/O error, or the partition failed
    /// (KAFKA_STORAGE_ERROR).
    Offline,
    /// A batch the partition refuses whole (INVALID_RECORD), e.g. a control batch from a client.
    InvalidBatch(String),
    /// A write that does not fit the producer's transaction state (INVALID_TXN_STATE).
    InvalidTxnState(String),
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::Io(e) => write!(f, "log I/O error: {e}"),
            LogError::Records(e) => write!(f, "{e}"),
            LogError::MessageTooLarge => write!(f, "record batch too large"),
            LogError::OffsetOutOfRange {
                requested,
                start,
                end,
            } => write!(f, "offset {requested} out of range [{start}, {end}]"),
            LogError::UnsupportedMagic(m) => write!(f, "unsupported record batch magic {m}"),
            LogError::OutOfOrderSequence {
                producer_id,
                expected,
                got,
            } => write!(
                f,
                "out of order sequence for producer {producer_id}: expected {expected}, got {got}"
            ),
            LogError::InvalidProducerEpoch(pid) => {
                write!(f, "stale epoch for producer {pid}")
            }
            LogError::RecordErrors(e) => write!(f, "{}", e.summary()),
            LogError::Corrupt(what) => write!(f, "corrupt log: {what}"),
            LogError::Offline => write!(f, "the log directory is offline"),
            LogError::InvalidBatch(why) | LogError::InvalidTxnState(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for LogError {}

impl From<io::Error> for LogError {
    fn from(e: io::Error) -> Self {
        LogError::Io(e)
    }
}

impl From<RecordsError> for LogError {
    fn from(e: RecordsError) -> Self {
        match e {
            RecordsError::UnsupportedMagic(m) => LogError::UnsupportedMagic(m),
            e => LogError::Records(e),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The broker time stamped on the batches, -1 for CreateTime.
    pub log_append_time: i64,
    pub log_start_offset: i64,
    pub max_timestamp: i64,
    pub record_count: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadInfo {
    /// Bytes appended to `out`.
    pub bytes: usize,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod txn_tests;
