//! The controller's elections and ISR changes, after Kafka's `PartitionChangeBuilderTest` and
//! `ReplicationControlManagerTest` where they have a case.

use super::*;
use crate::replication::IsrMember;

fn registration(replicas: &[i32], isr: &[i32], leader: i32) -> Registration {
    Registration {
        replicas: replicas.to_vec(),
        isr: isr.to_vec(),
        leader,
        leader_epoch: 5,
        partition_epoch: 10,
        leader_recovering: false,
    }
}

/// Only the listed brokers are active.
fn only(active: &[i32]) -> impl Fn(i32) -> bool + '_ {
    move |id| active.contains(&id)
}

fn leader_change(leader: i32) -> PartitionChange {
    PartitionChange {
        leader: Some(leader),
        isr: None,
        leader_recovering: None,
    }
}

fn isr_change(isr: &[i32]) -> PartitionChange {
    PartitionChange {
        leader: None,
        isr: Some(isr.to_vec()),
        leader_recovering: None,
    }
}

#[test]
fn an_offline_partition_elects_the_first_replica_in_assignment_order_in_the_isr() {
    // Assignment order decides, not ISR order; replica 3 is not in the ISR.
    let r = registration(&[3, 1, 2], &[2, 1], NO_LEADER);
    let change = elect_leader(&r, false, only(&[1, 2, 3])).unwrap();
    assert_eq!(change, leader_change(1));
    assert!(change.bumps_leader_epoch());
    let after = change.apply(&r);
    assert_eq!(
        (after.leader, after.leader_epoch, after.partition_epoch),
        (1, 6, 11)
    );
    assert_eq!(after.isr, [2, 1]);
    // Replica 1 is not active: replica 2.
    assert_eq!(
        elect_leader(&r, false, only(&[2, 3])),
        Some(leader_change(2))
    );
}

#[test]
fn a_valid_leader_is_kept() {
    // Replica 2 leads and may: no election, though replica 1 comes first.
    let r = registration(&[1, 2, 3], &[1, 2], 2);
    assert_eq!(elect_leader(&r, false, only(&[1, 2, 3])), None);
    assert_eq!(
        build_change(&r, &[1, 2], Election::Online, only(&[1, 2])),
        None
    );
}

#[test]
fn without_an_active_isr_member_there_is_no_clean_leader() {
    let r = registration(&[1, 2, 3], &[1], NO_LEADER);
    // Unclean elections off: stays offline, no change at all.
    assert_eq!(elect_leader(&r, false, only(&[2, 3])), None);
    // A leader that may no longer lead is dropped.
    let r = registration(&[1, 2, 3], &[1], 1);
    assert_eq!(
        elect_leader(&r, false, only(&[2, 3])),
        Some(leader_change(NO_LEADER))
    );
}

#[test]
fn an_unclean_election_takes_the_first_active_replica_and_resets_the_isr() {
    let r = registration(&[1, 2, 3], &[1], NO_LEADER);
    let change = elect_leader(&r, true, only(&[3, 2])).unwrap();
    assert_eq!(
        change,
        PartitionChange {
            leader: Some(2),
            isr: Some(vec![2]),
            leader_recovering: Some(true),
        }
    );
    let after = change.apply(&r);
    assert_eq!((after.leader, after.isr.as_slice()), (2, &[2][..]));
    assert!(after.leader_recovering);
    assert_eq!((after.leader_epoch, after.partition_epoch), (6, 11));
    // A clean choice is still preferred when there is one.
    let r = registration(&[1, 2, 3], &[1, 3], NO_LEADER);
    assert_eq!(
        elect_leader(&r, true, only(&[2, 3])),
        Some(leader_change(3))
    );
    // Nobody active at all: no leader.
    let r = registration(&[1, 2, 3], &[1], 1);
    assert_eq!(
        elect_leader(&r, true, only(&[])),
        Some(leader_change(NO_LEADER))
    );
}

