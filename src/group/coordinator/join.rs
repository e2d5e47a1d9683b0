//! JoinGroup: new members, rejoining members and restarted static members (Kafka's
//! `classicGroupJoinNewMember`, `classicGroupJoinExistingMember` and
//! `updateStaticMemberThenRebalanceOrCompleteJoin`).

use std::time::{Duration, Instant};

use super::state::{join_error, sync_error, Ctx, Group, Member, State, Timer};
use super::{Answer, JoinArgs, JoinResult, Waiter, NEW_MEMBER_JOIN_TIMEOUT};
use crate::protocol::error::{
    FENCED_INSTANCE_ID, MEMBER_ID_REQUIRED, NONE, UNKNOWN_MEMBER_ID, UNKNOWN_SERVER_ERROR,
};

/// A JoinGroup being handled.
pub(super) struct Joining<'r, 'a> {
    pub args: &'r JoinArgs<'a>,
    pub protocols: Vec<(String, Vec<u8>)>,
    pub session: Duration,
    pub rebalance: Duration,
    pub waiter: Waiter,
    pub now: Instant,
}

/// Kafka's `acceptJoiningMember`: the max group size applies to new members (and, while
/// preparing a rebalance, to members that have not rejoined yet).
pub(super) fn accept_joining(g: &Group, member_id: &str, max_size: usize) -> bool {
    match g.state {
        State::Empty => true,
        State::PreparingRebalance => {
            g.members.get(member_id).is_some_and(|m| m.awaiting_join)
                || g.num_awaiting_join < max_size
        }
        State::CompletingRebalance | State::Stable => {
            g.members.contains_key(member_id) || g.members.len() < max_size
        }
    }
}

/// JoinGroup with an empty member id.
pub(super) fn join_new_member(
    g: &mut Group,
    j: Joining<'_, '_>,
    ctx: &mut Ctx,
) -> Answer<JoinResult> {
    let args = j.args;
    let prefix = args.group_instance_id.unwrap_or(args.client_id);
    let new_id = format!("{}-{}", prefix, uuid::Uuid::new_v4());
    if let Some(inst) = args.group_instance_id {
        if let Some(old) = g.static_members.get(inst).cloned() {
            return replace_static_member(g, &old, new_id, j, ctx);
        }
    } else if args.require_known_member_id {
        let t = ctx.arm(
            j.now + j.session,
            Timer::Pending {
                group: g.id.clone(),
                member: new_id.clone(),
            },
        );
        g.pending.insert(new_id.clone(), t);
        return Answer::Now(join_error(&new_id, MEMBER_ID_REQUIRED));
    }
    add_member_and_rebalance(g, new_id, j, ctx)
}

/// JoinGroup with a member id.
pub(super) fn join_current_member(
    g: &mut Group,
    j: Joining<'_, '_>,
    ctx: &mut Ctx,
) -> Answer<JoinResult> {
    let args = j.args;
    let member_id = args.member_id;
    if let Some(t) = g.pending.remove(member_id) {
        ctx.disarm(&mut Some(t));
        if args.group_instance_id.is_some() {
            return Answer::Now(join_error(member_id, UNKNOWN_SERVER_ERROR));
        }
        return add_member_and_rebalance(g, member_id.to_string(), j, ctx);
    }
    if let Err(e) = g.validate_member(member_id, args.group_instance_id) {
        return Answer::Now(join_error(member_id, e));
    }
    let matches = g
        .members
        .get(member_id)
        .is_some_and(|m| m.protocols == j.protocols);
    match g.state {
        State::Empty => Answer::Now(join_error(member_id, UNKNOWN_MEMBER_ID)),
        State::PreparingRebalance => update_member_and_rebalance(g, j, ctx),
        State::CompletingRebalance if matches => {
            // It probably missed the JoinGroup response: send the current generation again.
            Answer::Now(current_generation(g, member_id, false))
        }
        State::Stable if matches && !g.is_leader(member_id) => {
            g.refresh_session(member_id, j.now, ctx);
            Answer::Now(current_generation(g, member_id, false))
        }
        State::CompletingRebalance | State::Stable => update_member_and_rebalance(g, j, ctx),
    }
}

fn current_generation(g: &Group, member_id: &str, skip_assignment: bool) -> JoinResult {
    let leader = g.is_leader(member_id);
    JoinResult {
        error: NONE,
        generation_id: g.generation,
        protocol_type: g.protocol_type.clone(),
        protocol_name: g.protocol.clone(),
        leader: g.leader.clone().unwrap_or_default(),
        skip_assignment,
        member_id: member_id.to_string(),
        members: if leader {
            g.member_list(g.protocol.as_deref().unwrap_or(""))
        } else {
            Vec::new()
        },
    }
}

