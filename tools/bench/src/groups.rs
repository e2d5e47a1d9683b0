//! Scenarios 11 and 12 on the raw client: a 100-member group's join/sync round (and a second
//! round after one member leaves), and a simple consumer's pipelined OffsetCommit loop.

use crate::procfs::{self, Window};
use crate::raw::{self, put_str, read_response, set_correlation};
use crate::rawgroup::{self, Conn, MEMBER_ID_REQUIRED, REBALANCE_IN_PROGRESS};
use std::io::Write;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

struct Shared {
    epoch: Instant,
    group: String,
    topic: String,
    partitions: i32,
    session_ms: i32,
    rebalance_ms: i32,
    rounds: [Round; 2],
    /// Nanoseconds since `epoch`.
    leave_sent: AtomicU64,
    leader_idx: AtomicUsize,
}

/// One rebalance's figures: the latest join sent and the latest SyncGroup answer held (in
/// nanoseconds since `Shared::epoch`), JoinGroups sent, and the highest generation seen.
#[derive(Default)]
struct Round {
    last_join_sent: AtomicU64,
    done: AtomicU64,
    joins: AtomicU64,
    max_generation: AtomicI32,
}

impl Shared {
    fn stamp(&self, at: &AtomicU64) {
        at.fetch_max(self.epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

/// ConsumerProtocolAssignment v0 of `parts` of `topic`; the user data carries the size of the
/// generation, so that a member learns whether the whole group is in.
fn assignment(topic: &str, parts: &[i32], members: usize) -> Vec<u8> {
    let mut a = Vec::with_capacity(32 + parts.len() * 4);
    a.extend_from_slice(&0i16.to_be_bytes());
    a.extend_from_slice(&1i32.to_be_bytes());
    put_str(&mut a, topic.as_bytes());
    a.extend_from_slice(&(parts.len() as i32).to_be_bytes());
    for p in parts {
        a.extend_from_slice(&p.to_be_bytes());
    }
    a.extend_from_slice(&4i32.to_be_bytes());
    a.extend_from_slice(&(members as u32).to_be_bytes());
    a
}

fn members_in(a: &[u8]) -> Option<usize> {
    let t = a.get(a.len().checked_sub(4)?..)?;
    Some(u32::from_be_bytes(t.try_into().ok()?) as usize)
}

/// Join and sync until this member holds an assignment of a generation of `expected` members;
/// a smaller generation is followed by heartbeats until the coordinator asks for a rejoin.
fn settle(
    c: &mut Conn,
    sh: &Shared,
    round: &Round,
    idx: usize,
    id: &str,
    expected: usize,
    deadline: Instant,
) -> Result<(), String> {
    let mut first = true;
    loop {
        if Instant::now() > deadline {
            return Err("no full generation before the deadline".into());
        }
        if first {
            sh.stamp(&round.last_join_sent);
            first = false;
        }
        round.joins.fetch_add(1, Ordering::Relaxed);
        let j = c
            .join(&sh.group, id, &sh.topic, sh.session_ms, sh.rebalance_ms)
            .map_err(|e| format!("JoinGroup: {e}"))?;
        if j.error != 0 {
            return Err(format!("JoinGroup error {}", j.error));
        }
        round
            .max_generation
            .fetch_max(j.generation, Ordering::Relaxed);
        let mut plan = Vec::new();
        if j.leader == id {
            sh.leader_idx.store(idx, Ordering::Relaxed);
            let n = j.members.len().max(1);
            for (i, m) in j.members.iter().enumerate() {
                let parts: Vec<i32> = (0..sh.partitions)
                    .filter(|p| *p as usize % n == i)
                    .collect();
                plan.push((m.clone(), assignment(&sh.topic, &parts, j.members.len())));
            }
        }
        let (e, a) = c
            .sync(&sh.group, j.generation, id, &plan)
            .map_err(|e| format!("SyncGroup: {e}"))?;
        match e {
            0 => {}
            REBALANCE_IN_PROGRESS => continue,
            e => return Err(format!("SyncGroup error {e}")),
        }
        if members_in(&a) == Some(expected) {
            sh.stamp(&round.done);
            return Ok(());
        }
        loop {
            std::thread::sleep(Duration::from_millis(10));
            match c.heartbeat(&sh.group, j.generation, id) {
                Ok(0) if Instant::now() < deadline => {}
                Ok(REBALANCE_IN_PROGRESS) => break,
                Ok(e) => return Err(format!("Heartbeat error {e}")),
                Err(e) => return Err(format!("Heartbeat: {e}")),
            }
        }
    }
}

/// One member's part of scenario 11; every barrier is reached even after an error.
fn member(
    addr: &str,
    sh: &Shared,
    idx: usize,
    n: usize,
    bars: &[Barrier; 4],
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut err: Option<String> = None;
    let mut conn = None;
    let mut id = String::new();
    match raw::connect(addr, Duration::from_secs(10)) {
        Ok(s) => {
            let mut c = Conn::new(s);
            match c.join(&sh.group, "", &sh.topic, sh.session_ms, sh.rebalance_ms) {
                Ok(j) if j.error == MEMBER_ID_REQUIRED && !j.member_id.is_empty() => {
                    id = j.member_id;
                    conn = Some(c);
                }
                Ok(j) => err = Some(format!("first JoinGroup: error {}", j.error)),
                Err(e) => err = Some(format!("first JoinGroup: {e}")),
            }
        }
        Err(e) => err = Some(format!("connect: {e}")),
    }
    bars[0].wait(); // everyone holds a member id
    if let (None, Some(c)) = (&err, conn.as_mut()) {
        err = settle(c, sh, &sh.rounds[0], idx, &id, n, deadline).err();
    }
    bars[1].wait(); // round 1 done
    let leaver = usize::from(sh.leader_idx.load(Ordering::Relaxed) == 0);
    if idx == leaver {
        if let (None, Some(c)) = (&err, conn.as_mut()) {
            sh.stamp(&sh.leave_sent);
            match c.leave(&sh.group, &id) {
                Ok(0) => {}
                Ok(e) => err = Some(format!("LeaveGroup error {e}")),
                Err(e) => err = Some(format!("LeaveGroup: {e}")),
            }
        }
    }
    bars[2].wait(); // one member has left
    if idx != leaver {
        if let (None, Some(c)) = (&err, conn.as_mut()) {
            err = settle(c, sh, &sh.rounds[1], idx, &id, n - 1, deadline).err();
        }
    }
    bars[3].wait();
    err.map_or(Ok(()), Err)
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Scenario 11: `members` connections join one group (member id round first, not timed), then
/// all rejoin with their ids at once; the leader assigns `partitions` partitions. Round 2: one
/// follower leaves with LeaveGroup and the others rejoin.
pub fn rebalance(
    addr: &str,
    topic: &str,
    members: usize,
    partitions: i32,
    pid: Option<u32>,
) -> Result<String, String> {
    let sh = Arc::new(Shared {
        epoch: Instant::now(),
        group: format!("bench-rebalance-{}", std::process::id()),
        topic: topic.to_string(),
        partitions,
        session_ms: 30_000,
        rebalance_ms: 30_000,
        rounds: Default::default(),
        leave_sent: AtomicU64::new(0),
        leader_idx: AtomicUsize::new(0),
    });
    let bars = Arc::new([0, 1, 2, 3].map(|_| Barrier::new(members)));
    let w = Window::start(pid);
    let handles: Vec<_> = (0..members)
        .map(|i| {
            let (addr, sh, bars) = (addr.to_string(), sh.clone(), bars.clone());
            std::thread::Builder::new()
                .stack_size(256 << 10)
                .spawn(move || member(&addr, &sh, i, members, &bars))
        })
        .collect::<Result<_, _>>()
        .map_err(|e| format!("spawn: {e}"))?;
    let results: Vec<Result<(), String>> = handles
        .into_iter()
        .map(|h: std::thread::JoinHandle<_>| {
            h.join().unwrap_or_else(|_| Err("thread panicked".into()))
        })
        .collect();
    let (_, st) = w.finish();
    let failed = results.iter().filter(|r| r.is_err()).count();
    let first = results
        .iter()
        .find_map(|r| r.as_ref().err().cloned())
        .unwrap_or_default();
    let [r1, r2] = &sh.rounds;
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let leave = get(&sh.leave_sent);
    Ok(format!(
        "members={members} failed={failed} first_error={first:?} \
         join1_ms={:.1} joins1={} generation1={} \
         leave2_ms={:.1} join2_ms={:.1} joins2={} generation2={} {st}",
        ms(get(&r1.done).saturating_sub(get(&r1.last_join_sent))),
        get(&r1.joins),
        r1.max_generation.load(Ordering::Relaxed),
        ms(get(&r2.done).saturating_sub(leave)),
        ms(get(&r2.done).saturating_sub(get(&r2.last_join_sent))),
        get(&r2.joins),
        r2.max_generation.load(Ordering::Relaxed),
    ))
}

/// Scenario 12: one connection commits offsets of `partitions` partitions (`per_request` per
/// OffsetCommit, rotating) with `inflight` requests unanswered, for `secs` seconds; the
/// broker's RSS is sampled after a first commit of every partition and then every second.
pub fn commits(
    addr: &str,
    topic: &str,
    partitions: i32,
    per_request: usize,
    inflight: u64,
    secs: u64,
    pid: Option<u32>,
) -> Result<String, String> {
    let group = format!("bench-commits-{}", std::process::id());
    let mut s = raw::connect(addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    let mut buf = Vec::with_capacity(256);
    // Warm-up: every partition once, so the store holds all the offsets it will ever hold.
    let all: Vec<(i32, i64)> = (0..partitions).map(|p| (p, 0)).collect();
    let mut f = rawgroup::offset_commit_frame(&group, topic, &all);
    set_correlation(&mut f, -1);
    s.write_all(&f).map_err(|e| e.to_string())?;
    read_response(&mut s, &mut buf).map_err(|e| e.to_string())?;
    match rawgroup::check_offset_commit(&buf[4..]) {
        Ok((0, n)) if n == partitions as usize => {}
        Ok((e, n)) => {
            return Err(format!(
                "warm-up commit: error {e}, {n} partitions answered"
            ))
        }
        Err(e) => return Err(format!("warm-up commit: {e}")),
    }
    std::thread::sleep(Duration::from_millis(200));
    let rss0 = pid.and_then(procfs::rss_kib);
    let anon0 = pid.and_then(procfs::rss_anon_kib);
    let mut rss_max = rss0.unwrap_or(0);
    let mut series = Vec::new();
    let w = Window::start(pid);
    let end = Instant::now() + Duration::from_secs(secs);
    let mut next_sample = Instant::now() + Duration::from_secs(1);
    let (mut sent, mut acked, mut errors, mut offsets) = (0u64, 0u64, 0u64, 0u64);
    let mut first_error = String::new();
    let mut pairs = Vec::with_capacity(per_request);
    let result = (|| -> std::io::Result<()> {
        loop {
            let sending = Instant::now() < end;
            while sending && sent - acked < inflight {
                pairs.clear();
                for j in 0..per_request as u64 {
                    let k = sent * per_request as u64 + j;
                    pairs.push(((k % partitions as u64) as i32, k as i64 + 1));
                }
                let mut f = rawgroup::offset_commit_frame(&group, topic, &pairs);
                set_correlation(&mut f, sent as i32);
                s.write_all(&f)?;
                sent += 1;
            }
            if acked == sent {
                return Ok(());
            }
            let corr = read_response(&mut s, &mut buf)?;
            if corr != acked as i32 {
                return Err(std::io::Error::other(format!(
                    "response {corr} out of order (expected {acked})"
                )));
            }
            let (e, n) = rawgroup::check_offset_commit(&buf[4..])?;
            if e != 0 || n != per_request {
                errors += 1;
                if first_error.is_empty() {
                    first_error = format!("error {e}, {n} partitions answered");
                }
            }
            offsets += n as u64;
            acked += 1;
            if let (Some(p), true) = (pid, Instant::now() >= next_sample) {
                let r = procfs::rss_kib(p).unwrap_or(0);
                rss_max = rss_max.max(r);
                series.push(r.to_string());
                next_sample += Duration::from_secs(1);
            }
        }
    })();
    let (wall, st) = w.finish();
    if let Err(e) = result {
        first_error = format!("{e}");
        errors += 1;
    }
    let rss1 = pid.and_then(procfs::rss_kib);
    let anon1 = pid.and_then(procfs::rss_anon_kib);
    rss_max = rss_max.max(rss1.unwrap_or(0));
    Ok(format!(
        "requests={acked} offsets={offsets} commits_s={:.0} offsets_s={:.0} errors={errors} \
         first_error={first_error:?} rss_start_kib={} rss_end_kib={} rss_max_kib={rss_max} anon_start_kib={} anon_end_kib={} \
         rss_series_kib={} {st}",
        acked as f64 / wall,
        offsets as f64 / wall,
        rss0.unwrap_or(0),
        rss1.unwrap_or(0),
        anon0.unwrap_or(0),
        anon1.unwrap_or(0),
        series.join(","),
    ))
}
