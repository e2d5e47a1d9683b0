//! Tests of the classic group coordinator. Time is driven by adding Durations to one Instant.

use super::*;
use crate::protocol::error::*;

const G: &str = "g";
const SESSION_MS: i32 = 10_000;
const REBALANCE_MS: i32 = 60_000;
const RANGE: &[(&str, &[u8])] = &[("range", b"r-meta")];

fn now_of<T: std::fmt::Debug>(a: Answer<T>) -> T {
    match a {
        Answer::Now(t) => t,
        Answer::Parked => panic!("expected an answer, got Parked"),
    }
}

fn is_parked<T>(a: &Answer<T>) -> bool {
    matches!(a, Answer::Parked)
}

struct H {
    c: GroupCoordinator,
    now: Instant,
    next_waiter: u64,
    done: Vec<Completion>,
}

struct J<'a> {
    member: &'a str,
    instance: Option<&'a str>,
    protocols: &'a [(&'a str, &'a [u8])],
    require_known: bool,
    protocol_type: &'a str,
    session_ms: i32,
    rebalance_ms: i32,
}

fn j<'a>(member: &'a str, protocols: &'a [(&'a str, &'a [u8])]) -> J<'a> {
    J {
        member,
        instance: None,
        protocols,
        require_known: false,
        protocol_type: "consumer",
        session_ms: SESSION_MS,
        rebalance_ms: REBALANCE_MS,
    }
}

impl H {
    fn new() -> H {
        H::with(GroupConfig::default())
    }

    fn with(config: GroupConfig) -> H {
        H {
            c: GroupCoordinator::new(config),
            now: Instant::now(),
            next_waiter: 0,
            done: Vec::new(),
        }
    }

    fn drain(&mut self) {
        self.c.take_completions(&mut self.done);
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.c.tick(self.now);
        self.drain();
    }

    fn join_with(&mut self, a: J<'_>) -> (Waiter, Answer<JoinResult>) {
        self.next_waiter += 1;
        let w = self.next_waiter;
        let args = JoinArgs {
            group_id: G,
            member_id: a.member,
            group_instance_id: a.instance,
            client_id: "client",
            client_host: "/127.0.0.1",
            session_timeout_ms: a.session_ms,
            rebalance_timeout_ms: a.rebalance_ms,
            protocol_type: a.protocol_type,
            protocols: a
                .protocols
                .iter()
                .map(|(n, m)| Protocol {
                    name: n,
                    metadata: m,
                })
                .collect(),
            require_known_member_id: a.require_known,
            reason: None,
        };
        let r = self.c.join(args, w, self.now);
        self.drain();
        (w, r)
    }

    fn join(&mut self, member: &str) -> (Waiter, Answer<JoinResult>) {
        self.join_with(j(member, RANGE))
    }

    fn sjoin(&mut self, member: &str, instance: &str) -> (Waiter, Answer<JoinResult>) {
        self.join_with(J {
            instance: Some(instance),
            ..j(member, RANGE)
        })
    }

    /// The completion of a parked JoinGroup.
    fn joined(&mut self, w: Waiter) -> JoinResult {
        let pos = self
            .done
            .iter()
            .position(|c| matches!(c, Completion::Join(x, _) if *x == w))
            .unwrap_or_else(|| panic!("no join completion for waiter {w}: {:?}", self.done));
        match self.done.remove(pos) {
            Completion::Join(_, r) => r,
            Completion::Sync(..) => unreachable!(),
        }
    }

    fn synced(&mut self, w: Waiter) -> SyncResult {
        let pos = self
            .done
            .iter()
            .position(|c| matches!(c, Completion::Sync(x, _) if *x == w))
            .unwrap_or_else(|| panic!("no sync completion for waiter {w}: {:?}", self.done));
        match self.done.remove(pos) {
            Completion::Sync(_, r) => r,
            Completion::Join(..) => unreachable!(),
        }
    }

    fn sync_with(
        &mut self,
        member: &str,
        instance: Option<&str>,
        generation: i32,
        assignments: &[(String, Vec<u8>)],
    ) -> (Waiter, Answer<SyncResult>) {
        self.next_waiter += 1;
        let w = self.next_waiter;
        let args = SyncArgs {
            group_id: G,
            generation_id: generation,
            member_id: member,
            group_instance_id: instance,
            protocol_type: Some("consumer"),
            protocol_name: None,
            assignments: assignments
                .iter()
                .map(|(m, a)| (m.as_str(), a.as_slice()))
                .collect(),
        };
        let r = self.c.sync(args, w, self.now);
        self.drain();
        (w, r)
    }

    fn sync(&mut self, member: &str, generation: i32) -> (Waiter, Answer<SyncResult>) {
        self.sync_with(member, None, generation, &[])
    }

    fn hb(&mut self, member: &str, generation: i32) -> i16 {
        self.c.heartbeat(G, member, None, generation, self.now)
    }

