//! Memory against many connections (issue 7): a flood of short connections and a crowd of idle
//! ones, with the broker's resident size read from /proc before, during and after.

use crate::procfs;
use crate::raw;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Open file descriptors of `pid` (its sockets, logs, poll).
fn fd_count(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// `n` connections, each answered one ApiVersions (so the broker accepted and served it).
fn open(addr: &str, n: usize) -> Result<Vec<TcpStream>, String> {
    let mut v = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = raw::connect(addr, Duration::from_secs(10))
            .map_err(|e| format!("connection {i}: {e} (raise `ulimit -n`?)"))?;
        raw::api_versions(&mut s).map_err(|e| format!("connection {i}: ApiVersions: {e}"))?;
        v.push(s);
    }
    Ok(v)
}

/// Waits until the broker holds at most `fds` descriptors (it closed what we closed).
fn wait_fds_at_most(pid: u32, fds: usize, timeout: Duration) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if fd_count(pid).is_some_and(|n| n <= fds) {
            return Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

fn rss(pid: u32) -> u64 {
    procfs::rss_kib(pid).unwrap_or(0)
}

/// The flood: RSS idle, with `conns` connections open (each served once), right after they
/// closed and `after` later.
pub fn flood(addr: &str, pid: u32, conns: usize, after: Duration) -> Result<String, String> {
    let mut first = raw::connect(addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    raw::api_versions(&mut first).map_err(|e| e.to_string())?;
    drop(first);
    let fds0 = fd_count(pid).unwrap_or(0);
    std::thread::sleep(Duration::from_millis(200));
    let idle = rss(pid);
    let t = Instant::now();
    let open_conns = open(addr, conns)?;
    let opened_in = t.elapsed();
    let open_rss = rss(pid);
    drop(open_conns);
    let closed_at = Instant::now();
    let drained = wait_fds_at_most(pid, fds0, Duration::from_secs(30));
    let closed = rss(pid);
    std::thread::sleep(after.saturating_sub(closed_at.elapsed()));
    let later = rss(pid);
    Ok(format!(
        "conns={conns} rss_idle_kib={idle} rss_open_kib={open_rss} rss_closed_kib={closed} \
         rss_after_kib={later} after_s={:.1} over_idle_kib={} opened_s={:.3} drained_ms={}",
        after.as_secs_f64(),
        later.saturating_sub(idle),
        opened_in.as_secs_f64(),
        drained.map_or("never".into(), |d| format!("{:.0}", d.as_secs_f64() * 1e3))
    ))
}

/// The crowd: RSS with `conns` idle connections held open (each served once).
pub fn idle(addr: &str, pid: u32, conns: usize) -> Result<String, String> {
    let mut first = raw::connect(addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    raw::api_versions(&mut first).map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_millis(200));
    let before = rss(pid);
    let t = Instant::now();
    let held = open(addr, conns)?;
    let opened_in = t.elapsed();
    std::thread::sleep(Duration::from_millis(200));
    let with = rss(pid);
    // Still served while they are all open.
    let t = Instant::now();
    raw::api_versions(&mut first).map_err(|e| format!("with {conns} open: {e}"))?;
    let probe_ms = t.elapsed().as_secs_f64() * 1e3;
    let per_conn = (with.saturating_sub(before) * 1024) / conns.max(1) as u64;
    drop(held);
    Ok(format!(
        "conns={conns} rss_before_kib={before} rss_kib={with} bytes_per_conn={per_conn} \
         opened_s={:.3} probe_ms={probe_ms:.2}",
        opened_in.as_secs_f64()
    ))
}
