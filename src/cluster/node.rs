//! A combined node of a cluster (`process.roles=broker,controller` with several voters): one
//! voter of the metadata quorum and one broker, in the one loop.
//!
//! - The controller ([`Controller`]) runs the quorum on the controller listener; the broker
//!   ([`Broker`]) serves clients on the client listener.
//! - **Metadata reaches the broker from the quorum.** Every committed record the controller
//!   applies is applied to the broker's image too. On the active controller's node the broker
//!   is the *writer*: its admin handlers change the image at once and the changes are proposed
//!   to the quorum; the client is answered once they are committed (Kafka's controller applies
//!   before commit and answers after it the same way). If leadership is lost first, the broker
//!   goes back to the committed image and the client's connection is closed, so it retries.
//! - **Admin requests reach the active controller.** A metadata change sent to another node is
//!   forwarded over the link to the active controller's node (Kafka's brokers forward too) and
//!   its answer relayed back. What the broker needs itself (an internal topic, producer ids)
//!   it asks for with CreateTopics and AllocateProducerIds.
//! - **The broker registers** with the active controller (BrokerRegistration) and heartbeats
//!   every `broker.heartbeat.interval.ms`; the controller unfences it once it has caught up
//!   with the metadata, and fences it when its heartbeats stop.

use crate::broker::cluster::Wish;
use crate::broker::Broker;
use crate::cluster::controller::{Controller, Published, METADATA_FETCH, RAFT_MESSAGE};
use crate::cluster::observer::{FetchAnswer, Observer};
use crate::config::Config;
use crate::protocol::apis;
use crate::protocol::error;
use crate::protocol::header::{frame_response, RequestHeader};
use crate::protocol::messages::allocate_producer_ids_request::AllocateProducerIdsRequest;
use crate::protocol::messages::allocate_producer_ids_response::AllocateProducerIdsResponse;
use crate::protocol::messages::{
    allocate_producer_ids_request, broker_heartbeat_request, broker_registration_request,
    create_topics_request,
};
use crate::protocol::wire::{Reader, Writer};
use crate::reactor::{ConnId, PeerId, Reply, Service, ToPeer};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

const BROKER_REGISTRATION: i16 = 62;
const BROKER_HEARTBEAT: i16 = 63;
const ALLOCATE_PRODUCER_IDS: i16 = 67;
const NOT_CONTROLLER: i16 = 41;
const STALE_BROKER_EPOCH: i16 = 77;
const BROKER_ID_NOT_REGISTERED: i16 = 102;
/// Producer ids per AllocateProducerIds block, as Kafka's controller hands them out.
const PRODUCER_ID_BLOCK: i32 = 1000;
/// Connection ids of requests this node makes of its own controller (never a slab key).
const LOCAL_BASE: ConnId = usize::MAX / 2;
/// How long a request to the controller may stay unanswered before it counts as lost.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a broker in controlled shutdown asks whether it may stop.
const SHUTDOWN_HEARTBEAT: Duration = Duration::from_millis(50);
/// Requests to another node's controller travel on a link of their own (peer id
/// `REQUEST_LINK + node`): a request parked there until a commit must never hold up the Raft
/// messages that make the commit.
const REQUEST_LINK: PeerId = 1 << 24;
/// Links to other brokers' client listeners (WriteTxnMarkers): peer id `BROKER_LINK + node`.
const BROKER_LINK: PeerId = 2 << 24;
const WRITE_TXN_MARKERS: i16 = 27;
/// A broker-only node's links for reading the metadata (a fetch waits there for commits, and
/// must not hold up its registration or forwarded requests): `FETCH_LINK + voter`.
const FETCH_LINK: PeerId = 3 << 24;
/// Links a follower fetches over from a partition leader's broker listener, its own so that a
/// long-polling Fetch parked at the leader holds nothing else up: `REPLICA_LINK + leader`.
const REPLICA_LINK: PeerId = 4 << 24;
/// The wait before fetching metadata again after a failed fetch.
const FETCH_BACKOFF: Duration = Duration::from_millis(100);
/// The wait before registering again after a refusal.
const REGISTER_BACKOFF: Duration = Duration::from_millis(500);

/// The APIs that change the metadata: served by the active controller's node.
fn changes_metadata(key: i16) -> bool {
    matches!(
        key,
        apis::CREATE_TOPICS
            | apis::DELETE_TOPICS
            | apis::CREATE_PARTITIONS
            | apis::ALTER_CONFIGS
            | apis::INCREMENTAL_ALTER_CONFIGS
            | apis::ELECT_LEADERS
    )
}

