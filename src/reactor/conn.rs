//! One client connection: the bytes it holds between turns (at most a partial frame, or the
//! frames behind a parked request) and its queue of responses; and [`RecvBuf`], the two-phase
//! framing buffer used both for the reactor's shared scratch and for a connection's held bytes.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;
use mio::Interest;

/// Smallest request: apiKey (2) + apiVersion (2) + correlationId (4).
pub(crate) const MIN_FRAME: i32 = 8;
/// A buffer grows from at least this size (then geometrically, never past the frame it receives).
pub(crate) const MIN_GROWTH: usize = 16 * 1024;
/// Responses gathered into one `write_vectored` call at most.
const MAX_IOV: usize = 32;

/// The result of the first framing phase.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// Not a whole frame yet: `needed` bytes (prefix included) from the buffer start are required.
    Incomplete { needed: usize },
    /// A whole frame of this many bytes (prefix excluded) is buffered.
    Ready(usize),
    /// The declared size is below the minimal header or above the limit.
    Invalid(i32),
}

/// Received bytes with two-phase framing: `[start..filled)` of `buf` are received and not yet
/// consumed. `buf` is zero-initialised up to its length; reads go into `[filled..len)`.
#[derive(Default)]
pub(crate) struct RecvBuf {
    buf: Vec<u8>,
    start: usize,
    filled: usize,
}

impl RecvBuf {
    /// A buffer of `len` zeroed bytes.
    pub fn with_len(len: usize) -> RecvBuf {
        RecvBuf {
            buf: vec![0; len],
            start: 0,
            filled: 0,
        }
    }

    /// A buffer holding exactly a copy of `bytes` (no spare room: it grows when read into).
    pub fn holding(bytes: &[u8]) -> RecvBuf {
        RecvBuf {
            buf: bytes.to_vec(),
            start: 0,
            filled: bytes.len(),
        }
    }

    /// Bytes received and not consumed.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.filled]
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.filled
    }

    /// Memory this buffer holds.
    pub fn allocated(&self) -> usize {
        self.buf.len()
    }

    /// Whether reading `needed` bytes (from the buffer start) would have to grow the buffer
    /// first: no free space is left even after compacting.
    pub fn must_grow(&self, needed: usize) -> bool {
        let used = if self.start > 0 && self.start + needed > self.buf.len() {
            self.filled - self.start
        } else {
            self.filled
        };
        used == self.buf.len()
    }

    /// Forgets the contents; keeps the allocation.
    pub fn clear(&mut self) {
        self.start = 0;
        self.filled = 0;
    }

    /// Phase one: is a whole frame buffered? Checks the declared size before anything is
    /// allocated for it.
    pub fn check_frame(&self, max_request_bytes: usize) -> Frame {
        let avail = self.pending();
        if avail.len() < 4 {
            return Frame::Incomplete { needed: 4 };
        }
        let size = i32::from_be_bytes([avail[0], avail[1], avail[2], avail[3]]);
        if size < MIN_FRAME || size as u64 > max_request_bytes as u64 {
            return Frame::Invalid(size);
        }
        let n = size as usize;
        if avail.len() - 4 < n {
            Frame::Incomplete { needed: 4 + n }
        } else {
            Frame::Ready(n)
        }
    }

    /// Phase two: the payload of the frame that `check_frame` reported `Ready(n)`, in place.
    /// Mutable so that the service can rewrite record batch offsets without a copy.
    pub fn frame(&mut self, n: usize) -> &mut [u8] {
        &mut self.buf[self.start + 4..self.start + 4 + n]
    }

    /// Drops the frame of payload length `n` from the buffer.
    pub fn consume(&mut self, n: usize) {
        self.start += 4 + n;
        debug_assert!(self.start <= self.filled);
        if self.start == self.filled {
            self.start = 0;
            self.filled = 0;
        }
    }

    /// Reads once, at most `limit` bytes, into free buffer space, making room first: compacts
    /// the buffer when the frame being received does not fit behind `start`, grows it
    /// (geometrically, at most to `needed`) when it is full. `needed` comes from `check_frame`
    /// and is therefore bounded by the request limit.
    pub fn read_from(
        &mut self,
        r: &mut impl Read,
        needed: usize,
        limit: usize,
    ) -> io::Result<usize> {
        if self.start > 0 && self.start + needed > self.buf.len() {
            self.buf.copy_within(self.start..self.filled, 0);
            self.filled -= self.start;
            self.start = 0;
        }
        if self.filled == self.buf.len() {
            // Only reachable when the frame being received is larger than the buffer.
            let grown = (self.buf.len() * 2).max(MIN_GROWTH).min(needed);
            self.buf.resize(grown.max(self.filled + 1), 0);
        }
        let end = self.buf.len().min(self.filled.saturating_add(limit.max(1)));
        let n = r.read(&mut self.buf[self.filled..end])?;
        self.filled += n;
        Ok(n)
    }
}

pub(crate) struct Conn {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    /// Bytes received and not yet handled, kept between drives: a partial frame, or whole
    /// frames behind a parked request. Empty without an allocation when nothing is held, which
    /// is the normal state of an idle connection.
    pub held: RecvBuf,
    /// Bytes of the request memory budget charged to this connection: what `held` holds.
    pub charged: usize,
    /// While `held` is not empty: when it started holding (the reactor's sequence number; the
    /// oldest holder may always go on receiving). 0 otherwise.
    pub holding_since: u64,
    /// Encoded responses in request order; `out_off` bytes of the front one are already written.
    out: VecDeque<Vec<u8>>,
    out_off: usize,
    pub out_bytes: usize,
    /// The interest currently registered with the poll.
    pub interest: Interest,
    /// A request of this connection is parked in the service.
    pub parked: bool,
    /// Close once the queued output is written (Close reply or peer EOF); read no more.
    pub closing: bool,
    /// Reading stopped because the queued output was above the high mark.
    pub stalled: bool,
    /// Reading stopped because the broker-wide request memory budget was used up.
    pub muted: bool,
    /// Already in the reactor's list of connections to write this turn.
    pub dirty: bool,
    /// Already in the reactor's list of connections to drive next turn.
    pub pending: bool,
    pub last_active: Instant,
}

