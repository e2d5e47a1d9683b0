//! The broker side of transactions: the internal `__transaction_state` topic, persisting each
//! state the coordinator decides on before it becomes current, writing transaction markers to
//! every partition of a transaction (the single-broker form of WriteTxnMarkers), and the timer
//! work (aborting timed-out transactions, expiring transactional ids, retrying markers).

use super::Broker;
use crate::log::LogError;
use crate::protocol::error::{self, ErrorCode};
use crate::txn::log::{self as txn_log, TRANSACTION_STATE_TOPIC};
use crate::txn::{TxnMetadata, TxnState};
use std::time::Instant;

/// The coordinator epoch written into markers: one broker, one epoch.
pub(crate) const COORDINATOR_EPOCH: i32 = 0;

/// What writing the markers of a transaction achieved.
pub(crate) enum MarkersWritten {
    /// Every partition has its marker: the transaction can complete.
    All,
    /// Some partitions could not be written (offline): retried on the timer.
    Some,
}

impl Broker {
    /// Runs `f` with the transaction coordinator and a producer-id allocator, the coordinator
    /// moved out of the broker meanwhile (allocating an id writes to the metadata log, which
    /// needs the broker).
    pub(crate) fn with_txn_coordinator<T>(
        &mut self,
        now: Instant,
        f: impl FnOnce(&crate::txn::TxnCoordinator, &mut dyn FnMut() -> Result<i64, ErrorCode>) -> T,
    ) -> T {
        let txns = std::mem::take(&mut self.txns);
        let mut alloc = || {
            self.next_producer_id(now).map_err(|e| {
                if Broker::not_controller(&e) {
                    // Asked of the active controller; the client retries.
                    return error::COORDINATOR_LOAD_IN_PROGRESS;
                }
                log::error!("allocating a producer id: {e}");
                error::COORDINATOR_NOT_AVAILABLE
            })
        };
        let out = f(&txns, &mut alloc);
        self.txns = txns;
        out
    }

    /// Creates `__transaction_state` (compacted, internal) on first use.
    pub(crate) fn ensure_txn_topic(&mut self, now: Instant) -> bool {
        if self.meta.image().topic(TRANSACTION_STATE_TOPIC).is_some() {
            return true;
        }
        let configs = [
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("compression.type".to_string(), "uncompressed".to_string()),
            ("segment.bytes".to_string(), "104857600".to_string()),
            ("min.insync.replicas".to_string(), "1".to_string()),
        ];
        let partitions = self.config.transaction_state_log_num_partitions.max(1);
        let rf = self.config.transaction_state_log_replication_factor.max(1);
        match self.create_topic(TRANSACTION_STATE_TOPIC, partitions, rf, &configs, now) {
            Ok(()) => true,
            // Asked of the active controller (a cluster node that is not it).
            Err(e) if Self::not_controller(&e) => false,
            Err(e) => {
                log::error!("creating {TRANSACTION_STATE_TOPIC}: {e}");
                false
            }
        }
    }

    /// Writes a transactional id's next state to `__transaction_state`, then makes it current.
    /// Errors as Kafka's coordinator maps an append failure.
    pub(crate) fn persist_txn(&mut self, m: TxnMetadata, now: Instant) -> Result<(), ErrorCode> {
        if !self.ensure_txn_topic(now) {
            return Err(error::COORDINATOR_NOT_AVAILABLE);
        }
        let partitions = self
            .meta
            .image()
            .topic(TRANSACTION_STATE_TOPIC)
            .map_or(1, |t| t.partitions.len() as i32);
        let p = txn_log::partition_for(&m.transactional_id, partitions);
        let now_ms = self.clock.ms(now);
        let key = txn_log::key_bytes(&m.transactional_id);
        let value = txn_log::value_bytes(&m);
        let mut b = crate::records::BatchBuilder::new(0, now_ms);
        b.push(None, now_ms, Some(&key), value.as_deref(), &[]);
        let mut batch = b.finish();
        let epoch = self.leader_epoch_of(TRANSACTION_STATE_TOPIC, p);
        let Some(log) = self.partition_log_mut(TRANSACTION_STATE_TOPIC, p, now) else {
            return Err(error::COORDINATOR_NOT_AVAILABLE);
        };
        if let Err(e) = log.append(&mut batch, now_ms, epoch) {
            log::error!("writing to {TRANSACTION_STATE_TOPIC}-{p}: {e}");
            return Err(match e {
                LogError::Offline | LogError::Io(_) => error::NOT_COORDINATOR,
                _ => error::UNKNOWN_SERVER_ERROR,
            });
        }
        // Followers of a replicated __transaction_state partition fetch it at once.
        self.note_append(TRANSACTION_STATE_TOPIC, p);
        self.txns.apply(m);
        Ok(())
    }

