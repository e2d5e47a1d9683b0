//! A group's in-memory state and the machinery that moves it between states (Kafka's
//! `ClassicGroup` plus the parts of `GroupMetadataManager` that prepare and complete a
//! rebalance). Timers live in `Ctx`, an ordered map of deadlines; each owner keeps the key
//! of its own entry so re-arming is O(log n).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use super::{Completion, GroupConfig, JoinMember, JoinResult, SyncResult, Waiter};
use crate::protocol::error::{NONE, REBALANCE_IN_PROGRESS, UNKNOWN_MEMBER_ID};

/// A timer's key: its deadline, then a sequence number that makes keys unique.
pub(super) type TimerId = (Instant, u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl State {
    pub(super) fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
        }
    }
}

#[derive(Clone, Debug)]
pub(super) enum Timer {
    /// A member's session (or, for a new member parked in JoinGroup, its join timeout).
    Session { group: String, member: String },
    /// A member id handed out with MEMBER_ID_REQUIRED and not used yet.
    Pending { group: String, member: String },
    /// The end of PreparingRebalance: the initial delay or the rebalance timeout.
    Join { group: String },
    /// Members that have not sent SyncGroup within the rebalance timeout are removed.
    Sync { group: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WaiterKind {
    Join,
    Sync,
}

pub(super) struct WaiterRef {
    pub group: String,
    pub member: String,
    pub kind: WaiterKind,
}

/// Everything the groups share: config, timers, completed parked requests, dirty groups.
pub(super) struct Ctx {
    pub config: GroupConfig,
    pub timers: BTreeMap<TimerId, Timer>,
    pub timer_seq: u64,
    pub completions: Vec<Completion>,
    pub waiters: HashMap<Waiter, WaiterRef>,
    pub dirty: BTreeSet<String>,
}

impl Ctx {
    pub fn new(config: GroupConfig) -> Ctx {
        Ctx {
            config,
            timers: BTreeMap::new(),
            timer_seq: 0,
            completions: Vec::new(),
            waiters: HashMap::new(),
            dirty: BTreeSet::new(),
        }
    }

    pub fn arm(&mut self, at: Instant, timer: Timer) -> TimerId {
        self.timer_seq += 1;
        let id = (at, self.timer_seq);
        self.timers.insert(id, timer);
        id
    }

    pub fn disarm(&mut self, id: &mut Option<TimerId>) {
        if let Some(id) = id.take() {
            self.timers.remove(&id);
        }
    }

    pub fn send_join(&mut self, waiter: Option<Waiter>, result: JoinResult) {
        if let Some(w) = waiter {
            self.waiters.remove(&w);
            self.completions.push(Completion::Join(w, result));
        }
    }

    pub fn send_sync(&mut self, waiter: Option<Waiter>, result: SyncResult) {
        if let Some(w) = waiter {
            self.waiters.remove(&w);
            self.completions.push(Completion::Sync(w, result));
        }
    }
}

pub(super) fn join_error(member_id: &str, error: i16) -> JoinResult {
    JoinResult {
        error,
        generation_id: -1,
        protocol_type: None,
        protocol_name: None,
        leader: String::new(),
        skip_assignment: false,
        member_id: member_id.to_string(),
        members: Vec::new(),
    }
}

pub(super) fn sync_error(error: i16) -> SyncResult {
    SyncResult {
        error,
        protocol_type: None,
        protocol_name: None,
        assignment: Vec::new(),
    }
}

pub(super) struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    /// (name, metadata) in the member's order of preference, names unique.
    pub protocols: Vec<(String, Vec<u8>)>,
    pub assignment: Vec<u8>,
    /// Has a JoinGroup in flight for the coming generation (its waiter may have been cancelled).
    pub awaiting_join: bool,
    pub join_waiter: Option<Waiter>,
    pub awaiting_sync: bool,
    pub sync_waiter: Option<Waiter>,
    /// Joined during this rebalance and never completed one (Kafka's `isNew`).
    pub is_new: bool,
    /// Join order: the order of the leader's member list and of leader elections.
    pub seq: u64,
    pub session_timer: Option<TimerId>,
}

impl Member {
    pub fn metadata(&self, protocol: &str) -> &[u8] {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.as_slice())
            .unwrap_or(&[])
    }
}

