//! Producer state of one partition (Kafka's `ProducerStateManager`): per producer id, its epoch,
//! the metadata of its last five batches, and the transaction it has open here.
//!
//! A batch whose sequence range equals one of the cached ones is a retry of a batch already
//! written: it is answered with the original offsets and not written again. Otherwise the first
//! sequence must follow the last one (Kafka's `checkSequence`), except for a producer we know
//! nothing about (new, or expired), which may start anywhere.
//!
//! Open transactions give the partition its last stable offset (the first offset of the oldest
//! open transaction); a transaction marker closes one. The state is saved in Kafka's
//! `.snapshot` format (see [`encode_snapshot`]) so a restart does not have to read the log.

use byteorder::{BigEndian, ByteOrder};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Kafka's `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`.
const BATCHES_TO_RETAIN: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

#[derive(Debug, Default, Clone)]
struct Entry {
    epoch: i16,
    batches: VecDeque<BatchMeta>,
    /// First offset of the transaction this producer has open in the partition.
    txn_first_offset: Option<i64>,
    coordinator_epoch: i32,
    /// Time of the last write (for `producer.id.expiration.ms`).
    last_timestamp: i64,
}

/// What the table says about an incoming batch.
#[derive(Debug, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Write it.
    Append,
    /// Already written: answer with these offsets.
    Duplicate(BatchMeta),
    /// An epoch older than the producer's current one (INVALID_PRODUCER_EPOCH).
    StaleEpoch,
    /// A gap or reordering (OUT_OF_ORDER_SEQUENCE_NUMBER).
    OutOfOrder { expected: i64, got: i32 },
}

/// A transaction a marker closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The marker's offset.
    pub last_offset: i64,
    pub aborted: bool,
    /// The last stable offset once it is closed (Kafka stores it in the transaction index).
    pub last_stable_offset: i64,
}

#[derive(Debug, Default, Clone)]
pub struct ProducerStates {
    producers: HashMap<i64, Entry>,
    /// Open transactions: first offset -> producer id.
    ongoing: BTreeMap<i64, i64>,
}

fn in_sequence(last: i32, next: i32) -> bool {
    next as i64 == last as i64 + 1 || (next == 0 && last == i32::MAX)
}

impl ProducerStates {
    pub fn check(
        &self,
        producer_id: i64,
        epoch: i16,
        first_seq: i32,
        last_seq: i32,
    ) -> SequenceCheck {
        let Some(e) = self.producers.get(&producer_id) else {
            return SequenceCheck::Append;
        };
        if epoch < e.epoch {
            return SequenceCheck::StaleEpoch;
        }
        if epoch == e.epoch {
            if let Some(b) = e
                .batches
                .iter()
                .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
            {
                return SequenceCheck::Duplicate(*b);
            }
            if let Some(last) = e.batches.back() {
                if !in_sequence(last.last_seq, first_seq) {
                    return SequenceCheck::OutOfOrder {
                        expected: last.last_seq as i64 + 1,
                        got: first_seq,
                    };
                }
            }
        } else if first_seq != 0 {
            // A new epoch starts its sequences at 0.
            return SequenceCheck::OutOfOrder {
                expected: 0,
                got: first_seq,
            };
        }
        SequenceCheck::Append
    }

    /// Whether the producer has a transaction open here (a non-transactional write from it is
    /// then refused, as Kafka does).
    pub fn has_open_txn(&self, producer_id: i64) -> bool {
        self.producers
            .get(&producer_id)
            .is_some_and(|e| e.txn_first_offset.is_some())
    }

    /// Records a data batch that was written; a transactional one opens the producer's
    /// transaction here if none is open.
    pub fn update(&mut self, producer_id: i64, epoch: i16, meta: BatchMeta) {
        self.update_batch(producer_id, epoch, meta, false);
    }

    pub fn update_batch(
        &mut self,
        producer_id: i64,
        epoch: i16,
        meta: BatchMeta,
        transactional: bool,
    ) {
        let e = self.producers.entry(producer_id).or_default();
        if epoch != e.epoch {
            e.epoch = epoch;
            e.batches.clear();
        }
        if e.batches.len() == BATCHES_TO_RETAIN {
            e.batches.pop_front();
        }
        e.batches.push_back(meta);
        e.last_timestamp = meta.max_timestamp;
        if transactional && e.txn_first_offset.is_none() {
            e.txn_first_offset = Some(meta.first_offset);
            self.ongoing.insert(meta.first_offset, producer_id);
        }
    }

