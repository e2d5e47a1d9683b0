//! The controller's side: leader elections and ISR changes for one partition. Kafka's
//! `PartitionChangeBuilder` (without reassignment, log directories or eligible leader replicas)
//! and the `ReplicationControlManager` paths that use it:
//!
//! | Kafka                                            | here                  |
//! |--------------------------------------------------|-----------------------|
//! | `handleBrokerFenced`, `handleBrokerInControlledShutdown`, `handleBrokerUnregistered` | [`remove_broker`] |
//! | `handleBrokerUnfenced`                           | [`unfence_broker`]    |
//! | leaderless partitions (offline-partition election) | [`elect_leader`]    |
//! | `electLeader` (ElectLeaders, preferred or unclean) | [`elect_leaders`]   |
//! | `alterPartition`                                 | [`alter_partition`]   |
//!
//! Each returns a [`PartitionChange`] (Kafka's `PartitionChangeRecord`), or None when nothing
//! changes. Applying one bumps the partition epoch; the leader epoch only when the leader
//! changes (since metadata version 3.6 an ISR shrink alone no longer bumps it, KAFKA-15021).
//!
//! `is_active` is Kafka's `ClusterControlManager.isActive`: registered, unfenced and not in
//! controlled shutdown.

use super::{
    AlterPartitionAnswer, AlterPartitionRequest, BrokerStatus, ErrorCode, ELECTION_NOT_NEEDED,
    ELIGIBLE_LEADERS_NOT_AVAILABLE, INELIGIBLE_REPLICA, INVALID_UPDATE_VERSION, NOT_CONTROLLER,
    NO_LEADER, OPERATION_NOT_ATTEMPTED, PREFERRED_LEADER_NOT_AVAILABLE,
};
use crate::protocol::error;

/// The controller's record of one partition (Kafka's `PartitionRegistration`, the fields used
/// here).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// Assignment order; the first is the preferred leader.
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// [`NO_LEADER`] when offline.
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// LeaderRecoveryState RECOVERING: the leader was elected uncleanly and has not yet told
    /// the controller (through AlterPartition) that it recovered.
    pub leader_recovering: bool,
}

impl Registration {
    /// Kafka's `preferredReplica`: the first replica.
    pub fn preferred_replica(&self) -> i32 {
        self.replicas.first().copied().unwrap_or(NO_LEADER)
    }
}

/// Kafka's `PartitionChangeBuilder.Election`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Election {
    /// The preferred replica if it may lead, else as `Online`.
    Preferred,
    /// A leader from the ISR only.
    Online,
    /// From the ISR if possible, else any acceptable replica (data may be lost).
    Unclean,
}

/// Kafka's `ElectionType` of an ElectLeaders request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElectionType {
    Preferred,
    Unclean,
}

/// What changes in a partition (Kafka's `PartitionChangeRecord`): `None` fields are unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionChange {
    /// The new leader ([`NO_LEADER`]: offline).
    pub leader: Option<i32>,
    pub isr: Option<Vec<i32>>,
    /// The new leader recovery state (true: RECOVERING).
    pub leader_recovering: Option<bool>,
}

impl PartitionChange {
    /// A leader change bumps the leader epoch (Kafka's `PartitionRegistration.merge`).
    pub fn bumps_leader_epoch(&self) -> bool {
        self.leader.is_some()
    }

    /// The partition after the change (Kafka's `PartitionRegistration.merge`): the partition
    /// epoch always grows by one, the leader epoch when the leader changes.
    pub fn apply(&self, registration: &Registration) -> Registration {
        let mut after = registration.clone();
        if let Some(leader) = self.leader {
            after.leader = leader;
            after.leader_epoch += 1;
        }
        if let Some(isr) = &self.isr {
            after.isr = isr.clone();
        }
        if let Some(recovering) = self.leader_recovering {
            after.leader_recovering = recovering;
        }
        after.partition_epoch += 1;
        after
    }

    fn is_empty(&self) -> bool {
        self.leader.is_none() && self.isr.is_none() && self.leader_recovering.is_none()
    }
}

/// Kafka's `PartitionChangeBuilder.build` for a new ISR `target_isr` and an `election` kind,
/// with `is_acceptable` deciding which brokers may lead. The current leader stays if it may
/// (in the target ISR and acceptable); otherwise the first replica in assignment order that
/// may lead is elected. An unclean election sets the ISR to just the new leader and marks it
/// recovering. Without eligible leader replicas the ISR is never emptied: a change that would
/// leave it empty keeps it as it is (the last member stays, without leading if it may not).
pub fn build_change(
    registration: &Registration,
    target_isr: &[i32],
    election: Election,
    is_acceptable: impl Fn(i32) -> bool,
) -> Option<PartitionChange> {
    change(
        registration,
        target_isr,
        election,
        registration.leader_recovering,
        &is_acceptable,
    )
}

