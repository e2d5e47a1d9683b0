//! Helpers for integration tests that talk to the real broker binary over TCP with raw frames:
//! a broker process on a free port with its own directory, a blocking client, and a small
//! independent decoder (deliberately not the crate's own, so both sides are checked).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../shared/tempdir.rs"]
mod tempdir;
pub use tempdir::TempDir;

#[path = "../shared/ports.rs"]
mod ports;
pub use ports::free_port;

/// The broker binary started as CodeCrafters does: `minikafka <server.properties>`.
pub struct BrokerProcess {
    pub child: Child,
    pub port: u16,
    pub output: PathBuf,
}

impl BrokerProcess {
    pub fn start(properties: &Path, port: u16, workdir: &Path) -> BrokerProcess {
        let output = workdir.join("broker.out");
        let out = std::fs::File::create(&output).expect("broker output file");
        let err = out.try_clone().expect("clone output file");
        let child = Command::new(env!("CARGO_BIN_EXE_minikafka"))
            .arg(properties)
            .current_dir(workdir)
            .env("LOG_LEVEL", "warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn broker binary");
        let mut b = BrokerProcess {
            child,
            port,
            output,
        };
        b.wait_serving(Duration::from_secs(15));
        b
    }

    /// Returns once the broker answers an ApiVersions request: not when its port opens (it is
    /// bound before the logs are opened and the loop runs).
    fn wait_serving(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "broker exited with {status} before serving:\n{}",
                    self.output_text()
                );
            }
            if api_versions_answered(self.port) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "broker on {} did not answer ApiVersions within {timeout:?}:\n{}",
                    self.port,
                    self.output_text()
                );
            }
            // Polling for a condition, not ordering by time.
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn output_text(&self) -> String {
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        text.get(start..).unwrap_or("").to_string()
    }

    pub fn client(&self) -> Client {
        Client::connect(self.port)
    }

    /// SIGTERM (through kill(1): no libc crate here), then SIGKILL after 10 s.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        if let Ok(Some(s)) = self.child.try_wait() {
            return Some(s);
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Whether the broker on `port` answers one ApiVersions v0 request.
pub fn api_versions_answered(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut req = 15i32.to_be_bytes().to_vec();
    req.extend_from_slice(&18i16.to_be_bytes()); // ApiVersions
    req.extend_from_slice(&0i16.to_be_bytes()); // v0
    req.extend_from_slice(&0x5eedi32.to_be_bytes());
    req.extend_from_slice(&5i16.to_be_bytes());
    req.extend_from_slice(b"ready");
    let mut head = [0u8; 8];
    s.write_all(&req).is_ok()
        && s.read_exact(&mut head).is_ok()
        && i32::from_be_bytes([head[4], head[5], head[6], head[7]]) == 0x5eed
}

/// A blocking client: frames are `[size: i32][payload]`.
pub struct Client {
    pub stream: TcpStream,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to broker");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Client { stream }
    }

    /// Send a whole frame (size prefix included).
    pub fn send(&mut self, frame: &[u8]) {
        self.stream.write_all(frame).expect("send request");
    }

    /// Receive one response; returns the payload (after the size) and checks the size field.
    pub fn recv(&mut self) -> Vec<u8> {
        let mut size = [0u8; 4];
        self.stream
            .read_exact(&mut size)
            .expect("read response size (did the broker answer?)");
        let n = i32::from_be_bytes(size);
        assert!((0..64 << 20).contains(&n), "implausible response size {n}");
        let mut payload = vec![0u8; n as usize];
        self.stream
            .read_exact(&mut payload)
            .expect("read response payload (size field larger than the response?)");
        payload
    }

    pub fn roundtrip(&mut self, frame: &[u8]) -> Vec<u8> {
        self.send(frame);
        self.recv()
    }
}

