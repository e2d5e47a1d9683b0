//! The leader's rules, after Kafka's `PartitionTest` and `ReplicaTest` where they have a case.

use super::*;
use crate::replication::INVALID_UPDATE_VERSION;

const LEADER: i32 = 1;
const LAG: i64 = 10_000;

fn epoch_of(id: i32) -> i64 {
    100 + id as i64
}

fn active(id: i32) -> Option<BrokerStatus> {
    Some(BrokerStatus {
        epoch: epoch_of(id),
        fenced: false,
        in_controlled_shutdown: false,
    })
}

fn config(min_isr: i32) -> LeaderConfig {
    LeaderConfig {
        min_insync_replicas: min_isr,
        replica_lag_time_max_ms: LAG,
    }
}

fn partition(replicas: &[i32], isr: &[i32]) -> LeaderAndIsr {
    LeaderAndIsr {
        leader_epoch: 5,
        partition_epoch: 10,
        replicas: replicas.to_vec(),
        isr: isr.to_vec(),
    }
}

fn local() -> LocalBroker {
    LocalBroker {
        id: LEADER,
        epoch: epoch_of(LEADER),
    }
}

/// A leader of replicas 1, 2, 3 with `isr`, its log ending at `leo` with high watermark `hw`.
fn leader(isr: &[i32], leo: i64, hw: i64, min_isr: i32, now: i64) -> LeaderState {
    LeaderState::new(
        local(),
        config(min_isr),
        &partition(&[1, 2, 3], isr),
        leo,
        hw,
        now,
        active,
    )
}

fn follower_fetch(id: i32, offset: i64) -> FollowerFetch {
    FollowerFetch {
        replica_id: id,
        fetch_offset: offset,
        log_start_offset: 0,
        broker_epoch: epoch_of(id),
    }
}

fn fetch(l: &mut LeaderState, id: i32, offset: i64, leader_leo: i64, now: i64) -> FetchUpdate {
    l.record_follower_fetch(&follower_fetch(id, offset), leader_leo, now, active)
        .unwrap()
}

/// The controller's answer applying `sent`.
fn applied(sent: &AlterPartitionRequest) -> AlterPartitionAnswer {
    AlterPartitionAnswer {
        leader_id: LEADER,
        leader_epoch: sent.leader_epoch,
        partition_epoch: sent.partition_epoch + 1,
        isr: sent.isr_ids(),
        leader_recovering: false,
    }
}

fn commit(
    l: &mut LeaderState,
    sent: &AlterPartitionRequest,
    leo: i64,
    now: i64,
) -> AlterPartitionOutcome {
    l.on_alter_partition_response(sent, Ok(&applied(sent)), leo, now, active)
}

#[test]
fn the_high_watermark_is_the_smallest_log_end_offset_of_the_isr() {
    let mut l = leader(&[1, 2, 3], 10, 0, 1, 0);
    // Followers not heard from yet hold it where it is.
    assert_eq!(l.high_watermark(), 0);
    assert!(!fetch(&mut l, 2, 10, 10, 1).high_watermark_advanced);
    assert_eq!(l.high_watermark(), 0);
    // The lagging follower decides.
    assert!(fetch(&mut l, 3, 4, 10, 2).high_watermark_advanced);
    assert_eq!(l.high_watermark(), 4);
    assert!(fetch(&mut l, 3, 7, 10, 3).high_watermark_advanced);
    assert_eq!(l.high_watermark(), 7);
    // The leader appends: its own log end offset does not move the HW past the followers.
    assert!(!l.maybe_increment_high_watermark(15, 4, active));
    assert_eq!(l.high_watermark(), 7);
    assert!(fetch(&mut l, 3, 15, 15, 5).high_watermark_advanced);
    assert_eq!(l.high_watermark(), 10, "follower 2 is at 10");
    assert!(fetch(&mut l, 2, 15, 15, 6).high_watermark_advanced);
    assert_eq!(l.high_watermark(), 15);
    // A fetch that does not move the follower does not recompute it.
    assert!(!fetch(&mut l, 2, 15, 15, 7).high_watermark_advanced);
}