fn change(
    registration: &Registration,
    target_isr: &[i32],
    election: Election,
    target_recovering: bool,
    is_acceptable: &dyn Fn(i32) -> bool,
) -> Option<PartitionChange> {
    let mut change = PartitionChange {
        leader: None,
        isr: None,
        leader_recovering: None,
    };
    // tryElection
    let (leader, unclean) = elect(registration, target_isr, election, is_acceptable);
    if leader != registration.leader {
        change.leader = Some(leader);
        if unclean {
            // The ISR becomes just the new leader: this can lose data.
            change.isr = Some(vec![leader]);
            if !registration.leader_recovering {
                change.leader_recovering = Some(true);
            }
        }
    }
    // Set the ISR if it differs and the election did not set it; never empty without ELR.
    if change.isr.is_none() && !target_isr.is_empty() && target_isr != registration.isr.as_slice() {
        change.isr = Some(target_isr.to_vec());
    }
    if target_recovering != registration.leader_recovering {
        change.leader_recovering = Some(target_recovering);
    }
    (!change.is_empty()).then_some(change)
}

/// Kafka's `electLeader` (`electPreferredLeader` / `electAnyLeader`): the leader and whether
/// the election was unclean.
fn elect(
    registration: &Registration,
    target_isr: &[i32],
    election: Election,
    is_acceptable: &dyn Fn(i32) -> bool,
) -> (i32, bool) {
    // isValidNewLeader, without ELR: in the target ISR and acceptable.
    let valid = |r: i32| target_isr.contains(&r) && is_acceptable(r);
    let replicas = &registration.replicas;
    if election == Election::Preferred {
        if let Some(&preferred) = replicas.first() {
            if valid(preferred) {
                return (preferred, false);
            }
        }
        if valid(registration.leader) {
            return (registration.leader, false);
        }
        return match replicas.iter().skip(1).copied().find(|&r| valid(r)) {
            Some(r) => (r, false),
            None => (NO_LEADER, false),
        };
    }
    if valid(registration.leader) {
        return (registration.leader, false);
    }
    if let Some(r) = replicas.iter().copied().find(|&r| valid(r)) {
        return (r, false);
    }
    if election == Election::Unclean {
        if let Some(r) = replicas.iter().copied().find(|&r| is_acceptable(r)) {
            return (r, true);
        }
    }
    (NO_LEADER, false)
}

fn election_kind(unclean_enabled: bool) -> Election {
    if unclean_enabled {
        Election::Unclean
    } else {
        Election::Online
    }
}

/// `broker` was fenced, entered controlled shutdown, or unregistered (Kafka's
/// `generateLeaderAndIsrUpdates` with it as `brokerToRemove`): it leaves the ISR, and may not
/// lead even if `is_active` still says so (the controller decides before its registration
/// changes). A new leader is elected if it led; `unclean_enabled` is the topic's
/// `unclean.leader.election.enable`. If it was the last ISR member, the ISR keeps it and the
/// partition goes offline (leader -1) unless an unclean election finds a leader.
pub fn remove_broker(
    registration: &Registration,
    broker: i32,
    unclean_enabled: bool,
    is_active: impl Fn(i32) -> bool,
) -> Option<PartitionChange> {
    let target_isr: Vec<i32> = registration
        .isr
        .iter()
        .copied()
        .filter(|&r| r != broker)
        .collect();
    change(
        registration,
        &target_isr,
        election_kind(unclean_enabled),
        registration.leader_recovering,
        &|r| r != broker && is_active(r),
    )
}

/// `broker` was unfenced (Kafka's `handleBrokerUnfenced`, `generateLeaderAndIsrUpdates` with it
/// as `brokerToAdd`): a partition without a leader elects one, `broker` counting as active even
/// before its registration says so. Partitions with a leader are left alone.
pub fn unfence_broker(
    registration: &Registration,
    broker: i32,
    unclean_enabled: bool,
    is_active: impl Fn(i32) -> bool,
) -> Option<PartitionChange> {
    if registration.leader != NO_LEADER {
        return None;
    }
    change(
        registration,
        &registration.isr,
        election_kind(unclean_enabled),
        registration.leader_recovering,
        &|r| r == broker || is_active(r),
    )
}

/// Offline-partition election: keep the leader if it is active and in the ISR; else the first
/// replica in assignment order that is in the ISR and active; else, if `unclean_enabled`, the
/// first active replica, the ISR becoming just it; else no leader (Kafka's
/// `PartitionChangeBuilder` with `Election.ONLINE` or `UNCLEAN` and the ISR unchanged).
pub fn elect_leader(
    registration: &Registration,
    unclean_enabled: bool,
    is_active: impl Fn(i32) -> bool,
) -> Option<PartitionChange> {
    change(
        registration,
        &registration.isr,
        election_kind(unclean_enabled),
        registration.leader_recovering,
        &is_active,
    )
}

