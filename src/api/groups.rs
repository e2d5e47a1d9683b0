//! The classic group APIs: JoinGroup, SyncGroup, Heartbeat, LeaveGroup, DescribeGroups,
//! ListGroups, DeleteGroups. The rules live in `group::coordinator`; this turns requests into
//! its calls and its results into responses at the request's version.

use super::encode;
use crate::broker::{Broker, Outcome};
use crate::group::coordinator::{Answer, JoinArgs, JoinResult, Protocol, SyncArgs, SyncResult};
use crate::protocol::error;
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::delete_groups_request::DeleteGroupsRequest;
use crate::protocol::messages::delete_groups_response::*;
use crate::protocol::messages::describe_groups_request::DescribeGroupsRequest;
use crate::protocol::messages::describe_groups_response::*;
use crate::protocol::messages::heartbeat_request::HeartbeatRequest;
use crate::protocol::messages::heartbeat_response::HeartbeatResponse;
use crate::protocol::messages::join_group_request::JoinGroupRequest;
use crate::protocol::messages::join_group_response::*;
use crate::protocol::messages::leave_group_request::LeaveGroupRequest;
use crate::protocol::messages::leave_group_response::*;
use crate::protocol::messages::list_groups_request::ListGroupsRequest;
use crate::protocol::messages::list_groups_response::*;
use crate::protocol::messages::sync_group_request::SyncGroupRequest;
use crate::protocol::messages::sync_group_response::SyncGroupResponse;
use crate::protocol::wire::{DResult, Reader};
use crate::reactor::ConnId;
use std::time::Instant;

/// Kafka's group operations bit field (READ, DELETE, DESCRIBE) when no authorizer runs.
const ALL_GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

pub fn encode_join(hdr: &RequestHeader<'_>, r: &JoinResult) -> Vec<u8> {
    let resp = JoinGroupResponse {
        throttle_time_ms: 0,
        error_code: r.error,
        generation_id: r.generation_id,
        protocol_type: r.protocol_type.as_deref(),
        // Not nullable before v7: Kafka's JoinGroupResponse answers an error with "" there.
        protocol_name: r
            .protocol_name
            .as_deref()
            .or((hdr.api_version < 7).then_some("")),
        leader: &r.leader,
        skip_assignment: r.skip_assignment,
        member_id: &r.member_id,
        members: r
            .members
            .iter()
            .map(|m| JoinGroupResponseMember {
                member_id: &m.member_id,
                group_instance_id: m.group_instance_id.as_deref(),
                metadata: &m.metadata,
            })
            .collect(),
    };
    encode(hdr, |w| resp.encode(w, hdr.api_version))
}

pub fn encode_sync(hdr: &RequestHeader<'_>, r: &SyncResult) -> Vec<u8> {
    let resp = SyncGroupResponse {
        throttle_time_ms: 0,
        error_code: r.error,
        protocol_type: r.protocol_type.as_deref(),
        protocol_name: r.protocol_name.as_deref(),
        assignment: &r.assignment,
    };
    encode(hdr, |w| resp.encode(w, hdr.api_version))
}

pub fn join(
    b: &mut Broker,
    conn: ConnId,
    hdr: &RequestHeader<'static>,
    client_id: &str,
    body: &[u8],
    now: Instant,
) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = JoinGroupRequest::decode(&mut Reader::new(body), v)?;
    let client_host = b.peer_host(conn);
    let args = JoinArgs {
        group_id: req.group_id,
        member_id: req.member_id,
        group_instance_id: req.group_instance_id,
        client_id,
        client_host: &client_host,
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms: if v == 0 {
            req.session_timeout_ms
        } else {
            req.rebalance_timeout_ms
        },
        protocol_type: req.protocol_type,
        protocols: req
            .protocols
            .iter()
            .map(|p| Protocol {
                name: p.name,
                metadata: p.metadata,
            })
            .collect(),
        require_known_member_id: v >= 4,
        reason: req.reason,
    };
    let waiter = b.park_group_request(conn, hdr);
    match b.groups_mut().join(args, waiter, now) {
        Answer::Now(r) => {
            b.unpark_group_request(waiter);
            Ok(Outcome::Body(encode_join(hdr, &r)))
        }
        Answer::Parked => Ok(Outcome::Parked),
    }
}

pub fn sync(
    b: &mut Broker,
    conn: ConnId,
    hdr: &RequestHeader<'static>,
    body: &[u8],
    now: Instant,
) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = SyncGroupRequest::decode(&mut Reader::new(body), v)?;
    let args = SyncArgs {
        group_id: req.group_id,
        generation_id: req.generation_id,
        member_id: req.member_id,
        group_instance_id: req.group_instance_id,
        protocol_type: req.protocol_type,
        protocol_name: req.protocol_name,
        assignments: req
            .assignments
            .iter()
            .map(|a| (a.member_id, a.assignment))
            .collect(),
    };
    let waiter = b.park_group_request(conn, hdr);
    match b.groups_mut().sync(args, waiter, now) {
        Answer::Now(mut r) => {
            b.unpark_group_request(waiter);
            // The leader's assignments are stored before it hears success, as in Kafka: a
            // group whose record cannot be written (too large, disk error) fails the sync.
            let failed = if r.error == error::NONE {
                b.persist_dirty_groups(now)
                    .into_iter()
                    .find(|(g, _)| g == req.group_id)
            } else {
                None
            };
            if let Some((_, code)) = failed {
                r = SyncResult {
                    error: code,
                    protocol_type: r.protocol_type,
                    protocol_name: r.protocol_name,
                    assignment: Vec::new(),
                };
            }
            Ok(Outcome::Body(encode_sync(hdr, &r)))
        }
        Answer::Parked => Ok(Outcome::Parked),
    }
}

