//! Reactor tests over real loopback sockets with a tiny test service.
//!
//! Test protocol (a frame is apiKey i16, apiVersion i16, correlationId i32, payload):
//! apiKey 0 echo (response = the whole frame), 1 park (apiVersion = wait in ms, 0 = until
//! released), 2 no response, 3 close, 4 panic, 5 release every parked request, then echo,
//! 6 a response with a wrong size prefix.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{ConnId, Limits, PeerId, Reactor, Reply, Service, ShutdownHandle, ToPeer};

#[derive(Default)]
struct Shared {
    events: Mutex<Vec<String>>,
    closed: Mutex<Vec<ConnId>>,
    /// The listener of each accepted connection, in order.
    opened_on: Mutex<Vec<usize>>,
    shut_down: AtomicBool,
}

impl Shared {
    fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }
}

struct TestService {
    shared: Arc<Shared>,
    parked: Vec<(ConnId, i32, Option<Instant>)>,
    done: Vec<(ConnId, Vec<u8>)>,
}

impl TestService {
    fn new(shared: Arc<Shared>) -> TestService {
        TestService {
            shared,
            parked: Vec::new(),
            done: Vec::new(),
        }
    }

    fn complete(&mut self, conn: ConnId, corr: i32) {
        self.shared
            .events
            .lock()
            .unwrap()
            .push(format!("complete {corr}"));
        self.done.push((conn, response(corr, b"parked")));
    }
}

fn response(corr: i32, body: &[u8]) -> Vec<u8> {
    let mut out = ((4 + body.len()) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&corr.to_be_bytes());
    out.extend_from_slice(body);
    out
}

impl Service for TestService {
    fn handle(&mut self, conn: ConnId, frame: &mut [u8], now: Instant) -> Reply {
        let key = i16::from_be_bytes([frame[0], frame[1]]);
        let ver = i16::from_be_bytes([frame[2], frame[3]]);
        let corr = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        self.shared
            .events
            .lock()
            .unwrap()
            .push(format!("handle {corr}"));
        match key {
            0 => Reply::Now(response(corr, &frame[8..])),
            1 => {
                let deadline = (ver > 0).then(|| now + Duration::from_millis(ver as u64));
                self.parked.push((conn, corr, deadline));
                Reply::Parked
            }
            2 => Reply::None,
            3 => Reply::Close,
            4 => panic!("test service asked to panic"),
            5 => {
                for (c, k, _) in std::mem::take(&mut self.parked) {
                    self.complete(c, k);
                }
                Reply::Now(response(corr, &frame[8..]))
            }
            6 => Reply::Now(vec![0, 0, 0, 9, 1, 2]),
            _ => Reply::Close,
        }
    }

    fn tick(&mut self, now: Instant) {
        let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.parked)
            .into_iter()
            .partition(|(_, _, d)| d.is_some_and(|d| d <= now));
        self.parked = keep;
        for (c, k, _) in due {
            self.complete(c, k);
        }
    }

    fn flush(&mut self, _now: Instant) {}

    fn take_completions(&mut self, out: &mut Vec<(ConnId, Vec<u8>)>) {
        out.append(&mut self.done);
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.parked.iter().filter_map(|(_, _, d)| *d).min()
    }

    fn connection_opened_on(&mut self, _conn: ConnId, _peer: SocketAddr, listener: usize) {
        self.shared.opened_on.lock().unwrap().push(listener);
    }

    fn connection_closed(&mut self, conn: ConnId) {
        self.parked.retain(|(c, _, _)| *c != conn);
        self.shared.closed.lock().unwrap().push(conn);
    }

    fn shutdown(&mut self) {
        self.shared.shut_down.store(true, Ordering::SeqCst);
    }
}

struct Server {
    addr: SocketAddr,
    stop: ShutdownHandle,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    fn start(limits: Limits) -> Server {
        Server::start_with(limits, |_| {})
    }

    fn start_with(limits: Limits, configure: impl FnOnce(&mut Reactor)) -> Server {
        Server::start_at("127.0.0.1:0".parse().unwrap(), limits, configure)
    }

    fn start_at(addr: SocketAddr, limits: Limits, configure: impl FnOnce(&mut Reactor)) -> Server {
        let mut reactor = Reactor::bind(addr, limits).unwrap();
        configure(&mut reactor);
        let addr = reactor.local_addr();
        let stop = reactor.shutdown_handle();
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        let thread = thread::spawn(move || reactor.run(&mut TestService::new(s)));
        Server {
            addr,
            stop,
            shared,
            thread: Some(thread),
        }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }

    fn stop(mut self) -> Arc<Shared> {
        self.stop.shutdown();
        self.thread.take().unwrap().join().unwrap().unwrap();
        self.shared.clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.shutdown();
            let _ = t.join();
        }
    }
}

