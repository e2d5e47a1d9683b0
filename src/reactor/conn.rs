//! One client connection: its read buffer with two-phase framing, and its queue of responses.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;
use mio::Interest;

/// Read buffer size of a fresh connection; it grows (geometrically, up to the frame size actually
/// needed) only for larger frames.
pub(crate) const INITIAL_READ_BUF: usize = 16 * 1024;
/// An empty read buffer above this size is given back after a large frame.
const SHRINK_ABOVE: usize = 1024 * 1024;
/// Smallest request: apiKey (2) + apiVersion (2) + correlationId (4).
pub(crate) const MIN_FRAME: i32 = 8;
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

pub(crate) struct Conn {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    /// Bytes `[start..filled)` of `rbuf` are received and not yet consumed.
    rbuf: Vec<u8>,
    start: usize,
    filled: usize,
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
            rbuf: vec![0; INITIAL_READ_BUF],
            start: 0,
            filled: 0,
            out: VecDeque::new(),
            out_off: 0,
            out_bytes: 0,
            interest: Interest::READABLE,
            parked: false,
            closing: false,
            stalled: false,
            dirty: false,
            pending: false,
            last_active: now,
        }
    }

    /// Phase one: is a whole frame buffered? Checks the declared size before anything is allocated.
    pub fn check_frame(&self, max_request_bytes: usize) -> Frame {
        let avail = &self.rbuf[self.start..self.filled];
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
        &mut self.rbuf[self.start + 4..self.start + 4 + n]
    }

    /// Drops the frame of payload length `n` from the buffer.
    pub fn consume(&mut self, n: usize) {
        self.start += 4 + n;
        debug_assert!(self.start <= self.filled);
        if self.start == self.filled {
            self.start = 0;
            self.filled = 0;
            if self.rbuf.len() > SHRINK_ABOVE {
                self.rbuf = vec![0; INITIAL_READ_BUF];
            }
        }
    }

    /// Reads once into free buffer space, making room first: compacts the buffer when the frame
    /// being received does not fit behind `start`, grows it towards `needed` when it is full.
    /// `needed` comes from `check_frame` and is therefore bounded by the request limit.
    pub fn read_some(&mut self, needed: usize) -> io::Result<usize> {
        if self.start > 0 && self.start + needed > self.rbuf.len() {
            self.rbuf.copy_within(self.start..self.filled, 0);
            self.filled -= self.start;
            self.start = 0;
        }
        if self.filled == self.rbuf.len() {
            // Only reachable when the frame being received is larger than the buffer.
            let grown = (self.rbuf.len() * 2).max(INITIAL_READ_BUF).min(needed);
            self.rbuf.resize(grown.max(self.filled + 1), 0);
        }
        let n = self.stream.read(&mut self.rbuf[self.filled..])?;
        self.filled += n;
        Ok(n)
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

    #[cfg(test)]
    pub fn read_buf_len(&self) -> usize {
        self.rbuf.len()
    }
}