pub(super) struct Group {
    pub id: String,
    pub state: State,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: HashMap<String, Member>,
    /// group instance id → current member id
    pub static_members: HashMap<String, String>,
    /// member ids answered with MEMBER_ID_REQUIRED → their expiry timer
    pub pending: HashMap<String, TimerId>,
    /// protocol name → how many members support it
    supported: HashMap<String, usize>,
    pub num_awaiting_join: usize,
    /// A member joined during the initial delay (extends it, as Kafka's InitialDelayedJoin).
    pub new_member_added: bool,
    pub join_timer: Option<TimerId>,
    /// Set while the join timer is Kafka's InitialDelayedJoin: (this delay, remaining budget).
    pub initial_delay: Option<(Duration, Duration)>,
    pub pending_sync: HashSet<String>,
    pub sync_timer: Option<TimerId>,
    next_seq: u64,
}

impl Group {
    pub fn new(id: &str) -> Group {
        Group {
            id: id.to_string(),
            state: State::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: HashMap::new(),
            static_members: HashMap::new(),
            pending: HashMap::new(),
            supported: HashMap::new(),
            num_awaiting_join: 0,
            new_member_added: false,
            join_timer: None,
            initial_delay: None,
            pending_sync: HashSet::new(),
            sync_timer: None,
            next_seq: 0,
        }
    }

    pub fn is_leader(&self, member_id: &str) -> bool {
        self.leader.as_deref() == Some(member_id)
    }