/// A whole request frame (size prefix, header, body) from this node.
fn request_frame(
    key: i16,
    version: i16,
    correlation: i32,
    body: impl FnOnce(&mut Writer<'_>),
) -> Vec<u8> {
    request_frame_as("minikafka-node", key, version, correlation, body)
}

fn request_frame_as(
    client_id: &str,
    key: i16,
    version: i16,
    correlation: i32,
    body: impl FnOnce(&mut Writer<'_>),
) -> Vec<u8> {
    let mut frame = Vec::with_capacity(128);
    let mut w = Writer::new(&mut frame);
    let at = w.reserve_i32();
    w.i16(key);
    w.i16(version);
    w.i32(correlation);
    w.nullable_string(Some(client_id));
    if apis::is_flexible(key, version) {
        w.uvarint(0);
    }
    body(&mut w);
    let size = (w.len() - 4) as i32;
    w.patch_i32(at, size);
    frame
}

/// A relayed frame (without its size prefix) framed again with another correlation id at
/// byte `at` (0 in a response, 4 in a request); the caller checks the frame holds it.
fn with_correlation(frame: &[u8], at: usize, correlation: i32) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(frame.len() + 4);
    bytes.extend_from_slice(&(frame.len() as u32).to_be_bytes());
    bytes.extend_from_slice(frame);
    bytes[4 + at..8 + at].copy_from_slice(&correlation.to_be_bytes());
    bytes
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Local,
    /// The active controller on another node.
    Peer(PeerId),
    /// Another broker.
    Broker(PeerId),
}

#[derive(Debug)]
enum Purpose {
    Register,
    Heartbeat,
    ProducerIds,
    CreateTopic(String),
    /// A broker-only node's read of the committed metadata.
    MetadataFetch,
    /// A follower's Fetch of the partitions `leader` leads.
    ReplicaFetch {
        leader: i32,
    },
    /// ISR changes asked of the active controller: (topic, partition, request) of each.
    AlterPartition(Vec<(String, i32, crate::replication::AlterPartitionRequest)>),
    Markers {
        broker: i32,
        producer_id: i64,
        producer_epoch: i16,
    },
    /// A client's request relayed to the active controller: answered to `conn` under the
    /// client's correlation id (`conn` is `None` once the client went away).
    Forward {
        conn: Option<ConnId>,
        correlation: i32,
        /// The request as the client sent it (without the size prefix): run here if the
        /// active controller cannot be reached after all.
        frame: Vec<u8>,
    },
}

struct Inflight {
    to: Target,
    purpose: Purpose,
    key: i16,
    version: i16,
    sent: Instant,
}

/// Where a node's metadata comes from: its own controller (a voter), or, on a broker-only
/// node, the controllers it reads from (an observer).
enum Source {
    Voter(Box<Controller>),
    Observer(Box<Observer>),
}

impl Source {
    fn leader(&self) -> Option<i32> {
        match self {
            Source::Voter(c) => c.leader().0,
            Source::Observer(o) => o.leader,
        }
    }
    fn is_leader(&self) -> bool {
        matches!(self, Source::Voter(c) if c.is_leader())
    }
    fn ready_to_write(&self) -> bool {
        matches!(self, Source::Voter(c) if c.ready_to_write())
    }
    fn propose_records(&mut self, records: &[Vec<u8>]) -> Option<u64> {
        match self {
            Source::Voter(c) => c.propose_records(records),
            Source::Observer(_) => None,
        }
    }
    fn last_index(&self) -> u64 {
        match self {
            Source::Voter(c) => c.last_index(),
            Source::Observer(_) => 0,
        }
    }
    fn applied(&self) -> u64 {
        match self {
            Source::Voter(c) => c.applied(),
            Source::Observer(o) => o.next_offset().max(0) as u64,
        }
    }
    fn applied_offset(&self) -> i64 {
        match self {
            Source::Voter(c) => c.applied_offset(),
            Source::Observer(o) => o.applied_offset(),
        }
    }
    fn image(&self) -> &crate::metadata::MetadataImage {
        match self {
            Source::Voter(c) => c.image(),
            Source::Observer(o) => o.image(),
        }
    }
    fn take_published(&mut self) -> Vec<Published> {
        match self {
            Source::Voter(c) => c.take_published(),
            Source::Observer(o) => o.take_published(),
        }
    }
    fn handle(&mut self, conn: ConnId, frame: &mut [u8], now: Instant) -> Reply {
        match self {
            Source::Voter(c) => c.handle(conn, frame, now),
            Source::Observer(_) => Reply::Close,
        }
    }
    fn tick(&mut self, now: Instant) {
        if let Source::Voter(c) = self {
            c.tick(now)
        }
    }
    fn flush(&mut self, now: Instant) {
        if let Source::Voter(c) = self {
            c.flush(now)
        }
    }
    fn take_completions(&mut self, out: &mut Vec<(ConnId, Vec<u8>)>) {
        if let Source::Voter(c) = self {
            c.take_completions(out)
        }
    }
    fn next_deadline(&self) -> Option<Instant> {
        match self {
            Source::Voter(c) => c.next_deadline(),
            Source::Observer(_) => None,
        }
    }
    fn connection_closed(&mut self, conn: ConnId) {
        if let Source::Voter(c) = self {
            c.connection_closed(conn)
        }
    }
    fn shutdown(&mut self) {
        if let Source::Voter(c) = self {
            c.shutdown()
        }
    }
    fn take_outbound(&mut self, out: &mut Vec<ToPeer>) {
        if let Source::Voter(c) = self {
            c.take_outbound(out)
        }
    }
    fn peer_link(&mut self, peer: PeerId, up: bool) {
        if let Source::Voter(c) = self {
            c.peer_link(peer, up)
        }
    }
}

pub struct ClusterNode {
    broker: Broker,
    source: Source,
    node: i32,
    /// The listener index of the controller listener.
    controller_listener: usize,
    controller_conns: HashSet<ConnId>,
    /// Parked client requests whose answer waits for a commit: conn → Raft index.
    holding: HashMap<ConnId, u64>,
    /// Answers waiting for their changes to commit: (index, conn, response).
    held: Vec<(u64, ConnId, Vec<u8>)>,
    completions: Vec<(ConnId, Vec<u8>)>,
    outbound: Vec<ToPeer>,
    /// This node's broker decides metadata changes (its controller is the active one).
    writer: bool,
    /// Changes proposed before the last step-down commit up to here: the next term as writer
    /// starts only once they are applied.
    writer_floor: u64,
    /// The indexes of the changes this node's broker proposed (and applied) as the writer:
    /// their commit is not applied again.
    own: HashSet<u64>,
    incarnation: [u8; 16],
    /// The broker epoch from the last registration, -1 before.
    broker_epoch: i64,
    fenced: bool,
    next_register: Instant,
    next_heartbeat: Instant,
    heartbeat_interval: Duration,
    next_correlation: i32,
    inflight: HashMap<i32, Inflight>,
    /// The other voters' controller listeners, announced once as request links (and, on a
    /// broker-only node, as fetch links).
    voters: Vec<(i32, String)>,
    announced: bool,
    /// A broker for clients (registered with the quorum); not on a controller-only node.
    serves_clients: bool,
    /// A broker-only node fetches metadata again from this time on.
    next_fetch: Instant,
    /// Request links that are up.
    links_up: HashSet<PeerId>,
    /// The addresses announced for links to other brokers.
    broker_links: HashMap<i32, String>,
    /// The addresses of the leaders' listeners this node's followers fetch from, by leader.
    replica_links: HashMap<i32, String>,
    /// The brokers' (id, epoch, active) when the writer last held elections.
    seen_brokers: Vec<(i32, i64, bool)>,
    /// When the writer next restores preferred leaders (`auto.leader.rebalance.enable`).
    next_rebalance: Instant,
    /// Metadata changes waiting for an active controller to be known and reachable
    /// (Kafka's forwarding queues them the same way): (conn, request, give-up time).
    waiting: Vec<(ConnId, Vec<u8>, Instant)>,
    /// A stop was requested: until when this broker waits for the controller to move its
    /// leaderships away (controlled shutdown), and whether it was told to stop.
    stopping: Option<Instant>,
    shutdown_granted: bool,
    session_timeout: Duration,
}

impl ClusterNode {
    /// A combined node: its controller is a voter of the quorum.
    pub fn new(
        broker: Broker,
        mut controller: Controller,
        config: &Config,
        controller_listener: usize,
        now: Instant,
    ) -> ClusterNode {
        controller.publish();
        Self::with_source(
            broker,
            Source::Voter(Box::new(controller)),
            config,
            controller_listener,
            now,
        )
    }

    /// A controller-only node: a voter whose broker serves no clients and never registers;
    /// it only decides the metadata changes forwarded to it while it is the active controller
    /// (its controller listener is the reactor's first listener).
    pub fn controller_only(
        broker: Broker,
        mut controller: Controller,
        config: &Config,
        now: Instant,
    ) -> ClusterNode {
        controller.publish();
        let mut node =
            Self::with_source(broker, Source::Voter(Box::new(controller)), config, 0, now);
        node.serves_clients = false;
        node
    }

    /// A broker-only node: it reads the committed metadata from the controllers.
    pub fn broker_only(broker: Broker, config: &Config, now: Instant) -> ClusterNode {
        let voters = config.quorum.voters.iter().map(|v| v.id).collect();
        let source = Source::Observer(Box::new(Observer::new(voters)));
        Self::with_source(broker, source, config, usize::MAX, now)
    }

    fn with_source(
        broker: Broker,
        source: Source,
        config: &Config,
        controller_listener: usize,
        now: Instant,
    ) -> ClusterNode {
        ClusterNode {
            node: config.node_id,
            broker,
            source,
            controller_listener,
            controller_conns: HashSet::new(),
            holding: HashMap::new(),
            held: Vec::new(),
            completions: Vec::new(),
            outbound: Vec::new(),
            writer: false,
            writer_floor: 0,
            own: HashSet::new(),
            incarnation: crate::metadata::random_uuid(),
            broker_epoch: -1,
            fenced: true,
            next_register: now,
            next_heartbeat: now,
            heartbeat_interval: Duration::from_millis(
                config.broker_heartbeat_interval_ms.max(10) as u64
            ),
            next_correlation: 1,
            inflight: HashMap::new(),
            voters: config
                .quorum
                .voters
                .iter()
                .filter(|v| v.id != config.node_id)
                .map(|v| (v.id, format!("{}:{}", v.host, v.port)))
                .collect(),
            announced: false,
            serves_clients: true,
            next_fetch: now,
            links_up: HashSet::new(),
            broker_links: HashMap::new(),
            replica_links: HashMap::new(),
            seen_brokers: Vec::new(),
            next_rebalance: now
                + Duration::from_secs(config.leader_imbalance_check_interval_seconds.max(1) as u64),
            waiting: Vec::new(),
            stopping: None,
            shutdown_granted: false,
            session_timeout: Duration::from_millis(config.broker_session_timeout_ms.max(1) as u64),
        }
    }

    /// The active controller, when it is another node.
    fn remote_controller(&self) -> Option<PeerId> {
        match self.source.leader() {
            Some(id) if id != self.node => Some(REQUEST_LINK + id),
            _ => None,
        }
    }

    /// The active controller on another node whose link is up: where changes are forwarded.
    fn reachable_controller(&self) -> Option<PeerId> {
        self.remote_controller()
            .filter(|p| self.links_up.contains(p))
    }

    /// Runs a client request on the broker; if it changed the metadata, the changes are
    /// proposed and the answer waits for their commit.
    fn on_broker(&mut self, conn: ConnId, frame: &mut [u8], now: Instant) -> Reply {
        let reply = self.broker.handle(conn, frame, now);
        let (index, failed) = self.propose_changes(now);
        if failed {
            log::warn!(
                "node {}: connection {conn}: a metadata change could not be proposed; closing",
                self.node
            );
            return Reply::Close;
        }
        match (index, reply) {
            (Some(i), Reply::Now(bytes)) => {
                self.held.push((i, conn, bytes));
                Reply::Parked
            }
            (Some(i), Reply::Parked) => {
                self.holding.insert(conn, i);
                Reply::Parked
            }
            (_, reply) => reply,
        }
    }

    /// Proposes what the broker changed: (the last index, whether a proposal failed).
    fn propose_changes(&mut self, now: Instant) -> (Option<u64>, bool) {
        let changes = self.broker.metadata_mut().take_proposals();
        let mut last = None;
        for change in &changes {
            match self.source.propose_records(change) {
                Some(i) => {
                    self.own.insert(i);
                    last = Some(i)
                }
                None => {
                    self.stop_writing(now);
                    return (None, true);
                }
            }
        }
        if last.is_some() {
            // The writer's own changes: what it leads may have changed with them.
            self.broker.refresh_roles(now);
        }
        (last, false)
    }

    /// The broker follows the committed metadata again (leadership lost, or a proposal
    /// refused); answers waiting for a commit that may never come close their connections.
    fn stop_writing(&mut self, now: Instant) {
        if !self.writer {
            return;
        }
        self.writer = false;
        self.writer_floor = self.source.last_index();
        // What was proposed and commits later is applied like any committed record.
        self.own.clear();
        self.broker
            .metadata_mut()
            .set_mode(crate::metadata::StoreMode::Follower);
        self.broker.reset_metadata(self.source.image().clone(), now);
        for (_, conn, _) in self.held.drain(..) {
            self.completions.push((conn, Vec::new()));
        }
        for (conn, _) in self.holding.drain() {
            self.completions.push((conn, Vec::new()));
        }
        log::info!(
            "node {}: no longer the active controller's broker",
            self.node
        );
    }

    /// After the controller's turn: the broker's image follows the committed records (but
    /// for the changes it made itself as the writer, which it applied already), and the writer
    /// role follows the quorum's leadership.
    fn follow(&mut self, now: Instant) {
        let published = self.source.take_published();
        if self.writer && !self.source.is_leader() {
            self.stop_writing(now);
        } else if published.contains(&Published::Reset) {
            self.broker.reset_metadata(self.source.image().clone(), now);
        } else {
            let mut records = Vec::new();
            for p in published {
                if let Published::Record(index, bytes) = p {
                    if !self.own.contains(&index) {
                        records.push(bytes);
                    }
                }
            }
            if !records.is_empty() {
                self.broker.apply_metadata(&records, now);
            }
        }
        let applied = self.source.applied();
        self.own.retain(|i| *i > applied);
        if !self.writer
            && self.source.ready_to_write()
            && self.source.applied() >= self.writer_floor
        {
            self.writer = true;
            self.broker
                .metadata_mut()
                .set_mode(crate::metadata::StoreMode::Leader);
            // Nothing asked of another node is needed any more.
            if let Some(c) = self.broker.cluster_view_mut() {
                c.wishes.clear();
            }
            log::info!("node {}: the active controller's broker", self.node);
        }
        // Clients send admin requests to the controller Metadata names: the active one when
        // it can be reached, else this node (which forwards, or answers NOT_CONTROLLER).
        let named = match self.source.leader() {
            Some(id) if id == self.node => Some(id),
            Some(_) if self.reachable_controller().is_some() => self.source.leader(),
            _ if self.broker_epoch >= 0 => Some(self.node),
            _ => None,
        };
        if let Some(c) = self.broker.cluster_view_mut() {
            c.active_controller = named;
        }
    }

    /// Answers held for a commit that happened.
    fn release_held(&mut self) {
        let applied = self.source.applied();
        let mut i = 0;
        while i < self.held.len() {
            if self.held[i].0 <= applied {
                let (_, conn, bytes) = self.held.swap_remove(i);
                self.completions.push((conn, bytes));
            } else {
                i += 1;
            }
        }
    }

    // ---- requests to the active controller ----

    /// Sends a request to the active controller (this node's own, or another's over the
    /// link); `body` writes the request body at `version`.
    fn send(
        &mut self,
        key: i16,
        version: i16,
        purpose: Purpose,
        body: impl FnOnce(&mut Writer<'_>),
        now: Instant,
    ) -> bool {
        let to = if self.source.is_leader() {
            Target::Local
        } else if let Some(peer) = self.reachable_controller() {
            Target::Peer(peer)
        } else {
            return false;
        };
        let correlation = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1).max(1);
        let frame = request_frame(key, version, correlation, body);
        self.inflight.insert(
            correlation,
            Inflight {
                to,
                purpose,
                key,
                version,
                sent: now,
            },
        );
        self.dispatch(correlation, to, frame, now);
        true
    }

    fn dispatch(&mut self, correlation: i32, to: Target, mut frame: Vec<u8>, now: Instant) {
        match to {
            Target::Peer(peer) | Target::Broker(peer) => {
                self.outbound.push(ToPeer::Frame(peer, frame))
            }
            Target::Local => {
                let conn = LOCAL_BASE + correlation as usize;
                // ISR changes are decided by this node's broker (the writer), not the voter.
                let reply =
                    if frame.len() >= 6 && frame[4..6] == apis::ALTER_PARTITION.to_be_bytes() {
                        self.change(conn, &mut frame[4..], false, now)
                    } else {
                        self.source.handle(conn, &mut frame[4..], now)
                    };
                match reply {
                    Reply::Now(bytes) => self.on_response(correlation, &bytes[4..], now),
                    Reply::Parked => {}
                    Reply::None | Reply::Close => self.on_failure(correlation),
                }
            }
        }
    }

    /// A response from the controller (its frame without the size prefix).
    fn on_response(&mut self, correlation: i32, frame: &[u8], now: Instant) {
        let Some(inflight) = self.inflight.remove(&correlation) else {
            return;
        };
        if let Purpose::Forward {
            conn, correlation, ..
        } = inflight.purpose
        {
            if let Some(conn) = conn {
                if frame.len() >= 4 {
                    self.completions
                        .push((conn, with_correlation(frame, 0, correlation)));
                }
            }
            return;
        }
        let mut r = Reader::new(frame);
        let header = r.i32().and_then(|_| {
            if apis::is_flexible(inflight.key, inflight.version) {
                r.skip_tagged_fields()
            } else {
                Ok(())
            }
        });
        if let Err(e) = header {
            log::warn!("node {}: unreadable controller response ({e})", self.node);
            return self.failed(inflight.purpose);
        }
        let v = inflight.version;
        let outcome = match inflight.purpose {
            Purpose::Register => {
                use crate::protocol::messages::broker_registration_response::BrokerRegistrationResponse as R;
                R::decode(&mut r, v).map(|resp| {
                    if resp.error_code == error::NONE {
                        self.broker_epoch = resp.broker_epoch;
                        self.broker.set_broker_epoch(resp.broker_epoch, now);
                        self.next_heartbeat = now;
                        log::info!(
                            "node {}: broker registered (broker epoch {})",
                            self.node,
                            resp.broker_epoch
                        );
                    } else {
                        log::info!(
                            "node {}: broker registration refused (error {}); retrying",
                            self.node,
                            resp.error_code
                        );
                        self.next_register = now + REGISTER_BACKOFF;
                    }
                })
            }
            Purpose::Heartbeat => {
                use crate::protocol::messages::broker_heartbeat_response::BrokerHeartbeatResponse as R;
                R::decode(&mut r, v).map(|resp| match resp.error_code {
                    error::NONE => {
                        if resp.is_fenced != self.fenced {
                            self.fenced = resp.is_fenced;
                            log::info!(
                                "node {}: broker {}",
                                self.node,
                                if resp.is_fenced { "fenced" } else { "unfenced" }
                            );
                        }
                        if self.stopping.is_some() && resp.should_shut_down {
                            log::info!("node {}: the controller lets this broker stop", self.node);
                            self.shutdown_granted = true;
                        }
                        // Until unfenced, heartbeat often: it is what unfences.
                        if resp.is_fenced && self.stopping.is_none() {
                            self.next_heartbeat = now + REGISTER_BACKOFF;
                        }
                    }
                    STALE_BROKER_EPOCH | BROKER_ID_NOT_REGISTERED => {
                        log::info!(
                            "node {}: broker registration lost (error {}); registering again",
                            self.node,
                            resp.error_code
                        );
                        self.broker_epoch = -1;
                        self.next_register = now;
                    }
                    NOT_CONTROLLER => self.next_heartbeat = now + REGISTER_BACKOFF,
                    code => log::warn!("node {}: heartbeat refused (error {code})", self.node),
                })
            }
            Purpose::ProducerIds => AllocateProducerIdsResponse::decode(&mut r, v).map(|resp| {
                if resp.error_code == error::NONE {
                    self.broker
                        .grant_producer_ids(resp.producer_id_start, resp.producer_id_len as i64);
                } else {
                    log::info!(
                        "node {}: producer ids refused (error {})",
                        self.node,
                        resp.error_code
                    );
                }
            }),
            Purpose::CreateTopic(name) => {
                use crate::protocol::messages::create_topics_response::CreateTopicsResponse as R;
                R::decode(&mut r, v).map(|resp| {
                    for t in &resp.topics {
                        if !matches!(t.error_code, error::NONE | error::TOPIC_ALREADY_EXISTS) {
                            log::warn!(
                                "node {}: creating topic {name}: error {}",
                                self.node,
                                t.error_code
                            );
                        }
                    }
                })
            }
            Purpose::Markers {
                producer_id,
                producer_epoch,
                ..
            } => {
                use crate::protocol::messages::write_txn_markers_response::WriteTxnMarkersResponse as R;
                R::decode(&mut r, v).map(|resp| {
                    let mut done = Vec::new();
                    for m in resp.markers.iter().filter(|m| m.producer_id == producer_id) {
                        for t in &m.topics {
                            for p in &t.partitions {
                                // Written, or nothing to close (a newer epoch, a deleted topic).
                                if matches!(
                                    p.error_code,
                                    error::NONE
                                        | error::INVALID_PRODUCER_EPOCH
                                        | error::UNKNOWN_TOPIC_OR_PARTITION
                                ) {
                                    done.push((t.name.to_string(), p.partition_index));
                                } else {
                                    log::info!(
                                        "node {}: marker for {}-{}: error {}; retried",
                                        self.node,
                                        t.name,
                                        p.partition_index,
                                        p.error_code
                                    );
                                }
                            }
                        }
                    }
                    self.broker
                        .remote_markers_written(producer_id, producer_epoch, &done, now);
                })
            }
            Purpose::MetadataFetch => FetchAnswer::decode(&mut r).map(|answer| {
                if let Source::Observer(o) = &mut self.source {
                    o.apply(&answer);
                }
                // Read on at once: the answer came as soon as there was something to read.
                self.next_fetch = now;
            }),
            Purpose::ReplicaFetch { leader } => {
                self.broker.on_replica_fetch_response(leader, r.rest(), now);
                self.replicate(now);
                Ok(())
            }
            Purpose::AlterPartition(sent) => {
                use crate::protocol::messages::alter_partition_response::AlterPartitionResponse as R;
                match R::decode(&mut r, v) {
                    Ok(resp) => {
                        let mut by_name = HashMap::new();
                        for t in &resp.topics {
                            if let Some(info) = self.broker.image().topic_by_id(&t.topic_id) {
                                for p in &t.partitions {
                                    by_name.insert((info.name.clone(), p.partition_index), p);
                                }
                            }
                        }
                        for (topic, partition, req) in &sent {
                            let found = by_name.get(&(topic.clone(), *partition));
                            let answer = match (resp.error_code, found) {
                                (0, Some(p)) if p.error_code == 0 => {
                                    Ok(crate::replication::AlterPartitionAnswer {
                                        leader_id: p.leader_id,
                                        leader_epoch: p.leader_epoch,
                                        partition_epoch: p.partition_epoch,
                                        isr: p.isr.clone(),
                                        leader_recovering: p.leader_recovery_state == 1,
                                    })
                                }
                                (0, Some(p)) => Err(p.error_code),
                                (0, None) => Err(error::UNKNOWN_TOPIC_OR_PARTITION),
                                (code, _) => Err(code),
                            };
                            self.broker
                                .on_alter_partition_answer(topic, *partition, req, answer, now);
                        }
                        Ok(())
                    }
                    Err(e) => {
                        self.failed(Purpose::AlterPartition(sent));
                        Err(e)
                    }
                }
            }
            Purpose::Forward { .. } => Ok(()),
        };
        if let Err(e) = outcome {
            log::warn!("node {}: unreadable controller response ({e})", self.node);
        }
    }

    fn on_failure(&mut self, correlation: i32) {
        if let Some(inflight) = self.inflight.remove(&correlation) {
            self.failed(inflight.purpose);
        }
    }

    fn failed(&mut self, purpose: Purpose) {
        if let Purpose::ReplicaFetch { leader } = purpose {
            self.broker.replica_fetch_failed(leader, Instant::now());
            return;
        }
        if let Purpose::AlterPartition(sent) = purpose {
            // Asked again (the leader's state keeps the request pending until answered).
            for (topic, partition, req) in sent {
                self.broker.on_alter_partition_answer(
                    &topic,
                    partition,
                    &req,
                    Err(error::REQUEST_TIMED_OUT),
                    Instant::now(),
                );
            }
            return;
        }
        if let Purpose::MetadataFetch = purpose {
            if let Source::Observer(o) = &mut self.source {
                o.lost();
            }
            self.next_fetch = Instant::now() + FETCH_BACKOFF;
            return;
        }
        if let Purpose::Forward {
            conn: Some(conn),
            frame,
            ..
        } = purpose
        {
            // The active controller could not be reached: the request waits for the next.
            self.waiting
                .push((conn, frame, Instant::now() + REQUEST_TIMEOUT));
        }
    }

    /// A metadata change: made here by the writer; forwarded to the active controller (from
    /// a client); kept waiting while the active controller is unknown or not ready (its own
    /// node, catching up); refused with NOT_CONTROLLER when forwarded here by mistake.
    fn change(&mut self, conn: ConnId, frame: &mut [u8], from_client: bool, now: Instant) -> Reply {
        if self.writer {
            return self.on_broker(conn, frame, now);
        }
        let leading = self.source.is_leader();
        if !leading && from_client {
            if let Some(peer) = self.reachable_controller() {
                return self.forward(conn, frame, peer, now);
            }
        }
        if leading || from_client {
            self.waiting
                .push((conn, frame.to_vec(), now + REQUEST_TIMEOUT));
            return Reply::Parked;
        }
        self.on_broker(conn, frame, now)
    }

    /// Changes that waited for an active controller go to it once there is one, or run here
    /// when this node is it, or when waiting is over (then the broker answers NOT_CONTROLLER
    /// and the client looks the controller up again).
    fn release_waiting(&mut self, now: Instant) {
        if self.waiting.is_empty() {
            return;
        }
        for (conn, mut frame, until) in std::mem::take(&mut self.waiting) {
            let reply = if self.writer || now >= until {
                self.on_broker(conn, &mut frame, now)
            } else if let Some(peer) = self.reachable_controller() {
                self.forward(conn, &frame, peer, now)
            } else {
                self.waiting.push((conn, frame, until));
                continue;
            };
            match reply {
                Reply::Now(bytes) => self.completions.push((conn, bytes)),
                Reply::Parked => {}
                Reply::None | Reply::Close => self.completions.push((conn, Vec::new())),
            }
        }
    }

    /// Relays a client's metadata change to the active controller's node.
    fn forward(&mut self, conn: ConnId, frame: &[u8], peer: PeerId, now: Instant) -> Reply {
        if frame.len() < 8 {
            return Reply::Close;
        }
        let key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let client_correlation = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let correlation = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1).max(1);
        let bytes = with_correlation(frame, 4, correlation);
        self.inflight.insert(
            correlation,
            Inflight {
                to: Target::Peer(peer),
                purpose: Purpose::Forward {
                    conn: Some(conn),
                    correlation: client_correlation,
                    frame: frame.to_vec(),
                },
                key,
                version,
                sent: now,
            },
        );
        self.outbound.push(ToPeer::Frame(peer, bytes));
        Reply::Parked
    }

    /// AllocateProducerIds from another node's broker: a block reserved by the writer.
    fn allocate_producer_ids(&mut self, conn: ConnId, frame: &mut [u8], now: Instant) -> Reply {
        let Ok((hdr, body)) = RequestHeader::parse(frame) else {
            return Reply::Close;
        };
        let Ok(req) = AllocateProducerIdsRequest::decode(&mut Reader::new(body), hdr.api_version)
        else {
            log::warn!(
                "node {}: connection {conn}: malformed AllocateProducerIds",
                self.node
            );
            return Reply::Close;
        };
        let mut resp = AllocateProducerIdsResponse {
            throttle_time_ms: 0,
            error_code: error::NONE,
            producer_id_start: -1,
            producer_id_len: 0,
        };
        if !self.writer {
            resp.error_code = NOT_CONTROLLER;
        } else {
            let now_ms = self.broker.now_ms(now);
            match self.broker.metadata_mut().allocate_producer_ids_for(
                req.broker_id,
                req.broker_epoch,
                PRODUCER_ID_BLOCK as i64,
                now_ms,
            ) {
                Ok(first) => {
                    resp.producer_id_start = first;
                    resp.producer_id_len = PRODUCER_ID_BLOCK;
                }
                Err(e) => resp.error_code = e.error_code(),
            }
        }
        let v = hdr.api_version;
        let bytes = frame_response(&hdr, |w| resp.encode(w, v), 64);
        let (index, failed) = self.propose_changes(now);
        if failed {
            return Reply::Close;
        }
        match index {
            Some(i) => {
                self.held.push((i, conn, bytes));
                Reply::Parked
            }
            None => Reply::Now(bytes),
        }
    }

    /// A broker-only node keeps one metadata fetch outstanding, to the active controller when
    /// it is known, else to each voter in turn.
    fn fetch_metadata(&mut self, now: Instant) {
        let Source::Observer(o) = &mut self.source else {
            return;
        };
        if now < self.next_fetch
            || self
                .inflight
                .values()
                .any(|f| matches!(f.purpose, Purpose::MetadataFetch))
        {
            return;
        }
        let links_up = &self.links_up;
        let Some(target) = o.target(|v| links_up.contains(&(FETCH_LINK + v))) else {
            return;
        };
        let offset = o.next_offset();
        let peer = FETCH_LINK + target;
        let correlation = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1).max(1);
        let cluster_id = self.broker.cluster_id().to_string();
        let node = self.node;
        let frame = request_frame_as(&cluster_id, METADATA_FETCH, 0, correlation, |w| {
            w.i32(node);
            w.i64(offset);
        });
        self.inflight.insert(
            correlation,
            Inflight {
                to: Target::Broker(peer),
                purpose: Purpose::MetadataFetch,
                key: METADATA_FETCH,
                version: 0,
                sent: now,
            },
        );
        self.outbound.push(ToPeer::Frame(peer, frame));
    }

    /// Registration, heartbeats and wishes, each turn.
    fn talk_to_controller(&mut self, now: Instant) {
        let expired: Vec<i32> = self
            .inflight
            .iter()
            .filter(|(_, f)| now.saturating_duration_since(f.sent) >= REQUEST_TIMEOUT)
            .map(|(c, _)| *c)
            .collect();
        // Requests to a node that is no longer the active controller are sent again.
        let leader = self.remote_controller();
        let rerouted: Vec<i32> = self
            .inflight
            .iter()
            .filter(|(_, f)| matches!(f.to, Target::Peer(p) if Some(p) != leader))
            .filter(|(_, f)| !matches!(f.purpose, Purpose::Markers { .. }))
            .map(|(c, _)| *c)
            .collect();
        for c in expired.into_iter().chain(rerouted) {
            self.on_failure(c);
        }
        let busy = |me: &Self, p: fn(&Purpose) -> bool| me.inflight.values().any(|f| p(&f.purpose));
        if !self.serves_clients {
            // A controller-only node: nothing to register.
        } else if self.broker_epoch < 0 {
            if now >= self.next_register && !busy(self, |p| matches!(p, Purpose::Register)) {
                self.register(now);
            }
        } else if now >= self.next_heartbeat && !busy(self, |p| matches!(p, Purpose::Heartbeat)) {
            let req = crate::protocol::messages::broker_heartbeat_request::BrokerHeartbeatRequest {
                broker_id: self.node,
                broker_epoch: self.broker_epoch,
                current_metadata_offset: self.source.applied_offset(),
                want_fence: false,
                want_shut_down: self.stopping.is_some(),
                offline_log_dirs: Vec::new(),
            };
            let v = broker_heartbeat_request::MAX_VERSION;
            if self.send(
                BROKER_HEARTBEAT,
                v,
                Purpose::Heartbeat,
                |w| req.encode(w, v),
                now,
            ) {
                // In controlled shutdown, ask again soon: each answer may be the one that
                // lets this broker stop.
                self.next_heartbeat = now
                    + if self.stopping.is_some() {
                        self.heartbeat_interval.min(SHUTDOWN_HEARTBEAT)
                    } else {
                        self.heartbeat_interval
                    };
            }
        }
        let mut wishes = match self.broker.cluster_view_mut() {
            Some(c) => std::mem::take(&mut c.wishes),
            None => Vec::new(),
        };
        // Producer ids fetched ahead, once registered, so the first producers do not wait.
        if self.serves_clients
            && self.broker_epoch >= 0
            && !self.writer
            && self.broker.wants_producer_ids()
            && !wishes.contains(&Wish::ProducerIds)
        {
            wishes.push(Wish::ProducerIds);
        }
        for wish in wishes {
            // The writer creates topics and producer ids itself: asking is for the others.
            if self.writer && !matches!(wish, Wish::Markers { .. }) {
                continue;
            }
            self.ask(wish, now);
        }
    }

    fn register(&mut self, now: Instant) {
        let config = &self.broker.config();
        let host = config.advertised_host.clone();
        let listener = config.listener_name.clone();
        let port = config.advertised_port;
        let cluster_id = self.broker.cluster_id().to_string();
        let directory = *self.broker.metadata().directory_id();
        let req = broker_registration_request::BrokerRegistrationRequest {
            broker_id: self.node,
            cluster_id: &cluster_id,
            incarnation_id: self.incarnation,
            listeners: vec![broker_registration_request::Listener {
                name: &listener,
                host: &host,
                port,
                security_protocol: 0,
            }],
            features: vec![broker_registration_request::Feature {
                name: "metadata.version",
                min_supported_version: 7,
                max_supported_version: 21,
            }],
            rack: None,
            is_migrating_zk_broker: false,
            log_dirs: vec![directory],
            previous_broker_epoch: -1,
        };
        let v = broker_registration_request::MAX_VERSION;
        if !self.send(
            BROKER_REGISTRATION,
            v,
            Purpose::Register,
            |w| req.encode(w, v),
            now,
        ) {
            self.next_register = now + REGISTER_BACKOFF;
        }
    }

    /// An answer to one of this node's own requests, decided on this node (a whole frame; an
    /// empty one: the request failed).
    fn local_answer(&mut self, conn: ConnId, bytes: &[u8], now: Instant) {
        let correlation = (conn - LOCAL_BASE) as i32;
        if bytes.len() >= 4 {
            self.on_response(correlation, &bytes[4..], now);
        } else {
            self.on_failure(correlation);
        }
    }

    /// ISR changes the broker's leaders want, in one AlterPartition to the active controller.
    fn alter_partitions(&mut self, now: Instant) {
        use crate::protocol::messages::alter_partition_request::*;
        let wanted = self.broker.take_alter_partitions();
        if wanted.is_empty() {
            return;
        }
        let mut topics: Vec<TopicData> = Vec::new();
        for (id, _, partition, req) in &wanted {
            let p = PartitionData {
                partition_index: *partition,
                leader_epoch: req.leader_epoch,
                new_isr: req.isr_ids(),
                new_isr_with_epochs: req
                    .new_isr
                    .iter()
                    .map(|m| BrokerState {
                        broker_id: m.broker_id,
                        broker_epoch: m.broker_epoch,
                    })
                    .collect(),
                leader_recovery_state: req.leader_recovering as i8,
                partition_epoch: req.partition_epoch,
            };
            match topics.iter_mut().find(|t| t.topic_id == *id) {
                Some(t) => t.partitions.push(p),
                None => topics.push(TopicData {
                    topic_id: *id,
                    partitions: vec![p],
                }),
            }
        }
        let req = AlterPartitionRequest {
            broker_id: self.node,
            broker_epoch: self.broker_epoch,
            topics,
        };
        let v = MAX_VERSION;
        let sent: Vec<_> = wanted.into_iter().map(|(_, t, p, r)| (t, p, r)).collect();
        let purpose = Purpose::AlterPartition(sent.clone());
        if !self.send(apis::ALTER_PARTITION, v, purpose, |w| req.encode(w, v), now) {
            self.failed(Purpose::AlterPartition(sent));
        }
    }

    /// The writer's leader elections: whenever the brokers' states changed (a fence, an
    /// unfence, a registration), partitions whose leader or ISR members are gone change.
    fn elect(&mut self, now: Instant) {
        if !self.writer {
            self.seen_brokers.clear();
            return;
        }
        let states: Vec<(i32, i64, bool)> = self
            .broker
            .image()
            .brokers()
            .values()
            .map(|b| (b.id, b.epoch, !b.fenced && !b.in_controlled_shutdown))
            .collect();
        if states == self.seen_brokers {
            return;
        }
        self.seen_brokers = states;
        if self.broker.elect_after_broker_changes(now) > 0 {
            let _ = self.propose_changes(now);
        }
    }

    /// Followers' fetches: a link to each leader followed here, and one Fetch in flight per
    /// leader whose link is up (sent again as soon as its answer is applied).
    fn replicate(&mut self, now: Instant) {
        if !self.broker.follows_any() {
            return;
        }
        for leader in self.broker.followed_leaders() {
            let Some(addr) = self.broker.broker_address(leader) else {
                continue;
            };
            let addr = format!("{}:{}", addr.host, addr.port);
            if self.replica_links.get(&leader) != Some(&addr) {
                self.replica_links.insert(leader, addr.clone());
                self.outbound
                    .push(ToPeer::Address(REPLICA_LINK + leader, addr));
            }
        }
        let up = &self.links_up;
        let requests = self
            .broker
            .replica_fetch_requests(now, |leader| up.contains(&(REPLICA_LINK + leader)));
        let v = crate::broker::REPLICA_FETCH_VERSION;
        for (leader, body) in requests {
            let correlation = self.next_correlation;
            self.next_correlation = self.next_correlation.wrapping_add(1).max(1);
            let frame = request_frame(apis::FETCH, v, correlation, |w| w.bytes(&body));
            let to = Target::Broker(REPLICA_LINK + leader);
            self.inflight.insert(
                correlation,
                Inflight {
                    to,
                    purpose: Purpose::ReplicaFetch { leader },
                    key: apis::FETCH,
                    version: v,
                    sent: now,
                },
            );
            self.outbound
                .push(ToPeer::Frame(REPLICA_LINK + leader, frame));
        }
    }

    fn ask(&mut self, wish: Wish, now: Instant) {
        match wish {
            Wish::Markers {
                broker,
                producer_id,
                producer_epoch,
                commit,
                partitions,
            } => {
                use crate::protocol::messages::write_txn_markers_request::*;
                let busy = self.inflight.values().any(|f| {
                    matches!(f.purpose, Purpose::Markers { broker: b, producer_id: p, producer_epoch: e }
                        if b == broker && p == producer_id && e == producer_epoch)
                });
                let Some(addr) = self.broker.broker_address(broker) else {
                    return; // not registered now: retried with the transaction
                };
                if busy {
                    return;
                }
                let addr = format!("{}:{}", addr.host, addr.port);
                let peer = BROKER_LINK + broker;
                if self.broker_links.get(&broker) != Some(&addr) {
                    self.broker_links.insert(broker, addr.clone());
                    self.outbound.push(ToPeer::Address(peer, addr));
                }
                let mut topics: Vec<WritableTxnMarkerTopic<'_>> = Vec::new();
                for (t, p) in &partitions {
                    match topics.iter_mut().find(|x| x.name == t) {
                        Some(x) => x.partition_indexes.push(*p),
                        None => topics.push(WritableTxnMarkerTopic {
                            name: t,
                            partition_indexes: vec![*p],
                        }),
                    }
                }
                let req = WriteTxnMarkersRequest {
                    markers: vec![WritableTxnMarker {
                        producer_id,
                        producer_epoch,
                        transaction_result: commit,
                        topics,
                        coordinator_epoch: 0,
                    }],
                };
                let v = crate::protocol::messages::write_txn_markers_request::MAX_VERSION;
                let correlation = self.next_correlation;
                self.next_correlation = self.next_correlation.wrapping_add(1).max(1);
                let frame = request_frame(WRITE_TXN_MARKERS, v, correlation, |w| req.encode(w, v));
                self.inflight.insert(
                    correlation,
                    Inflight {
                        to: Target::Broker(peer),
                        purpose: Purpose::Markers {
                            broker,
                            producer_id,
                            producer_epoch,
                        },
                        key: WRITE_TXN_MARKERS,
                        version: v,
                        sent: now,
                    },
                );
                self.outbound.push(ToPeer::Frame(peer, frame));
            }
            Wish::ProducerIds => {
                if self
                    .inflight
                    .values()
                    .any(|f| matches!(f.purpose, Purpose::ProducerIds))
                {
                    return;
                }
                let req = AllocateProducerIdsRequest {
                    broker_id: self.node,
                    broker_epoch: self.broker_epoch,
                };
                let v = allocate_producer_ids_request::MAX_VERSION;
                self.send(
                    ALLOCATE_PRODUCER_IDS,
                    v,
                    Purpose::ProducerIds,
                    |w| req.encode(w, v),
                    now,
                );
            }
            Wish::CreateTopic {
                name,
                partitions,
                replication_factor,
                configs,
            } => {
                use crate::protocol::messages::create_topics_request::*;
                if self
                    .inflight
                    .values()
                    .any(|f| matches!(&f.purpose, Purpose::CreateTopic(n) if *n == name))
                {
                    return;
                }
                let req = CreateTopicsRequest {
                    topics: vec![CreatableTopic {
                        name: &name,
                        num_partitions: partitions,
                        replication_factor,
                        assignments: Vec::new(),
                        configs: configs
                            .iter()
                            .map(|(k, v)| CreatableTopicConfig {
                                name: k,
                                value: Some(v),
                            })
                            .collect(),
                    }],
                    timeout_ms: 30_000,
                    validate_only: false,
                };
                let v = create_topics_request::MAX_VERSION;
                let purpose = Purpose::CreateTopic(name.clone());
                self.send(apis::CREATE_TOPICS, v, purpose, |w| req.encode(w, v), now);
            }
        }
    }
}

