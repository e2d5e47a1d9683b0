//! One partition this broker leads: its followers' progress, the high watermark, the ISR and the
//! AlterPartition request in flight. Kafka's `Partition` (leader side) and `Replica`.
//!
//! The broker calls, for this partition:
//! - [`LeaderState::new`] when it becomes leader, [`LeaderState::apply_metadata`] when the
//!   metadata log changes the partition while it stays leader;
//! - [`LeaderState::check_append`] before an append, then
//!   [`LeaderState::maybe_increment_high_watermark`] after it;
//! - [`LeaderState::check_follower_fetch`], [`diverging_epoch`] and
//!   [`LeaderState::record_follower_fetch`] for each follower Fetch;
//! - [`LeaderState::maybe_shrink_isr`] periodically (Kafka: every `replica.lag.time.max.ms / 2`);
//! - [`LeaderState::check_enough_replicas_reach_offset`] for each acks=all produce waiting;
//! - [`LeaderState::on_alter_partition_response`] with the controller's answer.
//!
//! Methods that may change the ISR return the AlterPartition request to send.

use std::collections::BTreeMap;

use super::{
    epoch_cache, AlterPartitionAnswer, AlterPartitionRequest, BrokerStatus, EpochEndOffset,
    ErrorCode, IsrMember, INELIGIBLE_REPLICA, INVALID_UPDATE_VERSION, NEW_LEADER_ELECTED,
    NOT_ENOUGH_REPLICAS_AFTER_APPEND, OPERATION_NOT_ATTEMPTED,
};
use crate::log::leader_epoch::{UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET};
use crate::protocol::error;

/// An offset not known yet (Kafka's `UnifiedLog.UnknownOffset`).
pub const UNKNOWN_OFFSET: i64 = -1;

/// The configuration the leader's rules read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaderConfig {
    /// The topic's `min.insync.replicas`.
    pub min_insync_replicas: i32,
    /// The broker's `replica.lag.time.max.ms`.
    pub replica_lag_time_max_ms: i64,
}

impl Default for LeaderConfig {
    /// Kafka's defaults: 1 and 30 s.
    fn default() -> Self {
        LeaderConfig {
            min_insync_replicas: 1,
            replica_lag_time_max_ms: 30_000,
        }
    }
}

/// This broker: its id and the broker epoch of its registration (sent for itself in
/// AlterPartition).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalBroker {
    pub id: i32,
    pub epoch: i64,
}

/// The partition as the metadata log states it (Kafka's `LeaderAndIsrPartitionState`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderAndIsr {
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// Assignment order.
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// What the leader knows of one follower (Kafka's `ReplicaState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowerProgress {
    /// From the follower's last Fetch; [`UNKNOWN_OFFSET`] before one.
    pub log_start_offset: i64,
    /// The fetch offset of the follower's last Fetch; [`UNKNOWN_OFFSET`] before one.
    pub log_end_offset: i64,
    /// The leader's log end offset when it received the follower's last Fetch.
    pub last_fetch_leader_log_end_offset: i64,
    /// When the leader received the follower's last Fetch.
    pub last_fetch_ms: i64,
    /// The latest time at which the follower was known to have fetched up to the leader's log
    /// end offset.
    pub last_caught_up_ms: i64,
    /// The broker epoch of the follower's last Fetch (-1: not given); `None` before one.
    pub broker_epoch: Option<i64>,
}

impl FollowerProgress {
    /// Kafka's `ReplicaState.Empty`.
    const EMPTY: FollowerProgress = FollowerProgress {
        log_start_offset: UNKNOWN_OFFSET,
        log_end_offset: UNKNOWN_OFFSET,
        last_fetch_leader_log_end_offset: 0,
        last_fetch_ms: 0,
        last_caught_up_ms: 0,
        broker_epoch: None,
    };

    /// Kafka's `ReplicaState.isCaughtUp`: at the leader's log end offset, or caught up within
    /// the last `max_lag_ms`.
    pub fn is_caught_up(&self, leader_log_end_offset: i64, now_ms: i64, max_lag_ms: i64) -> bool {
        leader_log_end_offset == self.log_end_offset
            || now_ms - self.last_caught_up_ms <= max_lag_ms
    }

