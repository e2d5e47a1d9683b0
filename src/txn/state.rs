//! The state of one transactional id (Kafka's `TransactionMetadata` and `TransactionState`) and
//! its legal transitions. A transition builds the next state whole; the caller persists it to
//! `__transaction_state` and only then makes it current, so a failed write changes nothing.

use std::collections::BTreeSet;
use std::fmt;

pub const NO_PRODUCER_ID: i64 = -1;
pub const NO_PRODUCER_EPOCH: i16 = -1;

/// A partition of a transaction.
pub type TopicPartition = (String, i32);

/// Kafka's `TransactionState`, with its ids (as stored) and names (as DescribeTransactions and
/// ListTransactions show them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];

    pub fn id(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    pub fn from_id(id: i8) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.id() == id)
    }

    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    pub fn from_name(name: &str) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The states this one may be entered from.
    fn valid_previous(self) -> &'static [TxnState] {
        use TxnState::*;
        match self {
            Empty => &[Empty, CompleteCommit, CompleteAbort],
            Ongoing => &[Ongoing, Empty, CompleteCommit, CompleteAbort],
            PrepareCommit => &[Ongoing],
            PrepareAbort => &[Ongoing, PrepareEpochFence],
            CompleteCommit => &[PrepareCommit],
            CompleteAbort => &[PrepareAbort],
            Dead => &[Empty, CompleteAbort, CompleteCommit],
            PrepareEpochFence => &[Ongoing],
        }
    }

    /// Whether a transactional id in this state may expire.
    pub fn expiration_allowed(self) -> bool {
        matches!(
            self,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        )
    }

    /// A transaction is open (data may be in partitions without its marker).
    pub fn in_transaction(self) -> bool {
        matches!(
            self,
            TxnState::Ongoing | TxnState::PrepareCommit | TxnState::PrepareAbort
        )
    }
}

impl fmt::Display for TxnState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything the coordinator keeps for one transactional id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    /// The producer id of the last committed transaction (after a producer id rotation).
    pub prev_producer_id: i64,
    /// The producer id handed out when the epoch overflowed at EndTxn (transactions v2).
    pub next_producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump, so a retried InitProducerId gets the same answer.
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<TopicPartition>,
    /// When the first partition was added; -1 with no transaction.
    pub start_ms: i64,
    pub last_update_ms: i64,
    /// The client bumps the epoch at every EndTxn (transactions v2, EndTxn v5+).
    pub tv2: bool,
}

/// Kafka keeps the last epoch for fencing: a producer may not use `i16::MAX`.
pub fn epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

