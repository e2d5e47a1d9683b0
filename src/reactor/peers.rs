//! Outbound connections to peers (the other voters of the controller quorum, partition leaders),
//! opened and kept up by the loop itself: no threads.
//!
//! The service names peers by id and says where they are ([`ToPeer::Address`]); the reactor
//! connects (non-blocking), reconnects after a failure with exponential backoff (50 ms doubling
//! to 1 s, Kafka's `reconnect.backoff.ms` / `reconnect.backoff.max.ms`), writes the frames the
//! service queues ([`ToPeer::Frame`]) and hands back every whole frame the peer sends
//! ([`Service::peer_frame`](super::Service::peer_frame)). The service learns when a link comes up
//! or goes down ([`Service::peer_link`](super::Service::peer_link)); frames that were queued
//! when a link went down are dropped (the service resends what it still needs: Raft and
//! Kafka's inter-broker requests are all retried by their senders), frames queued while it is
//! down wait for the next connection, up to [`MAX_QUEUED`] bytes.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use slab::Slab;

use super::{PeerId, Service, ToPeer};

/// Peer tokens are `PEER_BASE + slab key`, far above connection ids and below the fixed tokens.
pub(super) const PEER_BASE: usize = usize::MAX / 2;
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Bytes queued for one peer at most; frames beyond are dropped (with one log line).
pub const MAX_QUEUED: usize = 64 * 1024 * 1024;
const READ_CHUNK: usize = 64 * 1024;

struct Link {
    peer: PeerId,
    addr: String,
    stream: Option<TcpStream>,
    /// Connected (the non-blocking connect finished without error).
    up: bool,
    /// When to try connecting again while there is no stream.
    retry_at: Instant,
    backoff: Duration,
    out: Vec<u8>,
    out_pos: usize,
    inbuf: Vec<u8>,
    /// Frames were dropped because the queue was full (logged once per episode).
    overflowing: bool,
}

/// The peer links of one reactor.
pub(super) struct Peers {
    links: Slab<Link>,
    by_id: HashMap<PeerId, usize>,
    max_frame: usize,
}

impl Peers {
    pub fn new(max_frame: usize) -> Peers {
        Peers {
            links: Slab::new(),
            by_id: HashMap::new(),
            max_frame,
        }
    }

    pub fn is_peer(token: Token) -> bool {
        token.0 >= PEER_BASE && token.0 < PEER_BASE + (1 << 20)
    }

    /// Applies the service's requests, then writes what can be written.
    pub fn apply<S: Service>(
        &mut self,
        cmds: &mut Vec<ToPeer>,
        registry: &Registry,
        service: &mut S,
        now: Instant,
    ) {
        for cmd in cmds.drain(..) {
            match cmd {
                ToPeer::Address(peer, addr) => {
                    if let Some(&key) = self.by_id.get(&peer) {
                        if self.links[key].addr == addr {
                            continue;
                        }
                        self.down(key, registry, service, now, "its address changed");
                        let link = &mut self.links[key];
                        link.addr = addr;
                        link.retry_at = now;
                        link.backoff = BACKOFF_MIN;
                    } else {
                        let key = self.links.insert(Link {
                            peer,
                            addr,
                            stream: None,
                            up: false,
                            retry_at: now,
                            backoff: BACKOFF_MIN,
                            out: Vec::new(),
                            out_pos: 0,
                            inbuf: Vec::new(),
                            overflowing: false,
                        });
                        self.by_id.insert(peer, key);
                    }
                }
                ToPeer::Forget(peer) => {
                    if let Some(key) = self.by_id.remove(&peer) {
                        self.down(key, registry, service, now, "forgotten");
                        self.links.remove(key);
                    }
                }
                ToPeer::Frame(peer, frame) => {
                    let Some(&key) = self.by_id.get(&peer) else {
                        ::log::debug!("reactor: frame for unknown peer {peer} dropped");
                        continue;
                    };
                    let link = &mut self.links[key];
                    if link.out.len() - link.out_pos + frame.len() > MAX_QUEUED {
                        if !link.overflowing {
                            ::log::warn!(
                                "reactor: more than {} MiB queued for peer {peer} ({}): dropping frames",
                                MAX_QUEUED >> 20,
                                link.addr
                            );
                            link.overflowing = true;
                        }
                        continue;
                    }
                    link.overflowing = false;
                    link.out.extend_from_slice(&frame);
                }
            }
        }
        self.retry_due(registry, service, now);
        let keys: Vec<usize> = self.links.iter().map(|(k, _)| k).collect();
        for key in keys {
            if self.links[key].up && self.links[key].out.len() > self.links[key].out_pos {
                self.write(key, registry, service, now);
            }
        }
    }