    /// Kafka's `Replica.updateFetchStateOrThrow` (after its broker epoch check).
    fn update(&mut self, fetch: &FollowerFetch, now_ms: i64, leader_log_end_offset: i64) {
        // Caught up if this fetch reads up to the leader's log end offset now; else caught up as
        // of the previous fetch if this one reads up to where the leader's log ended then (a
        // follower of a busy partition is always a little behind but still in sync).
        let last_caught_up_ms = if fetch.fetch_offset >= leader_log_end_offset {
            self.last_caught_up_ms.max(now_ms)
        } else if fetch.fetch_offset >= self.last_fetch_leader_log_end_offset {
            self.last_caught_up_ms.max(self.last_fetch_ms)
        } else {
            self.last_caught_up_ms
        };
        *self = FollowerProgress {
            log_start_offset: fetch.log_start_offset,
            log_end_offset: fetch.fetch_offset,
            last_fetch_leader_log_end_offset: leader_log_end_offset
                .max(self.last_fetch_leader_log_end_offset),
            last_fetch_ms: now_ms,
            last_caught_up_ms,
            broker_epoch: Some(fetch.broker_epoch),
        };
    }

    /// Kafka's `Replica.resetReplicaState`, when a leader epoch starts.
    fn reset(&mut self, now_ms: i64, leader_log_end_offset: i64, new_leader: bool, in_isr: bool) {
        // In the ISR: caught up as of now; otherwise not (so a replica outside the ISR does not
        // hold back the HW, nor is brought back before it fetches).
        let since = if in_isr { now_ms } else { 0 };
        *self = if new_leader {
            FollowerProgress {
                last_fetch_leader_log_end_offset: UNKNOWN_OFFSET,
                last_caught_up_ms: since,
                ..FollowerProgress::EMPTY
            }
        } else {
            FollowerProgress {
                last_fetch_leader_log_end_offset: leader_log_end_offset,
                last_fetch_ms: since,
                last_caught_up_ms: since,
                ..*self
            }
        };
    }
}

/// A follower's Fetch as the leader records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowerFetch {
    pub replica_id: i32,
    /// The fetch offset: the follower's log end offset.
    pub fetch_offset: i64,
    pub log_start_offset: i64,
    /// The request's ReplicaState.ReplicaEpoch (Fetch v15+), -1 when absent.
    pub broker_epoch: i64,
}

/// What recording a follower's Fetch changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchUpdate {
    /// The high watermark advanced: delayed fetches and acks=all produces may complete.
    pub high_watermark_advanced: bool,
    /// The follower may join the ISR: send this AlterPartition request.
    pub alter_partition: Option<AlterPartitionRequest>,
}

/// The result of [`LeaderState::apply_metadata`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetadataOutcome {
    /// Older than the partition epoch already known: ignored (Kafka's `makeLeader` skip).
    Skipped,
    Applied {
        high_watermark_advanced: bool,
    },
}

/// The result of [`LeaderState::on_alter_partition_response`] (Kafka's
/// `handleAlterPartitionUpdate` / `handleAlterPartitionError`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlterPartitionOutcome {
    /// Not the answer to the request in flight (the state changed since it was sent): ignored.
    Stale,
    /// The controller's ISR and partition epoch are now the committed state.
    Committed { high_watermark_advanced: bool },
    /// An answer for another leader epoch, or an older partition epoch: ignored; the request
    /// stays in flight until new metadata replaces the state.
    Ignored,
    /// The controller did not apply the request (OPERATION_NOT_ATTEMPTED, INELIGIBLE_REPLICA):
    /// back to the committed state, from which the ISR may be changed again.
    RolledBack,
    /// An error after which the leader waits for new metadata; the request stays in flight.
    AwaitMetadata,
    /// Any other error: send this request again.
    Retry(AlterPartitionRequest),
}

/// Kafka's `CommittedPartitionState`, `PendingExpandIsr` and `PendingShrinkIsr`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum IsrState {
    Committed,
    /// `new_member` is proposed to join; it already counts for the HW.
    PendingExpand {
        new_member: i32,
        sent: AlterPartitionRequest,
    },
    /// Members are proposed to leave; they still count for the HW until the controller agrees.
    PendingShrink {
        removed: Vec<i32>,
        sent: AlterPartitionRequest,
    },
}