#[test]
fn fencing_a_follower_changes_only_the_isr_and_the_partition_epoch() {
    let r = registration(&[1, 2, 3], &[1, 2, 3], 1);
    let change = remove_broker(&r, 3, false, only(&[1, 2])).unwrap();
    assert_eq!(change, isr_change(&[1, 2]));
    assert!(!change.bumps_leader_epoch());
    let after = change.apply(&r);
    assert_eq!(
        (after.leader, after.leader_epoch, after.partition_epoch),
        (1, 5, 11)
    );
    // A broker outside the ISR: nothing to do.
    let r = registration(&[1, 2, 3], &[1, 2], 1);
    assert_eq!(remove_broker(&r, 3, false, only(&[1, 2])), None);
}

#[test]
fn fencing_the_leader_elects_another_isr_member() {
    let r = registration(&[1, 2, 3], &[1, 2, 3], 1);
    let change = remove_broker(&r, 1, false, only(&[2, 3])).unwrap();
    assert_eq!(
        change,
        PartitionChange {
            leader: Some(2),
            isr: Some(vec![2, 3]),
            leader_recovering: None,
        }
    );
    let after = change.apply(&r);
    assert_eq!((after.leader_epoch, after.partition_epoch), (6, 11));
}

/// The last ISR member stays in the ISR when fenced, and the partition goes offline (Kafka
/// only allows an empty ISR with eligible leader replicas).
#[test]
fn the_last_isr_member_stays_when_fenced() {
    let r = registration(&[1, 2, 3], &[1], 1);
    let change = remove_broker(&r, 1, false, only(&[2, 3])).unwrap();
    assert_eq!(change, leader_change(NO_LEADER));
    let offline = change.apply(&r);
    assert_eq!(
        (offline.leader, offline.isr.as_slice()),
        (NO_LEADER, &[1][..])
    );
    assert_eq!((offline.leader_epoch, offline.partition_epoch), (6, 11));
    // Fencing it again (say it re-registered and was fenced once more) changes nothing.
    assert_eq!(remove_broker(&offline, 1, false, only(&[2, 3])), None);
    // Unfenced, it leads again; it counts as active before its registration says so.
    let change = unfence_broker(&offline, 1, false, only(&[2, 3])).unwrap();
    assert_eq!(change, leader_change(1));
    let back = change.apply(&offline);
    assert_eq!(
        (back.leader, back.leader_epoch, back.partition_epoch),
        (1, 7, 12)
    );
    // Unfencing another broker does nothing for this partition, nor for one with a leader.
    assert_eq!(unfence_broker(&offline, 2, false, only(&[3])), None);
    assert_eq!(unfence_broker(&back, 2, false, only(&[1, 3])), None);
}

#[test]
fn the_last_isr_member_fenced_with_unclean_elections_on() {
    let r = registration(&[1, 2, 3], &[1], 1);
    let change = remove_broker(&r, 1, true, only(&[2, 3])).unwrap();
    assert_eq!(
        change,
        PartitionChange {
            leader: Some(2),
            isr: Some(vec![2]),
            leader_recovering: Some(true),
        }
    );
    // A broker being removed is never elected, even if still active in the image.
    let r = registration(&[1, 2], &[1], 1);
    assert_eq!(
        remove_broker(&r, 1, true, only(&[1])),
        Some(leader_change(NO_LEADER))
    );
}

/// Kafka's `handleBrokerInControlledShutdown`: the broker leaves every ISR and leadership
/// moves, even though its registration does not say it is shutting down yet.
#[test]
fn controlled_shutdown_moves_leadership_off_the_broker() {
    let r = registration(&[1, 2, 3], &[1, 2, 3], 1);
    let change = remove_broker(&r, 1, false, only(&[1, 2, 3])).unwrap();
    assert_eq!(change.leader, Some(2));
    assert_eq!(change.isr, Some(vec![2, 3]));
    // A follower shutting down only leaves the ISR.
    let r = registration(&[1, 2, 3], &[1, 2, 3], 2);
    assert_eq!(
        remove_broker(&r, 3, false, only(&[1, 2, 3])),
        Some(isr_change(&[1, 2]))
    );
    // The only ISR member shutting down: offline, still in the ISR.
    let r = registration(&[1, 2, 3], &[3], 3);
    assert_eq!(
        remove_broker(&r, 3, false, only(&[1, 2, 3])),
        Some(leader_change(NO_LEADER))
    );
}

