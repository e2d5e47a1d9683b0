//! Hand-written group requests for scenarios 11 and 12: JoinGroup v5, SyncGroup v3, Heartbeat
//! v3, LeaveGroup v3 (all non-flexible) and OffsetCommit v8 (flexible: header v2, compact
//! strings), each a blocking round trip or, for commits, a frame to pipeline.

use crate::raw::{frame, put_str, read_response, set_correlation, Cur};
use std::io::{self, Write};
use std::net::TcpStream;

const OFFSET_COMMIT: i16 = 8;
const JOIN_GROUP: i16 = 11;
const HEARTBEAT: i16 = 12;
const LEAVE_GROUP: i16 = 13;
const SYNC_GROUP: i16 = 14;

pub const MEMBER_ID_REQUIRED: i16 = 79;
pub const REBALANCE_IN_PROGRESS: i16 = 27;

/// A blocking connection that numbers its requests and checks each answer's correlation id.
pub struct Conn {
    pub s: TcpStream,
    corr: i32,
    buf: Vec<u8>,
}

impl Conn {
    pub fn new(s: TcpStream) -> Conn {
        Conn {
            s,
            corr: 0,
            buf: Vec::with_capacity(1024),
        }
    }

    /// Sends `f` and returns the response body after the correlation id.
    fn call(&mut self, mut f: Vec<u8>) -> io::Result<&[u8]> {
        self.corr = self.corr.wrapping_add(1);
        set_correlation(&mut f, self.corr);
        self.s.write_all(&f)?;
        let corr = read_response(&mut self.s, &mut self.buf)?;
        if corr != self.corr {
            return Err(io::Error::other(format!(
                "correlation {corr}, expected {}",
                self.corr
            )));
        }
        Ok(&self.buf[4..])
    }

    /// JoinGroup v5 with protocol "range" subscribed to `topic`.
    pub fn join(
        &mut self,
        group: &str,
        member: &str,
        topic: &str,
        session_ms: i32,
        rebalance_ms: i32,
    ) -> io::Result<Joined> {
        let mut meta = Vec::new(); // ConsumerProtocolSubscription v0
        meta.extend_from_slice(&0i16.to_be_bytes());
        meta.extend_from_slice(&1i32.to_be_bytes());
        put_str(&mut meta, topic.as_bytes());
        meta.extend_from_slice(&(-1i32).to_be_bytes()); // user data: null
        let mut b = Vec::with_capacity(128);
        put_str(&mut b, group.as_bytes());
        b.extend_from_slice(&session_ms.to_be_bytes());
        b.extend_from_slice(&rebalance_ms.to_be_bytes());
        put_str(&mut b, member.as_bytes());
        b.extend_from_slice(&(-1i16).to_be_bytes()); // group instance id: null
        put_str(&mut b, b"consumer");
        b.extend_from_slice(&1i32.to_be_bytes());
        put_str(&mut b, b"range");
        b.extend_from_slice(&(meta.len() as i32).to_be_bytes());
        b.extend_from_slice(&meta);
        let body = self.call(frame(JOIN_GROUP, 5, &b))?;
        let mut c = Cur { b: body, at: 4 }; // throttle time
        let error = c.i16()?;
        let generation = c.i32()?;
        c.string()?; // protocol name
        let leader = c.text()?;
        let member_id = c.text()?;
        let mut members = Vec::new();
        for _ in 0..c.count()? {
            members.push(c.text()?);
            c.string()?; // group instance id
            c.bytes()?;
        }
        Ok(Joined {
            error,
            generation,
            leader,
            member_id,
            members,
        })
    }

    /// SyncGroup v3; returns (error code, assignment bytes).
    pub fn sync(
        &mut self,
        group: &str,
        generation: i32,
        member: &str,
        assignments: &[(String, Vec<u8>)],
    ) -> io::Result<(i16, Vec<u8>)> {
        let mut b = Vec::with_capacity(64 + assignments.len() * 64);
        put_str(&mut b, group.as_bytes());
        b.extend_from_slice(&generation.to_be_bytes());
        put_str(&mut b, member.as_bytes());
        b.extend_from_slice(&(-1i16).to_be_bytes());
        b.extend_from_slice(&(assignments.len() as i32).to_be_bytes());
        for (m, a) in assignments {
            put_str(&mut b, m.as_bytes());
            b.extend_from_slice(&(a.len() as i32).to_be_bytes());
            b.extend_from_slice(a);
        }
        let body = self.call(frame(SYNC_GROUP, 3, &b))?;
        let mut c = Cur { b: body, at: 4 };
        let error = c.i16()?;
        let a = c.bytes()?.to_vec();
        Ok((error, a))
    }