    /// Writes the COMMIT or ABORT marker of `m` (a PrepareCommit/PrepareAbort state) to each
    /// of its partitions that has none yet. Offsets committed in the transaction become
    /// visible (or are dropped) as their `__consumer_offsets` partition gets its marker.
    pub(crate) fn write_markers(&mut self, m: &TxnMetadata, now: Instant) -> MarkersWritten {
        let commit = m.state == TxnState::PrepareCommit;
        let now_ms = self.clock.ms(now);
        let mut all = true;
        // Partitions led by other brokers of a cluster, by leader: sent WriteTxnMarkers.
        let mut remote: std::collections::BTreeMap<i32, Vec<(String, i32)>> = Default::default();
        for (topic, p) in &m.partitions {
            let leader = self
                .meta
                .image()
                .topic(topic)
                .and_then(|t| t.partition(*p))
                .map(|info| info.leader);
            let Some(leader) = leader else {
                // A deleted topic needs no marker, as in Kafka.
                continue;
            };
            let key = (m.producer_id, m.producer_epoch, topic.clone(), *p);
            if self.markers_done.contains(&key) {
                continue; // written at an earlier attempt
            }
            if !self.leads(topic, *p) {
                remote.entry(leader).or_default().push((topic.clone(), *p));
                all = false;
                continue;
            }
            let Some(log) = self.partition_log_mut(topic, *p, now) else {
                all = false;
                continue;
            };
            match log.append_marker(
                m.producer_id,
                m.producer_epoch,
                commit,
                COORDINATOR_EPOCH,
                now_ms,
            ) {
                Ok(_) => {
                    self.markers_done.insert(key);
                    self.note_append(topic, *p);
                    if topic == crate::group::offsets::OFFSETS_TOPIC {
                        if let Err(e) = self.offsets.end_txn(m.producer_id, commit) {
                            log::error!("applying transactional offsets: {e}");
                        }
                    }
                }
                Err(LogError::InvalidProducerEpoch(_)) => {
                    // A newer epoch already wrote there (a later fencing): nothing to close.
                    log::warn!(
                        "marker for producer {} epoch {} on {topic}-{p}: the partition has a newer epoch",
                        m.producer_id,
                        m.producer_epoch
                    );
                }
                Err(e) => {
                    log::error!("writing a transaction marker to {topic}-{p}: {e}");
                    all = false;
                }
            }
        }
        for (broker, partitions) in remote {
            self.wish(super::cluster::Wish::Markers {
                broker,
                producer_id: m.producer_id,
                producer_epoch: m.producer_epoch,
                commit,
                partitions,
            });
        }
        if all {
            self.markers_done
                .retain(|(pid, epoch, _, _)| (*pid, *epoch) != (m.producer_id, m.producer_epoch));
            MarkersWritten::All
        } else {
            MarkersWritten::Some
        }
    }

    /// A broker of the cluster wrote (or had no need of) the markers of these partitions:
    /// transactions waiting for them are completed.
    pub fn remote_markers_written(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
        now: Instant,
    ) {
        let pending: Vec<_> = self
            .txns
            .pending_markers()
            .into_iter()
            .filter(|m| m.producer_id == producer_id)
            .collect();
        // Only for a transaction still waiting for these markers: a late or repeated answer
        // must not mark the partitions of this producer's *next* transaction (the same id and
        // epoch when the client does not bump it, KIP-890 part 2) as already written, or that
        // transaction's marker would never be written and its partition's LSO would stay put.
        for (t, p) in partitions {
            let waited_for = pending.iter().any(|m| {
                m.producer_epoch == producer_epoch && m.partitions.contains(&(t.clone(), *p))
            });
            if waited_for {
                self.markers_done
                    .insert((producer_id, producer_epoch, t.clone(), *p));
            }
        }
        for m in pending {
            self.complete_txn(&m, now);
        }
    }

    /// Runs a PrepareCommit/PrepareAbort state to its end: persisted, markers written, then
    /// CompleteCommit/CompleteAbort persisted. A transaction whose markers could not all be
    /// written stays prepared (answers CONCURRENT_TRANSACTIONS) and is retried on the timer.
    pub(crate) fn finish_txn(
        &mut self,
        prepared: TxnMetadata,
        now: Instant,
    ) -> Result<(), ErrorCode> {
        self.persist_txn(prepared.clone(), now)?;
        self.complete_txn(&prepared, now);
        Ok(())
    }