    fn state(&self) -> &'static str {
        self.c.describe(G).state
    }

    /// `n` dynamic members join an empty group and sync; returns their ids (leader first)
    /// and the generation.
    fn stable(&mut self, n: usize) -> (Vec<String>, i32) {
        let ws: Vec<Waiter> = (0..n)
            .map(|_| {
                let (w, a) = self.join("");
                assert!(is_parked(&a));
                w
            })
            .collect();
        self.advance(Duration::from_secs(6));
        let rs: Vec<JoinResult> = ws.iter().map(|w| self.joined(*w)).collect();
        let generation = rs[0].generation_id;
        let ids: Vec<String> = rs.iter().map(|r| r.member_id.clone()).collect();
        assert_eq!(rs[0].leader, ids[0]);
        self.finish_sync(&ids, generation);
        (ids, generation)
    }

    /// Followers sync (parked), then the leader `ids[0]` sends "a-<id>" for everyone.
    fn finish_sync(&mut self, ids: &[String], generation: i32) {
        let fws: Vec<Waiter> = ids[1..]
            .iter()
            .map(|id| {
                let (w, a) = self.sync(id, generation);
                assert!(is_parked(&a));
                w
            })
            .collect();
        let assignments: Vec<(String, Vec<u8>)> = ids
            .iter()
            .map(|id| (id.clone(), format!("a-{id}").into_bytes()))
            .collect();
        let (_, a) = self.sync_with(&ids[0], None, generation, &assignments);
        let r = now_of(a);
        assert_eq!(r.error, NONE);
        assert_eq!(r.assignment, format!("a-{}", ids[0]).into_bytes());
        for (id, w) in ids[1..].iter().zip(fws) {
            let r = self.synced(w);
            assert_eq!(r.error, NONE);
            assert_eq!(r.assignment, format!("a-{id}").into_bytes());
        }
        assert_eq!(self.state(), "Stable");
    }
}