    /// A batch without sequence numbers (written by the coordinator): the producer's epoch and
    /// transaction state move, its sequence history does not.
    pub fn update_unsequenced(
        &mut self,
        producer_id: i64,
        epoch: i16,
        meta: BatchMeta,
        transactional: bool,
    ) {
        let e = self.producers.entry(producer_id).or_default();
        if epoch != e.epoch {
            e.epoch = epoch;
            e.batches.clear();
        }
        e.last_timestamp = meta.max_timestamp;
        if transactional && e.txn_first_offset.is_none() {
            e.txn_first_offset = Some(meta.first_offset);
            self.ongoing.insert(meta.first_offset, producer_id);
        }
    }

    /// A marker from the coordinator may carry this epoch (not older than the producer's).
    pub fn check_marker(&self, producer_id: i64, epoch: i16) -> bool {
        self.producers
            .get(&producer_id)
            .is_none_or(|e| epoch >= e.epoch)
    }

    /// Records a transaction marker written at `offset`; returns the transaction it closed
    /// (none if the producer had nothing open here).
    pub fn complete_txn(
        &mut self,
        producer_id: i64,
        epoch: i16,
        offset: i64,
        commit: bool,
        coordinator_epoch: i32,
        timestamp: i64,
    ) -> Option<CompletedTxn> {
        let e = self.producers.entry(producer_id).or_default();
        if epoch != e.epoch {
            e.epoch = epoch;
            e.batches.clear();
        }
        e.coordinator_epoch = coordinator_epoch;
        e.last_timestamp = timestamp;
        let first = e.txn_first_offset.take()?;
        self.ongoing.remove(&first);
        let last_stable_offset = self
            .ongoing
            .iter()
            .find(|(_, &pid)| pid != producer_id)
            .map_or(offset + 1, |(&o, _)| o);
        Some(CompletedTxn {
            producer_id,
            first_offset: first,
            last_offset: offset,
            aborted: !commit,
            last_stable_offset,
        })
    }

    /// The first offset of the oldest open transaction.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.keys().next().copied()
    }

    /// Open transactions: (producer id, first offset).
    pub fn open_transactions(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.ongoing.iter().map(|(&o, &p)| (p, o))
    }

    /// Producers idle for `expiration_ms` with no transaction open are forgotten (Kafka's
    /// `producer.id.expiration.ms`).
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            e.txn_first_offset.is_some() || now_ms.saturating_sub(e.last_timestamp) < expiration_ms
        });
        before - self.producers.len()
    }

    /// What DescribeProducers shows: (producer id, epoch, last sequence, last timestamp,
    /// coordinator epoch, open transaction's first offset or -1).
    pub fn describe(&self) -> Vec<(i64, i16, i32, i64, i32, i64)> {
        let mut out: Vec<_> = self
            .producers
            .iter()
            .map(|(&pid, e)| {
                (
                    pid,
                    e.epoch,
                    e.batches.back().map_or(-1, |b| b.last_seq),
                    e.last_timestamp,
                    e.coordinator_epoch,
                    e.txn_first_offset.unwrap_or(-1),
                )
            })
            .collect();
        out.sort_unstable();
        out
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// The state as of `offset`: only what batches and markers below it made (the last batch
    /// below it per producer; a transaction opened at or after it is not open yet). Replaying
    /// the log from `offset` rebuilds the rest, including every producer's last five batches.
    pub fn as_of(&self, offset: i64) -> ProducerStates {
        let mut out = ProducerStates::default();
        for (&pid, e) in &self.producers {
            let batches: VecDeque<BatchMeta> = e
                .batches
                .iter()
                .filter(|b| b.last_offset < offset)
                .copied()
                .collect();
            let txn = e.txn_first_offset.filter(|&o| o < offset);
            if batches.is_empty() && txn.is_none() {
                continue;
            }
            if let Some(o) = txn {
                out.ongoing.insert(o, pid);
            }
            out.producers.insert(
                pid,
                Entry {
                    epoch: e.epoch,
                    batches,
                    txn_first_offset: txn,
                    coordinator_epoch: e.coordinator_epoch,
                    last_timestamp: e.last_timestamp,
                },
            );
        }
        out
    }

    /// The earliest offset a replay must start from so that every producer's retained batches
    /// are rebuilt from the log.
    pub fn earliest_retained_offset(&self) -> Option<i64> {
        self.producers
            .values()
            .filter_map(|e| e.batches.front().map(|b| b.first_offset))
            .min()
    }
}

