//! Scenario 13: produce latency of a concurrent client while the broker compacts a ~1 GB
//! partition. The compacted partition is filled with keyed records all stamped `t0`, and the
//! topic's `min.compaction.lag.ms` keeps the cleaner off it until `t0 + lag`, so the fill and
//! the cleaning do not overlap; a one-in-flight acks=1 producer to another topic runs from
//! before that moment until the cleaner has checkpointed the partition.

use crate::procfs;
use crate::raw::{self, put_str, put_varint, Cur};
use std::io::{self, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CREATE_TOPICS: i16 = 19;

pub struct Opts {
    pub addr: String,
    pub topic: String,
    pub lat_topic: String,
    pub dir: String,
    pub pid: Option<u32>,
    pub bytes: u64,
    pub keys: usize,
    pub value: usize,
    pub rate: u64,
    pub lag_ms: i64,
    pub segment_bytes: u64,
    pub max_secs: u64,
}

/// CreateTopics v2 of one single-partition topic with `configs`.
fn create_with_configs(addr: &str, topic: &str, configs: &[(&str, String)]) -> io::Result<()> {
    let mut s = raw::connect(addr, Duration::from_secs(5))?;
    let mut body = Vec::new();
    body.extend_from_slice(&1i32.to_be_bytes());
    put_str(&mut body, topic.as_bytes());
    body.extend_from_slice(&1i32.to_be_bytes()); // partitions
    body.extend_from_slice(&1i16.to_be_bytes()); // replication factor
    body.extend_from_slice(&0i32.to_be_bytes()); // assignments
    body.extend_from_slice(&(configs.len() as i32).to_be_bytes());
    for (k, v) in configs {
        put_str(&mut body, k.as_bytes());
        put_str(&mut body, v.as_bytes());
    }
    body.extend_from_slice(&10_000i32.to_be_bytes());
    body.push(0);
    let mut f = raw::frame(CREATE_TOPICS, 2, &body);
    raw::set_correlation(&mut f, 1);
    s.write_all(&f)?;
    let mut buf = Vec::new();
    raw::read_response(&mut s, &mut buf)?;
    let mut c = Cur { b: &buf, at: 8 };
    for _ in 0..c.count()? {
        c.string()?;
        let err = c.i16()?;
        let msg = c.text()?;
        if err != 0 {
            return Err(io::Error::other(format!(
                "CreateTopics {topic}: error {err} {msg}"
            )));
        }
    }
    Ok(())
}

/// A magic-v2 batch with one record per key in `keys` (key `key-NNNNNNN`), `value_size`-byte
/// values, every record stamped `ts`.
fn keyed_batch(keys: std::ops::Range<usize>, value_size: usize, ts: i64) -> Vec<u8> {
    let value = vec![b'v'; value_size];
    let mut records = Vec::new();
    let mut one = Vec::with_capacity(value_size + 32);
    let count = keys.len();
    for (i, k) in keys.enumerate() {
        let key = format!("key-{k:07}");
        one.clear();
        one.push(0);
        put_varint(&mut one, 0);
        put_varint(&mut one, i as i64);
        put_varint(&mut one, key.len() as i64);
        one.extend_from_slice(key.as_bytes());
        put_varint(&mut one, value_size as i64);
        one.extend_from_slice(&value);
        put_varint(&mut one, 0);
        put_varint(&mut records, one.len() as i64);
        records.extend_from_slice(&one);
    }
    let mut b = Vec::with_capacity(61 + records.len());
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&((49 + records.len()) as i32).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.push(2);
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&((count - 1) as i32).to_be_bytes());
    b.extend_from_slice(&ts.to_be_bytes());
    b.extend_from_slice(&ts.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&(count as i32).to_be_bytes());
    b.extend_from_slice(&records);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Sends `frames[i % len]` for i in 0.. with 8 in flight until `stop(bytes sent)` says so.
fn fill(
    s: &mut TcpStream,
    frames: &mut [Vec<u8>],
    mut stop: impl FnMut(u64) -> bool,
) -> io::Result<u64> {
    let (mut sent, mut acked, mut bytes) = (0u64, 0u64, 0u64);
    let mut buf = Vec::new();
    let mut stopping = false;
    loop {
        while !stopping && sent - acked < 8 {
            if stop(bytes) {
                stopping = true;
                break;
            }
            let n = frames.len();
            let f = &mut frames[sent as usize % n];
            raw::set_correlation(f, sent as i32);
            s.write_all(f)?;
            bytes += f.len() as u64;
            sent += 1;
        }
        if acked == sent {
            return Ok(bytes);
        }
        raw::read_response(s, &mut buf)?;
        if let Err(code) = raw::check_produce_response(&buf)? {
            return Err(io::Error::other(format!("fill: produce error {code}")));
        }
        acked += 1;
    }
}

fn dir_files(dir: &Path) -> Vec<(String, u64)> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    (n, e.metadata().map(|m| m.len()).unwrap_or(0))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn dir_bytes(dir: &Path) -> u64 {
    dir_files(dir).iter().map(|f| f.1).sum()
}

fn count_suffix(dir: &Path, suffixes: &[&str]) -> usize {
    dir_files(dir)
        .iter()
        .filter(|(n, _)| suffixes.iter().any(|s| n.ends_with(s)))
        .count()
}

/// The partition's line in `cleaner-offset-checkpoint`, if any.
fn checkpointed(logdir: &Path, topic: &str) -> Option<i64> {
    let text = std::fs::read_to_string(logdir.join("cleaner-offset-checkpoint")).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() == 3 && f[0] == topic && f[1] == "0")
            .then(|| f[2].parse().ok())
            .flatten()
    })
}