impl Conn {
    pub fn new(stream: TcpStream, peer: SocketAddr, now: Instant) -> Conn {
        Conn {
            stream,
            peer,
            held: RecvBuf::default(),
            charged: 0,
            holding_since: 0,
            out: VecDeque::new(),
            out_off: 0,
            out_bytes: 0,
            interest: Interest::READABLE,
            parked: false,
            closing: false,
            stalled: false,
            muted: false,
            dirty: false,
            pending: false,
            last_active: now,
        }
    }

    /// Queues one encoded response.
    pub fn queue(&mut self, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        self.out_bytes += bytes.len();
        self.out.push_back(bytes);
    }

    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Writes queued responses until the socket would block or the queue is empty.
    /// Returns whether any byte was written.
    pub fn write_out(&mut self) -> io::Result<bool> {
        let mut progress = false;
        while !self.out.is_empty() {
            let res = if self.out.len() == 1 {
                self.stream.write(&self.out[0][self.out_off..])
            } else {
                let mut iov = [IoSlice::new(&[]); MAX_IOV];
                let mut k = 0;
                for (i, buf) in self.out.iter().take(MAX_IOV).enumerate() {
                    let from = if i == 0 { self.out_off } else { 0 };
                    iov[i] = IoSlice::new(&buf[from..]);
                    k = i + 1;
                }
                self.stream.write_vectored(&iov[..k])
            };
            match res {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.advance(n);
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.out.is_empty() && self.out.capacity() > 8 {
            // A burst of pipelined responses grew the queue; an idle connection holds nothing.
            self.out = VecDeque::new();
        }
        Ok(progress)
    }

    fn advance(&mut self, mut n: usize) {
        self.out_bytes -= n;
        while n > 0 {
            let Some(front) = self.out.front() else { break };
            let rest = front.len() - self.out_off;
            if n >= rest {
                n -= rest;
                self.out.pop_front();
                self.out_off = 0;
            } else {
                self.out_off += n;
                n = 0;
            }
        }
    }

    /// The interest this connection should be registered with: WRITABLE only while output waits.
    pub fn wanted_interest(&self) -> Interest {
        if self.out.is_empty() {
            Interest::READABLE
        } else {
            Interest::READABLE | Interest::WRITABLE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader handing out its bytes in pieces of at most `chunk`.
    struct Chunked<'a> {
        data: &'a [u8],
        chunk: usize,
    }

    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.data.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.chunk).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn frame(payload_len: usize) -> Vec<u8> {
        let mut f = ((payload_len) as i32).to_be_bytes().to_vec();
        f.extend(vec![7u8; payload_len]);
        f
    }

    #[test]
    fn declared_size_is_checked_before_growing() {
        let mut b = RecvBuf::default();
        let mut r = Chunked {
            data: &(1i32 << 30).to_be_bytes(),
            chunk: 4,
        };
        b.read_from(&mut r, 4, usize::MAX).unwrap();
        assert_eq!(b.check_frame(1 << 20), Frame::Invalid(1 << 30));
        assert!(b.allocated() <= MIN_GROWTH);
    }

    #[test]
    fn grows_only_as_far_as_received_bytes_need_and_respects_the_limit() {
        let data = frame(1 << 20);
        let mut b = RecvBuf::default();
        let mut r = Chunked {
            data: &data[..100],
            chunk: 100,
        };
        let mut needed = 4;
        while b.read_from(&mut r, needed, usize::MAX).is_ok() {
            if let Frame::Incomplete { needed: n } = b.check_frame(2 << 20) {
                needed = n;
            }
        }
        assert_eq!(needed, 4 + (1 << 20));
        assert_eq!(b.pending().len(), 100);
        assert_eq!(b.allocated(), MIN_GROWTH);
        // A limit stops a read at the end of the frame being received.
        let two = [frame(10), frame(10)].concat();
        let mut b = RecvBuf::default();
        let mut r = Chunked {
            data: &two,
            chunk: 1000,
        };
        assert_eq!(b.read_from(&mut r, 14, 14).unwrap(), 14);
        assert_eq!(b.check_frame(100), Frame::Ready(10));
    }

    #[test]
    fn frames_consumed_in_place_and_the_buffer_resets() {
        let data = [frame(10), frame(20), frame(8)].concat();
        let mut b = RecvBuf::with_len(64);
        let mut r = Chunked {
            data: &data,
            chunk: 7,
        };
        let mut got = Vec::new();
        loop {
            match b.check_frame(100) {
                Frame::Ready(n) => {
                    got.push(b.frame(n).len());
                    b.consume(n);
                }
                Frame::Incomplete { needed } => match b.read_from(&mut r, needed, usize::MAX) {
                    Ok(_) => {}
                    Err(_) => break,
                },
                Frame::Invalid(s) => panic!("invalid {s}"),
            }
        }
        assert_eq!(got, [10, 20, 8]);
        assert!(b.is_empty());
        assert_eq!(b.allocated(), 64);
    }
}