#[test]
fn three_members_join_and_sync() {
    let mut h = H::new();
    let (wa, a) = h.join_with(j("", &[("range", b"A"), ("roundrobin", b"a")]));
    assert!(is_parked(&a));
    assert_eq!(h.state(), "PreparingRebalance");
    let (wb, _) = h.join_with(j("", &[("range", b"B")]));
    let (wc, _) = h.join_with(j("", &[("range", b"C")]));
    h.advance(Duration::from_secs(3));
    // B and C arrived during the initial delay: it is extended once.
    assert!(h.done.is_empty());
    h.advance(Duration::from_secs(3));
    let (ra, rb, rc) = (h.joined(wa), h.joined(wb), h.joined(wc));
    assert_eq!(ra.error, NONE);
    assert_eq!(ra.generation_id, 1);
    assert_eq!(ra.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(ra.protocol_name.as_deref(), Some("range"));
    assert_eq!(ra.leader, ra.member_id);
    assert!(ra.member_id.starts_with("client-"));
    let metas: Vec<(&str, &[u8])> = ra
        .members
        .iter()
        .map(|m| (m.member_id.as_str(), m.metadata.as_slice()))
        .collect();
    assert_eq!(
        metas,
        vec![
            (ra.member_id.as_str(), &b"A"[..]),
            (rb.member_id.as_str(), &b"B"[..]),
            (rc.member_id.as_str(), &b"C"[..])
        ]
    );
    for r in [&rb, &rc] {
        assert_eq!(r.leader, ra.member_id);
        assert!(r.members.is_empty());
        assert_eq!(r.generation_id, 1);
    }
    assert_eq!(h.state(), "CompletingRebalance");
    let ids = vec![ra.member_id.clone(), rb.member_id.clone(), rc.member_id];
    // A commit between JoinGroup and SyncGroup is refused until the group is stable.
    assert_eq!(
        h.c.validate_commit(G, &ids[1], None, 1, h.now),
        REBALANCE_IN_PROGRESS
    );
    h.finish_sync(&ids, 1);
    for id in &ids {
        assert_eq!(h.hb(id, 1), NONE);
        assert_eq!(h.c.validate_commit(G, id, None, 1, h.now), NONE);
    }
    // A late SyncGroup in Stable gets its assignment at once.
    let r = now_of(h.sync(&ids[2], 1).1);
    assert_eq!(r.assignment, format!("a-{}", ids[2]).into_bytes());
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    assert_eq!(h.c.take_dirty(), vec![G.to_string()]);
    let s = h.c.snapshot(G).unwrap();
    assert_eq!(s.generation, 1);
    assert_eq!(s.members.len(), 3);
    assert_eq!(s.members[1].subscription, b"B");
}

#[test]
fn member_id_required_round() {
    let mut h = H::new();
    let (_, a) = h.join_with(J {
        require_known: true,
        ..j("", RANGE)
    });
    let r = now_of(a);
    assert_eq!(r.error, MEMBER_ID_REQUIRED);
    assert_eq!(r.generation_id, -1);
    assert!(r.member_id.starts_with("client-"));
    assert_eq!(r.member_id.len(), "client-".len() + 36);
    // Not a member yet: nothing rebalances.
    assert_eq!(h.state(), "Empty");
    let (w, a) = h.join_with(J {
        require_known: true,
        ..j(&r.member_id, RANGE)
    });
    assert!(is_parked(&a));
    h.advance(Duration::from_secs(3));
    let jr = h.joined(w);
    assert_eq!(jr.error, NONE);
    assert_eq!(jr.member_id, r.member_id);
    assert_eq!(jr.generation_id, 1);

    // A pending id that is never used expires after the session timeout.
    let r2 = now_of(
        h.join_with(J {
            require_known: true,
            ..j("", RANGE)
        })
        .1,
    );
    assert_eq!(r2.error, MEMBER_ID_REQUIRED);
    h.advance(Duration::from_millis(SESSION_MS as u64 + 1));
    let r3 = now_of(h.join(&r2.member_id).1);
    assert_eq!(r3.error, UNKNOWN_MEMBER_ID);

    // Static members never get MEMBER_ID_REQUIRED.
    let mut h = H::new();
    let (_, a) = h.join_with(J {
        require_known: true,
        instance: Some("i1"),
        ..j("", RANGE)
    });
    assert!(is_parked(&a));
}

#[test]
fn leave_triggers_rebalance() {
    let mut h = H::new();
    let (ids, generation) = h.stable(3);
    h.c.take_dirty();
    let (top, per) = h.c.leave(G, &[(&ids[2], None)], h.now);
    assert_eq!(top, NONE);
    assert_eq!(per, vec![(ids[2].clone(), None, NONE)]);
    assert_eq!(h.state(), "PreparingRebalance");
    assert_eq!(h.hb(&ids[1], generation), REBALANCE_IN_PROGRESS);
    assert_eq!(h.hb(&ids[2], generation), UNKNOWN_MEMBER_ID);
    // Prepare: sync is refused.
    assert_eq!(
        now_of(h.sync(&ids[0], generation).1).error,
        REBALANCE_IN_PROGRESS
    );
    let (w0, a0) = h.join(&ids[0]);
    assert!(is_parked(&a0));
    // The last remaining member's rejoin completes the rebalance at once.
    let r1 = now_of(h.join(&ids[1]).1);
    let r0 = h.joined(w0);
    assert_eq!(r1.generation_id, generation + 1);
    assert_eq!(r0.members.len(), 2);
    assert_eq!(r0.leader, ids[0]);
    h.finish_sync(&ids[..2], generation + 1);
    // Everyone leaves: Empty, a new generation, durable.
    h.c.take_dirty();
    let (top, per) = h.c.leave(
        G,
        &[(&ids[0], None), (&ids[1], None), ("nope", None)],
        h.now,
    );
    assert_eq!(top, NONE);
    assert_eq!(per[2].2, UNKNOWN_MEMBER_ID);
    assert_eq!(h.state(), "Empty");
    assert_eq!(h.c.snapshot(G).unwrap().generation, generation + 2);
    assert_eq!(h.c.take_dirty(), vec![G.to_string()]);
    assert!(h.c.is_empty_group(G));
    assert_eq!(
        h.c.leave("other", &[("x", None)], h.now).0,
        UNKNOWN_MEMBER_ID
    );
}

#[test]
fn session_expiry_triggers_rebalance() {
    let mut h = H::new();
    let (ids, generation) = h.stable(2);
    // The leader heartbeats every 3 s; the follower is silent.
    for _ in 0..3 {
        h.advance(Duration::from_secs(3));
        assert_eq!(h.hb(&ids[0], generation), NONE);
    }
    assert_eq!(h.state(), "Stable");
    h.advance(Duration::from_millis(1001)); // 10.001 s since the follower's sync
    assert_eq!(h.state(), "PreparingRebalance");
    assert_eq!(h.hb(&ids[1], generation), UNKNOWN_MEMBER_ID);
    let r = now_of(h.join(&ids[0]).1);
    assert_eq!(r.generation_id, generation + 1);
    assert_eq!(r.members.len(), 1);
    h.finish_sync(&ids[..1], generation + 1);
    // A parked JoinGroup keeps an old member alive beyond its session timeout.
    let (w, a) = h.join(&ids[0]);
    assert!(is_parked(&a) || matches!(a, Answer::Now(_)));
    let _ = w;
    // The last member expires: Empty.
    let mut h = H::new();
    let (ids, generation) = h.stable(1);
    h.advance(Duration::from_secs(9));
    assert_eq!(h.hb(&ids[0], generation), NONE);
    h.advance(Duration::from_secs(9));
    assert_eq!(h.state(), "Stable");
    h.c.take_dirty();
    assert!(h.c.next_deadline().unwrap() <= h.now + Duration::from_secs(1));
    h.advance(Duration::from_secs(1));
    assert_eq!(h.state(), "Empty");
    assert_eq!(h.c.take_dirty(), vec![G.to_string()]);
    assert_eq!(h.c.next_deadline(), None);
}

#[test]
fn parked_join_does_not_expire() {
    let mut h = H::new();
    let (ids, generation) = h.stable(2);
    // The leader rejoins; the follower heartbeats, learns of the rebalance ... but is slow.
    let (w0, a) = h.join(&ids[0]);
    assert!(is_parked(&a));
    assert_eq!(h.hb(&ids[1], generation), REBALANCE_IN_PROGRESS);
    for _ in 0..6 {
        // 30 s: far past the leader's session timeout; the follower keeps heartbeating.
        h.advance(Duration::from_secs(5));
        assert_eq!(h.hb(&ids[1], generation), REBALANCE_IN_PROGRESS);
    }
    assert!(h.done.is_empty());
    let r1 = now_of(h.join(&ids[1]).1);
    let r0 = h.joined(w0);
    assert_eq!((r0.error, r1.error), (NONE, NONE));
    assert_eq!(r0.members.len(), 2);
    // At the rebalance timeout, members that did not rejoin are removed.
    h.finish_sync(&ids, generation + 1);
    let (w0, _) = h.join(&ids[0]);
    for _ in 0..11 {
        h.advance(Duration::from_secs(5));
        assert_eq!(h.hb(&ids[1], generation + 1), REBALANCE_IN_PROGRESS);
    }
    h.advance(Duration::from_millis(4999));
    assert!(h.done.is_empty());
    h.advance(Duration::from_millis(1));
    let r0 = h.joined(w0);
    assert_eq!(r0.members.len(), 1);
    assert_eq!(r0.generation_id, generation + 2);
    assert_eq!(h.hb(&ids[1], generation + 1), UNKNOWN_MEMBER_ID);
}

#[test]
fn errors() {
    let mut h = H::new();
    assert_eq!(
        now_of(
            h.join_with(J {
                session_ms: 5_999,
                ..j("", RANGE)
            })
            .1
        )
        .error,
        INVALID_SESSION_TIMEOUT
    );
    assert_eq!(
        now_of(
            h.join_with(J {
                session_ms: 1_800_001,
                ..j("", RANGE)
            })
            .1
        )
        .error,
        INVALID_SESSION_TIMEOUT
    );
    assert_eq!(
        now_of(h.join_with(j("", &[])).1).error,
        INCONSISTENT_GROUP_PROTOCOL
    );
    assert_eq!(now_of(h.join("unknown").1).error, UNKNOWN_MEMBER_ID);
    assert!(!h.c.group_exists(G));
    let args_empty = |c: &mut GroupCoordinator, now| {
        c.join(
            JoinArgs {
                group_id: "",
                member_id: "",
                group_instance_id: None,
                client_id: "c",
                client_host: "h",
                session_timeout_ms: SESSION_MS,
                rebalance_timeout_ms: REBALANCE_MS,
                protocol_type: "consumer",
                protocols: vec![Protocol {
                    name: "range",
                    metadata: b"",
                }],
                require_known_member_id: false,
                reason: None,
            },
            99,
            now,
        )
    };
    assert_eq!(now_of(args_empty(&mut h.c, h.now)).error, INVALID_GROUP_ID);

    let (ids, generation) = h.stable(2);
    assert_eq!(
        now_of(
            h.join_with(J {
                protocol_type: "connect",
                ..j("", RANGE)
            })
            .1
        )
        .error,
        INCONSISTENT_GROUP_PROTOCOL
    );
    assert_eq!(
        now_of(h.join_with(j("", &[("sticky", b"")])).1).error,
        INCONSISTENT_GROUP_PROTOCOL
    );
    assert_eq!(h.hb(&ids[1], generation + 1), ILLEGAL_GENERATION);
    assert_eq!(h.hb("nobody", generation), UNKNOWN_MEMBER_ID);
    assert_eq!(
        h.c.heartbeat("nogroup", &ids[1], None, generation, h.now),
        UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        now_of(h.sync(&ids[1], generation - 1).1).error,
        ILLEGAL_GENERATION
    );
    assert_eq!(
        now_of(h.sync("nobody", generation).1).error,
        UNKNOWN_MEMBER_ID
    );
    let mut bad = SyncArgs {
        group_id: G,
        generation_id: generation,
        member_id: &ids[1],
        group_instance_id: None,
        protocol_type: Some("consumer"),
        protocol_name: Some("roundrobin"),
        assignments: vec![],
    };
    assert_eq!(
        now_of(h.c.sync(bad.clone(), 1000, h.now)).error,
        INCONSISTENT_GROUP_PROTOCOL
    );
    bad.protocol_name = Some("range");
    assert_eq!(now_of(h.c.sync(bad, 1001, h.now)).error, NONE);
    assert_eq!(
        h.c.validate_commit(G, &ids[1], None, generation + 1, h.now),
        ILLEGAL_GENERATION
    );
    assert_eq!(
        h.c.validate_commit(G, "nobody", None, generation, h.now),
        UNKNOWN_MEMBER_ID
    );
    // A simple (assign()) consumer may not commit into a group with members ...
    assert_eq!(
        h.c.validate_commit(G, "", None, -1, h.now),
        UNKNOWN_MEMBER_ID
    );
    // ... but may into an unknown group (now listed as Empty) or an Empty one.
    assert_eq!(h.c.validate_commit("simple", "", None, -1, h.now), NONE);
    assert_eq!(h.c.describe("simple").state, "Empty");
    assert_eq!(
        h.c.validate_commit("unknown", "m", None, 3, h.now),
        ILLEGAL_GENERATION
    );
    // During PreparingRebalance commits are allowed (the consumer commits while revoking).
    let (w0, _) = h.join(&ids[0]);
    assert_eq!(
        h.c.validate_commit(G, &ids[1], None, generation, h.now),
        NONE
    );
    let _ = w0;

    // Max group size.
    let mut h = H::with(GroupConfig {
        max_size: 2,
        ..GroupConfig::default()
    });
    let (_ids, _) = h.stable(2);
    let r = now_of(h.join("").1);
    assert_eq!(r.error, GROUP_MAX_SIZE_REACHED);
}

#[test]
fn static_member_restart_without_rebalance() {
    let mut h = H::new();
    let (w1, _) = h.sjoin("", "i1");
    let (w2, _) = h.sjoin("", "i2");
    h.advance(Duration::from_secs(6));
    let (r1, r2) = (h.joined(w1), h.joined(w2));
    assert!(r1.member_id.starts_with("i1-"));
    let ids = vec![r1.member_id.clone(), r2.member_id.clone()];
    h.finish_sync(&ids, 1);
    h.c.take_dirty();

    // The follower restarts: new member id, same generation and assignment, no rebalance.
    let r = now_of(h.sjoin("", "i2").1);
    assert_eq!(r.error, NONE);
    assert_eq!(r.generation_id, 1);
    assert_ne!(r.member_id, ids[1]);
    assert_eq!(r.leader, ids[0]);
    assert!(r.members.is_empty());
    assert!(!r.skip_assignment);
    assert_eq!(h.state(), "Stable");
    assert!(h.done.is_empty());
    assert_eq!(h.c.take_dirty(), vec![G.to_string()]);
    let new2 = r.member_id.clone();
    // The old member id is fenced.
    assert_eq!(
        h.c.heartbeat(G, &ids[1], Some("i2"), 1, h.now),
        FENCED_INSTANCE_ID
    );
    assert_eq!(
        now_of(h.sync_with(&ids[1], Some("i2"), 1, &[]).1).error,
        FENCED_INSTANCE_ID
    );
    assert_eq!(
        h.c.validate_commit(G, &ids[1], Some("i2"), 1, h.now),
        FENCED_INSTANCE_ID
    );
    let (top, per) = h.c.leave(G, &[(&ids[1], Some("i2"))], h.now);
    assert_eq!((top, per[0].2), (NONE, FENCED_INSTANCE_ID));
    assert_eq!(
        now_of(
            h.join_with(J {
                instance: Some("i2"),
                ..j(&ids[1], RANGE)
            })
            .1
        )
        .error,
        FENCED_INSTANCE_ID
    );
    // The new one keeps the old assignment.
    let s = now_of(h.sync_with(&new2, Some("i2"), 1, &[]).1);
    assert_eq!(s.assignment, format!("a-{}", ids[1]).into_bytes());
    assert_eq!(h.c.heartbeat(G, &ids[0], Some("i1"), 1, h.now), NONE);

    // The leader restarts: it keeps leadership and gets the member list, assignment skipped.
    let r = now_of(h.sjoin("", "i1").1);
    assert_eq!(r.leader, r.member_id);
    assert!(r.skip_assignment);
    assert_eq!(r.members.len(), 2);
    assert_eq!(r.generation_id, 1);
    assert_eq!(h.state(), "Stable");

    // Admin removal by instance id.
    let (top, per) = h.c.leave(G, &[("", Some("i2"))], h.now);
    assert_eq!((top, per[0].2), (NONE, NONE));
    assert_eq!(h.state(), "PreparingRebalance");

    // A static member whose session expires is removed like any other.
    let mut h = H::new();
    let (w, _) = h.sjoin("", "s");
    h.advance(Duration::from_secs(3));
    let r = h.joined(w);
    h.finish_sync(std::slice::from_ref(&r.member_id), 1);
    h.advance(Duration::from_millis(SESSION_MS as u64));
    assert_eq!(h.state(), "Empty");
}

#[test]
fn static_member_with_changed_protocol_rebalances() {
    let mut h = H::new();
    let (w1, _) = h.sjoin("", "i1");
    let (w2, _) = h.sjoin("", "i2");
    h.advance(Duration::from_secs(6));
    let ids = vec![h.joined(w1).member_id, h.joined(w2).member_id];
    h.finish_sync(&ids, 1);
    // Both now prefer roundrobin over range: the selected protocol changes.
    let both: &[(&str, &[u8])] = &[("roundrobin", b"x"), ("range", b"y")];
    let (w1, a) = h.join_with(J {
        instance: Some("i1"),
        ..j(&ids[0], both)
    });
    assert!(is_parked(&a));
    // i2 restarts during the rebalance: its old id is replaced and its join completes it.
    let r2 = now_of(
        h.join_with(J {
            instance: Some("i2"),
            ..j("", both)
        })
        .1,
    );
    let r1 = h.joined(w1);
    assert_eq!(r2.generation_id, 2);
    assert_eq!(r2.protocol_name.as_deref(), Some("roundrobin"));
    assert_ne!(r2.member_id, ids[1]);
    assert_eq!(r1.leader, ids[0]);
    let metas: Vec<&[u8]> = r1.members.iter().map(|m| m.metadata.as_slice()).collect();
    assert_eq!(metas, vec![&b"x"[..], &b"x"[..]]);
    assert_eq!(
        h.c.heartbeat(G, &ids[1], Some("i2"), 2, h.now),
        FENCED_INSTANCE_ID
    );

    // Alone and Stable: a restart whose protocols change the group's choice rebalances.
    let mut h = H::new();
    let (w, _) = h.sjoin("", "solo");
    h.advance(Duration::from_secs(3));
    let id = h.joined(w).member_id;
    h.finish_sync(std::slice::from_ref(&id), 1);
    let r = now_of(
        h.join_with(J {
            instance: Some("solo"),
            ..j("", both)
        })
        .1,
    );
    assert_eq!(r.generation_id, 2);
    assert_eq!(r.protocol_name.as_deref(), Some("roundrobin"));
    assert!(!r.skip_assignment);
    assert_eq!(r.members.len(), 1);
    assert_eq!(h.state(), "CompletingRebalance");
}

#[test]
fn unsynced_members_are_removed_after_the_rebalance_timeout() {
    let mut h = H::new();
    let (ids, generation) = h.stable(2);
    let (w0, _) = h.join(&ids[0]);
    let r1 = now_of(h.join(&ids[1]).1);
    assert_eq!(h.joined(w0).generation_id, generation + 1);
    assert_eq!(r1.generation_id, generation + 1);
    // Only the leader syncs; the follower heartbeats but never syncs.
    let assignments = vec![(ids[1].clone(), b"p0".to_vec())];
    now_of(h.sync_with(&ids[0], None, generation + 1, &assignments).1);
    for _ in 0..11 {
        h.advance(Duration::from_secs(5));
        assert_eq!(h.hb(&ids[0], generation + 1), NONE);
        assert_eq!(h.hb(&ids[1], generation + 1), NONE);
    }
    h.advance(Duration::from_secs(5)); // 60 s after the join completed
    assert_eq!(h.state(), "PreparingRebalance");
    assert_eq!(h.hb(&ids[1], generation + 1), UNKNOWN_MEMBER_ID);
    let r0 = now_of(h.join(&ids[0]).1);
    assert_eq!(r0.members.len(), 1);
}

#[test]
fn new_member_joining_a_stable_group() {
    let mut h = H::new();
    let (ids, generation) = h.stable(1);
    let (wn, a) = h.join("");
    assert!(is_parked(&a));
    assert_eq!(h.state(), "PreparingRebalance");
    assert_eq!(h.hb(&ids[0], generation), REBALANCE_IN_PROGRESS);
    let r0 = now_of(h.join(&ids[0]).1);
    let rn = h.joined(wn);
    assert_eq!(r0.members.len(), 2);
    assert_eq!(rn.generation_id, generation + 1);
    assert_eq!(rn.leader, ids[0]);
}

#[test]
fn join_v0_uses_the_session_timeout_as_rebalance_timeout() {
    let mut h = H::new();
    let v0 = |m| J {
        rebalance_ms: 0,
        ..j(m, RANGE)
    };
    let (w0, _) = h.join_with(v0(""));
    let (w1, _) = h.join_with(v0(""));
    h.advance(Duration::from_secs(6));
    let ids = vec![h.joined(w0).member_id, h.joined(w1).member_id];
    h.finish_sync(&ids, 1);
    let (w, _) = h.join_with(v0(&ids[0]));
    for _ in 0..3 {
        h.advance(Duration::from_secs(3));
        assert_eq!(h.hb(&ids[1], 1), REBALANCE_IN_PROGRESS);
    }
    h.advance(Duration::from_millis(999));
    assert!(h.done.is_empty());
    h.advance(Duration::from_millis(1)); // 10 s: the follower did not rejoin
    assert_eq!(h.joined(w).members.len(), 1);
}

#[test]
fn protocol_vote() {
    let vote = |protos: &[&[(&str, &[u8])]]| -> String {
        let mut h = H::new();
        let ws: Vec<Waiter> = protos.iter().map(|p| h.join_with(j("", p)).0).collect();
        h.advance(Duration::from_secs(6));
        let r = h.joined(ws[0]);
        for w in &ws[1..] {
            assert_eq!(h.joined(*w).error, NONE);
        }
        r.protocol_name.unwrap()
    };
    // Only roundrobin is supported by all.
    assert_eq!(
        vote(&[
            &[("range", b""), ("roundrobin", b"")],
            &[("roundrobin", b""), ("range", b"")],
            &[("roundrobin", b"")],
        ]),
        "roundrobin"
    );
    // Majority of first choices.
    assert_eq!(
        vote(&[
            &[("x", b""), ("y", b"")],
            &[("y", b""), ("x", b"")],
            &[("y", b""), ("x", b"")],
        ]),
        "y"
    );
    // A tie goes to the leader's preference.
    assert_eq!(
        vote(&[&[("x", b""), ("y", b"")], &[("y", b""), ("x", b"")]]),
        "x"
    );
    // A joiner sharing no protocol with the group is refused.
    let mut h = H::new();
    h.join_with(j("", &[("x", b"")]));
    assert_eq!(
        now_of(h.join_with(j("", &[("y", b"")])).1).error,
        INCONSISTENT_GROUP_PROTOCOL
    );
}

#[test]
fn initial_delay() {
    // Alone: completes after exactly one delay.
    let mut h = H::new();
    let (w, _) = h.join("");
    assert_eq!(h.c.next_deadline(), Some(h.now + Duration::from_secs(3)));
    h.advance(Duration::from_millis(2999));
    assert!(h.done.is_empty());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.joined(w).generation_id, 1);

    // New members extend it by one delay at a time, never past the rebalance timeout (5 s).
    let mut h = H::new();
    let short = |m| J {
        rebalance_ms: 5_000,
        ..j(m, RANGE)
    };
    let (w1, _) = h.join_with(short(""));
    h.advance(Duration::from_secs(1));
    let (w2, _) = h.join_with(short(""));
    h.advance(Duration::from_secs(2)); // t = 3: extended by min(3, 5 - 3) = 2 s
    assert!(h.done.is_empty());
    let (w3, _) = h.join_with(short(""));
    h.advance(Duration::from_millis(1999));
    assert!(h.done.is_empty());
    h.advance(Duration::from_millis(1)); // t = 5: budget spent, completes
    let r = h.joined(w1);
    assert_eq!(r.members.len(), 3);
    h.joined(w2);
    h.joined(w3);
}

