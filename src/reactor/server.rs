//! The loop itself: listener, connections in a slab (key == token), turns of poll/IO/tick/flush.
//!
//! Memory: a connection holds no read buffer while it has nothing half-received. Bytes are read
//! into one shared scratch buffer and whole frames are handled there, in place; only what is
//! left when a connection has to stop (a partial frame, or frames behind a parked request) is
//! copied into a buffer of that connection's own, which is freed as soon as it is consumed.
//! Those held bytes are charged to a broker-wide budget, `queued.max.request.bytes`: while it is
//! used up, connections that would start a new request are muted (not read) until bytes are
//! released, as Kafka's memory pool does, and so are connections whose partial frame would need
//! more memory — except the oldest holder, which may always go on, so that something completes
//! and releases (at most about one largest request goes over the budget). Unlike Kafka's pool,
//! which reserves a frame's declared size when its size prefix arrives, only bytes actually
//! received are charged: a 4-byte prefix declaring 100 MiB cannot mute everyone else.

use std::io;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use super::conn::{Conn, Frame, RecvBuf};
use super::peers::Peers;
use super::stats::TurnStats;
use super::{fdlimit, signals, ConnId, Limits, Reply, Service, ShutdownHandle};

// Fixed tokens far above any slab key (the slab never holds more than max_connections entries).
const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
const SIGNALS: Token = Token(usize::MAX - 3);
/// Listeners after the first (a controller listener): tokens counting down from here.
const MORE_LISTENERS: usize = usize::MAX - 16;
const MAX_LISTENERS: usize = 8;

/// The poll sleeps at most this long, so timers are looked at regularly even without deadlines.
const MAX_POLL_WAIT: Duration = Duration::from_millis(100);
/// Reading stops while a connection's queued output is above this; it resumes once below.
const OUTPUT_HIGH_MARK: usize = 64 * 1024 * 1024;
/// Per connection and turn: frames handled and bytes read before the others get their turn.
const FRAME_BUDGET: usize = 128;
const READ_BUDGET: usize = 8 * 1024 * 1024;
/// Connections accepted per turn at most; the rest wait for the next turn (which does not
/// sleep), so a connection flood cannot make one turn long.
const ACCEPT_BUDGET: usize = 256;
/// The shared scratch buffer: its usual size, and the most it keeps after a large frame grew it
/// (it goes back to the usual size when no large frame used it for a sweep period).
const SCRATCH_LEN: usize = 64 * 1024;
const SCRATCH_KEEP: usize = 8 * 1024 * 1024;
/// Readiness events handled per turn at most (the rest come with the next poll): a turn where a
/// thousand clients disconnect at once stays short.
const EVENTS_PER_TURN: usize = 256;
/// A turn at least this long is logged with where its time went.
const SLOW_TURN: Duration = Duration::from_millis(500);

/// The event loop; see the module documentation.
pub struct Reactor {
    poll: Poll,
    events: Events,
    /// The listener `bind` opened, then those `listen_also` added (index = listener id).
    listeners: Vec<TcpListener>,
    local_addr: SocketAddr,
    limits: Limits,
    /// Connections open at most: `max_connections`, less a share of the open-files limit.
    conn_cap: usize,
    conns: Slab<Conn>,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    signals: Option<signals::Signals>,
    /// The listener may hold connections we did not accept (cap reached or accept error).
    accept_pending: bool,
    /// The accept budget of a turn ran out: accept again next turn, without sleeping.
    accept_more: bool,
    /// Connections to drive at the start of the next turn (budget used up, unparked, drained).
    pending: Vec<ConnId>,
    /// Connections with output queued this turn.
    dirty: Vec<ConnId>,
    completions: Vec<(ConnId, Vec<u8>)>,
    next_sweep: Instant,
    output_high_mark: usize,
    /// Where whole frames are read and handled; see the module documentation.
    scratch: RecvBuf,
    /// A large frame used the scratch since the last sweep (so it keeps its size).
    scratch_large: bool,
    /// Bytes charged to connections against `queued_max_request_bytes`.
    queued_bytes: usize,
    /// Connections not read because the request memory budget was used up.
    muted: Vec<ConnId>,
    /// Connections holding bytes, by `Conn::holding_since`: the first may always go on.
    holders: std::collections::BTreeMap<u64, ConnId>,
    next_holder: u64,
    turns: TurnStats,
    /// Outbound links to peers, and the service's requests for them (reused each turn).
    peers: Peers,
    to_peers: Vec<super::ToPeer>,
}

