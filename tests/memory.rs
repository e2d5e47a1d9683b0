//! Memory follows the configuration, not the attacker (issue 7): the broker binary's resident
//! size with 10,000 idle connections, and after a flood of 2,000 connections has closed.
//! Each connection held a 16 KiB zeroed read buffer from accept to close before: 10,000 idle
//! connections took 156 MiB, and RSS stayed 31 MiB up after 2,000 had come and gone.

mod common;

use common::{api_versions_answered, free_port, BrokerProcess, TempDir};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const MIB: u64 = 1024;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn start(tag: &str) -> (BrokerProcess, TempDir) {
    let dir = TempDir::new(tag);
    let port = free_port();
    let props = dir.path().join("server.properties");
    let logs = dir.path().join("logs");
    std::fs::write(
        &props,
        format!(
            "node.id=1\nlisteners=PLAINTEXT://127.0.0.1:{port}\nlog.dirs={}\n",
            logs.display()
        ),
    )
    .unwrap();
    (BrokerProcess::start(&props, port, dir.path()), dir)
}

/// A connection that has been answered one ApiVersions.
fn served(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = 15i32.to_be_bytes().to_vec();
    req.extend_from_slice(&[0, 18, 0, 0, 0, 0, 0, 7, 0, 5]);
    req.extend_from_slice(b"probe");
    s.write_all(&req).unwrap();
    let mut size = [0u8; 4];
    s.read_exact(&mut size).unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut body).unwrap();
    assert_eq!(&body[..4], &7i32.to_be_bytes());
    s
}

/// Polls `f` until it holds or `timeout` passes; returns whether it held.
fn within(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    loop {
        if f() {
            return true;
        }
        if t.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20)); // polling a condition
    }
}

#[test]
fn idle_connections_and_a_flood_of_them_cost_little_memory() {
    minikafka::reactor::fdlimit::raise_nofile_limit().unwrap();
    let have = minikafka::reactor::fdlimit::nofile_limit().unwrap_or(u64::MAX);
    assert!(
        have >= 10_500,
        "this test needs 10,500 open files, the limit is {have}"
    );
    let (broker, _dir) = start("memory");
    let pid = broker.child.id();
    assert!(api_versions_answered(broker.port));
    let idle = rss_kib(pid);

    // A flood: 2,000 connections, each served, then all closed.
    let flood: Vec<TcpStream> = (0..2000).map(|_| served(broker.port)).collect();
    let open = rss_kib(pid);
    drop(flood);
    let back = within(Duration::from_secs(5), || rss_kib(pid) <= idle + 16 * MIB);
    assert!(
        back,
        "RSS {} KiB 5 s after 2,000 connections closed (idle {idle} KiB, {open} KiB open)",
        rss_kib(pid)
    );

    // A crowd: 10,000 idle connections, and the broker still answers at once.
    let before = rss_kib(pid);
    let crowd: Vec<TcpStream> = (0..10_000).map(|_| served(broker.port)).collect();
    let with = rss_kib(pid);
    let t = Instant::now();
    assert!(api_versions_answered(broker.port));
    let probe = t.elapsed();
    assert!(
        with <= 64 * MIB,
        "RSS {with} KiB with 10,000 idle connections (before: {before} KiB)"
    );
    assert!(probe < Duration::from_secs(1), "ApiVersions took {probe:?}");
    drop(crowd);
    assert!(within(Duration::from_secs(5), || rss_kib(pid) <= idle + 16 * MIB));
}
