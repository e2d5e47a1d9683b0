//! Partition replication on this broker: the leader and follower state of each replicated
//! partition (`crate::replication`'s state machines) joined to the logs and the image.
//!
//! - Roles follow the image (`refresh_replicas`, after every metadata change): a partition of
//!   more than one replica that this broker leads gets a `LeaderState`, one it follows a
//!   `FollowerState`. A single-replica partition (and every partition of a single node) has
//!   neither, and its high watermark is what is safely readable from its log, as before.
//! - Followers fetch from their leaders: `replica_fetch_requests` builds one Fetch (with this
//!   broker's replica id) per leader, which the cluster node sends over a link of its own, and
//!   `on_replica_fetch_response` appends what comes back as it was written on the leader.
//! - A leader records each follower's Fetch (`follower_fetch`), which moves the high watermark;
//!   consumers read below it (`Served`), and acks=all produce answers wait for it
//!   (`await_replicas`, settled in `replication_turn`).

use super::{Broker, ConnId};
use crate::log::LogError;
use crate::metadata::MetadataImage;
use crate::protocol::error::{self, ErrorCode};
use crate::protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use crate::protocol::messages::fetch_response::FetchResponse;
use crate::protocol::wire::{Reader, Writer};
use crate::replication::EpochEndOffset;
use crate::replication::{
    diverging_from, follower_high_watermark, AlterPartitionAnswer, AlterPartitionOutcome,
    AlterPartitionRequest, BrokerStatus, FetchPosition, FollowerConfig, FollowerFetch,
    FollowerState, LeaderAndIsr, LeaderConfig, LeaderState, LocalBroker, LocalLog,
    Outcome as FollowerOutcome, Step,
};
use std::collections::HashMap;
use std::time::{Duration, Instant};

type Tp = (String, i32);

/// The Fetch version followers send: flexible, with LastFetchedEpoch and DivergingEpoch
/// (KIP-595) and topic names.
pub const REPLICA_FETCH_VERSION: i16 = 12;
/// Kafka's `replica.fetch.wait.max.ms`, `replica.fetch.min.bytes`, `replica.fetch.max.bytes`
/// and `replica.fetch.response.max.bytes` defaults.
const REPLICA_FETCH_WAIT_MAX_MS: i32 = 500;
const REPLICA_FETCH_MAX_BYTES: i32 = 1 << 20;
const REPLICA_FETCH_RESPONSE_MAX_BYTES: i32 = 10 << 20;

/// A produce answer waiting for the high watermark: `check(broker, expired)` builds it once
/// every partition's records are replicated (or the deadline passed), None meanwhile.
pub type AwaitReplicas = Box<dyn FnMut(&Broker, bool) -> Option<Vec<u8>> + Send>;

struct Follower {
    state: FollowerState,
    /// The follower's high watermark (from the leader's, bounded by the local log): where it
    /// starts as leader.
    high_watermark: i64,
}

#[derive(Default)]
pub(crate) struct Replication {
    leading: HashMap<Tp, LeaderState>,
    following: HashMap<Tp, Follower>,
    /// Leaders a Fetch is in flight to, with the positions it asked for.
    fetching: HashMap<i32, Vec<(Tp, FetchPosition)>>,
    /// Led partitions appended to this turn: their high watermark may move.
    appended: Vec<Tp>,
    /// Led partitions whose high watermark advanced this turn.
    advanced: Vec<Tp>,
    /// acks=all produce answers waiting for the high watermark.
    waiting: Vec<(ConnId, Instant, AwaitReplicas)>,
    /// ISR changes to ask the controller for (AlterPartition), one per partition at a time.
    alter: Vec<(Tp, AlterPartitionRequest)>,
    /// When the ISRs are next checked for followers that fell behind.
    next_isr_check_ms: i64,
    /// Roles changed: waiting answers are checked again (a lost leadership answers them).
    recheck: bool,
    /// This incarnation's broker epoch (from its registration; -1 before).
    broker_epoch: i64,
}

fn status(image: &MetadataImage, id: i32) -> Option<BrokerStatus> {
    image.brokers().get(&id).map(|b| BrokerStatus {
        epoch: b.epoch,
        fenced: b.fenced,
        in_controlled_shutdown: b.in_controlled_shutdown,
    })
}

