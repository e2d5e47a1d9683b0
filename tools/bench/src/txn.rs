//! Transaction scenarios: librdkafka transactional produce (throughput and EndTxn round trips),
//! and a log written by thousands of idempotent producers for the restart figure.

use crate::procfs::Window;
use crate::raw;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use std::io::Write;
use std::time::{Duration, Instant};

/// `count` records of `size` bytes in transactions of `per_txn`, each committed. The records of
/// a transaction are flushed first, so the commit's time is the EndTxn round trip.
/// What `txnprod` sends.
pub struct Load {
    pub count: u64,
    pub size: usize,
    pub per_txn: u64,
    pub linger_ms: u64,
    /// Wait for the records' delivery before committing, so the commit is timed alone.
    pub separate_flush: bool,
}

pub fn produce(addr: &str, topic: &str, load: Load, pid: Option<u32>) -> Result<String, String> {
    let Load {
        count,
        size,
        per_txn,
        linger_ms,
        separate_flush,
    } = load;
    // A background thread serves delivery reports, so flush() returns as soon as they arrive.
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("transactional.id", "bench-txn")
        .set("linger.ms", linger_ms.to_string())
        .set("batch.size", "1000000")
        .set("batch.num.messages", "100000")
        .set("queue.buffering.max.messages", "2000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("compression.type", "none")
        .create()
        .map_err(|e| format!("producer: {e}"))?;
    let t = Duration::from_secs(30);
    p.init_transactions(t).map_err(|e| format!("init: {e}"))?;
    let payload = vec![b't'; size];
    let mut commits: Vec<f64> = Vec::new();
    let w = Window::start(pid);
    let mut sent = 0u64;
    while sent < count {
        p.begin_transaction().map_err(|e| format!("begin: {e}"))?;
        let n = per_txn.min(count - sent);
        for _ in 0..n {
            let mut rec = BaseRecord::<(), [u8], ()>::to(topic)
                .payload(&payload)
                .partition(0);
            loop {
                match p.send(rec) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        rec = r;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err((e, _)) => return Err(format!("send: {e}")),
                }
            }
        }
        // Optionally wait until the transaction's records are delivered, so the commit's time is
        // the EndTxn round trip alone (flush() in rust-rdkafka waits in 100 ms steps).
        if separate_flush {
            while p.in_flight_count() > 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        let c0 = Instant::now();
        p.commit_transaction(t)
            .map_err(|e| format!("commit: {e}"))?;
        commits.push(c0.elapsed().as_secs_f64() * 1e3);
        sent += n;
    }
    let (wall, s) = w.finish();
    commits.sort_by(f64::total_cmp);
    let pct = |q: f64| commits[((commits.len() - 1) as f64 * q) as usize];
    Ok(format!(
        "msgs={sent} txns={} msg_s={:.0} commit_p50_ms={:.3} commit_p99_ms={:.3} commit_max_ms={:.3} {s}",
        commits.len(),
        sent as f64 / wall,
        pct(0.5),
        pct(0.99),
        commits[commits.len() - 1],
    ))
}

/// Fills partition 0 of `topic` with about `bytes` of idempotent batches from `producers`
/// distinct producer ids (round robin, sequences following on), for the restart figure.
pub fn pidfill(addr: &str, topic: &str, bytes: u64, producers: i64) -> Result<String, String> {
    let (template, records) = raw::build_batch(100 << 10, 100, crate::now_ms());
    let batches = (bytes / template.len() as u64).max(producers as u64);
    let mut s = raw::connect(addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut inflight = 0u32;
    let t0 = Instant::now();
    for i in 0..batches {
        let pid = 1_000_000 + (i as i64 % producers);
        let seq = (i as i64 / producers) as i32 * records as i32;
        let mut b = template.clone();
        b[43..51].copy_from_slice(&pid.to_be_bytes());
        b[51..53].copy_from_slice(&0i16.to_be_bytes());
        b[53..57].copy_from_slice(&seq.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        let mut f = raw::produce_frame(topic, 0, 1, 30_000, &b);
        raw::set_correlation(&mut f, i as i32);
        s.write_all(&f).map_err(|e| e.to_string())?;
        inflight += 1;
        if inflight >= 16 {
            raw::read_response(&mut s, &mut buf).map_err(|e| e.to_string())?;
            if let Ok(Err(code)) = raw::check_produce_response(&buf) {
                return Err(format!("produce error {code}"));
            }
            inflight -= 1;
        }
    }
    while inflight > 0 {
        raw::read_response(&mut s, &mut buf).map_err(|e| e.to_string())?;
        inflight -= 1;
    }
    Ok(format!(
        "batches={batches} bytes={} producers={producers} secs={:.2}",
        batches * template.len() as u64,
        t0.elapsed().as_secs_f64()
    ))
}
