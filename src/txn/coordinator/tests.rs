//! The coordinator driven like a clock-free simulation: every transition Kafka's clients rely
//! on, in microseconds.

use super::*;

struct Sim {
    c: TxnCoordinator,
    next_pid: i64,
}

impl Sim {
    fn new() -> Sim {
        Sim {
            c: TxnCoordinator::new(TxnConfig {
                max_timeout_ms: 60_000,
                id_expiration_ms: 1_000_000,
            }),
            next_pid: 1000,
        }
    }

    /// InitProducerId to completion (aborting what an earlier instance left open).
    fn init(&mut self, id: &str, now: i64) -> Result<(i64, i16), ErrorCode> {
        let plan = {
            let mut next = self.next_pid;
            let r = self.c.init_producer_id(id, 30_000, None, now, &mut || {
                next += 1;
                Ok(next)
            });
            self.next_pid = next;
            r?
        };
        match plan {
            InitPlan::Ready(m) => {
                let out = (m.producer_id, m.producer_epoch);
                self.c.apply(m);
                Ok(out)
            }
            InitPlan::AbortFirst(m) => {
                self.c.apply(m.clone());
                self.c.apply(m.complete(now).unwrap());
                Err(CONCURRENT_TRANSACTIONS)
            }
        }
    }

    fn add(
        &mut self,
        id: &str,
        pid: i64,
        epoch: i16,
        parts: &[(&str, i32)],
        now: i64,
    ) -> ErrorCode {
        let parts: Vec<TopicPartition> = parts.iter().map(|(t, p)| (t.to_string(), *p)).collect();
        match self.c.add_partitions(id, pid, epoch, &parts, now) {
            Ok(Some(m)) => {
                self.c.apply(m);
                error::NONE
            }
            Ok(None) => error::NONE,
            Err(e) => e,
        }
    }

    fn end(&mut self, id: &str, pid: i64, epoch: i16, commit: bool, now: i64) -> ErrorCode {
        let mut next = self.next_pid;
        let req = EndTxn {
            transactional_id: id,
            producer_id: pid,
            epoch,
            commit,
            tv2: false,
        };
        let r = self.c.end_txn(
            &req,
            &mut || {
                next += 1;
                Ok(next)
            },
            now,
        );
        self.next_pid = next;
        match r {
            Ok(EndPlan::Prepare(m)) => {
                self.c.apply(m.clone());
                self.c.apply(m.complete(now).unwrap());
                error::NONE
            }
            Ok(EndPlan::Done { .. }) => error::NONE,
            Err(e) => e,
        }
    }

    fn state(&self, id: &str) -> TxnState {
        self.c.get(id).unwrap().state
    }
}

#[test]
fn commit_and_abort_cycles() {
    let mut s = Sim::new();
    let (pid, e) = s.init("app", 0).unwrap();
    assert_eq!(e, 0);
    for round in 0..3 {
        let now = 10 + round;
        assert_eq!(s.add("app", pid, e, &[("t", 0), ("t", 1)], now), 0);
        assert_eq!(s.state("app"), TxnState::Ongoing);
        // Adding again is answered at once.
        assert_eq!(s.add("app", pid, e, &[("t", 1)], now), 0);
        let commit = round % 2 == 0;
        assert_eq!(s.end("app", pid, e, commit, now), 0);
        let want = if commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        assert_eq!(s.state("app"), want);
        // A retried EndTxn of the same outcome succeeds; the other outcome is invalid.
        assert_eq!(s.end("app", pid, e, commit, now), 0);
        assert_eq!(s.end("app", pid, e, !commit, now), INVALID_TXN_STATE);
    }
    assert_eq!(s.c.by_producer_id(pid).unwrap().transactional_id, "app");
}