#[test]
fn the_high_watermark_never_goes_backwards() {
    // The log's checkpointed HW is 8; follower 2 is behind it.
    let mut l = leader(&[1, 2], 10, 8, 1, 0);
    assert_eq!(l.high_watermark(), 8);
    assert!(!fetch(&mut l, 2, 5, 10, 1).high_watermark_advanced);
    assert_eq!(l.high_watermark(), 8);
    assert!(fetch(&mut l, 2, 10, 10, 2).high_watermark_advanced);
    assert_eq!(l.high_watermark(), 10);
    // The follower comes back behind (it truncated), or a new epoch resets it.
    assert!(!fetch(&mut l, 2, 6, 10, 3).high_watermark_advanced);
    assert_eq!(l.high_watermark(), 10);
    let next = LeaderAndIsr {
        leader_epoch: 6,
        partition_epoch: 11,
        ..partition(&[1, 2, 3], &[1, 2, 3])
    };
    assert_eq!(
        l.apply_metadata(&next, 10, 4, active),
        MetadataOutcome::Applied {
            high_watermark_advanced: false
        }
    );
    assert_eq!(l.high_watermark(), 10);
}

#[test]
fn a_leader_alone_in_the_isr_moves_the_high_watermark_with_its_log() {
    let mut l = leader(&[1], 10, 3, 1, 0);
    assert_eq!(l.high_watermark(), 10, "advanced when it became leader");
    assert!(l.maybe_increment_high_watermark(12, 1, active));
    assert_eq!(l.high_watermark(), 12);
}

#[test]
fn the_high_watermark_does_not_move_under_min_insync_replicas() {
    // KIP-966: ISR 1 < min.insync.replicas 2.
    let mut l = leader(&[1], 10, 3, 2, 0);
    assert!(l.is_under_min_isr());
    assert_eq!(l.high_watermark(), 3);
    assert!(!l.maybe_increment_high_watermark(12, 1, active));
    assert_eq!(l.high_watermark(), 3);
    // The minimum is capped at the replication factor: 3 with two replicas is 2.
    let mut l = LeaderState::new(
        local(),
        config(3),
        &partition(&[1, 2], &[1, 2]),
        10,
        0,
        0,
        active,
    );
    assert_eq!(l.effective_min_isr(), 2);
    assert!(!l.is_under_min_isr());
    assert!(fetch(&mut l, 2, 10, 10, 1).high_watermark_advanced);
    assert_eq!(l.high_watermark(), 10);
}

/// Kafka's `testHighWatermarkIncreasesWithFencedOrShutdownFollower`: a caught-up follower just
/// removed from the ISR still holds the HW back while it may rejoin, not once it is fenced or
/// shutting down.
#[test]
fn a_caught_up_replica_outside_the_isr_holds_the_high_watermark_while_eligible() {
    for (status, expected_hw) in [
        ("active", 10),
        ("fenced", 20),
        ("shutting down", 20),
        ("unregistered", 20),
    ] {
        let mut l = LeaderState::new(
            local(),
            config(1),
            &partition(&[1, 2], &[1, 2]),
            10,
            0,
            0,
            active,
        );
        fetch(&mut l, 2, 10, 10, 1);
        assert_eq!(l.high_watermark(), 10);
        let brokers = |id: i32| match (id, status) {
            (2, "fenced") => Some(BrokerStatus {
                fenced: true,
                ..active(2).unwrap()
            }),
            (2, "shutting down") => Some(BrokerStatus {
                in_controlled_shutdown: true,
                ..active(2).unwrap()
            }),
            (2, "unregistered") => None,
            _ => active(id),
        };
        // The leader appended 10 more; the controller shrank the ISR to the leader.
        let shrunk = LeaderAndIsr {
            partition_epoch: 11,
            ..partition(&[1, 2], &[1])
        };
        l.apply_metadata(&shrunk, 20, 2, brokers);
        assert_eq!(l.isr(), [1]);
        assert!(l.out_of_sync_replicas(20, 2).is_empty());
        assert_eq!(l.high_watermark(), expected_hw, "{status}");
    }
}