/// The whole batches at the front of `records` (a leader may cut the last one short).
fn whole_batches(records: &[u8]) -> &[u8] {
    let mut at = 0;
    while records.len() - at >= 12 {
        let len = i32::from_be_bytes([
            records[at + 8],
            records[at + 9],
            records[at + 10],
            records[at + 11],
        ]);
        let end = at + 12 + len.max(0) as usize;
        if len <= 0 || end > records.len() {
            break;
        }
        at = end;
    }
    &records[..at]
}

/// What the local log looks like to a follower's rules.
struct LocalView {
    epochs: Vec<(i32, i64)>,
    log_start_offset: i64,
    log_end_offset: i64,
}

impl LocalView {
    fn with_high_watermark(&self, high_watermark: i64) -> LocalLog<'_> {
        LocalLog {
            epochs: &self.epochs,
            log_end_offset: self.log_end_offset,
            high_watermark,
        }
    }
}

impl Broker {
    fn leader_config(&self, topic: &str) -> LeaderConfig {
        let min = self
            .meta
            .image()
            .topic(topic)
            .and_then(|t| t.configs.get("min.insync.replicas"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(self.config.min_insync_replicas);
        LeaderConfig {
            min_insync_replicas: min,
            replica_lag_time_max_ms: self.config.replica_lag_time_max_ms,
        }
    }

    fn local_view(&self, topic: &str, partition: i32) -> LocalView {
        match self.logs.get(topic, partition) {
            Some(l) => LocalView {
                epochs: l.epoch_entries(),
                log_start_offset: l.log_start_offset(),
                log_end_offset: l.log_end_offset(),
            },
            None => LocalView {
                epochs: Vec::new(),
                log_start_offset: 0,
                log_end_offset: 0,
            },
        }
    }

    /// The log of a partition this broker holds a replica of, created on first use.
    fn replica_log_mut(
        &mut self,
        topic: &str,
        partition: i32,
        now: Instant,
    ) -> Option<&mut crate::log::PartitionLog> {
        if self.logs.get(topic, partition).is_none() {
            let id = self.meta.image().topic(topic)?.id;
            let cfg = self.topic_log_config(topic);
            let now_ms = self.clock.ms(now);
            if let Err(e) = self.logs.create(topic, partition, id, cfg, now_ms) {
                log::error!("creating the log of replica {topic}-{partition}: {e}");
                return None;
            }
        }
        self.logs.get_mut(topic, partition)
    }

    /// This broker registered with the controller under `epoch`.
    pub fn set_broker_epoch(&mut self, epoch: i64, now: Instant) {
        self.replication.broker_epoch = epoch;
        self.refresh_roles(now);
    }

    /// Whether replicas act here: once the image holds this incarnation's registration
    /// unfenced, which the controller commits only after this broker's metadata caught up.
    /// Before that (a restarted broker replaying old metadata) it must not lead what it led
    /// before it went away, nor follow stale leaders.
    fn replicas_active(&self) -> bool {
        let epoch = self.replication.broker_epoch;
        epoch >= 0
            && self
                .meta
                .image()
                .brokers()
                .get(&self.config.node_id)
                .is_some_and(|b| b.epoch == epoch && !b.fenced)
    }

    /// Whether this broker serves a replicated partition as its leader now (a single-replica
    /// partition needs no leader state).
    pub(crate) fn leads_replicated(&self, topic: &str, partition: i32, replicas: usize) -> bool {
        replicas < 2
            || self
                .replication
                .leading
                .contains_key(&(topic.to_string(), partition))
    }

    /// Takes up the roles the image gives this broker for replicated partitions: leader state
    /// for those it leads, follower state for those it follows; drops the others.
    pub(crate) fn refresh_replicas(&mut self, now: Instant) {
        if self.cluster.is_none() {
            return;
        }
        self.replication.recheck = true;
        if !self.replicas_active() {
            self.replication.leading.clear();
            self.replication.following.clear();
            self.replication.fetching.clear();
            self.replication.alter.clear();
            return;
        }
        let node = self.config.node_id;
        let now_ms = self.clock.ms(now);
        let mut lead: Vec<(Tp, LeaderAndIsr)> = Vec::new();
        let mut follow: Vec<(Tp, i32, i32)> = Vec::new();
        for t in self.meta.image().topics() {
            for p in &t.partitions {
                if p.replicas.len() < 2 || !p.replicas.contains(&node) {
                    continue;
                }
                let tp = (t.name.clone(), p.partition);
                if p.leader == node {
                    lead.push((
                        tp,
                        LeaderAndIsr {
                            leader_epoch: p.leader_epoch,
                            partition_epoch: p.partition_epoch,
                            replicas: p.replicas.clone(),
                            isr: p.isr.clone(),
                        },
                    ));
                } else if p.leader >= 0 {
                    follow.push((tp, p.leader, p.leader_epoch));
                }
            }
        }
        let broker_epoch = self
            .meta
            .image()
            .brokers()
            .get(&node)
            .map_or(-1, |b| b.epoch);
        let mut keep_leading = std::collections::HashSet::new();
        for (tp, state) in lead {
            let leo = match self.replica_log_mut(&tp.0, tp.1, now) {
                Some(l) => l.log_end_offset(),
                None => continue,
            };
            let config = self.leader_config(&tp.0);
            let image = self.meta.image();
            let brokers = |id| status(image, id);
            match self.replication.leading.get_mut(&tp) {
                Some(l) => {
                    l.set_config(config);
                    if let crate::replication::MetadataOutcome::Applied {
                        high_watermark_advanced: true,
                    } = l.apply_metadata(&state, leo, now_ms, brokers)
                    {
                        self.replication.advanced.push(tp.clone());
                    }
                }
                None => {
                    // A follower becoming leader starts from its high watermark; a fresh
                    // leader (or one restarted) from its log start: the high watermark then
                    // moves up as the in-sync replicas fetch.
                    let hw = match self.replication.following.remove(&tp) {
                        Some(f) => f.high_watermark,
                        None => self
                            .logs
                            .get(&tp.0, tp.1)
                            .map_or(0, |l| l.log_start_offset()),
                    };
                    let local = LocalBroker {
                        id: node,
                        epoch: broker_epoch,
                    };
                    let l = LeaderState::new(local, config, &state, leo, hw, now_ms, brokers);
                    log::info!(
                        "leading {}-{} in epoch {} (isr {:?}, high watermark {})",
                        tp.0,
                        tp.1,
                        state.leader_epoch,
                        state.isr,
                        l.high_watermark()
                    );
                    self.replication.leading.insert(tp.clone(), l);
                    self.replication.advanced.push(tp.clone());
                }
            }
            keep_leading.insert(tp);
        }
        self.replication
            .leading
            .retain(|tp, _| keep_leading.contains(tp));
        let mut keep_following = std::collections::HashSet::new();
        for (tp, leader, epoch) in follow {
            if self.replica_log_mut(&tp.0, tp.1, now).is_none() {
                continue;
            }
            let view = self.local_view(&tp.0, tp.1);
            match self.replication.following.get_mut(&tp) {
                Some(f) => {
                    let local = view.with_high_watermark(f.high_watermark);
                    if f.state.on_leader_change(leader, epoch, &local) {
                        log::info!("following {}-{} from {leader} in epoch {epoch}", tp.0, tp.1);
                    }
                }
                None => {
                    // Without a checkpointed high watermark, the log end: the follower keeps
                    // its log and lets the leader point out a divergence.
                    let local = view.with_high_watermark(view.log_end_offset);
                    let state = FollowerState::new(
                        leader,
                        epoch,
                        &local,
                        FollowerConfig {
                            truncation_on_fetch: true,
                            fetch_backoff_ms: self.config.replica_fetch_backoff_ms,
                        },
                    );
                    log::info!("following {}-{} from {leader} in epoch {epoch}", tp.0, tp.1);
                    self.replication.following.insert(
                        tp.clone(),
                        Follower {
                            state,
                            high_watermark: view.log_end_offset,
                        },
                    );
                }
            }
            keep_following.insert(tp);
        }
        self.replication
            .following
            .retain(|tp, _| keep_following.contains(tp));
    }

    /// The high watermark of a partition this broker leads with replicas (None: unreplicated).
    pub(crate) fn replicated_high_watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        if self.replication.leading.is_empty() {
            return None;
        }
        self.replication
            .leading
            .get(&(topic.to_string(), partition))
            .map(|l| l.high_watermark())
    }

    /// Kafka's append check for acks=all on a replicated partition: NOT_ENOUGH_REPLICAS when
    /// the ISR is below `min.insync.replicas`. None: not a replicated partition led here.
    pub(crate) fn replicated_append_check(
        &self,
        topic: &str,
        partition: i32,
        acks: i16,
    ) -> Option<Result<(), ErrorCode>> {
        if self.replication.leading.is_empty() {
            return None;
        }
        self.replication
            .leading
            .get(&(topic.to_string(), partition))
            .map(|l| l.check_append(acks))
    }

    /// An acks=all append's progress: None while the high watermark is below
    /// `required_offset`; NONE once it passed; NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR
    /// shrank below `min.insync.replicas` meanwhile; NOT_LEADER_OR_FOLLOWER once not leader.
    pub(crate) fn replicated_to(
        &self,
        topic: &str,
        partition: i32,
        required_offset: i64,
    ) -> Option<ErrorCode> {
        match self
            .replication
            .leading
            .get(&(topic.to_string(), partition))
        {
            Some(l) => l.check_enough_replicas_reach_offset(required_offset),
            None => Some(error::NOT_LEADER_OR_FOLLOWER),
        }
    }

    /// An acks=all answer waits for the high watermark. It is first checked at the end of
    /// this turn, after the turn's fsync (the answer may depend on it), so one already
    /// satisfied (a retried batch found stored, an ISR of the leader alone) is answered then
    /// rather than at its timeout.
    pub(crate) fn await_replicas(&mut self, conn: ConnId, deadline: Instant, check: AwaitReplicas) {
        self.replication.waiting.push((conn, deadline, check));
        self.replication.recheck = true;
    }

    /// After an append to a partition led here with replicas: its high watermark may move at
    /// the end of the turn.
    pub(crate) fn note_replicated_append(&mut self, topic: &str, partition: i32) {
        if self.replication.leading.is_empty()
            || !self
                .replication
                .leading
                .contains_key(&(topic.to_string(), partition))
        {
            return;
        }
        let tp = (topic.to_string(), partition);
        if !self.replication.appended.contains(&tp) {
            self.replication.appended.push(tp);
        }
    }

    /// A follower's Fetch of a partition led here, before it is served: the leader's checks,
    /// then either the diverging epoch to answer (no records) or the fetch recorded (which may
    /// move the high watermark).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn follower_fetch(
        &mut self,
        topic: &str,
        partition: i32,
        replica: i32,
        fetch: &FetchPartition,
        now: Instant,
    ) -> Result<Option<EpochEndOffset>, ErrorCode> {
        let now_ms = self.clock.ms(now);
        let tp = (topic.to_string(), partition);
        let (start, leo) = self
            .logs
            .get(topic, partition)
            .map_or((0, 0), |l| (l.log_start_offset(), l.log_end_offset()));
        let Some(leader) = self.replication.leading.get_mut(&tp) else {
            return Err(error::NOT_LEADER_OR_FOLLOWER);
        };
        let current = (fetch.current_leader_epoch >= 0).then_some(fetch.current_leader_epoch);
        if let Err(code) = leader.check_follower_fetch(replica, current) {
            log::debug!("{topic}-{partition}: fetch of replica {replica} refused: {code}");
            return Err(code);
        }
        if fetch.last_fetched_epoch >= 0 {
            // Where the follower's last epoch ends here, from the log's own epoch cache.
            let end = self
                .logs
                .get(topic, partition)
                .map_or((leader.leader_epoch(), 0), |l| {
                    l.end_offset_as_leader(fetch.last_fetched_epoch, leader.leader_epoch())
                });
            if let Some(d) =
                diverging_from(end, start, fetch.fetch_offset, fetch.last_fetched_epoch)?
            {
                return Ok(Some(d));
            }
        }
        if fetch.fetch_offset < start || fetch.fetch_offset > leo {
            return Err(error::OFFSET_OUT_OF_RANGE);
        }
        let image = self.meta.image();
        let update = leader.record_follower_fetch(
            &FollowerFetch {
                replica_id: replica,
                fetch_offset: fetch.fetch_offset,
                log_start_offset: fetch.log_start_offset,
                broker_epoch: -1,
            },
            leo,
            now_ms,
            |id| status(image, id),
        )?;
        if update.high_watermark_advanced && !self.replication.advanced.contains(&tp) {
            self.replication.advanced.push(tp.clone());
        }
        if let Some(req) = update.alter_partition {
            log::info!("{}-{}: asking to add {replica} to the ISR", tp.0, tp.1);
            self.replication.alter.push((tp, req));
        }
        Ok(None)
    }