#[test]
fn delete_list_describe() {
    let mut h = H::new();
    let d = h.c.describe("none");
    assert_eq!((d.error, d.state), (NONE, "Dead"));
    assert_eq!(h.c.delete("none"), GROUP_ID_NOT_FOUND);
    assert!(h.c.is_empty_group("none"));
    let (ids, generation) = h.stable(2);
    let d = h.c.describe(G);
    assert_eq!(d.state, "Stable");
    assert_eq!(d.protocol_type, "consumer");
    assert_eq!(d.protocol, "range");
    assert_eq!(d.members.len(), 2);
    assert_eq!(d.members[0].member_id, ids[0]);
    assert_eq!(d.members[0].client_id, "client");
    assert_eq!(d.members[0].metadata, b"r-meta");
    assert_eq!(
        d.members[1].assignment,
        format!("a-{}", ids[1]).into_bytes()
    );
    h.c.validate_commit("simple", "", None, -1, h.now);
    assert_eq!(
        h.c.list(),
        vec![
            (G.to_string(), "consumer".to_string(), "Stable"),
            ("simple".to_string(), String::new(), "Empty"),
        ]
    );
    assert_eq!(h.c.delete(G), NON_EMPTY_GROUP);
    assert!(!h.c.is_empty_group(G));
    h.join(&ids[0]);
    let d = h.c.describe(G);
    assert_eq!(d.state, "PreparingRebalance");
    assert_eq!(d.protocol, "");
    assert!(d.members[0].metadata.is_empty());
    h.c.leave(G, &[(&ids[0], None), (&ids[1], None)], h.now);
    assert_eq!(h.c.describe(G).state, "Empty");
    let _ = generation;
    h.c.take_dirty();
    assert_eq!(h.c.delete(G), NONE);
    assert_eq!(h.c.take_dirty(), vec![G.to_string()]);
    assert!(h.c.snapshot(G).is_none());
    assert_eq!(h.c.delete(G), GROUP_ID_NOT_FOUND);
    assert_eq!(h.c.list().len(), 1);
    assert_eq!(h.c.delete("simple"), NONE);
    assert_eq!(h.c.next_deadline(), None);
}