#[test]
fn an_isr_member_is_out_of_sync_only_after_the_lag_time() {
    let mut l = leader(&[1, 2, 3], 10, 0, 1, 0);
    fetch(&mut l, 2, 10, 10, 0);
    fetch(&mut l, 3, 10, 10, 0);
    // The leader appends; follower 2 catches up at 5 s, follower 3 stops fetching.
    fetch(&mut l, 2, 20, 20, 5_000);
    assert!(
        l.out_of_sync_replicas(20, LAG).is_empty(),
        "exactly the lag"
    );
    assert!(l.maybe_shrink_isr(20, LAG).is_none());
    assert_eq!(l.out_of_sync_replicas(20, LAG + 1), [3]);
    let sent = l.maybe_shrink_isr(20, LAG + 1).unwrap();
    assert_eq!(sent.isr_ids(), [1, 2]);
    assert_eq!(
        sent.new_isr,
        [
            IsrMember {
                broker_id: 1,
                broker_epoch: 101
            },
            IsrMember {
                broker_id: 2,
                broker_epoch: 102
            }
        ]
    );
    assert_eq!((sent.leader_epoch, sent.partition_epoch), (5, 10));
    assert_eq!(l.in_flight(), Some(&sent));
    assert_eq!(l.pending_removals(), [3]);
    // One request at a time: nothing more is out of sync while it is in flight.
    assert!(l.out_of_sync_replicas(20, 10 * LAG).is_empty());
    assert!(l.maybe_shrink_isr(20, 10 * LAG).is_none());
}

#[test]
fn a_follower_at_the_leaders_log_end_stays_in_sync_however_long() {
    let mut l = leader(&[1, 2], 10, 0, 1, 0);
    fetch(&mut l, 2, 10, 10, 0);
    assert!(l.out_of_sync_replicas(10, 100 * LAG).is_empty());
    // Once the leader has more, the time counts.
    assert_eq!(l.out_of_sync_replicas(11, 100 * LAG), [2]);
    // The leader itself never is out of sync.
    assert!(!l.out_of_sync_replicas(11, 100 * LAG).contains(&LEADER));
}

/// Kafka's `testShouldNotShrinkIsrIfPreviousFetchIsCaughtUp`, over many fetches: a follower
/// always one fetch behind a leader that keeps appending stays in sync, as it reads up to where
/// the leader's log ended at its previous fetch; a follower that falls further behind does not.
#[test]
fn a_follower_one_fetch_behind_a_busy_leader_stays_in_sync() {
    let mut l = leader(&[1, 2, 3], 10, 0, 1, 0);
    let step = LAG / 2;
    let mut previous_leo = 10;
    for k in 1..=10 {
        let now = k * step;
        let leader_leo = previous_leo + 10;
        // Follower 2 reads up to the previous log end; follower 3 reads half as far.
        fetch(&mut l, 2, previous_leo, leader_leo, now);
        fetch(&mut l, 3, 10 + (previous_leo - 10) / 2, leader_leo, now);
        let caught_up = l.follower(2).unwrap().last_caught_up_ms;
        assert_eq!(caught_up, now - step, "caught up as of its previous fetch");
        assert!(!l.out_of_sync_replicas(leader_leo, now + step).contains(&2));
        previous_leo = leader_leo;
    }
    assert_eq!(l.out_of_sync_replicas(previous_leo, 10 * step), [3]);
    // Without its fetch state moving, the lag does catch up with follower 2 too.
    assert_eq!(
        l.out_of_sync_replicas(previous_leo, 10 * step + LAG),
        [2, 3]
    );
}

#[test]
fn last_caught_up_time_follows_kafkas_replica_rules() {
    // ReplicaTest: a fetch reaching the leader's log end is caught up now; one reaching the
    // log end as of the previous fetch is caught up as of then; otherwise unchanged.
    let mut l = leader(&[1, 2], 10, 0, 1, 0);
    fetch(&mut l, 2, 5, 10, 1_000);
    assert_eq!(
        l.follower(2).unwrap().last_caught_up_ms,
        0,
        "reset as ISR member at 0"
    );
    fetch(&mut l, 2, 8, 12, 2_000);
    assert_eq!(
        l.follower(2).unwrap().last_caught_up_ms,
        0,
        "8 < 10, the previous log end"
    );
    fetch(&mut l, 2, 12, 15, 3_000);
    assert_eq!(l.follower(2).unwrap().last_caught_up_ms, 2_000);
    fetch(&mut l, 2, 15, 15, 4_000);
    let f = *l.follower(2).unwrap();
    assert_eq!(f.last_caught_up_ms, 4_000);
    assert_eq!(f.log_end_offset, 15);
    assert_eq!(f.last_fetch_ms, 4_000);
    assert_eq!(f.last_fetch_leader_log_end_offset, 15);
    assert_eq!(f.broker_epoch, Some(102));
    // The leader's log end at the last fetch only grows.
    fetch(&mut l, 2, 15, 14, 5_000);
    assert_eq!(l.follower(2).unwrap().last_fetch_leader_log_end_offset, 15);
}