fn frame(key: i16, ver: i16, corr: i32, payload: &[u8]) -> Vec<u8> {
    let mut out = ((8 + payload.len()) as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&key.to_be_bytes());
    out.extend_from_slice(&ver.to_be_bytes());
    out.extend_from_slice(&corr.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Reads one response and returns (correlation id, body).
fn read_response(s: &mut TcpStream) -> (i32, Vec<u8>) {
    let mut size = [0u8; 4];
    s.read_exact(&mut size).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(size) as usize];
    s.read_exact(&mut body).unwrap();
    let corr = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    (corr, body[4..].to_vec())
}

/// The server closed the connection: EOF or a reset, and no bytes.
fn assert_closed(s: &mut TcpStream) {
    let mut buf = [0u8; 16];
    match s.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("expected close, got {n} bytes"),
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
            ),
            "expected close, got {e}"
        ),
    }
}

fn test_limits() -> Limits {
    Limits {
        max_request_bytes: 1024 * 1024,
        max_connections: 64,
        idle_timeout: Duration::from_secs(60),
        queued_max_request_bytes: None,
    }
}

fn echo_works(server: &Server) {
    let mut c = server.connect();
    c.write_all(&frame(0, 0, 99, b"still here")).unwrap();
    assert_eq!(read_response(&mut c), (99, b"still here".to_vec()));
}

#[test]
fn frame_split_across_many_writes() {
    let server = Server::start(test_limits());
    let mut c = server.connect();
    let bytes = frame(0, 0, 7, b"hello, split world");
    for b in &bytes {
        c.write_all(std::slice::from_ref(b)).unwrap();
        thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(read_response(&mut c), (7, b"hello, split world".to_vec()));
}

#[test]
fn many_frames_in_one_write_answered_in_order() {
    let server = Server::start(test_limits());
    let mut c = server.connect();
    let mut bytes = Vec::new();
    for corr in 0..500i32 {
        let key = if corr % 3 == 1 { 2 } else { 0 }; // every third gets no response
        bytes.extend(frame(key, 0, corr, &corr.to_be_bytes()));
    }
    c.write_all(&bytes).unwrap();
    for corr in (0..500i32).filter(|c| c % 3 != 1) {
        assert_eq!(read_response(&mut c), (corr, corr.to_be_bytes().to_vec()));
    }
}

#[test]
fn large_frame_grows_the_buffer_and_pipelines_behind_it() {
    let server = Server::start(test_limits());
    let mut c = server.connect();
    let big = vec![0xabu8; 700 * 1024];
    let mut bytes = frame(0, 0, 1, &big);
    bytes.extend(frame(0, 0, 2, b"small"));
    c.write_all(&bytes).unwrap();
    assert_eq!(read_response(&mut c), (1, big));
    assert_eq!(read_response(&mut c), (2, b"small".to_vec()));
}

#[test]
fn parked_request_holds_later_frames_until_completed() {
    let server = Server::start(test_limits());
    let mut c = server.connect();
    let mut bytes = frame(1, 50, 1, b""); // parked for 50 ms
    bytes.extend(frame(0, 0, 2, b"two"));
    bytes.extend(frame(0, 0, 3, b"three"));
    let sent = Instant::now();
    c.write_all(&bytes).unwrap();
    assert_eq!(read_response(&mut c), (1, b"parked".to_vec()));
    assert!(sent.elapsed() >= Duration::from_millis(50));
    assert_eq!(read_response(&mut c), (2, b"two".to_vec()));
    assert_eq!(read_response(&mut c), (3, b"three".to_vec()));
    let shared = server.stop();
    assert_eq!(
        shared.events(),
        ["handle 1", "complete 1", "handle 2", "handle 3"]
    );
}

#[test]
fn parked_request_completed_by_another_connection() {
    // Turns driven here, so "nothing answered yet" is checked after the reactor has seen both
    // frames, not after a sleep.
    let mut reactor = Reactor::bind("127.0.0.1:0".parse().unwrap(), test_limits()).unwrap();
    let shared = Arc::new(Shared::default());
    let mut service = TestService::new(shared.clone());
    let mut a = TcpStream::connect(reactor.local_addr()).unwrap();
    // One write: the frame behind the parked one arrives with it and is held.
    let mut both = frame(1, 0, 10, b""); // parked until released
    both.extend(frame(0, 0, 11, b"after"));
    a.write_all(&both).unwrap();
    turn_until(&mut reactor, &mut service, |r| r.queued_request_bytes() > 0);
    assert_eq!(shared.events(), ["handle 10"], "the next frame waits");
    a.set_nonblocking(true).unwrap();
    let mut probe = [0u8; 1];
    let nothing = a.read(&mut probe).unwrap_err();
    assert_eq!(
        nothing.kind(),
        std::io::ErrorKind::WouldBlock,
        "nothing answered yet"
    );
    a.set_nonblocking(false).unwrap();

    let mut b = TcpStream::connect(reactor.local_addr()).unwrap();
    b.write_all(&frame(5, 0, 20, b"release")).unwrap();
    assert_eq!(
        turn_and_read(&mut reactor, &mut service, &mut b),
        (20, b"release".to_vec())
    );
    assert_eq!(
        turn_and_read(&mut reactor, &mut service, &mut a),
        (10, b"parked".to_vec())
    );
    assert_eq!(
        turn_and_read(&mut reactor, &mut service, &mut a),
        (11, b"after".to_vec())
    );
}

#[test]
fn bad_sizes_close_only_that_connection() {
    let server = Server::start(test_limits());
    for size in [-1i32, 0, 7, i32::MIN, 1024 * 1024 + 1, i32::MAX] {
        let mut c = server.connect();
        c.write_all(&size.to_be_bytes()).unwrap();
        assert_closed(&mut c);
        echo_works(&server);
    }
}

#[test]
fn size_at_the_limit_is_accepted() {
    let server = Server::start(test_limits());
    let mut c = server.connect();
    let payload = vec![1u8; 1024 * 1024 - 8];
    c.write_all(&frame(0, 0, 5, &payload)).unwrap();
    assert_eq!(read_response(&mut c), (5, payload));
}

#[test]
fn close_reply_flushes_queued_output_first() {
    let server = Server::start(test_limits());
    let mut c = server.connect();
    let mut bytes = frame(0, 0, 1, b"one");
    bytes.extend(frame(3, 0, 2, b""));
    bytes.extend(frame(0, 0, 3, b"never"));
    c.write_all(&bytes).unwrap();
    assert_eq!(read_response(&mut c), (1, b"one".to_vec()));
    assert_closed(&mut c);
    let shared = server.stop();
    assert!(!shared.events().contains(&"handle 3".to_string()));
    assert_eq!(shared.closed.lock().unwrap().len(), 1);
}

#[test]
fn panic_in_handler_closes_one_connection() {
    let server = Server::start(test_limits());
    let mut c = server.connect();
    c.write_all(&frame(4, 0, 1, b"")).unwrap();
    assert_closed(&mut c);
    echo_works(&server);
}

#[test]
fn response_with_wrong_size_prefix_closes_the_connection() {
    let server = Server::start(test_limits());
    let mut c = server.connect();
    c.write_all(&frame(6, 0, 1, b"")).unwrap();
    assert_closed(&mut c);
    echo_works(&server);
}

#[test]
fn half_closed_client_still_gets_its_answers() {
    let server = Server::start(test_limits());
    let mut c = server.connect();
    let mut bytes = frame(0, 0, 1, b"a");
    bytes.extend(frame(0, 0, 2, b"b"));
    c.write_all(&bytes).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_response(&mut c), (1, b"a".to_vec()));
    assert_eq!(read_response(&mut c), (2, b"b".to_vec()));
    assert_closed(&mut c);
}