    /// Connects the links whose retry time has come.
    fn retry_due<S: Service>(&mut self, registry: &Registry, service: &mut S, now: Instant) {
        let due: Vec<usize> = self
            .links
            .iter()
            .filter(|(_, l)| l.stream.is_none() && l.retry_at <= now)
            .map(|(k, _)| k)
            .collect();
        for key in due {
            self.connect(key, registry, service, now);
        }
    }

    fn connect<S: Service>(
        &mut self,
        key: usize,
        registry: &Registry,
        service: &mut S,
        now: Instant,
    ) {
        let link = &mut self.links[key];
        // Resolution is blocking, but peers are named by IP or by names in /etc/hosts.
        let addr: io::Result<SocketAddr> = link
            .addr
            .to_socket_addrs()
            .and_then(|mut a| a.next().ok_or_else(|| io::Error::other("no address")));
        let result = addr.and_then(|a| {
            let mut s = TcpStream::connect(a)?;
            registry.register(
                &mut s,
                Token(PEER_BASE + key),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            Ok(s)
        });
        match result {
            Ok(s) => {
                ::log::debug!("reactor: connecting to peer {} at {}", link.peer, link.addr);
                link.stream = Some(s);
            }
            Err(e) => {
                let reason = format!("cannot connect: {e}");
                self.down(key, registry, service, now, &reason);
            }
        }
    }

    /// A readiness event for a peer link.
    pub fn event<S: Service>(
        &mut self,
        token: Token,
        readable: bool,
        writable: bool,
        registry: &Registry,
        service: &mut S,
        now: Instant,
    ) {
        let key = token.0 - PEER_BASE;
        let Some(link) = self.links.get_mut(key) else {
            return;
        };
        let Some(stream) = link.stream.as_ref() else {
            return;
        };
        if !link.up {
            // The non-blocking connect finished one way or the other (or the event is spurious).
            match stream.take_error() {
                Ok(Some(e)) | Err(e) => {
                    let reason = format!("cannot connect: {e}");
                    return self.down(key, registry, service, now, &reason);
                }
                Ok(None) => {}
            }
            match stream.peer_addr() {
                Ok(_) => {
                    link.up = true;
                    link.backoff = BACKOFF_MIN;
                    if let Err(e) = stream.set_nodelay(true) {
                        ::log::debug!("reactor: set_nodelay for peer {}: {e}", link.peer);
                    }
                    ::log::info!("reactor: connected to peer {} at {}", link.peer, link.addr);
                    service.peer_link(link.peer, true);
                }
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => {
                    let reason = format!("cannot connect: {e}");
                    return self.down(key, registry, service, now, &reason);
                }
            }
        }
        if writable {
            self.write(key, registry, service, now);
        }
        if readable && self.links.get(key).is_some_and(|l| l.up) {
            self.read(key, registry, service, now);
        }
    }

    fn write<S: Service>(
        &mut self,
        key: usize,
        registry: &Registry,
        service: &mut S,
        now: Instant,
    ) {
        let link = &mut self.links[key];
        let Some(stream) = link.stream.as_mut() else {
            return;
        };
        while link.out_pos < link.out.len() {
            match stream.write(&link.out[link.out_pos..]) {
                Ok(0) => return self.down(key, registry, service, now, "write returned 0"),
                Ok(n) => link.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let reason = format!("write failed: {e}");
                    return self.down(key, registry, service, now, &reason);
                }
            }
        }
        link.out.clear();
        link.out_pos = 0;
        if link.out.capacity() > READ_CHUNK {
            link.out = Vec::new();
        }
    }