/// The leader's state for one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderState {
    local: LocalBroker,
    config: LeaderConfig,
    replicas: Vec<i32>,
    /// The committed ISR.
    isr: Vec<i32>,
    isr_state: IsrState,
    leader_epoch: i32,
    partition_epoch: i32,
    /// The leader's log end offset when its leader epoch began.
    leader_epoch_start_offset: i64,
    high_watermark: i64,
    followers: BTreeMap<i32, FollowerProgress>,
}

impl LeaderState {
    /// This broker becomes the leader (Kafka's `makeLeader` on a broker that was not leader):
    /// `log_end_offset` is where its leader epoch starts; `high_watermark` is the log's. Every
    /// follower starts unknown, caught up as of now if in the ISR. The HW may advance at once
    /// (an ISR of just the leader); read it with [`LeaderState::high_watermark`].
    ///
    /// `brokers` looks a broker up in the metadata image (None: not registered).
    pub fn new<B: Fn(i32) -> Option<BrokerStatus>>(
        local: LocalBroker,
        config: LeaderConfig,
        state: &LeaderAndIsr,
        log_end_offset: i64,
        high_watermark: i64,
        now_ms: i64,
        brokers: B,
    ) -> LeaderState {
        let mut leader = LeaderState {
            local,
            config,
            replicas: Vec::new(),
            isr: Vec::new(),
            isr_state: IsrState::Committed,
            leader_epoch: state.leader_epoch,
            partition_epoch: state.partition_epoch,
            leader_epoch_start_offset: log_end_offset,
            high_watermark,
            followers: BTreeMap::new(),
        };
        leader.update_assignment_and_isr(state);
        for (id, f) in leader.followers.iter_mut() {
            f.reset(now_ms, log_end_offset, true, state.isr.contains(id));
        }
        leader.increment_high_watermark(log_end_offset, now_ms, &brokers);
        leader
    }

    /// The metadata log changed the partition and this broker stays leader (Kafka's
    /// `makeLeader` on the leader). A state older than the partition epoch known is skipped.
    /// Otherwise the replicas and the committed ISR are replaced (an AlterPartition in flight is
    /// forgotten), and a new leader epoch starts at `log_end_offset` with the followers' timers
    /// reset (their log end offsets kept).
    pub fn apply_metadata<B: Fn(i32) -> Option<BrokerStatus>>(
        &mut self,
        state: &LeaderAndIsr,
        log_end_offset: i64,
        now_ms: i64,
        brokers: B,
    ) -> MetadataOutcome {
        // The partition epoch may already be known from an AlterPartition answer: equal is fine.
        if state.partition_epoch < self.partition_epoch {
            return MetadataOutcome::Skipped;
        }
        self.update_assignment_and_isr(state);
        if state.leader_epoch > self.leader_epoch {
            for (id, f) in self.followers.iter_mut() {
                f.reset(now_ms, log_end_offset, false, state.isr.contains(id));
            }
            self.leader_epoch = state.leader_epoch;
            self.leader_epoch_start_offset = log_end_offset;
        }
        self.partition_epoch = state.partition_epoch;
        MetadataOutcome::Applied {
            high_watermark_advanced: self.increment_high_watermark(
                log_end_offset,
                now_ms,
                &brokers,
            ),
        }
    }

    /// Kafka's `updateAssignmentAndIsr` for a leader.
    fn update_assignment_and_isr(&mut self, state: &LeaderAndIsr) {
        let followers: Vec<i32> = state
            .replicas
            .iter()
            .copied()
            .filter(|&r| r != self.local.id)
            .collect();
        for &f in &followers {
            self.followers.entry(f).or_insert(FollowerProgress::EMPTY);
        }
        self.followers.retain(|id, _| followers.contains(id));
        self.replicas = state.replicas.clone();
        self.isr = state.isr.clone();
        self.isr_state = IsrState::Committed;
    }

    pub fn config(&self) -> LeaderConfig {
        self.config
    }

    /// `min.insync.replicas` and `replica.lag.time.max.ms` are read at each use, as Kafka
    /// reads them from the current configuration.
    pub fn set_config(&mut self, config: LeaderConfig) {
        self.config = config;
    }