fn add_member_and_rebalance(
    g: &mut Group,
    member_id: String,
    j: Joining<'_, '_>,
    ctx: &mut Ctx,
) -> Answer<JoinResult> {
    let args = j.args;
    if g.state == State::PreparingRebalance && g.generation == 0 {
        g.new_member_added = true;
    }
    let seq = g.next_seq();
    g.add_member(Member {
        id: member_id.clone(),
        instance_id: args.group_instance_id.map(str::to_string),
        client_id: args.client_id.to_string(),
        client_host: args.client_host.to_string(),
        session_timeout: j.session,
        rebalance_timeout: j.rebalance,
        protocol_type: args.protocol_type.to_string(),
        protocols: j.protocols,
        assignment: Vec::new(),
        awaiting_join: false,
        join_waiter: None,
        awaiting_sync: false,
        sync_waiter: None,
        is_new: true,
        seq,
        session_timer: None,
    });
    g.park_join(&member_id, j.waiter, ctx);
    // A new member cannot heartbeat before its JoinGroup is answered: bound the wait instead.
    g.arm_session(&member_id, j.now + NEW_MEMBER_JOIN_TIMEOUT, ctx);
    g.maybe_prepare_rebalance(j.now, ctx);
    g.maybe_complete_join(j.now, ctx);
    Answer::Parked
}

fn update_member_and_rebalance(
    g: &mut Group,
    j: Joining<'_, '_>,
    ctx: &mut Ctx,
) -> Answer<JoinResult> {
    let member_id = j.args.member_id;
    update_member(g, member_id, &j);
    g.set_protocols(member_id, j.protocols);
    g.park_join(member_id, j.waiter, ctx);
    g.maybe_prepare_rebalance(j.now, ctx);
    g.maybe_complete_join(j.now, ctx);
    Answer::Parked
}

fn update_member(g: &mut Group, member_id: &str, j: &Joining<'_, '_>) {
    if let Some(m) = g.members.get_mut(member_id) {
        m.session_timeout = j.session;
        m.rebalance_timeout = j.rebalance;
        m.client_id = j.args.client_id.to_string();
        m.client_host = j.args.client_host.to_string();
    }
}

/// A static member rejoined with an empty member id (a restart): the new member id replaces the
/// old one, which is fenced. In Stable, when the group's protocol would not change, it gets the
/// current generation and its old assignment back with no rebalance (Kafka's
/// `updateStaticMemberAndRebalance`).
fn replace_static_member(
    g: &mut Group,
    old_id: &str,
    new_id: String,
    j: Joining<'_, '_>,
    ctx: &mut Ctx,
) -> Answer<JoinResult> {
    let was_leader = g.is_leader(old_id);
    let was_pending_sync = g.pending_sync.contains(old_id);
    let Some(mut old) = g.detach_member(old_id, ctx) else {
        return Answer::Now(join_error("", UNKNOWN_SERVER_ERROR));
    };
    ctx.send_join(
        old.join_waiter.take(),
        join_error(old_id, FENCED_INSTANCE_ID),
    );
    ctx.send_sync(old.sync_waiter.take(), sync_error(FENCED_INSTANCE_ID));
    let args = j.args;
    g.add_member(Member {
        id: new_id.clone(),
        instance_id: old.instance_id,
        client_id: args.client_id.to_string(),
        client_host: args.client_host.to_string(),
        session_timeout: j.session,
        rebalance_timeout: j.rebalance,
        protocol_type: old.protocol_type,
        protocols: old.protocols,
        assignment: old.assignment,
        awaiting_join: false,
        join_waiter: None,
        awaiting_sync: false,
        sync_waiter: None,
        is_new: false,
        seq: old.seq,
        session_timer: None,
    });
    if was_leader {
        g.leader = Some(new_id.clone());
    }
    if was_pending_sync {
        g.pending_sync.insert(new_id.clone());
    }
    g.set_protocols(&new_id, j.protocols);
    g.refresh_session(&new_id, j.now, ctx);
    match g.state {
        State::Stable if g.select_protocol() == g.protocol => {
            ctx.dirty.insert(g.id.clone());
            let leader = g.is_leader(&new_id);
            Answer::Now(current_generation(g, &new_id, leader))
        }
        State::Stable | State::CompletingRebalance | State::PreparingRebalance => {
            g.park_join(&new_id, j.waiter, ctx);
            if g.state == State::PreparingRebalance {
                g.maybe_complete_join(j.now, ctx);
            } else {
                g.prepare_rebalance(j.now, ctx);
            }
            Answer::Parked
        }
        State::Empty => Answer::Now(join_error("", UNKNOWN_SERVER_ERROR)),
    }
}
