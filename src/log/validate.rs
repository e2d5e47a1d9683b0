//! Record-level checks of Kafka's `LogValidator` that need more than the batch header: keys on
//! compacted topics and CreateTime bounds. They stream over the records (see
//! `records::stream`), so a batch that decompresses to millions of records costs no memory, and
//! they run only when the header says they might fail (or the topic needs keys). A batch that
//! fails is refused whole, naming each bad record (KIP-467) so clients fail exactly those.

use super::{LogConfig, LogError, TimestampType};
use crate::records::stream::walk_batch;
use crate::records::{BatchHeader, DEFAULT_DECOMPRESS_CAP};

/// Record errors kept per batch; the count in the summary message stays exact.
const MAX_RECORD_ERRORS: usize = 10_000;

/// One rejected record (Kafka's `ProduceResponse.RecordError`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordError {
    pub batch_index: i32,
    pub message: String,
}

/// Why records of a batch were refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordErrors {
    pub errors: Vec<RecordError>,
    /// Errors found in all (`errors` keeps at most `MAX_RECORD_ERRORS`).
    pub total: usize,
    /// Any of them is a timestamp error: the batch is answered INVALID_TIMESTAMP, otherwise
    /// INVALID_RECORD.
    pub invalid_timestamp: bool,
}

impl RecordErrors {
    /// The partition-level message Kafka sends with the record errors.
    pub fn summary(&self) -> String {
        if self.invalid_timestamp {
            return "One or more records have been rejected due to invalid timestamp".into();
        }
        let shown: Vec<String> = self
            .errors
            .iter()
            .take(3)
            .map(|e| {
                format!(
                    "RecordError(batchIndex={}, message='{}')",
                    e.batch_index, e.message
                )
            })
            .collect();
        format!(
            "One or more records have been rejected due to {} record errors in total, and only \
             showing the first three errors at most: [{}]",
            self.total,
            shown.join(", ")
        )
    }
}