/// Kafka's `testFollowerDoesNotJoinISRUntilCaughtUpToOffsetWithinCurrentLeaderEpoch`.
#[test]
fn a_follower_joins_the_isr_at_the_high_watermark_and_the_leader_epochs_start() {
    // Leader epoch 5 began at offset 20; the HW is still 5.
    let mut l = leader(&[1, 3], 20, 5, 1, 0);
    assert_eq!(l.leader_epoch_start_offset(), 20);
    assert!(fetch(&mut l, 3, 8, 20, 1).high_watermark_advanced);
    assert_eq!(l.high_watermark(), 8);
    // At the HW, but before the epoch's start: not in sync.
    assert!(fetch(&mut l, 2, 8, 20, 2).alter_partition.is_none());
    assert!(fetch(&mut l, 2, 19, 25, 3).alter_partition.is_none());
    assert!(!l.can_join_isr(2, active));
    let sent = fetch(&mut l, 2, 20, 25, 4).alter_partition.unwrap();
    assert_eq!(sent.isr_ids(), [1, 3, 2]);
    assert_eq!(
        l.isr(),
        [1, 3],
        "the committed ISR waits for the controller"
    );
    assert_eq!(l.maximal_isr(), [1, 3, 2]);

    // Past the epoch's start but below the HW: not in sync either.
    let mut l = leader(&[1, 3], 20, 30, 1, 0);
    assert_eq!(l.high_watermark(), 30);
    assert!(fetch(&mut l, 2, 25, 40, 1).alter_partition.is_none());
    assert!(fetch(&mut l, 2, 30, 40, 2).alter_partition.is_some());
}

#[test]
fn fenced_shutting_down_unregistered_or_reincarnated_brokers_do_not_join() {
    let status = |fenced, in_controlled_shutdown| {
        Some(BrokerStatus {
            epoch: epoch_of(2),
            fenced,
            in_controlled_shutdown,
        })
    };
    let cases: [(&str, Option<BrokerStatus>, i64, bool); 6] = [
        ("fenced", status(true, false), epoch_of(2), false),
        ("shutting down", status(false, true), epoch_of(2), false),
        ("unregistered", None, epoch_of(2), false),
        // Fetching with a newer epoch than the registration the leader knows.
        ("epoch mismatch", status(false, false), 500, false),
        ("no epoch in the fetch", status(false, false), -1, true),
        ("eligible", status(false, false), epoch_of(2), true),
    ];
    for (name, broker, fetch_epoch, joins) in cases {
        let mut l = leader(&[1], 10, 10, 1, 0);
        let brokers = |id: i32| if id == 2 { broker } else { active(id) };
        let fetch = FollowerFetch {
            broker_epoch: fetch_epoch,
            ..follower_fetch(2, 10)
        };
        let update = l.record_follower_fetch(&fetch, 10, 1, brokers).unwrap();
        assert_eq!(update.alter_partition.is_some(), joins, "{name}");
        assert_eq!(l.in_flight().is_some(), joins, "{name}");
    }
}

