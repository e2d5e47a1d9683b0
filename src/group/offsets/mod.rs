//! Committed offsets and the `__consumer_offsets` record format.
//!
//! The store keeps, per group, the latest committed offset of each partition plus what the
//! retention rules need (is the group active, empty since when, or a "simple" group that never
//! had members). It never reads the clock and never touches the log: it produces records for the
//! caller to append, and `apply`/`replay` fold records (appended or read back at start) into it.

mod codec;
mod retention;
#[cfg(test)]
mod tests;

pub use codec::{Key, GROUP_KEY_VERSION, OFFSET_KEY_VERSION};

use crate::group::GroupSnapshot;
use crate::records::{self, RecordsError};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Kafka's `offsets.topic.num.partitions` default.
pub const DEFAULT_OFFSETS_PARTITIONS: i32 = 50;

/// A record for `__consumer_offsets`: key and value (None = tombstone).
pub type KeyValue = (Vec<u8>, Option<Vec<u8>>);

/// Java's `String.hashCode`: over UTF-16 code units, `h = 31*h + c` with i32 wrapping.
pub fn java_string_hashcode(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// The `__consumer_offsets` partition of a group: `Utils.abs(groupId.hashCode) % partitions`
/// (Kafka's `abs` is `& 0x7fffffff`). A non-positive partition count gives 0.
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    if partitions <= 0 {
        return 0;
    }
    (java_string_hashcode(group_id) & 0x7fff_ffff) % partitions
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
    /// -1 unless an old (v1) OffsetCommit asked for one; written as value v1 then.
    pub expire_timestamp: i64,
}

/// What replaying one record yields besides offsets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Replayed {
    Offset,
    OffsetDeleted,
    Group(GroupSnapshot),
    GroupDeleted(String),
    /// A record type this broker does not use (new consumer / share group records).
    Skipped,
}

#[derive(Debug)]
pub enum OffsetsError {
    Decode(String),
    Records(RecordsError),
}

impl fmt::Display for OffsetsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OffsetsError::Decode(what) => write!(f, "{OFFSETS_TOPIC} record: {what}"),
            OffsetsError::Records(e) => write!(f, "{OFFSETS_TOPIC} batch: {e}"),
        }
    }
}

impl std::error::Error for OffsetsError {}

impl From<RecordsError> for OffsetsError {
    fn from(e: RecordsError) -> Self {
        OffsetsError::Records(e)
    }
}

/// Where a group stands for offset retention (KIP-211).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum Membership {
    /// Never had members (or we do not know of any): offsets expire by commit timestamp.
    #[default]
    Simple,
    /// Has members: offsets do not expire.
    Active,
    /// Had members, now has none; since when (None: an old record without a timestamp, then
    /// commit timestamps count).
    Empty(Option<i64>),
}

#[derive(Default)]
struct GroupEntry {
    /// topic -> partition -> offset. Empty inner maps are removed, so this is empty iff the
    /// group has no offsets.
    topics: BTreeMap<String, BTreeMap<i32, CommittedOffset>>,
    membership: Membership,
}

impl GroupEntry {
    fn is_removable(&self) -> bool {
        self.topics.is_empty() && self.membership == Membership::Simple
    }
}

#[derive(Default)]
pub struct OffsetStore {
    groups: HashMap<String, GroupEntry>,
    /// Records of transactional batches (TxnOffsetCommit) per producer id, applied when that
    /// producer's COMMIT marker is written (or replayed), dropped at ABORT: offsets committed in
    /// a transaction become visible to the group only when it commits.
    pending_txn: HashMap<i64, Vec<KeyValue>>,
}

impl OffsetStore {
    pub fn new() -> OffsetStore {
        OffsetStore::default()
    }

    pub fn fetch(&self, group: &str, topic: &str, partition: i32) -> Option<&CommittedOffset> {
        self.groups.get(group)?.topics.get(topic)?.get(&partition)
    }