#[test]
fn errors_a_client_can_meet() {
    let mut s = Sim::new();
    let alloc = &mut || Ok(1);
    assert_eq!(
        s.c.init_producer_id("", 1000, None, 0, alloc),
        Err(error::INVALID_REQUEST)
    );
    assert_eq!(
        s.c.init_producer_id("x", 60_001, None, 0, alloc),
        Err(INVALID_TRANSACTION_TIMEOUT)
    );
    assert_eq!(
        s.c.init_producer_id("x", 0, None, 0, alloc),
        Err(INVALID_TRANSACTION_TIMEOUT)
    );
    assert_eq!(
        s.add("unknown", 1, 0, &[("t", 0)], 0),
        INVALID_PRODUCER_ID_MAPPING
    );
    let (pid, e) = s.init("app", 0).unwrap();
    assert_eq!(
        s.add("app", pid + 1, e, &[("t", 0)], 0),
        INVALID_PRODUCER_ID_MAPPING
    );
    assert_eq!(s.add("app", pid, e + 1, &[("t", 0)], 0), PRODUCER_FENCED);
    // Nothing to end yet.
    assert_eq!(s.end("app", pid, e, true, 0), INVALID_TXN_STATE);
    // While markers are pending, everything waits.
    assert_eq!(s.add("app", pid, e, &[("t", 0)], 0), 0);
    let prep = match s
        .c
        .end_txn(
            &EndTxn {
                transactional_id: "app",
                producer_id: pid,
                epoch: e,
                commit: true,
                tv2: false,
            },
            &mut || Ok(9),
            1,
        )
        .unwrap()
    {
        EndPlan::Prepare(m) => m,
        other => panic!("{other:?}"),
    };
    s.c.apply(prep.clone());
    assert_eq!(
        s.add("app", pid, e, &[("t", 2)], 2),
        CONCURRENT_TRANSACTIONS
    );
    assert_eq!(s.end("app", pid, e, true, 2), CONCURRENT_TRANSACTIONS);
    assert_eq!(s.end("app", pid, e, false, 2), INVALID_TXN_STATE);
    assert_eq!(s.init("app", 2), Err(CONCURRENT_TRANSACTIONS));
    assert_eq!(s.c.pending_markers().len(), 1);
    s.c.apply(prep.complete(3).unwrap());
    assert!(s.c.pending_markers().is_empty());
    let verify =
        s.c.verify_partitions("app", pid, e, &[("t".into(), 0), ("t".into(), 9)]);
    assert_eq!(
        verify,
        Ok(vec![0, 0]
            .into_iter()
            .map(|_| TRANSACTION_ABORTABLE)
            .collect())
    );
}

#[test]
fn a_new_instance_fences_the_old_one_and_aborts_its_transaction() {
    let mut s = Sim::new();
    let (pid, e0) = s.init("app", 0).unwrap();
    assert_eq!(s.add("app", pid, e0, &[("t", 0)], 1), 0);
    // The second instance: the open transaction is aborted first, then it retries.
    assert_eq!(s.init("app", 2), Err(CONCURRENT_TRANSACTIONS));
    assert_eq!(s.state("app"), TxnState::CompleteAbort);
    let (pid2, e2) = s.init("app", 3).unwrap();
    assert_eq!(pid2, pid, "same producer id");
    assert_eq!(
        e2,
        e0 + 2,
        "one bump for the fence, one for the new instance"
    );
    // The old instance is fenced everywhere.
    assert_eq!(s.add("app", pid, e0, &[("t", 0)], 4), PRODUCER_FENCED);
    assert_eq!(s.end("app", pid, e0, true, 4), PRODUCER_FENCED);
    assert_eq!(s.add("app", pid2, e2, &[("t", 0)], 4), 0);
}