/// Kafka's `testFenceFollowerFetchWithStaleBrokerEpoch`.
#[test]
fn a_fetch_from_a_previous_incarnation_is_refused() {
    let mut l = leader(&[1, 2], 10, 0, 1, 0);
    let stale = FollowerFetch {
        broker_epoch: 50,
        ..follower_fetch(2, 10)
    };
    assert_eq!(
        l.record_follower_fetch(&stale, 10, 1, active),
        Err(error::NOT_LEADER_OR_FOLLOWER)
    );
    assert_eq!(l.follower(2).unwrap().log_end_offset, UNKNOWN_OFFSET);
    assert_eq!(l.high_watermark(), 0);
    // Not checked while the broker is fenced (no alive epoch), nor with -1.
    let fenced = |id: i32| {
        Some(BrokerStatus {
            fenced: id == 2,
            ..active(id).unwrap()
        })
    };
    assert!(l.record_follower_fetch(&stale, 10, 1, fenced).is_ok());
    let unknown = FollowerFetch {
        broker_epoch: -1,
        ..follower_fetch(2, 10)
    };
    assert!(l.record_follower_fetch(&unknown, 10, 1, active).is_ok());
    // Not a replica at all.
    assert_eq!(
        l.record_follower_fetch(&follower_fetch(7, 10), 10, 1, active),
        Err(error::NOT_LEADER_OR_FOLLOWER)
    );
}

#[test]
fn an_expansion_in_flight_holds_the_high_watermark_and_blocks_other_changes() {
    let mut l = leader(&[1, 2], 10, 10, 1, 0);
    let sent = fetch(&mut l, 3, 10, 10, 0).alter_partition.unwrap();
    assert_eq!(sent.isr_ids(), [1, 2, 3]);
    // Long after, follower 3 is no longer caught up, yet as a proposed member it holds the HW.
    let now = 3 * LAG;
    assert!(!fetch(&mut l, 2, 20, 20, now).high_watermark_advanced);
    assert_eq!(l.high_watermark(), 10);
    // Only the committed ISR is checked for shrinking, and nothing while in flight.
    assert!(l.maybe_shrink_isr(20, now).is_none());
    assert_eq!(l.isr(), [1, 2]);
    assert_eq!(l.maximal_isr(), [1, 2, 3]);
    assert_eq!(
        commit(&mut l, &sent, 20, now),
        AlterPartitionOutcome::Committed {
            high_watermark_advanced: false
        }
    );
    assert_eq!(l.isr(), [1, 2, 3]);
    assert_eq!(l.partition_epoch(), 11);
    assert_eq!(l.in_flight(), None);
    assert!(fetch(&mut l, 3, 20, 20, now).high_watermark_advanced);
    assert_eq!(l.high_watermark(), 20);
}

#[test]
fn a_shrink_in_flight_still_counts_the_replicas_it_removes() {
    let mut l = leader(&[1, 2, 3], 10, 0, 1, 0);
    fetch(&mut l, 2, 10, 10, 0);
    fetch(&mut l, 3, 10, 10, 0);
    assert_eq!(l.high_watermark(), 10);
    fetch(&mut l, 2, 20, 20, LAG);
    let sent = l.maybe_shrink_isr(20, LAG + 1).unwrap();
    assert_eq!(sent.isr_ids(), [1, 2]);
    // Follower 3 still counts until the controller agrees.
    assert!(!l.maybe_increment_high_watermark(20, LAG + 1, active));
    assert_eq!(l.high_watermark(), 10);
    assert_eq!(l.maximal_isr(), [1, 2, 3]);
    assert_eq!(
        commit(&mut l, &sent, 20, LAG + 2),
        AlterPartitionOutcome::Committed {
            high_watermark_advanced: true
        }
    );
    assert_eq!(l.isr(), [1, 2]);
    assert_eq!(l.high_watermark(), 20);
}