impl Service for ClusterNode {
    fn handle(&mut self, conn: ConnId, frame: &mut [u8], now: Instant) -> Reply {
        if frame.len() < 4 {
            return Reply::Close;
        }
        let key = i16::from_be_bytes([frame[0], frame[1]]);
        if self.controller_conns.contains(&conn) {
            return match key {
                ALLOCATE_PRODUCER_IDS => self.allocate_producer_ids(conn, frame, now),
                k if changes_metadata(k) || k == apis::ALTER_PARTITION => {
                    self.change(conn, frame, false, now)
                }
                _ => self.source.handle(conn, frame, now),
            };
        }
        match key {
            // The quorum is the controller's to describe (a broker-only node forwards).
            apis::DESCRIBE_QUORUM if matches!(self.source, Source::Observer(_)) => {
                self.change(conn, frame, true, now)
            }
            apis::DESCRIBE_QUORUM => self.source.handle(conn, frame, now),
            RAFT_MESSAGE | BROKER_REGISTRATION | BROKER_HEARTBEAT | ALLOCATE_PRODUCER_IDS => {
                log::warn!(
                    "node {}: connection {conn}: api key {key} belongs on the controller \
                     listener; closing",
                    self.node
                );
                Reply::Close
            }
            k if changes_metadata(k) => self.change(conn, frame, true, now),
            _ => self.on_broker(conn, frame, now),
        }
    }

