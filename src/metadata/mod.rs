//! The cluster metadata: topics, partitions, topic ids and configs, kept as an image built by
//! replaying `<log_dir>/__cluster_metadata-0/` (KRaft metadata records in v2 record batches).
//!
//! `records` is the byte codec, `image` the in-memory state and how records change it, `store`
//! the files (`meta.properties` and the metadata log).

mod image;
mod records;
mod store;

pub use image::{BrokerInfo, MetadataImage, PartitionInfo, TopicInfo};
pub use records::{
    api, resource_type, BrokerEndpoint, BrokerFeature, BrokerRegistration, MetadataRecord,
    PartitionChange, PartitionRecord, FRAME_VERSION, NO_LEADER_CHANGE,
};
pub use store::{MetadataStore, ReplayStats, METADATA_DIR};

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
}

impl MetadataError {
    /// The Kafka error code a response should carry for this error.
    pub fn error_code(&self) -> i16 {
        match self {
            MetadataError::Io { .. } | MetadataError::BadMetaProperties { .. } => -1,
            MetadataError::InvalidTopic { .. } => 17,
            MetadataError::TopicExists(_) => 36,
            MetadataError::UnknownTopic(_) => 3,
            MetadataError::InvalidPartitions(_) => 37,
            MetadataError::InvalidReplicationFactor(_) => 38,
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

/// Kafka's `Uuid.ZERO_UUID`.
pub const ZERO_UUID: TopicId = [0; 16];
/// Kafka's `Uuid.METADATA_TOPIC_ID` (0, 1): reserved.
pub const METADATA_TOPIC_ID: TopicId = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

/// A random id as Kafka's `Uuid.randomUuid()` makes them: never zero or reserved, and never
/// one whose string form starts with `-` (it would read as a command-line flag).
pub fn random_uuid() -> TopicId {
    loop {
        let u = uuid::Uuid::new_v4().into_bytes();
        if u != ZERO_UUID && u != METADATA_TOPIC_ID && !uuid_to_string(&u).starts_with('-') {
            return u;
        }
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Kafka's `Uuid.toString()`: 22 characters of URL-safe base64 without padding.
pub fn uuid_to_string(u: &TopicId) -> String {
    let mut out = String::with_capacity(22);
    for chunk in u.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Parses Kafka's 22-character uuid form (also standard base64, with or without `==`).
pub fn uuid_from_string(s: &str) -> Option<TopicId> {
    let s = s.trim_end_matches('=');
    if s.len() != 22 {
        return None;
    }
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = Vec::with_capacity(16);
    for c in s.bytes() {
        // Standard base64 ('+', '/') is accepted too: some tools write ids that way.
        let v = match c {
            b'+' => 62,
            b'/' => 63,
            _ => B64.iter().position(|&x| x == c)? as u32,
        };
        bits = bits << 6 | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    // 22 chars = 132 bits: the last 4 must be zero padding.
    if bits != 0 {
        return None;
    }
    out.try_into().ok()
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

    #[test]
    fn uuid_strings_match_kafka() {
        // Kafka: new Uuid(0L, 1L).toString() == "AAAAAAAAAAAAAAAAAAAAAQ".
        assert_eq!(uuid_to_string(&METADATA_TOPIC_ID), "AAAAAAAAAAAAAAAAAAAAAQ");
        assert_eq!(uuid_to_string(&ZERO_UUID), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(uuid_to_string(&[0xff; 16]), "_____________________w");
        for _ in 0..50 {
            let u = random_uuid();
            let s = uuid_to_string(&u);
            assert_eq!(s.len(), 22);
            assert!(!s.starts_with('-'));
            assert_eq!(uuid_from_string(&s), Some(u));
        }
        // Standard base64 with padding, as the CodeCrafters harness writes directory.id.
        assert_eq!(
            uuid_from_string("EAAAAAAAQACAAAAAAAAAAQ=="),
            Some([0x10, 0, 0, 0, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0, 0, 0, 1])
        );
        assert_eq!(
            uuid_from_string("+/AAAAAAAAAAAAAAAAAAAA"),
            uuid_from_string("-_AAAAAAAAAAAAAAAAAAAA")
        );
        assert_eq!(uuid_from_string("short"), None);
        assert_eq!(uuid_from_string("AAAAAAAAAAAAAAAAAAAAA!"), None);
        assert_eq!(uuid_from_string("AAAAAAAAAAAAAAAAAAAAAB"), None); // nonzero padding
    }
}