    /// All offsets of a group, sorted by topic then partition.
    pub fn group_offsets(&self, group: &str) -> Vec<(&str, i32, &CommittedOffset)> {
        let Some(g) = self.groups.get(group) else {
            return Vec::new();
        };
        g.topics
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |(p, c)| (t.as_str(), *p, c)))
            .collect()
    }

    pub fn has_offsets(&self, group: &str) -> bool {
        self.groups.get(group).is_some_and(|g| !g.topics.is_empty())
    }

    /// Groups that have offsets, sorted.
    pub fn groups(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .groups
            .iter()
            .filter(|(_, g)| !g.topics.is_empty())
            .map(|(k, _)| k.as_str())
            .collect();
        v.sort_unstable();
        v
    }

    /// Number of offsets kept, over all groups.
    pub fn offset_count(&self) -> usize {
        self.groups
            .values()
            .flat_map(|g| g.topics.values())
            .map(|ps| ps.len())
            .sum()
    }

    /// Records to append for a commit (one record per partition); `apply()` them after the
    /// append succeeded.
    pub fn commit_records(group: &str, commits: &[(&str, i32, CommittedOffset)]) -> Vec<KeyValue> {
        commits
            .iter()
            .map(|(t, p, c)| {
                (
                    codec::offset_key(group, t, *p),
                    Some(codec::offset_value(c)),
                )
            })
            .collect()
    }

    pub fn group_record(s: &GroupSnapshot) -> KeyValue {
        (codec::group_key(&s.group_id), Some(codec::group_value(s)))
    }

    pub fn group_tombstone(group: &str) -> KeyValue {
        (codec::group_key(group), None)
    }

    /// Tombstones for those of `partitions` the group has an offset for.
    pub fn offset_tombstones(&self, group: &str, partitions: &[(&str, i32)]) -> Vec<KeyValue> {
        partitions
            .iter()
            .filter(|(t, p)| self.fetch(group, t, *p).is_some())
            .map(|(t, p)| (codec::offset_key(group, t, *p), None))
            .collect()
    }

    /// Tombstones for all the group's offsets, then for the group itself.
    pub fn delete_group_records(&self, group: &str) -> Vec<KeyValue> {
        let mut v: Vec<KeyValue> = self
            .group_offsets(group)
            .into_iter()
            .map(|(t, p, _)| (codec::offset_key(group, t, p), None))
            .collect();
        v.push(Self::group_tombstone(group));
        v
    }

    /// One v2 batch (uncompressed, CreateTime `now_ms`, offsets from 0: the log assigns the
    /// real ones) holding `records`.
    pub fn batch(records: &[KeyValue], now_ms: i64) -> Vec<u8> {
        let mut b = records::BatchBuilder::new(0, now_ms);
        for (k, v) in records {
            b.push(None, now_ms, Some(k), v.as_deref(), &[]);
        }
        b.finish()
    }

    /// `batch` for a transactional offset commit (TxnOffsetCommit): the producer's id, epoch
    /// and the transactional flag, so the partition's transaction state and markers apply.
    pub fn txn_batch(records: &[KeyValue], now_ms: i64, producer_id: i64, epoch: i16) -> Vec<u8> {
        let mut b = records::BatchBuilder::new(0, now_ms)
            .producer(producer_id, epoch, -1)
            .transactional(true);
        for (k, v) in records {
            b.push(None, now_ms, Some(k), v.as_deref(), &[]);
        }
        b.finish()
    }

    /// Offsets written in a transaction, held until its marker.
    pub fn add_pending(&mut self, producer_id: i64, records: Vec<KeyValue>) {
        self.pending_txn
            .entry(producer_id)
            .or_default()
            .extend(records);
    }

    /// The producer's transaction ended: its pending offsets are applied (commit) or dropped.
    pub fn end_txn(&mut self, producer_id: i64, commit: bool) -> Result<(), OffsetsError> {
        let pending = self.pending_txn.remove(&producer_id).unwrap_or_default();
        if commit {
            for (k, v) in &pending {
                self.apply(k, v.as_deref())?;
            }
        }
        Ok(())
    }

    /// The committed offset a transaction of `producer_id` holds for this partition, if any
    /// (TxnOffsetCommit while a later OffsetFetch asks with require_stable).
    pub fn has_pending(&self, group: &str, topic: &str, partition: i32) -> bool {
        let key = codec::offset_key(group, topic, partition);
        self.pending_txn
            .values()
            .any(|recs| recs.iter().any(|(k, _)| *k == key))
    }

    /// Applies one record: after an append, and when replaying the partitions at start.
    ///
    /// A group record also updates the group's retention state: members -> active; no members
    /// and a protocol type -> empty since its `current_state_timestamp`; no protocol type ->
    /// simple. A group tombstone forgets that state (offsets stay until their own tombstones).
    pub fn apply(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<Replayed, OffsetsError> {
        match codec::parse_key(key)? {
            Key::Offset {
                group,
                topic,
                partition,
            } => match value {
                None => {
                    self.remove_offset(group, topic, partition);
                    Ok(Replayed::OffsetDeleted)
                }
                Some(v) => {
                    let c = codec::parse_offset_value(v)?;
                    self.put_offset(group, topic, partition, c);
                    Ok(Replayed::Offset)
                }
            },
            Key::Group(group) => match value {
                None => {
                    // Offsets outliving their group keep ageing from when it became empty.
                    let m = match self.membership(group) {
                        Membership::Active => Membership::Empty(None),
                        m => m,
                    };
                    let m = if self.has_offsets(group) {
                        m
                    } else {
                        Membership::Simple
                    };
                    self.set_membership(group, m);
                    Ok(Replayed::GroupDeleted(group.to_string()))
                }
                Some(v) => {
                    let s = codec::parse_group_value(group, v)?;
                    let m = if !s.members.is_empty() {
                        Membership::Active
                    } else if s.protocol_type.is_empty() {
                        Membership::Simple
                    } else if s.current_state_timestamp > 0 {
                        Membership::Empty(Some(s.current_state_timestamp))
                    } else {
                        // No usable timestamp (records before v2): keep what mark_empty set.
                        match self.membership(group) {
                            e @ Membership::Empty(Some(_)) => e,
                            _ => Membership::Empty(None),
                        }
                    };
                    self.set_membership(group, m);
                    Ok(Replayed::Group(s))
                }
            },
            Key::Unknown(_) => Ok(Replayed::Skipped),
        }
    }

    /// Applies every record of back-to-back batches (a `__consumer_offsets` partition log);
    /// returns the group snapshots and deletions seen, in order. Control batches are skipped. A
    /// corrupt batch or record stops the replay with an error, keeping what came before.
    /// Transactional batches wait for their producer's marker (which may come in a later call).
    pub fn replay(&mut self, batches: &[u8]) -> Result<Vec<Replayed>, OffsetsError> {
        let (seen, err) = self.replay_partial(batches);
        match err {
            Some(e) => Err(e),
            None => Ok(seen),
        }
    }

    /// `replay` that also hands back the group events seen before an error.
    pub fn replay_partial(&mut self, batches: &[u8]) -> (Vec<Replayed>, Option<OffsetsError>) {
        let mut seen = Vec::new();
        let err = self.replay_into(batches, &mut seen).err();
        (seen, err)
    }

    fn replay_into(
        &mut self,
        batches: &[u8],
        seen: &mut Vec<Replayed>,
    ) -> Result<(), OffsetsError> {
        for b in records::batches_checked(batches) {
            let (h, bytes) = b?;
            let payload = records::records_payload(bytes, records::DEFAULT_DECOMPRESS_CAP)?;
            let recs = records::parse_records(&payload, h.record_count)?;
            if h.is_control() {
                // A transaction marker: apply (commit) or drop (abort) that producer's pending
                // transactional offset commits.
                let pending = self.pending_txn.remove(&h.producer_id).unwrap_or_default();
                if h.is_transactional()
                    && recs
                        .first()
                        .and_then(|r| r.key)
                        .is_some_and(is_commit_marker)
                {
                    for (k, v) in &pending {
                        self.apply_replayed(k, v.as_deref(), seen)?;
                    }
                }
                continue;
            }
            for r in recs {
                let key = r
                    .key
                    .ok_or_else(|| OffsetsError::Decode("record without a key".into()))?;
                if h.is_transactional() {
                    self.pending_txn
                        .entry(h.producer_id)
                        .or_default()
                        .push((key.to_vec(), r.value.map(<[u8]>::to_vec)));
                } else {
                    self.apply_replayed(key, r.value, seen)?;
                }
            }
        }
        Ok(())
    }

    fn apply_replayed(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
        seen: &mut Vec<Replayed>,
    ) -> Result<(), OffsetsError> {
        let x = self.apply(key, value)?;
        if matches!(x, Replayed::Group(_) | Replayed::GroupDeleted(_)) {
            seen.push(x);
        }
        Ok(())
    }

    /// Producers with transactional offset commits replayed but not yet ended by a marker.
    pub fn pending_transactions(&self) -> usize {
        self.pending_txn.len()
    }

    /// The group has no members any more (from `now_ms`): its offsets start to age. A group
    /// already marked empty keeps its first timestamp, so repeated calls do not defer expiry.
    pub fn mark_empty(&mut self, group: &str, now_ms: i64) {
        if let Membership::Empty(Some(_)) = self.membership(group) {
            return;
        }
        self.set_membership(group, Membership::Empty(Some(now_ms)));
    }

    fn membership(&self, group: &str) -> Membership {
        self.groups
            .get(group)
            .map_or(Membership::Simple, |g| g.membership)
    }

    /// The group has members: its offsets do not expire.
    pub fn mark_active(&mut self, group: &str) {
        self.set_membership(group, Membership::Active);
    }

    fn set_membership(&mut self, group: &str, m: Membership) {
        match self.groups.get_mut(group) {
            Some(g) => {
                g.membership = m;
                if g.is_removable() {
                    self.groups.remove(group);
                }
            }
            None if m != Membership::Simple => {
                self.groups.insert(
                    group.to_string(),
                    GroupEntry {
                        membership: m,
                        ..GroupEntry::default()
                    },
                );
            }
            None => {}
        }
    }

    fn put_offset(&mut self, group: &str, topic: &str, partition: i32, c: CommittedOffset) {
        // Look up before allocating: overwriting a known partition allocates only the metadata.
        let g = match self.groups.get_mut(group) {
            Some(g) => g,
            None => self.groups.entry(group.to_string()).or_default(),
        };
        let ps = match g.topics.get_mut(topic) {
            Some(ps) => ps,
            None => g.topics.entry(topic.to_string()).or_default(),
        };
        ps.insert(partition, c);
    }

    fn remove_offset(&mut self, group: &str, topic: &str, partition: i32) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        if let Some(ps) = g.topics.get_mut(topic) {
            ps.remove(&partition);
            if ps.is_empty() {
                g.topics.remove(topic);
            }
        }
        if g.is_removable() {
            self.groups.remove(group);
        }
    }
}

/// A control record key is version (i16) then type (i16): 0 = ABORT, 1 = COMMIT.
fn is_commit_marker(key: &[u8]) -> bool {
    key.len() >= 4 && key[2..4] == [0, 1]
}