    fn tick(&mut self, now: Instant) {
        self.source.tick(now);
        self.fetch_metadata(now);
        self.follow(now);
        self.broker.tick(now);
        let _ = self.propose_changes(now);
        self.talk_to_controller(now);
        self.release_waiting(now);
        self.release_held();
        self.replicate(now);
        self.alter_partitions(now);
        self.elect(now);
        if self.writer && now >= self.next_rebalance {
            let every = self
                .broker
                .config()
                .leader_imbalance_check_interval_seconds
                .max(1);
            self.next_rebalance = now + Duration::from_secs(every as u64);
            if self.broker.rebalance_leaders(now) > 0 {
                let _ = self.propose_changes(now);
            }
        }
    }

    fn flush(&mut self, now: Instant) {
        self.broker.flush(now);
        self.source.flush(now);
    }

    fn take_completions(&mut self, out: &mut Vec<(ConnId, Vec<u8>)>) {
        let mut done = Vec::new();
        self.broker.take_completions(&mut done);
        for (conn, bytes) in done {
            match self.holding.remove(&conn) {
                Some(i) if i > self.source.applied() => self.held.push((i, conn, bytes)),
                _ => out.push((conn, bytes)),
            }
        }
        let mut done = Vec::new();
        self.source.take_completions(&mut done);
        let now = Instant::now();
        for (conn, bytes) in done {
            if conn >= LOCAL_BASE {
                self.local_answer(conn, &bytes, now);
            } else {
                out.push((conn, bytes));
            }
        }
        self.release_held();
        // Answers to this node's own requests decided by its broker (AlterPartition).
        let mut i = 0;
        while i < self.completions.len() {
            if self.completions[i].0 >= LOCAL_BASE {
                let (conn, bytes) = self.completions.swap_remove(i);
                self.local_answer(conn, &bytes, now);
            } else {
                i += 1;
            }
        }
        out.append(&mut self.completions);
    }