#[test]
fn preferred_leader_election() {
    let r = registration(&[1, 2, 3], &[1, 2, 3], 2);
    // The preferred replica is in the ISR and active.
    assert_eq!(
        elect_leaders(&r, ElectionType::Preferred, only(&[1, 2, 3])),
        Ok(leader_change(1))
    );
    // It already leads.
    let led = registration(&[1, 2, 3], &[1, 2, 3], 1);
    assert_eq!(
        elect_leaders(&led, ElectionType::Preferred, only(&[1, 2, 3])),
        Err(ELECTION_NOT_NEEDED)
    );
    // Not active, or not in the ISR: the current leader stays.
    assert_eq!(
        elect_leaders(&r, ElectionType::Preferred, only(&[2, 3])),
        Err(PREFERRED_LEADER_NOT_AVAILABLE)
    );
    let out_of_isr = registration(&[1, 2, 3], &[2, 3], 2);
    assert_eq!(
        elect_leaders(&out_of_isr, ElectionType::Preferred, only(&[1, 2, 3])),
        Err(PREFERRED_LEADER_NOT_AVAILABLE)
    );
    // No usable leader and the preferred one unavailable: another ISR member is elected.
    let offline = registration(&[1, 2, 3], &[2, 3], NO_LEADER);
    assert_eq!(
        elect_leaders(&offline, ElectionType::Preferred, only(&[3])),
        Ok(leader_change(3))
    );
    // The builder's preferred election, as the automatic rebalance uses it.
    assert_eq!(
        build_change(&r, &r.isr, Election::Preferred, only(&[1, 2, 3])),
        Some(leader_change(1))
    );
}

#[test]
fn unclean_leader_election_request() {
    let led = registration(&[1, 2, 3], &[1], 1);
    assert_eq!(
        elect_leaders(&led, ElectionType::Unclean, only(&[2])),
        Err(ELECTION_NOT_NEEDED)
    );
    let offline = registration(&[1, 2, 3], &[1], NO_LEADER);
    assert_eq!(
        elect_leaders(&offline, ElectionType::Unclean, only(&[])),
        Err(ELIGIBLE_LEADERS_NOT_AVAILABLE)
    );
    assert_eq!(
        elect_leaders(&offline, ElectionType::Unclean, only(&[3])),
        Ok(PartitionChange {
            leader: Some(3),
            isr: Some(vec![3]),
            leader_recovering: Some(true),
        })
    );
    // Clean if it can be.
    assert_eq!(
        elect_leaders(&offline, ElectionType::Unclean, only(&[1, 3])),
        Ok(leader_change(1))
    );
}

fn member(broker_id: i32) -> IsrMember {
    IsrMember {
        broker_id,
        broker_epoch: 100 + broker_id as i64,
    }
}

fn registered(id: i32) -> Option<BrokerStatus> {
    Some(BrokerStatus {
        epoch: 100 + id as i64,
        fenced: false,
        in_controlled_shutdown: false,
    })
}

fn request(isr: &[i32]) -> AlterPartitionRequest {
    AlterPartitionRequest {
        leader_id: 1,
        leader_epoch: 5,
        partition_epoch: 10,
        new_isr: isr.iter().map(|&id| member(id)).collect(),
        leader_recovering: false,
    }
}

#[test]
fn alter_partition_changes_the_isr_and_partition_epoch_only() {
    let r = registration(&[1, 2, 3], &[1, 2], 1);
    let (change, answer) = alter_partition(&r, &request(&[1, 2, 3]), 3, registered).unwrap();
    assert_eq!(change, Some(isr_change(&[1, 2, 3])));
    assert_eq!(
        answer,
        AlterPartitionAnswer {
            leader_id: 1,
            leader_epoch: 5,
            partition_epoch: 11,
            isr: vec![1, 2, 3],
            leader_recovering: false,
        }
    );
    // A shrink, likewise.
    let (change, answer) = alter_partition(&r, &request(&[1]), 3, registered).unwrap();
    assert_eq!(change, Some(isr_change(&[1])));
    assert_eq!((answer.leader_epoch, answer.partition_epoch), (5, 11));
    // Asking for the ISR it already has: nothing changes, the partition epoch stays.
    let (change, answer) = alter_partition(&r, &request(&[1, 2]), 3, registered).unwrap();
    assert_eq!(change, None);
    assert_eq!((answer.partition_epoch, answer.isr), (10, vec![1, 2]));
}