#[test]
fn shutdown_handle_stops_run() {
    let server = Server::start(test_limits());
    let _idle = server.connect();
    echo_works(&server);
    let started = Instant::now();
    let shared = server.stop();
    assert!(shared.shut_down.load(Ordering::SeqCst));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn shutdown_before_run_returns_at_once() {
    let mut reactor = Reactor::bind("127.0.0.1:0".parse().unwrap(), test_limits()).unwrap();
    reactor.shutdown_handle().shutdown();
    let shared = Arc::new(Shared::default());
    reactor.run(&mut TestService::new(shared.clone())).unwrap();
    assert!(shared.shut_down.load(Ordering::SeqCst));
}

#[test]
fn idle_connections_are_closed_but_parked_ones_are_not() {
    let limits = Limits {
        idle_timeout: Duration::from_millis(150),
        ..test_limits()
    };
    let server = Server::start(limits);
    let mut idle = server.connect();
    let mut parked = server.connect();
    parked.write_all(&frame(1, 500, 1, b"")).unwrap();
    let started = Instant::now();
    assert_closed(&mut idle);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(140),
        "closed after {waited:?}"
    );
    assert!(waited < Duration::from_secs(2), "closed after {waited:?}");
    assert_eq!(read_response(&mut parked), (1, b"parked".to_vec()));
}

