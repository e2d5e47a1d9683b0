//! Kafka's classic consumer-group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) as a
//! pure state machine, after Kafka's `ClassicGroup` and `GroupMetadataManager`. No IO and no
//! clock: every call takes `now`; deadlines sit in an ordered map that `tick` drains.
//!
//! Parked requests: `join`/`sync` answer `Answer::Parked` when the request must wait for the
//! rebalance; its answer later comes out of `take_completions` with the caller's `Waiter`.
//! Every parked waiter gets exactly one completion unless `cancel_waiter` drops it.

mod join;
mod state;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::group::{GroupSnapshot, MemberSnapshot};
use crate::protocol::error::{
    GROUP_ID_NOT_FOUND, GROUP_MAX_SIZE_REACHED, ILLEGAL_GENERATION, INCONSISTENT_GROUP_PROTOCOL,
    INVALID_GROUP_ID, INVALID_SESSION_TIMEOUT, NONE, NON_EMPTY_GROUP, NOT_COORDINATOR,
    REBALANCE_IN_PROGRESS, UNKNOWN_MEMBER_ID, UNKNOWN_SERVER_ERROR,
};
use join::{accept_joining, join_current_member, join_new_member, Joining};
use state::{join_error, sync_error, Ctx, Group, Member, State, Timer, WaiterKind};

/// The caller's opaque handle for a parked JoinGroup/SyncGroup.
pub type Waiter = u64;

/// Kafka's `NewMemberJoinTimeoutMs`: a new member's parked JoinGroup expires after this.
const NEW_MEMBER_JOIN_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Clone, Debug)]
pub struct GroupConfig {
    pub initial_rebalance_delay: Duration,
    pub min_session_timeout: Duration,
    pub max_session_timeout: Duration,
    pub max_size: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            initial_rebalance_delay: Duration::from_secs(3),
            min_session_timeout: Duration::from_secs(6),
            max_session_timeout: Duration::from_secs(30 * 60),
            max_size: usize::MAX,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Protocol<'a> {
    pub name: &'a str,
    pub metadata: &'a [u8],
}

#[derive(Clone, Debug)]
pub struct JoinArgs<'a> {
    pub group_id: &'a str,
    pub member_id: &'a str,
    pub group_instance_id: Option<&'a str>,
    pub client_id: &'a str,
    pub client_host: &'a str,
    pub session_timeout_ms: i32,
    /// JoinGroup v0 has none: pass the session timeout.
    pub rebalance_timeout_ms: i32,
    pub protocol_type: &'a str,
    pub protocols: Vec<Protocol<'a>>,
    /// JoinGroup v4+.
    pub require_known_member_id: bool,
    pub reason: Option<&'a str>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct JoinMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct JoinResult {
    pub error: i16,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub skip_assignment: bool,
    pub member_id: String,
    /// Only for the leader.
    pub members: Vec<JoinMember>,
}

