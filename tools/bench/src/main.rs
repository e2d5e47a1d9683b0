//! `bench <command> [--key value]...`: the client side of tools/bench.sh. Every measuring command
//! prints one line `RESULT key=value ...` that the script turns into the table.

mod cleaner;
mod conns;
mod failover;
mod groups;
mod procfs;
mod raw;
mod rawgroup;
mod rd;
mod txn;

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const USAGE: &str = "usage: bench <command> [--key value]...
  freeport                                   print a free loopback port
  wait      --addr A [--timeout-ms 10000]     until the broker answers ApiVersions
  create    --addr A --topic T [--partitions 1]
  rdprod    --addr A --topic T [--count 1000000] [--size 100] [--pid P]
  rdcons    --addr A --topic T [--count 1000000] [--pid P] [--isolation read_committed]
  txnprod   --addr A --topic T [--count 1000000] [--size 100] [--per-txn 1000] [--pid P]
            [--linger-ms 5] [--wait-delivery]   transactional produce, each transaction
            committed; with --wait-delivery the commit is timed alone (the EndTxn round trip)
  pidfill   --addr A --topic T [--bytes 1073741824] [--producers 10000]
            idempotent batches from that many producer ids (for the restart figure)
  latency   --addr A --topic T [--rate 1000] [--secs 10]
  rawprod   --addr A --topic T [--bytes N] [--conns 1] [--inflight 8] [--acks 1]
            [--batch 1048576] [--max-secs 60] [--pid P]
  manyconns --addr A --topic T [--conns 1000] [--requests 5] [--records 10]
  startup   --broker BIN --dir D [--runs 7] [--fresh] [--props FILE]
  failover  --addr A --topic T [--partitions 6] [--session-ms 6000] [--heartbeat-ms 100]
            [--rate 2000]             3 consumers, one in a child that is SIGKILLed
  groupchild --addr A --topic T --group G [--session-ms 6000] [--heartbeat-ms 100]
  rebalance --addr A --topic T [--members 100] [--partitions 100] [--pid P]
  commits   --addr A --topic T [--partitions 100] [--per-request 1] [--inflight 16]
            [--secs 10] [--pid P]
  cleaner   --addr A --dir LOGDIR [--topic compacted] [--lat-topic lat] [--bytes 1073741824]
            [--keys 100000] [--value 1024] [--rate 1000] [--lag-ms 8000]
            [--segment-bytes 104857600] [--max-secs 150] [--pid P]
            produce latency of another client while a compacted partition is cleaned
  connflood --addr A --pid P [--conns 2000] [--after-secs 5]
            broker RSS idle, with the connections open, right after they close, and later
  idleconns --addr A --pid P [--conns 10000]   broker RSS with that many idle connections";

struct Args(HashMap<String, String>);

