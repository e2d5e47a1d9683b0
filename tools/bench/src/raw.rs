//! A hand-written Kafka client for the raw benchmarks: record batches built once and resent,
//! ProduceRequest v8 pipelined on blocking sockets, CreateTopics v2 and ApiVersions v0.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const PRODUCE: i16 = 0;
const PRODUCE_VERSION: i16 = 8;
const API_VERSIONS: i16 = 18;
const CREATE_TOPICS: i16 = 19;
const CLIENT_ID: &[u8] = b"bench-raw";
/// Byte offset of the correlation id in a v1 request frame (after size, key and version).
const CORR_AT: usize = 8;

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(crate) fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = zigzag(v);
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

pub(crate) fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s);
}

/// A magic-v2 record batch of `value_size`-byte values (null keys, no headers), as many records
/// as fit in `max_bytes` (at least one), CRC-32C filled in. Returns the batch and its record count.
pub fn build_batch(max_bytes: usize, value_size: usize, timestamp_ms: i64) -> (Vec<u8>, usize) {
    let value = vec![b'x'; value_size];
    let mut records = Vec::with_capacity(max_bytes);
    let mut count = 0usize;
    let mut one = Vec::with_capacity(value_size + 16);
    loop {
        one.clear();
        one.push(0); // attributes
        put_varint(&mut one, 0); // timestamp delta
        put_varint(&mut one, count as i64); // offset delta
        put_varint(&mut one, -1); // null key
        put_varint(&mut one, value_size as i64);
        one.extend_from_slice(&value);
        put_varint(&mut one, 0); // headers
        let mut framed = Vec::with_capacity(one.len() + 3);
        put_varint(&mut framed, one.len() as i64);
        framed.extend_from_slice(&one);
        if count > 0 && 61 + records.len() + framed.len() > max_bytes {
            break;
        }
        records.extend_from_slice(&framed);
        count += 1;
    }
    let mut b = Vec::with_capacity(61 + records.len());
    b.extend_from_slice(&0i64.to_be_bytes()); // base offset (the broker assigns it)
    b.extend_from_slice(&((49 + records.len()) as i32).to_be_bytes()); // batch length
    b.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    b.push(2); // magic
    b.extend_from_slice(&[0; 4]); // crc, below
    b.extend_from_slice(&0i16.to_be_bytes()); // attributes: no compression, CreateTime
    b.extend_from_slice(&((count - 1) as i32).to_be_bytes()); // last offset delta
    b.extend_from_slice(&timestamp_ms.to_be_bytes()); // base timestamp
    b.extend_from_slice(&timestamp_ms.to_be_bytes()); // max timestamp
    b.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    b.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    b.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    b.extend_from_slice(&(count as i32).to_be_bytes());
    b.extend_from_slice(&records);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    (b, count)
}

pub(crate) fn frame(api_key: i16, version: i16, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(body.len() + 32);
    f.extend_from_slice(&[0; 4]);
    f.extend_from_slice(&api_key.to_be_bytes());
    f.extend_from_slice(&version.to_be_bytes());
    f.extend_from_slice(&0i32.to_be_bytes()); // correlation id, set per send
    put_str(&mut f, CLIENT_ID);
    f.extend_from_slice(body);
    let n = (f.len() - 4) as i32;
    f[..4].copy_from_slice(&n.to_be_bytes());
    f
}

/// A whole ProduceRequest v8 frame for one batch to one partition.
pub fn produce_frame(
    topic: &str,
    partition: i32,
    acks: i16,
    timeout_ms: i32,
    batch: &[u8],
) -> Vec<u8> {
    let mut body = Vec::with_capacity(batch.len() + 64);
    body.extend_from_slice(&(-1i16).to_be_bytes()); // transactional id: null
    body.extend_from_slice(&acks.to_be_bytes());
    body.extend_from_slice(&timeout_ms.to_be_bytes());
    body.extend_from_slice(&1i32.to_be_bytes()); // one topic
    put_str(&mut body, topic.as_bytes());
    body.extend_from_slice(&1i32.to_be_bytes()); // one partition
    body.extend_from_slice(&partition.to_be_bytes());
    body.extend_from_slice(&(batch.len() as i32).to_be_bytes());
    body.extend_from_slice(batch);
    frame(PRODUCE, PRODUCE_VERSION, &body)
}

