//! Consumer groups over raw frames: the join/sync dance with parked requests, Kafka's error
//! codes for bad group requests, and committed offsets surviving a restart.

#[macro_use]
mod support;

use minikafka::protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use minikafka::protocol::messages::find_coordinator_response::FindCoordinatorResponse;
use minikafka::protocol::messages::heartbeat_request::HeartbeatRequest;
use minikafka::protocol::messages::heartbeat_response::HeartbeatResponse;
use minikafka::protocol::messages::join_group_request::{
    JoinGroupRequest, JoinGroupRequestProtocol,
};
use minikafka::protocol::messages::join_group_response::JoinGroupResponse;
use minikafka::protocol::messages::list_groups_request::ListGroupsRequest;
use minikafka::protocol::messages::list_groups_response::ListGroupsResponse;
use minikafka::protocol::messages::metadata_response::MetadataResponse;
use minikafka::protocol::messages::offset_commit_request::*;
use minikafka::protocol::messages::offset_commit_response::OffsetCommitResponse;
use minikafka::protocol::messages::offset_fetch_request::*;
use minikafka::protocol::messages::offset_fetch_response::OffsetFetchResponse;
use minikafka::protocol::messages::sync_group_request::{
    SyncGroupRequest, SyncGroupRequestAssignment,
};
use minikafka::protocol::messages::sync_group_response::SyncGroupResponse;
use std::time::Duration;
use support::*;

const V_JOIN: i16 = 9;
const V_SYNC: i16 = 5;

fn quick_groups(tag: &str) -> TestBroker {
    TestBroker::start_with(tag, |c| {
        c.group_initial_rebalance_delay_ms = 0;
        c.offsets_topic_num_partitions = 3;
    })
}

fn join(c: &mut Client, corr_group: &str, member: &str) -> JoinGroupResponse<'static> {
    let req = JoinGroupRequest {
        group_id: corr_group,
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        member_id: member,
        group_instance_id: None,
        protocol_type: "consumer",
        protocols: vec![JoinGroupRequestProtocol {
            name: "range",
            metadata: b"meta",
        }],
        reason: None,
    };
    let body = c.call(JOIN_GROUP, V_JOIN, |w| req.encode(w, V_JOIN));
    let body: &'static [u8] = Box::leak(body.into_boxed_slice());
    decode!(JoinGroupResponse, body, V_JOIN)
}

fn sync(
    c: &mut Client,
    group: &str,
    generation: i32,
    member: &str,
    assignments: &[(&str, &[u8])],
) -> SyncGroupResponse<'static> {
    let req = SyncGroupRequest {
        group_id: group,
        generation_id: generation,
        member_id: member,
        group_instance_id: None,
        protocol_type: Some("consumer"),
        protocol_name: Some("range"),
        assignments: assignments
            .iter()
            .map(|(m, a)| SyncGroupRequestAssignment {
                member_id: m,
                assignment: a,
            })
            .collect(),
    };
    let body = c.call(SYNC_GROUP, V_SYNC, |w| req.encode(w, V_SYNC));
    let body: &'static [u8] = Box::leak(body.into_boxed_slice());
    decode!(SyncGroupResponse, body, V_SYNC)
}

fn heartbeat(c: &mut Client, group: &str, generation: i32, member: &str) -> i16 {
    let req = HeartbeatRequest {
        group_id: group,
        generation_id: generation,
        member_id: member,
        group_instance_id: None,
    };
    let body = c.call(HEARTBEAT, 4, |w| req.encode(w, 4));
    decode!(HeartbeatResponse, &body, 4).error_code
}

fn commit(
    c: &mut Client,
    group: &str,
    generation: i32,
    member: &str,
    topic: &str,
    offset: i64,
) -> i16 {
    let req = OffsetCommitRequest {
        group_id: group,
        generation_id_or_member_epoch: generation,
        member_id: member,
        topics: vec![OffsetCommitRequestTopic {
            name: topic,
            partitions: vec![OffsetCommitRequestPartition {
                partition_index: 0,
                committed_offset: offset,
                committed_leader_epoch: -1,
                committed_metadata: Some("m"),
            }],
        }],
        ..Default::default()
    };
    let body = c.call(OFFSET_COMMIT, 9, |w| req.encode(w, 9));
    decode!(OffsetCommitResponse, &body, 9).topics[0].partitions[0].error_code
}

fn committed(c: &mut Client, group: &str, topic: &str) -> i64 {
    let req = OffsetFetchRequest {
        groups: vec![OffsetFetchRequestGroup {
            group_id: group,
            topics: Some(vec![OffsetFetchRequestTopics {
                name: topic,
                partition_indexes: vec![0],
            }]),
            ..Default::default()
        }],
        ..Default::default()
    };
    let body = c.call(OFFSET_FETCH, 9, |w| req.encode(w, 9));
    let r = decode!(OffsetFetchResponse, &body, 9);
    r.groups[0].topics[0].partitions[0].committed_offset
}