#[test]
fn a_recovering_producer_keeps_its_id_and_a_stranger_is_fenced() {
    let mut s = Sim::new();
    let (pid, e) = s.init("app", 0).unwrap();
    let ready =
        |s: &Sim, expected| match s
            .c
            .init_producer_id("app", 30_000, expected, 1, &mut || Ok(77))
        {
            Ok(InitPlan::Ready(m)) => Ok((m.producer_id, m.producer_epoch, m)),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
    let (p1, e1, m) = ready(&s, Some((pid, e))).unwrap();
    assert_eq!((p1, e1), (pid, e + 1));
    s.c.apply(m);
    // The same call again (its answer was lost) gets the same epoch.
    let (_, e_again, _) = ready(&s, Some((pid, e))).unwrap();
    assert_eq!(e_again, e + 1);
    assert_eq!(ready(&s, Some((pid + 5, 0))).unwrap_err(), PRODUCER_FENCED);
}

#[test]
fn exhausted_epochs_rotate_the_producer_id() {
    let mut s = Sim::new();
    let (pid, _) = s.init("app", 0).unwrap();
    let mut m = s.c.get("app").unwrap().clone();
    m.producer_epoch = i16::MAX - 1;
    s.c.apply(m);
    let (pid2, e2) = s.init("app", 1).unwrap();
    assert_ne!(pid2, pid);
    assert_eq!(e2, 0);
    assert!(s.c.by_producer_id(pid).is_none());
    assert_eq!(s.c.by_producer_id(pid2).unwrap().transactional_id, "app");
}

#[test]
fn timeouts_abort_with_a_bumped_epoch_and_ids_expire() {
    let mut s = Sim::new();
    let (pid, e) = s.init("app", 0).unwrap();
    assert_eq!(s.add("app", pid, e, &[("t", 0)], 100), 0);
    assert!(
        s.c.timed_out(100 + 30_000).is_empty(),
        "not past the timeout yet"
    );
    let due = s.c.timed_out(100 + 30_001);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].state, TxnState::PrepareAbort);
    assert_eq!(due[0].producer_epoch, e + 1);
    s.c.apply(due[0].clone());
    s.c.apply(due[0].complete(30_200).unwrap());
    // The timed-out producer is fenced.
    assert_eq!(s.end("app", pid, e, true, 30_300), PRODUCER_FENCED);
    // Idle past transactional.id.expiration.ms: dead, then gone.
    assert!(s.c.expired(30_200 + 999_999).is_empty());
    let dead = s.c.expired(30_200 + 1_000_000);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].state, TxnState::Dead);
    s.c.apply(dead[0].clone());
    assert!(s.c.get("app").is_none());
    assert!(s.c.by_producer_id(pid).is_none());
}

#[test]
fn transactions_v2_bump_every_end_and_accept_retries() {
    let mut s = Sim::new();
    let (pid, e) = s.init("app", 0).unwrap();
    assert_eq!(s.add("app", pid, e, &[("t", 0)], 1), 0);
    let m = match s
        .c
        .end_txn(
            &EndTxn {
                transactional_id: "app",
                producer_id: pid,
                epoch: e,
                commit: true,
                tv2: true,
            },
            &mut || Ok(5),
            2,
        )
        .unwrap()
    {
        EndPlan::Prepare(m) => m,
        other => panic!("{other:?}"),
    };
    assert_eq!(m.producer_epoch, e + 1);
    s.c.apply(m.clone());
    // A retry during the markers: the bumped epoch is recognised.
    assert_eq!(
        s.c.end_txn(
            &EndTxn {
                transactional_id: "app",
                producer_id: pid,
                epoch: e,
                commit: true,
                tv2: true
            },
            &mut || Ok(5),
            2
        ),
        Err(CONCURRENT_TRANSACTIONS)
    );
    s.c.apply(m.complete(3).unwrap());
    assert_eq!(
        s.c.end_txn(
            &EndTxn {
                transactional_id: "app",
                producer_id: pid,
                epoch: e,
                commit: true,
                tv2: true
            },
            &mut || Ok(5),
            4
        ),
        Ok(EndPlan::Done {
            producer_id: pid,
            epoch: e + 1
        })
    );
}

#[test]
fn list_filters_by_state_producer_and_duration() {
    let mut s = Sim::new();
    let (p1, e1) = s.init("a", 0).unwrap();
    let (_p2, _) = s.init("b", 0).unwrap();
    assert_eq!(s.add("a", p1, e1, &[("t", 0)], 100), 0);
    let names = |v: Vec<&TxnMetadata>| -> Vec<String> {
        v.into_iter().map(|m| m.transactional_id.clone()).collect()
    };
    assert_eq!(names(s.c.list(&[], &[], -1, 200)), vec!["a", "b"]);
    assert_eq!(names(s.c.list(&["Ongoing"], &[], -1, 200)), vec!["a"]);
    assert_eq!(names(s.c.list(&["Empty"], &[], -1, 200)), vec!["b"]);
    assert_eq!(names(s.c.list(&[], &[p1], -1, 200)), vec!["a"]);
    assert_eq!(names(s.c.list(&[], &[], 100, 200)), vec!["a"]);
    assert!(s.c.list(&[], &[], 101, 200).is_empty());
}