pub fn set_correlation(frame: &mut [u8], id: i32) {
    frame[CORR_AT..CORR_AT + 4].copy_from_slice(&id.to_be_bytes());
}

/// Reads one response frame; returns (correlation id, body after it).
pub fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<i32> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let n = i32::from_be_bytes(len);
    if !(4..=64 << 20).contains(&n) {
        return Err(io::Error::other(format!("bad response size {n}")));
    }
    buf.resize(n as usize, 0);
    s.read_exact(buf)?;
    Ok(i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]))
}

/// A cursor over a response body that fails instead of panicking on short input.
pub(crate) struct Cur<'a> {
    pub b: &'a [u8],
    pub at: usize,
}

impl<'a> Cur<'a> {
    pub(crate) fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.b.len() - self.at < n {
            return Err(io::Error::other("short response"));
        }
        let s = &self.b[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }
    pub(crate) fn i16(&mut self) -> io::Result<i16> {
        let s = self.take(2)?;
        Ok(i16::from_be_bytes([s[0], s[1]]))
    }
    pub(crate) fn i32(&mut self) -> io::Result<i32> {
        let s = self.take(4)?;
        Ok(i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    pub(crate) fn skip(&mut self, n: usize) -> io::Result<()> {
        self.take(n).map(|_| ())
    }
    pub(crate) fn string(&mut self) -> io::Result<()> {
        let n = self.i16()?;
        if n > 0 {
            self.skip(n as usize)?;
        }
        Ok(())
    }
    pub(crate) fn count(&mut self) -> io::Result<usize> {
        let n = self.i32()?;
        Ok(n.max(0) as usize)
    }
    /// A non-null string's text (null and invalid UTF-8 read as empty).
    pub(crate) fn text(&mut self) -> io::Result<String> {
        let n = self.i16()?;
        if n <= 0 {
            return Ok(String::new());
        }
        Ok(String::from_utf8_lossy(self.take(n as usize)?).into_owned())
    }
    /// Nullable bytes (null reads as empty).
    pub(crate) fn bytes(&mut self) -> io::Result<&'a [u8]> {
        let n = self.i32()?;
        if n <= 0 {
            return Ok(&[]);
        }
        self.take(n as usize)
    }
    /// An unsigned varint (compact lengths, tagged field counts).
    pub(crate) fn uvarint(&mut self) -> io::Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(io::Error::other("varint too long"))
    }
}

/// Checks a ProduceResponse v8 body (after the correlation id): Ok(()) when every partition
/// answered error code 0, otherwise the first code.
pub fn check_produce_response(body: &[u8]) -> io::Result<Result<(), i16>> {
    let mut c = Cur { b: body, at: 4 };
    for _ in 0..c.count()? {
        c.string()?;
        for _ in 0..c.count()? {
            c.skip(4)?; // partition index
            let err = c.i16()?;
            c.skip(24)?; // base offset, log append time, log start offset
            for _ in 0..c.count()? {
                c.skip(4)?;
                c.string()?;
            }
            c.string()?; // error message
            if err != 0 {
                return Ok(Err(err));
            }
        }
    }
    Ok(Ok(()))
}

pub fn connect(addr: &str, timeout: Duration) -> io::Result<TcpStream> {
    let sa = addr
        .parse()
        .map_err(|e| io::Error::other(format!("{addr}: {e}")))?;
    let s = TcpStream::connect_timeout(&sa, timeout)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    s.set_write_timeout(Some(Duration::from_secs(60)))?;
    Ok(s)
}

