//! One partition this broker follows: where to fetch from, whether the local log must be
//! truncated first, and what to do with the leader's answers. Kafka's `AbstractFetcherThread`
//! (and `ReplicaFetcherThread`'s truncation) for one partition, `PartitionFetchState` its state.
//!
//! The broker drives it in a loop, one request at a time:
//! 1. [`FollowerState::poll`] says what to do next: fetch, ask the leader where an epoch ends
//!    (OffsetForLeaderEpoch), truncate the local log, or wait.
//! 2. The leader's answer goes to [`FollowerState::on_records_appended`] (after appending the
//!    fetched records), [`FollowerState::on_diverging_epoch`], [`FollowerState::on_fetch_error`],
//!    [`FollowerState::on_epoch_end_offset`] or [`FollowerState::resolve_out_of_range`]. Their
//!    [`Outcome`] says what the broker must do to its log (the state already reflects it).
//!
//! A new leader epoch from the metadata log goes to [`FollowerState::on_leader_change`].

use super::{epoch_cache, EpochEndOffset, ErrorCode};
use crate::log::leader_epoch::{UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET};
use crate::protocol::error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowerConfig {
    /// Fetches carry LastFetchedEpoch and the leader answers a divergence with DivergingEpoch
    /// (KIP-595; Kafka's `isTruncationOnFetchSupported`, every metadata version since 2.7).
    /// When false, a follower truncates through OffsetForLeaderEpoch before fetching.
    pub truncation_on_fetch: bool,
    /// `replica.fetch.backoff.ms`: the wait after an error.
    pub fetch_backoff_ms: i64,
}

impl Default for FollowerConfig {
    fn default() -> Self {
        FollowerConfig {
            truncation_on_fetch: true,
            fetch_backoff_ms: 1000,
        }
    }
}

/// Kafka's `ReplicaState`: `Truncating` or `Fetching`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchPhase {
    /// The local log may hold a tail the leader does not have: find it before fetching.
    Truncating,
    Fetching,
}

/// The local log, as the follower's rules read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalLog<'a> {
    /// The leader-epoch entries (epoch, start offset), oldest first (`LeaderEpochCache::entries`).
    pub epochs: &'a [(i32, i64)],
    pub log_end_offset: i64,
    pub high_watermark: i64,
}

impl LocalLog<'_> {
    fn latest_epoch(&self) -> Option<i32> {
        self.epochs.last().map(|&(e, _)| e)
    }

    /// The latest epoch once the log is truncated to `offset` (Kafka's `UnifiedLog.truncateTo`
    /// drops the epochs starting at or after `min(offset, log end offset)`, or all of them when
    /// it truncates the log fully).
    fn latest_epoch_after_truncation(&self, offset: i64) -> Option<i32> {
        let end = offset.min(self.log_end_offset);
        self.epochs
            .iter()
            .take_while(|&&(_, start)| start < end)
            .last()
            .map(|&(e, _)| e)
    }
}

/// A Fetch for this partition: to `leader_id`, from `fetch_offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchPosition {
    pub leader_id: i32,
    pub current_leader_epoch: i32,
    pub fetch_offset: i64,
    /// LastFetchedEpoch (None: -1, not sent).
    pub last_fetched_epoch: Option<i32>,
}

/// Kafka's `OffsetTruncationState`: truncate the local log to `offset` (remove offsets at and
/// after it). Not `completed`: an intermediate point, the leader must be asked again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Truncation {
    pub offset: i64,
    pub completed: bool,
}

/// What to do next, from [`FollowerState::poll`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing now: backing off until `until_ms`, or (None) stopped until new metadata.
    Wait {
        until_ms: Option<i64>,
    },
    Fetch(FetchPosition),
    /// Send OffsetForLeaderEpoch for `leader_epoch` (the latest local epoch) with
    /// `current_leader_epoch`; give the answer to [`FollowerState::on_epoch_end_offset`].
    AskEpochEndOffset {
        current_leader_epoch: i32,
        leader_epoch: i32,
    },
    /// Truncate the local log as said; fetching resumes from `offset`. Without local epochs
    /// to ask about, Kafka truncates to the high watermark (`truncateToHighWatermark`).
    Truncate(Truncation),
}