    fn next_deadline(&self) -> Option<Instant> {
        let mut d = self.source.next_deadline();
        for other in [
            self.broker.next_deadline(),
            self.serves_clients.then_some(if self.broker_epoch < 0 {
                self.next_register
            } else {
                self.next_heartbeat
            }),
        ]
        .into_iter()
        .flatten()
        {
            d = Some(d.map_or(other, |d| d.min(other)));
        }
        d
    }

    fn connection_opened_on(&mut self, conn: ConnId, peer: std::net::SocketAddr, listener: usize) {
        if listener == self.controller_listener {
            self.controller_conns.insert(conn);
        } else {
            self.broker.connection_opened(conn, peer);
        }
    }

    fn connection_closed(&mut self, conn: ConnId) {
        self.controller_conns.remove(&conn);
        self.broker.connection_closed(conn);
        self.source.connection_closed(conn);
        self.holding.remove(&conn);
        self.held.retain(|(_, c, _)| *c != conn);
        self.waiting.retain(|(c, _, _)| *c != conn);
        self.completions.retain(|(c, _)| *c != conn);
        for f in self.inflight.values_mut() {
            if let Purpose::Forward { conn: c, .. } = &mut f.purpose {
                if *c == Some(conn) {
                    *c = None;
                }
            }
        }
    }