/// (time since start the request was sent, latency) of every request.
type Samples = Vec<(Duration, Duration)>;

/// One request in flight at `rate`/s until `stop`; the send schedule does not catch up after a
/// slow answer (the next request goes when the previous one is answered and its slot is due).
fn latency_loop(
    addr: &str,
    topic: &str,
    rate: u64,
    start: Instant,
    stop: Arc<AtomicBool>,
) -> Result<(Samples, u64), String> {
    let mut s = raw::connect(addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    let (batch, _) = raw::build_batch(200, 100, crate::now_ms());
    let mut f = raw::produce_frame(topic, 0, 1, 30_000, &batch);
    let mut buf = Vec::new();
    let period = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let mut next = Instant::now();
    let mut out = Vec::with_capacity(200_000);
    let mut errors = 0u64;
    let mut corr = 0i32;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep(next - now);
        }
        next = next.max(Instant::now() - period) + period;
        corr = corr.wrapping_add(1);
        raw::set_correlation(&mut f, corr);
        let t = Instant::now();
        s.write_all(&f).map_err(|e| e.to_string())?;
        raw::read_response(&mut s, &mut buf).map_err(|e| e.to_string())?;
        let lat = t.elapsed();
        if !matches!(raw::check_produce_response(&buf), Ok(Ok(()))) {
            errors += 1;
        }
        out.push((t - start, lat));
    }
    Ok((out, errors))
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
}

fn stats(v: &mut [f64]) -> String {
    format!(
        "n={} p50={:.3} p99={:.3} p999={:.3} max={:.3}",
        v.len(),
        pct(v, 0.5),
        pct(v, 0.99),
        pct(v, 0.999),
        pct(v, 1.0)
    )
}