/// Kafka's `testIsrNotExpandedIfUpdateFails`, `testInvalidAlterPartitionRequestsAreNotRetried`,
/// `testAlterIsrUnknownTopic`, `testAlterIsrInvalidVersion`, `testAlterIsrUnexpectedError`.
#[test]
fn alter_partition_errors_roll_back_wait_or_retry() {
    let expand = |now| {
        let mut l = leader(&[1, 2], 10, 10, 1, 0);
        let sent = fetch(&mut l, 3, 10, 10, now).alter_partition.unwrap();
        (l, sent)
    };
    for code in [OPERATION_NOT_ATTEMPTED, INELIGIBLE_REPLICA] {
        let (mut l, sent) = expand(1);
        assert_eq!(
            l.on_alter_partition_response(&sent, Err(code), 10, 2, active),
            AlterPartitionOutcome::RolledBack
        );
        assert_eq!(l.in_flight(), None);
        assert_eq!(l.isr(), [1, 2]);
        assert_eq!(l.maximal_isr(), [1, 2]);
        assert_eq!(l.partition_epoch(), 10);
        // From the committed state, the next fetch proposes it again.
        assert_eq!(fetch(&mut l, 3, 10, 10, 3).alter_partition, Some(sent));
    }
    for code in [
        error::UNKNOWN_TOPIC_OR_PARTITION,
        error::UNKNOWN_TOPIC_ID,
        error::FENCED_LEADER_EPOCH,
        INVALID_UPDATE_VERSION,
        error::INVALID_REQUEST,
        NEW_LEADER_ELECTED,
    ] {
        let (mut l, sent) = expand(1);
        assert_eq!(
            l.on_alter_partition_response(&sent, Err(code), 10, 2, active),
            AlterPartitionOutcome::AwaitMetadata,
            "{code}"
        );
        assert_eq!(l.in_flight(), Some(&sent), "{code}");
        assert_eq!(l.maximal_isr(), [1, 2, 3], "{code}");
    }
    for code in [
        super::super::NOT_CONTROLLER,
        error::REQUEST_TIMED_OUT,
        error::UNKNOWN_SERVER_ERROR,
    ] {
        let (mut l, sent) = expand(1);
        assert_eq!(
            l.on_alter_partition_response(&sent, Err(code), 10, 2, active),
            AlterPartitionOutcome::Retry(sent.clone())
        );
        assert_eq!(l.in_flight(), Some(&sent));
    }
}

/// Kafka's `testAlterIsrLeaderAndIsrRace` and `handleAlterPartitionUpdate`'s epoch checks.
#[test]
fn stale_alter_partition_answers_are_not_applied() {
    let mut l = leader(&[1, 2], 10, 10, 1, 0);
    let sent = fetch(&mut l, 3, 10, 10, 1).alter_partition.unwrap();
    // An answer to another request.
    let other = AlterPartitionRequest {
        partition_epoch: 9,
        ..sent.clone()
    };
    assert_eq!(commit(&mut l, &other, 10, 2), AlterPartitionOutcome::Stale);
    // Another leader epoch, or an older partition epoch: ignored, still in flight.
    let mut answer = applied(&sent);
    answer.leader_epoch = 6;
    assert_eq!(
        l.on_alter_partition_response(&sent, Ok(&answer), 10, 2, active),
        AlterPartitionOutcome::Ignored
    );
    let mut answer = applied(&sent);
    answer.partition_epoch = 9;
    assert_eq!(
        l.on_alter_partition_response(&sent, Ok(&answer), 10, 2, active),
        AlterPartitionOutcome::Ignored
    );
    assert_eq!(l.in_flight(), Some(&sent));
    // The same partition epoch: the controller had nothing to change; committed.
    let mut answer = applied(&sent);
    answer.partition_epoch = 10;
    assert_eq!(
        l.on_alter_partition_response(&sent, Ok(&answer), 10, 2, active),
        AlterPartitionOutcome::Committed {
            high_watermark_advanced: false
        }
    );
    assert_eq!(l.isr(), [1, 2, 3]);
    assert_eq!(l.partition_epoch(), 10);

    // Metadata that arrives first replaces the pending state: the answer is then stale.
    let mut l = leader(&[1, 2], 10, 10, 1, 0);
    let sent = fetch(&mut l, 3, 10, 10, 1).alter_partition.unwrap();
    let next = LeaderAndIsr {
        partition_epoch: 11,
        ..partition(&[1, 2, 3], &[1, 2, 3])
    };
    l.apply_metadata(&next, 10, 2, active);
    assert_eq!(l.in_flight(), None);
    assert_eq!(commit(&mut l, &sent, 10, 3), AlterPartitionOutcome::Stale);
    assert_eq!(l.partition_epoch(), 11);
}

