//! Topic-level configs: the names Kafka accepts, how each value is checked, and how the ones
//! the log uses become a `LogConfig`.

use crate::log::{LogConfig, TimestampType};

#[derive(Clone, Copy)]
enum Kind {
    /// A long with a lower bound.
    Long(i64),
    /// An int with a lower bound.
    Int(i64),
    /// A double in a closed range.
    Ratio(f64, f64),
    Bool,
    /// One of a fixed set of strings.
    OneOf(&'static [&'static str]),
    /// A comma-separated list drawn from a fixed set.
    ListOf(&'static [&'static str]),
    /// Free text (Kafka checks these with custom validators we do not need).
    Text,
}

/// Kafka's topic configs with the kind of value each takes.
const CONFIGS: &[(&str, Kind)] = &[
    ("cleanup.policy", Kind::ListOf(&["delete", "compact"])),
    (
        "compression.type",
        Kind::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
    ),
    ("compression.gzip.level", Kind::Int(-1)),
    ("compression.lz4.level", Kind::Int(1)),
    ("compression.zstd.level", Kind::Int(-131072)),
    ("delete.retention.ms", Kind::Long(0)),
    ("file.delete.delay.ms", Kind::Long(0)),
    ("flush.messages", Kind::Long(1)),
    ("flush.ms", Kind::Long(0)),
    ("follower.replication.throttled.replicas", Kind::Text),
    ("index.interval.bytes", Kind::Int(0)),
    ("leader.replication.throttled.replicas", Kind::Text),
    ("local.retention.bytes", Kind::Long(-2)),
    ("local.retention.ms", Kind::Long(-2)),
    ("max.compaction.lag.ms", Kind::Long(1)),
    ("max.message.bytes", Kind::Int(0)),
    ("message.downconversion.enable", Kind::Bool),
    ("message.format.version", Kind::Text),
    ("message.timestamp.after.max.ms", Kind::Long(0)),
    ("message.timestamp.before.max.ms", Kind::Long(0)),
    ("message.timestamp.difference.max.ms", Kind::Long(0)),
    (
        "message.timestamp.type",
        Kind::OneOf(&["CreateTime", "LogAppendTime"]),
    ),
    ("min.cleanable.dirty.ratio", Kind::Ratio(0.0, 1.0)),
    ("min.compaction.lag.ms", Kind::Long(0)),
    ("min.insync.replicas", Kind::Int(1)),
    ("preallocate", Kind::Bool),
    ("remote.storage.enable", Kind::Bool),
    ("retention.bytes", Kind::Long(i64::MIN)),
    ("retention.ms", Kind::Long(-1)),
    ("segment.bytes", Kind::Int(1024 * 1024)),
    ("segment.index.bytes", Kind::Int(4)),
    ("segment.jitter.ms", Kind::Long(0)),
    ("segment.ms", Kind::Long(1)),
    ("unclean.leader.election.enable", Kind::Bool),
];

/// Every topic config name Kafka knows, in alphabetical order (DescribeConfigs lists them all).
pub fn names() -> impl Iterator<Item = &'static str> {
    CONFIGS.iter().map(|(n, _)| *n)
}

/// Kafka's `ConfigType` code of a topic config (DescribeConfigs v3+): BOOLEAN 1, STRING 2,
/// INT 3, LONG 5, DOUBLE 6, LIST 7; None for unknown names.
pub fn config_type(name: &str) -> Option<i8> {
    let (_, kind) = CONFIGS.iter().find(|(n, _)| *n == name)?;
    Some(match kind {
        Kind::Long(_) => 5,
        Kind::Int(_) => 3,
        Kind::Ratio(..) => 6,
        Kind::Bool => 1,
        Kind::OneOf(_) | Kind::Text => 2,
        Kind::ListOf(_) => 7,
    })
}

/// Whether a config is a list (IncrementalAlterConfigs APPEND / SUBTRACT apply to it).
pub fn is_list(name: &str) -> bool {
    config_type(name) == Some(7)
}