    fn complete_txn(&mut self, prepared: &TxnMetadata, now: Instant) {
        if let MarkersWritten::Some = self.write_markers(prepared, now) {
            return;
        }
        let now_ms = self.clock.ms(now);
        match prepared.complete(now_ms) {
            Ok(done) => {
                if let Err(code) = self.persist_txn(done, now) {
                    log::error!(
                        "completing transaction {}: error {code}; retried",
                        prepared.transactional_id
                    );
                }
            }
            Err(e) => log::error!("{}: {e}", prepared.transactional_id),
        }
    }

    /// Timer work: abort transactions past their timeout, finish prepared ones whose markers
    /// are pending, expire idle transactional ids.
    pub(super) fn txn_tick(&mut self, now: Instant) {
        let now_ms = self.clock.ms(now);
        if now_ms < self.next_txn_check_ms {
            return;
        }
        self.next_txn_check_ms =
            now_ms + self.config.transaction_abort_timed_out_interval_ms.max(1);
        for pending in self.txns.pending_markers() {
            self.complete_txn(&pending, now);
        }
        for fenced in self.txns.timed_out(now_ms) {
            log::info!(
                "aborting transaction {} of producer {} after its timeout of {} ms",
                fenced.transactional_id,
                fenced.producer_id,
                fenced.timeout_ms
            );
            if let Err(code) = self.finish_txn(fenced, now) {
                log::warn!("aborting a timed-out transaction: error {code}");
            }
        }
        if now_ms >= self.next_txn_expiry_ms {
            self.next_txn_expiry_ms = now_ms + TXN_EXPIRY_CHECK_MS;
            for dead in self.txns.expired(now_ms) {
                log::info!("transactional id {} expired", dead.transactional_id);
                if let Err(code) = self.persist_txn(dead, now) {
                    log::warn!("expiring a transactional id: error {code}");
                }
            }
        }
    }

    /// Replays `__transaction_state` at start, then finishes what was prepared before a stop.
    pub(super) fn load_txns(&mut self, now: Instant) {
        let Some(t) = self.meta.image().topic(TRANSACTION_STATE_TOPIC) else {
            return;
        };
        let partitions: Vec<i32> = (0..t.partitions.len() as i32).collect();
        self.load_txns_of(&partitions, now);
    }

    /// Replays some partitions of `__transaction_state`: at start, and when this broker becomes
    /// the leader of one (its replica holds what the previous coordinator wrote).
    pub(super) fn load_txns_of(&mut self, partitions: &[i32], now: Instant) {
        let mut buf = Vec::new();
        let mut loaded = 0usize;
        for &p in partitions {
            let Some(log) = self.logs.get(TRANSACTION_STATE_TOPIC, p) else {
                continue;
            };
            let mut offset = log.log_start_offset();
            let end = log.log_end_offset();
            while offset < end {
                buf.clear();
                if let Err(e) = log.read(offset, 8 << 20, true, &mut buf) {
                    log::error!("reading {TRANSACTION_STATE_TOPIC}-{p} at {offset}: {e}");
                    break;
                }
                let mut next = offset;
                for item in crate::records::batches(&buf) {
                    let Ok((h, bytes)) = item else { break };
                    next = h.next_offset();
                    let Ok(payload) = crate::records::records_payload(bytes, 1 << 20) else {
                        continue;
                    };
                    for r in crate::records::iter_records(&payload, h.record_count).flatten() {
                        let Some(key) = r.key else { continue };
                        let id = match txn_log::decode_key(key) {
                            Ok(id) => id,
                            Err(e) => {
                                log::warn!("skipping a {TRANSACTION_STATE_TOPIC} record: {e}");
                                continue;
                            }
                        };
                        match txn_log::decode_value(&id, r.value) {
                            Ok(Some(m)) => {
                                loaded += 1;
                                self.txns.apply(m);
                            }
                            Ok(None) => self.txns.remove(&id),
                            Err(e) => {
                                log::warn!("skipping a {TRANSACTION_STATE_TOPIC} record: {e}")
                            }
                        }
                    }
                }
                if next == offset {
                    break;
                }
                offset = next;
            }
        }
        let pending = self.txns.pending_markers();
        log::info!(
            "loaded {} transactional ids ({loaded} records) from {TRANSACTION_STATE_TOPIC}, {} to finish",
            self.txns.len(),
            pending.len()
        );
        for m in pending {
            self.complete_txn(&m, now);
        }
    }
}

/// Kafka's `transaction.remove.expired.transaction.cleanup.interval.ms` default.
const TXN_EXPIRY_CHECK_MS: i64 = 3_600_000;