impl TxnMetadata {
    /// A transactional id seen for the first time.
    pub fn new(transactional_id: &str, producer_id: i64, timeout_ms: i32, now_ms: i64) -> Self {
        TxnMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id,
            prev_producer_id: NO_PRODUCER_ID,
            next_producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now_ms,
            tv2: false,
        }
    }

    /// The same metadata in `state`, checking the transition is one Kafka allows.
    fn to(&self, state: TxnState, now_ms: i64) -> Result<TxnMetadata, InvalidTransition> {
        if !state.valid_previous().contains(&self.state) {
            return Err(InvalidTransition {
                from: self.state,
                to: state,
            });
        }
        let mut next = self.clone();
        next.state = state;
        next.last_update_ms = now_ms;
        Ok(next)
    }

    /// InitProducerId on a finished or empty transaction: the next epoch (Kafka's
    /// `prepareIncrementProducerEpoch`). `expected` is the epoch a recovering producer last had.
    pub fn increment_epoch(
        &self,
        timeout_ms: i32,
        expected: Option<i16>,
        now_ms: i64,
    ) -> Result<TxnMetadata, EpochError> {
        let bumped = self.producer_epoch.wrapping_add(1);
        let (epoch, last) = match expected {
            None => (bumped, NO_PRODUCER_EPOCH),
            Some(e) if self.producer_epoch == NO_PRODUCER_EPOCH || e == self.producer_epoch => {
                (bumped, self.producer_epoch)
            }
            // A retry of a bump that succeeded: the same answer again.
            Some(e) if e == self.last_producer_epoch => {
                (self.producer_epoch, self.last_producer_epoch)
            }
            Some(_) => return Err(EpochError::Fenced),
        };
        let mut next = self.to(TxnState::Empty, now_ms)?;
        next.producer_epoch = epoch;
        next.last_producer_epoch = last;
        next.timeout_ms = timeout_ms;
        next.partitions.clear();
        next.start_ms = -1;
        Ok(next)
    }

    /// InitProducerId when the epoch is exhausted: a new producer id at epoch 0.
    pub fn rotate_producer_id(
        &self,
        new_producer_id: i64,
        timeout_ms: i32,
        record_last_epoch: bool,
        now_ms: i64,
    ) -> Result<TxnMetadata, InvalidTransition> {
        let mut next = self.to(TxnState::Empty, now_ms)?;
        next.prev_producer_id = self.producer_id;
        next.producer_id = new_producer_id;
        next.producer_epoch = 0;
        next.last_producer_epoch = if record_last_epoch {
            self.producer_epoch
        } else {
            NO_PRODUCER_EPOCH
        };
        next.timeout_ms = timeout_ms;
        next.partitions.clear();
        next.start_ms = -1;
        Ok(next)
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn.
    pub fn add_partitions(
        &self,
        partitions: impl IntoIterator<Item = TopicPartition>,
        now_ms: i64,
    ) -> Result<TxnMetadata, InvalidTransition> {
        let mut next = self.to(TxnState::Ongoing, now_ms)?;
        if matches!(
            self.state,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        ) {
            next.start_ms = now_ms;
        }
        next.partitions.extend(partitions);
        Ok(next)
    }

    /// EndTxn: PrepareCommit or PrepareAbort. With transactions v2 the epoch moves on now (and a
    /// new producer id is chosen if it would overflow).
    pub fn prepare_end(
        &self,
        commit: bool,
        tv2: bool,
        next_producer_id: i64,
        now_ms: i64,
    ) -> Result<TxnMetadata, InvalidTransition> {
        let state = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        let mut next = self.to(state, now_ms)?;
        next.tv2 = tv2;
        if tv2 {
            next.last_producer_epoch = self.producer_epoch;
            next.producer_epoch = self.producer_epoch.saturating_add(1);
            next.next_producer_id = next_producer_id;
        }
        Ok(next)
    }

    /// Fencing an open transaction (a new producer instance, or the transaction's timeout):
    /// the epoch is bumped and the transaction aborted with it (Kafka's PrepareEpochFence
    /// followed by PrepareAbort, persisted as the latter).
    pub fn fence_and_abort(&self, now_ms: i64) -> Result<TxnMetadata, InvalidTransition> {
        if self.state != TxnState::Ongoing {
            return Err(InvalidTransition {
                from: self.state,
                to: TxnState::PrepareEpochFence,
            });
        }
        let mut next = self.to(TxnState::PrepareAbort, now_ms)?;
        next.producer_epoch = self.producer_epoch.saturating_add(1);
        next.last_producer_epoch = NO_PRODUCER_EPOCH;
        next.tv2 = false;
        Ok(next)
    }

    /// Every marker is written: CompleteCommit or CompleteAbort, no partitions. An epoch that
    /// overflowed at EndTxn (v2) hands over to the next producer id now.
    pub fn complete(&self, now_ms: i64) -> Result<TxnMetadata, InvalidTransition> {
        let state = if self.state == TxnState::PrepareCommit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        let mut next = self.to(state, now_ms)?;
        next.partitions.clear();
        if self.tv2 && self.next_producer_id != NO_PRODUCER_ID {
            next.prev_producer_id = self.producer_id;
            next.producer_id = self.next_producer_id;
            next.producer_epoch = 0;
            next.last_producer_epoch = self.producer_epoch;
        }
        next.next_producer_id = NO_PRODUCER_ID;
        Ok(next)
    }

    /// The transactional id expired: written as a tombstone, then forgotten.
    pub fn dead(&self, now_ms: i64) -> Result<TxnMetadata, InvalidTransition> {
        let mut next = self.to(TxnState::Dead, now_ms)?;
        next.partitions.clear();
        Ok(next)
    }
}

/// A transition Kafka's state machine does not allow (a bug if it happens).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidTransition {
    pub from: TxnState,
    pub to: TxnState,
}

impl fmt::Display for InvalidTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid transaction transition {} -> {}",
            self.from, self.to
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpochError {
    /// The producer's epoch is neither the current nor the last one (PRODUCER_FENCED).
    Fenced,
    Invalid(InvalidTransition),
}