    /// Kafka's controlled shutdown: the broker asks the controller (heartbeats that want to
    /// shut down) to move its leaderships and ISR memberships to other brokers, and goes on
    /// serving until told it may stop, so that clients and followers move to the new leaders
    /// without waiting for a session to expire. A broker that is not registered or is fenced
    /// leads nothing and stops at once; one that gets no answer within a session stops anyway.
    fn ready_to_stop(&mut self, now: Instant) -> bool {
        // Fenced in this node's image: it leads nothing (the controller's answer to a fenced
        // broker would be the same).
        let active = self
            .broker
            .image()
            .brokers()
            .get(&self.node)
            .is_some_and(|b| b.epoch == self.broker_epoch && !b.fenced);
        if !self.serves_clients || !active || self.shutdown_granted {
            return true;
        }
        let Some(deadline) = self.stopping else {
            log::info!("node {}: controlled shutdown", self.node);
            self.stopping = Some(now + self.session_timeout);
            self.next_heartbeat = now;
            return false;
        };
        if now >= deadline {
            log::warn!(
                "node {}: controlled shutdown not granted within {} ms; stopping anyway",
                self.node,
                self.session_timeout.as_millis()
            );
            return true;
        }
        false
    }

    fn shutdown(&mut self) {
        // Not let go by a controlled shutdown: one message asks the active controller to fence
        // this broker at once (clients stop coming) and to let its next start register.
        if self.broker_epoch >= 0 && !self.shutdown_granted {
            if let Some(peer) = self.remote_controller() {
                let req =
                    crate::protocol::messages::broker_heartbeat_request::BrokerHeartbeatRequest {
                        broker_id: self.node,
                        broker_epoch: self.broker_epoch,
                        current_metadata_offset: self.source.applied_offset(),
                        want_fence: true,
                        want_shut_down: true,
                        offline_log_dirs: Vec::new(),
                    };
                let v = broker_heartbeat_request::MAX_VERSION;
                let frame = request_frame(BROKER_HEARTBEAT, v, 0, |w| req.encode(w, v));
                self.outbound.push(ToPeer::Frame(peer, frame));
            }
        }
        self.broker.shutdown();
        self.source.shutdown();
    }

