//! Deterministic simulation of a quorum in one process: N [`Quorum`]s over [`MemLog`]s, a network
//! driven by a seeded RNG that drops, duplicates, delays (so reorders) and partitions messages, and
//! a clock advanced explicitly from event to event. Every scenario runs for many seeds; a failing
//! seed replays exactly (the election timeouts come from the seed too).
//!
//! Checked on every step: at most one leader per term; every entry applied by any node equals what
//! every other node applied at that index (so committed prefixes and apply order agree); each node
//! applies indexes in order without gaps (a snapshot counts as applying everything it covers).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use raft::eraftpb::{Entry, EntryType, MessageType};

use super::*;

const SEEDS: u64 = 50;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn permille(&mut self, p: u64) -> bool {
        self.below(1000) < p
    }
}

/// The state machine: the list of applied non-empty entries.
#[derive(Clone, Default)]
struct Sm {
    applied: u64,
    items: Vec<Vec<u8>>,
    restores: u32,
}

impl Sm {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for it in &self.items {
            out.extend_from_slice(&(it.len() as u32).to_be_bytes());
            out.extend_from_slice(it);
        }
        out
    }

    fn decode(mut b: &[u8]) -> Vec<Vec<u8>> {
        let mut items = Vec::new();
        while b.len() >= 4 {
            let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
            items.push(b[4..4 + n].to_vec());
            b = &b[4 + n..];
        }
        items
    }
}

struct Node {
    q: Quorum<MemLog>,
    sm: Sm,
}

struct Flight {
    at: u64,
    seq: u64,
    from: u64,
    to: u64,
    bytes: Vec<u8>,
}

struct Net {
    drop_permille: u64,
    dup_permille: u64,
    min_delay: u64,
    max_delay: u64,
    blocked: BTreeSet<(u64, u64)>,
}

struct Cluster {
    seed: u64,
    rng: Rng,
    t0: Instant,
    now: u64,
    ids: Vec<u64>,
    nodes: BTreeMap<u64, Node>,
    disks: BTreeMap<u64, MemLog>,
    flights: Vec<Flight>,
    seq: u64,
    net: Net,
    leaders: BTreeMap<u64, u64>,
    committed: BTreeMap<u64, (u64, Vec<u8>)>,
}

fn config(id: u64, ids: &[u64], seed: u64) -> QuorumConfig {
    let mut c = QuorumConfig::new(id, ids.to_vec());
    c.seed = seed.wrapping_mul(1_000_003).wrapping_add(id);
    c
}