#[test]
fn connection_cap_defers_accept_until_one_closes() {
    let limits = Limits {
        max_connections: 1,
        ..test_limits()
    };
    let mut reactor = Reactor::bind("127.0.0.1:0".parse().unwrap(), limits).unwrap();
    let mut service = TestService::new(Arc::new(Shared::default()));
    let mut first = TcpStream::connect(reactor.local_addr()).unwrap();
    first.write_all(&frame(0, 0, 1, b"first")).unwrap();
    assert_eq!(
        turn_and_read(&mut reactor, &mut service, &mut first),
        (1, b"first".to_vec())
    );

    let mut second = TcpStream::connect(reactor.local_addr()).unwrap(); // in the backlog
    second.write_all(&frame(0, 0, 2, b"second")).unwrap();
    // The listener is readable from the first poll on; the cap keeps it unaccepted.
    for _ in 0..5 {
        reactor.run_once(&mut service, Duration::from_millis(1));
    }
    assert_eq!(reactor.connection_count(), 1);
    second.set_nonblocking(true).unwrap();
    let mut probe = [0u8; 1];
    let nothing = second.read(&mut probe).unwrap_err();
    assert_eq!(
        nothing.kind(),
        std::io::ErrorKind::WouldBlock,
        "must not be served yet"
    );
    second.set_nonblocking(false).unwrap();

    drop(first);
    assert_eq!(
        turn_and_read(&mut reactor, &mut service, &mut second),
        (2, b"second".to_vec())
    );
}

#[test]
fn backpressure_keeps_order_when_client_reads_late() {
    let mut reactor = Reactor::bind("127.0.0.1:0".parse().unwrap(), test_limits()).unwrap();
    reactor.set_output_high_mark(64 * 1024);
    let shared = Arc::new(Shared::default());
    let mut service = TestService::new(shared.clone());
    let c = TcpStream::connect(reactor.local_addr()).unwrap();
    let mut writer = c.try_clone().unwrap();
    let payload = vec![7u8; 16 * 1024];
    let n = 512; // 8 MiB of responses, far above the high mark and the socket buffers
    let p = payload.clone();
    let sender = thread::spawn(move || {
        for corr in 0..n {
            writer.write_all(&frame(0, 0, corr, &p)).unwrap();
        }
    });
    // Nobody reads the responses: reading stops once the queued output is above the mark.
    turn_until(&mut reactor, &mut service, |r| r.stalled_count() == 1);
    let handled = shared.events().len();
    assert!(
        handled < n as usize,
        "reading must stall, {handled} handled"
    );
    for _ in 0..5 {
        reactor.run_once(&mut service, Duration::from_millis(1));
    }
    assert_eq!(
        shared.events().len(),
        handled,
        "nothing handled while stalled"
    );
    let mut reader = c;
    for corr in 0..n {
        let (got, body) = turn_and_read(&mut reactor, &mut service, &mut reader);
        assert_eq!(got, corr);
        assert_eq!(body.len(), payload.len());
    }
    sender.join().unwrap();
}

#[test]
fn read_buffer_grows_only_as_far_as_received_data_needs() {
    let mut reactor = Reactor::bind("127.0.0.1:0".parse().unwrap(), test_limits()).unwrap();
    let mut service = TestService::new(Arc::new(Shared::default()));
    let mut c = TcpStream::connect(reactor.local_addr()).unwrap();
    // Declares 1 MiB but sends only 100 bytes of it.
    c.write_all(&(1024 * 1024i32).to_be_bytes()).unwrap();
    c.write_all(&[0u8; 100]).unwrap();
    for _ in 0..5 {
        reactor.run_once(&mut service, Duration::from_millis(20));
    }
    assert_eq!(reactor.connection_count(), 1);
    let held = reactor.held_lens();
    assert!(
        held[0] >= 104 && held[0] <= super::conn::MIN_GROWTH,
        "{held:?}"
    );
    assert_eq!(
        reactor.queued_request_bytes(),
        held[0],
        "what is held is charged, not the declared size"
    );
}

#[test]
fn sigterm_shuts_down_gracefully() {
    extern "C" {
        fn raise(sig: std::os::raw::c_int) -> std::os::raw::c_int;
    }
    let server = Server::start_with(test_limits(), |r| r.install_signal_handlers().unwrap());
    echo_works(&server);
    // SAFETY: the handler installed above only sets a flag and writes to a pipe.
    assert_eq!(unsafe { raise(15) }, 0);
    let mut server = server;
    let thread = server.thread.take().unwrap();
    let started = Instant::now();
    thread.join().unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(server.shared.shut_down.load(Ordering::SeqCst));
}

/// Drives `reactor` until `done` holds (at most 5 s of turns).
fn turn_until(
    reactor: &mut Reactor,
    service: &mut TestService,
    mut done: impl FnMut(&Reactor) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done(reactor) {
        assert!(Instant::now() < deadline, "condition not reached in 5 s");
        reactor.run_once(service, Duration::from_millis(5));
    }
}