/// Request header v2 (`client_id` "kafka-tester", empty tagged fields) + body, framed.
/// ApiVersions and every request the harness sends use this header.
pub fn request(api_key: i16, api_version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&api_key.to_be_bytes());
    m.extend_from_slice(&api_version.to_be_bytes());
    m.extend_from_slice(&correlation_id.to_be_bytes());
    let client_id = b"kafka-tester";
    m.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    m.extend_from_slice(client_id);
    m.push(0); // header tagged fields
    m.extend_from_slice(body);
    let mut frame = (m.len() as i32).to_be_bytes().to_vec();
    frame.extend(m);
    frame
}

/// A strict reader: every read checks the bytes remaining and panics with context if short.
pub struct Reader<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub fn take(&mut self, n: usize, what: &str) -> &'a [u8] {
        assert!(
            self.pos + n <= self.buf.len(),
            "response too short reading {what}: need {n} bytes at offset {}, have {}\n{}",
            self.pos,
            self.buf.len() - self.pos,
            hex(self.buf)
        );
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        s
    }

    pub fn i8(&mut self, what: &str) -> i8 {
        self.take(1, what)[0] as i8
    }
    pub fn i16(&mut self, what: &str) -> i16 {
        i16::from_be_bytes(self.take(2, what).try_into().unwrap())
    }
    pub fn i32(&mut self, what: &str) -> i32 {
        i32::from_be_bytes(self.take(4, what).try_into().unwrap())
    }
    pub fn i64(&mut self, what: &str) -> i64 {
        i64::from_be_bytes(self.take(8, what).try_into().unwrap())
    }
    pub fn uuid(&mut self, what: &str) -> [u8; 16] {
        self.take(16, what).try_into().unwrap()
    }
    pub fn boolean(&mut self, what: &str) -> bool {
        match self.i8(what) {
            0 => false,
            1 => true,
            b => panic!("{what}: boolean byte {b}"),
        }
    }

    pub fn uvarint(&mut self, what: &str) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1, what)[0];
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return v;
            }
        }
        panic!("{what}: unsigned varint too long");
    }

    /// Compact array length: None for null (0), Some(n) for n+1.
    pub fn compact_len(&mut self, what: &str) -> Option<usize> {
        match self.uvarint(what) {
            0 => None,
            n => {
                let n = (n - 1) as usize;
                assert!(
                    n <= self.buf.len(),
                    "{what}: length {n} larger than the response"
                );
                Some(n)
            }
        }
    }

    pub fn compact_string(&mut self, what: &str) -> String {
        let n = self
            .compact_len(what)
            .unwrap_or_else(|| panic!("{what}: null where a string is required"));
        String::from_utf8(self.take(n, what).to_vec()).expect("utf-8 string")
    }

    pub fn compact_nullable_string(&mut self, what: &str) -> Option<String> {
        self.compact_len(what)
            .map(|n| String::from_utf8(self.take(n, what).to_vec()).expect("utf-8 string"))
    }

    pub fn compact_bytes(&mut self, what: &str) -> Option<&'a [u8]> {
        self.compact_len(what).map(|n| self.take(n, what))
    }

    pub fn compact_i32_array(&mut self, what: &str) -> Option<Vec<i32>> {
        self.compact_len(what)
            .map(|n| (0..n).map(|_| self.i32(what)).collect())
    }

    /// Tagged fields: count, then (tag, size, bytes) each; skipped.
    pub fn tagged_fields(&mut self, what: &str) {
        let n = self.uvarint(what);
        for _ in 0..n {
            self.uvarint(what);
            let size = self.uvarint(what) as usize;
            self.take(size, what);
        }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn expect_end(&self, what: &str) {
        assert_eq!(
            self.remaining(),
            0,
            "{what}: {} unexpected trailing bytes at offset {}\n{}",
            self.remaining(),
            self.pos,
            hex(self.buf)
        );
    }
}

pub fn hex(b: &[u8]) -> String {
    let mut s = String::new();
    for (i, chunk) in b.chunks(16).enumerate() {
        s.push_str(&format!("{:04x} |", i * 16));
        for x in chunk {
            s.push_str(&format!(" {x:02x}"));
        }
        s.push('\n');
    }
    s
}