    /// End of a turn: high watermarks moved by this turn's appends, acks=all answers whose
    /// records are now replicated (or whose time ran out), and the consumers' parked fetches
    /// of partitions whose high watermark moved.
    /// `after_flush`: called once the turn's fsync is done (answers may be built from what it
    /// achieved); from the timer, only the answers whose time ran out are settled.
    pub(crate) fn replication_turn(&mut self, now: Instant, after_flush: bool) {
        if !after_flush {
            // From the timer: only answers whose time ran out; the rest wait for the flush.
            if self.replication.waiting.iter().any(|w| w.1 <= now) {
                let waiting = std::mem::take(&mut self.replication.waiting);
                for (conn, deadline, mut check) in waiting {
                    match (deadline <= now).then(|| check(self, true)).flatten() {
                        Some(bytes) => self.completions.push((conn, bytes)),
                        None => self.replication.waiting.push((conn, deadline, check)),
                    }
                }
            }
            return;
        }
        if self.replication.leading.is_empty() && self.replication.waiting.is_empty() {
            return;
        }
        let now_ms = self.clock.ms(now);
        for tp in std::mem::take(&mut self.replication.appended) {
            let leo = self.logs.get(&tp.0, tp.1).map_or(0, |l| l.log_end_offset());
            let image = self.meta.image();
            if let Some(l) = self.replication.leading.get_mut(&tp) {
                if l.maybe_increment_high_watermark(leo, now_ms, |id| status(image, id))
                    && !self.replication.advanced.contains(&tp)
                {
                    self.replication.advanced.push(tp);
                }
            }
        }
        let advanced = std::mem::take(&mut self.replication.advanced);
        let recheck = std::mem::take(&mut self.replication.recheck);
        if recheck || !advanced.is_empty() || self.replication.waiting.iter().any(|w| w.1 <= now) {
            let waiting = std::mem::take(&mut self.replication.waiting);
            for (conn, deadline, mut check) in waiting {
                let expired = deadline <= now;
                match check(self, expired) {
                    Some(bytes) => self.completions.push((conn, bytes)),
                    None => self.replication.waiting.push((conn, deadline, check)),
                }
            }
        }
        for (t, p) in advanced {
            self.note_append(&t, p);
        }
    }