/// Turns until `s` has one whole response, then reads it (and nothing more).
fn turn_and_read(
    reactor: &mut Reactor,
    service: &mut TestService,
    s: &mut TcpStream,
) -> (i32, Vec<u8>) {
    s.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    let mut want = 4;
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < want {
        assert!(Instant::now() < deadline, "no response in 5 s");
        let mut buf = vec![0u8; want - got.len()];
        match s.read(&mut buf) {
            Ok(0) => panic!("closed"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                reactor.run_once(service, Duration::from_millis(5))
            }
            Err(e) => panic!("{e}"),
        }
        if got.len() == 4 && want == 4 {
            want = 4 + u32::from_be_bytes([got[0], got[1], got[2], got[3]]) as usize;
        }
    }
    s.set_nonblocking(false).unwrap();
    let corr = i32::from_be_bytes([got[4], got[5], got[6], got[7]]);
    (corr, got[8..].to_vec())
}

#[test]
fn idle_connections_hold_no_read_buffer() {
    let mut reactor = Reactor::bind("127.0.0.1:0".parse().unwrap(), test_limits()).unwrap();
    let mut service = TestService::new(Arc::new(Shared::default()));
    let scratch = reactor.scratch_len();
    let mut clients: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(reactor.local_addr()).unwrap())
        .collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.write_all(&frame(0, 0, i as i32, &[i as u8; 3000]))
            .unwrap();
        // Half of them also start another frame and stop in its middle.
        if i % 2 == 0 {
            c.write_all(&frame(0, 0, 1000 + i as i32, b"not yet")[..10])
                .unwrap();
        }
    }
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(
            turn_and_read(&mut reactor, &mut service, c),
            (i as i32, vec![i as u8; 3000])
        );
    }
    // Only the partial frames are held, each in a buffer of its own size.
    turn_until(&mut reactor, &mut service, |r| {
        r.held_lens().iter().filter(|&&n| n > 0).count() == 10
    });
    let held = reactor.held_lens();
    assert_eq!(held.iter().filter(|&&n| n == 10).count(), 10, "{held:?}");
    assert_eq!(held.iter().filter(|&&n| n == 0).count(), 10, "{held:?}");
    assert_eq!(reactor.queued_request_bytes(), 10 * 10);
    for (i, c) in clients.iter_mut().enumerate().filter(|(i, _)| i % 2 == 0) {
        c.write_all(&frame(0, 0, 1000 + i as i32, b"not yet")[10..])
            .unwrap();
        assert_eq!(
            turn_and_read(&mut reactor, &mut service, c),
            (1000 + i as i32, b"not yet".to_vec())
        );
    }
    // Every connection is idle again: no read buffer anywhere, nothing charged.
    assert_eq!(reactor.held_lens(), vec![0; 20]);
    assert_eq!(reactor.queued_request_bytes(), 0);
    assert_eq!(reactor.scratch_len(), scratch);
}

#[test]
fn frames_behind_a_parked_request_are_held_then_released() {
    let mut reactor = Reactor::bind("127.0.0.1:0".parse().unwrap(), test_limits()).unwrap();
    let mut service = TestService::new(Arc::new(Shared::default()));
    let mut c = TcpStream::connect(reactor.local_addr()).unwrap();
    let mut bytes = frame(1, 0, 1, b""); // parked until released
    for corr in 2..10 {
        bytes.extend(frame(0, 0, corr, &[corr as u8; 100]));
    }
    c.write_all(&bytes).unwrap();
    turn_until(&mut reactor, &mut service, |r| r.queued_request_bytes() > 0);
    assert_eq!(reactor.queued_request_bytes(), 8 * 112);
    assert_eq!(reactor.held_lens(), [8 * 112]);
    let mut other = TcpStream::connect(reactor.local_addr()).unwrap();
    other.write_all(&frame(5, 0, 50, b"release")).unwrap();
    assert_eq!(
        turn_and_read(&mut reactor, &mut service, &mut other),
        (50, b"release".to_vec())
    );
    assert_eq!(
        turn_and_read(&mut reactor, &mut service, &mut c),
        (1, b"parked".to_vec())
    );
    for corr in 2..10 {
        assert_eq!(
            turn_and_read(&mut reactor, &mut service, &mut c),
            (corr, vec![corr as u8; 100])
        );
    }
    assert_eq!(reactor.held_lens(), [0, 0]);
    assert_eq!(reactor.queued_request_bytes(), 0);
}