    fn read<S: Service>(&mut self, key: usize, registry: &Registry, service: &mut S, now: Instant) {
        let mut chunk = [0u8; 8192];
        loop {
            let link = &mut self.links[key];
            let Some(stream) = link.stream.as_mut() else {
                return;
            };
            match stream.read(&mut chunk) {
                Ok(0) => return self.down(key, registry, service, now, "closed by the peer"),
                Ok(n) => link.inbuf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let reason = format!("read failed: {e}");
                    return self.down(key, registry, service, now, &reason);
                }
            }
            if link.inbuf.len() >= READ_CHUNK {
                // Hand over what is whole before reading more.
                if !self.deliver(key, registry, service, now) {
                    return;
                }
            }
        }
        self.deliver(key, registry, service, now);
    }

    /// Hands every whole frame to the service. False when the link went down.
    fn deliver<S: Service>(
        &mut self,
        key: usize,
        registry: &Registry,
        service: &mut S,
        now: Instant,
    ) -> bool {
        let max = self.max_frame;
        let link = &mut self.links[key];
        let mut pos = 0;
        let mut bad = None;
        while link.inbuf.len() - pos >= 4 {
            let b = &link.inbuf[pos..];
            let size = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            if size < 0 || size as usize > max {
                bad = Some(size);
                break;
            }
            let end = pos + 4 + size as usize;
            if link.inbuf.len() < end {
                break;
            }
            service.peer_frame(link.peer, &mut link.inbuf[pos + 4..end], now);
            pos = end;
        }
        if let Some(size) = bad {
            let reason = format!("sent a frame of {size} bytes");
            self.down(key, registry, service, now, &reason);
            return false;
        }
        let link = &mut self.links[key];
        link.inbuf.drain(..pos);
        if link.inbuf.is_empty() && link.inbuf.capacity() > READ_CHUNK {
            link.inbuf = Vec::new();
        }
        true
    }

    /// Closes the link's connection (if any) and schedules the next attempt.
    fn down<S: Service>(
        &mut self,
        key: usize,
        registry: &Registry,
        service: &mut S,
        now: Instant,
        reason: &str,
    ) {
        let link = &mut self.links[key];
        let was_up = link.up;
        if let Some(mut s) = link.stream.take() {
            let _ = registry.deregister(&mut s);
        }
        link.up = false;
        link.out.clear();
        link.out_pos = 0;
        link.inbuf.clear();
        link.retry_at = now + link.backoff;
        if was_up {
            ::log::info!(
                "reactor: link to peer {} at {} down: {reason}; retrying in {} ms",
                link.peer,
                link.addr,
                link.backoff.as_millis()
            );
            service.peer_link(link.peer, false);
        } else {
            ::log::debug!(
                "reactor: peer {} at {}: {reason}; retrying in {} ms",
                link.peer,
                link.addr,
                link.backoff.as_millis()
            );
        }
        link.backoff = (link.backoff * 2).min(BACKOFF_MAX);
    }

    /// The earliest reconnect attempt.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.links
            .iter()
            .filter(|(_, l)| l.stream.is_none())
            .map(|(_, l)| l.retry_at)
            .min()
    }

    /// One last non-blocking write of what is queued, then every link closed.
    pub fn shutdown(&mut self, registry: &Registry) {
        for (_, link) in self.links.iter_mut() {
            if let Some(mut s) = link.stream.take() {
                if link.up {
                    let _ = s.write(&link.out[link.out_pos..]);
                }
                let _ = registry.deregister(&mut s);
            }
        }
        self.links.clear();
        self.by_id.clear();
    }
}