    /// The earliest acks=all deadline.
    pub(crate) fn replication_deadline(&self) -> Option<Instant> {
        self.replication.waiting.iter().map(|w| w.1).min()
    }

    /// Kafka's `isr-expiration` task, every half `replica.lag.time.max.ms`: followers of
    /// partitions led here that have not caught up for longer than that leave the ISR.
    pub(crate) fn check_isrs(&mut self, now: Instant) {
        if self.replication.leading.is_empty() {
            return;
        }
        let now_ms = self.clock.ms(now);
        if now_ms < self.replication.next_isr_check_ms {
            return;
        }
        self.replication.next_isr_check_ms =
            now_ms + (self.config.replica_lag_time_max_ms / 2).max(1);
        for (tp, l) in self.replication.leading.iter_mut() {
            let leo = self.logs.get(&tp.0, tp.1).map_or(0, |l| l.log_end_offset());
            if let Some(req) = l.maybe_shrink_isr(leo, now_ms) {
                log::info!(
                    "{}-{}: followers fell behind, asking to shrink the ISR to {:?}",
                    tp.0,
                    tp.1,
                    req.isr_ids()
                );
                self.replication.alter.push((tp.clone(), req));
            }
        }
    }

    /// The ISR changes to send to the controller now: (topic id, partition, request).
    pub fn take_alter_partitions(
        &mut self,
    ) -> Vec<(crate::metadata::TopicId, String, i32, AlterPartitionRequest)> {
        let image = self.meta.image();
        std::mem::take(&mut self.replication.alter)
            .into_iter()
            .filter_map(|(tp, req)| {
                let id = image.topic(&tp.0)?.id;
                Some((id, tp.0, tp.1, req))
            })
            .collect()
    }