impl From<InvalidTransition> for EpochError {
    fn from(e: InvalidTransition) -> Self {
        EpochError::Invalid(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(t: &str, p: i32) -> TopicPartition {
        (t.to_string(), p)
    }

    #[test]
    fn ids_and_names_match_kafka() {
        for s in TxnState::ALL {
            assert_eq!(TxnState::from_id(s.id()), Some(s));
            assert_eq!(TxnState::from_name(s.name()), Some(s));
        }
        assert_eq!(TxnState::PrepareEpochFence.id(), 7);
        assert_eq!(TxnState::from_id(8), None);
    }

    #[test]
    fn a_transaction_goes_round() {
        let m = TxnMetadata::new("t", 1000, 60_000, 0);
        let m = m.increment_epoch(60_000, None, 1).unwrap();
        assert_eq!((m.producer_epoch, m.state), (0, TxnState::Empty));
        let m = m.add_partitions([tp("a", 0)], 5).unwrap();
        assert_eq!((m.state, m.start_ms), (TxnState::Ongoing, 5));
        let m = m.add_partitions([tp("a", 1)], 6).unwrap();
        assert_eq!(m.start_ms, 5, "the start stays");
        assert_eq!(m.partitions.len(), 2);
        let m = m.prepare_end(true, false, NO_PRODUCER_ID, 7).unwrap();
        assert_eq!(m.state, TxnState::PrepareCommit);
        assert!(m.add_partitions([tp("b", 0)], 8).is_err());
        let m = m.complete(9).unwrap();
        assert_eq!(m.state, TxnState::CompleteCommit);
        assert!(m.partitions.is_empty());
        assert_eq!(m.producer_epoch, 0);
        // The next transaction starts from CompleteCommit.
        let m = m.add_partitions([tp("b", 0)], 10).unwrap();
        assert_eq!(m.start_ms, 10);
    }

    #[test]
    fn epochs_bump_fence_and_retry_as_kafka_does() {
        let m = TxnMetadata::new("t", 1000, 60_000, 0)
            .increment_epoch(60_000, None, 0)
            .unwrap()
            .increment_epoch(60_000, None, 0)
            .unwrap();
        assert_eq!((m.producer_epoch, m.last_producer_epoch), (1, -1));
        // A producer recovering with its current epoch bumps and remembers it.
        let r = m.increment_epoch(60_000, Some(1), 0).unwrap();
        assert_eq!((r.producer_epoch, r.last_producer_epoch), (2, 1));
        // Its retry gets the same answer.
        let again = r.increment_epoch(60_000, Some(1), 0).unwrap();
        assert_eq!((again.producer_epoch, again.last_producer_epoch), (2, 1));
        // An older one is fenced.
        assert_eq!(
            r.increment_epoch(60_000, Some(0), 0),
            Err(EpochError::Fenced)
        );
        // An open transaction is fenced and aborted with a bumped epoch.
        let o = r.add_partitions([tp("a", 0)], 1).unwrap();
        let f = o.fence_and_abort(2).unwrap();
        assert_eq!((f.state, f.producer_epoch), (TxnState::PrepareAbort, 3));
        assert!(r.fence_and_abort(2).is_err(), "nothing open to fence");
    }

    #[test]
    fn transactions_v2_bump_the_epoch_at_every_end() {
        let m = TxnMetadata::new("t", 1000, 60_000, 0)
            .increment_epoch(60_000, None, 0)
            .unwrap()
            .add_partitions([tp("a", 0)], 1)
            .unwrap();
        let p = m.prepare_end(false, true, NO_PRODUCER_ID, 2).unwrap();
        assert_eq!((p.producer_epoch, p.last_producer_epoch), (1, 0));
        let c = p.complete(3).unwrap();
        assert_eq!(
            (c.producer_id, c.producer_epoch, c.state),
            (1000, 1, TxnState::CompleteAbort)
        );
        // Overflow: the next producer id takes over at epoch 0 once the markers are written.
        let mut m = m.clone();
        m.producer_epoch = i16::MAX - 1;
        let p = m.prepare_end(true, true, 2000, 2).unwrap();
        let c = p.complete(3).unwrap();
        assert_eq!(
            (c.producer_id, c.producer_epoch, c.prev_producer_id),
            (2000, 0, 1000)
        );
    }
}