/// Kafka's `testIgnoreLeaderPartitionStateChangeWithOlderPartitionEpoch`,
/// `testDoNotResetReplicaStateIfLeaderEpochIsNotBumped`, `testUpdateAssignmentAndIsr`.
#[test]
fn metadata_updates_while_leading() {
    let mut l = leader(&[1, 2, 3], 10, 0, 1, 0);
    fetch(&mut l, 2, 10, 10, 100);
    fetch(&mut l, 3, 4, 10, 100);
    let older = LeaderAndIsr {
        partition_epoch: 9,
        ..partition(&[1, 2], &[1, 2])
    };
    assert_eq!(
        l.apply_metadata(&older, 10, 200, active),
        MetadataOutcome::Skipped
    );
    assert_eq!(l.replicas(), [1, 2, 3]);

    // Same leader epoch: the followers' state is kept.
    let same_epoch = LeaderAndIsr {
        partition_epoch: 11,
        ..partition(&[1, 2, 3, 4], &[1, 2, 3])
    };
    l.apply_metadata(&same_epoch, 12, 300, active);
    let f2 = *l.follower(2).unwrap();
    assert_eq!(
        (f2.log_end_offset, f2.last_fetch_ms, f2.last_caught_up_ms),
        (10, 100, 100)
    );
    assert_eq!(l.follower(4).unwrap().log_end_offset, UNKNOWN_OFFSET);
    assert_eq!(l.leader_epoch_start_offset(), 10);

    // A new leader epoch: log end offsets are kept, the timers restart, replica 3 (now out of
    // the ISR) is not caught up, and replica 4 (removed) is forgotten.
    let new_epoch = LeaderAndIsr {
        leader_epoch: 6,
        partition_epoch: 12,
        replicas: vec![1, 2, 3],
        isr: vec![1, 2],
    };
    assert_eq!(
        l.apply_metadata(&new_epoch, 12, 400, active),
        MetadataOutcome::Applied {
            high_watermark_advanced: false
        }
    );
    assert_eq!((l.leader_epoch(), l.partition_epoch()), (6, 12));
    assert_eq!(l.leader_epoch_start_offset(), 12);
    assert!(l.follower(4).is_none());
    let f2 = *l.follower(2).unwrap();
    assert_eq!(
        (
            f2.log_end_offset,
            f2.last_fetch_ms,
            f2.last_caught_up_ms,
            f2.last_fetch_leader_log_end_offset
        ),
        (10, 400, 400, 12)
    );
    let f3 = *l.follower(3).unwrap();
    assert_eq!(
        (f3.log_end_offset, f3.last_fetch_ms, f3.last_caught_up_ms),
        (4, 0, 0)
    );
}

#[test]
fn a_new_leader_knows_nothing_of_its_followers() {
    let l = leader(&[1, 2], 10, 0, 1, 7_000);
    let f2 = *l.follower(2).unwrap();
    assert_eq!(
        f2,
        FollowerProgress {
            log_start_offset: UNKNOWN_OFFSET,
            log_end_offset: UNKNOWN_OFFSET,
            last_fetch_leader_log_end_offset: UNKNOWN_OFFSET,
            last_fetch_ms: 0,
            last_caught_up_ms: 7_000,
            broker_epoch: None,
        }
    );
    assert_eq!(
        l.follower(3).unwrap().last_caught_up_ms,
        0,
        "outside the ISR"
    );
    // An ISR member counts as caught up from now; one that never fetches drops out.
    assert!(l.out_of_sync_replicas(10, 7_000 + LAG).is_empty());
    assert_eq!(l.out_of_sync_replicas(10, 7_001 + LAG), [2]);
    // Replica 3 holds no HW back before it fetches, and cannot join before it does.
    assert!(!l.can_join_isr(3, active));
}

/// Kafka's `appendRecordsToLeader` and `testAtMinIsr` / `testIsUnderMinIsr`.
#[test]
fn acks_all_appends_need_min_insync_replicas() {
    let l = leader(&[1], 10, 10, 2, 0);
    assert_eq!(l.check_append(-1), Err(error::NOT_ENOUGH_REPLICAS));
    assert_eq!(l.check_append(1), Ok(()));
    assert_eq!(l.check_append(0), Ok(()));
    let l = leader(&[1, 2], 10, 10, 2, 0);
    assert_eq!(l.check_append(-1), Ok(()));
    // min.insync.replicas above the replication factor counts as the replication factor.
    let l = leader(&[1, 2, 3], 10, 10, 5, 0);
    assert_eq!(l.check_append(-1), Ok(()));
    // Only the committed ISR counts: a member being added does not.
    let mut l = leader(&[1], 10, 10, 2, 0);
    assert!(fetch(&mut l, 2, 10, 10, 1).alter_partition.is_some());
    assert_eq!(l.check_append(-1), Err(error::NOT_ENOUGH_REPLICAS));
}

