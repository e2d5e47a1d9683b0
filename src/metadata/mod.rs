//! The cluster metadata: topics, partitions, topic ids and configs, kept as an image built by
//! replaying `<log_dir>/__cluster_metadata-0/` (KRaft metadata records in v2 record batches).
//!
//! `records` is the byte codec, `image` the in-memory state and how records change it, `store`
//! the files (`meta.properties` and the metadata log).

mod image;
pub mod records;
mod store;
pub(crate) use store::{load_meta_properties, write_meta_properties};

pub use crate::kafka_uuid::{
    random_uuid, uuid_from_string, uuid_to_string, METADATA_TOPIC_ID, ZERO_UUID,
};
pub use image::{BrokerEndpoint, BrokerInfo, MetadataImage, PartitionInfo, TopicInfo};
pub use records::{
    api, resource_type, ConfigRecord, FeatureLevelRecord, MetadataRecord, MetadataRecordError,
    PartitionChangeRecord, PartitionRecord, ProducerIdsRecord, RegisterBrokerRecord,
    RemoveTopicRecord, TopicRecord, FRAME_VERSION, NO_LEADER_CHANGE,
};
pub use store::{MetadataStore, ReplayStats, StoreMode, METADATA_DIR};

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A topic id (Kafka `Uuid`): 16 raw bytes.
pub type TopicId = [u8; 16];

/// Kafka's largest topic name.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Why a metadata operation failed.
#[derive(Debug)]
pub enum MetadataError {
    Io {
        path: PathBuf,
        err: io::Error,
    },
    /// `meta.properties` exists but cannot be used.
    BadMetaProperties {
        path: PathBuf,
        reason: String,
    },
    /// The name breaks Kafka's topic naming rules or collides with an existing topic.
    InvalidTopic {
        name: String,
        reason: String,
    },
    TopicExists(String),
    UnknownTopic(String),
    InvalidPartitions(String),
    InvalidReplicationFactor(String),
    /// The log directory went offline after an I/O error: nothing more is written.
    Offline,
    /// A cluster node that is not the active controller cannot change the metadata.
    NotController,
}

impl MetadataError {
    /// The Kafka error code a response should carry for this error.
    pub fn error_code(&self) -> i16 {
        match self {
            // KAFKA_STORAGE_ERROR: a full disk or a failed log directory.
            MetadataError::Io { .. } | MetadataError::Offline => 56,
            MetadataError::BadMetaProperties { .. } => -1,
            MetadataError::InvalidTopic { .. } => 17,
            MetadataError::TopicExists(_) => 36,
            MetadataError::UnknownTopic(_) => 3,
            MetadataError::InvalidPartitions(_) => 37,
            MetadataError::InvalidReplicationFactor(_) => 38,
            MetadataError::NotController => 41,
        }
    }
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataError::Io { path, err } => write!(f, "{}: {err}", path.display()),
            MetadataError::BadMetaProperties { path, reason } => {
                write!(f, "{}: {reason}", path.display())
            }
            MetadataError::InvalidTopic { name, reason } => {
                write!(f, "invalid topic name {name:?}: {reason}")
            }
            MetadataError::TopicExists(n) => write!(f, "topic {n:?} already exists"),
            MetadataError::UnknownTopic(n) => write!(f, "unknown topic {n:?}"),
            MetadataError::InvalidPartitions(why) => write!(f, "invalid partitions: {why}"),
            MetadataError::InvalidReplicationFactor(why) => {
                write!(f, "invalid replication factor: {why}")
            }
            MetadataError::Offline => write!(f, "the log directory is offline after a disk error"),
            MetadataError::NotController => write!(f, "this node is not the active controller"),
        }
    }
}

impl std::error::Error for MetadataError {}

impl From<io::Error> for MetadataError {
    fn from(err: io::Error) -> Self {
        MetadataError::Io {
            path: PathBuf::new(),
            err,
        }
    }
}

/// Kafka's topic name rules: 1..=249 chars of `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("topic name is empty");
    }
    if name == "." || name == ".." {
        return Err("topic name cannot be \".\" or \"..\"");
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return Err("topic name is longer than 249 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(
            "topic name contains characters other than ASCII alphanumerics, '.', '_' and '-'",
        );
    }
    Ok(())
}

/// Kafka treats `.` and `_` as the same in topic names for metric names, so two topics that
/// differ only there collide.
pub fn topic_collision_key(name: &str) -> String {
    name.replace('.', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("foo.bar_baz-1").is_ok());
        assert!(validate_topic_name(&"a".repeat(249)).is_ok());
        assert!(validate_topic_name(&"a".repeat(250)).is_err());
        for bad in ["", ".", "..", "a b", "ü", "a/b", "a\0"] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(topic_collision_key("a.b_c"), "a_b_c");
    }
}