impl Cluster {
    fn new(seed: u64, n: u64) -> Cluster {
        let ids: Vec<u64> = (1..=n).collect();
        let t0 = Instant::now();
        let nodes = ids
            .iter()
            .map(|&id| {
                let q = Quorum::new(config(id, &ids, seed), MemLog::new(), t0).unwrap();
                (
                    id,
                    Node {
                        q,
                        sm: Sm::default(),
                    },
                )
            })
            .collect();
        Cluster {
            seed,
            rng: Rng(seed ^ 0x5eed),
            t0,
            now: 0,
            ids,
            nodes,
            disks: BTreeMap::new(),
            flights: Vec::new(),
            seq: 0,
            net: Net {
                drop_permille: 50,
                dup_permille: 20,
                min_delay: 1,
                max_delay: 30,
                blocked: BTreeSet::new(),
            },
            leaders: BTreeMap::new(),
            committed: BTreeMap::new(),
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn ms(&self, t: Instant) -> u64 {
        t.duration_since(self.t0).as_millis() as u64
    }

    /// Runs the cluster for `ms` of simulated time.
    fn run(&mut self, ms: u64) {
        let end = self.now + ms;
        self.run_until(end, |_| false);
    }

    /// Runs until `done` holds (checked after every step) or `limit` ms pass; returns the elapsed ms.
    fn run_until(&mut self, end: u64, mut done: impl FnMut(&Cluster) -> bool) -> Option<u64> {
        let start = self.now;
        loop {
            self.step_once();
            if done(self) {
                return Some(self.now - start);
            }
            if self.now >= end {
                return None;
            }
            let next_flight = self.flights.iter().map(|f| f.at).min().unwrap_or(u64::MAX);
            let next_tick = self
                .nodes
                .values()
                .map(|n| self.ms(n.q.next_tick()))
                .min()
                .unwrap_or(u64::MAX);
            self.now = next_flight.min(next_tick).min(end).max(self.now + 1);
        }
    }

    fn wait(&mut self, limit: u64, what: &str, done: impl FnMut(&Cluster) -> bool) -> u64 {
        let end = self.now + limit;
        match self.run_until(end, done) {
            Some(t) => t,
            None => panic!("seed {}: {what} not reached within {limit} ms", self.seed),
        }
    }

    fn step_once(&mut self) {
        let now = self.now;
        let mut due: Vec<Flight> = Vec::new();
        let mut i = 0;
        while i < self.flights.len() {
            if self.flights[i].at <= now {
                due.push(self.flights.swap_remove(i));
            } else {
                i += 1;
            }
        }
        due.sort_by_key(|f| (f.at, f.seq));
        for f in due {
            if let Some(n) = self.nodes.get_mut(&f.to) {
                let msg = decode_message(&f.bytes).expect("our own encoding decodes");
                assert_eq!(msg.from, f.from);
                // Stale or unexpected messages are refused by raft-rs with an error; fine.
                let _ = n.q.step(msg);
            }
        }
        let t = self.at(now);
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for id in ids {
            self.nodes.get_mut(&id).unwrap().q.tick(t);
            self.poll(id);
        }
    }

    fn poll(&mut self, id: u64) {
        let node = self.nodes.get_mut(&id).unwrap();
        let out = node.q.poll().unwrap();
        let st = node.q.state();
        if let Some(snap) = out.snapshot {
            // Whatever a snapshot covers must be what the cluster committed up to its index.
            let expect: Vec<Vec<u8>> = self
                .committed
                .range(..=snap.index)
                .filter(|(_, (_, d))| !d.is_empty())
                .map(|(_, (_, d))| d.clone())
                .collect();
            let items = Sm::decode(&snap.data);
            assert_eq!(
                items, expect,
                "seed {}: node {id} snapshot content",
                self.seed
            );
            node.sm = Sm {
                applied: snap.index,
                items,
                restores: node.sm.restores + 1,
            };
        }
        for c in out.committed {
            assert_eq!(
                c.index,
                node.sm.applied + 1,
                "seed {}: node {id} applies out of order",
                self.seed
            );
            node.sm.applied = c.index;
            if !c.data.is_empty() {
                node.sm.items.push(c.data.clone());
            }
            match self.committed.get(&c.index) {
                Some(prev) => assert_eq!(
                    prev,
                    &(c.term, c.data),
                    "seed {}: node {id} applied a different entry at {}",
                    self.seed,
                    c.index
                ),
                None => {
                    self.committed.insert(c.index, (c.term, c.data));
                }
            }
        }
        if st.role == Role::Leader {
            let l = *self.leaders.entry(st.term).or_insert(id);
            assert_eq!(l, id, "seed {}: two leaders in term {}", self.seed, st.term);
        }
        for m in out.send_now.into_iter().chain(out.send_after_sync) {
            self.route(id, m);
        }
    }

    fn route(&mut self, from: u64, m: Outbound) {
        if self.net.blocked.contains(&(from, m.to)) || self.rng.permille(self.net.drop_permille) {
            return;
        }
        let copies = if self.rng.permille(self.net.dup_permille) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let span = self.net.max_delay - self.net.min_delay + 1;
            let at = self.now + self.net.min_delay + self.rng.below(span);
            self.seq += 1;
            self.flights.push(Flight {
                at,
                seq: self.seq,
                from,
                to: m.to,
                bytes: m.bytes.clone(),
            });
        }
    }

    /// The leader of the highest term among live nodes, if it is still leader.
    fn leader(&self) -> Option<u64> {
        let top = self.nodes.values().map(|n| n.q.state().term).max()?;
        self.nodes
            .iter()
            .find(|(_, n)| n.q.is_leader() && n.q.state().term == top)
            .map(|(&id, _)| id)
    }

    fn wait_leader(&mut self, limit: u64) -> (u64, u64) {
        let t = self.wait(limit, "a leader", |c| c.leader().is_some());
        (self.leader().unwrap(), t)
    }

    /// Proposes `n` entries on the leader; returns their (index, term, data).
    fn propose(&mut self, leader: u64, tag: &str, n: usize) -> Vec<(u64, u64, Vec<u8>)> {
        let mut out = Vec::new();
        for i in 0..n {
            let data = format!("{tag}-{i}").into_bytes();
            let q = &mut self.nodes.get_mut(&leader).unwrap().q;
            let index = q.propose(data.clone()).unwrap();
            out.push((index, q.state().term, data));
            if i % 4 == 3 {
                // Let the network work between bursts.
                let end = self.now + 3;
                self.run_until(end, |_| false);
            }
        }
        out
    }

    fn applied_everywhere(&self, index: u64) -> bool {
        self.nodes.values().all(|n| n.sm.applied >= index)
    }

    fn wait_applied(&mut self, index: u64, limit: u64) {
        self.wait(limit, "apply on every live node", |c| {
            c.applied_everywhere(index)
        });
    }

    fn assert_committed(&self, entries: &[(u64, u64, Vec<u8>)]) {
        for (index, term, data) in entries {
            assert_eq!(
                self.committed.get(index),
                Some(&(*term, data.clone())),
                "seed {}: proposal at {index} lost",
                self.seed
            );
        }
    }

    fn crash(&mut self, id: u64) {
        let n = self.nodes.remove(&id).unwrap();
        self.disks.insert(id, n.q.log().clone());
    }

    fn restart(&mut self, id: u64, wiped: bool) {
        let log = if wiped {
            MemLog::new()
        } else {
            self.disks.remove(&id).unwrap()
        };
        let q = Quorum::new(config(id, &self.ids, self.seed + 7), log, self.at(self.now)).unwrap();
        self.nodes.insert(
            id,
            Node {
                q,
                sm: Sm::default(),
            },
        );
    }

    fn partition(&mut self, side: &[u64]) {
        for &a in &self.ids {
            for &b in &self.ids {
                if side.contains(&a) != side.contains(&b) {
                    self.net.blocked.insert((a, b));
                }
            }
        }
    }

    fn heal(&mut self) {
        self.net.blocked.clear();
    }

    /// Live nodes agree on their state machines and, over their common committed range, on
    /// their logs' terms (Log Matching).
    fn assert_converged(&self) {
        let mut iter = self.nodes.iter();
        let (&first_id, first) = iter.next().unwrap();
        for (&id, n) in iter {
            assert_eq!(
                (n.sm.applied, &n.sm.items),
                (first.sm.applied, &first.sm.items),
                "seed {}: nodes {first_id} and {id} differ",
                self.seed
            );
        }
        for (&a, na) in &self.nodes {
            for (&b, nb) in &self.nodes {
                let (la, lb) = (na.q.log(), nb.q.log());
                let lo = la.first_index().max(lb.first_index());
                let hi = na.q.state().commit.min(nb.q.state().commit);
                for i in lo..=hi {
                    assert_eq!(la.term(i), lb.term(i), "seed {}: {a}/{b} at {i}", self.seed);
                }
            }
        }
    }

    fn sm_snapshot(&self, id: u64) -> (u64, Vec<u8>) {
        let n = &self.nodes[&id];
        (n.sm.applied, n.sm.encode())
    }
}

fn for_seeds(f: impl Fn(u64)) {
    for seed in 0..SEEDS {
        f(seed);
    }
}

/// Election timeout (1 s) plus its random spread (0.5 s).
const MAX_TIMEOUT: u64 = 1500;

#[test]
fn elects_one_leader_3_and_5() {
    for n in [3, 5] {
        for_seeds(|seed| {
            let mut c = Cluster::new(seed, n);
            let (leader, _) = c.wait_leader(6 * MAX_TIMEOUT);
            // Stable: heartbeats keep it leader, nobody else gets elected.
            c.run(5000);
            assert_eq!(
                c.leader(),
                Some(leader),
                "seed {seed}: leader changed while healthy"
            );
            assert_eq!(c.leaders.len(), 1, "seed {seed}: more than one election");
        });
    }
}

#[test]
fn proposals_commit_on_majority_in_the_same_order_everywhere() {
    for n in [3, 5] {
        for_seeds(|seed| {
            let mut c = Cluster::new(seed, n);
            let (leader, _) = c.wait_leader(6 * MAX_TIMEOUT);
            let props = c.propose(leader, "p", 40);
            let last = props.last().unwrap().0;
            c.wait_applied(last, 3000);
            c.assert_committed(&props);
            // Indexes were handed out in proposal order.
            assert!(props.windows(2).all(|w| w[1].0 == w[0].0 + 1));
            c.assert_converged();
            let st = c.nodes[&leader].q.state();
            assert_eq!(st.commit, last);
            // The leader learns each follower's log end from its acknowledgements.
            c.wait(1000, "all acknowledgements", |c| {
                let progress = c.nodes[&leader].q.voter_progress().unwrap();
                progress.len() == n as usize
                    && progress.iter().all(|p| p.match_index == last && p.lag == 0)
            });
        });
    }
}

#[test]
fn leader_killed_another_elected_and_committed_entries_survive() {
    for n in [3, 5] {
        let mut times = Vec::new();
        for seed in 0..SEEDS {
            let mut c = Cluster::new(seed, n);
            let (old, _) = c.wait_leader(6 * MAX_TIMEOUT);
            let first = c.propose(old, "before", 20);
            // Wait until the leader applied them: committed on a majority, not necessarily all.
            let last = first.last().unwrap().0;
            c.wait(3000, "leader applies", |c| c.nodes[&old].sm.applied >= last);
            let old_term = c.nodes[&old].q.state().term;
            c.crash(old);
            let t = c.wait(4 * MAX_TIMEOUT, "a new leader", |c| {
                c.leader().is_some_and(|l| l != old)
            });
            times.push(t);
            let new = c.leader().unwrap();
            assert!(c.nodes[&new].q.state().term > old_term);
            let second = c.propose(new, "after", 20);
            c.wait_applied(second.last().unwrap().0, 3000);
            c.assert_committed(&first);
            c.assert_committed(&second);
            c.assert_converged();
            // The old leader comes back as a follower and catches up.
            c.restart(old, false);
            c.wait_applied(second.last().unwrap().0, 3000);
            c.assert_converged();
        }
        times.sort_unstable();
        let (median, max) = (times[times.len() / 2], *times.last().unwrap());
        eprintln!("{n} voters, leader killed -> new leader: median {median} ms, max {max} ms");
        // A follower notices within its randomized timeout (1-1.5 s after the last heartbeat);
        // pre-vote and vote take a few round trips; a split vote costs another timeout.
        assert!(median <= MAX_TIMEOUT + 200, "median failover {median} ms");
        assert!(max <= 3 * MAX_TIMEOUT, "max failover {max} ms");
    }
}

#[test]
fn partitioned_old_leader_cannot_commit_and_is_truncated() {
    for_seeds(|seed| {
        let mut c = Cluster::new(seed, 5);
        let (old, _) = c.wait_leader(6 * MAX_TIMEOUT);
        let base = c.propose(old, "base", 10);
        c.wait_applied(base.last().unwrap().0, 3000);
        let commit0 = c.nodes[&old].q.state().commit;
        let buddy = *c.ids.iter().find(|&&i| i != old).unwrap();
        c.partition(&[old, buddy]);
        // The old leader still believes it leads for a while: it accepts proposals...
        let stale = c.propose(old, "stale", 5);
        // ...and the majority elects a new leader and commits there.
        let new = c.wait(4 * MAX_TIMEOUT, "a majority-side leader", |c| {
            c.leader().is_some_and(|l| l != old && l != buddy)
        });
        let _ = new;
        let new = c.leader().unwrap();
        let fresh = c.propose(new, "fresh", 10);
        let last = fresh.last().unwrap().0;
        c.wait(3000, "majority applies", |c| {
            c.nodes
                .iter()
                .filter(|(&id, _)| id != old && id != buddy)
                .all(|(_, n)| n.sm.applied >= last)
        });
        // Check-quorum: the old leader stepped down; it never committed past the partition.
        c.run(MAX_TIMEOUT);
        assert!(
            !c.nodes[&old].q.is_leader(),
            "seed {seed}: old leader kept leading"
        );
        assert_eq!(
            c.nodes[&old].q.state().commit,
            commit0,
            "seed {seed}: minority committed"
        );
        assert_eq!(c.nodes[&buddy].q.state().commit, commit0);
        c.heal();
        c.wait_applied(last, 3 * MAX_TIMEOUT);
        c.assert_committed(&fresh);
        // The stale suffix was overwritten everywhere (the same index now holds another entry).
        for (index, term, data) in &stale {
            assert_ne!(c.committed.get(index), Some(&(*term, data.clone())));
            for n in c.nodes.values() {
                assert_ne!(
                    n.q.log().term(*index),
                    Some(*term),
                    "seed {seed}: stale entry kept"
                );
            }
        }
        c.assert_converged();
    });
}

#[test]
fn restarted_node_catches_up_from_its_log() {
    for_seeds(|seed| {
        let mut c = Cluster::new(seed, 3);
        let (leader, _) = c.wait_leader(6 * MAX_TIMEOUT);
        let a = c.propose(leader, "a", 20);
        c.wait_applied(a.last().unwrap().0, 3000);
        let f = *c.ids.iter().find(|&&i| i != leader).unwrap();
        c.crash(f);
        let b = c.propose(leader, "b", 30);
        c.wait_applied(b.last().unwrap().0, 3000);
        let hs = c.disks[&f].hard_state();
        assert!(hs.term > 0 && hs.commit >= a.last().unwrap().0);
        c.restart(f, false);
        c.wait_applied(b.last().unwrap().0, 3 * MAX_TIMEOUT);
        c.assert_committed(&a);
        c.assert_committed(&b);
        c.assert_converged();
        assert_eq!(c.nodes[&f].sm.restores, 0);
    });
}

#[test]
fn wiped_node_catches_up_from_a_snapshot() {
    for_seeds(|seed| {
        let mut c = Cluster::new(seed, 3);
        let (leader, _) = c.wait_leader(6 * MAX_TIMEOUT);
        let a = c.propose(leader, "a", 30);
        c.wait_applied(a.last().unwrap().0, 3000);
        // Every node snapshots its state machine and compacts its log.
        for id in c.ids.clone() {
            let (index, data) = c.sm_snapshot(id);
            c.nodes
                .get_mut(&id)
                .unwrap()
                .q
                .compact(index, data)
                .unwrap();
            assert_eq!(c.nodes[&id].q.log().first_index(), index + 1);
        }
        let f = *c.ids.iter().find(|&&i| i != leader).unwrap();
        c.crash(f);
        let b = c.propose(leader, "b", 10);
        c.wait(3000, "leader applies", |c| {
            c.nodes[&leader].sm.applied >= b.last().unwrap().0
        });
        c.restart(f, true);
        c.wait_applied(b.last().unwrap().0, 3 * MAX_TIMEOUT);
        assert!(
            c.nodes[&f].sm.restores >= 1,
            "seed {seed}: no snapshot installed"
        );
        assert!(c.nodes[&f].q.log().snapshot_id().0 >= a.last().unwrap().0);
        c.assert_committed(&a);
        c.assert_committed(&b);
        c.assert_converged();
        // And it keeps replicating normally afterwards.
        let leader = c.leader().unwrap();
        let d = c.propose(leader, "d", 5);
        c.wait_applied(d.last().unwrap().0, 3000);
        c.assert_converged();
    });
}

#[test]
fn wiped_node_catches_up_without_compaction() {
    for_seeds(|seed| {
        let mut c = Cluster::new(seed, 3);
        let (leader, _) = c.wait_leader(6 * MAX_TIMEOUT);
        let a = c.propose(leader, "a", 10);
        c.wait_applied(a.last().unwrap().0, 3000);
        let f = *c.ids.iter().find(|&&i| i != leader).unwrap();
        c.crash(f);
        c.run(200);
        c.restart(f, true);
        c.wait_applied(a.last().unwrap().0, 3 * MAX_TIMEOUT);
        c.assert_converged();
    });
}

#[test]
fn single_voter_leads_at_once_and_commits_alone() {
    let t0 = Instant::now();
    let mut q = Quorum::new(QuorumConfig::new(1, vec![1]), MemLog::new(), t0).unwrap();
    // Leader before any tick or poll.
    assert!(q.is_leader());
    assert_eq!(q.state().leader, Some(1));
    let out = q.poll().unwrap();
    assert!(out.must_sync && out.leader_changed);
    assert!(out.send_now.is_empty() && out.send_after_sync.is_empty());
    // The leader's no-op is committed by the first poll.
    assert_eq!(out.committed.len(), 1);
    assert!(out.committed[0].data.is_empty());
    let mut applied = Vec::new();
    for i in 0..10u8 {
        let index = q.propose(vec![i]).unwrap();
        let out = q.poll().unwrap();
        assert_eq!(out.committed.len(), 1, "committed in the same poll");
        assert_eq!(out.committed[0].index, index);
        applied.push(out.committed[0].data.clone());
    }
    assert_eq!(q.state().commit, 11);
    assert_eq!(q.propose(vec![]), Err(ProposeError::Empty));
    // Snapshot, then restart from the stored log: leader again at once, state restored.
    q.compact(6, b"upto6".to_vec()).unwrap();
    let log = q.log().clone();
    let mut q = Quorum::new(QuorumConfig::new(1, vec![1]), log, t0).unwrap();
    assert!(q.is_leader());
    assert_eq!(q.state().term, 2);
    let out = q.poll().unwrap();
    let snap = out.snapshot.unwrap();
    assert_eq!(
        (snap.index, snap.term, &snap.data[..]),
        (6, 1, &b"upto6"[..])
    );
    let idx: Vec<u64> = out.committed.iter().map(|c| c.index).collect();
    assert_eq!(idx, vec![7, 8, 9, 10, 11, 12]);
    assert_eq!(out.committed[0].data, vec![5]);
    assert!(!q.has_ready());
    // No time passed at all.
    q.tick(t0);
    assert!(q.is_leader());
}

#[test]
fn followers_refuse_proposals_with_the_leader_hint() {
    let mut c = Cluster::new(1, 3);
    let (leader, _) = c.wait_leader(6 * MAX_TIMEOUT);
    c.run(500);
    let f = *c.ids.iter().find(|&&i| i != leader).unwrap();
    let r = c.nodes.get_mut(&f).unwrap().q.propose(b"x".to_vec());
    assert_eq!(
        r,
        Err(ProposeError::NotLeader {
            leader: Some(leader)
        })
    );
    assert!(c.nodes[&f].q.voter_progress().is_none());
}

#[test]
fn malformed_messages_are_refused() {
    let mut c = Cluster::new(3, 3);
    let (leader, _) = c.wait_leader(6 * MAX_TIMEOUT);
    let props = c.propose(leader, "x", 5);
    c.wait_applied(props.last().unwrap().0, 3000);
    let f = *c.ids.iter().find(|&&i| i != leader).unwrap();
    let term = c.nodes[&f].q.state().term;
    let base = || {
        let mut m = Message {
            to: f,
            from: leader,
            term,
            ..Default::default()
        };
        m.set_msg_type(MessageType::MsgAppend);
        m
    };
    let q = &mut c.nodes.get_mut(&f).unwrap().q;
    let mut m = base();
    m.to = 99;
    assert!(matches!(q.step(m), Err(StepError::WrongDestination { .. })));
    let mut m = base();
    m.from = 42;
    assert!(matches!(q.step(m), Err(StepError::UnknownSender { .. })));
    let mut m = base();
    m.from = f;
    assert!(matches!(q.step(m), Err(StepError::UnknownSender { .. })));
    let mut m = base();
    m.term = 0;
    assert!(matches!(q.step(m), Err(StepError::NoTerm)));
    for t in [
        MessageType::MsgHup,
        MessageType::MsgBeat,
        MessageType::MsgPropose,
        MessageType::MsgUnreachable,
        MessageType::MsgSnapStatus,
        MessageType::MsgCheckQuorum,
        MessageType::MsgTransferLeader,
        MessageType::MsgReadIndex,
        MessageType::MsgReadIndexResp,
    ] {
        let mut m = base();
        m.set_msg_type(t);
        assert!(matches!(q.step(m), Err(StepError::NotAllowed(_))), "{t:?}");
    }
    let entry = |index: u64, ty: EntryType| {
        let mut e = Entry {
            index,
            term,
            ..Default::default()
        };
        e.set_entry_type(ty);
        e
    };
    let mut m = base();
    m.index = 3;
    m.mut_entries().push(entry(5, EntryType::EntryNormal));
    assert!(matches!(q.step(m), Err(StepError::BadEntries)));
    let mut m = base();
    m.index = 3;
    m.mut_entries().push(entry(4, EntryType::EntryConfChange));
    assert!(matches!(q.step(m), Err(StepError::BadEntries)));
    let mut m = base();
    m.set_msg_type(MessageType::MsgSnapshot);
    assert!(matches!(q.step(m), Err(StepError::BadSnapshot)));
    let mut m = base();
    m.set_msg_type(MessageType::MsgSnapshot);
    let meta = m.mut_snapshot().mut_metadata();
    meta.index = 100;
    meta.term = term;
    meta.mut_conf_state().voters = vec![1, 2, 3, 4];
    assert!(matches!(q.step(m), Err(StepError::BadSnapshot)));
    // A heartbeat claiming a commit far beyond the log does not panic.
    let mut m = base();
    m.set_msg_type(MessageType::MsgHeartbeat);
    m.commit = 1_000_000;
    q.step(m).unwrap();
    // Random bytes never decode into a panic.
    let mut rng = Rng(9);
    for len in 0..3000u64 {
        let bytes: Vec<u8> = (0..len % 200).map(|_| rng.next() as u8).collect();
        if let Ok(m) = decode_message(&bytes) {
            let _ = c.nodes.get_mut(&f).unwrap().q.step(m);
        }
    }
    // The cluster is unharmed.
    let leader = c.leader().unwrap();
    let more = c.propose(leader, "y", 5);
    c.wait_applied(more.last().unwrap().0, 3000);
    c.assert_converged();
}

#[test]
fn config_is_checked() {
    let t0 = Instant::now();
    let bad = |c: QuorumConfig| Quorum::new(c, MemLog::new(), t0).is_err();
    assert!(bad(QuorumConfig::new(0, vec![0])));
    assert!(bad(QuorumConfig::new(4, vec![1, 2, 3])));
    assert!(bad(QuorumConfig::new(1, vec![1, 2, 2])));
    let mut c = QuorumConfig::new(1, vec![1, 2, 3]);
    c.election_timeout = Duration::from_millis(100);
    assert!(bad(c));
    let mut c = QuorumConfig::new(1, vec![1, 2, 3]);
    c.tick_interval = Duration::ZERO;
    assert!(bad(c));
    // Disk state raft-rs would panic on is refused.
    let mut c = QuorumConfig::new(1, vec![1]);
    c.applied = 5;
    assert!(bad(c));
    let mut log = MemLog::new();
    log.set_hard_state(HardState {
        term: 1,
        vote: 1,
        commit: 3,
    })
    .unwrap();
    assert!(Quorum::new(QuorumConfig::new(1, vec![1]), log, t0).is_err());
}