#[test]
fn find_coordinator_names_this_broker_and_creates_the_offsets_topic() {
    let b = quick_groups("fc");
    let mut c = b.client();
    let req = FindCoordinatorRequest {
        key: "g",
        key_type: 0,
        coordinator_keys: vec!["g", "h"],
    };
    for v in [1i16, 4, 6] {
        let body = c.call(FIND_COORDINATOR, v, |w| req.encode(w, v));
        let r = decode!(FindCoordinatorResponse, &body, v);
        if v >= 4 {
            assert_eq!(r.coordinators.len(), 2);
            assert!(r
                .coordinators
                .iter()
                .all(|k| k.error_code == 0 && k.port == b.addr.port() as i32));
        } else {
            assert_eq!((r.error_code, r.port), (0, b.addr.port() as i32));
        }
    }
    let body = c.metadata_body(12, None, false);
    let m = decode!(MetadataResponse, &body, 12);
    let offsets = m
        .topics
        .iter()
        .find(|t| t.name == Some("__consumer_offsets"));
    let offsets = offsets.expect("__consumer_offsets listed");
    assert!(offsets.is_internal);
    assert_eq!(offsets.partitions.len(), 3);
}

#[test]
fn two_members_join_sync_and_rebalance_when_one_leaves() {
    let b = quick_groups("dance");
    let mut a = b.client();
    let mut bb = b.client();
    // v4+: the first join of an unknown member asks it to come back with an id.
    let first = join(&mut a, "g", "");
    assert_eq!(first.error_code, 79);
    let id_a = first.member_id.to_string();
    let ja = join(&mut a, "g", &id_a);
    assert_eq!(ja.error_code, 0);
    assert_eq!(ja.leader, id_a);
    let sa = sync(&mut a, "g", ja.generation_id, &id_a, &[(&id_a, b"all")]);
    assert_eq!((sa.error_code, sa.assignment), (0, &b"all"[..]));

    // A second member: its join parks until the first rejoins (heartbeat says rebalance).
    let id_b = join(&mut bb, "g", "").member_id.to_string();
    let req = JoinGroupRequest {
        group_id: "g",
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        member_id: &id_b,
        protocol_type: "consumer",
        protocols: vec![JoinGroupRequestProtocol {
            name: "range",
            metadata: b"meta",
        }],
        ..Default::default()
    };
    let parked_join = bb
        .send(JOIN_GROUP, V_JOIN, |w| req.encode(w, V_JOIN))
        .unwrap();
    bb.wait_until_read(); // b's join is parked, the rebalance has begun
    assert_eq!(heartbeat(&mut a, "g", ja.generation_id, &id_a), 27);
    let ja2 = join(&mut a, "g", &id_a);
    assert_eq!(ja2.error_code, 0);
    assert_eq!(ja2.generation_id, ja.generation_id + 1);
    assert_eq!(ja2.members.len(), 2, "the leader sees both members");
    let body = bb.read_response(JOIN_GROUP, V_JOIN, parked_join).unwrap();
    let jb = decode!(JoinGroupResponse, &body, V_JOIN);
    assert_eq!((jb.error_code, jb.generation_id), (0, ja2.generation_id));
    assert!(jb.members.is_empty(), "followers get no member list");

    // The follower's sync parks until the leader hands out assignments.
    let sreq = SyncGroupRequest {
        group_id: "g",
        generation_id: jb.generation_id,
        member_id: &id_b,
        ..Default::default()
    };
    let parked_sync = bb
        .send(SYNC_GROUP, V_SYNC, |w| sreq.encode(w, V_SYNC))
        .unwrap();
    let sa2 = sync(
        &mut a,
        "g",
        ja2.generation_id,
        &id_a,
        &[(&id_a, b"p0"), (&id_b, b"p1")],
    );
    assert_eq!(sa2.assignment, b"p0");
    let body = bb.read_response(SYNC_GROUP, V_SYNC, parked_sync).unwrap();
    assert_eq!(decode!(SyncGroupResponse, &body, V_SYNC).assignment, b"p1");

    // Errors as Kafka gives them.
    assert_eq!(heartbeat(&mut a, "g", ja2.generation_id - 1, &id_a), 22);
    assert_eq!(heartbeat(&mut a, "g", ja2.generation_id, "nobody"), 25);
    assert_eq!(heartbeat(&mut a, "no-such-group", 1, "x"), 25);
    assert_eq!(
        sync(&mut a, "g", ja2.generation_id, "nobody", &[]).error_code,
        25
    );
    assert_eq!(sync(&mut a, "g", 999, &id_a, &[]).error_code, 22);

    // Offsets: the member commits at its generation; a stale generation is refused.
    c_topic(&b, "t");
    assert_eq!(commit(&mut a, "g", ja2.generation_id, &id_a, "t", 42), 0);
    assert_eq!(
        commit(&mut a, "g", ja2.generation_id - 1, &id_a, "t", 43),
        22
    );
    assert_eq!(
        commit(&mut a, "g", ja2.generation_id, &id_a, "no-such-topic", 1),
        3
    );
    assert_eq!(committed(&mut a, "g", "t"), 42);

    let body = a.call(LIST_GROUPS, 5, |w| {
        ListGroupsRequest::default().encode(w, 5)
    });
    let groups = decode!(ListGroupsResponse, &body, 5).groups;
    assert_eq!(groups.len(), 1);
    assert_eq!((groups[0].group_id, groups[0].group_state), ("g", "Stable"));
}