    pub fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Kafka's `supportsProtocols`: an empty group takes any non-empty type and protocol list;
    /// otherwise the type must match and one protocol must be supported by every member.
    pub fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Vec<u8>)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        let n = self.members.len();
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|(p, _)| self.supported.get(p) == Some(&n))
    }

    /// Kafka's `validateMember`: static members are checked through their instance id.
    pub fn validate_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), i16> {
        match instance_id {
            None if self.members.contains_key(member_id) => Ok(()),
            None => Err(UNKNOWN_MEMBER_ID),
            Some(i) => match self.static_members.get(i) {
                None => Err(UNKNOWN_MEMBER_ID),
                Some(m) if m != member_id => Err(crate::protocol::error::FENCED_INSTANCE_ID),
                Some(_) => Ok(()),
            },
        }
    }

    pub fn add_member(&mut self, m: Member) {
        if self.members.is_empty() {
            self.protocol_type = Some(m.protocol_type.clone());
        }
        for (p, _) in &m.protocols {
            *self.supported.entry(p.clone()).or_default() += 1;
        }
        if m.awaiting_join {
            self.num_awaiting_join += 1;
        }
        if let Some(i) = &m.instance_id {
            self.static_members.insert(i.clone(), m.id.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(m.id.clone());
        }
        self.members.insert(m.id.clone(), m);
    }

    pub fn set_protocols(&mut self, member_id: &str, protocols: Vec<(String, Vec<u8>)>) {
        let Some(m) = self.members.get_mut(member_id) else {
            return;
        };
        for (p, _) in &m.protocols {
            decrement(&mut self.supported, p);
        }
        for (p, _) in &protocols {
            *self.supported.entry(p.clone()).or_default() += 1;
        }
        m.protocols = protocols;
    }

    /// Removes a member without answering its parked requests or touching the group state.
    pub fn detach_member(&mut self, member_id: &str, ctx: &mut Ctx) -> Option<Member> {
        let mut m = self.members.remove(member_id)?;
        ctx.disarm(&mut m.session_timer);
        for (p, _) in &m.protocols {
            decrement(&mut self.supported, p);
        }
        if m.awaiting_join {
            self.num_awaiting_join -= 1;
        }
        if let Some(i) = &m.instance_id {
            if self.static_members.get(i) == Some(&m.id) {
                self.static_members.remove(i);
            }
        }
        self.pending_sync.remove(member_id);
        if self.is_leader(member_id) {
            self.leader = self
                .members
                .values()
                .min_by_key(|m| m.seq)
                .map(|m| m.id.clone());
        }
        Some(m)
    }

    /// Removes a member; a parked JoinGroup gets UNKNOWN_MEMBER_ID so that a live client
    /// retries (as Kafka), a parked SyncGroup too.
    pub fn remove_member(&mut self, member_id: &str, ctx: &mut Ctx) {
        if let Some(mut m) = self.detach_member(member_id, ctx) {
            ctx.send_join(
                m.join_waiter.take(),
                join_error(member_id, UNKNOWN_MEMBER_ID),
            );
            ctx.send_sync(m.sync_waiter.take(), sync_error(UNKNOWN_MEMBER_ID));
        }
    }

    /// Kafka's `removeMemberAndUpdateGroup`.
    pub fn remove_and_update(&mut self, member_id: &str, now: Instant, ctx: &mut Ctx) {
        self.remove_member(member_id, ctx);
        match self.state {
            State::Empty => {}
            State::Stable | State::CompletingRebalance => self.prepare_rebalance(now, ctx),
            State::PreparingRebalance => self.maybe_complete_join(now, ctx),
        }
    }

    /// Parks a JoinGroup for `member_id`. A JoinGroup already parked for it (from an older
    /// connection) is answered REBALANCE_IN_PROGRESS so that every waiter gets one answer.
    pub fn park_join(&mut self, member_id: &str, waiter: Waiter, ctx: &mut Ctx) {
        let Some(m) = self.members.get_mut(member_id) else {
            return;
        };
        let old = m.join_waiter.replace(waiter);
        if !m.awaiting_join {
            m.awaiting_join = true;
            self.num_awaiting_join += 1;
        }
        ctx.send_join(old, join_error(member_id, REBALANCE_IN_PROGRESS));
        ctx.waiters.insert(
            waiter,
            WaiterRef {
                group: self.id.clone(),
                member: member_id.to_string(),
                kind: WaiterKind::Join,
            },
        );
    }

    pub fn park_sync(&mut self, member_id: &str, waiter: Waiter, ctx: &mut Ctx) {
        let Some(m) = self.members.get_mut(member_id) else {
            return;
        };
        let old = m.sync_waiter.replace(waiter);
        m.awaiting_sync = true;
        ctx.send_sync(old, sync_error(REBALANCE_IN_PROGRESS));
        ctx.waiters.insert(
            waiter,
            WaiterRef {
                group: self.id.clone(),
                member: member_id.to_string(),
                kind: WaiterKind::Sync,
            },
        );
    }

    /// (Re)starts a member's session timer.
    pub fn refresh_session(&mut self, member_id: &str, now: Instant, ctx: &mut Ctx) {
        if let Some(m) = self.members.get_mut(member_id) {
            let timeout = m.session_timeout;
            self.arm_session(member_id, now + timeout, ctx);
        }
    }

    pub fn arm_session(&mut self, member_id: &str, at: Instant, ctx: &mut Ctx) {
        if let Some(m) = self.members.get_mut(member_id) {
            ctx.disarm(&mut m.session_timer);
            m.session_timer = Some(ctx.arm(
                at,
                Timer::Session {
                    group: self.id.clone(),
                    member: member_id.to_string(),
                },
            ));
        }
    }

    /// The group's rebalance timeout: the largest of its members'.
    pub fn rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default()
    }

    pub fn maybe_prepare_rebalance(&mut self, now: Instant, ctx: &mut Ctx) {
        if matches!(
            self.state,
            State::Stable | State::CompletingRebalance | State::Empty
        ) {
            self.prepare_rebalance(now, ctx);
        }
    }

    /// Kafka's `prepareRebalance`: parked syncs are told to rejoin; an empty group waits the
    /// initial delay (InitialDelayedJoin), any other the rebalance timeout (DelayedJoin),
    /// completing early once everyone has rejoined.
    pub fn prepare_rebalance(&mut self, now: Instant, ctx: &mut Ctx) {
        if self.state == State::CompletingRebalance {
            for m in self.members.values_mut() {
                m.assignment.clear();
                m.awaiting_sync = false;
                ctx.send_sync(m.sync_waiter.take(), sync_error(REBALANCE_IN_PROGRESS));
            }
        }
        ctx.disarm(&mut self.sync_timer);
        self.pending_sync.clear();
        ctx.disarm(&mut self.join_timer);
        let timeout = self.rebalance_timeout();
        let group = self.id.clone();
        if self.state == State::Empty {
            let delay = ctx.config.initial_rebalance_delay;
            self.initial_delay = Some((delay, timeout.saturating_sub(delay)));
            self.join_timer = Some(ctx.arm(now + delay, Timer::Join { group }));
            self.state = State::PreparingRebalance;
        } else {
            self.initial_delay = None;
            self.join_timer = Some(ctx.arm(now + timeout, Timer::Join { group }));
            self.state = State::PreparingRebalance;
            self.maybe_complete_join(now, ctx);
        }
    }

    pub fn all_joined(&self) -> bool {
        self.members.len() == self.num_awaiting_join && self.pending.is_empty()
    }

    pub fn maybe_complete_join(&mut self, now: Instant, ctx: &mut Ctx) {
        if self.state == State::PreparingRebalance
            && self.initial_delay.is_none()
            && self.all_joined()
        {
            self.complete_join(now, ctx);
        }
    }

    /// The join timer fired.
    pub fn on_join_timer(&mut self, now: Instant, ctx: &mut Ctx) {
        self.join_timer = None;
        if let Some((delay, remaining)) = self.initial_delay {
            if self.new_member_added && !remaining.is_zero() {
                // InitialDelayedJoin: new members arrived, wait once more (within the budget).
                self.new_member_added = false;
                let next = ctx.config.initial_rebalance_delay.min(remaining);
                self.initial_delay = Some((next, remaining.saturating_sub(delay)));
                let group = self.id.clone();
                self.join_timer = Some(ctx.arm(now + next, Timer::Join { group }));
                return;
            }
        }
        self.complete_join(now, ctx);
    }

    /// Kafka's `onCompleteJoin`: drop dynamic members that did not rejoin, start the next
    /// generation, answer every parked JoinGroup (the leader gets the member list).
    pub fn complete_join(&mut self, now: Instant, ctx: &mut Ctx) {
        if self.state != State::PreparingRebalance {
            return;
        }
        ctx.disarm(&mut self.join_timer);
        self.initial_delay = None;
        self.new_member_added = false;
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.awaiting_join && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id, ctx);
        }
        if !self.members.is_empty() && !self.elect_joined_leader() {
            // Nobody rejoined (only static members remain): wait another rebalance timeout.
            let at = now + self.rebalance_timeout();
            let group = self.id.clone();
            self.join_timer = Some(ctx.arm(at, Timer::Join { group }));
            return;
        }
        self.generation = self.generation.wrapping_add(1);
        if self.members.is_empty() {
            self.protocol = None;
            self.state = State::Empty;
            ctx.dirty.insert(self.id.clone());
            return;
        }
        self.protocol = self.select_protocol();
        self.state = State::CompletingRebalance;
        let protocol = self.protocol.clone().unwrap_or_default();
        let mut leader_view = Some(self.member_list(&protocol));
        let leader = self.leader.clone().unwrap_or_default();
        let mut ids = Vec::with_capacity(self.members.len());
        for m in self.members.values_mut() {
            ids.push(m.id.clone());
            m.is_new = false;
            if !m.awaiting_join {
                continue;
            }
            m.awaiting_join = false;
            self.num_awaiting_join -= 1;
            let members = if m.id == leader {
                leader_view.take().unwrap_or_default()
            } else {
                Vec::new()
            };
            ctx.send_join(
                m.join_waiter.take(),
                JoinResult {
                    error: NONE,
                    generation_id: self.generation,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol.clone(),
                    leader: leader.clone(),
                    skip_assignment: false,
                    member_id: m.id.clone(),
                    members,
                },
            );
        }
        for id in &ids {
            self.refresh_session(id, now, ctx);
        }
        self.pending_sync = ids.into_iter().collect();
        let at = now + self.rebalance_timeout();
        let group = self.id.clone();
        self.sync_timer = Some(ctx.arm(at, Timer::Sync { group }));
    }

    /// Kafka's `maybeElectNewJoinedLeader`: the leader must be among the rejoined members.
    fn elect_joined_leader(&mut self) -> bool {
        let Some(leader) = &self.leader else {
            return false;
        };
        if self.members.get(leader).is_some_and(|m| m.awaiting_join) {
            return true;
        }
        let next = self
            .members
            .values()
            .filter(|m| m.awaiting_join)
            .min_by_key(|m| m.seq)
            .map(|m| m.id.clone());
        match next {
            Some(id) => {
                self.leader = Some(id);
                true
            }
            None => false,
        }
    }

    /// All members in join order with their metadata for `protocol` (the leader's view).
    pub fn member_list(&self, protocol: &str) -> Vec<JoinMember> {
        let mut ms: Vec<&Member> = self.members.values().collect();
        ms.sort_by_key(|m| m.seq);
        ms.into_iter()
            .map(|m| JoinMember {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                metadata: m.metadata(protocol).to_vec(),
            })
            .collect()
    }

    /// Kafka's `selectProtocol`: among the protocols every member supports, each member votes
    /// for its first; most votes wins. Kafka breaks ties by hash order; here the leader's
    /// preference order decides, so the choice is deterministic.
    pub fn select_protocol(&self) -> Option<String> {
        let n = self.members.len();
        let candidates: HashSet<&str> = self
            .supported
            .iter()
            .filter(|(_, c)| **c == n)
            .map(|(p, _)| p.as_str())
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for m in self.members.values() {
            if let Some((p, _)) = m
                .protocols
                .iter()
                .find(|(p, _)| candidates.contains(p.as_str()))
            {
                *votes.entry(p.as_str()).or_default() += 1;
            }
        }
        let best = votes.values().copied().max().unwrap_or(0);
        let leader = self.leader.as_ref().and_then(|l| self.members.get(l));
        if let Some(l) = leader {
            if let Some((p, _)) = l
                .protocols
                .iter()
                .find(|(p, _)| votes.get(p.as_str()) == Some(&best))
            {
                return Some(p.clone());
            }
        }
        let mut tied: Vec<&str> = votes
            .iter()
            .filter(|(_, v)| **v == best)
            .map(|(p, _)| *p)
            .collect();
        tied.sort_unstable();
        tied.first().map(|p| p.to_string())
    }

    /// The leader's SyncGroup: store the assignments (members it left out get an empty one),
    /// answer every parked SyncGroup and become Stable.
    pub fn apply_assignments(
        &mut self,
        assignments: &[(&str, &[u8])],
        now: Instant,
        ctx: &mut Ctx,
    ) {
        for m in self.members.values_mut() {
            m.assignment.clear();
        }
        for (id, a) in assignments {
            if let Some(m) = self.members.get_mut(*id) {
                m.assignment = a.to_vec();
            }
        }
        self.state = State::Stable;
        ctx.dirty.insert(self.id.clone());
        let mut synced = Vec::new();
        for m in self.members.values_mut() {
            if m.awaiting_sync {
                m.awaiting_sync = false;
                synced.push(m.id.clone());
                ctx.send_sync(
                    m.sync_waiter.take(),
                    SyncResult {
                        error: NONE,
                        protocol_type: self.protocol_type.clone(),
                        protocol_name: self.protocol.clone(),
                        assignment: m.assignment.clone(),
                    },
                );
            }
        }
        for id in synced {
            self.refresh_session(&id, now, ctx);
        }
    }
}

fn decrement(counts: &mut HashMap<String, usize>, key: &str) {
    if let Some(c) = counts.get_mut(key) {
        *c -= 1;
        if *c == 0 {
            counts.remove(key);
        }
    }
}