    pub fn local(&self) -> LocalBroker {
        self.local
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    pub fn partition_epoch(&self) -> i32 {
        self.partition_epoch
    }

    /// The leader's log end offset when its leader epoch began.
    pub fn leader_epoch_start_offset(&self) -> i64 {
        self.leader_epoch_start_offset
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    pub fn replicas(&self) -> &[i32] {
        &self.replicas
    }

    /// The committed ISR (what the controller last agreed to).
    pub fn isr(&self) -> &[i32] {
        &self.isr
    }

    /// Kafka's `maximalIsr`: the committed ISR plus a member whose addition is in flight. It
    /// holds the HW back and counts for acks=all.
    pub fn maximal_isr(&self) -> Vec<i32> {
        let mut isr = self.isr.clone();
        if let IsrState::PendingExpand { new_member, .. } = self.isr_state {
            if !isr.contains(&new_member) {
                isr.push(new_member);
            }
        }
        isr
    }

    /// The AlterPartition request in flight, if any (Kafka's `isInflight`).
    pub fn in_flight(&self) -> Option<&AlterPartitionRequest> {
        match &self.isr_state {
            IsrState::Committed => None,
            IsrState::PendingExpand { sent, .. } | IsrState::PendingShrink { sent, .. } => {
                Some(sent)
            }
        }
    }

    /// The replicas an in-flight shrink proposes to remove.
    pub fn pending_removals(&self) -> &[i32] {
        match &self.isr_state {
            IsrState::PendingShrink { removed, .. } => removed,
            _ => &[],
        }
    }

    pub fn follower(&self, replica_id: i32) -> Option<&FollowerProgress> {
        self.followers.get(&replica_id)
    }

    /// Kafka's `effectiveMinIsr`: `min.insync.replicas`, at most the replication factor.
    pub fn effective_min_isr(&self) -> usize {
        (self.config.min_insync_replicas.max(0) as usize).min(self.followers.len() + 1)
    }

    /// Kafka's `isUnderMinIsr`: the committed ISR is smaller than the effective minimum.
    pub fn is_under_min_isr(&self) -> bool {
        self.isr.len() < self.effective_min_isr()
    }

    /// Kafka's `appendRecordsToLeader` check: with acks=all (-1), an append is refused with
    /// NOT_ENOUGH_REPLICAS when the committed ISR is below the effective `min.insync.replicas`.
    pub fn check_append(&self, required_acks: i16) -> Result<(), ErrorCode> {
        if required_acks == -1 && self.is_under_min_isr() {
            return Err(error::NOT_ENOUGH_REPLICAS);
        }
        Ok(())
    }

    /// Kafka's `checkEnoughReplicasReachOffset`, for an acks=all produce waiting for
    /// `required_offset` (its last offset + 1). None: keep waiting. Some(NONE): done.
    /// Some(NOT_ENOUGH_REPLICAS_AFTER_APPEND): the HW passed it, but the ISR has shrunk below
    /// `min.insync.replicas` meanwhile.
    pub fn check_enough_replicas_reach_offset(&self, required_offset: i64) -> Option<ErrorCode> {
        if self.high_watermark < required_offset {
            return None;
        }
        if self.effective_min_isr() <= self.maximal_isr().len() {
            Some(error::NONE)
        } else {
            Some(NOT_ENOUGH_REPLICAS_AFTER_APPEND)
        }
    }

    /// The checks a follower Fetch passes before it is served (Kafka's
    /// `checkCurrentLeaderEpoch` and `followerReplicaOrThrow`). `current_leader_epoch` is the
    /// request's, None when absent (-1).
    pub fn check_follower_fetch(
        &self,
        replica_id: i32,
        current_leader_epoch: Option<i32>,
    ) -> Result<(), ErrorCode> {
        if let Some(epoch) = current_leader_epoch {
            if epoch < self.leader_epoch {
                return Err(error::FENCED_LEADER_EPOCH);
            }
            if epoch > self.leader_epoch {
                return Err(error::UNKNOWN_LEADER_EPOCH);
            }
        }
        if !self.followers.contains_key(&replica_id) {
            // A replica not (yet) in the assignment, e.g. being added by a reassignment.
            return Err(if current_leader_epoch.is_some() {
                error::UNKNOWN_LEADER_EPOCH
            } else {
                error::NOT_LEADER_OR_FOLLOWER
            });
        }
        Ok(())
    }

    /// Records a follower's Fetch (Kafka's `updateFollowerFetchState`); not called when the
    /// fetch found a diverging epoch. `leader_log_end_offset` is the leader's log end offset
    /// before the read. A stale broker epoch (older than the registration's) is refused with
    /// NOT_LEADER_OR_FOLLOWER. The follower may be proposed for the ISR, and the HW may advance.
    pub fn record_follower_fetch<B: Fn(i32) -> Option<BrokerStatus>>(
        &mut self,
        fetch: &FollowerFetch,
        leader_log_end_offset: i64,
        now_ms: i64,
        brokers: B,
    ) -> Result<FetchUpdate, ErrorCode> {
        let alive_epoch = alive_broker_epoch(&brokers, fetch.replica_id);
        let Some(progress) = self.followers.get_mut(&fetch.replica_id) else {
            return Err(error::NOT_LEADER_OR_FOLLOWER);
        };
        // Replica.updateFetchStateOrThrow: fence an update from a previous incarnation.
        if fetch.broker_epoch != -1 && alive_epoch.is_some_and(|e| e > fetch.broker_epoch) {
            return Err(error::NOT_LEADER_OR_FOLLOWER);
        }
        let previous_log_end_offset = progress.log_end_offset;
        progress.update(fetch, now_ms, leader_log_end_offset);
        let changed = progress.log_end_offset != previous_log_end_offset;
        let alter_partition = self.maybe_expand_isr(fetch.replica_id, &brokers);
        // The HW may move only if the follower's log end offset did.
        let high_watermark_advanced =
            changed && self.increment_high_watermark(leader_log_end_offset, now_ms, &brokers);
        Ok(FetchUpdate {
            high_watermark_advanced,
            alter_partition,
        })
    }

    /// Kafka's `maybeIncrementLeaderHW`, after an append or whenever the ISR changed. Returns
    /// whether the HW advanced.
    pub fn maybe_increment_high_watermark<B: Fn(i32) -> Option<BrokerStatus>>(
        &mut self,
        leader_log_end_offset: i64,
        now_ms: i64,
        brokers: B,
    ) -> bool {
        self.increment_high_watermark(leader_log_end_offset, now_ms, &brokers)
    }

    fn increment_high_watermark(
        &mut self,
        leader_log_end_offset: i64,
        now_ms: i64,
        brokers: &dyn Fn(i32) -> Option<BrokerStatus>,
    ) -> bool {
        // KIP-966: the HW does not move while the ISR is below min.insync.replicas.
        if self.is_under_min_isr() {
            return false;
        }
        let maximal_isr = self.maximal_isr();
        let mut new_high_watermark = leader_log_end_offset;
        for (&id, f) in &self.followers {
            // A replica outside the ISR that is caught up and may join it holds the HW back
            // too, so that it can reach the HW and join (shouldWaitForReplicaToJoinIsr).
            let counts = maximal_isr.contains(&id)
                || (f.is_caught_up(
                    leader_log_end_offset,
                    now_ms,
                    self.config.replica_lag_time_max_ms,
                ) && self.is_replica_isr_eligible(id, brokers));
            if counts && f.log_end_offset < new_high_watermark {
                new_high_watermark = f.log_end_offset;
            }
        }
        // UnifiedLog.maybeIncrementHighWatermark: it only grows.
        if new_high_watermark > self.high_watermark {
            self.high_watermark = new_high_watermark;
            true
        } else {
            false
        }
    }

    /// Kafka's `getOutOfSyncReplicas`: ISR followers not caught up for longer than
    /// `replica.lag.time.max.ms` (stuck or slow). Never the leader; none while an AlterPartition
    /// is in flight.
    pub fn out_of_sync_replicas(&self, leader_log_end_offset: i64, now_ms: i64) -> Vec<i32> {
        if self.in_flight().is_some() {
            return Vec::new();
        }
        let lag = self.config.replica_lag_time_max_ms;
        self.isr
            .iter()
            .copied()
            .filter(|&id| id != self.local.id)
            .filter(|id| {
                self.followers
                    .get(id)
                    .is_none_or(|f| !f.is_caught_up(leader_log_end_offset, now_ms, lag))
            })
            .collect()
    }

    /// Kafka's `maybeShrinkIsr`: proposes the ISR without the out-of-sync followers. The
    /// request goes in flight; they still count for the HW until the controller agrees.
    pub fn maybe_shrink_isr(
        &mut self,
        leader_log_end_offset: i64,
        now_ms: i64,
    ) -> Option<AlterPartitionRequest> {
        let removed = self.out_of_sync_replicas(leader_log_end_offset, now_ms);
        if removed.is_empty() {
            return None;
        }
        let isr: Vec<i32> = self
            .isr
            .iter()
            .copied()
            .filter(|id| !removed.contains(id))
            .collect();
        let sent = self.alter_partition_request(&isr);
        self.isr_state = IsrState::PendingShrink {
            removed,
            sent: sent.clone(),
        };
        Some(sent)
    }

    /// Kafka's `needsExpandIsr`: no AlterPartition in flight, the follower is outside the ISR,
    /// eligible (registered, unfenced, not shutting down, fetching with its current broker
    /// epoch), and in sync: its log end offset is at least the HW and at least where this leader
    /// epoch began (`isFollowerInSync`; otherwise it may lack committed data between the HW and
    /// the leader's log end offset, and lose it if elected).
    pub fn can_join_isr<B: Fn(i32) -> Option<BrokerStatus>>(
        &self,
        replica_id: i32,
        brokers: B,
    ) -> bool {
        self.needs_expand_isr(replica_id, &brokers)
    }

    fn needs_expand_isr(
        &self,
        replica_id: i32,
        brokers: &dyn Fn(i32) -> Option<BrokerStatus>,
    ) -> bool {
        let Some(f) = self.followers.get(&replica_id) else {
            return false;
        };
        self.in_flight().is_none()
            && !self.isr.contains(&replica_id)
            && self.is_replica_isr_eligible(replica_id, brokers)
            && f.log_end_offset >= self.high_watermark
            && f.log_end_offset >= self.leader_epoch_start_offset
    }

    /// Kafka's `maybeExpandIsr` / `prepareIsrExpand`.
    fn maybe_expand_isr(
        &mut self,
        replica_id: i32,
        brokers: &dyn Fn(i32) -> Option<BrokerStatus>,
    ) -> Option<AlterPartitionRequest> {
        if !self.needs_expand_isr(replica_id, brokers) {
            return None;
        }
        let mut isr = self.isr.clone();
        isr.push(replica_id);
        let sent = self.alter_partition_request(&isr);
        self.isr_state = IsrState::PendingExpand {
            new_member: replica_id,
            sent: sent.clone(),
        };
        Some(sent)
    }

    /// Kafka's `isReplicaIsrEligible` (KRaft): not fenced, not in controlled shutdown, and the
    /// broker epoch of its fetches is its registration's (or -1, which skips the check).
    fn is_replica_isr_eligible(
        &self,
        replica_id: i32,
        brokers: &dyn Fn(i32) -> Option<BrokerStatus>,
    ) -> bool {
        let Some(f) = self.followers.get(&replica_id) else {
            return false;
        };
        let status = brokers(replica_id);
        let fenced = status.is_some_and(|s| s.fenced);
        let shutting_down = status.is_some_and(|s| s.in_controlled_shutdown);
        let alive_epoch = alive_broker_epoch(brokers, replica_id);
        // isBrokerEpochIsrEligible
        let epoch_ok = match (f.broker_epoch, alive_epoch) {
            (Some(stored), Some(alive)) => stored == -1 || stored == alive,
            _ => false,
        };
        !fenced && !shutting_down && epoch_ok
    }

    /// Kafka's `addBrokerEpochToIsr` and the `LeaderAndIsr` it sends.
    fn alter_partition_request(&self, isr: &[i32]) -> AlterPartitionRequest {
        let new_isr = isr
            .iter()
            .map(|&id| IsrMember {
                broker_id: id,
                broker_epoch: if id == self.local.id {
                    self.local.epoch
                } else {
                    // Unknown until the member fetches: -1 skips the controller's check.
                    self.followers
                        .get(&id)
                        .and_then(|f| f.broker_epoch)
                        .unwrap_or(-1)
                },
            })
            .collect();
        AlterPartitionRequest {
            leader_id: self.local.id,
            leader_epoch: self.leader_epoch,
            partition_epoch: self.partition_epoch,
            new_isr,
            leader_recovering: false,
        }
    }

    /// The controller answered `sent` (Kafka's `submitAlterPartition` completion): `Ok` with
    /// the partition's state after the change, or `Err` with the partition's error code.
    pub fn on_alter_partition_response<B: Fn(i32) -> Option<BrokerStatus>>(
        &mut self,
        sent: &AlterPartitionRequest,
        answer: Result<&AlterPartitionAnswer, ErrorCode>,
        leader_log_end_offset: i64,
        now_ms: i64,
        brokers: B,
    ) -> AlterPartitionOutcome {
        if self.in_flight() != Some(sent) {
            return AlterPartitionOutcome::Stale;
        }
        match answer {
            Ok(state) => {
                // handleAlterPartitionUpdate
                if state.leader_epoch != self.leader_epoch
                    || state.partition_epoch < self.partition_epoch
                {
                    return AlterPartitionOutcome::Ignored;
                }
                // A higher partition epoch: the controller applied it. An equal one: it changed
                // nothing as the state already was the proposal. Either way, committed.
                self.isr = state.isr.clone();
                self.isr_state = IsrState::Committed;
                self.partition_epoch = state.partition_epoch;
                AlterPartitionOutcome::Committed {
                    high_watermark_advanced: self.increment_high_watermark(
                        leader_log_end_offset,
                        now_ms,
                        &brokers,
                    ),
                }
            }
            // handleAlterPartitionError
            Err(OPERATION_NOT_ATTEMPTED | INELIGIBLE_REPLICA) => {
                // The controller states the request was not applied at this partition epoch.
                self.isr_state = IsrState::Committed;
                AlterPartitionOutcome::RolledBack
            }
            Err(
                error::UNKNOWN_TOPIC_OR_PARTITION
                | error::UNKNOWN_TOPIC_ID
                | error::FENCED_LEADER_EPOCH
                | INVALID_UPDATE_VERSION
                | error::INVALID_REQUEST
                | NEW_LEADER_ELECTED,
            ) => AlterPartitionOutcome::AwaitMetadata,
            Err(_) => AlterPartitionOutcome::Retry(sent.clone()),
        }
    }
}

/// Kafka's `KRaftMetadataCache.getAliveBrokerEpoch`: the epoch of a registered, unfenced broker.
fn alive_broker_epoch(brokers: &dyn Fn(i32) -> Option<BrokerStatus>, id: i32) -> Option<i64> {
    brokers(id).filter(|s| !s.fenced).map(|s| s.epoch)
}

/// The leader's check of a Fetch that carries `LastFetchedEpoch` (Kafka's
/// `Partition.readRecords`, KIP-595): `Ok(Some(epoch_end))` when the fetcher's log diverges from
/// the leader's (its last fetched epoch ended earlier on the leader, or is unknown below a later
/// one, or ended before the fetch offset): the response carries it as DivergingEpoch, without
/// records, and the fetch is not recorded. `Ok(None)`: serve the fetch. OFFSET_OUT_OF_RANGE when
/// the leader cannot place the epoch (newer than all it knows) or the fetch offset is below its
/// log start.
///
/// `epochs` are the leader's (epoch, start offset) entries; its own `leader_epoch` counts as
/// starting at its log end offset if not recorded yet (Kafka records it when it becomes leader).
pub fn diverging_epoch(
    epochs: &[(i32, i64)],
    leader_epoch: i32,
    log_start_offset: i64,
    log_end_offset: i64,
    fetch_offset: i64,
    last_fetched_epoch: i32,
) -> Result<Option<EpochEndOffset>, ErrorCode> {
    let end =
        epoch_cache(epochs).end_offset_as_leader(last_fetched_epoch, leader_epoch, log_end_offset);
    diverging_from(end, log_start_offset, fetch_offset, last_fetched_epoch)
}

/// [`diverging_epoch`] from the leader's answer for the follower's last fetched epoch, `end`:
/// (the largest epoch ≤ it, where that epoch ends), as `PartitionLog::end_offset_as_leader`
/// gives it without copying the epoch cache.
pub fn diverging_from(
    end: (i32, i64),
    log_start_offset: i64,
    fetch_offset: i64,
    last_fetched_epoch: i32,
) -> Result<Option<EpochEndOffset>, ErrorCode> {
    let (epoch, end_offset) = end;
    if end_offset == UNDEFINED_EPOCH_OFFSET || epoch == UNDEFINED_EPOCH {
        return Err(error::OFFSET_OUT_OF_RANGE);
    }
    // Below the log start: out of range whether or not the epochs diverge.
    if fetch_offset < log_start_offset {
        return Err(error::OFFSET_OUT_OF_RANGE);
    }
    if epoch < last_fetched_epoch || end_offset < fetch_offset {
        return Ok(Some(EpochEndOffset { epoch, end_offset }));
    }
    Ok(None)
}

#[cfg(test)]
#[path = "leader_tests.rs"]
mod tests;
