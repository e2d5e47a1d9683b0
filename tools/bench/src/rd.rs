//! librdkafka scenarios: bulk produce, bulk consume from offset 0, produce-to-consume latency.

use crate::procfs::Window;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    failed: AtomicU64,
}

#[derive(Clone, Default)]
struct Ctx(Arc<Counts>);

impl ClientContext for Ctx {
    // librdkafka's log (only with BENCH_RDKAFKA_DEBUG): straight to stderr with a timestamp.
    fn log(&self, _level: rdkafka::config::RDKafkaLogLevel, fac: &str, msg: &str) {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        eprintln!("{t:.6} {fac} {msg}");
    }
}

impl rdkafka::consumer::ConsumerContext for Ctx {}

impl ProducerContext for Ctx {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        match r {
            Ok(_) => self.0.ok.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.0.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

fn producer(addr: &str, extra: &[(&str, &str)]) -> Result<(BaseProducer<Ctx>, Ctx), String> {
    let mut c = ClientConfig::new();
    debug(&mut c)
        .set("bootstrap.servers", addr)
        .set("acks", "1")
        .set("compression.type", "none")
        .set("queue.buffering.max.messages", "2000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("message.timeout.ms", "60000");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    let ctx = Ctx::default();
    let p = c
        .create_with_context(ctx.clone())
        .map_err(|e| format!("producer: {e}"))?;
    Ok((p, ctx))
}

/// `BENCH_RDKAFKA_DEBUG=fetch,...` turns on librdkafka's debug log (to stderr).
fn debug(c: &mut ClientConfig) -> &mut ClientConfig {
    if let Ok(d) = std::env::var("BENCH_RDKAFKA_DEBUG") {
        c.set("debug", d);
        c.set_log_level(rdkafka::config::RDKafkaLogLevel::Debug);
    }
    c
}

fn consumer(addr: &str, isolation: &str) -> Result<BaseConsumer<Ctx>, String> {
    debug(&mut ClientConfig::new())
        .set("bootstrap.servers", addr)
        .set("isolation.level", isolation)
        .set("group.id", "bench") // required by librdkafka's consumer; no group API is used
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        // librdkafka stops fetching for fetch.queue.backoff.ms (1 s) once queued.min.messages
        // (100,000) wait in its queue: against a fast broker that alone halves the rate.
        .set("queued.min.messages", "1000000")
        .set("fetch.queue.backoff.ms", "10")
        .create_with_context(Ctx::default())
        .map_err(|e| format!("consumer: {e}"))
}

fn send_retrying(p: &BaseProducer<Ctx>, topic: &str, payload: &[u8]) -> Result<(), String> {
    let mut rec = BaseRecord::<(), [u8], ()>::to(topic)
        .payload(payload)
        .partition(0);
    loop {
        match p.send(rec) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                rec = r;
                p.poll(Duration::from_millis(1));
            }
            Err((e, _)) => return Err(format!("send: {e}")),
        }
    }
}

/// Scenario 1: `count` records of `size` bytes, acks=1, linger.ms=5, 1 MB batches.
pub fn produce(
    addr: &str,
    topic: &str,
    count: u64,
    size: usize,
    pid: Option<u32>,
) -> Result<String, String> {
    let (p, ctx) = producer(
        addr,
        &[
            ("linger.ms", "5"),
            ("batch.size", "1000000"),
            ("batch.num.messages", "100000"),
        ],
    )?;
    // Warm up: metadata and the connection, outside the measured window.
    send_retrying(&p, topic, b"warmup")?;
    p.flush(Duration::from_secs(10))
        .map_err(|e| format!("flush: {e}"))?;
    let base_ok = ctx.0.ok.load(Ordering::Relaxed);
    let payload = vec![b'v'; size];
    let w = Window::start(pid);
    for i in 0..count {
        send_retrying(&p, topic, &payload)?;
        if i % 4096 == 0 {
            p.poll(Duration::ZERO);
        }
    }
    p.flush(Duration::from_secs(60))
        .map_err(|e| format!("flush: {e}"))?;
    let (wall, s) = w.finish();
    let ok = ctx.0.ok.load(Ordering::Relaxed) - base_ok;
    let failed = ctx.0.failed.load(Ordering::Relaxed);
    Ok(format!(
        "msgs={ok} failed={failed} msg_s={:.0} mb_s={:.1} {s}",
        ok as f64 / wall,
        (ok as f64 * size as f64) / wall / 1e6
    ))
}

/// Scenario 4: reads `count` records from offset 0 of partition 0.
pub fn consume(
    addr: &str,
    topic: &str,
    count: u64,
    pid: Option<u32>,
    isolation: &str,
) -> Result<String, String> {
    let c = consumer(addr, isolation)?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .map_err(|e| e.to_string())?;
    let w = Window::start(pid);
    c.assign(&tpl).map_err(|e| format!("assign: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut n, mut bytes, mut errors) = (0u64, 0u64, 0u64);
    let mut first: Option<Instant> = None;
    while n < count && Instant::now() < deadline {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                first.get_or_insert_with(Instant::now);
                n += 1;
                bytes += m.payload_len() as u64;
            }
            Some(Err(_)) => errors += 1,
            None => {}
        }
    }
    let (wall, s) = w.finish();
    // Steady state: first message to last, without connecting, metadata and ListOffsets.
    let steady = first.map_or(wall, |f| f.elapsed().as_secs_f64());
    Ok(format!(
        "msgs={n} errors={errors} msg_s={:.0} msg_s_total={:.0} mb_s={:.1} first_msg_s={:.3} {s}",
        n as f64 / steady,
        n as f64 / wall,
        bytes as f64 / steady / 1e6,
        wall - steady
    ))
}

/// Scenario 5: `rate` msg/s for `secs`, linger.ms=0; the consumer in this process reads the
/// send time out of each payload.
pub fn latency(addr: &str, topic: &str, rate: u64, secs: u64) -> Result<String, String> {
    let epoch = Instant::now();
    let (p, _ctx) = producer(addr, &[("linger.ms", "0")])?;
    let c = consumer(addr, "read_uncommitted")?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .map_err(|e| e.to_string())?;
    c.assign(&tpl).map_err(|e| format!("assign: {e}"))?;
    let total = rate * secs;
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut lat = Vec::with_capacity(total as usize);
            let deadline = Instant::now() + Duration::from_secs(secs + 30);
            while (lat.len() as u64) < total && Instant::now() < deadline {
                if done.load(Ordering::Relaxed) && lat.is_empty() {
                    break;
                }
                if let Some(Ok(m)) = c.poll(Duration::from_millis(50)) {
                    let now = epoch.elapsed().as_nanos() as u64;
                    if let Some(pl) = m.payload() {
                        if pl.len() >= 9 && pl[0] == 1 {
                            let sent = u64::from_be_bytes(pl[1..9].try_into().unwrap_or([0; 8]));
                            lat.push(now.saturating_sub(sent));
                        }
                    }
                }
            }
            lat
        })
    };
    let mut payload = vec![b'p'; 100];
    // One second of warm-up traffic (flag 0) while the consumer starts fetching.
    let warm = Instant::now();
    payload[0] = 0;
    while warm.elapsed() < Duration::from_secs(1) {
        send_retrying(&p, topic, &payload)?;
        p.poll(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(1));
    }
    payload[0] = 1;
    let start = Instant::now();
    let step = Duration::from_nanos(1_000_000_000 / rate.max(1));
    for i in 0..total {
        let due = start + step * i as u32;
        // Sleep, not poll(timeout): BaseProducer::poll returns at once here and would spin a
        // core that the broker and librdkafka's threads need.
        p.poll(Duration::ZERO);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let t = epoch.elapsed().as_nanos() as u64;
        payload[1..9].copy_from_slice(&t.to_be_bytes());
        send_retrying(&p, topic, &payload)?;
    }
    p.flush(Duration::from_secs(10))
        .map_err(|e| format!("flush: {e}"))?;
    done.store(true, Ordering::Relaxed);
    let mut lat = reader.join().map_err(|_| "consumer thread panicked")?;
    if lat.is_empty() {
        return Err("no message came back".into());
    }
    if let Ok(path) = std::env::var("BENCH_LAT_DUMP") {
        // Arrival order, one latency in ns a line, for looking at the spikes.
        let text: String = lat.iter().map(|l| format!("{l}\n")).collect();
        let _ = std::fs::write(path, text);
    }
    lat.sort_unstable();
    let pct = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize] as f64 / 1e6;
    Ok(format!(
        "msgs={} sent={total} p50_ms={:.3} p99_ms={:.3} p999_ms={:.3} max_ms={:.3}",
        lat.len(),
        pct(0.5),
        pct(0.99),
        pct(0.999),
        lat[lat.len() - 1] as f64 / 1e6
    ))
}