#[derive(Clone, Debug)]
pub struct SyncArgs<'a> {
    pub group_id: &'a str,
    pub generation_id: i32,
    pub member_id: &'a str,
    pub group_instance_id: Option<&'a str>,
    pub protocol_type: Option<&'a str>,
    pub protocol_name: Option<&'a str>,
    pub assignments: Vec<(&'a str, &'a [u8])>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SyncResult {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Answer<T> {
    Now(T),
    Parked,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Completion {
    Join(Waiter, JoinResult),
    Sync(Waiter, SyncResult),
}

#[derive(Clone, Debug)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Vec<u8>,
    pub assignment: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct GroupDescription {
    pub error: i16,
    /// "Empty", "PreparingRebalance", "CompletingRebalance", "Stable" or "Dead".
    pub state: &'static str,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

pub struct GroupCoordinator {
    groups: HashMap<String, Group>,
    ctx: Ctx,
    /// In a cluster: (partitions of `__consumer_offsets`, those this broker leads). A group
    /// whose partition is led elsewhere is answered NOT_COORDINATOR. `None`: every group.
    owned: Option<(i32, HashSet<i32>)>,
}

/// Names unique (the first occurrence wins), in the member's order of preference.
fn owned_protocols(protocols: &[Protocol<'_>]) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::with_capacity(protocols.len());
    for p in protocols {
        if !out.iter().any(|(n, _)| n == p.name) {
            out.push((p.name.to_string(), p.metadata.to_vec()));
        }
    }
    out
}

fn millis(ms: i32) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}

impl GroupCoordinator {
    pub fn new(config: GroupConfig) -> Self {
        GroupCoordinator {
            groups: HashMap::new(),
            ctx: Ctx::new(config),
            owned: None,
        }
    }

    /// Which groups are coordinated here (see `owned`).
    pub fn set_owned(&mut self, owned: Option<(i32, HashSet<i32>)>) {
        self.owned = owned;
    }

    /// The `__consumer_offsets` partitions whose groups are served here (none when all are).
    pub fn owned_partitions(&self) -> std::collections::HashSet<i32> {
        self.owned
            .as_ref()
            .map(|(_, led)| led.clone())
            .unwrap_or_default()
    }

    /// Whether this coordinator serves the group (its offsets partition is led here).
    pub fn owns(&self, group_id: &str) -> bool {
        match &self.owned {
            None => true,
            Some((n, led)) => {
                *n > 0 && led.contains(&crate::group::offsets::partition_for(group_id, *n))
            }
        }
    }

    pub fn join(&mut self, args: JoinArgs<'_>, waiter: Waiter, now: Instant) -> Answer<JoinResult> {
        let mark = self.ctx.completions.len();
        match self.join_inner(&args, waiter, now) {
            Answer::Now(r) => Answer::Now(r),
            Answer::Parked => match self.take_own(mark, waiter) {
                Some(Completion::Join(_, r)) => Answer::Now(r),
                _ => Answer::Parked,
            },
        }
    }

    pub fn sync(&mut self, args: SyncArgs<'_>, waiter: Waiter, now: Instant) -> Answer<SyncResult> {
        let mark = self.ctx.completions.len();
        match self.sync_inner(&args, waiter, now) {
            Answer::Now(r) => Answer::Now(r),
            Answer::Parked => match self.take_own(mark, waiter) {
                Some(Completion::Sync(_, r)) => Answer::Now(r),
                _ => Answer::Parked,
            },
        }
    }

    /// A request parked and completed within the same call is answered at once.
    fn take_own(&mut self, mark: usize, waiter: Waiter) -> Option<Completion> {
        let tail = self.ctx.completions.get(mark..)?;
        let pos = tail.iter().position(|c| match c {
            Completion::Join(w, _) | Completion::Sync(w, _) => *w == waiter,
        })?;
        Some(self.ctx.completions.remove(mark + pos))
    }

    fn join_inner(
        &mut self,
        args: &JoinArgs<'_>,
        waiter: Waiter,
        now: Instant,
    ) -> Answer<JoinResult> {
        let err = |e| Answer::Now(join_error(args.member_id, e));
        if args.group_id.is_empty() {
            return err(INVALID_GROUP_ID);
        }
        if !self.owns(args.group_id) {
            return err(NOT_COORDINATOR);
        }
        let session = millis(args.session_timeout_ms);
        if args.session_timeout_ms < 0
            || session < self.ctx.config.min_session_timeout
            || session > self.ctx.config.max_session_timeout
        {
            return err(INVALID_SESSION_TIMEOUT);
        }
        let protocols = owned_protocols(&args.protocols);
        let unknown = args.member_id.is_empty();
        if !self.groups.contains_key(args.group_id) {
            if !unknown {
                return err(UNKNOWN_MEMBER_ID);
            }
            if args.protocol_type.is_empty() || protocols.is_empty() {
                return err(INCONSISTENT_GROUP_PROTOCOL);
            }
            self.groups
                .insert(args.group_id.to_string(), Group::new(args.group_id));
        }
        let Some(g) = self.groups.get_mut(args.group_id) else {
            return err(UNKNOWN_SERVER_ERROR);
        };
        let ctx = &mut self.ctx;
        if !accept_joining(g, args.member_id, ctx.config.max_size) {
            if g.members.contains_key(args.member_id) {
                g.remove_and_update(args.member_id, now, ctx);
            }
            return Answer::Now(join_error("", GROUP_MAX_SIZE_REACHED));
        }
        if !g.supports_protocols(args.protocol_type, &protocols) {
            return err(INCONSISTENT_GROUP_PROTOCOL);
        }
        let j = Joining {
            args,
            protocols,
            session,
            // JoinGroup v0 has no rebalance timeout: the session timeout stands in for it.
            rebalance: if args.rebalance_timeout_ms > 0 {
                millis(args.rebalance_timeout_ms)
            } else {
                session
            },
            waiter,
            now,
        };
        if unknown {
            join_new_member(g, j, ctx)
        } else {
            join_current_member(g, j, ctx)
        }
    }

    fn sync_inner(
        &mut self,
        args: &SyncArgs<'_>,
        waiter: Waiter,
        now: Instant,
    ) -> Answer<SyncResult> {
        let err = |e| Answer::Now(sync_error(e));
        if !self.owns(args.group_id) {
            return err(NOT_COORDINATOR);
        }
        let Some(g) = self.groups.get_mut(args.group_id) else {
            return err(UNKNOWN_MEMBER_ID);
        };
        if let Err(e) = g.validate_member(args.member_id, args.group_instance_id) {
            return err(e);
        }
        if args.generation_id != g.generation {
            return err(ILLEGAL_GENERATION);
        }
        if args
            .protocol_type
            .is_some_and(|t| g.protocol_type.as_deref() != Some(t))
            || args
                .protocol_name
                .is_some_and(|n| g.protocol.as_deref() != Some(n))
        {
            return err(INCONSISTENT_GROUP_PROTOCOL);
        }
        let ctx = &mut self.ctx;
        match g.state {
            State::Empty => err(UNKNOWN_MEMBER_ID),
            State::PreparingRebalance => err(REBALANCE_IN_PROGRESS),
            State::CompletingRebalance => {
                g.park_sync(args.member_id, waiter, ctx);
                g.pending_sync.remove(args.member_id);
                if g.pending_sync.is_empty() {
                    ctx.disarm(&mut g.sync_timer);
                }
                if g.is_leader(args.member_id) {
                    g.apply_assignments(&args.assignments, now, ctx);
                }
                Answer::Parked
            }
            State::Stable => {
                g.pending_sync.remove(args.member_id);
                if g.pending_sync.is_empty() {
                    ctx.disarm(&mut g.sync_timer);
                }
                g.refresh_session(args.member_id, now, ctx);
                let assignment = g
                    .members
                    .get(args.member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                Answer::Now(SyncResult {
                    error: NONE,
                    protocol_type: g.protocol_type.clone(),
                    protocol_name: g.protocol.clone(),
                    assignment,
                })
            }
        }
    }

    pub fn heartbeat(
        &mut self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        now: Instant,
    ) -> i16 {
        if !self.owns(group_id) {
            return NOT_COORDINATOR;
        }
        let Some(g) = self.groups.get_mut(group_id) else {
            return UNKNOWN_MEMBER_ID;
        };
        if let Err(e) = g.validate_member(member_id, group_instance_id) {
            return e;
        }
        if generation_id != g.generation {
            return ILLEGAL_GENERATION;
        }
        match g.state {
            State::Empty => UNKNOWN_MEMBER_ID,
            State::PreparingRebalance => {
                g.refresh_session(member_id, now, &mut self.ctx);
                REBALANCE_IN_PROGRESS
            }
            State::CompletingRebalance | State::Stable => {
                g.refresh_session(member_id, now, &mut self.ctx);
                NONE
            }
        }
    }

    /// LeaveGroup: v0-2 one member by id; v3+ a batch of (member_id or "", instance id).
    /// Returns (top-level error, per-member (member_id, instance_id, error)).
    pub fn leave(
        &mut self,
        group_id: &str,
        members: &[(&str, Option<&str>)],
        now: Instant,
    ) -> (i16, Vec<(String, Option<String>, i16)>) {
        if !self.owns(group_id) {
            return (NOT_COORDINATOR, Vec::new());
        }
        let Some(g) = self.groups.get_mut(group_id) else {
            return (UNKNOWN_MEMBER_ID, Vec::new());
        };
        let ctx = &mut self.ctx;
        let mut out = Vec::with_capacity(members.len());
        for &(member_id, instance_id) in members {
            let error = if member_id.is_empty() {
                // Administrative removal by instance id.
                match instance_id.and_then(|i| g.static_members.get(i)).cloned() {
                    Some(current) => {
                        g.remove_and_update(&current, now, ctx);
                        NONE
                    }
                    None => UNKNOWN_MEMBER_ID,
                }
            } else if let Some(mut t) = g.pending.remove(member_id).map(Some) {
                ctx.disarm(&mut t);
                g.maybe_complete_join(now, ctx);
                NONE
            } else {
                match g.validate_member(member_id, instance_id) {
                    Ok(()) => {
                        g.remove_and_update(member_id, now, ctx);
                        NONE
                    }
                    Err(e) => e,
                }
            };
            out.push((
                member_id.to_string(),
                instance_id.map(str::to_string),
                error,
            ));
        }
        (NONE, out)
    }

    /// OffsetCommit: may this member commit at this generation? Kafka's `validateOffsetCommit`:
    /// generation < 0 commits (admin or assign() consumers) are allowed into an unknown or Empty
    /// group; otherwise the member must be current at the group's generation, and a group in
    /// CompletingRebalance answers REBALANCE_IN_PROGRESS. PreparingRebalance is allowed (the
    /// Java consumer commits while revoking partitions), and refreshes the session.
    pub fn validate_commit(
        &mut self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        now: Instant,
    ) -> i16 {
        self.validate_commit_inner(
            group_id,
            member_id,
            group_instance_id,
            generation_id,
            false,
            now,
        )
    }

    /// The same for TxnOffsetCommit, which older clients send without member id and generation
    /// while the group is not empty.
    pub fn validate_txn_commit(
        &mut self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        now: Instant,
    ) -> i16 {
        self.validate_commit_inner(
            group_id,
            member_id,
            group_instance_id,
            generation_id,
            true,
            now,
        )
    }

    fn validate_commit_inner(
        &mut self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        transactional: bool,
        now: Instant,
    ) -> i16 {
        if group_id.is_empty() {
            return INVALID_GROUP_ID;
        }
        if !self.owns(group_id) {
            return NOT_COORDINATOR;
        }
        let Some(g) = self.groups.get_mut(group_id) else {
            if generation_id < 0 {
                // A "simple" group: Kafka creates it Empty so that it is listed.
                self.groups
                    .insert(group_id.to_string(), Group::new(group_id));
                return NONE;
            }
            return ILLEGAL_GENERATION;
        };
        if generation_id < 0 && g.state == State::Empty {
            return NONE;
        }
        if generation_id >= 0 || !member_id.is_empty() || instance_id.is_some() {
            if let Err(e) = g.validate_member(member_id, instance_id) {
                return e;
            }
            if generation_id != g.generation {
                return ILLEGAL_GENERATION;
            }
        } else if !transactional && g.state != State::Empty {
            return UNKNOWN_MEMBER_ID;
        }
        if !transactional && g.state == State::CompletingRebalance {
            return REBALANCE_IN_PROGRESS;
        }
        if matches!(g.state, State::Stable | State::PreparingRebalance)
            && g.members.contains_key(member_id)
        {
            g.refresh_session(member_id, now, &mut self.ctx);
        }
        NONE
    }

    pub fn group_exists(&self, group_id: &str) -> bool {
        self.groups.contains_key(group_id)
    }

    /// Makes an Empty group exist (e.g. a group known only from its committed offsets at load).
    pub fn ensure_group(&mut self, group_id: &str) {
        if !group_id.is_empty() && !self.groups.contains_key(group_id) {
            self.groups
                .insert(group_id.to_string(), Group::new(group_id));
        }
    }

    /// DescribeGroups for one group; an unknown group is "Dead" with error NONE, as Kafka.
    pub fn describe(&self, group_id: &str) -> GroupDescription {
        if !self.owns(group_id) {
            return GroupDescription {
                error: NOT_COORDINATOR,
                state: "",
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
            };
        }
        let Some(g) = self.groups.get(group_id) else {
            return GroupDescription {
                error: NONE,
                state: "Dead",
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
            };
        };
        // As Kafka: metadata, assignment and protocol are shown only when Stable.
        let stable = g.state == State::Stable;
        let protocol = if stable {
            g.protocol.clone().unwrap_or_default()
        } else {
            String::new()
        };
        let mut ms: Vec<&Member> = g.members.values().collect();
        ms.sort_by_key(|m| m.seq);
        let members = ms
            .into_iter()
            .map(|m| MemberDescription {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable {
                    m.metadata(&protocol).to_vec()
                } else {
                    Vec::new()
                },
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Vec::new()
                },
            })
            .collect();
        GroupDescription {
            error: NONE,
            state: g.state.name(),
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol,
            members,
        }
    }

    /// ListGroups: (group, protocol type, state), sorted by group id.
    pub fn list(&self) -> Vec<(String, String, &'static str)> {
        let mut out: Vec<(String, String, &'static str)> = self
            .groups
            .values()
            .map(|g| {
                (
                    g.id.clone(),
                    g.protocol_type.clone().unwrap_or_default(),
                    g.state.name(),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// DeleteGroups for one group: NONE (now gone; its snapshot is None), NON_EMPTY_GROUP, or
    /// GROUP_ID_NOT_FOUND.
    pub fn delete(&mut self, group_id: &str) -> i16 {
        if !self.owns(group_id) {
            return NOT_COORDINATOR;
        }
        let Some(g) = self.groups.get_mut(group_id) else {
            return GROUP_ID_NOT_FOUND;
        };
        if g.state != State::Empty {
            return NON_EMPTY_GROUP;
        }
        for (_, t) in g.pending.drain() {
            self.ctx.timers.remove(&t);
        }
        self.ctx.disarm(&mut g.join_timer);
        self.ctx.disarm(&mut g.sync_timer);
        self.groups.remove(group_id);
        self.ctx.dirty.insert(group_id.to_string());
        NONE
    }

    /// Empty or unknown.
    pub fn is_empty_group(&self, group_id: &str) -> bool {
        self.groups
            .get(group_id)
            .is_none_or(|g| g.state == State::Empty)
    }

    /// Fires every timer due at `now`: session expiry, pending-member expiry, the end of the
    /// initial delay or rebalance timeout, the SyncGroup timeout.
    pub fn tick(&mut self, now: Instant) {
        while let Some((&id, _)) = self.ctx.timers.first_key_value() {
            if id.0 > now {
                break;
            }
            let Some((_, timer)) = self.ctx.timers.pop_first() else {
                break;
            };
            // A late tick acts as if each timer fired on time, so chained timers (the
            // initial delay's extensions) keep their spacing.
            self.fire(id, timer, id.0);
        }
    }

    fn fire(&mut self, id: state::TimerId, timer: Timer, now: Instant) {
        let ctx = &mut self.ctx;
        match timer {
            Timer::Session { group, member } => {
                let Some(g) = self.groups.get_mut(&group) else {
                    return;
                };
                let Some(m) = g.members.get_mut(&member) else {
                    return;
                };
                if m.session_timer != Some(id) {
                    return;
                }
                m.session_timer = None;
                // Members in a rebalance are kept alive (checked again a session later; the
                // session restarts when the rebalance completes), except new members parked
                // too long in JoinGroup.
                if m.awaiting_sync || (m.awaiting_join && !m.is_new) {
                    g.refresh_session(&member, now, ctx);
                    return;
                }
                g.remove_and_update(&member, now, ctx);
            }
            Timer::Pending { group, member } => {
                let Some(g) = self.groups.get_mut(&group) else {
                    return;
                };
                if g.pending.get(&member) == Some(&id) {
                    g.pending.remove(&member);
                    g.maybe_complete_join(now, ctx);
                }
            }
            Timer::Join { group } => {
                let Some(g) = self.groups.get_mut(&group) else {
                    return;
                };
                if g.join_timer == Some(id) {
                    g.on_join_timer(now, ctx);
                }
            }
            Timer::Sync { group } => {
                let Some(g) = self.groups.get_mut(&group) else {
                    return;
                };
                if g.sync_timer != Some(id) {
                    return;
                }
                g.sync_timer = None;
                if !matches!(g.state, State::CompletingRebalance | State::Stable) {
                    return;
                }
                let late: Vec<String> = g.pending_sync.drain().collect();
                if late.is_empty() {
                    return;
                }
                for m in &late {
                    g.remove_member(m, ctx);
                }
                g.prepare_rebalance(now, ctx);
            }
        }
    }

    /// Parked joins/syncs completed by join/sync/leave/tick calls since the last call.
    pub fn take_completions(&mut self, out: &mut Vec<Completion>) {
        out.append(&mut self.ctx.completions);
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.ctx.timers.first_key_value().map(|(k, _)| k.0)
    }

    /// The connection of a parked request closed: drop the request. The member stays (and,
    /// for a JoinGroup, still counts as rejoined) until its session expires, as in Kafka.
    pub fn cancel_waiter(&mut self, waiter: Waiter) {
        let Some(w) = self.ctx.waiters.remove(&waiter) else {
            return;
        };
        let m = self
            .groups
            .get_mut(&w.group)
            .and_then(|g| g.members.get_mut(&w.member));
        if let Some(m) = m {
            match w.kind {
                WaiterKind::Join if m.join_waiter == Some(waiter) => m.join_waiter = None,
                WaiterKind::Sync if m.sync_waiter == Some(waiter) => m.sync_waiter = None,
                _ => {}
            }
        }
    }

    /// Groups whose durable state changed since the last call (new generation stored by the
    /// leader's SyncGroup, emptied, static member replaced, deleted).
    pub fn take_dirty(&mut self) -> Vec<String> {
        std::mem::take(&mut self.ctx.dirty).into_iter().collect()
    }

    /// The group's GroupMetadataValue; None for an unknown (deleted) group: write a tombstone.
    pub fn snapshot(&self, group_id: &str) -> Option<GroupSnapshot> {
        let g = self.groups.get(group_id)?;
        let protocol = g.protocol.clone().unwrap_or_default();
        let mut ms: Vec<&Member> = g.members.values().collect();
        ms.sort_by_key(|m| m.seq);
        Some(GroupSnapshot {
            group_id: g.id.clone(),
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            generation: g.generation,
            protocol: g.protocol.clone(),
            leader: g.leader.clone(),
            current_state_timestamp: -1,
            members: ms
                .into_iter()
                .map(|m| MemberSnapshot {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout.as_millis().min(i32::MAX as u128)
                        as i32,
                    session_timeout_ms: m.session_timeout.as_millis().min(i32::MAX as u128) as i32,
                    subscription: m.metadata(&protocol).to_vec(),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        })
    }

    /// Replays a stored group at start: Stable with its members (sessions start at `now`),
    /// or Empty when it has none. Replaces any group of that id.
    pub fn restore(&mut self, s: GroupSnapshot, now: Instant) {
        if s.group_id.is_empty() {
            return;
        }
        if let Some(mut old) = self.groups.remove(&s.group_id) {
            let ids: Vec<String> = old.members.keys().cloned().collect();
            for id in ids {
                old.remove_member(&id, &mut self.ctx);
            }
            for (_, t) in old.pending.drain() {
                self.ctx.timers.remove(&t);
            }
            self.ctx.disarm(&mut old.join_timer);
            self.ctx.disarm(&mut old.sync_timer);
        }
        let mut g = Group::new(&s.group_id);
        g.generation = s.generation;
        g.protocol_type = if s.protocol_type.is_empty() && s.members.is_empty() {
            None
        } else {
            Some(s.protocol_type.clone())
        };
        let protocol = s.protocol.clone().unwrap_or_default();
        for ms in s.members {
            if ms.member_id.is_empty() || g.members.contains_key(&ms.member_id) {
                continue;
            }
            let seq = g.next_seq();
            g.add_member(Member {
                id: ms.member_id,
                instance_id: ms.group_instance_id,
                client_id: ms.client_id,
                client_host: ms.client_host,
                session_timeout: millis(ms.session_timeout_ms),
                rebalance_timeout: millis(ms.rebalance_timeout_ms),
                protocol_type: s.protocol_type.clone(),
                protocols: vec![(protocol.clone(), ms.subscription)],
                assignment: ms.assignment,
                awaiting_join: false,
                join_waiter: None,
                awaiting_sync: false,
                sync_waiter: None,
                is_new: false,
                seq,
                session_timer: None,
            });
        }
        if g.members.is_empty() {
            g.state = State::Empty;
            g.protocol = None;
            g.leader = None;
        } else {
            g.state = State::Stable;
            g.protocol = s.protocol;
            if let Some(l) = s.leader.filter(|l| g.members.contains_key(l)) {
                g.leader = Some(l);
            }
            let ids: Vec<String> = g.members.keys().cloned().collect();
            for id in ids {
                g.refresh_session(&id, now, &mut self.ctx);
            }
        }
        self.groups.insert(s.group_id, g);
    }
}