#[test]
fn large_frame_is_handled_and_the_scratch_shrinks_back() {
    let limits = Limits {
        idle_timeout: Duration::from_secs(1), // sweeps every 100 ms
        ..test_limits()
    };
    let mut reactor = Reactor::bind("127.0.0.1:0".parse().unwrap(), limits).unwrap();
    let mut service = TestService::new(Arc::new(Shared::default()));
    let usual = reactor.scratch_len();
    let mut c = TcpStream::connect(reactor.local_addr()).unwrap();
    let writer = {
        let mut w = c.try_clone().unwrap();
        thread::spawn(move || {
            let big = vec![0x5au8; 900 * 1024];
            w.write_all(&frame(0, 0, 1, &big)).unwrap();
        })
    };
    let (corr, body) = turn_and_read(&mut reactor, &mut service, &mut c);
    writer.join().unwrap();
    assert_eq!((corr, body.len()), (1, 900 * 1024));
    assert_eq!(reactor.held_lens(), [0]);
    assert_eq!(reactor.queued_request_bytes(), 0);
    // Two sweep periods without a large frame: back to the usual size.
    let until = Instant::now() + Duration::from_millis(250);
    while Instant::now() < until {
        reactor.run_once(&mut service, Duration::from_millis(5));
    }
    assert_eq!(reactor.scratch_len(), usual);
    c.write_all(&frame(0, 0, 2, b"small")).unwrap();
    assert_eq!(
        turn_and_read(&mut reactor, &mut service, &mut c),
        (2, b"small".to_vec())
    );
}

/// A connection holding `sent` bytes of `bytes` (a frame) as a partial frame.
fn hold_partial(
    reactor: &mut Reactor,
    service: &mut TestService,
    bytes: &[u8],
    sent: usize,
) -> TcpStream {
    let mut c = TcpStream::connect(reactor.local_addr()).unwrap();
    c.write_all(&bytes[..sent]).unwrap();
    let before = reactor.queued_request_bytes();
    turn_until(reactor, service, |r| {
        r.queued_request_bytes() >= before + sent
    });
    c
}

/// Sends the rest of a frame from a thread and turns until its response is read.
fn finish_and_read(
    reactor: &mut Reactor,
    service: &mut TestService,
    c: &mut TcpStream,
    rest: &[u8],
) -> (i32, Vec<u8>) {
    let rest = rest.to_vec();
    let mut w = c.try_clone().unwrap();
    let writer = thread::spawn(move || w.write_all(&rest).unwrap());
    let r = turn_and_read(reactor, service, c);
    writer.join().unwrap();
    r
}

#[test]
fn request_memory_budget_mutes_new_requests_until_released() {
    let limits = Limits {
        queued_max_request_bytes: Some(256 * 1024),
        ..test_limits()
    };
    let mut reactor = Reactor::bind("127.0.0.1:0".parse().unwrap(), limits).unwrap();
    let mut service = TestService::new(Arc::new(Shared::default()));
    // A size prefix declaring 900 KiB costs nothing: only received bytes are charged.
    let big = frame(0, 0, 1, &vec![1u8; 900 * 1024]);
    let mut a = hold_partial(&mut reactor, &mut service, &big, 4);
    let mut b = TcpStream::connect(reactor.local_addr()).unwrap();
    b.write_all(&frame(0, 0, 2, b"served")).unwrap();
    assert_eq!(
        turn_and_read(&mut reactor, &mut service, &mut b),
        (2, b"served".to_vec())
    );
    // 300 KiB actually held: over the budget (one may go over, as in Kafka's memory pool).
    a.write_all(&big[4..300 * 1024]).unwrap();
    turn_until(&mut reactor, &mut service, |r| {
        r.queued_request_bytes() >= 300 * 1024
    });
    // B's new request is not read while the budget is used up.
    b.write_all(&frame(0, 0, 3, b"waits")).unwrap();
    turn_until(&mut reactor, &mut service, |r| r.muted_count() == 1);
    for _ in 0..5 {
        reactor.run_once(&mut service, Duration::from_millis(1));
    }
    assert_eq!(reactor.muted_count(), 1);
    // A, in the middle of its frame and the oldest holder, goes on; its answer releases the
    // bytes and B is read.
    let (corr, body) = finish_and_read(&mut reactor, &mut service, &mut a, &big[300 * 1024..]);
    assert_eq!((corr, body.len()), (1, 900 * 1024));
    assert_eq!(
        turn_and_read(&mut reactor, &mut service, &mut b),
        (3, b"waits".to_vec())
    );
    assert_eq!(reactor.muted_count(), 0);
    assert_eq!(reactor.queued_request_bytes(), 0);
}