/// Why a connection's drive stopped.
enum Stop {
    /// It cannot go on this turn (would block, parked, stalled, muted, budget, closing).
    Done,
    /// Its own held bytes are all handled: go on reading through the scratch.
    HeldDrained,
    /// Close it now.
    Close,
}

/// Per-turn budget of one connection.
struct Budget {
    frames: usize,
    read: usize,
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
        let conn_cap = fdlimit::connection_cap(limits.max_connections, fdlimit::nofile_limit());
        let max_frame = limits.max_request_bytes;
        Ok(Reactor {
            poll,
            events: Events::with_capacity(EVENTS_PER_TURN),
            listeners: vec![listener],
            local_addr,
            limits,
            conn_cap,
            conns: Slab::new(),
            stop: Arc::new(AtomicBool::new(false)),
            waker,
            signals: None,
            accept_pending: false,
            accept_more: false,
            pending: Vec::new(),
            dirty: Vec::new(),
            completions: Vec::new(),
            next_sweep: Instant::now(),
            output_high_mark: OUTPUT_HIGH_MARK,
            scratch: RecvBuf::with_len(SCRATCH_LEN),
            scratch_large: false,
            queued_bytes: 0,
            muted: Vec::new(),
            holders: Default::default(),
            next_holder: 1,
            turns: TurnStats::default(),
            peers: Peers::new(max_frame),
            to_peers: Vec::new(),
        })
    }

    /// Connections accepted at most at once (`max_connections` less what the open-files
    /// limit keeps for the log).
    pub fn connection_cap(&self) -> usize {
        self.conn_cap
    }

    /// Loop-turn durations since start.
    pub fn turn_stats(&self) -> &TurnStats {
        &self.turns
    }

    /// Request bytes held by connections now (charged against `queued_max_request_bytes`).
    pub fn queued_request_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Binds one more listener (a controller listener beside the client one); its connections
    /// are reported with [`Service::connection_opened_on`] and its id. Returns (id, bound address).
    pub fn listen_also(&mut self, addr: SocketAddr) -> io::Result<(usize, SocketAddr)> {
        let id = self.listeners.len();
        if id >= MAX_LISTENERS {
            return Err(io::Error::other("too many listeners"));
        }
        let mut listener = TcpListener::bind(addr)?;
        let bound = listener.local_addr()?;
        self.poll
            .registry()
            .register(&mut listener, listener_token(id), Interest::READABLE)?;
        self.listeners.push(listener);
        Ok((id, bound))
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
        while !self.stop_requested() || !service.ready_to_stop(Instant::now()) {
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
        if !self.pending.is_empty() || self.accept_more {
            return Duration::ZERO;
        }
        let mut until = (now + MAX_POLL_WAIT).min(self.next_sweep);
        if let Some(deadline) = service.next_deadline() {
            until = until.min(deadline);
        }
        if let Some(retry) = self.peers.next_deadline() {
            until = until.min(retry);
        }
        until.saturating_duration_since(now)
    }

    /// One turn after the poll returned: IO, tick, flush, completions, writes, idle sweep.
    fn turn<S: Service>(&mut self, service: &mut S, now: Instant) {
        let mut accepted = self.conns.len();
        if std::mem::take(&mut self.accept_more) {
            self.accept(service, now);
        }
        // Moved out for the iteration: handling an event needs `&mut self`.
        let events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        let mut n_events = 0;
        for ev in events.iter() {
            n_events += 1;
            // Readiness is a hint: a read or write attempt tells what really happened.
            let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
            let writable = ev.is_writable() || ev.is_write_closed();
            match ev.token() {
                LISTENER => self.accept(service, now),
                Token(t) if (MORE_LISTENERS - MAX_LISTENERS..MORE_LISTENERS).contains(&t) => {
                    self.accept(service, now)
                }
                WAKER => {} // the stop flag is checked by the loop
                SIGNALS => {
                    if let Some(sig) = self.signals.as_mut() {
                        sig.drain();
                    }
                }
                t if Peers::is_peer(t) => {
                    self.peers
                        .event(t, readable, writable, self.poll.registry(), service, now)
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
        let pending = std::mem::take(&mut self.pending);
        let n_pending = pending.len();
        for id in pending {
            if let Some(conn) = self.conns.get_mut(id) {
                conn.pending = false;
                self.drive(id, service, now);
            }
        }
        accepted = self.conns.len().saturating_sub(accepted);
        let t_io = Instant::now();

        service.tick(now);
        let t_tick = Instant::now();
        service.flush(now);
        let t_flush = Instant::now();

        let mut done = std::mem::take(&mut self.completions);
        service.take_completions(&mut done);
        let n_done = done.len();
        for (id, bytes) in done.drain(..) {
            self.complete(id, bytes, service);
        }
        self.completions = done;

        let mut to_peers = std::mem::take(&mut self.to_peers);
        service.take_outbound(&mut to_peers);
        self.peers
            .apply(&mut to_peers, self.poll.registry(), service, now);
        self.to_peers = to_peers;

        for id in std::mem::take(&mut self.dirty) {
            if let Some(conn) = self.conns.get_mut(id) {
                conn.dirty = false;
                self.write(id, service, now);
            }
        }
        self.unmute_if_memory();

        if now >= self.next_sweep {
            self.sweep(service, now);
        }
        let end = Instant::now();
        let took = end.saturating_duration_since(now);
        self.turns.record(took);
        if took >= SLOW_TURN {
            let ms = |a: Instant, b: Instant| b.saturating_duration_since(a).as_secs_f64() * 1e3;
            ::log::warn!(
                "reactor: slow loop turn of {:.0} ms: IO {:.0} ms ({n_events} events, \
                 {n_pending} pending, {accepted} accepted), tick {:.0} ms, flush {:.0} ms, \
                 {n_done} completions and writes {:.0} ms; {} connections",
                took.as_secs_f64() * 1e3,
                ms(now, t_io),
                ms(t_io, t_tick),
                ms(t_tick, t_flush),
                ms(t_flush, end),
                self.conns.len()
            );
        }
    }

    /// Accepts from every listener until WouldBlock, the connection cap or this turn's accept
    /// budget (each listener has its own).
    fn accept<S: Service>(&mut self, service: &mut S, now: Instant) {
        let (mut pending, mut more) = (false, false);
        for i in 0..self.listeners.len() {
            self.accept_pending = false;
            self.accept_from(i, service, now);
            pending |= self.accept_pending;
            more |= std::mem::take(&mut self.accept_more);
        }
        self.accept_pending = pending;
        self.accept_more = more;
    }

    fn accept_from<S: Service>(&mut self, listener: usize, service: &mut S, now: Instant) {
        for _ in 0..ACCEPT_BUDGET {
            if self.conns.len() >= self.conn_cap {
                self.accept_pending = true;
                return;
            }
            match self.listeners[listener].accept() {
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
                    service.connection_opened_on(id, peer, listener);
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
        // Budget used up: the listener may hold more; the next turn goes on without sleeping.
        self.accept_more = true;
    }

    fn memory_exhausted(&self) -> bool {
        self.limits
            .queued_max_request_bytes
            .is_some_and(|budget| self.queued_bytes >= budget)
    }

    /// Once request bytes were released below the budget, every muted connection is read again
    /// (those that find it used up again are muted again). While it is used up, the oldest
    /// holder is read whatever happens: it may always complete its frame.
    fn unmute_if_memory(&mut self) {
        if self.muted.is_empty() {
            return;
        }
        if self.memory_exhausted() {
            let Some(&lead) = self.holders.values().next() else {
                return;
            };
            if let Some(conn) = self.conns.get_mut(lead) {
                if conn.muted {
                    conn.muted = false;
                    self.muted.retain(|&m| m != lead);
                    if !conn.pending {
                        conn.pending = true;
                        self.pending.push(lead);
                    }
                }
            }
            return;
        }
        for id in std::mem::take(&mut self.muted) {
            if let Some(conn) = self.conns.get_mut(id) {
                conn.muted = false;
                if !conn.pending {
                    conn.pending = true;
                    self.pending.push(id);
                }
            }
        }
    }

    /// Handles whole frames and reads until WouldBlock, while the connection may go on: not
    /// parked, not closing, output below the high mark, budget left, request memory available.
    /// Frames are handled in the connection's held bytes first, then in the shared scratch;
    /// what is left in the scratch when the connection stops is moved into its held bytes.
    fn drive<S: Service>(&mut self, id: ConnId, service: &mut S, now: Instant) {
        let mut budget = Budget { frames: 0, read: 0 };
        loop {
            let Some(conn) = self.conns.get_mut(id) else {
                return;
            };
            let own = !conn.held.is_empty();
            let mut buf = if own {
                std::mem::take(&mut conn.held)
            } else {
                std::mem::take(&mut self.scratch)
            };
            let stop = self.drive_buf(id, &mut buf, own, &mut budget, service, now);
            if matches!(stop, Stop::Close) {
                buf.clear(); // nothing of a closing connection is kept
            }
            let Some(conn) = self.conns.get_mut(id) else {
                if !own {
                    buf.clear();
                    self.scratch = buf;
                }
                return;
            };
            if own {
                // Fully consumed: the allocation goes (an idle connection holds nothing).
                if !buf.is_empty() {
                    conn.held = buf;
                }
            } else {
                if !buf.is_empty() {
                    conn.held = RecvBuf::holding(buf.pending());
                }
                if buf.allocated() > SCRATCH_LEN {
                    self.scratch_large = true;
                }
                buf.clear();
                self.scratch = if buf.allocated() > SCRATCH_KEEP {
                    RecvBuf::with_len(SCRATCH_LEN)
                } else {
                    buf
                };
            }
            let charge = conn.held.allocated();
            self.queued_bytes = self.queued_bytes - conn.charged + charge;
            conn.charged = charge;
            if charge > 0 && conn.holding_since == 0 {
                conn.holding_since = self.next_holder;
                self.next_holder += 1;
                self.holders.insert(conn.holding_since, id);
            } else if charge == 0 && conn.holding_since != 0 {
                self.holders.remove(&conn.holding_since);
                conn.holding_since = 0;
            }
            match stop {
                Stop::Done => return,
                Stop::HeldDrained => continue,
                Stop::Close => {
                    self.close(id, service);
                    return;
                }
            }
        }
    }

    /// The body of [`Self::drive`] over one buffer: the connection's own held bytes (`own`:
    /// reads stop at the end of the frame being received) or the scratch.
    fn drive_buf<S: Service>(
        &mut self,
        id: ConnId,
        buf: &mut RecvBuf,
        own: bool,
        budget: &mut Budget,
        service: &mut S,
        now: Instant,
    ) -> Stop {
        let max = self.limits.max_request_bytes;
        let high = self.output_high_mark;
        let exhausted = self.memory_exhausted();
        let lead = self.holders.values().next() == Some(&id);
        let Some(conn) = self.conns.get_mut(id) else {
            return Stop::Done;
        };
        loop {
            if conn.parked || conn.closing {
                return Stop::Done;
            }
            if conn.out_bytes >= high {
                conn.stalled = true;
                return Stop::Done;
            }
            if budget.frames >= FRAME_BUDGET || budget.read >= READ_BUDGET {
                if !conn.pending {
                    conn.pending = true;
                    self.pending.push(id);
                }
                return Stop::Done;
            }
            let needed = match buf.check_frame(max) {
                Frame::Ready(n) => {
                    budget.frames += 1;
                    let frame = buf.frame(n);
                    let reply = catch_unwind(AssertUnwindSafe(|| service.handle(id, frame, now)));
                    buf.consume(n);
                    match reply {
                        Ok(Reply::Now(bytes)) if !is_framed(&bytes) => {
                            ::log::error!(
                                "reactor: response of {} bytes has a wrong size prefix; closing connection {id} from {}",
                                bytes.len(),
                                conn.peer
                            );
                            return Stop::Close;
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
                            return Stop::Close;
                        }
                    }
                    continue;
                }
                Frame::Invalid(size) => {
                    ::log::warn!(
                        "reactor: closing connection {id} from {}: invalid request size {size} (limit {max})",
                        conn.peer
                    );
                    return Stop::Close;
                }
                Frame::Incomplete { needed } => needed,
            };
            if buf.is_empty() {
                if own {
                    return Stop::HeldDrained;
                }
                // About to start a new request: as Kafka's memory pool, refuse while the
                // request memory budget is used up (a frame already begun goes on).
                if exhausted {
                    if !conn.muted {
                        conn.muted = true;
                        self.muted.push(id);
                    }
                    return Stop::Done;
                }
            }
            // Its own partial frame needs more memory while the budget is used up: it waits
            // like the others, unless it is the oldest holder.
            if own && exhausted && !lead && buf.must_grow(needed) {
                if !conn.muted {
                    conn.muted = true;
                    self.muted.push(id);
                }
                return Stop::Done;
            }
            // The connection's own buffer only ever holds up to the end of its current frame.
            let limit = if own {
                needed - buf.pending().len()
            } else {
                usize::MAX
            };
            match buf.read_from(&mut conn.stream, needed, limit) {
                Ok(0) => {
                    // Peer EOF: answer what was already sent, then close.
                    conn.closing = true;
                    if !conn.dirty {
                        conn.dirty = true;
                        self.dirty.push(id);
                    }
                    return Stop::Done;
                }
                Ok(n) => {
                    budget.read += n;
                    conn.last_active = now;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Stop::Done,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    ::log::debug!("reactor: read from {}: {e}", conn.peer);
                    return Stop::Close;
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
            self.queued_bytes -= conn.charged;
            if conn.holding_since != 0 {
                self.holders.remove(&conn.holding_since);
            }
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
        // The scratch goes back to its usual size once no large frame needs it.
        if !std::mem::take(&mut self.scratch_large) && self.scratch.allocated() > SCRATCH_LEN {
            self.scratch = RecvBuf::with_len(SCRATCH_LEN);
        }
        if self.conns.is_empty() && self.conns.capacity() > 0 {
            // After a flood of connections, the table of them goes too.
            self.conns = Slab::new();
        }
        let period = (idle / 10).clamp(Duration::from_millis(10), Duration::from_secs(1));
        self.next_sweep = now + period;
    }

    /// After a stop request: service shutdown, its last completions, one non-blocking write
    /// attempt per connection, then every connection closed.
    fn finish<S: Service>(&mut self, service: &mut S) {
        service.shutdown();
        let mut to_peers = std::mem::take(&mut self.to_peers);
        service.take_outbound(&mut to_peers);
        self.peers
            .apply(&mut to_peers, self.poll.registry(), service, Instant::now());
        self.peers.shutdown(self.poll.registry());
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
        self.muted.clear();
        self.holders.clear();
        self.queued_bytes = 0;
        ::log::info!("reactor: stopped; loop turns: {}", self.turns);
    }
}

fn listener_token(id: usize) -> Token {
    if id == 0 {
        LISTENER
    } else {
        Token(MORE_LISTENERS - id)
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

    /// Memory held for received bytes by each connection.
    pub(crate) fn held_lens(&self) -> Vec<usize> {
        self.conns.iter().map(|(_, c)| c.held.allocated()).collect()
    }

    pub(crate) fn scratch_len(&self) -> usize {
        self.scratch.allocated()
    }

    pub(crate) fn stalled_count(&self) -> usize {
        self.conns.iter().filter(|(_, c)| c.stalled).count()
    }

    pub(crate) fn muted_count(&self) -> usize {
        self.conns.iter().filter(|(_, c)| c.muted).count()
    }
}