/// An ElectLeaders request for this partition (Kafka's `ReplicationControlManager.electLeader`;
/// also the automatic preferred-leader rebalance). Preferred: ELECTION_NOT_NEEDED if the
/// preferred replica leads; it is elected if active and in the ISR; otherwise the current
/// leader stays (PREFERRED_LEADER_NOT_AVAILABLE), or, with none, another ISR member is elected.
/// Unclean (whatever the topic's setting): ELECTION_NOT_NEEDED if the partition has a leader;
/// else a clean election if possible, otherwise the first active replica, or
/// ELIGIBLE_LEADERS_NOT_AVAILABLE.
pub fn elect_leaders(
    registration: &Registration,
    election_type: ElectionType,
    is_active: impl Fn(i32) -> bool,
) -> Result<PartitionChange, ErrorCode> {
    let (election, not_available) = match election_type {
        ElectionType::Preferred => {
            if registration.leader == registration.preferred_replica() {
                return Err(ELECTION_NOT_NEEDED);
            }
            (Election::Preferred, PREFERRED_LEADER_NOT_AVAILABLE)
        }
        ElectionType::Unclean => {
            if registration.leader != NO_LEADER {
                return Err(ELECTION_NOT_NEEDED);
            }
            (Election::Unclean, ELIGIBLE_LEADERS_NOT_AVAILABLE)
        }
    };
    change(
        registration,
        &registration.isr,
        election,
        registration.leader_recovering,
        &is_active,
    )
    .ok_or(not_available)
}

/// The controller's handling of one partition of an AlterPartition request (Kafka's
/// `ReplicationControlManager.alterPartition` and `validateAlterPartitionData`), at request
/// version `request_version`. On success: the change to apply (None when the request changes
/// nothing) and the answer, the partition as it is afterwards. An ISR-only change bumps the
/// partition epoch, not the leader epoch.
///
/// `brokers` looks a broker up in the metadata image. An ISR member is ineligible when it is
/// not registered, in controlled shutdown, fenced, or its broker epoch (unless -1) is not its
/// registration's: INELIGIBLE_REPLICA (OPERATION_NOT_ATTEMPTED before version 2).
pub fn alter_partition(
    registration: &Registration,
    request: &AlterPartitionRequest,
    request_version: i16,
    brokers: impl Fn(i32) -> Option<BrokerStatus>,
) -> Result<(Option<PartitionChange>, AlterPartitionAnswer), ErrorCode> {
    // Epochs ahead of the controller's: this controller is likely stale.
    if request.leader_epoch > registration.leader_epoch
        || request.partition_epoch > registration.partition_epoch
    {
        return Err(NOT_CONTROLLER);
    }
    if request.leader_epoch < registration.leader_epoch {
        return Err(error::FENCED_LEADER_EPOCH);
    }
    if request.leader_id != registration.leader {
        return Err(error::INVALID_REQUEST);
    }
    if request.partition_epoch < registration.partition_epoch {
        return Err(INVALID_UPDATE_VERSION);
    }
    let new_isr = request.isr_ids();
    if !validate_isr(&registration.replicas, &new_isr) || !new_isr.contains(&registration.leader) {
        return Err(error::INVALID_REQUEST);
    }
    // A recovering leader's ISR is itself alone, and a recovered one cannot go back.
    if request.leader_recovering && (new_isr.len() > 1 || !registration.leader_recovering) {
        return Err(error::INVALID_REQUEST);
    }
    let ineligible = request.new_isr.iter().any(|m| match brokers(m.broker_id) {
        None => true,
        Some(s) => {
            s.in_controlled_shutdown
                || s.fenced
                || (m.broker_epoch != -1 && m.broker_epoch != s.epoch)
        }
    });
    if ineligible {
        return Err(if request_version > 1 {
            INELIGIBLE_REPLICA
        } else {
            OPERATION_NOT_ATTEMPTED
        });
    }
    // The leader is in the new ISR and eligible, hence acceptable: it stays leader, so the
    // topic's unclean setting and NEW_LEADER_ELECTED (a reassignment completing) do not arise.
    let change = change(
        registration,
        &new_isr,
        Election::Online,
        request.leader_recovering,
        &|r| brokers(r).is_some_and(|s| s.is_active()),
    );
    let after = change
        .as_ref()
        .map_or_else(|| registration.clone(), |c| c.apply(registration));
    let answer = AlterPartitionAnswer {
        leader_id: after.leader,
        leader_epoch: after.leader_epoch,
        partition_epoch: after.partition_epoch,
        isr: after.isr,
        leader_recovering: after.leader_recovering,
    };
    Ok((change, answer))
}

/// Kafka's `Replicas.validateIsr`: distinct, non-negative members of the replicas (an empty ISR
/// passes here; AlterPartition then fails the leader check).
fn validate_isr(replicas: &[i32], isr: &[i32]) -> bool {
    isr.iter()
        .enumerate()
        .all(|(i, &r)| r >= 0 && replicas.contains(&r) && !isr[..i].contains(&r))
}

#[cfg(test)]
#[path = "election_tests.rs"]
mod tests;
