//! The broker's CPU time and resident size from /proc, sampled around a measured window.

use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

fn clock_ticks() -> f64 {
    static TCK: OnceLock<f64> = OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// utime + stime of `pid` in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces: state is field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// VmRSS of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// RssAnon of `pid` in KiB: the heap, without mapped files.
pub fn rss_anon_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "RssAnon:")
}

fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A measured window: wall time and, when a broker pid is known, its CPU time.
pub struct Window {
    pid: Option<u32>,
    start: Instant,
    cpu0: Option<f64>,
}

impl Window {
    pub fn start(pid: Option<u32>) -> Window {
        let cpu0 = pid.and_then(cpu_seconds);
        Window {
            pid,
            start: Instant::now(),
            cpu0,
        }
    }

    /// `wall=... cpu=... cpu_pct=... rss_kib=...` for the RESULT line.
    pub fn finish(&self) -> (f64, String) {
        let wall = self.start.elapsed().as_secs_f64();
        let mut s = format!("wall={wall:.4}");
        if let (Some(pid), Some(c0)) = (self.pid, self.cpu0) {
            if let Some(c1) = cpu_seconds(pid) {
                let cpu = c1 - c0;
                s += &format!(" cpu={cpu:.3} cpu_pct={:.0}", 100.0 * cpu / wall.max(1e-9));
            }
            if let Some(r) = rss_kib(pid) {
                s += &format!(" rss_kib={r}");
            }
        }
        (wall, s)
    }
}