    /// The controller's answer to an AlterPartition this broker sent for `topic`-`partition`
    /// (or the error of the whole request: NOT_CONTROLLER, a lost link).
    pub fn on_alter_partition_answer(
        &mut self,
        topic: &str,
        partition: i32,
        sent: &AlterPartitionRequest,
        answer: Result<AlterPartitionAnswer, ErrorCode>,
        now: Instant,
    ) {
        let now_ms = self.clock.ms(now);
        let tp = (topic.to_string(), partition);
        let leo = self
            .logs
            .get(topic, partition)
            .map_or(0, |l| l.log_end_offset());
        let image = self.meta.image();
        let Some(l) = self.replication.leading.get_mut(&tp) else {
            return;
        };
        let outcome = l.on_alter_partition_response(
            sent,
            answer.as_ref().map_err(|&c| c),
            leo,
            now_ms,
            |id| status(image, id),
        );
        match outcome {
            AlterPartitionOutcome::Committed {
                high_watermark_advanced,
            } => {
                log::info!("{topic}-{partition}: ISR now {:?}", l.isr());
                if high_watermark_advanced && !self.replication.advanced.contains(&tp) {
                    self.replication.advanced.push(tp);
                }
            }
            AlterPartitionOutcome::Retry(req) => self.replication.alter.push((tp, req)),
            _ => {}
        }
    }