#[test]
fn alter_partition_validation() {
    let r = registration(&[1, 2, 3], &[1, 2], 1);
    let check = |req: AlterPartitionRequest| alter_partition(&r, &req, 3, registered).map(|_| ());
    let base = request(&[1, 2, 3]);
    let with = |f: &dyn Fn(&mut AlterPartitionRequest)| {
        let mut req = base.clone();
        f(&mut req);
        req
    };
    assert_eq!(check(with(&|q| q.leader_epoch = 6)), Err(NOT_CONTROLLER));
    assert_eq!(
        check(with(&|q| q.partition_epoch = 11)),
        Err(NOT_CONTROLLER)
    );
    assert_eq!(
        check(with(&|q| q.leader_epoch = 4)),
        Err(error::FENCED_LEADER_EPOCH)
    );
    assert_eq!(
        check(with(&|q| q.leader_id = 2)),
        Err(error::INVALID_REQUEST)
    );
    assert_eq!(
        check(with(&|q| q.partition_epoch = 9)),
        Err(INVALID_UPDATE_VERSION)
    );
    // Not a replica, a duplicate, without the leader, empty.
    assert_eq!(check(request(&[1, 4])), Err(error::INVALID_REQUEST));
    assert_eq!(check(request(&[1, 2, 2])), Err(error::INVALID_REQUEST));
    assert_eq!(check(request(&[2, 3])), Err(error::INVALID_REQUEST));
    assert_eq!(check(request(&[])), Err(error::INVALID_REQUEST));
    // A recovered leader cannot claim to be recovering.
    assert_eq!(
        check(with(&|q| q.leader_recovering = true)),
        Err(error::INVALID_REQUEST)
    );
}

#[test]
fn alter_partition_refuses_ineligible_replicas() {
    let r = registration(&[1, 2, 3], &[1, 2], 1);
    let status = |fenced, in_controlled_shutdown| {
        Some(BrokerStatus {
            epoch: 103,
            fenced,
            in_controlled_shutdown,
        })
    };
    let cases = [
        ("fenced", status(true, false), 103),
        ("shutting down", status(false, true), 103),
        ("unregistered", None, 103),
        ("epoch mismatch", status(false, false), 99),
    ];
    for (name, broker_3, epoch) in cases {
        let brokers = |id: i32| if id == 3 { broker_3 } else { registered(id) };
        let mut req = request(&[1, 2, 3]);
        req.new_isr[2].broker_epoch = epoch;
        assert_eq!(
            alter_partition(&r, &req, 3, brokers).map(|_| ()),
            Err(INELIGIBLE_REPLICA),
            "{name}"
        );
        assert_eq!(
            alter_partition(&r, &req, 1, brokers).map(|_| ()),
            Err(OPERATION_NOT_ATTEMPTED),
            "{name}, version 1"
        );
    }
    // -1 skips the epoch check.
    let mut req = request(&[1, 2, 3]);
    req.new_isr[2].broker_epoch = -1;
    assert!(alter_partition(&r, &req, 3, registered).is_ok());
}

#[test]
fn alter_partition_ends_a_leaders_recovery() {
    // Elected uncleanly, the leader grows the ISR once it has recovered.
    let mut r = registration(&[1, 2, 3], &[1], 1);
    r.leader_recovering = true;
    // Still recovering: the ISR must stay just the leader.
    let mut recovering = request(&[1, 2]);
    recovering.leader_recovering = true;
    assert_eq!(
        alter_partition(&r, &recovering, 3, registered).map(|_| ()),
        Err(error::INVALID_REQUEST)
    );
    let (change, answer) = alter_partition(&r, &request(&[1, 2]), 3, registered).unwrap();
    assert_eq!(
        change,
        Some(PartitionChange {
            leader: None,
            isr: Some(vec![1, 2]),
            leader_recovering: Some(false),
        })
    );
    assert!(!answer.leader_recovering);
    assert_eq!((answer.leader_epoch, answer.partition_epoch), (5, 11));
}
