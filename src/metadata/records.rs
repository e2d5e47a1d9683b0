//! KRaft metadata records: the value of each record in `__cluster_metadata`.
//!
//! The record types are generated from Kafka's schemas (`kafka-spec/metadata/*.json`) by
//! `tools/gen_metadata_records.py` into `records/generated/` (one struct per type, every version,
//! tagged fields) and `records/generated.rs` (the `MetadataRecord` enum and its dispatch by type).
//! This file holds the frame around a record, as Kafka's `MetadataRecordSerde`
//! (`AbstractApiMessageSerde`) writes it: uvarint frame version (1), uvarint type (`apiKey`),
//! uvarint version, then the record in the flexible encoding.
//!
//! A record of a type or version this codec does not know is an error that says so
//! (`MetadataRecordError::is_unknown`), so replay can skip what a newer Kafka wrote.

mod generated;

pub use generated::*;

use crate::protocol::wire::{DecodeError, Reader, Writer};
use std::fmt;

/// The only frame version Kafka writes (`AbstractApiMessageSerde.DEFAULT_FRAME_VERSION`).
pub const FRAME_VERSION: u32 = 1;

/// `ConfigRecord.ResourceType` values (Kafka's `ConfigResource.Type`).
pub mod resource_type {
    pub const TOPIC: i8 = 2;
    pub const BROKER: i8 = 4;
}

/// PartitionChangeRecord.Leader: "the leader did not change" (its default).
pub const NO_LEADER_CHANGE: i32 = -2;

/// Why a metadata record value could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataRecordError {
    /// A frame version other than 1.
    FrameVersion(u32),
    /// A type id no schema in `kafka-spec/metadata/` has.
    UnknownType(u32),
    /// A known type at a version outside the ones its schema declares.
    UnsupportedVersion {
        api_key: i16,
        version: u32,
        max: i16,
    },
    /// The frame header itself is cut short or malformed.
    Frame(DecodeError),
    /// The body does not match its schema.
    Body {
        api_key: i16,
        version: i16,
        err: DecodeError,
    },
}

impl MetadataRecordError {
    /// A record this codec does not know (a newer Kafka's type, version or frame), as opposed
    /// to a malformed one.
    pub fn is_unknown(&self) -> bool {
        matches!(
            self,
            MetadataRecordError::FrameVersion(_)
                | MetadataRecordError::UnknownType(_)
                | MetadataRecordError::UnsupportedVersion { .. }
        )
    }
}

impl fmt::Display for MetadataRecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataRecordError::FrameVersion(v) => write!(
                f,
                "metadata record frame version {v} (only {FRAME_VERSION} is known)"
            ),
            MetadataRecordError::UnknownType(k) => write!(f, "unknown metadata record type {k}"),
            MetadataRecordError::UnsupportedVersion {
                api_key,
                version,
                max,
            } => write!(
                f,
                "metadata record type {api_key} version {version} is not supported (versions up to {max})"
            ),
            MetadataRecordError::Frame(e) => write!(f, "metadata record frame: {e}"),
            MetadataRecordError::Body {
                api_key,
                version,
                err,
            } => write!(f, "metadata record type {api_key} version {version}: {err}"),
        }
    }
}

impl std::error::Error for MetadataRecordError {}

impl<'a> MetadataRecord<'a> {
    /// Encodes the full record value (frame header + body) at `self.version()`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.encode_version(self.version(), out)
    }

    /// Encodes at a given version of the record's schema (fields the version lacks are dropped).
    pub fn encode_version(&self, version: i16, out: &mut Vec<u8>) {
        debug_assert!(
            Self::versions(self.api_key()).is_some_and(|(lo, hi)| (lo..=hi).contains(&version)),
            "type {} has no version {version}",
            self.api_key()
        );
        let mut w = Writer::new(out);
        w.uvarint(FRAME_VERSION);
        w.uvarint(self.api_key() as u32);
        w.uvarint(version as u32);
        self.encode_body(&mut w, version);
    }

    /// Decodes a record value, borrowing its strings and bytes. Bytes after the body are
    /// ignored, as Kafka does.
    pub fn decode(value: &'a [u8]) -> Result<MetadataRecord<'a>, MetadataRecordError> {
        let mut r = Reader::new(value);
        let frame = r.uvarint().map_err(MetadataRecordError::Frame)?;
        let api_key = r.uvarint().map_err(MetadataRecordError::Frame)?;
        let version = r.uvarint().map_err(MetadataRecordError::Frame)?;
        if frame != FRAME_VERSION {
            return Err(MetadataRecordError::FrameVersion(frame));
        }
        let key = i16::try_from(api_key).map_err(|_| MetadataRecordError::UnknownType(api_key))?;
        let (lo, hi) = Self::versions(key).ok_or(MetadataRecordError::UnknownType(api_key))?;
        let v = match i16::try_from(version) {
            Ok(v) if (lo..=hi).contains(&v) => v,
            _ => {
                return Err(MetadataRecordError::UnsupportedVersion {
                    api_key: key,
                    version,
                    max: hi,
                })
            }
        };
        let body = |err| MetadataRecordError::Body {
            api_key: key,
            version: v,
            err,
        };
        Self::decode_body(key, v, &mut r)
            .map_err(body)?
            .ok_or(MetadataRecordError::UnknownType(api_key))
    }
}

#[cfg(test)]
#[path = "records_tests.rs"]
mod tests;