/// What an answer from the leader means for the local log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not an answer to the current state's request: ignored.
    Ignored,
    /// Applied; poll for the next step.
    Continue,
    /// Truncate the local log to `offset`, then poll (fetching resumes from there).
    Truncate(Truncation),
    /// Delete the local log and start it empty at this offset (the leader's log start), then
    /// poll.
    TruncateFullyAndStartAt(i64),
    /// Backing off until this time.
    RetryAt(i64),
    /// The leader has a newer leader epoch: stopped until [`FollowerState::on_leader_change`].
    AwaitMetadata,
    /// OFFSET_OUT_OF_RANGE: ask the leader (ListOffsets with this leader epoch) for its log end
    /// offset and, if that is not below the local one, its log start offset; give them to
    /// [`FollowerState::resolve_out_of_range`].
    ListLeaderOffsets,
}

/// The leader's log offsets, from ListOffsets (latest, and earliest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaderOffsets {
    pub log_end_offset: i64,
    /// Only read when the leader's log end offset is not below the local one.
    pub log_start_offset: i64,
}

/// The follower's state for one partition (Kafka's `PartitionFetchState`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowerState {
    config: FollowerConfig,
    leader_id: i32,
    leader_epoch: i32,
    fetch_offset: i64,
    phase: FetchPhase,
    last_fetched_epoch: Option<i32>,
    delayed_until_ms: Option<i64>,
    /// Fenced by the leader: removed from fetching until new metadata (Kafka's
    /// `markPartitionFailed`).
    awaiting_metadata: bool,
}

impl FollowerState {
    /// This broker starts following `leader_id` in `leader_epoch` (Kafka's
    /// `ReplicaManager.initialFetchOffset` and `AbstractFetcherThread.partitionFetchState`):
    /// with truncation on fetch and local epochs, it fetches from its log end offset with its
    /// latest epoch and lets the leader point out a divergence; otherwise it starts truncating
    /// from its high watermark.
    pub fn new(
        leader_id: i32,
        leader_epoch: i32,
        local: &LocalLog,
        config: FollowerConfig,
    ) -> FollowerState {
        let latest_epoch = local.latest_epoch();
        let (fetch_offset, phase, last_fetched_epoch) = match latest_epoch {
            Some(_) if config.truncation_on_fetch => {
                (local.log_end_offset, FetchPhase::Fetching, latest_epoch)
            }
            _ => (local.high_watermark, FetchPhase::Truncating, None),
        };
        FollowerState {
            config,
            leader_id,
            leader_epoch,
            fetch_offset,
            phase,
            last_fetched_epoch,
            delayed_until_ms: None,
            awaiting_metadata: false,
        }
    }

    /// The metadata log names the leader for `leader_epoch`. Only a newer leader epoch restarts
    /// the state, as [`FollowerState::new`] (Kafka's `makeFollower` returns whether the leader
    /// epoch is new and only then restarts fetching). Returns whether it restarted.
    pub fn on_leader_change(
        &mut self,
        leader_id: i32,
        leader_epoch: i32,
        local: &LocalLog,
    ) -> bool {
        if leader_epoch <= self.leader_epoch {
            return false;
        }
        *self = FollowerState::new(leader_id, leader_epoch, local, self.config);
        true
    }