    pub(crate) fn drop_replica_waits_of(&mut self, conn: ConnId) {
        self.replication.waiting.retain(|w| w.0 != conn);
    }

    /// The Fetch requests to send now: one per leader that has followers here ready to fetch
    /// and none in flight, and that `reachable` says can be reached. Returns (leader, body).
    pub fn replica_fetch_requests(
        &mut self,
        now: Instant,
        reachable: impl Fn(i32) -> bool,
    ) -> Vec<(i32, Vec<u8>)> {
        if self.replication.following.is_empty() {
            return Vec::new();
        }
        let now_ms = self.clock.ms(now);
        let mut by_leader: HashMap<i32, Vec<(Tp, FetchPosition, i64)>> = HashMap::new();
        let keys: Vec<Tp> = self.replication.following.keys().cloned().collect();
        for tp in keys {
            let view = self.local_view(&tp.0, tp.1);
            let Some(f) = self.replication.following.get_mut(&tp) else {
                continue;
            };
            let leader = f.state.leader_id();
            if self.replication.fetching.contains_key(&leader) || !reachable(leader) {
                continue;
            }
            let local = view.with_high_watermark(f.high_watermark);
            match f.state.poll(&local, now_ms) {
                Step::Fetch(pos) => {
                    by_leader
                        .entry(leader)
                        .or_default()
                        .push((tp, pos, view.log_start_offset))
                }
                Step::Truncate(t) => {
                    self.truncate_replica(&tp, t.offset, now);
                }
                // Truncation on fetch is always on: OffsetForLeaderEpoch is not asked.
                Step::AskEpochEndOffset { .. } | Step::Wait { .. } => {}
            }
        }
        let node = self.config.node_id;
        let mut out = Vec::new();
        for (leader, parts) in by_leader {
            let mut topics: Vec<FetchTopic<'_>> = Vec::new();
            for (tp, pos, log_start) in &parts {
                let fp = FetchPartition {
                    partition: tp.1,
                    current_leader_epoch: pos.current_leader_epoch,
                    fetch_offset: pos.fetch_offset,
                    last_fetched_epoch: pos.last_fetched_epoch.unwrap_or(-1),
                    log_start_offset: *log_start,
                    partition_max_bytes: REPLICA_FETCH_MAX_BYTES,
                    ..Default::default()
                };
                match topics.iter_mut().find(|t| t.topic == tp.0) {
                    Some(t) => t.partitions.push(fp),
                    None => topics.push(FetchTopic {
                        topic: &tp.0,
                        partitions: vec![fp],
                        ..Default::default()
                    }),
                }
            }
            let req = FetchRequest {
                replica_id: node,
                max_wait_ms: REPLICA_FETCH_WAIT_MAX_MS,
                min_bytes: 1,
                max_bytes: REPLICA_FETCH_RESPONSE_MAX_BYTES,
                isolation_level: 0,
                session_id: 0,
                session_epoch: -1,
                topics,
                ..Default::default()
            };
            let mut body = Vec::new();
            req.encode(&mut Writer::new(&mut body), REPLICA_FETCH_VERSION);
            drop(req);
            self.replication.fetching.insert(
                leader,
                parts.into_iter().map(|(tp, pos, _)| (tp, pos)).collect(),
            );
            out.push((leader, body));
        }
        out
    }