fn c_topic(b: &TestBroker, name: &str) {
    b.client().create_topic(name, 1);
}

#[test]
fn simple_consumer_offsets_survive_restart_and_metadata_is_bounded() {
    let mut b = quick_groups("offsets-restart");
    c_topic(&b, "t");
    let mut c = b.client();
    // assign() users commit with generation -1 and no member id.
    assert_eq!(commit(&mut c, "solo", -1, "", "t", 7), 0);
    let big = "x".repeat(5000);
    let req = OffsetCommitRequest {
        group_id: "solo",
        generation_id_or_member_epoch: -1,
        topics: vec![OffsetCommitRequestTopic {
            name: "t",
            partitions: vec![OffsetCommitRequestPartition {
                partition_index: 0,
                committed_offset: 8,
                committed_leader_epoch: -1,
                committed_metadata: Some(&big),
            }],
        }],
        ..Default::default()
    };
    let body = c.call(OFFSET_COMMIT, 9, |w| req.encode(w, 9));
    assert_eq!(
        decode!(OffsetCommitResponse, &body, 9).topics[0].partitions[0].error_code,
        12
    );
    drop(c);
    b.restart();
    let mut c = b.client();
    assert_eq!(committed(&mut c, "solo", "t"), 7);
    assert_eq!(committed(&mut c, "never", "t"), -1);
}

/// offsets.retention.minutes: a simple consumer's offsets expire after the retention from their
/// commit; a group with live members keeps its offsets.
#[test]
fn committed_offsets_expire_after_the_retention() {
    let b = TestBroker::start_with("offsets-retention", |c| {
        c.group_initial_rebalance_delay_ms = 0;
        c.offsets_topic_num_partitions = 1;
        c.offsets_retention_ms = 300;
        c.offsets_retention_check_interval_ms = 50;
    });
    c_topic(&b, "t");
    let mut c = b.client();
    assert_eq!(commit(&mut c, "old", -1, "", "t", 5), 0);
    let id = join(&mut c, "live", "").member_id.to_string();
    let j = join(&mut c, "live", &id);
    sync(&mut c, "live", j.generation_id, &id, &[(&id, b"a")]);
    assert_eq!(commit(&mut c, "live", j.generation_id, &id, "t", 9), 0);
    assert_eq!(committed(&mut c, "old", "t"), 5);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while committed(&mut c, "old", "t") != -1 {
        assert!(
            std::time::Instant::now() < deadline,
            "offsets never expired"
        );
        assert_eq!(heartbeat(&mut c, "live", j.generation_id, &id), 0);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        committed(&mut c, "live", "t"),
        9,
        "a live group keeps its offsets"
    );
}

/// Deleting a topic deletes the groups' committed offsets for it, as Kafka does: a re-created
/// topic of the same name starts with none.
#[test]
fn deleting_a_topic_deletes_its_committed_offsets() {
    use minikafka::protocol::messages::delete_topics_request::DeleteTopicsRequest;
    let b = quick_groups("delete-offsets");
    c_topic(&b, "t");
    c_topic(&b, "other");
    let mut c = b.client();
    assert_eq!(commit(&mut c, "g", -1, "", "t", 5), 0);
    assert_eq!(commit(&mut c, "g", -1, "", "other", 6), 0);
    let req = DeleteTopicsRequest {
        topic_names: vec!["t"],
        timeout_ms: 1000,
        ..Default::default()
    };
    c.call(DELETE_TOPICS, 4, |w| req.encode(w, 4));
    c_topic(&b, "t");
    assert_eq!(committed(&mut c, "g", "t"), -1);
    assert_eq!(committed(&mut c, "g", "other"), 6);
}