/// Kafka's `checkEnoughReplicasReachOffset`.
#[test]
fn acks_all_completes_at_the_high_watermark_and_checks_the_isr_again() {
    let mut l = leader(&[1, 2], 10, 10, 2, 0);
    fetch(&mut l, 2, 10, 10, 1);
    // Appended 10..15 with acks=all: wait for offset 15.
    assert_eq!(l.check_enough_replicas_reach_offset(15), None);
    fetch(&mut l, 2, 15, 15, 2);
    assert_eq!(l.check_enough_replicas_reach_offset(15), Some(error::NONE));
    // The ISR shrank below min.insync.replicas after the append.
    let shrunk = LeaderAndIsr {
        partition_epoch: 11,
        ..partition(&[1, 2, 3], &[1])
    };
    l.apply_metadata(&shrunk, 15, 3, active);
    assert_eq!(
        l.check_enough_replicas_reach_offset(15),
        Some(NOT_ENOUGH_REPLICAS_AFTER_APPEND)
    );
    // The maximal ISR counts here: a member being added makes two again.
    assert!(fetch(&mut l, 3, 15, 15, 4).alter_partition.is_some());
    assert_eq!(l.check_enough_replicas_reach_offset(15), Some(error::NONE));
}

/// Kafka's `testLeaderEpochValidationOnLeader` and `testFetchFromUnrecognizedFollower`.
#[test]
fn follower_fetches_are_checked_against_the_leader_epoch_and_replicas() {
    let l = leader(&[1, 2], 10, 0, 1, 0);
    assert_eq!(l.check_follower_fetch(2, Some(5)), Ok(()));
    assert_eq!(l.check_follower_fetch(2, None), Ok(()));
    assert_eq!(
        l.check_follower_fetch(2, Some(4)),
        Err(error::FENCED_LEADER_EPOCH)
    );
    assert_eq!(
        l.check_follower_fetch(2, Some(6)),
        Err(error::UNKNOWN_LEADER_EPOCH)
    );
    assert_eq!(
        l.check_follower_fetch(9, Some(5)),
        Err(error::UNKNOWN_LEADER_EPOCH)
    );
    assert_eq!(
        l.check_follower_fetch(9, None),
        Err(error::NOT_LEADER_OR_FOLLOWER)
    );
}

/// Kafka's `testLastFetchedOffsetValidation`.
#[test]
fn the_leader_points_a_diverging_fetcher_to_where_its_epoch_ended() {
    // Epoch 0 at 0, 2 at 10, 4 at 20; the leader is in epoch 5 from 30, its log end.
    let epochs = [(0, 0), (2, 10), (4, 20)];
    let check = |fetch_offset, last_fetched_epoch| {
        diverging_epoch(&epochs, 5, 0, 30, fetch_offset, last_fetched_epoch)
    };
    let diverging = |epoch, end_offset| Ok(Some(EpochEndOffset { epoch, end_offset }));
    assert_eq!(check(15, 2), Ok(None));
    assert_eq!(check(20, 2), Ok(None));
    assert_eq!(
        check(30, 5),
        Ok(None),
        "the leader's own epoch ends at its log end"
    );
    assert_eq!(check(25, 2), diverging(2, 20), "epoch 2 ended at 20 here");
    assert_eq!(check(12, 3), diverging(2, 20), "epoch 3 never existed here");
    assert_eq!(check(5, 1), diverging(0, 10));
    assert_eq!(
        check(40, 6),
        Err(error::OFFSET_OUT_OF_RANGE),
        "epoch newer than all"
    );
    // Below the log start: out of range whether or not it diverges.
    assert_eq!(
        diverging_epoch(&epochs, 5, 12, 30, 11, 2),
        Err(error::OFFSET_OUT_OF_RANGE)
    );
}
