//! Scenario 10: three librdkafka consumers of one group, one of them in a child process that
//! is SIGKILLed (no LeaveGroup); how long until the two survivors consume its partitions.

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientContext;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the survivors saw, behind one lock.
#[derive(Default)]
struct Seen {
    kill: Option<Instant>,
    /// Unix time of the kill and of the child's last session-refreshing request.
    kill_unix: f64,
    last_sent_unix: f64,
    dead: BTreeSet<i32>,
    /// Current assignment of each survivor (and of the child, from its stdout).
    owned: [BTreeSet<i32>; 3],
    changed: Option<Instant>,
    revoke: Option<Instant>,
    assign: Option<Instant>,
    first_dead_msg: Option<Instant>,
}

#[derive(Clone)]
struct GroupCtx {
    who: usize,
    seen: Option<Arc<Mutex<Seen>>>,
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl ClientContext for GroupCtx {
    // The child runs with debug=protocol: every Heartbeat and OffsetCommit it writes (both
    // refresh its session on the broker) goes to the parent, which thus knows the last one.
    fn log(&self, _: rdkafka::config::RDKafkaLogLevel, fac: &str, msg: &str) {
        if self.seen.is_none()
            && fac == "SEND"
            && (msg.contains("HeartbeatRequest") || msg.contains("OffsetCommitRequest"))
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "SENT {:.6}", unix_now());
            let _ = out.flush();
        }
    }
}

impl ConsumerContext for GroupCtx {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        if let (Rebalance::Revoke(_), Some(seen)) = (r, &self.seen) {
            let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
            s.owned[self.who].clear();
            s.changed = Some(Instant::now());
            if s.kill.is_some() && s.revoke.is_none() {
                s.revoke = Some(Instant::now());
            }
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        let Rebalance::Assign(tpl) = r else { return };
        let parts: BTreeSet<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
        match &self.seen {
            Some(seen) => {
                let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
                if s.kill.is_some() && s.assign.is_none() && !parts.is_disjoint(&s.dead) {
                    s.assign = Some(Instant::now());
                }
                s.owned[self.who] = parts;
                s.changed = Some(Instant::now());
            }
            None => {
                // The child: tell the parent on stdout.
                let list: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "ASSIGN {}", list.join(","));
                let _ = out.flush();
            }
        }
    }
}

fn consumer(
    addr: &str,
    group: &str,
    session_ms: u64,
    heartbeat_ms: u64,
    ctx: GroupCtx,
    log_sends: bool,
) -> Result<BaseConsumer<GroupCtx>, String> {
    let mut cfg = ClientConfig::new();
    if log_sends {
        cfg.set("debug", "protocol")
            .set_log_level(rdkafka::config::RDKafkaLogLevel::Debug);
    }
    cfg.set("bootstrap.servers", addr)
        .set("group.id", group)
        .set("session.timeout.ms", session_ms.to_string())
        .set("heartbeat.interval.ms", heartbeat_ms.to_string())
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "100")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100")
        .create_with_context(ctx)
        .map_err(|e| format!("consumer: {e}"))
}