#[test]
fn over_the_budget_only_the_oldest_partial_frame_grows() {
    let limits = Limits {
        queued_max_request_bytes: Some(256 * 1024),
        ..test_limits()
    };
    let mut reactor = Reactor::bind("127.0.0.1:0".parse().unwrap(), limits).unwrap();
    let mut service = TestService::new(Arc::new(Shared::default()));
    let big_a = frame(0, 0, 1, &vec![1u8; 600 * 1024]);
    let big_c = frame(0, 0, 2, &vec![2u8; 600 * 1024]);
    // A holds 100 KiB, then C 200 KiB: 300 KiB, over the budget.
    let mut a = hold_partial(&mut reactor, &mut service, &big_a, 100 * 1024);
    let mut c = hold_partial(&mut reactor, &mut service, &big_c, 200 * 1024);
    // C sends the rest of its frame but may not grow past what it holds: it waits.
    let rest_c = big_c[200 * 1024..].to_vec();
    let mut cw = c.try_clone().unwrap();
    let c_writer = thread::spawn(move || cw.write_all(&rest_c).unwrap());
    turn_until(&mut reactor, &mut service, |r| r.muted_count() == 1);
    let held = reactor.queued_request_bytes();
    for _ in 0..5 {
        reactor.run_once(&mut service, Duration::from_millis(1));
    }
    assert_eq!(
        reactor.queued_request_bytes(),
        held,
        "C waits without growing"
    );
    // A is the oldest holder: it completes; then C, now the oldest, does.
    let (corr, body) = finish_and_read(&mut reactor, &mut service, &mut a, &big_a[100 * 1024..]);
    assert_eq!((corr, body.len()), (1, 600 * 1024));
    let (corr, body) = turn_and_read(&mut reactor, &mut service, &mut c);
    c_writer.join().unwrap();
    assert_eq!((corr, body.len()), (2, 600 * 1024));
    assert_eq!(reactor.queued_request_bytes(), 0);
    assert_eq!(reactor.muted_count(), 0);
}

#[test]
fn a_flood_of_connections_is_accepted_over_several_short_turns() {
    let limits = Limits {
        max_connections: 2000,
        ..test_limits()
    };
    let server = Server::start(limits);
    let mut clients: Vec<TcpStream> = (0..600).map(|_| server.connect()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.write_all(&frame(0, 0, i as i32, b"hi")).unwrap();
    }
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(read_response(c), (i as i32, b"hi".to_vec()));
    }
}

// ---------------------------------------------------------------- Outbound links to peers

/// A service that only talks to peers: the test pushes `ToPeer` requests into `cmds`, and the
/// service records what comes back.
#[derive(Default)]
struct PeerShared {
    cmds: Mutex<Vec<ToPeer>>,
    /// "up 7", "down 7", "frame 7 <corr>"
    seen: Mutex<Vec<String>>,
}

struct PeerService(Arc<PeerShared>);

impl Service for PeerService {
    fn handle(&mut self, _: ConnId, _: &mut [u8], _: Instant) -> Reply {
        Reply::Close
    }
    fn tick(&mut self, _: Instant) {}
    fn flush(&mut self, _: Instant) {}
    fn take_completions(&mut self, _: &mut Vec<(ConnId, Vec<u8>)>) {}
    fn next_deadline(&self) -> Option<Instant> {
        None
    }
    fn connection_closed(&mut self, _: ConnId) {}
    fn shutdown(&mut self) {}
    fn take_outbound(&mut self, out: &mut Vec<ToPeer>) {
        out.append(&mut self.0.cmds.lock().unwrap());
    }
    fn peer_frame(&mut self, peer: PeerId, frame: &mut [u8], _: Instant) {
        let corr = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        self.0
            .seen
            .lock()
            .unwrap()
            .push(format!("frame {peer} {corr}"));
    }
    fn peer_link(&mut self, peer: PeerId, up: bool) {
        let what = if up { "up" } else { "down" };
        self.0.seen.lock().unwrap().push(format!("{what} {peer}"));
    }
}

