//! Partition replication as pure state machines: no clocks, no IO, no threads. Every method that
//! depends on time takes `now_ms`; everything a broker would look up (its log, the metadata
//! image) is passed in. The rules are Apache Kafka's (4.x, without eligible leader replicas), each
//! citing the Kafka function it mirrors.
//!
//! How the pieces fit, for one partition:
//!
//! - The **leader** ([`LeaderState`], Kafka's `Partition` as leader) appends produced batches and
//!   serves Fetch requests. A Fetch that carries a replica id is a follower's: its fetch offset is
//!   that follower's log end offset (LEO), and [`LeaderState::record_follower_fetch`] records it
//!   (with Kafka's `lastCaughtUpTimeMs` rules). Before serving it, [`diverging_epoch`] tells a
//!   follower whose last fetched epoch disagrees with the leader's log where to truncate (KIP-595).
//! - The **high watermark** (HW) is the smallest LEO over the ISR, leader included; it only grows,
//!   and never while the ISR is below `min.insync.replicas`. While an ISR expansion is in flight
//!   the not-yet-committed member already counts (Kafka's "maximal ISR", KIP-497).
//! - The leader changes the ISR by asking the **controller** (AlterPartition): it adds a follower
//!   that has caught up within the current leader epoch and removes followers that have not been
//!   caught up for `replica.lag.time.max.ms`. One request is in flight at a time; the controller's
//!   answer (new ISR and partition epoch) or error is fed back with
//!   [`LeaderState::on_alter_partition_response`]. With acks=all, the leader refuses an append
//!   when the ISR is below `min.insync.replicas` and answers the produce once the HW passes it.
//! - A **follower** ([`FollowerState`], Kafka's `AbstractFetcherThread` for one partition) fetches
//!   from the leader, truncates a diverging tail (from a fetch response's diverging epoch or an
//!   OffsetForLeaderEpoch answer), recovers from OFFSET_OUT_OF_RANGE, and starts over when the
//!   leader epoch changes.
//! - The **controller** ([`election`]) validates AlterPartition requests and elects leaders:
//!   when a broker is fenced or shuts down, when one comes back, and on ElectLeaders requests
//!   (preferred or unclean). A leader change bumps the leader epoch; every change bumps the
//!   partition epoch.
//!
//! Errors are Kafka's wire error codes ([`ErrorCode`]).

pub mod election;
pub mod follower;
pub mod leader;

pub use crate::protocol::error::ErrorCode;
pub use election::{Election, ElectionType, PartitionChange, Registration};
pub use follower::{
    follower_high_watermark, truncation_offset, FetchPhase, FetchPosition, FollowerConfig,
    FollowerState, LeaderOffsets, LocalLog, Outcome, Step, Truncation,
};
pub use leader::{
    diverging_epoch, diverging_from, AlterPartitionOutcome, FetchUpdate, FollowerFetch,
    FollowerProgress, LeaderAndIsr, LeaderConfig, LeaderState, LocalBroker, MetadataOutcome,
};

use crate::log::leader_epoch::LeaderEpochCache;

/// No leader (Kafka's `LeaderConstants.NO_LEADER`).
pub const NO_LEADER: i32 = -1;

// Error codes used here that `crate::protocol::error` does not define (Kafka's `Errors`).
pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: ErrorCode = 20;
pub const NOT_CONTROLLER: ErrorCode = 41;
pub const OPERATION_NOT_ATTEMPTED: ErrorCode = 55;
pub const PREFERRED_LEADER_NOT_AVAILABLE: ErrorCode = 80;
pub const ELIGIBLE_LEADERS_NOT_AVAILABLE: ErrorCode = 83;
pub const ELECTION_NOT_NEEDED: ErrorCode = 84;
pub const INVALID_UPDATE_VERSION: ErrorCode = 95;
pub const INELIGIBLE_REPLICA: ErrorCode = 107;
pub const NEW_LEADER_ELECTED: ErrorCode = 108;
pub const OFFSET_MOVED_TO_TIERED_STORAGE: ErrorCode = 109;

/// What the metadata image says about a registered broker (an unregistered one is `None`
/// wherever a lookup returns `Option<BrokerStatus>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BrokerStatus {
    /// The broker epoch of its current registration.
    pub epoch: i64,
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
}

impl BrokerStatus {
    /// Kafka's `ClusterControlManager.isActive`: neither fenced nor in controlled shutdown.
    pub fn is_active(&self) -> bool {
        !self.fenced && !self.in_controlled_shutdown
    }
}

/// An ISR member as AlterPartition (v3+) carries it: broker id and the broker epoch the leader
/// saw in its Fetch requests, -1 when unknown (the controller then skips the epoch check).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsrMember {
    pub broker_id: i32,
    pub broker_epoch: i64,
}

/// One partition of an AlterPartition request: the ISR the leader proposes, at the leader and
/// partition epochs it knows (Kafka's `LeaderAndIsr` the leader sends).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlterPartitionRequest {
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub new_isr: Vec<IsrMember>,
    /// LeaderRecoveryState RECOVERING (1) rather than RECOVERED (0). A leader always sends
    /// RECOVERED: it finished recovering when it became leader (Kafka's `makeLeader`).
    pub leader_recovering: bool,
}

impl AlterPartitionRequest {
    /// The proposed ISR's broker ids, in order.
    pub fn isr_ids(&self) -> Vec<i32> {
        self.new_isr.iter().map(|m| m.broker_id).collect()
    }
}

/// The controller's answer to one partition of an AlterPartition request without error: the
/// partition's state after the change (or unchanged, when the request changed nothing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlterPartitionAnswer {
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub isr: Vec<i32>,
    pub leader_recovering: bool,
}

/// A leader epoch and where it ends: a fetch response's DivergingEpoch (KIP-595) or an
/// OffsetForLeaderEpoch answer. Undefined parts are -1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochEndOffset {
    pub epoch: i32,
    pub end_offset: i64,
}

/// A leader-epoch cache holding `entries` ((epoch, start offset), as `LeaderEpochCache::entries`
/// lists them), to answer `end_offset_for` as Kafka's `LeaderEpochFileCache` does.
fn epoch_cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
    let mut cache = LeaderEpochCache::default();
    for &(epoch, start_offset) in entries {
        cache.assign(epoch, start_offset);
    }
    cache
}

#[cfg(test)]
#[path = "flow_tests.rs"]
mod flow_tests;