    fn take_outbound(&mut self, out: &mut Vec<ToPeer>) {
        if !self.announced {
            self.announced = true;
            let observer = matches!(self.source, Source::Observer(_));
            for (id, addr) in &self.voters {
                out.push(ToPeer::Address(REQUEST_LINK + id, addr.clone()));
                if observer {
                    out.push(ToPeer::Address(FETCH_LINK + id, addr.clone()));
                }
            }
        }
        self.source.take_outbound(out);
        out.append(&mut self.outbound);
    }

    fn peer_frame(&mut self, peer: PeerId, frame: &mut [u8], now: Instant) {
        if frame.len() < 4 || peer < REQUEST_LINK {
            return;
        }
        let correlation = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        self.on_response(correlation, frame, now);
    }

    fn peer_link(&mut self, peer: PeerId, up: bool) {
        if peer < REQUEST_LINK {
            return self.source.peer_link(peer, up);
        }
        if up {
            self.links_up.insert(peer);
            if peer >= REPLICA_LINK {
                self.replicate(Instant::now());
            }
        } else {
            self.links_up.remove(&peer);
            let lost: Vec<i32> = self
                .inflight
                .iter()
                .filter(|(_, f)| f.to == Target::Peer(peer) || f.to == Target::Broker(peer))
                .map(|(c, _)| *c)
                .collect();
            for c in lost {
                self.on_failure(c);
            }
        }
    }
}