/// Kafka's producer snapshot (`<offset>.snapshot`, `ProducerSnapshot` version 1): version,
/// CRC-32C of what follows, then per producer its id, epoch, last sequence, last offset,
/// offset delta, timestamp, coordinator epoch and open transaction's first offset (-1: none).
/// Only the last batch of each producer is kept, as in Kafka.
pub fn encode_snapshot(s: &ProducerStates) -> Vec<u8> {
    const ENTRY: usize = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8;
    let mut ids: Vec<&i64> = s.producers.keys().collect();
    ids.sort_unstable();
    let mut out = vec![0u8; 2 + 4 + 4 + ids.len() * ENTRY];
    BigEndian::write_i16(&mut out[0..2], 1);
    BigEndian::write_i32(&mut out[6..10], ids.len() as i32);
    let mut at = 10;
    for pid in ids {
        let e = &s.producers[pid];
        let last = e.batches.back();
        let b = &mut out[at..at + ENTRY];
        BigEndian::write_i64(&mut b[0..8], *pid);
        BigEndian::write_i16(&mut b[8..10], e.epoch);
        BigEndian::write_i32(&mut b[10..14], last.map_or(-1, |m| m.last_seq));
        BigEndian::write_i64(&mut b[14..22], last.map_or(-1, |m| m.last_offset));
        BigEndian::write_i32(
            &mut b[22..26],
            last.map_or(0, |m| m.last_seq.wrapping_sub(m.first_seq)),
        );
        BigEndian::write_i64(&mut b[26..34], e.last_timestamp);
        BigEndian::write_i32(&mut b[34..38], e.coordinator_epoch);
        BigEndian::write_i64(&mut b[38..46], e.txn_first_offset.unwrap_or(-1));
        at += ENTRY;
    }
    let crc = crc32c::crc32c(&out[6..]);
    BigEndian::write_u32(&mut out[2..6], crc);
    out
}

