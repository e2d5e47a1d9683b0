//! The pieces together: a leader, its followers and the controller answering AlterPartition.

use super::election::{alter_partition, remove_broker};
use super::*;
use crate::protocol::error;

const LAG: i64 = 10_000;

fn status(id: i32) -> Option<BrokerStatus> {
    Some(BrokerStatus {
        epoch: 100 + id as i64,
        fenced: false,
        in_controlled_shutdown: false,
    })
}

fn fetch(id: i32, offset: i64) -> FollowerFetch {
    FollowerFetch {
        replica_id: id,
        fetch_offset: offset,
        log_start_offset: 0,
        broker_epoch: 100 + id as i64,
    }
}

/// The controller answers `sent` and the leader applies the answer, as the metadata log would
/// then confirm.
fn round_trip(
    leader: &mut LeaderState,
    controller: &mut Registration,
    sent: &AlterPartitionRequest,
    brokers: impl Fn(i32) -> Option<BrokerStatus> + Copy,
    leo: i64,
    now: i64,
) -> AlterPartitionOutcome {
    let answer = alter_partition(controller, sent, 3, brokers);
    if let Ok((Some(change), _)) = &answer {
        *controller = change.apply(controller);
    }
    let answer = answer.as_ref().map(|(_, a)| a).map_err(|&e| e);
    leader.on_alter_partition_response(sent, answer, leo, now, brokers)
}

#[test]
fn the_isr_shrinks_and_grows_through_the_controller() {
    let mut controller = Registration {
        replicas: vec![1, 2, 3],
        isr: vec![1, 2, 3],
        leader: 1,
        leader_epoch: 5,
        partition_epoch: 10,
        leader_recovering: false,
    };
    let state = LeaderAndIsr {
        leader_epoch: 5,
        partition_epoch: 10,
        replicas: vec![1, 2, 3],
        isr: vec![1, 2, 3],
    };
    let config = LeaderConfig {
        min_insync_replicas: 2,
        replica_lag_time_max_ms: LAG,
    };
    let local = LocalBroker { id: 1, epoch: 101 };
    let mut leader = LeaderState::new(local, config, &state, 0, 0, 0, status);
    leader.check_append(-1).unwrap();
    // Both followers fetch up to 10; follower 3 then stops.
    for id in [2, 3] {
        leader
            .record_follower_fetch(&fetch(id, 10), 10, 0, status)
            .unwrap();
    }
    assert_eq!(leader.high_watermark(), 10);
    leader
        .record_follower_fetch(&fetch(2, 30), 30, 8_000, status)
        .unwrap();
    assert_eq!(leader.high_watermark(), 10);
    assert_eq!(leader.check_enough_replicas_reach_offset(30), None);

    let sent = leader.maybe_shrink_isr(30, LAG + 1).unwrap();
    let outcome = round_trip(&mut leader, &mut controller, &sent, status, 30, LAG + 1);
    assert_eq!(
        outcome,
        AlterPartitionOutcome::Committed {
            high_watermark_advanced: true
        }
    );
    assert_eq!(leader.isr(), [1, 2]);
    assert_eq!(leader.high_watermark(), 30);
    assert_eq!(
        leader.check_enough_replicas_reach_offset(30),
        Some(error::NONE)
    );
    assert_eq!(
        (controller.leader_epoch, controller.partition_epoch),
        (5, 11)
    );
    assert_eq!(leader.partition_epoch(), 11);

    // Follower 3 catches up and rejoins.
    let update = leader
        .record_follower_fetch(&fetch(3, 30), 30, LAG + 2, status)
        .unwrap();
    let sent = update.alter_partition.unwrap();
    round_trip(&mut leader, &mut controller, &sent, status, 30, LAG + 2);
    assert_eq!(leader.isr(), [1, 2, 3]);
    assert_eq!(controller.isr, [1, 2, 3]);
    assert_eq!(
        (controller.leader_epoch, controller.partition_epoch),
        (5, 12)
    );

    // Fenced, follower 2 leaves the ISR on the controller's side: the leader learns it from the
    // metadata log, its leader epoch unchanged.
    let change = remove_broker(&controller, 2, false, |id| id != 2).unwrap();
    controller = change.apply(&controller);
    let update = LeaderAndIsr {
        leader_epoch: controller.leader_epoch,
        partition_epoch: controller.partition_epoch,
        replicas: controller.replicas.clone(),
        isr: controller.isr.clone(),
    };
    let outcome = leader.apply_metadata(&update, 30, LAG + 3, status);
    assert_eq!(
        outcome,
        MetadataOutcome::Applied {
            high_watermark_advanced: false
        }
    );
    assert_eq!((leader.leader_epoch(), leader.isr()), (5, &[1, 3][..]));
}