    /// The Fetch to `leader` failed (its link went down, or the answer was unreadable):
    /// its partitions back off and fetch again.
    pub fn replica_fetch_failed(&mut self, leader: i32, now: Instant) {
        let now_ms = self.clock.ms(now);
        for (tp, _) in self
            .replication
            .fetching
            .remove(&leader)
            .unwrap_or_default()
        {
            if let Some(f) = self.replication.following.get_mut(&tp) {
                f.state.back_off(now_ms);
            }
        }
    }

    /// The leader's answer to a follower Fetch (`body` after the response header): records
    /// appended as the leader wrote them, diverging tails truncated, errors backed off.
    pub fn on_replica_fetch_response(&mut self, leader: i32, body: &[u8], now: Instant) {
        let asked = self
            .replication
            .fetching
            .remove(&leader)
            .unwrap_or_default();
        let resp = match FetchResponse::decode(&mut Reader::new(body), REPLICA_FETCH_VERSION) {
            Ok(r) => r,
            Err(e) => {
                log::warn!("unreadable Fetch answer from leader {leader}: {e}");
                self.replication.fetching.insert(leader, asked);
                return self.replica_fetch_failed(leader, now);
            }
        };
        let now_ms = self.clock.ms(now);
        if resp.error_code != error::NONE {
            log::warn!("Fetch from leader {leader}: error {}", resp.error_code);
            self.replication.fetching.insert(leader, asked);
            return self.replica_fetch_failed(leader, now);
        }
        for t in &resp.responses {
            for p in &t.partitions {
                let tp = (t.topic.to_string(), p.partition_index);
                let Some(pos) = asked.iter().find(|(a, _)| *a == tp).map(|(_, pos)| *pos) else {
                    continue;
                };
                self.on_replica_partition(&tp, &pos, p, now, now_ms);
            }
        }
    }

    fn on_replica_partition(
        &mut self,
        tp: &Tp,
        pos: &FetchPosition,
        p: &crate::protocol::messages::fetch_response::PartitionData<'_>,
        now: Instant,
        now_ms: i64,
    ) {
        if !self.replication.following.contains_key(tp) {
            return;
        }
        log::debug!(
            "replica fetch {}-{} at {} (epoch {:?}): error {}, diverging {:?}, {} bytes, leader hw {}",
            tp.0,
            tp.1,
            pos.fetch_offset,
            pos.last_fetched_epoch,
            p.error_code,
            (p.diverging_epoch.epoch, p.diverging_epoch.end_offset),
            p.records.map_or(0, |r| r.len()),
            p.high_watermark
        );
        if p.error_code != error::NONE {
            let outcome = match self.replication.following.get_mut(tp) {
                Some(f) => f.state.on_fetch_error(pos, p.error_code, now_ms),
                None => return,
            };
            if outcome == FollowerOutcome::ListLeaderOffsets {
                // The leader's log no longer holds the fetch offset: start over at its log
                // start when the local log ends before it, else fetch from the local end.
                self.out_of_range(tp, p.log_start_offset, now);
            }
            log::debug!("fetch of {}-{}: error {}", tp.0, tp.1, p.error_code);
            return;
        }
        if p.diverging_epoch.epoch >= 0 && p.diverging_epoch.end_offset >= 0 {
            let view = self.local_view(&tp.0, tp.1);
            let Some(f) = self.replication.following.get_mut(tp) else {
                return;
            };
            let local = view.with_high_watermark(f.high_watermark);
            let d = EpochEndOffset {
                epoch: p.diverging_epoch.epoch,
                end_offset: p.diverging_epoch.end_offset,
            };
            if let FollowerOutcome::Truncate(t) = f.state.on_diverging_epoch(pos, d, &local, now_ms)
            {
                log::info!(
                    "{}-{}: diverged from the leader at epoch {}, truncating to {}",
                    tp.0,
                    tp.1,
                    d.epoch,
                    t.offset
                );
                self.truncate_replica(tp, t.offset, now);
            }
            return;
        }
        let records = whole_batches(p.records.unwrap_or(&[]));
        let mut next = pos.fetch_offset;
        let mut last_epoch = None;
        if !records.is_empty() {
            if let Some((h, _)) = crate::records::batches(records)
                .filter_map(Result::ok)
                .last()
            {
                last_epoch = Some(h.partition_leader_epoch);
            }
            let Some(log) = self.replica_log_mut(&tp.0, tp.1, now) else {
                return;
            };
            match log.append_as_follower(records, now_ms) {
                Ok(end) => next = end,
                Err(e) => {
                    log::error!("appending fetched records to {}-{}: {e}", tp.0, tp.1);
                    if let Some(f) = self.replication.following.get_mut(tp) {
                        f.state.back_off(now_ms);
                    }
                    return;
                }
            }
        }
        let (start, end) = self
            .logs
            .get(&tp.0, tp.1)
            .map_or((0, 0), |l| (l.log_start_offset(), l.log_end_offset()));
        if let Some(f) = self.replication.following.get_mut(tp) {
            f.state.on_records_appended(pos, next, last_epoch, now_ms);
            f.high_watermark = follower_high_watermark(p.high_watermark, start, end);
        }
    }