/// Creates a topic with CreateTopics v2; an existing topic (error 36) counts as success.
pub fn create_topic(addr: &str, topic: &str, partitions: i32) -> io::Result<()> {
    let mut s = connect(addr, Duration::from_secs(5))?;
    let mut body = Vec::new();
    body.extend_from_slice(&1i32.to_be_bytes());
    put_str(&mut body, topic.as_bytes());
    body.extend_from_slice(&partitions.to_be_bytes());
    body.extend_from_slice(&1i16.to_be_bytes()); // replication factor
    body.extend_from_slice(&0i32.to_be_bytes()); // assignments
    body.extend_from_slice(&0i32.to_be_bytes()); // configs
    body.extend_from_slice(&10_000i32.to_be_bytes()); // timeout
    body.push(0); // validate only
    let mut f = frame(CREATE_TOPICS, 2, &body);
    set_correlation(&mut f, 1);
    s.write_all(&f)?;
    let mut buf = Vec::new();
    read_response(&mut s, &mut buf)?;
    let mut c = Cur { b: &buf, at: 8 }; // correlation id, throttle time
    for _ in 0..c.count()? {
        c.string()?;
        let err = c.i16()?;
        if err != 0 && err != 36 {
            return Err(io::Error::other(format!(
                "CreateTopics {topic}: error {err}"
            )));
        }
        c.string()?;
    }
    Ok(())
}

/// One ApiVersions v0 round trip on a fresh connection: the broker is serving requests.
pub fn api_versions(s: &mut TcpStream) -> io::Result<()> {
    let mut f = frame(API_VERSIONS, 0, &[]);
    set_correlation(&mut f, 7);
    s.write_all(&f)?;
    let mut buf = Vec::new();
    let corr = read_response(s, &mut buf)?;
    if corr != 7 {
        return Err(io::Error::other("ApiVersions: wrong correlation id"));
    }
    Ok(())
}

/// Outcome of one producing connection.
#[derive(Default, Clone, Debug)]
pub struct ConnStats {
    pub requests: u64,
    pub records: u64,
    pub bytes: u64,
    pub error: Option<String>,
}

/// Sends `requests` copies of `frame` on `s` with up to `inflight` unanswered, reading the
/// responses in order and checking every error code; stops at `deadline`.
pub fn pipeline(
    s: &mut TcpStream,
    frame: &mut [u8],
    records_per_request: u64,
    batch_bytes: u64,
    requests: u64,
    inflight: u64,
    deadline: Instant,
) -> ConnStats {
    let mut st = ConnStats::default();
    let mut buf = Vec::with_capacity(256);
    let mut sent = 0u64;
    let mut acked = 0u64;
    let mut result = || -> io::Result<()> {
        while acked < requests {
            while sent < requests && sent - acked < inflight {
                set_correlation(frame, sent as i32);
                s.write_all(frame)?;
                sent += 1;
            }
            let corr = read_response(s, &mut buf)?;
            if corr != acked as i32 {
                return Err(io::Error::other(format!(
                    "response {corr} out of order (expected {acked})"
                )));
            }
            if let Err(code) = check_produce_response(&buf)? {
                return Err(io::Error::other(format!("produce error code {code}")));
            }
            acked += 1;
            st.requests += 1;
            st.records += records_per_request;
            st.bytes += batch_bytes;
            if Instant::now() > deadline {
                // Drain what is in flight, send no more.
                while acked < sent {
                    read_response(s, &mut buf)?;
                    acked += 1;
                }
                return Ok(());
            }
        }
        Ok(())
    };
    if let Err(e) = result() {
        st.error = Some(e.to_string());
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_fits_and_has_valid_crc() {
        let (b, n) = build_batch(1 << 20, 100, 1);
        assert!(b.len() <= 1 << 20 && b.len() > (1 << 20) - 200);
        assert!(n > 9000);
        let len = i32::from_be_bytes(b[8..12].try_into().unwrap()) as usize;
        assert_eq!(len + 12, b.len());
        let crc = u32::from_be_bytes(b[17..21].try_into().unwrap());
        assert_eq!(crc, crc32c::crc32c(&b[21..]));
        assert_eq!(
            i32::from_be_bytes(b[57..61].try_into().unwrap()) as usize,
            n
        );
    }

    #[test]
    fn varints() {
        let mut v = Vec::new();
        put_varint(&mut v, -1);
        put_varint(&mut v, 100);
        assert_eq!(v, [1, 0xc8, 0x01]);
    }
}