fn lock(s: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// The child: consume until killed, printing each assignment.
pub fn child(
    addr: &str,
    topic: &str,
    group: &str,
    session_ms: u64,
    heartbeat_ms: u64,
) -> Result<String, String> {
    let ctx = GroupCtx { who: 2, seen: None };
    let c = consumer(addr, group, session_ms, heartbeat_ms, ctx, true)?;
    c.subscribe(&[topic])
        .map_err(|e| format!("subscribe: {e}"))?;
    loop {
        let _ = c.poll(Duration::from_millis(100));
    }
}

/// The parent: a producer spreading `rate` msg/s over `partitions`, two consumers in threads,
/// one in a child; once the group is stable for 2 s, SIGKILL the child.
pub fn failover(
    addr: &str,
    topic: &str,
    partitions: i32,
    session_ms: u64,
    heartbeat_ms: u64,
    rate: u64,
) -> Result<String, String> {
    let group = format!("bench-failover-{}", std::process::id());
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let produced = Arc::new(AtomicU64::new(0));

    let prod: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("linger.ms", "0")
        .set("acks", "1")
        .create()
        .map_err(|e| format!("producer: {e}"))?;
    let producer = {
        let (stop, topic, produced) = (stop.clone(), topic.to_string(), produced.clone());
        std::thread::spawn(move || {
            let step = Duration::from_nanos(1_000_000_000 / rate.max(1));
            let start = Instant::now();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let p = (i % partitions as u64) as i32;
                let rec = BaseRecord::<(), [u8]>::to(&topic)
                    .payload(&b"failover-bench-payload"[..])
                    .partition(p);
                if prod.send(rec).is_ok() {
                    produced.fetch_add(1, Ordering::Relaxed);
                }
                prod.poll(Duration::ZERO);
                i += 1;
                let due = start + step * i as u32;
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
            }
            let _ = prod.flush(Duration::from_secs(5));
        })
    };

    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut kid = Command::new(exe)
        .args([
            "groupchild",
            "--addr",
            addr,
            "--topic",
            topic,
            "--group",
            &group,
        ])
        .args(["--session-ms", &session_ms.to_string()])
        .args(["--heartbeat-ms", &heartbeat_ms.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn child: {e}"))?;
    let kid_out = kid.stdout.take().ok_or("child stdout")?;
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(kid_out).lines().map_while(Result::ok) {
                if let Some(t) = line.strip_prefix("SENT ") {
                    let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
                    s.last_sent_unix = t.parse().unwrap_or(0.0);
                } else if let Some(list) = line.strip_prefix("ASSIGN ") {
                    let parts = list.split(',').filter_map(|p| p.parse().ok()).collect();
                    let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
                    s.owned[2] = parts;
                    s.changed = Some(Instant::now());
                }
            }
        })
    };

    let survivors: Vec<_> = (0..2)
        .map(|who| {
            let (seen, stop, addr, topic, group) = (
                seen.clone(),
                stop.clone(),
                addr.to_string(),
                topic.to_string(),
                group.clone(),
            );
            std::thread::spawn(move || -> Result<u64, String> {
                let ctx = GroupCtx {
                    who,
                    seen: Some(seen.clone()),
                };
                let c = consumer(&addr, &group, session_ms, heartbeat_ms, ctx, false)?;
                c.subscribe(&[&topic])
                    .map_err(|e| format!("subscribe: {e}"))?;
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if let Some(Ok(m)) = c.poll(Duration::from_millis(20)) {
                        let now = Instant::now();
                        n += 1;
                        let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
                        if s.kill.is_some_and(|k| now > k)
                            && s.first_dead_msg.is_none()
                            && s.dead.contains(&m.partition())
                        {
                            s.first_dead_msg = Some(now);
                        }
                    }
                }
                c.unsubscribe();
                Ok(n)
            })
        })
        .collect();

    // Stable: the three assignments cover every partition once, unchanged for 2 s.
    let t0 = Instant::now();
    let stable = loop {
        std::thread::sleep(Duration::from_millis(50));
        let s = lock(&seen);
        let total: usize = s.owned.iter().map(|o| o.len()).sum();
        let union: BTreeSet<i32> = s.owned.iter().flatten().copied().collect();
        let quiet = s
            .changed
            .is_some_and(|c| c.elapsed() > Duration::from_secs(2));
        if total == partitions as usize && union.len() == total && quiet && !s.owned[2].is_empty() {
            break true;
        }
        if t0.elapsed() > Duration::from_secs(60) {
            break false;
        }
    };
    let mut result = Err("the group did not become stable with 3 members in 60 s".to_string());
    if stable {
        {
            let mut s = lock(&seen);
            s.dead = s.owned[2].clone();
            s.kill = Some(Instant::now());
            s.kill_unix = unix_now();
        }
        let _ = kid.kill(); // SIGKILL
        let _ = kid.wait();
        let _ = reader.join(); // at EOF: the child's last lines are in
        let wait_until = Instant::now() + Duration::from_millis(session_ms + 30_000);
        while Instant::now() < wait_until && lock(&seen).first_dead_msg.is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        let s = lock(&seen);
        let since = |t: Option<Instant>| {
            t.zip(s.kill)
                .map(|(t, k)| format!("{:.1}", (t - k).as_secs_f64() * 1e3))
                .unwrap_or_else(|| "none".into())
        };
        let over = s
            .first_dead_msg
            .zip(s.kill)
            .map(|(t, k)| (t - k).as_secs_f64() * 1e3 - session_ms as f64);
        // The broker's session clock started at the child's last Heartbeat/OffsetCommit.
        let before_kill_ms = (s.kill_unix - s.last_sent_unix) * 1e3;
        let over_hb = over.map_or("none".into(), |o| format!("{:.1}", o + before_kill_ms));
        result = Ok(format!(
            "failover_ms={} over_session_ms={} over_session_from_last_hb_ms={over_hb} \
             last_hb_before_kill_ms={before_kill_ms:.1} revoke_ms={} assign_ms={} dead={:?} \
             session_ms={session_ms} heartbeat_ms={heartbeat_ms} stable_after_s={:.1}",
            since(s.first_dead_msg),
            over.map_or("none".into(), |o| format!("{o:.1}")),
            since(s.revoke),
            since(s.assign),
            s.dead
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(","),
            t0.elapsed().as_secs_f64() - s.kill.map_or(0.0, |k| k.elapsed().as_secs_f64()),
        ));
    } else {
        let _ = kid.kill();
        let _ = kid.wait();
        let _ = reader.join();
    }
    stop.store(true, Ordering::Relaxed);
    let mut consumed = 0;
    for h in survivors {
        match h.join() {
            Ok(Ok(n)) => consumed += n,
            Ok(Err(e)) => result = Err(e),
            Err(_) => result = Err("consumer thread panicked".into()),
        }
    }
    let _ = producer.join();
    result.map(|r| {
        format!(
            "{r} produced={} consumed_by_survivors={consumed}",
            produced.load(Ordering::Relaxed)
        )
    })
}