#[test]
fn cancel_waiter_keeps_member_until_timeouts() {
    let mut h = H::new();
    let (ids, generation) = h.stable(2);
    let (w0, _) = h.join(&ids[0]);
    h.c.cancel_waiter(w0);
    // The cancelled JoinGroup still counts: the follower's rejoin completes the rebalance.
    let r1 = now_of(h.join(&ids[1]).1);
    assert_eq!(r1.generation_id, generation + 1);
    assert!(h.done.is_empty());
    assert_eq!(h.c.describe(G).members.len(), 2);
    // The follower's parked sync is cancelled; the leader's sync still makes the group stable.
    let (w1, a) = h.sync(&ids[1], generation + 1);
    assert!(is_parked(&a));
    h.c.cancel_waiter(w1);
    h.advance(Duration::from_secs(5));
    assert_eq!(h.hb(&ids[0], generation + 1), NONE);
    let assignments = vec![(ids[1].clone(), b"x".to_vec())];
    assert_eq!(
        now_of(h.sync_with(&ids[0], None, generation + 1, &assignments).1).error,
        NONE
    );
    assert_eq!(h.state(), "Stable");
    assert!(h.done.is_empty());
    // The silent follower stays until its session expires.
    h.advance(Duration::from_secs(5));
    assert_eq!(h.hb(&ids[0], generation + 1), NONE);
    h.advance(Duration::from_millis(SESSION_MS as u64 - 5001));
    assert_eq!(h.c.describe(G).members.len(), 2);
    h.advance(Duration::from_millis(1));
    assert_eq!(h.c.describe(G).members.len(), 1);
    assert_eq!(h.state(), "PreparingRebalance");
    h.c.cancel_waiter(12345); // unknown: ignored
}