/// Reads a snapshot; `None` if it is damaged or of an unknown version (Kafka then deletes it
/// and rebuilds from the log).
pub fn decode_snapshot(bytes: &[u8]) -> Option<ProducerStates> {
    const ENTRY: usize = 46;
    if bytes.len() < 10 || BigEndian::read_i16(&bytes[0..2]) != 1 {
        return None;
    }
    if BigEndian::read_u32(&bytes[2..6]) != crc32c::crc32c(&bytes[6..]) {
        return None;
    }
    let n = BigEndian::read_i32(&bytes[6..10]);
    if n < 0 || (n as usize).checked_mul(ENTRY)? != bytes.len() - 10 {
        return None;
    }
    let mut s = ProducerStates::default();
    for b in bytes[10..].chunks_exact(ENTRY) {
        let pid = BigEndian::read_i64(&b[0..8]);
        let last_seq = BigEndian::read_i32(&b[10..14]);
        let last_offset = BigEndian::read_i64(&b[14..22]);
        let delta = BigEndian::read_i32(&b[22..26]);
        let timestamp = BigEndian::read_i64(&b[26..34]);
        let txn = BigEndian::read_i64(&b[38..46]);
        let mut batches = VecDeque::new();
        if last_offset >= 0 {
            batches.push_back(BatchMeta {
                first_seq: last_seq.wrapping_sub(delta),
                last_seq,
                first_offset: last_offset - delta as i64,
                last_offset,
                max_timestamp: timestamp,
            });
        }
        let txn_first_offset = (txn >= 0).then_some(txn);
        if let Some(o) = txn_first_offset {
            s.ongoing.insert(o, pid);
        }
        s.producers.insert(
            pid,
            Entry {
                epoch: BigEndian::read_i16(&b[8..10]),
                batches,
                txn_first_offset,
                coordinator_epoch: BigEndian::read_i32(&b[34..38]),
                last_timestamp: timestamp,
            },
        );
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(first_seq: i32, last_seq: i32, first_offset: i64) -> BatchMeta {
        BatchMeta {
            first_seq,
            last_seq,
            first_offset,
            last_offset: first_offset + (last_seq - first_seq) as i64,
            max_timestamp: 0,
        }
    }

    #[test]
    fn duplicates_gaps_and_epochs() {
        let mut s = ProducerStates::default();
        assert_eq!(s.check(7, 0, 0, 9), SequenceCheck::Append);
        s.update(7, 0, meta(0, 9, 100));
        assert_eq!(
            s.check(7, 0, 0, 9),
            SequenceCheck::Duplicate(meta(0, 9, 100))
        );
        assert_eq!(s.check(7, 0, 10, 19), SequenceCheck::Append);
        assert_eq!(
            s.check(7, 0, 12, 19),
            SequenceCheck::OutOfOrder {
                expected: 10,
                got: 12
            }
        );
        s.update(7, 1, meta(0, 0, 200));
        assert_eq!(s.check(7, 0, 1, 1), SequenceCheck::StaleEpoch);
        assert!(matches!(
            s.check(7, 2, 5, 5),
            SequenceCheck::OutOfOrder { .. }
        ));
        assert_eq!(s.check(7, 2, 0, 5), SequenceCheck::Append);
        // Only the last five batches are remembered.
        for i in 1..=6 {
            s.update(7, 1, meta(i, i, 200 + i as i64));
        }
        assert_eq!(
            s.check(7, 1, 1, 1),
            SequenceCheck::OutOfOrder {
                expected: 7,
                got: 1
            }
        );
        assert!(matches!(s.check(7, 1, 6, 6), SequenceCheck::Duplicate(_)));
        // Sequences wrap at i32::MAX.
        assert!(in_sequence(i32::MAX, 0));
    }
}

#[cfg(test)]
mod txn_tests {
    use super::*;

    fn meta(first_seq: i32, n: i32, first_offset: i64) -> BatchMeta {
        BatchMeta {
            first_seq,
            last_seq: first_seq + n - 1,
            first_offset,
            last_offset: first_offset + n as i64 - 1,
            max_timestamp: 1000 + first_offset,
        }
    }

    #[test]
    fn open_transactions_set_the_last_stable_offset() {
        let mut s = ProducerStates::default();
        s.update_batch(1, 0, meta(0, 5, 10), true);
        s.update_batch(2, 0, meta(0, 5, 15), true);
        s.update_batch(1, 0, meta(5, 5, 20), true);
        assert_eq!(s.first_unstable_offset(), Some(10));
        assert!(s.has_open_txn(1));
        // Producer 1 aborts: the LSO moves to producer 2's first offset.
        let c = s.complete_txn(1, 0, 25, false, 3, 2000).unwrap();
        assert_eq!(
            c,
            CompletedTxn {
                producer_id: 1,
                first_offset: 10,
                last_offset: 25,
                aborted: true,
                last_stable_offset: 15
            }
        );
        assert_eq!(s.first_unstable_offset(), Some(15));
        assert!(!s.has_open_txn(1));
        let c = s.complete_txn(2, 0, 26, true, 3, 2000).unwrap();
        assert_eq!((c.aborted, c.last_stable_offset), (false, 27));
        assert_eq!(s.first_unstable_offset(), None);
        // A marker with nothing open closes nothing.
        assert_eq!(s.complete_txn(2, 0, 27, true, 3, 2000), None);
        // A fencing marker (bumped epoch) is accepted and resets the producer's batches.
        assert!(s.check_marker(1, 1));
        assert!(!s.check_marker(2, -1));
    }

    #[test]
    fn snapshots_round_trip_in_kafkas_layout() {
        let mut s = ProducerStates::default();
        s.update_batch(7, 2, meta(0, 3, 100), false);
        s.update_batch(7, 2, meta(3, 2, 103), false);
        s.update_batch(9, 0, meta(10, 1, 105), true);
        let bytes = encode_snapshot(&s);
        assert_eq!(bytes.len(), 10 + 2 * 46);
        assert_eq!(&bytes[0..2], &[0, 1], "version 1");
        let back = decode_snapshot(&bytes).unwrap();
        // The last batch of each producer survives, so its retry is still recognised.
        assert_eq!(
            back.check(7, 2, 3, 4),
            SequenceCheck::Duplicate(BatchMeta {
                first_seq: 3,
                last_seq: 4,
                first_offset: 103,
                last_offset: 104,
                max_timestamp: 1103
            })
        );
        assert_eq!(back.check(7, 2, 5, 5), SequenceCheck::Append);
        assert_eq!(back.first_unstable_offset(), Some(105));
        // Damage is detected.
        let mut bad = bytes.clone();
        bad[20] ^= 1;
        assert!(decode_snapshot(&bad).is_none());
        assert!(decode_snapshot(&bytes[..bytes.len() - 1]).is_none());
        assert!(decode_snapshot(b"\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00").is_none());
    }

    #[test]
    fn the_state_as_of_an_offset_leaves_the_rest_to_a_replay() {
        let mut s = ProducerStates::default();
        for i in 0..5 {
            s.update_batch(1, 0, meta(i * 2, 2, 100 + i as i64 * 10), false);
        }
        s.update_batch(2, 0, meta(0, 1, 125), true);
        assert_eq!(s.earliest_retained_offset(), Some(100));
        let old = s.as_of(122);
        assert_eq!(
            old.first_unstable_offset(),
            None,
            "the transaction opens at 125"
        );
        assert!(matches!(old.check(1, 0, 4, 5), SequenceCheck::Duplicate(_)));
        assert!(matches!(old.check(1, 0, 6, 7), SequenceCheck::Append));
        assert_eq!(old.len(), 1);
    }

    #[test]
    fn idle_producers_expire_unless_a_transaction_is_open() {
        let mut s = ProducerStates::default();
        s.update_batch(1, 0, meta(0, 1, 0), false);
        s.update_batch(2, 0, meta(0, 1, 1), true);
        assert_eq!(s.expire(1000 + 10_000, 5_000), 1);
        assert!(s.has_open_txn(2));
        assert_eq!(s.check(1, 0, 7, 7), SequenceCheck::Append, "forgotten");
    }
}