#[test]
fn the_controller_refuses_a_follower_it_knows_is_fenced() {
    let controller = Registration {
        replicas: vec![1, 2],
        isr: vec![1],
        leader: 1,
        leader_epoch: 5,
        partition_epoch: 10,
        leader_recovering: false,
    };
    let state = LeaderAndIsr {
        leader_epoch: 5,
        partition_epoch: 10,
        replicas: vec![1, 2],
        isr: vec![1],
    };
    let local = LocalBroker { id: 1, epoch: 101 };
    let mut leader = LeaderState::new(local, LeaderConfig::default(), &state, 10, 10, 0, status);
    // The leader's image still shows follower 2 unfenced; the controller's no longer does.
    let sent = leader
        .record_follower_fetch(&fetch(2, 10), 10, 1, status)
        .unwrap()
        .alter_partition
        .unwrap();
    let controllers_view = |id: i32| {
        status(id).map(|s| BrokerStatus {
            fenced: id == 2,
            ..s
        })
    };
    let answer = alter_partition(&controller, &sent, 3, controllers_view).map(|(_, a)| a);
    assert_eq!(answer, Err(INELIGIBLE_REPLICA));
    let outcome = leader.on_alter_partition_response(&sent, Err(INELIGIBLE_REPLICA), 10, 2, status);
    assert_eq!(outcome, AlterPartitionOutcome::RolledBack);
    assert_eq!(leader.isr(), [1]);
    assert_eq!(leader.in_flight(), None);
}

#[test]
fn a_follower_replicates_from_the_leader() {
    let state = LeaderAndIsr {
        leader_epoch: 3,
        partition_epoch: 1,
        replicas: vec![1, 2],
        isr: vec![1, 2],
    };
    let local = LocalBroker { id: 1, epoch: 101 };
    let mut leader = LeaderState::new(local, LeaderConfig::default(), &state, 50, 40, 0, status);
    let leader_epochs = [(0, 0), (3, 50)];

    // The follower has the log up to 45, all of epoch 0.
    let epochs = [(0, 0)];
    let follower_log = LocalLog {
        epochs: &epochs,
        log_end_offset: 45,
        high_watermark: 40,
    };
    let mut follower = FollowerState::new(1, 3, &follower_log, FollowerConfig::default());
    let Step::Fetch(position) = follower.poll(&follower_log, 0) else {
        panic!("fetching")
    };
    leader
        .check_follower_fetch(2, Some(position.current_leader_epoch))
        .unwrap();
    let diverging = diverging_epoch(
        &leader_epochs,
        3,
        0,
        50,
        position.fetch_offset,
        position.last_fetched_epoch.unwrap(),
    );
    assert_eq!(diverging, Ok(None));
    // Served 45..50; the HW follows the follower; the follower takes it within its log.
    let update = leader
        .record_follower_fetch(&fetch(2, 45), 50, 1, status)
        .unwrap();
    assert!(update.high_watermark_advanced);
    assert_eq!(leader.high_watermark(), 45);
    assert_eq!(
        follower.on_records_appended(&position, 50, Some(3), 1),
        Outcome::Continue
    );
    assert_eq!(follower_high_watermark(leader.high_watermark(), 0, 50), 45);
    leader
        .record_follower_fetch(&fetch(2, 50), 50, 2, status)
        .unwrap();
    assert_eq!(leader.high_watermark(), 50);
}