struct PeerClient {
    shared: Arc<PeerShared>,
    stop: ShutdownHandle,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl PeerClient {
    fn start() -> PeerClient {
        let mut reactor = Reactor::bind("127.0.0.1:0".parse().unwrap(), Limits::default()).unwrap();
        let stop = reactor.shutdown_handle();
        let shared = Arc::new(PeerShared::default());
        let s = shared.clone();
        let thread = thread::spawn(move || reactor.run(&mut PeerService(s)));
        PeerClient {
            shared,
            stop,
            thread: Some(thread),
        }
    }

    fn send(&self, cmd: ToPeer) {
        self.shared.cmds.lock().unwrap().push(cmd);
    }

    fn seen(&self) -> Vec<String> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Waits (polling) until `what` has been seen.
    fn wait_for(&self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.seen().iter().any(|s| s == what) {
            assert!(
                Instant::now() < deadline,
                "never saw {what:?}: {:?}",
                self.seen()
            );
            thread::sleep(Duration::from_millis(5)); // polling for a condition
        }
    }
}

impl Drop for PeerClient {
    fn drop(&mut self) {
        self.stop.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_peer_link_connects_sends_and_reads_back() {
    let server = Server::start(Limits::default());
    let client = PeerClient::start();
    // Frames queued before the link is up go out once it is.
    client.send(ToPeer::Address(7, server.addr.to_string()));
    client.send(ToPeer::Frame(7, frame(0, 0, 41, b"hello")));
    client.send(ToPeer::Frame(7, frame(0, 0, 42, &[9u8; 200_000])));
    client.wait_for("up 7");
    client.wait_for("frame 7 41");
    client.wait_for("frame 7 42");
    let order: Vec<String> = client
        .seen()
        .into_iter()
        .filter(|s| s.starts_with("frame"))
        .collect();
    assert_eq!(order, vec!["frame 7 41", "frame 7 42"]);
    // A frame for a peer nobody named is dropped, nothing else happens.
    client.send(ToPeer::Frame(8, frame(0, 0, 43, b"")));
    client.send(ToPeer::Frame(7, frame(0, 0, 44, b"")));
    client.wait_for("frame 7 44");
    assert!(!client.seen().iter().any(|s| s.contains("43")));
}

#[test]
fn a_peer_link_comes_back_after_the_peer_restarts() {
    let server = Server::start(Limits::default());
    let addr = server.addr;
    let client = PeerClient::start();
    client.send(ToPeer::Address(3, addr.to_string()));
    client.send(ToPeer::Frame(3, frame(0, 0, 1, b"")));
    client.wait_for("frame 3 1");
    drop(server.stop());
    client.wait_for("down 3");
    // Queued while down: sent on the next connection.
    client.send(ToPeer::Frame(3, frame(0, 0, 2, b"")));
    let t0 = Instant::now();
    let _server = Server::start_at(addr, Limits::default(), |_| {});
    client.wait_for("frame 3 2");
    // Backoff is at most 1 s, so the link is back within about that.
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    let ups = client.seen().iter().filter(|s| *s == "up 3").count();
    assert_eq!(ups, 2, "{:?}", client.seen());
}

#[test]
fn a_peer_sending_a_bad_frame_is_disconnected_and_retried() {
    // A fake peer that answers the first connection with a negative frame size.
    let fake = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = PeerClient::start();
    client.send(ToPeer::Address(9, fake.local_addr().unwrap().to_string()));
    let (mut first, _) = fake.accept().unwrap();
    client.wait_for("up 9");
    first.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]).unwrap();
    client.wait_for("down 9");
    // It connects again (after its backoff) and reads whole frames from the new connection.
    let (mut second, _) = fake.accept().unwrap();
    second.write_all(&[0, 0, 0, 4, 0, 0, 0, 77]).unwrap();
    client.wait_for("frame 9 77");
    assert!(!client.seen().iter().any(|s| s.starts_with("frame 9 -")));
}

#[test]
fn a_peer_link_retries_an_unreachable_peer_and_can_be_forgotten() {
    let server = Server::start(Limits::default());
    let client = PeerClient::start();
    // Nothing listens on port 1: the link keeps retrying without holding the loop.
    client.send(ToPeer::Address(6, "127.0.0.1:1".into()));
    client.send(ToPeer::Address(5, server.addr.to_string()));
    client.send(ToPeer::Frame(5, frame(3, 0, 2, b""))); // the server closes on apiKey 3
    client.wait_for("down 5");
    client.send(ToPeer::Frame(5, frame(0, 0, 3, b"")));
    client.wait_for("frame 5 3");
    assert!(!client.seen().iter().any(|s| s == "up 6"));
    // Forgetting a peer closes its link; frames for it are dropped.
    client.send(ToPeer::Forget(5));
    client.wait_for("down 5");
    client.send(ToPeer::Frame(5, frame(0, 0, 4, b"")));
    client.send(ToPeer::Address(4, server.addr.to_string()));
    client.send(ToPeer::Frame(4, frame(0, 0, 5, b"")));
    client.wait_for("frame 4 5");
    assert!(!client.seen().iter().any(|s| s == "frame 5 4"));
}

#[test]
fn a_second_listener_serves_and_says_which_it_is() {
    let mut extra = None;
    let server = Server::start_with(Limits::default(), |r| {
        extra = Some(r.listen_also("127.0.0.1:0".parse().unwrap()).unwrap());
    });
    let (id, addr) = extra.unwrap();
    assert_eq!(id, 1);
    let mut a = server.connect();
    let mut b = TcpStream::connect(addr).unwrap();
    b.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    b.write_all(&frame(0, 0, 2, b"ctl")).unwrap();
    assert_eq!(read_response(&mut b), (2, b"ctl".to_vec()));
    a.write_all(&frame(0, 0, 1, b"cli")).unwrap();
    assert_eq!(read_response(&mut a), (1, b"cli".to_vec()));
    let mut opened = server.shared.opened_on.lock().unwrap().clone();
    opened.sort_unstable();
    assert_eq!(opened, vec![0, 1]);
}
