//! `__transaction_state` records (Kafka's `TransactionLog`): the key is the version-prefixed
//! `TransactionLogKey` (the transactional id), the value the version-prefixed
//! `TransactionLogValue` (producer id and epoch, timeout, state, partitions, timestamps), a
//! tombstone once the id has expired. Also the partition a transactional id lives in, and the
//! control records (transaction markers) EndTxn writes to every partition of a transaction.

use super::state::{TopicPartition, TxnMetadata, TxnState, NO_PRODUCER_EPOCH};
use crate::protocol::messages::transaction_log_key::TransactionLogKey;
use crate::protocol::messages::transaction_log_value::{PartitionsSchema, TransactionLogValue};
use crate::protocol::wire::{Reader, Writer};
use std::collections::BTreeMap;
use std::fmt;

pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";
const KEY_VERSION: i16 = 0;
/// Version 1 is flexible and carries the previous/next producer ids and the client's
/// transaction version as tagged fields; Kafka 3.x and 4.x read both.
const VALUE_VERSION: i16 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnLogError(pub String);

impl fmt::Display for TxnLogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{TRANSACTION_STATE_TOPIC} record: {}", self.0)
    }
}

impl std::error::Error for TxnLogError {}

/// The `__transaction_state` partition of a transactional id (Java's `String.hashCode`, as
/// Kafka's `partitionFor`).
pub fn partition_for(transactional_id: &str, partitions: i32) -> i32 {
    crate::group::offsets::partition_for(transactional_id, partitions)
}

pub fn key_bytes(transactional_id: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out);
    w.i16(KEY_VERSION);
    TransactionLogKey { transactional_id }.encode(&mut w, KEY_VERSION);
    out
}

/// The record value of a state (`None` for Dead: a tombstone).
pub fn value_bytes(m: &TxnMetadata) -> Option<Vec<u8>> {
    if m.state == TxnState::Dead {
        return None;
    }
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in &m.partitions {
        by_topic.entry(t.as_str()).or_default().push(*p);
    }
    let partitions = (m.state != TxnState::Empty).then(|| {
        by_topic
            .into_iter()
            .map(|(topic, partition_ids)| PartitionsSchema {
                topic,
                partition_ids,
            })
            .collect()
    });
    let value = TransactionLogValue {
        producer_id: m.producer_id,
        previous_producer_id: m.prev_producer_id,
        next_producer_id: m.next_producer_id,
        producer_epoch: m.producer_epoch,
        transaction_timeout_ms: m.timeout_ms,
        transaction_status: m.state.id(),
        transaction_partitions: partitions,
        transaction_last_update_timestamp_ms: m.last_update_ms,
        transaction_start_timestamp_ms: m.start_ms,
        client_transaction_version: if m.tv2 { 2 } else { 0 },
    };
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out);
    w.i16(VALUE_VERSION);
    value.encode(&mut w, VALUE_VERSION);
    Some(out)
}

/// The transactional id of a record key.
pub fn decode_key(key: &[u8]) -> Result<String, TxnLogError> {
    let mut r = Reader::new(key);
    let version = r.i16().map_err(|e| TxnLogError(format!("key: {e}")))?;
    if version != KEY_VERSION {
        return Err(TxnLogError(format!("unknown key version {version}")));
    }
    let k =
        TransactionLogKey::decode(&mut r, version).map_err(|e| TxnLogError(format!("key: {e}")))?;
    Ok(k.transactional_id.to_string())
}

/// The state a record value holds (`None` for a tombstone).
pub fn decode_value(
    transactional_id: &str,
    value: Option<&[u8]>,
) -> Result<Option<TxnMetadata>, TxnLogError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let mut r = Reader::new(value);
    let version = r.i16().map_err(|e| TxnLogError(format!("value: {e}")))?;
    if !(0..=VALUE_VERSION).contains(&version) {
        return Err(TxnLogError(format!("unknown value version {version}")));
    }
    let v = TransactionLogValue::decode(&mut r, version)
        .map_err(|e| TxnLogError(format!("value: {e}")))?;
    let state = TxnState::from_id(v.transaction_status)
        .ok_or_else(|| TxnLogError(format!("unknown state {}", v.transaction_status)))?;
    let mut partitions = std::collections::BTreeSet::<TopicPartition>::new();
    if state != TxnState::Empty {
        for t in v.transaction_partitions.iter().flatten() {
            for &p in &t.partition_ids {
                partitions.insert((t.topic.to_string(), p));
            }
        }
    }
    Ok(Some(TxnMetadata {
        transactional_id: transactional_id.to_string(),
        producer_id: v.producer_id,
        prev_producer_id: v.previous_producer_id,
        next_producer_id: v.next_producer_id,
        producer_epoch: v.producer_epoch,
        // Not stored: a retried InitProducerId across a restart is fenced, as in Kafka.
        last_producer_epoch: NO_PRODUCER_EPOCH,
        timeout_ms: v.transaction_timeout_ms,
        state,
        partitions,
        start_ms: v.transaction_start_timestamp_ms,
        last_update_ms: v.transaction_last_update_timestamp_ms,
        tv2: v.client_transaction_version >= 2,
    }))
}

