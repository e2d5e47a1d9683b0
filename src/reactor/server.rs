//! The loop itself: listener, connections in a slab (key == token), turns of poll/IO/tick/flush.

use std::io;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use super::conn::{Conn, Frame};
use super::{signals, ConnId, Limits, Reply, Service, ShutdownHandle};

// Fixed tokens far above any slab key (the slab never holds more than max_connections entries).
const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
const SIGNALS: Token = Token(usize::MAX - 3);

/// The poll sleeps at most this long, so timers are looked at regularly even without deadlines.
const MAX_POLL_WAIT: Duration = Duration::from_millis(100);
/// Reading stops while a connection's queued output is above this; it resumes once below.
const OUTPUT_HIGH_MARK: usize = 64 * 1024 * 1024;
/// Per connection and turn: frames handled and bytes read before the others get their turn.
const FRAME_BUDGET: usize = 128;
const READ_BUDGET: usize = 8 * 1024 * 1024;

/// The event loop; see the module documentation.
pub struct Reactor {
    poll: Poll,
    events: Events,
    listener: TcpListener,
    local_addr: SocketAddr,
    limits: Limits,
    conns: Slab<Conn>,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    signals: Option<signals::Signals>,
    /// The listener may hold connections we did not accept (cap reached or accept error).
    accept_pending: bool,
    /// Connections to drive at the start of the next turn (budget used up, unparked, drained).
    pending: Vec<ConnId>,
    /// Connections with output queued this turn.
    dirty: Vec<ConnId>,
    completions: Vec<(ConnId, Vec<u8>)>,
    next_sweep: Instant,
    output_high_mark: usize,
}

impl Reactor {
    /// Binds the listener (SO_REUSEADDR is set by mio); port 0 picks a free port.
    pub fn bind(addr: SocketAddr, limits: Limits) -> io::Result<Reactor> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(addr)?;
        let local_addr = listener.local_addr()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        Ok(Reactor {
            poll,
            events: Events::with_capacity(1024),
            listener,
            local_addr,
            limits,
            conns: Slab::new(),
            stop: Arc::new(AtomicBool::new(false)),
            waker,
            signals: None,
            accept_pending: false,
            pending: Vec::new(),
            dirty: Vec::new(),
            completions: Vec::new(),
            next_sweep: Instant::now(),
            output_high_mark: OUTPUT_HIGH_MARK,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle that stops [`Reactor::run`] from any thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            flag: self.stop.clone(),
            waker: self.waker.clone(),
        }
    }

    /// Makes SIGTERM and SIGINT shut this reactor down gracefully. For `main`; tests need not.
    pub fn install_signal_handlers(&mut self) -> io::Result<()> {
        let mut sig = signals::install()?;
        self.poll
            .registry()
            .register(sig.receiver(), SIGNALS, Interest::READABLE)?;
        self.signals = Some(sig);
        Ok(())
    }