/// Checks the records of one batch (header already validated) appended as leader at `now_ms`
/// to `topic_partition` (for messages, `topic-partition`).
pub(super) fn check_records(
    h: &BatchHeader,
    bytes: &[u8],
    cfg: &LogConfig,
    now_ms: i64,
    topic_partition: &dyn Fn() -> String,
) -> Result<(), LogError> {
    if h.is_control() {
        return Ok(());
    }
    let create_time = cfg.timestamp_type == TimestampType::CreateTime;
    // The header's max timestamp bounds every record from above; nothing bounds them from
    // below, so a finite `before` bound needs every record.
    let maybe_future = create_time
        && h.max_timestamp >= 0
        && h.max_timestamp.saturating_sub(now_ms) > cfg.timestamp_after_max_ms;
    let maybe_past = create_time && cfg.timestamp_before_max_ms != i64::MAX;
    let log_append_bit = h.timestamp_type_is_log_append();
    if !(cfg.cleanup_policy_compact || maybe_future || maybe_past || log_append_bit) {
        return Ok(());
    }
    let mut found = RecordErrors {
        errors: Vec::new(),
        total: 0,
        invalid_timestamp: false,
    };
    let (lo, hi) = (
        now_ms.saturating_sub(cfg.timestamp_before_max_ms),
        now_ms.saturating_add(cfg.timestamp_after_max_ms),
    );
    walk_batch(bytes, DEFAULT_DECOMPRESS_CAP, |r| {
        let ts = h.base_timestamp.wrapping_add(r.timestamp_delta);
        let message = if cfg.cleanup_policy_compact && !r.has_key {
            format!(
                "Compacted topic cannot accept message without key in topic partition {}",
                topic_partition()
            )
        } else if create_time && ts != -1 && (ts < lo || ts > hi) {
            found.invalid_timestamp = true;
            format!(
                "Timestamp {ts} of message with offset {} is out of range. The timestamp should \
                 be within [{lo}, {hi}]",
                h.base_offset.wrapping_add(r.offset_delta as i64)
            )
        } else if log_append_bit {
            found.invalid_timestamp = true;
            format!(
                "Invalid timestamp type in message at batch index {}. Producer should not set \
                 timestamp type to LogAppendTime.",
                r.index
            )
        } else {
            return;
        };
        found.total += 1;
        if found.errors.len() < MAX_RECORD_ERRORS {
            found.errors.push(RecordError {
                batch_index: r.index,
                message,
            });
        }
    })?;
    if found.total > 0 {
        return Err(LogError::RecordErrors(found));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{BatchBuilder, Compression};

    fn cfg(compact: bool) -> LogConfig {
        LogConfig {
            cleanup_policy_compact: compact,
            ..LogConfig::default()
        }
    }

    fn batch(keys: &[Option<&[u8]>], ts: &[i64], c: Compression) -> Vec<u8> {
        let mut b = BatchBuilder::new(0, ts[0]).compression(c);
        for (k, t) in keys.iter().zip(ts) {
            b.push(None, *t, *k, Some(b"v"), &[]);
        }
        b.finish()
    }

    fn check(bytes: &[u8], cfg: &LogConfig, now: i64) -> Result<(), LogError> {
        let h = BatchHeader::parse(bytes).unwrap();
        check_records(&h, bytes, cfg, now, &|| "t-0".to_string())
    }

    #[test]
    fn keyless_records_of_a_compacted_topic_are_named_one_by_one() {
        let now = 1_700_000_000_000;
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let b = batch(
                &[Some(b"a"), None, Some(b"c"), None],
                &[now, now, now, now],
                c,
            );
            let Err(LogError::RecordErrors(e)) = check(&b, &cfg(true), now) else {
                panic!("{c:?}: refused");
            };
            let idx: Vec<i32> = e.errors.iter().map(|e| e.batch_index).collect();
            assert_eq!(idx, vec![1, 3], "{c:?}");
            assert!(!e.invalid_timestamp);
            assert!(e.errors[0].message.starts_with(
                "Compacted topic cannot accept message without key in topic partition t-0"
            ));
            assert!(
                e.summary().contains("due to 2 record errors in total"),
                "{}",
                e.summary()
            );
            // The same batch is fine for a topic that does not compact.
            assert!(check(&b, &cfg(false), now).is_ok());
        }
    }

    #[test]
    fn out_of_range_timestamps_are_named_and_answered_invalid_timestamp() {
        let now = 1_700_000_000_000;
        let hour = 3_600_000;
        let b = batch(
            &[Some(b"a"), Some(b"b"), Some(b"c")],
            &[now, now + 2 * hour, now - 10],
            Compression::None,
        );
        let Err(LogError::RecordErrors(e)) = check(&b, &cfg(false), now) else {
            panic!("refused");
        };
        assert!(e.invalid_timestamp);
        assert_eq!(e.errors.len(), 1);
        assert_eq!(e.errors[0].batch_index, 1);
        assert!(e.errors[0]
            .message
            .contains("of message with offset 1 is out of range"));
        // message.timestamp.before.max.ms finds a record only the records show.
        let mut c = cfg(false);
        c.timestamp_before_max_ms = 5;
        let b = batch(
            &[Some(b"a"), Some(b"b")],
            &[now, now - 10],
            Compression::Lz4,
        );
        let Err(LogError::RecordErrors(e)) = check(&b, &c, now) else {
            panic!("refused");
        };
        assert_eq!(e.errors[0].batch_index, 1);
    }

    #[test]
    fn a_malformed_record_inside_a_valid_batch_is_corrupt() {
        let now = 1_700_000_000_000;
        let mut b = batch(&[Some(b"a"), Some(b"b")], &[now, now], Compression::None);
        // The second record's key length now runs past the record.
        let n = b.len();
        b[n - 5] = 0x7e;
        let h = BatchHeader::parse(&b).unwrap();
        let r = check_records(&h, &b, &cfg(true), now, &|| "t-0".into());
        assert!(matches!(r, Err(LogError::Records(_))), "{r:?}");
    }
}
