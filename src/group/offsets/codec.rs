//! Keys and values of `__consumer_offsets` records: a big-endian i16 version, then the body of
//! the schema that version names (group-coordinator/*.json in Kafka's sources).

use super::{CommittedOffset, OffsetsError};
use crate::group::{GroupSnapshot, MemberSnapshot};
use crate::protocol::messages::group_metadata_key::GroupMetadataKey;
use crate::protocol::messages::group_metadata_value;
use crate::protocol::messages::group_metadata_value::{GroupMetadataValue, MemberMetadata};
use crate::protocol::messages::offset_commit_key::OffsetCommitKey;
use crate::protocol::messages::offset_commit_value::{self, OffsetCommitValue};
use crate::protocol::wire::{Reader, Writer};

/// Key versions 0 and 1 are offset commits (Kafka writes 1), 2 is group metadata; 3+ belong to
/// the new consumer and share group protocols, which this broker does not run.
pub const OFFSET_KEY_VERSION: i16 = 1;
pub const GROUP_KEY_VERSION: i16 = 2;
/// What Kafka writes: v3, or v1 when the commit carries an explicit expire timestamp.
const OFFSET_VALUE_VERSION: i16 = 3;
const OFFSET_VALUE_VERSION_WITH_EXPIRY: i16 = 1;
const GROUP_VALUE_VERSION: i16 = 3;

/// A decoded key, borrowing from the record.
#[derive(Debug, PartialEq, Eq)]
pub enum Key<'a> {
    Offset {
        group: &'a str,
        topic: &'a str,
        partition: i32,
    },
    Group(&'a str),
    /// A record type this broker ignores (key version 3+).
    Unknown(i16),
}

pub fn offset_key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut b = Vec::with_capacity(10 + group.len() + topic.len());
    let mut w = Writer::new(&mut b);
    w.i16(OFFSET_KEY_VERSION);
    OffsetCommitKey {
        group,
        topic,
        partition,
    }
    .encode(&mut w, OFFSET_KEY_VERSION);
    b
}

pub fn offset_value(c: &CommittedOffset) -> Vec<u8> {
    let version = if c.expire_timestamp != -1 {
        OFFSET_VALUE_VERSION_WITH_EXPIRY
    } else {
        OFFSET_VALUE_VERSION
    };
    let mut b = Vec::with_capacity(32 + c.metadata.len());
    let mut w = Writer::new(&mut b);
    w.i16(version);
    OffsetCommitValue {
        offset: c.offset,
        leader_epoch: c.leader_epoch,
        metadata: &c.metadata,
        commit_timestamp: c.commit_timestamp,
        expire_timestamp: c.expire_timestamp,
    }
    .encode(&mut w, version);
    b
}

pub fn group_key(group: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(4 + group.len());
    let mut w = Writer::new(&mut b);
    w.i16(GROUP_KEY_VERSION);
    GroupMetadataKey { group }.encode(&mut w, GROUP_KEY_VERSION);
    b
}

pub fn group_value(s: &GroupSnapshot) -> Vec<u8> {
    let members = s
        .members
        .iter()
        .map(|m| MemberMetadata {
            member_id: &m.member_id,
            group_instance_id: m.group_instance_id.as_deref(),
            client_id: &m.client_id,
            client_host: &m.client_host,
            rebalance_timeout: m.rebalance_timeout_ms,
            session_timeout: m.session_timeout_ms,
            subscription: &m.subscription,
            assignment: &m.assignment,
        })
        .collect();
    let v = GroupMetadataValue {
        protocol_type: &s.protocol_type,
        generation: s.generation,
        protocol: s.protocol.as_deref(),
        leader: s.leader.as_deref(),
        current_state_timestamp: s.current_state_timestamp,
        members,
    };
    let mut b = Vec::new();
    let mut w = Writer::new(&mut b);
    w.i16(GROUP_VALUE_VERSION);
    v.encode(&mut w, GROUP_VALUE_VERSION);
    b
}

pub fn parse_key(key: &[u8]) -> Result<Key<'_>, OffsetsError> {
    let mut r = Reader::new(key);
    let version = r.i16().map_err(|e| bad("key version", e))?;
    match version {
        0 | 1 => {
            let k = OffsetCommitKey::decode(&mut r, version).map_err(|e| bad("offset key", e))?;
            Ok(Key::Offset {
                group: k.group,
                topic: k.topic,
                partition: k.partition,
            })
        }
        2 => {
            let k = GroupMetadataKey::decode(&mut r, version).map_err(|e| bad("group key", e))?;
            Ok(Key::Group(k.group))
        }
        v if v > 2 => Ok(Key::Unknown(v)),
        v => Err(OffsetsError::Decode(format!("negative key version {v}"))),
    }
}

/// Value versions above the newest known are read as the newest: KIP-915 keeps them
/// compatible (new fields are tagged only).
fn value_version(r: &mut Reader<'_>, max: i16, what: &str) -> Result<i16, OffsetsError> {
    let v = r.i16().map_err(|e| bad(what, e))?;
    if v < 0 {
        return Err(OffsetsError::Decode(format!(
            "{what}: negative version {v}"
        )));
    }
    Ok(v.min(max))
}

pub fn parse_offset_value(value: &[u8]) -> Result<CommittedOffset, OffsetsError> {
    let mut r = Reader::new(value);
    let version = value_version(&mut r, offset_commit_value::MAX_VERSION, "offset value")?;
    let v = OffsetCommitValue::decode(&mut r, version).map_err(|e| bad("offset value", e))?;
    Ok(CommittedOffset {
        offset: v.offset,
        leader_epoch: v.leader_epoch,
        metadata: v.metadata.to_string(),
        commit_timestamp: v.commit_timestamp,
        expire_timestamp: v.expire_timestamp,
    })
}

pub fn parse_group_value(group: &str, value: &[u8]) -> Result<GroupSnapshot, OffsetsError> {
    let mut r = Reader::new(value);
    let version = value_version(&mut r, group_metadata_value::MAX_VERSION, "group value")?;
    let v = GroupMetadataValue::decode(&mut r, version).map_err(|e| bad("group value", e))?;
    Ok(GroupSnapshot {
        group_id: group.to_string(),
        protocol_type: v.protocol_type.to_string(),
        generation: v.generation,
        protocol: v.protocol.map(str::to_string),
        leader: v.leader.map(str::to_string),
        current_state_timestamp: v.current_state_timestamp,
        members: v
            .members
            .iter()
            .map(|m| MemberSnapshot {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.map(str::to_string),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                rebalance_timeout_ms: m.rebalance_timeout,
                session_timeout_ms: m.session_timeout,
                subscription: m.subscription.to_vec(),
                assignment: m.assignment.to_vec(),
            })
            .collect(),
    })
}

fn bad(what: &str, e: crate::protocol::wire::DecodeError) -> OffsetsError {
    OffsetsError::Decode(format!("{what}: {e}"))
}
