//! Idempotent-producer state of one partition: per producer id, its epoch and the metadata of
//! its last five batches, as Kafka's `ProducerStateManager` keeps it.
//!
//! A batch whose sequence range equals one of the cached ones is a retry of a batch already
//! written: it is answered with the original offsets and not written again. Otherwise the first
//! sequence must follow the last one (Kafka's `checkSequence`), except for a producer we know
//! nothing about (new, or state lost), which may start anywhere.

use std::collections::{HashMap, VecDeque};

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

#[derive(Debug, Default)]
struct Entry {
    epoch: i16,
    batches: VecDeque<BatchMeta>,
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

#[derive(Debug, Default)]
pub struct ProducerStates {
    producers: HashMap<i64, Entry>,
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

    /// Records a batch that was written.
    pub fn update(&mut self, producer_id: i64, epoch: i16, meta: BatchMeta) {
        let e = self.producers.entry(producer_id).or_default();
        if epoch != e.epoch {
            e.epoch = epoch;
            e.batches.clear();
        }
        if e.batches.len() == BATCHES_TO_RETAIN {
            e.batches.pop_front();
        }
        e.batches.push_back(meta);
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }
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