impl Args {
    fn parse(v: &[String]) -> Result<Args, String> {
        let mut m = HashMap::new();
        let mut i = 0;
        while i < v.len() {
            let k = v[i]
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {}", v[i]))?;
            match v.get(i + 1).filter(|x| !x.starts_with("--")) {
                Some(val) => {
                    m.insert(k.to_string(), val.clone());
                    i += 2;
                }
                None => {
                    m.insert(k.to_string(), String::new());
                    i += 1;
                }
            }
        }
        Ok(Args(m))
    }
    fn str(&self, k: &str) -> Result<&str, String> {
        self.0
            .get(k)
            .map(|s| s.as_str())
            .ok_or_else(|| format!("--{k} is required"))
    }
    fn num<T: std::str::FromStr>(&self, k: &str, default: T) -> Result<T, String> {
        match self.0.get(k) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("--{k}: bad number {v}")),
        }
    }
    fn flag(&self, k: &str) -> bool {
        self.0.contains_key(k)
    }
    fn pid(&self) -> Result<Option<u32>, String> {
        match self.0.get("pid") {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| format!("--pid: bad {v}")),
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

fn wait_serving(addr: &str, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let r = raw::connect(addr, Duration::from_millis(500))
            .and_then(|mut s| raw::api_versions(&mut s));
        match r {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(format!("{addr}: {e}")),
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Scenarios 2 and 3: `conns` connections each pipelining copies of one 1 MiB batch.
fn rawprod(a: &Args) -> Result<String, String> {
    let addr = a.str("addr")?.to_string();
    let topic = a.str("topic")?;
    let total: u64 = a.num("bytes", 2u64 << 30)?;
    let conns: u64 = a.num("conns", 1)?;
    let inflight: u64 = a.num("inflight", 8)?;
    let acks: i16 = a.num("acks", 1)?;
    let batch_max: usize = a.num("batch", 1 << 20)?;
    let max_secs: u64 = a.num("max-secs", 60)?;
    let (batch, records) = raw::build_batch(batch_max, 100, now_ms());
    let frame = raw::produce_frame(topic, 0, acks, 30_000, &batch);
    let per_conn = total.div_ceil(batch.len() as u64).div_ceil(conns.max(1));
    let mut streams = Vec::new();
    for _ in 0..conns {
        streams.push(raw::connect(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?);
    }
    let deadline = Instant::now() + Duration::from_secs(max_secs);
    let w = procfs::Window::start(a.pid()?);
    let handles: Vec<_> = streams
        .into_iter()
        .map(|mut s| {
            let mut f = frame.clone();
            let bl = batch.len() as u64;
            std::thread::spawn(move || {
                raw::pipeline(
                    &mut s,
                    &mut f,
                    records as u64,
                    bl,
                    per_conn,
                    inflight,
                    deadline,
                )
            })
        })
        .collect();
    let stats: Vec<raw::ConnStats> = handles
        .into_iter()
        .map(|h| h.join().unwrap_or_default())
        .collect();
    let (wall, s) = w.finish();
    let bytes: u64 = stats.iter().map(|c| c.bytes).sum();
    let recs: u64 = stats.iter().map(|c| c.records).sum();
    let reqs: u64 = stats.iter().map(|c| c.requests).sum();
    let errors: Vec<&String> = stats.iter().filter_map(|c| c.error.as_ref()).collect();
    Ok(format!(
        "bytes={bytes} requests={reqs} records={recs} batch_bytes={} records_per_batch={records} \
         mb_s={:.1} msg_s={:.0} errors={} first_error={:?} {s}",
        batch.len(),
        bytes as f64 / wall / 1e6,
        recs as f64 / wall,
        errors.len(),
        errors.first().map(|e| e.as_str()).unwrap_or("")
    ))
}

/// Scenario 9: `conns` connections open at once, each producing a few small batches.
fn manyconns(a: &Args) -> Result<String, String> {
    let addr = a.str("addr")?.to_string();
    let topic = a.str("topic")?;
    let conns: usize = a.num("conns", 1000)?;
    let requests: u64 = a.num("requests", 5)?;
    let records: usize = a.num("records", 10)?;
    let (batch, n) = raw::build_batch(records * 103 + 61, 100, now_ms());
    let frame = Arc::new(raw::produce_frame(topic, 0, 1, 30_000, &batch));
    let opened = Arc::new(Barrier::new(conns));
    let finished = Arc::new(Barrier::new(conns));
    let t0 = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..conns {
        let (addr, frame, opened, finished) = (
            addr.clone(),
            frame.clone(),
            opened.clone(),
            finished.clone(),
        );
        let h = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || {
                let s = raw::connect(&addr, Duration::from_secs(10));
                opened.wait(); // every connection is open before anyone produces
                let r = match s {
                    Ok(mut s) => {
                        let mut f = frame.to_vec();
                        let deadline = Instant::now() + Duration::from_secs(60);
                        let st = raw::pipeline(&mut s, &mut f, n as u64, 0, requests, 1, deadline);
                        finished.wait(); // and stays open until everyone is done
                        match st.error {
                            None if st.requests == requests => Ok(()),
                            None => Err(format!("only {} of {requests} answered", st.requests)),
                            Some(e) => Err(e),
                        }
                    }
                    Err(e) => {
                        finished.wait();
                        Err(format!("connect: {e}"))
                    }
                };
                r
            })
            .map_err(|e| format!("spawn: {e}"))?;
        handles.push(h);
    }
    let results: Vec<Result<(), String>> = handles
        .into_iter()
        .map(|h| h.join().unwrap_or_else(|_| Err("thread panicked".into())))
        .collect();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let first = results
        .iter()
        .find_map(|r| r.as_ref().err().cloned())
        .unwrap_or_default();
    Ok(format!(
        "conns={conns} ok={ok} failed={} records_each={} wall={:.3} first_error={first:?}",
        conns - ok,
        n as u64 * requests,
        t0.elapsed().as_secs_f64()
    ))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Scenario 8: spawn the broker, poll connect() in a tight loop, then one ApiVersions round
/// trip; SIGTERM (clean shutdown) after each run.
fn startup(a: &Args) -> Result<String, String> {
    let broker = a.str("broker")?;
    let dir = a.str("dir")?;
    let runs: usize = a.num("runs", 7)?;
    let fresh = a.flag("fresh");
    let (mut conn_ms, mut serve_ms) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        if fresh {
            let _ = std::fs::remove_dir_all(dir);
            std::fs::create_dir_all(dir).map_err(|e| format!("{dir}: {e}"))?;
        }
        let port = free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let sa: std::net::SocketAddr = addr.parse().map_err(|e| format!("{e}"))?;
        let mut cmd = Command::new(broker);
        if let Some(p) = a.0.get("props") {
            cmd.arg(p);
        }
        cmd.env("BROKER_PORT", port.to_string())
            .env("LOG_DIR", dir)
            .env("LOG_LEVEL", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let t0 = Instant::now();
        let mut child = cmd.spawn().map_err(|e| format!("{broker}: {e}"))?;
        let deadline = t0 + Duration::from_secs(20);
        let mut stream = loop {
            if let Ok(s) = TcpStream::connect(sa) {
                break Some(s);
            }
            if Instant::now() > deadline {
                break None;
            }
        };
        let t_conn = t0.elapsed();
        let served = stream.as_mut().map(|s| {
            let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
            raw::api_versions(s)
        });
        let t_serve = t0.elapsed();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let stop = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                _ if stop.elapsed() > Duration::from_secs(30) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                _ => std::thread::sleep(Duration::from_millis(2)),
            }
        }
        match served {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(format!("ApiVersions after start: {e}")),
            None => return Err("broker did not accept a connection within 20 s".into()),
        }
        conn_ms.push(t_conn.as_secs_f64() * 1e3);
        serve_ms.push(t_serve.as_secs_f64() * 1e3);
    }
    let all = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.2}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let (ca, sa) = (all(&conn_ms), all(&serve_ms));
    Ok(format!(
        "runs={runs} connect_ms={:.2} serve_ms={:.2} connect_all={ca} serve_all={sa}",
        median(&mut conn_ms),
        median(&mut serve_ms)
    ))
}

fn run(cmd: &str, a: &Args) -> Result<String, String> {
    match cmd {
        "freeport" => free_port().map(|p| p.to_string()),
        "wait" => {
            let t: u64 = a.num("timeout-ms", 10_000)?;
            wait_serving(a.str("addr")?, Duration::from_millis(t)).map(|_| "ok".into())
        }
        "create" => raw::create_topic(a.str("addr")?, a.str("topic")?, a.num("partitions", 1)?)
            .map(|_| "ok".into())
            .map_err(|e| e.to_string()),
        "rdprod" => rd::produce(
            a.str("addr")?,
            a.str("topic")?,
            a.num("count", 1_000_000)?,
            a.num("size", 100)?,
            a.pid()?,
        )
        .map(|s| format!("RESULT {s}")),
        "rdcons" => rd::consume(
            a.str("addr")?,
            a.str("topic")?,
            a.num("count", 1_000_000)?,
            a.pid()?,
            a.0.get("isolation")
                .map_or("read_uncommitted", |s| s.as_str()),
        )
        .map(|s| format!("RESULT {s}")),
        "latency" => rd::latency(
            a.str("addr")?,
            a.str("topic")?,
            a.num("rate", 1000)?,
            a.num("secs", 10)?,
        )
        .map(|s| format!("RESULT {s}")),
        "rawprod" => rawprod(a).map(|s| format!("RESULT {s}")),
        "manyconns" => manyconns(a).map(|s| format!("RESULT {s}")),
        "startup" => startup(a).map(|s| format!("RESULT {s}")),
        "txnprod" => txn::produce(
            a.str("addr")?,
            a.str("topic")?,
            txn::Load {
                count: a.num("count", 1_000_000)?,
                size: a.num("size", 100)?,
                per_txn: a.num("per-txn", 1000)?,
                linger_ms: a.num("linger-ms", 5)?,
                separate_flush: a.flag("wait-delivery"),
            },
            a.pid()?,
        )
        .map(|s| format!("RESULT {s}")),
        "pidfill" => txn::pidfill(
            a.str("addr")?,
            a.str("topic")?,
            a.num("bytes", 1u64 << 30)?,
            a.num("producers", 10_000)?,
        )
        .map(|s| format!("RESULT {s}")),
        "failover" => failover::failover(
            a.str("addr")?,
            a.str("topic")?,
            a.num("partitions", 6)?,
            a.num("session-ms", 6000)?,
            a.num("heartbeat-ms", 100)?,
            a.num("rate", 2000)?,
        )
        .map(|s| format!("RESULT {s}")),
        "groupchild" => failover::child(
            a.str("addr")?,
            a.str("topic")?,
            a.str("group")?,
            a.num("session-ms", 6000)?,
            a.num("heartbeat-ms", 100)?,
        ),
        "rebalance" => groups::rebalance(
            a.str("addr")?,
            a.str("topic")?,
            a.num("members", 100)?,
            a.num("partitions", 100)?,
            a.pid()?,
        )
        .map(|s| format!("RESULT {s}")),
        "commits" => groups::commits(
            a.str("addr")?,
            a.str("topic")?,
            a.num("partitions", 100)?,
            a.num("per-request", 1)?,
            a.num("inflight", 16)?,
            a.num("secs", 10)?,
            a.pid()?,
        )
        .map(|s| format!("RESULT {s}")),
        "cleaner" => cleaner::run(&cleaner::Opts {
            addr: a.str("addr")?.to_string(),
            topic: a.str("topic").unwrap_or("compacted").to_string(),
            lat_topic: a.str("lat-topic").unwrap_or("lat").to_string(),
            dir: a.str("dir")?.to_string(),
            pid: a.pid()?,
            bytes: a.num("bytes", 1u64 << 30)?,
            keys: a.num("keys", 100_000)?,
            value: a.num("value", 1024)?,
            rate: a.num("rate", 1000)?,
            lag_ms: a.num("lag-ms", 8000)?,
            segment_bytes: a.num("segment-bytes", 104_857_600)?,
            max_secs: a.num("max-secs", 150)?,
        })
        .map(|s| format!("RESULT {s}")),
        "connflood" => {
            let pid = a.pid()?.ok_or("--pid is required")?;
            let after = Duration::from_secs_f64(a.num("after-secs", 5.0)?);
            conns::flood(a.str("addr")?, pid, a.num("conns", 2000)?, after)
                .map(|s| format!("RESULT {s}"))
        }
        "idleconns" => {
            let pid = a.pid()?.ok_or("--pid is required")?;
            conns::idle(a.str("addr")?, pid, a.num("conns", 10_000)?).map(|s| format!("RESULT {s}"))
        }
        _ => Err(USAGE.into()),
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = argv.first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let out = Args::parse(&argv[1..]).and_then(|a| run(cmd, &a));
    match out {
        Ok(s) => {
            println!("{s}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench {cmd}: {e}");
            ExitCode::FAILURE
        }
    }
}