#[test]
fn snapshot_restore_round_trip() {
    let mut h = H::new();
    let (ids, generation) = h.stable(3);
    let s = h.c.snapshot(G).unwrap();
    assert_eq!(s.leader.as_deref(), Some(ids[0].as_str()));
    assert_eq!(s.protocol.as_deref(), Some("range"));
    let mut h2 = H::new();
    h2.c.restore(s.clone(), h2.now);
    assert_eq!(h2.c.snapshot(G).unwrap(), s);
    assert_eq!(h2.state(), "Stable");
    assert_eq!(h2.hb(&ids[1], generation), NONE);
    let r = now_of(h2.sync(&ids[2], generation).1);
    assert_eq!(r.assignment, format!("a-{}", ids[2]).into_bytes());
    // A follower rejoining with the same metadata gets the current generation back.
    let r = now_of(h2.join(&ids[1]).1);
    assert_eq!((r.error, r.generation_id), (NONE, generation));
    // Nobody heartbeats: the restored sessions expire.
    h2.advance(Duration::from_millis(SESSION_MS as u64));
    h2.advance(Duration::from_millis(REBALANCE_MS as u64));
    assert_eq!(h2.state(), "Empty");
    // An empty snapshot restores an Empty group.
    let mut h3 = H::new();
    h3.c.restore(
        crate::group::GroupSnapshot {
            group_id: "e".into(),
            protocol_type: "consumer".into(),
            generation: 7,
            ..Default::default()
        },
        h3.now,
    );
    assert_eq!(h3.c.describe("e").state, "Empty");
    assert_eq!(h3.c.snapshot("e").unwrap().generation, 7);
}