    /// OFFSET_OUT_OF_RANGE from the leader, resolved with the leader's log start offset from the
    /// same answer (Kafka asks with ListOffsets; the Fetch answer carries it too).
    fn out_of_range(&mut self, tp: &Tp, leader_log_start: i64, now: Instant) {
        let now_ms = self.clock.ms(now);
        let view = self.local_view(&tp.0, tp.1);
        let Some(f) = self.replication.following.get_mut(tp) else {
            return;
        };
        let local = view.with_high_watermark(f.high_watermark);
        let epoch = f.state.leader_epoch();
        let offsets = if leader_log_start > view.log_end_offset {
            Ok(crate::replication::LeaderOffsets {
                log_end_offset: i64::MAX,
                log_start_offset: leader_log_start,
            })
        } else {
            Err(error::OFFSET_OUT_OF_RANGE)
        };
        match f.state.resolve_out_of_range(epoch, offsets, &local, now_ms) {
            FollowerOutcome::TruncateFullyAndStartAt(at) => {
                f.high_watermark = at;
                if let Some(log) = self.replica_log_mut(&tp.0, tp.1, now) {
                    if let Err(e) = log.truncate_fully_and_start_at(at, now_ms) {
                        log::error!("restarting replica {}-{} at {at}: {e}", tp.0, tp.1);
                    }
                }
            }
            FollowerOutcome::Truncate(t) => self.truncate_replica(tp, t.offset, now),
            _ => {}
        }
    }

    fn truncate_replica(&mut self, tp: &Tp, offset: i64, now: Instant) {
        let now_ms = self.clock.ms(now);
        let Some(log) = self.replica_log_mut(&tp.0, tp.1, now) else {
            return;
        };
        match log.truncate_to(offset, now_ms) {
            Ok(end) => {
                if let Some(f) = self.replication.following.get_mut(tp) {
                    f.high_watermark = f.high_watermark.min(end);
                }
            }
            Err(LogError::Offline) => {}
            Err(e) => log::error!("truncating replica {}-{} to {offset}: {e}", tp.0, tp.1),
        }
    }

    /// Whether any follower here waits to fetch (the node then keeps its replica links).
    pub fn follows_any(&self) -> bool {
        !self.replication.following.is_empty()
    }

    /// The leaders this broker follows partitions of.
    pub fn followed_leaders(&self) -> Vec<i32> {
        let mut v: Vec<i32> = self
            .replication
            .following
            .values()
            .map(|f| f.state.leader_id())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// When a follower that backs off may fetch again (the node's next tick).
    pub fn replica_backoff(&self) -> Option<Duration> {
        (!self.replication.following.is_empty())
            .then(|| Duration::from_millis(self.config.replica_fetch_backoff_ms.max(1) as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::whole_batches;

    #[test]
    fn a_batch_cut_short_is_left_for_the_next_fetch() {
        let mut one = vec![0u8; 12 + 49];
        one[8..12].copy_from_slice(&49i32.to_be_bytes());
        let mut two = one.clone();
        two.extend_from_slice(&one);
        assert_eq!(whole_batches(&two).len(), two.len());
        let cut = &two[..two.len() - 5];
        assert_eq!(whole_batches(cut).len(), one.len());
        assert!(whole_batches(&two[..11]).is_empty());
    }
}