    pub fn leader_id(&self) -> i32 {
        self.leader_id
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    pub fn fetch_offset(&self) -> i64 {
        self.fetch_offset
    }

    pub fn phase(&self) -> FetchPhase {
        self.phase
    }

    pub fn last_fetched_epoch(&self) -> Option<i32> {
        self.last_fetched_epoch
    }

    /// Fenced, waiting for a new leader epoch.
    pub fn awaiting_metadata(&self) -> bool {
        self.awaiting_metadata
    }

    pub fn config(&self) -> FollowerConfig {
        self.config
    }

    fn is_delayed(&self, now_ms: i64) -> bool {
        self.delayed_until_ms.is_some_and(|t| now_ms < t)
    }

    /// Backs off for `fetch_backoff_ms` unless already backing off (Kafka's `delayPartitions`),
    /// e.g. when a whole Fetch request failed. Returns until when.
    pub fn back_off(&mut self, now_ms: i64) -> i64 {
        match self.delayed_until_ms {
            Some(t) if now_ms < t => t,
            _ => {
                let until = now_ms + self.config.fetch_backoff_ms;
                self.delayed_until_ms = Some(until);
                until
            }
        }
    }

    /// The next thing to do (Kafka's `doWork`: `maybeTruncate`, then `maybeFetch`).
    pub fn poll(&mut self, local: &LocalLog, now_ms: i64) -> Step {
        if self.awaiting_metadata {
            return Step::Wait { until_ms: None };
        }
        if self.is_delayed(now_ms) {
            return Step::Wait {
                until_ms: self.delayed_until_ms,
            };
        }
        self.delayed_until_ms = None;
        match self.phase {
            FetchPhase::Fetching => Step::Fetch(self.position()),
            FetchPhase::Truncating => match local.latest_epoch() {
                Some(leader_epoch) => Step::AskEpochEndOffset {
                    current_leader_epoch: self.leader_epoch,
                    leader_epoch,
                },
                None => {
                    // truncateToHighWatermark: the fetch offset is the high watermark here.
                    let truncation = Truncation {
                        offset: self.fetch_offset,
                        completed: true,
                    };
                    self.truncated(truncation, local);
                    Step::Truncate(truncation)
                }
            },
        }
    }

    fn position(&self) -> FetchPosition {
        FetchPosition {
            leader_id: self.leader_id,
            current_leader_epoch: self.leader_epoch,
            fetch_offset: self.fetch_offset,
            last_fetched_epoch: if self.config.truncation_on_fetch {
                self.last_fetched_epoch
            } else {
                None
            },
        }
    }

    /// Kafka's `updateFetchOffsetAndMaybeMarkTruncationComplete`.
    fn truncated(&mut self, truncation: Truncation, local: &LocalLog) {
        self.fetch_offset = truncation.offset;
        self.phase = if self.config.truncation_on_fetch || truncation.completed {
            FetchPhase::Fetching
        } else {
            FetchPhase::Truncating
        };
        self.last_fetched_epoch = local.latest_epoch_after_truncation(truncation.offset);
    }

    /// Whether a fetch response answers the current state (Kafka processes one only if the
    /// partition is ready for fetch at the requested offset; a fetcher serves one leader).
    fn answers(&self, request: &FetchPosition, now_ms: i64) -> bool {
        !self.awaiting_metadata
            && self.phase == FetchPhase::Fetching
            && !self.is_delayed(now_ms)
            && request.leader_id == self.leader_id
            && request.fetch_offset == self.fetch_offset
    }

    /// The fetched records were appended to the local log: the next fetch starts at
    /// `next_offset` (the last appended offset + 1, or the request's offset if nothing was), with
    /// the epoch of the last appended batch as LastFetchedEpoch.
    pub fn on_records_appended(
        &mut self,
        request: &FetchPosition,
        next_offset: i64,
        last_batch_epoch: Option<i32>,
        now_ms: i64,
    ) -> Outcome {
        if !self.answers(request, now_ms) {
            return Outcome::Ignored;
        }
        self.fetch_offset = next_offset;
        if last_batch_epoch.is_some() {
            self.last_fetched_epoch = last_batch_epoch;
        }
        Outcome::Continue
    }

    /// The fetch response carried a DivergingEpoch (KIP-595): truncate, without appending its
    /// records (Kafka's `truncateOnFetchResponse`).
    pub fn on_diverging_epoch(
        &mut self,
        request: &FetchPosition,
        diverging: EpochEndOffset,
        local: &LocalLog,
        now_ms: i64,
    ) -> Outcome {
        if !self.answers(request, now_ms) {
            return Outcome::Ignored;
        }
        let truncation = truncation_offset(diverging, local, self.fetch_offset);
        self.truncated(truncation, local);
        Outcome::Truncate(truncation)
    }

    /// The fetch response's error for this partition (Kafka's `processFetchRequest`):
    /// OFFSET_OUT_OF_RANGE asks for the leader's offsets; FENCED_LEADER_EPOCH stops until new
    /// metadata if the request carried the current leader epoch (otherwise backs off); any other
    /// error (UNKNOWN_LEADER_EPOCH, NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, ...)
    /// backs off and retries. OFFSET_MOVED_TO_TIERED_STORAGE, without tiered storage here,
    /// backs off too.
    pub fn on_fetch_error(
        &mut self,
        request: &FetchPosition,
        error: ErrorCode,
        now_ms: i64,
    ) -> Outcome {
        if !self.answers(request, now_ms) {
            return Outcome::Ignored;
        }
        match error {
            error::OFFSET_OUT_OF_RANGE => Outcome::ListLeaderOffsets,
            error::FENCED_LEADER_EPOCH => self.on_fenced(request.current_leader_epoch, now_ms),
            _ => Outcome::RetryAt(self.back_off(now_ms)),
        }
    }

    /// Kafka's `onPartitionFenced`: fenced in the current epoch, stop until new metadata;
    /// fenced in an older one, retry later.
    fn on_fenced(&mut self, request_leader_epoch: i32, now_ms: i64) -> Outcome {
        if request_leader_epoch == self.leader_epoch {
            self.awaiting_metadata = true;
            Outcome::AwaitMetadata
        } else {
            Outcome::RetryAt(self.back_off(now_ms))
        }
    }

    /// The leader's OffsetForLeaderEpoch answer to [`Step::AskEpochEndOffset`] (Kafka's
    /// `truncateToEpochEndOffsets`): `current_leader_epoch` as sent; `answer` the partition's
    /// epoch and end offset, or its error.
    pub fn on_epoch_end_offset(
        &mut self,
        current_leader_epoch: i32,
        answer: Result<EpochEndOffset, ErrorCode>,
        local: &LocalLog,
        now_ms: i64,
    ) -> Outcome {
        // Answers for an earlier leader epoch are dropped.
        if self.awaiting_metadata || current_leader_epoch != self.leader_epoch {
            return Outcome::Ignored;
        }
        match answer {
            Ok(leader) => {
                let truncation = truncation_offset(leader, local, self.fetch_offset);
                self.truncated(truncation, local);
                Outcome::Truncate(truncation)
            }
            Err(error::FENCED_LEADER_EPOCH) => self.on_fenced(current_leader_epoch, now_ms),
            Err(_) => Outcome::RetryAt(self.back_off(now_ms)),
        }
    }

    /// After OFFSET_OUT_OF_RANGE, the leader's log offsets (or the ListOffsets error) for
    /// `current_leader_epoch` (Kafka's `handleOutOfRangeError` / `fetchOffsetAndTruncate`):
    /// - the leader's log ends before the local one (an unclean election lost data): truncate
    ///   to the leader's log end;
    /// - the leader's log starts after the local one ends (the follower was away while the
    ///   leader deleted old segments): start over empty at the leader's log start;
    /// - otherwise fetch from the local log end again.
    ///
    /// Fetching resumes in every case.
    pub fn resolve_out_of_range(
        &mut self,
        current_leader_epoch: i32,
        leader: Result<LeaderOffsets, ErrorCode>,
        local: &LocalLog,
        now_ms: i64,
    ) -> Outcome {
        if self.awaiting_metadata || current_leader_epoch != self.leader_epoch {
            return Outcome::Ignored;
        }
        let leader = match leader {
            Ok(offsets) => offsets,
            Err(error::FENCED_LEADER_EPOCH) => return self.on_fenced(current_leader_epoch, now_ms),
            Err(_) => return Outcome::RetryAt(self.back_off(now_ms)),
        };
        let replica_end = local.log_end_offset;
        self.phase = FetchPhase::Fetching;
        self.delayed_until_ms = None;
        if leader.log_end_offset < replica_end {
            let truncation = Truncation {
                offset: leader.log_end_offset,
                completed: true,
            };
            self.fetch_offset = truncation.offset;
            self.last_fetched_epoch = local.latest_epoch_after_truncation(truncation.offset);
            return Outcome::Truncate(truncation);
        }
        if leader.log_start_offset > replica_end {
            // truncateFullyAndStartAt also clears the leader-epoch cache.
            self.fetch_offset = leader.log_start_offset;
            self.last_fetched_epoch = None;
            return Outcome::TruncateFullyAndStartAt(leader.log_start_offset);
        }
        self.fetch_offset = replica_end;
        self.last_fetched_epoch = local.latest_epoch();
        Outcome::Continue
    }
}

/// Where to truncate, given the leader's end offset for an epoch (a DivergingEpoch or an
/// OffsetForLeaderEpoch answer) and the local log (Kafka's
/// `AbstractFetcherThread.getOffsetTruncationState`):
/// - no end offset known to the leader: the fetch offset (the high watermark when truncating);
/// - no epoch in the answer (old protocol): the leader's end offset, at most the local log end;
/// - otherwise find the local end of the largest local epoch at most the leader's. The same
///   epoch: truncate to the smaller of the two ends (and the local log end). A smaller one (the
///   leader's epoch is unknown here): truncate to that epoch's local end, not completed, and ask
///   again. No local epoch at all: the leader's end offset, at most the local log end.
pub fn truncation_offset(
    leader: EpochEndOffset,
    local: &LocalLog,
    fetch_offset: i64,
) -> Truncation {
    let replica_end = local.log_end_offset;
    if leader.end_offset == UNDEFINED_EPOCH_OFFSET {
        return Truncation {
            offset: fetch_offset,
            completed: true,
        };
    }
    if leader.epoch == UNDEFINED_EPOCH {
        return Truncation {
            offset: leader.end_offset.min(replica_end),
            completed: true,
        };
    }
    // UnifiedLog.endOffsetForEpoch: None when the cache cannot place the epoch.
    let (local_epoch, local_end) =
        epoch_cache(local.epochs).end_offset_for(leader.epoch, replica_end);
    if local_end == UNDEFINED_EPOCH_OFFSET {
        return Truncation {
            offset: leader.end_offset.min(replica_end),
            completed: true,
        };
    }
    if local_epoch != leader.epoch {
        return Truncation {
            offset: local_end.min(replica_end),
            completed: false,
        };
    }
    Truncation {
        offset: local_end.min(leader.end_offset).min(replica_end),
        completed: true,
    }
}

/// A follower's high watermark from the leader's (Kafka's `UnifiedLog.updateHighWatermark`,
/// used by `maybeUpdateHighWatermark` after each fetch): the leader's, bounded by the local log
/// start and end offsets. Unlike the leader's, it may move back.
pub fn follower_high_watermark(
    leader_high_watermark: i64,
    log_start_offset: i64,
    log_end_offset: i64,
) -> i64 {
    if leader_high_watermark < log_start_offset {
        log_start_offset
    } else if leader_high_watermark >= log_end_offset {
        log_end_offset
    } else {
        leader_high_watermark
    }
}

#[cfg(test)]
#[path = "follower_tests.rs"]
mod tests;