    /// Number of open connections.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || (self.signals.is_some() && signals::requested())
    }

    /// Runs the loop until a shutdown is requested, then calls `service.shutdown()`, writes what it
    /// can without blocking, closes all connections and returns.
    pub fn run<S: Service>(&mut self, service: &mut S) -> io::Result<()> {
        let result = self.serve(service);
        self.finish(service);
        result
    }

    fn serve<S: Service>(&mut self, service: &mut S) -> io::Result<()> {
        while !self.stop_requested() {
            let timeout = self.poll_timeout(service, Instant::now());
            if let Err(e) = self.poll.poll(&mut self.events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            let now = Instant::now();
            self.turn(service, now);
        }
        Ok(())
    }

    fn poll_timeout<S: Service>(&self, service: &S, now: Instant) -> Duration {
        if !self.pending.is_empty() {
            return Duration::ZERO;
        }
        let mut until = (now + MAX_POLL_WAIT).min(self.next_sweep);
        if let Some(deadline) = service.next_deadline() {
            until = until.min(deadline);
        }
        until.saturating_duration_since(now)
    }

    /// One turn after the poll returned: IO, tick, flush, completions, writes, idle sweep.
    fn turn<S: Service>(&mut self, service: &mut S, now: Instant) {
        // Moved out for the iteration: handling an event needs `&mut self`.
        let events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        for ev in events.iter() {
            // Readiness is a hint: a read or write attempt tells what really happened.
            let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
            let writable = ev.is_writable() || ev.is_write_closed();
            match ev.token() {
                LISTENER => self.accept(service, now),
                WAKER => {} // the stop flag is checked by the loop
                SIGNALS => {
                    if let Some(sig) = self.signals.as_mut() {
                        sig.drain();
                    }
                }
                Token(id) => {
                    if writable {
                        self.write(id, service, now);
                    }
                    if readable {
                        self.drive(id, service, now);
                    }
                }
            }
        }
        self.events = events;
        for id in std::mem::take(&mut self.pending) {
            if let Some(conn) = self.conns.get_mut(id) {
                conn.pending = false;
                self.drive(id, service, now);
            }
        }

        service.tick(now);
        service.flush(now);

        let mut done = std::mem::take(&mut self.completions);
        service.take_completions(&mut done);
        for (id, bytes) in done.drain(..) {
            self.complete(id, bytes, service);
        }
        self.completions = done;

        for id in std::mem::take(&mut self.dirty) {
            if let Some(conn) = self.conns.get_mut(id) {
                conn.dirty = false;
                self.write(id, service, now);
            }
        }

        if now >= self.next_sweep {
            self.sweep(service, now);
        }
    }

    /// Accepts until WouldBlock or the connection cap.
    fn accept<S: Service>(&mut self, service: &mut S, now: Instant) {
        loop {
            if self.conns.len() >= self.limits.max_connections {
                self.accept_pending = true;
                return;
            }
            match self.listener.accept() {
                Ok((mut stream, peer)) => {
                    if let Err(e) = stream.set_nodelay(true) {
                        ::log::debug!("reactor: set_nodelay for {peer}: {e}");
                    }
                    let entry = self.conns.vacant_entry();
                    let id = entry.key();
                    if let Err(e) =
                        self.poll
                            .registry()
                            .register(&mut stream, Token(id), Interest::READABLE)
                    {
                        ::log::warn!("reactor: cannot register connection from {peer}: {e}");
                        continue;
                    }
                    ::log::debug!("reactor: connection {id} from {peer}");
                    entry.insert(Conn::new(stream, peer, now));
                    service.connection_opened(id, peer);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_pending = false;
                    return;
                }
                Err(e)
                    if e.kind() == io::ErrorKind::Interrupted
                        || e.kind() == io::ErrorKind::ConnectionAborted => {}
                Err(e) => {
                    // Typically EMFILE: retried when a connection closes or at the next sweep.
                    ::log::warn!("reactor: accept failed: {e}");
                    self.accept_pending = true;
                    return;
                }
            }
        }
    }

    /// Handles buffered whole frames and reads until WouldBlock, while the connection may go on:
    /// not parked, not closing, output below the high mark, budget left.
    fn drive<S: Service>(&mut self, id: ConnId, service: &mut S, now: Instant) {
        let max = self.limits.max_request_bytes;
        let high = self.output_high_mark;
        let mut frames = 0;
        let mut read = 0;
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        loop {
            if conn.parked || conn.closing {
                return;
            }
            if conn.out_bytes >= high {
                conn.stalled = true;
                return;
            }
            if frames >= FRAME_BUDGET || read >= READ_BUDGET {
                if !conn.pending {
                    conn.pending = true;
                    self.pending.push(id);
                }
                return;
            }
            let needed = match conn.check_frame(max) {
                Frame::Ready(n) => {
                    frames += 1;
                    let frame = conn.frame(n);
                    let reply = catch_unwind(AssertUnwindSafe(|| service.handle(id, frame, now)));
                    conn.consume(n);
                    match reply {
                        Ok(Reply::Now(bytes)) if !is_framed(&bytes) => {
                            ::log::error!(
                                "reactor: response of {} bytes has a wrong size prefix; closing connection {id} from {}",
                                bytes.len(),
                                conn.peer
                            );
                            self.close(id, service);
                            return;
                        }
                        Ok(Reply::Now(bytes)) => {
                            conn.queue(bytes);
                            if !conn.dirty {
                                conn.dirty = true;
                                self.dirty.push(id);
                            }
                        }
                        Ok(Reply::Parked) => conn.parked = true,
                        Ok(Reply::None) => {}
                        Ok(Reply::Close) => {
                            conn.closing = true;
                            if !conn.dirty {
                                conn.dirty = true;
                                self.dirty.push(id);
                            }
                        }
                        Err(_) => {
                            ::log::error!(
                                "reactor: request handler panicked; closing connection {id} from {}",
                                conn.peer
                            );
                            self.close(id, service);
                            return;
                        }
                    }
                    continue;
                }
                Frame::Invalid(size) => {
                    ::log::warn!(
                        "reactor: closing connection {id} from {}: invalid request size {size} (limit {max})",
                        conn.peer
                    );
                    self.close(id, service);
                    return;
                }
                Frame::Incomplete { needed } => needed,
            };
            match conn.read_some(needed) {
                Ok(0) => {
                    // Peer EOF: answer what was already sent, then close.
                    conn.closing = true;
                    if !conn.dirty {
                        conn.dirty = true;
                        self.dirty.push(id);
                    }
                    return;
                }
                Ok(n) => {
                    read += n;
                    conn.last_active = now;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    ::log::debug!("reactor: read from {}: {e}", conn.peer);
                    self.close(id, service);
                    return;
                }
            }
        }
    }

    /// Writes until WouldBlock; keeps WRITABLE interest only while output is queued; closes a
    /// closing connection once flushed; resumes a stalled one once below the high mark.
    fn write<S: Service>(&mut self, id: ConnId, service: &mut S, now: Instant) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        match conn.write_out() {
            Ok(true) => conn.last_active = now,
            Ok(false) => {}
            Err(e) => {
                ::log::debug!("reactor: write to {}: {e}", conn.peer);
                self.close(id, service);
                return;
            }
        }
        if conn.closing && !conn.has_output() {
            self.close(id, service);
            return;
        }
        let want = conn.wanted_interest();
        if want != conn.interest {
            if let Err(e) = self
                .poll
                .registry()
                .reregister(&mut conn.stream, Token(id), want)
            {
                ::log::warn!("reactor: reregister connection {id}: {e}");
                self.close(id, service);
                return;
            }
            conn.interest = want;
        }
        if conn.stalled && conn.out_bytes < self.output_high_mark {
            conn.stalled = false;
            if !conn.pending {
                conn.pending = true;
                self.pending.push(id);
            }
        }
    }

    /// A parked request finished: queue its response and resume the connection next turn (its
    /// buffered frames get no new readiness edge).
    fn complete<S: Service>(&mut self, id: ConnId, bytes: Vec<u8>, service: &mut S) {
        let Some(conn) = self.conns.get_mut(id) else {
            ::log::debug!("reactor: completion for closed connection {id} dropped");
            return;
        };
        if !conn.parked {
            // Probably a reused id: never put a stranger's response into this stream.
            ::log::warn!(
                "reactor: completion for connection {id} which has nothing parked; dropped"
            );
            return;
        }
        if !is_framed(&bytes) {
            ::log::error!(
                "reactor: completion of {} bytes has a wrong size prefix; closing connection {id} from {}",
                bytes.len(),
                conn.peer
            );
            self.close(id, service);
            return;
        }
        conn.parked = false;
        conn.queue(bytes);
        if !conn.dirty {
            conn.dirty = true;
            self.dirty.push(id);
        }
        if !conn.pending {
            conn.pending = true;
            self.pending.push(id);
        }
    }

    fn close<S: Service>(&mut self, id: ConnId, service: &mut S) {
        if let Some(mut conn) = self.conns.try_remove(id) {
            if let Err(e) = self.poll.registry().deregister(&mut conn.stream) {
                ::log::debug!("reactor: deregister connection {id}: {e}");
            }
            ::log::debug!("reactor: connection {id} from {} closed", conn.peer);
            service.connection_closed(id);
            if self.accept_pending {
                self.accept(service, Instant::now());
            }
        }
    }

    /// Closes idle connections (a parked request is not idleness) and retries a pending accept.
    fn sweep<S: Service>(&mut self, service: &mut S, now: Instant) {
        let idle = self.limits.idle_timeout;
        let expired: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| !c.parked && now.saturating_duration_since(c.last_active) >= idle)
            .map(|(id, _)| id)
            .collect();
        for id in expired {
            if let Some(conn) = self.conns.get(id) {
                ::log::debug!("reactor: closing idle connection {id} from {}", conn.peer);
            }
            self.close(id, service);
        }
        if self.accept_pending {
            self.accept(service, now);
        }
        let period = (idle / 10).clamp(Duration::from_millis(10), Duration::from_secs(1));
        self.next_sweep = now + period;
    }

    /// After a stop request: service shutdown, its last completions, one non-blocking write
    /// attempt per connection, then every connection closed.
    fn finish<S: Service>(&mut self, service: &mut S) {
        service.shutdown();
        let mut done = std::mem::take(&mut self.completions);
        service.take_completions(&mut done);
        for (id, bytes) in done.drain(..) {
            self.complete(id, bytes, service);
        }
        for (_, conn) in self.conns.iter_mut() {
            let _ = conn.write_out();
        }
        for mut conn in self.conns.drain() {
            let _ = self.poll.registry().deregister(&mut conn.stream);
        }
        self.pending.clear();
        self.dirty.clear();
        ::log::info!("reactor: stopped");
    }
}

/// A response must carry its own size prefix; a wrong one would desynchronize the client.
fn is_framed(bytes: &[u8]) -> bool {
    bytes.len() >= 4
        && u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize == bytes.len() - 4
}

#[cfg(test)]
impl Reactor {
    /// One turn with the given poll timeout, for tests that inspect the reactor in between.
    pub(crate) fn run_once<S: Service>(&mut self, service: &mut S, timeout: Duration) {
        let _ = self.poll.poll(&mut self.events, Some(timeout));
        self.turn(service, Instant::now());
    }

    pub(crate) fn set_output_high_mark(&mut self, bytes: usize) {
        self.output_high_mark = bytes;
    }

    pub(crate) fn read_buf_lens(&self) -> Vec<usize> {
        self.conns.iter().map(|(_, c)| c.read_buf_len()).collect()
    }
}
