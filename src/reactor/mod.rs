//! The single-threaded mio event loop (ARCHITECTURE §1).
//!
//! The reactor owns the sockets and nothing else: it accepts connections, cuts the byte stream into
//! Kafka frames (4-byte big-endian size, then the request) and hands each whole frame to a sans-IO
//! [`Service`]. Responses go back in request order; at most one request per connection is in
//! progress. One loop turn is:
//!
//! ```text
//! poll(timeout = time to the earliest deadline, at most 100 ms)
//! IO events: accept, read + handle whole frames, write
//! service.tick(now); service.flush(now)          // timers, then the group-commit point
//! service.take_completions(..)                   // finished parked requests
//! write everything queued this turn; idle sweep
//! ```
//!
//! Usage (from `main` or an in-process test):
//!
//! ```no_run
//! # use minikafka::reactor::{Limits, Reactor, Service};
//! # fn start<S: Service>(service: &mut S) -> std::io::Result<()> {
//! let mut reactor = Reactor::bind("127.0.0.1:9092".parse().unwrap(), Limits::default())?;
//! reactor.install_signal_handlers()?; // SIGTERM/SIGINT -> graceful shutdown (main only)
//! let stop = reactor.shutdown_handle(); // Clone + Send: stop.shutdown() from any thread
//! reactor.run(service)?; // returns after service.shutdown()
//! # drop(stop); Ok(()) }
//! ```

mod conn;
pub mod fdlimit;
mod peers;
mod server;
pub mod signals;
mod stats;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use server::Reactor;

/// A peer (another node) as the service names it: its node id.
pub type PeerId = i32;

/// What the service asks of the reactor's outbound links to peers (see `peers.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToPeer {
    /// Where the peer is (`host:port`): the reactor connects and keeps the link up,
    /// reconnecting with backoff. A different address replaces the old one.
    Address(PeerId, String),
    /// Close the link and forget the peer.
    Forget(PeerId),
    /// A whole frame, size prefix included, to write to the peer.
    Frame(PeerId, Vec<u8>),
}
pub use stats::TurnStats;

/// A connection id: the slab key, which is also the connection's `mio::Token`.
pub type ConnId = usize;

/// What the service answers to one request frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// A whole response *including* its 4-byte size prefix; write it and go on with the next frame.
    Now(Vec<u8>),
    /// The request is waiting (long-poll fetch, rebalance, acks=-1 flush); the connection reads no
    /// further frames until the service completes it through [`Service::take_completions`].
    Parked,
    /// No response (Produce acks=0): go on with the next frame.
    None,
    /// Protocol error: close the connection after flushing what is queued (the service logs why).
    Close,
}

/// The sans-IO broker, driven by the reactor.
pub trait Service {
    /// One whole frame: the bytes after the 4-byte size prefix. The frame is mutable so that
    /// Produce can assign offsets in place in the batches it stores.
    fn handle(&mut self, conn: ConnId, frame: &mut [u8], now: Instant) -> Reply;
    /// Timer work: expire parked requests, sessions, flush due. Called every loop turn after IO.
    fn tick(&mut self, now: Instant);
    /// Group commit point: called once per loop turn after all frames of this turn were handled.
    fn flush(&mut self, now: Instant);
    /// Finished parked requests: (conn, response bytes incl. size prefix). The reactor writes them
    /// and resumes reading that connection.
    fn take_completions(&mut self, out: &mut Vec<(ConnId, Vec<u8>)>);
    /// Earliest deadline the service has (poll timeout), if any.
    fn next_deadline(&self) -> Option<Instant>;
    /// A connection was accepted (its id is new or reused after a close).
    fn connection_opened(&mut self, _conn: ConnId, _peer: std::net::SocketAddr) {}
    /// A connection was accepted on listener `listener` (0: the one `bind` opened, then those
    /// of `listen_also` in order). By default the same as `connection_opened`.
    fn connection_opened_on(&mut self, conn: ConnId, peer: std::net::SocketAddr, listener: usize) {
        let _ = listener;
        self.connection_opened(conn, peer);
    }
    /// The connection is gone: drop whatever is parked for it (its id may be reused later).
    fn connection_closed(&mut self, conn: ConnId);
    /// Asked every turn once a stop was requested: the loop goes on serving until it answers
    /// true (a cluster broker hands its leaderships over first), then calls `shutdown`. The
    /// service bounds how long it answers false.
    fn ready_to_stop(&mut self, _now: Instant) -> bool {
        true
    }
    /// Flush, checkpoints, clean-shutdown marker.
    fn shutdown(&mut self);
    /// Requests for the outbound links to peers, collected once per turn after completions.
    fn take_outbound(&mut self, _out: &mut Vec<ToPeer>) {}
    /// A whole frame (without its size prefix) that a peer sent on the link to it.
    fn peer_frame(&mut self, _peer: PeerId, _frame: &mut [u8], _now: Instant) {}
    /// The link to a peer came up, or went down (then what was queued on it is dropped).
    fn peer_link(&mut self, _peer: PeerId, _up: bool) {}
}

/// Limits of the reactor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// `socket.request.max.bytes`: the largest frame accepted (size prefix excluded).
    pub max_request_bytes: usize,
    /// `max.connections`: open connections at most (further capped so that a share of the
    /// open-files limit stays for the log); above it the listener's backlog waits.
    pub max_connections: usize,
    /// `connections.max.idle.ms`: a connection without socket activity this long is closed.
    pub idle_timeout: Duration,
    /// `queued.max.request.bytes`: request bytes held by connections, broker-wide, above which
    /// no connection starts reading a new request; `None` = unlimited.
    pub queued_max_request_bytes: Option<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_bytes: 100 * 1024 * 1024,
            max_connections: usize::MAX,
            idle_timeout: Duration::from_millis(600_000),
            queued_max_request_bytes: Some(100 * 1024 * 1024),
        }
    }
}

/// Stops [`Reactor::run`] from any thread: sets a flag and wakes the poll.
#[derive(Clone)]
pub struct ShutdownHandle {
    flag: Arc<AtomicBool>,
    waker: Arc<mio::Waker>,
}

impl ShutdownHandle {
    /// Ask the loop to shut down gracefully; `run` returns after `service.shutdown()`.
    pub fn shutdown(&self) {
        self.flag.store(true, Ordering::SeqCst);
        if let Err(e) = self.waker.wake() {
            ::log::warn!("reactor: cannot wake the poll for shutdown: {e}");
        }
    }

    /// Whether a shutdown was requested.
    pub fn is_requested(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

impl std::fmt::Debug for ShutdownHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShutdownHandle")
            .field("requested", &self.is_requested())
            .finish()
    }
}