/// Checks one topic config as CreateTopics and AlterConfigs do; the error is Kafka's message.
pub fn validate(name: &str, value: Option<&str>) -> Result<(), String> {
    let Some(&(_, kind)) = CONFIGS.iter().find(|(n, _)| *n == name) else {
        return Err(format!("Unknown topic config name: {name}"));
    };
    let Some(value) = value else {
        return Err(format!(
            "Null value not supported for topic configs: {name}"
        ));
    };
    let v = value.trim();
    let bad = |why: &str| {
        Err(format!(
            "Invalid value {value} for configuration {name}: {why}"
        ))
    };
    match kind {
        Kind::Long(min) => match v.parse::<i64>() {
            Ok(n) if n >= min => Ok(()),
            Ok(_) => bad(&format!("Value must be at least {min}")),
            Err(_) => bad("Not a number of type LONG"),
        },
        Kind::Int(min) => match v.parse::<i32>() {
            Ok(n) if n as i64 >= min => Ok(()),
            Ok(_) => bad(&format!("Value must be at least {min}")),
            Err(_) => bad("Not a number of type INT"),
        },
        Kind::Ratio(lo, hi) => match v.parse::<f64>() {
            Ok(x) if (lo..=hi).contains(&x) => Ok(()),
            Ok(_) => bad(&format!("Value must be between {lo} and {hi}")),
            Err(_) => bad("Not a number of type DOUBLE"),
        },
        Kind::Bool => match v.to_ascii_lowercase().as_str() {
            "true" | "false" => Ok(()),
            _ => bad("Expected value to be either true or false"),
        },
        Kind::OneOf(allowed) => {
            if allowed.iter().any(|a| a.eq_ignore_ascii_case(v)) {
                Ok(())
            } else {
                bad(&format!("String must be one of: {}", allowed.join(", ")))
            }
        }
        Kind::ListOf(allowed) => {
            let items: Vec<&str> = v.split(',').map(str::trim).collect();
            if items.iter().all(|i| allowed.contains(i)) {
                Ok(())
            } else {
                bad(&format!("String must be one of: {}", allowed.join(", ")))
            }
        }
        Kind::Text => Ok(()),
    }
}

/// Applies the topic configs the log uses to a `LogConfig`. Values were validated when set;
/// anything unparsable leaves the broker default in place.
pub fn apply<'a>(c: &mut LogConfig, configs: impl Iterator<Item = (&'a String, &'a String)>) {
    fn set<T: std::str::FromStr>(slot: &mut T, v: &str) {
        if let Ok(x) = v.trim().parse() {
            *slot = x;
        }
    }
    for (k, v) in configs {
        match k.as_str() {
            "segment.bytes" => set(&mut c.segment_bytes, v),
            "segment.ms" => set(&mut c.segment_ms, v),
            "segment.index.bytes" => set(&mut c.max_index_bytes, v),
            "index.interval.bytes" => set(&mut c.index_interval_bytes, v),
            "flush.messages" => set(&mut c.flush_messages, v),
            "flush.ms" => set(&mut c.flush_ms, v),
            "max.message.bytes" => set(&mut c.max_message_bytes, v),
            "retention.ms" => set(&mut c.retention_ms, v),
            "retention.bytes" => set(&mut c.retention_bytes, v),
            "message.timestamp.before.max.ms" => set(&mut c.timestamp_before_max_ms, v),
            "message.timestamp.after.max.ms" => set(&mut c.timestamp_after_max_ms, v),
            "cleanup.policy" => {
                let p: Vec<&str> = v.split(',').map(str::trim).collect();
                c.cleanup_policy_compact = p.contains(&"compact");
                c.cleanup_policy_delete = p.contains(&"delete");
            }
            "delete.retention.ms" => set(&mut c.delete_retention_ms, v),
            "min.compaction.lag.ms" => set(&mut c.min_compaction_lag_ms, v),
            "min.cleanable.dirty.ratio" => set(&mut c.min_cleanable_dirty_ratio, v),
            "message.timestamp.type" => {
                c.timestamp_type = if v.trim() == "LogAppendTime" {
                    TimestampType::LogAppendTime
                } else {
                    TimestampType::CreateTime
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_like_kafka() {
        assert!(validate("retention.ms", Some("1000")).is_ok());
        assert!(validate("retention.ms", Some("-1")).is_ok());
        assert!(validate("retention.ms", Some("soon")).is_err());
        assert!(validate("retention.ms", None).is_err());
        assert!(validate("cleanup.policy", Some("compact,delete")).is_ok());
        assert!(validate("cleanup.policy", Some("bogus")).is_err());
        assert!(validate("segment.bytes", Some("-5")).is_err());
        assert!(validate("min.cleanable.dirty.ratio", Some("2.5")).is_err());
        assert!(validate("message.timestamp.type", Some("Sometime")).is_err());
        assert!(validate("no.such.config", Some("1")).is_err());
    }

    #[test]
    fn overrides_reach_the_log_config() {
        let mut c = LogConfig::default();
        let kv = [
            ("segment.bytes".to_string(), "2048000".to_string()),
            (
                "message.timestamp.type".to_string(),
                "LogAppendTime".to_string(),
            ),
            ("flush.messages".to_string(), "1".to_string()),
        ];
        apply(&mut c, kv.iter().map(|(k, v)| (k, v)));
        assert_eq!(c.segment_bytes, 2_048_000);
        assert_eq!(c.flush_messages, 1);
        assert_eq!(c.timestamp_type, TimestampType::LogAppendTime);
        let kv = [("cleanup.policy".to_string(), "compact, delete".to_string())];
        apply(&mut c, kv.iter().map(|(k, v)| (k, v)));
        assert!(c.cleanup_policy_compact && c.cleanup_policy_delete);
        let kv = [("cleanup.policy".to_string(), "compact".to_string())];
        apply(&mut c, kv.iter().map(|(k, v)| (k, v)));
        assert!(c.cleanup_policy_compact && !c.cleanup_policy_delete);
    }
}