pub fn heartbeat(
    b: &mut Broker,
    hdr: &RequestHeader<'_>,
    body: &[u8],
    now: Instant,
) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = HeartbeatRequest::decode(&mut Reader::new(body), v)?;
    let error_code = b.groups_mut().heartbeat(
        req.group_id,
        req.member_id,
        req.group_instance_id,
        req.generation_id,
        now,
    );
    let resp = HeartbeatResponse {
        throttle_time_ms: 0,
        error_code,
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}

pub fn leave(
    b: &mut Broker,
    hdr: &RequestHeader<'_>,
    body: &[u8],
    now: Instant,
) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = LeaveGroupRequest::decode(&mut Reader::new(body), v)?;
    let members: Vec<(&str, Option<&str>)> = if v >= 3 {
        req.members
            .iter()
            .map(|m| (m.member_id, m.group_instance_id))
            .collect()
    } else {
        vec![(req.member_id, None)]
    };
    let (top, per_member) = b.groups_mut().leave(req.group_id, &members, now);
    // Before v3 the one member's error is the response's error.
    let error_code = if v < 3 && top == error::NONE {
        per_member.first().map_or(error::NONE, |m| m.2)
    } else {
        top
    };
    let resp = LeaveGroupResponse {
        throttle_time_ms: 0,
        error_code,
        members: per_member
            .iter()
            .map(|(id, inst, e)| MemberResponse {
                member_id: id,
                group_instance_id: inst.as_deref(),
                error_code: *e,
            })
            .collect(),
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}

pub fn describe(b: &mut Broker, hdr: &RequestHeader<'_>, body: &[u8]) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = DescribeGroupsRequest::decode(&mut Reader::new(body), v)?;
    let descs: Vec<_> = req
        .groups
        .iter()
        .map(|g| (*g, b.groups().describe(g)))
        .collect();
    let ops = if req.include_authorized_operations {
        ALL_GROUP_OPERATIONS
    } else {
        super::OPERATIONS_NOT_REQUESTED
    };
    let groups = descs
        .iter()
        .map(|(g, d)| {
            // Kafka 4 (v6+) reports an unknown group as GROUP_ID_NOT_FOUND; older versions as
            // a Dead group without error.
            let unknown = d.state == "Dead" && d.members.is_empty() && !b.offsets().has_offsets(g);
            let (error_code, error_message) = if unknown && v >= 6 {
                (error::GROUP_ID_NOT_FOUND, Some("Group not found."))
            } else {
                (d.error, None)
            };
            DescribedGroup {
                error_code,
                error_message,
                group_id: g,
                group_state: if !unknown && d.state == "Dead" {
                    "Empty"
                } else {
                    d.state
                },
                protocol_type: &d.protocol_type,
                protocol_data: &d.protocol,
                members: d
                    .members
                    .iter()
                    .map(|m| DescribedGroupMember {
                        member_id: &m.member_id,
                        group_instance_id: m.group_instance_id.as_deref(),
                        client_id: &m.client_id,
                        client_host: &m.client_host,
                        member_metadata: &m.metadata,
                        member_assignment: &m.assignment,
                    })
                    .collect(),
                authorized_operations: ops,
            }
        })
        .collect();
    let resp = DescribeGroupsResponse {
        throttle_time_ms: 0,
        groups,
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}

pub fn list(b: &mut Broker, hdr: &RequestHeader<'_>, body: &[u8]) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = ListGroupsRequest::decode(&mut Reader::new(body), v)?;
    let mut all = b.groups().list();
    // Groups known only by their committed offsets (assign() users) are listed as Empty.
    for g in b.offsets().groups() {
        if !all.iter().any(|(name, _, _)| name == g) {
            all.push((g.to_string(), String::new(), "Empty"));
        }
    }
    all.sort();
    let wanted = |state: &str| {
        req.states_filter.is_empty()
            || req
                .states_filter
                .iter()
                .any(|s| s.eq_ignore_ascii_case(state))
    };
    // Every group here is a classic group.
    let classic = req.types_filter.is_empty()
        || req
            .types_filter
            .iter()
            .any(|t| t.eq_ignore_ascii_case("classic"));
    let groups = all
        .iter()
        .filter(|(_, _, state)| classic && wanted(state))
        .map(|(g, pt, state)| ListedGroup {
            group_id: g,
            protocol_type: pt,
            group_state: state,
            group_type: "classic",
        })
        .collect();
    let resp = ListGroupsResponse {
        throttle_time_ms: 0,
        error_code: error::NONE,
        groups,
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}

pub fn delete(
    b: &mut Broker,
    hdr: &RequestHeader<'_>,
    body: &[u8],
    now: Instant,
) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = DeleteGroupsRequest::decode(&mut Reader::new(body), v)?;
    let mut results = Vec::with_capacity(req.groups_names.len());
    for g in &req.groups_names {
        let mut code = b.groups_mut().delete(g);
        if code == error::GROUP_ID_NOT_FOUND && b.offsets().has_offsets(g) {
            // A group that exists only through its offsets (assign() users) can be deleted.
            code = error::NONE;
        }
        if code == error::NONE {
            let records = b.offsets().delete_group_records(g);
            if let Err(e) = b.append_group_records(g, records, now) {
                code = e;
            }
        }
        results.push(DeletableGroupResult {
            group_id: g,
            error_code: code,
        });
    }
    let resp = DeleteGroupsResponse {
        throttle_time_ms: 0,
        results,
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}