/// A control record's key: version 0, then the type (0 = ABORT, 1 = COMMIT).
pub fn marker_key(commit: bool) -> [u8; 4] {
    [0, 0, 0, commit as u8]
}

/// A control record's value (Kafka's `EndTxnMarker`): version 0, then the coordinator epoch.
pub fn marker_value(coordinator_epoch: i32) -> [u8; 6] {
    let e = coordinator_epoch.to_be_bytes();
    [0, 0, e[0], e[1], e[2], e[3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_match_kafkas_bytes() {
        let mut m = TxnMetadata::new("my-txn", 4000, 60_000, 1_700_000_000_000);
        m.producer_epoch = 3;
        m.state = TxnState::Ongoing;
        m.start_ms = 1_700_000_000_100;
        m.partitions.insert(("b".into(), 1));
        m.partitions.insert(("a".into(), 0));
        m.partitions.insert(("a".into(), 2));
        let key = key_bytes("my-txn");
        // version 0, then a plain string.
        assert_eq!(key, b"\x00\x00\x00\x06my-txn");
        assert_eq!(decode_key(&key).unwrap(), "my-txn");
        let value = value_bytes(&m).unwrap();
        assert_eq!(&value[..2], &[0, 1]);
        let back = decode_value("my-txn", Some(&value)).unwrap().unwrap();
        assert_eq!(back, m);
        // Empty states store no partitions (null), as Kafka writes them.
        m.state = TxnState::Empty;
        m.partitions.clear();
        let back = decode_value("my-txn", value_bytes(&m).as_deref())
            .unwrap()
            .unwrap();
        assert_eq!(back.state, TxnState::Empty);
        // Dead is a tombstone.
        m.state = TxnState::Dead;
        assert_eq!(value_bytes(&m), None);
        assert_eq!(decode_value("my-txn", None).unwrap(), None);
    }

    #[test]
    fn a_version_0_value_as_kafka_3_writes_it_is_read() {
        let mut raw = Vec::new();
        let mut w = Writer::new(&mut raw);
        w.i16(0);
        TransactionLogValue {
            producer_id: 7,
            producer_epoch: 2,
            transaction_timeout_ms: 10_000,
            transaction_status: TxnState::PrepareCommit.id(),
            transaction_partitions: Some(vec![PartitionsSchema {
                topic: "t",
                partition_ids: vec![0, 1],
            }]),
            transaction_last_update_timestamp_ms: 5,
            transaction_start_timestamp_ms: 4,
            ..Default::default()
        }
        .encode(&mut w, 0);
        let m = decode_value("x", Some(&raw)).unwrap().unwrap();
        assert_eq!(m.state, TxnState::PrepareCommit);
        assert_eq!(m.partitions.len(), 2);
        assert_eq!(m.prev_producer_id, -1);
    }

    #[test]
    fn bad_records_are_errors() {
        assert!(decode_key(b"\x00\x01\x00\x00").is_err());
        assert!(decode_key(b"\x00").is_err());
        assert!(decode_value("x", Some(b"\x00\x09")).is_err());
        let mut m = TxnMetadata::new("x", 1, 1, 1);
        m.state = TxnState::Ongoing;
        let mut v = value_bytes(&m).unwrap();
        // An unknown state id.
        let at = 2 + 8 + 2 + 4;
        v[at] = 42;
        assert!(decode_value("x", Some(&v)).is_err());
    }

    #[test]
    fn partitions_follow_javas_string_hash() {
        // "my-txn".hashCode() = -1061187895 in Java.
        assert_eq!(
            partition_for("my-txn", 50),
            ((-1061187895i32) & 0x7fff_ffff) % 50
        );
    }
}
