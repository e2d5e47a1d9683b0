//! The transaction coordinator (Kafka's `TransactionCoordinator`) as a pure state machine: each
//! request is checked against the current state of its transactional id and answered with an
//! error or with the next state to persist. The caller writes that state to
//! `__transaction_state`, then calls [`TxnCoordinator::apply`]; markers are the caller's too.
//! No clock, no IO: `now_ms` is a parameter.

use super::state::{
    epoch_exhausted, EpochError, TopicPartition, TxnMetadata, TxnState, NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
};
use crate::protocol::error::{self, ErrorCode};
use std::collections::HashMap;

pub const INVALID_TXN_STATE: ErrorCode = 48;
pub const INVALID_PRODUCER_ID_MAPPING: ErrorCode = 49;
pub const INVALID_TRANSACTION_TIMEOUT: ErrorCode = 50;
pub const CONCURRENT_TRANSACTIONS: ErrorCode = 51;
pub const PRODUCER_FENCED: ErrorCode = 90;
pub const TRANSACTIONAL_ID_NOT_FOUND: ErrorCode = 105;
pub const TRANSACTION_ABORTABLE: ErrorCode = 120;

/// Kafka's broker settings for transactions.
#[derive(Clone, Debug)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms`
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`
    pub id_expiration_ms: i64,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            max_timeout_ms: 900_000,
            id_expiration_ms: 604_800_000,
        }
    }
}

/// What InitProducerId leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InitPlan {
    /// Persist this state, then answer with its producer id and epoch.
    Ready(TxnMetadata),
    /// A transaction of an earlier instance is open: persist this aborting state (epoch bumped),
    /// write its abort markers, complete it, and answer CONCURRENT_TRANSACTIONS so the client
    /// retries (and then gets the next epoch).
    AbortFirst(TxnMetadata),
}

/// What EndTxn leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndPlan {
    /// Persist this PrepareCommit/PrepareAbort state, write the markers, then complete.
    Prepare(TxnMetadata),
    /// A retry of an EndTxn already done: answer success with this producer id and epoch.
    Done { producer_id: i64, epoch: i16 },
}

/// An EndTxn request. `tv2` is true for EndTxn v5+, where every transaction ends with an epoch
/// bump (transactions v2, KIP-890).
#[derive(Clone, Copy, Debug)]
pub struct EndTxn<'a> {
    pub transactional_id: &'a str,
    pub producer_id: i64,
    pub epoch: i16,
    pub commit: bool,
    pub tv2: bool,
}

#[derive(Default)]
pub struct TxnCoordinator {
    cfg: TxnConfig,
    txns: HashMap<String, TxnMetadata>,
    /// Producer id -> transactional id, for the produce-side checks (KIP-890).
    by_producer: HashMap<i64, String>,
}

impl TxnCoordinator {
    pub fn new(cfg: TxnConfig) -> TxnCoordinator {
        TxnCoordinator {
            cfg,
            ..Default::default()
        }
    }

    pub fn config(&self) -> &TxnConfig {
        &self.cfg
    }

    pub fn get(&self, transactional_id: &str) -> Option<&TxnMetadata> {
        self.txns.get(transactional_id)
    }

    /// The transactional id's state for a producer id it currently uses.
    pub fn by_producer_id(&self, producer_id: i64) -> Option<&TxnMetadata> {
        self.by_producer
            .get(&producer_id)
            .and_then(|id| self.txns.get(id))
    }

    pub fn len(&self) -> usize {
        self.txns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }

    pub fn all(&self) -> impl Iterator<Item = &TxnMetadata> {
        self.txns.values()
    }

    /// Makes a persisted state current (a Dead one is forgotten).
    pub fn apply(&mut self, m: TxnMetadata) {
        if let Some(old) = self.txns.get(&m.transactional_id) {
            if old.producer_id != m.producer_id {
                self.by_producer.remove(&old.producer_id);
            }
        }
        if m.state == TxnState::Dead {
            self.by_producer.remove(&m.producer_id);
            self.txns.remove(&m.transactional_id);
            return;
        }
        self.by_producer
            .insert(m.producer_id, m.transactional_id.clone());
        self.txns.insert(m.transactional_id.clone(), m);
    }

    /// Forgets a transactional id (its tombstone was replayed).
    pub fn remove(&mut self, transactional_id: &str) {
        if let Some(m) = self.txns.remove(transactional_id) {
            self.by_producer.remove(&m.producer_id);
        }
    }

    /// InitProducerId with a transactional id (Kafka's `handleInitProducerId`).
    /// `new_producer_id` hands out a fresh producer id when one is needed.
    pub fn init_producer_id(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        now_ms: i64,
        new_producer_id: &mut dyn FnMut() -> Result<i64, ErrorCode>,
    ) -> Result<InitPlan, ErrorCode> {
        if transactional_id.is_empty() {
            return Err(error::INVALID_REQUEST);
        }
        if timeout_ms <= 0 || timeout_ms > self.cfg.max_timeout_ms {
            return Err(INVALID_TRANSACTION_TIMEOUT);
        }
        let created;
        let m = match self.txns.get(transactional_id) {
            Some(m) => m,
            None => {
                created =
                    TxnMetadata::new(transactional_id, new_producer_id()?, timeout_ms, now_ms);
                &created
            }
        };
        // A producer recovering from an error names its id and epoch; anyone else is fenced,
        // unless the id is the previous one and its epoch ran out (a retried rotation).
        if let Some((pid, epoch)) = expected {
            let valid = m.producer_epoch == NO_PRODUCER_EPOCH
                || pid == m.producer_id
                || (pid == m.prev_producer_id && epoch_exhausted(epoch));
            if !valid {
                return Err(PRODUCER_FENCED);
            }
        }
        match m.state {
            TxnState::PrepareAbort | TxnState::PrepareCommit => Err(CONCURRENT_TRANSACTIONS),
            TxnState::Empty | TxnState::CompleteAbort | TxnState::CompleteCommit => {
                if epoch_exhausted(m.producer_epoch)
                    && expected.is_none_or(|(_, e)| e == m.producer_epoch)
                {
                    let pid = new_producer_id()?;
                    m.rotate_producer_id(pid, timeout_ms, expected.is_some(), now_ms)
                        .map(InitPlan::Ready)
                        .map_err(|_| INVALID_TXN_STATE)
                } else {
                    let expected_epoch = expected.map(|(_, e)| e);
                    match m.increment_epoch(timeout_ms, expected_epoch, now_ms) {
                        Ok(next) => Ok(InitPlan::Ready(next)),
                        Err(EpochError::Fenced) => Err(PRODUCER_FENCED),
                        Err(EpochError::Invalid(_)) => Err(INVALID_TXN_STATE),
                    }
                }
            }
            TxnState::Ongoing => m
                .fence_and_abort(now_ms)
                .map(InitPlan::AbortFirst)
                .map_err(|_| INVALID_TXN_STATE),
            TxnState::Dead | TxnState::PrepareEpochFence => Err(INVALID_TXN_STATE),
        }
    }

    /// The transactional id's state if this producer id and epoch may act on it.
    fn owned(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
    ) -> Result<&TxnMetadata, ErrorCode> {
        if transactional_id.is_empty() {
            return Err(error::INVALID_REQUEST);
        }
        let m = self
            .txns
            .get(transactional_id)
            .ok_or(INVALID_PRODUCER_ID_MAPPING)?;
        if m.producer_id != producer_id {
            return Err(INVALID_PRODUCER_ID_MAPPING);
        }
        if m.producer_epoch != epoch {
            return Err(PRODUCER_FENCED);
        }
        Ok(m)
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: the next state to persist, or `None` when the
    /// partitions are already in the open transaction.
    pub fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[TopicPartition],
        now_ms: i64,
    ) -> Result<Option<TxnMetadata>, ErrorCode> {
        let m = self.owned(transactional_id, producer_id, epoch)?;
        match m.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => Err(CONCURRENT_TRANSACTIONS),
            TxnState::Ongoing if partitions.iter().all(|p| m.partitions.contains(p)) => Ok(None),
            _ => m
                .add_partitions(partitions.iter().cloned(), now_ms)
                .map(Some)
                .map_err(|_| INVALID_TXN_STATE),
        }
    }

    /// AddPartitionsToTxn with VerifyOnly (v4+): whether each partition is in the open
    /// transaction (TRANSACTION_ABORTABLE for those that are not).
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[TopicPartition],
    ) -> Result<Vec<ErrorCode>, ErrorCode> {
        let m = self.owned(transactional_id, producer_id, epoch)?;
        if matches!(m.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
            return Err(CONCURRENT_TRANSACTIONS);
        }
        Ok(partitions
            .iter()
            .map(|p| {
                if m.partitions.contains(p) {
                    error::NONE
                } else {
                    TRANSACTION_ABORTABLE
                }
            })
            .collect())
    }

    /// EndTxn from a client (Kafka's `endTransaction` with `isFromClient`).
    pub fn end_txn(
        &self,
        req: &EndTxn<'_>,
        new_producer_id: &mut dyn FnMut() -> Result<i64, ErrorCode>,
        now_ms: i64,
    ) -> Result<EndPlan, ErrorCode> {
        let EndTxn {
            transactional_id,
            producer_id,
            epoch,
            commit,
            tv2,
        } = *req;
        if transactional_id.is_empty() {
            return Err(error::INVALID_REQUEST);
        }
        let m = self
            .txns
            .get(transactional_id)
            .ok_or(INVALID_PRODUCER_ID_MAPPING)?;
        let v2 = m.tv2 || tv2;
        // Transactions v2: a retry after the epoch was bumped (or the producer id rotated).
        let retry_on_bump = v2 && m.producer_epoch == epoch.wrapping_add(1);
        let retry_on_overflow = v2
            && m.prev_producer_id == producer_id
            && epoch == i16::MAX - 1
            && m.producer_epoch == 0;
        if m.producer_id != producer_id && !retry_on_overflow {
            return Err(INVALID_PRODUCER_ID_MAPPING);
        }
        let valid_epoch = if v2 {
            match m.state {
                TxnState::Ongoing
                | TxnState::Empty
                | TxnState::Dead
                | TxnState::PrepareEpochFence => epoch == m.producer_epoch,
                TxnState::PrepareCommit | TxnState::PrepareAbort => retry_on_bump,
                TxnState::CompleteCommit | TxnState::CompleteAbort => {
                    retry_on_bump || retry_on_overflow
                }
            }
        } else {
            epoch == m.producer_epoch
        };
        if !valid_epoch {
            return Err(PRODUCER_FENCED);
        }
        let done = EndPlan::Done {
            producer_id: m.producer_id,
            epoch: m.producer_epoch,
        };
        match (m.state, commit) {
            (TxnState::Ongoing, _) => {
                let next_pid = if tv2 && epoch_exhausted(m.producer_epoch) {
                    new_producer_id()?
                } else {
                    NO_PRODUCER_ID
                };
                m.prepare_end(commit, tv2, next_pid, now_ms)
                    .map(EndPlan::Prepare)
                    .map_err(|_| INVALID_TXN_STATE)
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(done),
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                Err(CONCURRENT_TRANSACTIONS)
            }
            _ => Err(INVALID_TXN_STATE),
        }
    }

    /// Open transactions past their timeout, each as the aborting state to persist (epoch
    /// bumped, so the timed-out producer is fenced).
    pub fn timed_out(&self, now_ms: i64) -> Vec<TxnMetadata> {
        let mut out: Vec<TxnMetadata> = self
            .txns
            .values()
            .filter(|m| {
                m.state == TxnState::Ongoing
                    && m.start_ms.saturating_add(m.timeout_ms as i64) < now_ms
                    && m.producer_epoch < i16::MAX
            })
            .filter_map(|m| m.fence_and_abort(now_ms).ok())
            .collect();
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        out
    }

    /// Transactional ids idle past `transactional.id.expiration.ms`, as Dead states (written
    /// as tombstones).
    pub fn expired(&self, now_ms: i64) -> Vec<TxnMetadata> {
        let mut out: Vec<TxnMetadata> = self
            .txns
            .values()
            .filter(|m| {
                m.state.expiration_allowed()
                    && m.last_update_ms.saturating_add(self.cfg.id_expiration_ms) <= now_ms
            })
            .filter_map(|m| m.dead(now_ms).ok())
            .collect();
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        out
    }

    /// Transactions whose markers are still to be written (PrepareCommit/PrepareAbort).
    pub fn pending_markers(&self) -> Vec<TxnMetadata> {
        let mut out: Vec<TxnMetadata> = self
            .txns
            .values()
            .filter(|m| matches!(m.state, TxnState::PrepareCommit | TxnState::PrepareAbort))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        out
    }

    /// ListTransactions: by state names and producer ids (empty = any), and open for at least
    /// `min_duration_ms` (-1 = any).
    pub fn list(
        &self,
        states: &[&str],
        producer_ids: &[i64],
        min_duration_ms: i64,
        now_ms: i64,
    ) -> Vec<&TxnMetadata> {
        let mut out: Vec<&TxnMetadata> = self
            .txns
            .values()
            .filter(|m| m.state != TxnState::Dead)
            .filter(|m| states.is_empty() || states.contains(&m.state.name()))
            .filter(|m| producer_ids.is_empty() || producer_ids.contains(&m.producer_id))
            .filter(|m| {
                min_duration_ms < 0
                    || (m.state.in_transaction()
                        && now_ms.saturating_sub(m.start_ms) >= min_duration_ms)
            })
            .collect();
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        out
    }
}

#[cfg(test)]
mod tests;