pub fn run(o: &Opts) -> Result<String, String> {
    let e = |e: io::Error| e.to_string();
    let logdir = Path::new(&o.dir);
    let pdir = logdir.join(format!("{}-0", o.topic));
    create_with_configs(
        &o.addr,
        &o.topic,
        &[
            ("cleanup.policy", "compact".into()),
            ("segment.bytes", o.segment_bytes.to_string()),
            ("min.cleanable.dirty.ratio", "0.01".into()),
            ("min.compaction.lag.ms", o.lag_ms.to_string()),
        ],
    )
    .map_err(e)?;
    raw::create_topic(&o.addr, &o.lat_topic, 1).map_err(e)?;

    // Batches just under 1 MiB (the default max.message.bytes), each a contiguous run of keys, cycling over all keys.
    let per_batch = ((1usize << 20) / (o.value + 32) - 8).max(1);
    let t0_ms = crate::now_ms();
    let t0 = Instant::now();
    let mut frames: Vec<Vec<u8>> = (0..o.keys.div_ceil(per_batch))
        .map(|i| {
            let k = i * per_batch..((i + 1) * per_batch).min(o.keys);
            raw::produce_frame(&o.topic, 0, 1, 30_000, &keyed_batch(k, o.value, t0_ms))
        })
        .collect();
    let mut s = raw::connect(&o.addr, Duration::from_secs(5)).map_err(e)?;
    let fill_start = Instant::now();
    let filled = fill(&mut s, &mut frames, |b| b >= o.bytes).map_err(e)?;
    let fill_secs = fill_start.elapsed().as_secs_f64();
    // More batches until a new segment starts, so every filled segment is cleanable.
    let logs = |d: &Path| count_suffix(d, &[".log"]);
    let segs = logs(&pdir);
    let extra = fill(&mut s, &mut frames, |_| logs(&pdir) > segs).map_err(e)?;
    drop(s);
    let segments = logs(&pdir);
    let bytes_before = dir_bytes(&pdir);
    let clean_at = t0 + Duration::from_millis(o.lag_ms as u64);
    let early = Instant::now() >= clean_at;

    // The latency client, from before the cleaner may start until it is done.
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let h = {
        let (addr, topic, stop) = (o.addr.clone(), o.lat_topic.clone(), stop.clone());
        let rate = o.rate;
        std::thread::spawn(move || latency_loop(&addr, &topic, rate, start, stop))
    };
    let now = Instant::now();
    if now < clean_at {
        std::thread::sleep(clean_at - now);
    }
    let w = procfs::Window::start(o.pid);
    let clean_start = Instant::now() - start;
    let clean_start_unix_ms = crate::now_ms();
    let deadline = Instant::now() + Duration::from_secs(o.max_secs);
    let mut first_output: Option<Duration> = None;
    let mut done = None;
    while Instant::now() < deadline {
        if first_output.is_none() && count_suffix(&pdir, &[".cleaned", ".swap"]) > 0 {
            first_output = Some(Instant::now() - start);
        }
        if checkpointed(logdir, &o.topic).is_some() {
            done = Some(Instant::now() - start);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (_, cpu) = w.finish();
    let clean_end = done.unwrap_or_else(|| Instant::now() - start);
    // A second of baseline after the end too, then stop the client.
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let (samples, errors) = h.join().map_err(|_| "latency thread panicked")??;
    // Replaced segments are unlinked a few per tick.
    for _ in 0..100 {
        if count_suffix(&pdir, &[".deleted", ".cleaned", ".swap"]) == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let bytes_after = dir_bytes(&pdir);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (mut during, mut outside): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    let mut worst = (Duration::ZERO, Duration::ZERO);
    for &(at, lat) in &samples {
        if at + lat >= clean_start && at <= clean_end {
            during.push(ms(lat));
            if lat > worst.1 {
                worst = (at, lat);
            }
        } else {
            outside.push(ms(lat));
        }
    }
    let secs = (clean_end - clean_start).as_secs_f64();
    let sent_rate = during.len() as f64 / secs.max(1e-9);
    // The ten slowest requests during cleaning, at ms since cleaning started.
    let mut slow: Vec<(Duration, Duration)> = samples
        .iter()
        .filter(|(at, _)| *at >= clean_start && *at <= clean_end)
        .copied()
        .collect();
    slow.sort_by_key(|x| std::cmp::Reverse(x.1));
    let slow: Vec<String> = slow
        .iter()
        .take(10)
        .map(|(at, l)| format!("{:.1}@{:.0}", ms(*l), ms(*at - clean_start)))
        .collect();
    let mut d = during.clone();
    Ok(format!(
        "done={} clean_secs={secs:.2} bytes_before={bytes_before} bytes_after={bytes_after} \
         segments={segments} fill_bytes={} fill_secs={fill_secs:.2} fill_early={} \
         first_output_ms={:.0} during_{} idle_{} req_s={sent_rate:.0} errors={errors} \
         p50_ms={:.3} p99_ms={:.3} max_ms={:.3} slowest={} clean_start_unix_ms={clean_start_unix_ms} {cpu}",
        u8::from(done.is_some()),
        filled + extra,
        u8::from(early),
        first_output
            .map(|f| ms(f) - ms(clean_start))
            .unwrap_or(-1.0),
        stats(&mut during).replace(' ', " during_"),
        stats(&mut outside).replace(' ', " idle_"),
        pct(&mut d, 0.5),
        pct(&mut d, 0.99),
        pct(&mut d, 1.0),
        slow.join(","),
    ))
}