#[test]
fn leader_rejoin_rebalances_follower_rejoin_does_not() {
    let mut h = H::new();
    let (ids, generation) = h.stable(2);
    let r = now_of(h.join(&ids[1]).1);
    assert_eq!(r.generation_id, generation);
    assert_eq!(h.state(), "Stable");
    let (_, a) = h.join(&ids[0]);
    assert!(is_parked(&a));
    assert_eq!(h.state(), "PreparingRebalance");
    // A follower with changed metadata triggers one too.
    let mut h = H::new();
    let (ids, _) = h.stable(2);
    let (_, a) = h.join_with(j(&ids[1], &[("range", b"changed")]));
    assert!(is_parked(&a));
    assert_eq!(h.state(), "PreparingRebalance");
}

#[test]
fn hundred_members_rebalance_when_the_last_rejoins() {
    let start = std::time::Instant::now();
    let mut h = H::new();
    let (ids, generation) = h.stable(100);
    // The leader rejoins; every member rejoins; the last rejoin completes it with no tick.
    let mut ws = Vec::new();
    for id in &ids[..99] {
        let (w, a) = h.join(id);
        assert!(is_parked(&a));
        ws.push(w);
    }
    assert!(h.done.is_empty());
    let last = now_of(h.join(&ids[99]).1);
    assert_eq!(last.generation_id, generation + 1);
    let leader = h.joined(ws[0]);
    assert_eq!(leader.members.len(), 100);
    for w in &ws[1..] {
        assert_eq!(h.joined(*w).generation_id, generation + 1);
    }
    // 100 partitions, one per member.
    h.finish_sync(&ids, generation + 1);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn deadlines_are_ordered_and_only_due_ones_fire() {
    let mut h = H::new();
    let (ids, generation) = h.stable(2);
    let first = h.c.next_deadline().unwrap();
    assert!(first > h.now);
    h.advance(Duration::from_secs(5));
    assert_eq!(h.hb(&ids[0], generation), NONE);
    // ids[1]'s session (10 s after its sync) comes first now.
    assert_eq!(h.c.next_deadline(), Some(first));
    h.c.tick(first - Duration::from_millis(1));
    assert_eq!(h.state(), "Stable");
    h.c.tick(first);
    assert_eq!(h.state(), "PreparingRebalance");
}

#[test]
fn a_second_parked_join_replaces_the_first() {
    let mut h = H::new();
    let (ids, generation) = h.stable(2);
    let (wa, _) = h.join(&ids[0]);
    let (wb, b) = h.join(&ids[0]);
    assert!(is_parked(&b));
    assert_eq!(h.joined(wa).error, REBALANCE_IN_PROGRESS);
    let r1 = now_of(h.join(&ids[1]).1);
    assert_eq!(r1.generation_id, generation + 1);
    assert_eq!(h.joined(wb).members.len(), 2);
    assert!(h.done.is_empty());
}

#[test]
fn txn_commit_without_member_is_allowed_in_a_live_group() {
    let mut h = H::new();
    let (ids, generation) = h.stable(1);
    assert_eq!(h.c.validate_txn_commit(G, "", None, -1, h.now), NONE);
    assert_eq!(
        h.c.validate_commit(G, "", None, -1, h.now),
        UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        h.c.validate_txn_commit(G, &ids[0], None, generation, h.now),
        NONE
    );
    assert_eq!(
        h.c.validate_commit("", "", None, -1, h.now),
        INVALID_GROUP_ID
    );
}