    /// Heartbeat v3; returns the error code.
    pub fn heartbeat(&mut self, group: &str, generation: i32, member: &str) -> io::Result<i16> {
        let mut b = Vec::with_capacity(64);
        put_str(&mut b, group.as_bytes());
        b.extend_from_slice(&generation.to_be_bytes());
        put_str(&mut b, member.as_bytes());
        b.extend_from_slice(&(-1i16).to_be_bytes());
        let body = self.call(frame(HEARTBEAT, 3, &b))?;
        Cur { b: body, at: 4 }.i16()
    }

    /// LeaveGroup v3 for one member; returns the top-level error code, else the member's.
    pub fn leave(&mut self, group: &str, member: &str) -> io::Result<i16> {
        let mut b = Vec::with_capacity(64);
        put_str(&mut b, group.as_bytes());
        b.extend_from_slice(&1i32.to_be_bytes());
        put_str(&mut b, member.as_bytes());
        b.extend_from_slice(&(-1i16).to_be_bytes());
        let body = self.call(frame(LEAVE_GROUP, 3, &b))?;
        let mut c = Cur { b: body, at: 4 };
        let top = c.i16()?;
        if top != 0 {
            return Ok(top);
        }
        for _ in 0..c.count()? {
            c.string()?;
            c.string()?;
            let e = c.i16()?;
            if e != 0 {
                return Ok(e);
            }
        }
        Ok(0)
    }
}

pub struct Joined {
    pub error: i16,
    pub generation: i32,
    pub leader: String,
    pub member_id: String,
    pub members: Vec<String>,
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_compact_str(out: &mut Vec<u8>, s: &[u8]) {
    put_uvarint(out, s.len() as u64 + 1);
    out.extend_from_slice(s);
}

/// An OffsetCommit v8 frame (request header v2) for a simple consumer (generation -1, empty
/// member id): `offsets` are (partition, offset) of `topic`. The correlation id is set per send.
pub fn offset_commit_frame(group: &str, topic: &str, offsets: &[(i32, i64)]) -> Vec<u8> {
    let mut b = Vec::with_capacity(64 + offsets.len() * 20);
    b.push(0); // header tagged fields (header v2 = v1 + tags)
    put_compact_str(&mut b, group.as_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes()); // generation
    put_compact_str(&mut b, b""); // member id
    b.push(0); // group instance id: null
    put_uvarint(&mut b, 2); // one topic
    put_compact_str(&mut b, topic.as_bytes());
    put_uvarint(&mut b, offsets.len() as u64 + 1);
    for (p, o) in offsets {
        b.extend_from_slice(&p.to_be_bytes());
        b.extend_from_slice(&o.to_be_bytes());
        b.extend_from_slice(&(-1i32).to_be_bytes()); // leader epoch
        b.push(1); // metadata: ""
        b.push(0); // partition tags
    }
    b.push(0); // topic tags
    b.push(0); // request tags
    frame(OFFSET_COMMIT, 8, &b)
}

/// Checks an OffsetCommit v8 response body (after the correlation id): the first non-zero
/// partition error code, and the number of partitions answered.
pub fn check_offset_commit(body: &[u8]) -> io::Result<(i16, usize)> {
    let mut c = Cur { b: body, at: 0 };
    c.uvarint()?; // response header tags
    c.skip(4)?; // throttle time
    let (mut first, mut n) = (0i16, 0usize);
    for _ in 0..c.uvarint()?.saturating_sub(1) {
        let len = c.uvarint()?.saturating_sub(1);
        c.skip(len as usize)?;
        for _ in 0..c.uvarint()?.saturating_sub(1) {
            c.skip(4)?;
            let e = c.i16()?;
            if first == 0 {
                first = e;
            }
            n += 1;
            for _ in 0..c.uvarint()? {
                c.uvarint()?;
                let l = c.uvarint()?;
                c.skip(l as usize)?;
            }
        }
        for _ in 0..c.uvarint()? {
            c.uvarint()?;
            let l = c.uvarint()?;
            c.skip(l as usize)?;
        }
    }
    Ok((first, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_frame_layout() {
        let f = offset_commit_frame("g", "t", &[(3, 9)]);
        let n = i32::from_be_bytes(f[..4].try_into().unwrap()) as usize;
        assert_eq!(n + 4, f.len());
        assert_eq!(&f[4..8], &[0, 8, 0, 8]); // key 8, version 8
                                             // After client id "bench-raw": header tags, then compact "g".
        let at = 12 + 2 + 9;
        assert_eq!(&f[at..at + 3], &[0, 2, b'g']);
    }

    #[test]
    fn commit_response_parsed() {
        // tags, throttle, 1 topic "t" with partitions 0 (ok) and 1 (error 25).
        let mut b = vec![0, 0, 0, 0, 0, 2, 2, b't', 3];
        b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0]);
        b.extend_from_slice(&[0, 0, 0, 1, 0, 25, 0]);
        b.extend_from_slice(&[0, 0]);
        assert_eq!(check_offset_commit(&b).unwrap(), (25, 2));
        assert!(check_offset_commit(&b[..10]).is_err());
    }
}
