//! A voter of the KRaft metadata quorum (the controller of a combined or controller-only node;
//! `crate::cluster::node` puts it beside its broker).
//!
//! It runs the Raft quorum (`crate::raft`) on its `__cluster_metadata-0` log ([`DiskLog`]) inside
//! the one loop: Raft messages to the other voters leave on the reactor's outbound links (one
//! frame each, under a private API key, carrying the cluster id), and arrive as frames on this
//! node's controller listener. The loop drives it: `tick` ticks the quorum and collects what it
//! has to say, `flush` fsyncs the log before the messages that promise what it holds go out.
//!
//! It answers ApiVersions and DescribeQuorum (voters, leader, epoch, high watermark, each
//! voter's log end offset and lag: what `kafka-metadata-quorum.sh --bootstrap-controller`
//! reads), serves the committed metadata to broker-only nodes (`METADATA_FETCH`), and, on the
//! active controller, BrokerRegistration and BrokerHeartbeat: a broker's registration is a
//! RegisterBrokerRecord committed by the quorum (its broker epoch is the record's offset,
//! answered once committed), its first heartbeat once caught up unfences it, and a broker not
//! heard from for `broker.session.timeout.ms` is fenced. Every voter applies the committed
//! records to its own metadata image and publishes them to its node's broker; the changes
//! clients ask for are decided by the node's broker when this voter is the active controller
//! and proposed through [`Controller::propose_records`].

use std::time::Instant;

use super::committed::{encode_snapshot, snapshot_records, Feed, TxnBracket};
use crate::api::admin::quorum::{respond, QuorumView};
use crate::broker::Clock;
use crate::config::Config;
use crate::log::LogConfig;
use crate::metadata::load_meta_properties;
use crate::metadata::records::MetadataRecord;
use crate::metadata::{BrokerInfo, MetadataImage};
use crate::protocol::apis::CONTROLLER_APIS;
use crate::protocol::error;
use crate::protocol::header::frame_response;
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::api_versions_request::ApiVersionsRequest;
use crate::protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};
use crate::protocol::messages::broker_heartbeat_request::BrokerHeartbeatRequest;
use crate::protocol::messages::broker_heartbeat_response::BrokerHeartbeatResponse;
use crate::protocol::messages::broker_registration_request::BrokerRegistrationRequest;
use crate::protocol::messages::broker_registration_response::BrokerRegistrationResponse;
use crate::protocol::messages::describe_quorum_response::ReplicaState;
use crate::protocol::wire::{DResult, Reader, Writer};
use crate::raft::{decode_message, DiskLog, Quorum, QuorumConfig, RaftLog};
use crate::reactor::{ConnId, PeerId, Reply, Service, ToPeer};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// The private API key of a Raft message frame (never a Kafka API; refused on client listeners).
pub const RAFT_MESSAGE: i16 = 32_000;
/// The private API key with which a broker-only node reads the committed metadata (the
/// observer's fetch; see [`Controller::metadata_fetch`]).
pub const METADATA_FETCH: i16 = 32_001;
/// Bytes of metadata batches per fetch answer at most.
const FETCH_MAX_BYTES: usize = 1 << 20;
/// How long a fetch with nothing new to read waits for a commit.
const FETCH_MAX_WAIT: Duration = Duration::from_millis(500);
const API_VERSIONS: i16 = 18;
const DESCRIBE_QUORUM: i16 = 55;
const BROKER_REGISTRATION: i16 = 62;
const BROKER_HEARTBEAT: i16 = 63;
const NOT_CONTROLLER: i16 = 41;
const STALE_BROKER_EPOCH: i16 = 77;
const DUPLICATE_BROKER_REGISTRATION: i16 = 101;
const BROKER_ID_NOT_REGISTERED: i16 = 102;
const INCONSISTENT_CLUSTER_ID: i16 = 104;
const METADATA_TOPIC: &str = "__cluster_metadata";

/// Raft node ids must be positive; Kafka node ids start at 0.
fn raft_id(node: i32) -> u64 {
    node as u64 + 1
}

fn node_id(raft: u64) -> i32 {
    raft as i32 - 1
}

/// Why a controller could not start.
#[derive(Debug)]
pub struct ControllerError(pub String);

impl std::fmt::Display for ControllerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A cluster id every voter derives alike from `controller.quorum.voters`, for dirs formatted at
/// first start without a configured id (an operator can still fix one with `format -t`). Kafka's
/// form: a UUID in base64url, 22 characters.
pub fn cluster_id_for_voters(config: &Config) -> String {
    let mut voters: Vec<String> = config
        .quorum
        .voters
        .iter()
        .map(|v| format!("{}@{}:{}", v.id, v.host, v.port))
        .collect();
    voters.sort();
    let text = voters.join(",");
    // Two FNV-1a 64-bit hashes with different offsets: spread, not secrecy.
    let fnv = |seed: u64| {
        text.bytes()
            .fold(seed, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
    };
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&fnv(0xcbf2_9ce4_8422_2325).to_be_bytes());
    id[8..].copy_from_slice(&fnv(0x8422_2325_cbf2_9ce4).to_be_bytes());
    id[6] = (id[6] & 0x0f) | 0x40; // a version-4 shape, as Kafka's ids have
    id[8] = (id[8] & 0x3f) | 0x80;
    crate::metadata::uuid_to_string(&id)
}

pub struct Controller {
    node: i32,
    cluster_id: String,
    directory_id: [u8; 16],
    quorum: Quorum<DiskLog>,
    /// The other voters: (node id, host:port).
    peers: Vec<(i32, String)>,
    announced: bool,
    /// Frames for peers, collected once per turn.
    outbound: Vec<ToPeer>,
    /// Messages that may leave only after the log is fsynced (at `flush`).
    after_sync: Vec<ToPeer>,
    must_sync: bool,
    clock: Clock,
    last_leader: Option<u64>,
    failed: bool,
    /// The metadata as the committed records built it (every voter has its own).
    image: MetadataImage,
    /// Each registered broker's incarnation (from its RegisterBrokerRecord).
    incarnations: HashMap<i32, [u8; 16]>,
    /// On the active controller: when each broker was last heard from (or, for a broker not
    /// heard from yet, when this controller became active: its session starts then).
    heartbeats: HashMap<i32, Instant>,
    /// When this controller itself last heard from each broker: a new incarnation of a broker
    /// is refused as a duplicate only while the old one is really alive.
    heard: HashMap<i32, Instant>,
    /// Brokers whose fence, unfence or controlled-shutdown record is proposed and not yet
    /// applied.
    changing: HashSet<i32>,
    /// On the active controller: the metadata offset each broker reported in its last
    /// heartbeat.
    reported: HashMap<i32, i64>,
    /// Brokers in controlled shutdown that lead nothing any more: the metadata offset every
    /// active broker must have reached (so that all know the new leaders) before it may stop.
    shutdown_offsets: HashMap<i32, i64>,
    /// Registrations answered once their record is committed: (index, conn, response).
    pending: Vec<(u64, ConnId, Vec<u8>)>,
    completions: Vec<(ConnId, Vec<u8>)>,
    session_timeout: Duration,
    was_leader: bool,
    /// Records of a metadata transaction being applied (KIP-868): applied together at its end.
    txn: TxnBracket,
    /// The last committed index applied to the image.
    applied: u64,
    /// Record bytes applied since the last snapshot, and the threshold for the next one.
    since_snapshot: u64,
    snapshot_bytes: u64,
    /// On a combined node: what the image went through, for the node's broker to follow.
    published: Option<Vec<Published>>,
    /// The first index of this node's current term as leader (its no-op entry).
    term_start: u64,
    /// The index of the entry being applied.
    applying: u64,
    /// Metadata fetches waiting for a commit: (conn, correlation id, offset, give-up time).
    fetchers: Vec<(ConnId, i32, i64, Instant)>,
}

/// A change of a controller's image, as a combined node's broker follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// The image was replaced by a snapshot: start over from `Controller::image` as it is
    /// once the list is taken (which includes every record of the list).
    Reset,
    /// One committed record, applied, with the Raft index that applied it (the index of its
    /// metadata transaction's end, for a record inside one).
    Record(u64, Vec<u8>),
}

impl Controller {
    pub fn open(config: &Config, now: Instant) -> Result<Controller, ControllerError> {
        let bad = |e: String| ControllerError(e);
        let wanted = config
            .cluster_id
            .clone()
            .unwrap_or_else(|| cluster_id_for_voters(config));
        std::fs::create_dir_all(&config.log_dir)
            .map_err(|e| bad(format!("{}: {e}", config.log_dir.display())))?;
        let (cluster_id, directory_id) =
            load_meta_properties(&config.log_dir, config.node_id, Some(&wanted))
                .map_err(|e| bad(e.to_string()))?;
        let log_dir = config.log_dir.join(format!("{METADATA_TOPIC}-0"));
        let clock = Clock::system(now);
        let log = DiskLog::open(&log_dir, LogConfig::default(), clock.ms(now))
            .map_err(|e| bad(format!("{}: {e}", log_dir.display())))?;
        let voters: Vec<u64> = config.quorum.voters.iter().map(|v| raft_id(v.id)).collect();
        let quorum = Quorum::new(QuorumConfig::new(raft_id(config.node_id), voters), log, now)
            .map_err(|e| bad(e.to_string()))?;
        let peers = config
            .quorum
            .voters
            .iter()
            .filter(|v| v.id != config.node_id)
            .map(|v| (v.id, format!("{}:{}", v.host, v.port)))
            .collect();
        log::info!(
            "controller {} of cluster {cluster_id}: quorum of {:?}, log at offset {}",
            config.node_id,
            config.quorum.voter_ids(),
            quorum.log().last_index()
        );
        Ok(Controller {
            node: config.node_id,
            cluster_id,
            directory_id,
            quorum,
            peers,
            announced: false,
            outbound: Vec::new(),
            after_sync: Vec::new(),
            must_sync: false,
            clock,
            last_leader: None,
            failed: false,
            image: MetadataImage::default(),
            incarnations: HashMap::new(),
            heartbeats: HashMap::new(),
            heard: HashMap::new(),
            changing: HashSet::new(),
            reported: HashMap::new(),
            shutdown_offsets: HashMap::new(),
            pending: Vec::new(),
            completions: Vec::new(),
            session_timeout: Duration::from_millis(config.broker_session_timeout_ms.max(1) as u64),
            was_leader: false,
            txn: TxnBracket::default(),
            applied: 0,
            since_snapshot: 0,
            snapshot_bytes: config.metadata_snapshot_bytes.max(1),
            published: None,
            term_start: 0,
            applying: 0,
            fetchers: Vec::new(),
        })
    }

    /// Keeps what the image goes through for `take_published` (a combined node's broker).
    pub fn publish(&mut self) {
        self.published.get_or_insert_with(Vec::new);
    }

    pub fn take_published(&mut self) -> Vec<Published> {
        self.published
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The metadata as committed records built it.
    pub fn image(&self) -> &MetadataImage {
        &self.image
    }

    pub fn is_leader(&self) -> bool {
        !self.failed && self.quorum.is_leader()
    }

    /// The active controller has applied everything committed before its term: its image
    /// is the whole truth and new changes may be decided on it (Kafka's controller waits
    /// for the same before it serves writes).
    pub fn ready_to_write(&self) -> bool {
        self.is_leader() && self.applied >= self.term_start && !self.txn.is_open()
    }

    /// The last index of the quorum's log.
    pub fn last_index(&self) -> u64 {
        self.quorum.state().last_index
    }

    /// The last Raft index applied to the image.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// The metadata offset a broker reports in its heartbeats (index `i` is offset `i - 1`).
    pub fn applied_offset(&self) -> i64 {
        self.applied as i64 - 1
    }

    /// Proposes records (already encoded) as one change: several are wrapped in a metadata
    /// transaction (KIP-868) so that they are applied together. Returns the last index.
    pub fn propose_records(&mut self, records: &[Vec<u8>]) -> Option<u64> {
        use crate::metadata::records::{
            begin_transaction_record::BeginTransactionRecord,
            end_transaction_record::EndTransactionRecord,
        };
        let wrap = records.len() > 1;
        if wrap {
            self.propose(&MetadataRecord::BeginTransaction(BeginTransactionRecord {
                name: None,
            }))?;
        }
        let mut last = None;
        for r in records {
            match self.quorum.propose(r.clone()) {
                Ok(i) => last = Some(i),
                Err(e) => {
                    log::warn!("controller {}: proposal refused: {e}", self.node);
                    return None;
                }
            }
        }
        if wrap {
            last = self.propose(&MetadataRecord::EndTransaction(EndTransactionRecord {}));
        }
        last
    }

    /// The quorum as DescribeQuorum reports it: (leader, epoch, high watermark).
    pub fn leader(&self) -> (Option<i32>, u64, u64) {
        let s = self.quorum.state();
        (s.leader.map(node_id), s.term, s.commit)
    }

    fn frame(&self, msg: Vec<u8>) -> Vec<u8> {
        let mut buf = Vec::with_capacity(msg.len() + 48);
        let mut w = Writer::new(&mut buf);
        let at = w.reserve_i32();
        w.i16(RAFT_MESSAGE);
        w.i16(0);
        w.i32(0);
        w.nullable_string(Some(&self.cluster_id));
        w.bytes(&msg);
        let size = (w.len() - 4) as i32;
        w.patch_i32(at, size);
        buf
    }

    /// Collects what the quorum has to say after this turn's steps and ticks.
    fn drive(&mut self) {
        if self.failed {
            return;
        }
        let out = match self.quorum.poll() {
            Ok(out) => out,
            Err(e) => {
                log::error!("controller {}: metadata quorum stopped: {e}", self.node);
                self.failed = true;
                return;
            }
        };
        for m in out.send_now {
            self.outbound
                .push(ToPeer::Frame(node_id(m.to), self.frame(m.bytes)));
        }
        for m in out.send_after_sync {
            self.after_sync
                .push(ToPeer::Frame(node_id(m.to), self.frame(m.bytes)));
        }
        self.must_sync |= out.must_sync;
        if let Some(snap) = &out.snapshot {
            // This node's own snapshot after a restart, or the leader's for a lagging voter.
            self.restore(&snap.data, snap.index);
        }
        for entry in &out.committed {
            if !entry.data.is_empty() {
                self.applying = entry.index;
                self.apply(&entry.data);
                self.since_snapshot += entry.data.len() as u64;
            }
            let applied = entry.index;
            self.applied = applied;
            let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
                .into_iter()
                .partition(|(index, _, _)| *index <= applied);
            self.pending = waiting;
            self.completions
                .extend(done.into_iter().map(|(_, conn, bytes)| (conn, bytes)));
        }
        self.maybe_snapshot();
        if self.quorum.is_leader() != self.was_leader {
            self.was_leader = !self.was_leader;
            if self.was_leader {
                // raft-rs appended this term's no-op entry on becoming leader.
                self.term_start = self.quorum.state().last_index;
            }
            // A new active controller gives every broker a full session from now.
            self.heartbeats.clear();
            self.heard.clear();
            if !self.was_leader {
                // Registrations that were waiting cannot be answered here any more.
                for (_, conn, _) in std::mem::take(&mut self.pending) {
                    self.completions.push((conn, Vec::new()));
                }
            }
        }
        let leader = self.quorum.state().leader;
        if out.leader_changed || leader != self.last_leader {
            self.last_leader = leader;
            let s = self.quorum.state();
            match leader {
                Some(l) => log::info!(
                    "controller {}: leader of epoch {} is {}",
                    self.node,
                    s.term,
                    node_id(l)
                ),
                None => log::info!("controller {}: no leader in epoch {}", self.node, s.term),
            }
        }
    }

    /// Once enough has been applied since the last one (and no metadata transaction is half
    /// applied), the image's records become a snapshot and the log before it is dropped.
    fn maybe_snapshot(&mut self) {
        if self.since_snapshot < self.snapshot_bytes || self.txn.is_open() || self.applied == 0 {
            return;
        }
        let records = self.image.to_records();
        let data = encode_snapshot(&records);
        match self.quorum.compact(self.applied, data) {
            Ok(()) => {
                log::info!(
                    "controller {}: metadata snapshot at index {} ({} records)",
                    self.node,
                    self.applied,
                    records.len()
                );
                self.since_snapshot = 0;
            }
            Err(e) => log::warn!("controller {}: metadata snapshot failed: {e}", self.node),
        }
    }

    /// Replaces the image by a snapshot's records.
    fn restore(&mut self, data: &[u8], index: u64) {
        if let Some(p) = self.published.as_mut() {
            p.push(Published::Reset);
        }
        self.image = MetadataImage::default();
        self.incarnations.clear();
        self.txn.clear();
        let mut count = 0;
        for rec in snapshot_records(data) {
            self.apply_now(rec);
            count += 1;
        }
        self.applied = index;
        log::info!(
            "controller {}: metadata image restored from the snapshot at {index} ({count} records)",
            self.node
        );
    }

    /// One committed metadata record, applied to this voter's image. Records between a
    /// BeginTransaction and its EndTransaction are applied together at the end (none if
    /// aborted), so a topic never appears without its partitions.
    fn apply(&mut self, data: &[u8]) {
        let rec = match MetadataRecord::decode(data) {
            Ok(rec) => rec,
            Err(e) => {
                log::warn!(
                    "controller {}: committed record not understood: {e}",
                    self.node
                );
                return;
            }
        };
        match self.txn.feed(&rec, data) {
            Feed::This => self.apply_record(&rec, data),
            Feed::Held(held) => {
                for bytes in held {
                    self.apply_now(&bytes);
                }
            }
            Feed::Nothing => {}
        }
    }

    /// A record kept as bytes (a transaction's, a snapshot's), decoded and applied.
    fn apply_now(&mut self, data: &[u8]) {
        match MetadataRecord::decode(data) {
            Ok(rec) => self.apply_record(&rec, data),
            Err(e) => log::warn!(
                "controller {}: committed record not understood: {e}",
                self.node
            ),
        }
    }

    fn apply_record(&mut self, rec: &MetadataRecord<'_>, data: &[u8]) {
        if let Some(p) = self.published.as_mut() {
            p.push(Published::Record(self.applying, data.to_vec()));
        }
        match rec {
            MetadataRecord::RegisterBroker(b) => {
                self.incarnations.insert(b.broker_id, b.incarnation_id);
                self.changing.remove(&b.broker_id);
                self.shutdown_offsets.remove(&b.broker_id);
            }
            MetadataRecord::BrokerRegistrationChange(c) => {
                self.changing.remove(&c.broker_id);
            }
            MetadataRecord::FenceBroker(f) => {
                self.changing.remove(&f.id);
            }
            MetadataRecord::UnfenceBroker(u) => {
                self.changing.remove(&u.id);
            }
            _ => {}
        }
        self.image.apply(rec);
    }

    /// Proposes one metadata record; returns its Raft index.
    fn propose(&mut self, rec: &MetadataRecord<'_>) -> Option<u64> {
        let mut data = Vec::new();
        rec.encode(&mut data);
        match self.quorum.propose(data) {
            Ok(index) => Some(index),
            Err(e) => {
                log::warn!("controller {}: proposal refused: {e}", self.node);
                None
            }
        }
    }

    fn broker_registration(
        &mut self,
        conn: ConnId,
        hdr: &RequestHeader<'_>,
        body: &[u8],
        now: Instant,
    ) -> DResult<Reply> {
        let v = hdr.api_version;
        let req = BrokerRegistrationRequest::decode(&mut Reader::new(body), v)?;
        let answer = |error_code: i16, broker_epoch: i64| {
            let resp = BrokerRegistrationResponse {
                throttle_time_ms: 0,
                error_code,
                broker_epoch,
            };
            frame_response(hdr, |w| resp.encode(w, v), 64)
        };
        if !self.quorum.is_leader() {
            return Ok(Reply::Now(answer(NOT_CONTROLLER, -1)));
        }
        if req.cluster_id != self.cluster_id {
            log::warn!(
                "controller {}: broker {} of cluster {} refused (ours: {})",
                self.node,
                req.broker_id,
                req.cluster_id,
                self.cluster_id
            );
            return Ok(Reply::Now(answer(INCONSISTENT_CLUSTER_ID, -1)));
        }
        // Another incarnation of this broker id still within its session: a second process
        // with the same node.id.
        let alive = self
            .heard
            .get(&req.broker_id)
            .is_some_and(|t| now.saturating_duration_since(*t) < self.session_timeout);
        if alive
            && self
                .incarnations
                .get(&req.broker_id)
                .is_some_and(|i| *i != req.incarnation_id)
        {
            return Ok(Reply::Now(answer(DUPLICATE_BROKER_REGISTRATION, -1)));
        }
        // The broker epoch is the offset the record will have (Kafka's rule).
        let epoch = self.quorum.state().last_index as i64;
        let rec = MetadataRecord::RegisterBroker(
            crate::metadata::records::register_broker_record::RegisterBrokerRecord {
                broker_id: req.broker_id,
                incarnation_id: req.incarnation_id,
                broker_epoch: epoch,
                end_points: req
                    .listeners
                    .iter()
                    .map(
                        |l| crate::metadata::records::register_broker_record::BrokerEndpoint {
                            name: l.name,
                            host: l.host,
                            port: l.port,
                            security_protocol: l.security_protocol,
                        },
                    )
                    .collect(),
                features: req
                    .features
                    .iter()
                    .map(
                        |f| crate::metadata::records::register_broker_record::BrokerFeature {
                            name: f.name,
                            min_supported_version: f.min_supported_version,
                            max_supported_version: f.max_supported_version,
                        },
                    )
                    .collect(),
                rack: req.rack,
                fenced: true,
                log_dirs: req.log_dirs.clone(),
                ..Default::default()
            },
        );
        let Some(index) = self.propose(&rec) else {
            return Ok(Reply::Now(answer(NOT_CONTROLLER, -1)));
        };
        if index as i64 - 1 != epoch {
            log::warn!(
                "controller {}: broker epoch {epoch} but record at {}",
                self.node,
                index - 1
            );
        }
        self.heartbeats.insert(req.broker_id, now);
        self.heard.insert(req.broker_id, now);
        self.pending.push((index, conn, answer(0, epoch)));
        Ok(Reply::Parked)
    }

    fn broker_heartbeat(
        &mut self,
        hdr: &RequestHeader<'_>,
        body: &[u8],
        now: Instant,
    ) -> DResult<Vec<u8>> {
        let v = hdr.api_version;
        let req = BrokerHeartbeatRequest::decode(&mut Reader::new(body), v)?;
        let mut resp = BrokerHeartbeatResponse {
            throttle_time_ms: 0,
            error_code: 0,
            is_caught_up: false,
            is_fenced: true,
            should_shut_down: false,
        };
        let known = self.image.brokers().get(&req.broker_id).cloned();
        if !self.quorum.is_leader() {
            resp.error_code = NOT_CONTROLLER;
        } else if let Some(b) = known {
            if b.epoch != req.broker_epoch {
                resp.error_code = STALE_BROKER_EPOCH;
            } else {
                self.heartbeats.insert(req.broker_id, now);
                self.reported
                    .insert(req.broker_id, req.current_metadata_offset);
                if req.want_shut_down {
                    // Shutting down: its next incarnation may register at once.
                    self.heard.remove(&req.broker_id);
                } else {
                    self.heard.insert(req.broker_id, now);
                }
                let caught_up = req.current_metadata_offset >= b.epoch;
                resp.is_caught_up = caught_up;
                resp.is_fenced = b.fenced;
                if req.want_shut_down {
                    resp.should_shut_down = self.shut_down(&b, req.want_fence);
                } else if b.fenced && caught_up && !req.want_fence {
                    if self.changing.insert(req.broker_id) {
                        self.propose_fencing(req.broker_id, b.epoch, false);
                    }
                } else if !b.fenced && req.want_fence && self.changing.insert(req.broker_id) {
                    self.propose_fencing(req.broker_id, b.epoch, true);
                }
            }
        } else {
            resp.error_code = BROKER_ID_NOT_REGISTERED;
        }
        Ok(frame_response(hdr, |w| resp.encode(w, v), 64))
    }

    /// The answer to a metadata fetch from `offset`: the committed batches from there (up to
    /// 1 MiB), or the latest snapshot when the log no longer starts at or before `offset`;
    /// `None` when there is nothing new yet (unless `now_or_never`: then an empty answer).
    ///
    /// Body: error i16, leader i32 (-1: unknown), committed end offset i64, kind i8 (0:
    /// batches, 1: snapshot), data (i32 length + bytes), snapshot end offset i64.
    fn fetch_answer(&self, correlation: i32, offset: i64, now_or_never: bool) -> Option<Vec<u8>> {
        let committed_end = self.quorum.state().commit as i64;
        let log = self.quorum.log();
        let (snapshot, snapshot_index) = log.latest_snapshot();
        let start = log.partition().log_start_offset();
        let mut data = Vec::new();
        let mut kind = 0i8;
        if snapshot_index > 0 && (offset < start || offset < 0) {
            kind = 1;
            data.extend_from_slice(snapshot);
        } else if offset < committed_end {
            let mut buf = Vec::new();
            if let Err(e) = log
                .partition()
                .read(offset, FETCH_MAX_BYTES, true, &mut buf)
            {
                log::warn!("controller {}: reading the metadata log: {e}", self.node);
                if !now_or_never {
                    return None;
                }
            }
            // Only what is committed: whole batches below the committed end.
            let mut keep = 0;
            for b in crate::records::batches(&buf) {
                let Ok((h, bytes)) = b else { break };
                if h.last_offset() >= committed_end {
                    break;
                }
                keep += bytes.len();
            }
            buf.truncate(keep);
            data = buf;
        }
        if data.is_empty() && kind == 0 && !now_or_never {
            return None;
        }
        let mut out = Vec::with_capacity(data.len() + 48);
        let mut w = Writer::new(&mut out);
        let at = w.reserve_i32();
        w.i32(correlation);
        w.i16(error::NONE);
        w.i32(self.quorum.state().leader.map_or(-1, node_id));
        w.i64(committed_end);
        w.i8(kind);
        w.i32(data.len() as i32);
        w.bytes(&data);
        w.i64(snapshot_index as i64);
        let size = (w.len() - 4) as i32;
        w.patch_i32(at, size);
        Some(out)
    }

    /// Parked metadata fetches answered: those that can read something new, and those whose
    /// wait is over.
    fn answer_fetchers(&mut self, now: Instant) {
        if self.fetchers.is_empty() {
            return;
        }
        for (conn, correlation, offset, until) in std::mem::take(&mut self.fetchers) {
            match self.fetch_answer(correlation, offset, now >= until) {
                Some(bytes) => self.completions.push((conn, bytes)),
                None => self.fetchers.push((conn, correlation, offset, until)),
            }
        }
    }

    /// A broker that asks to shut down (Kafka's `BrokerHeartbeatManager` states): a fenced
    /// one, one that asks to be fenced too, or one that leads nothing may stop at once (and is
    /// fenced); otherwise it enters controlled shutdown (recorded, so that the writer moves its
    /// leaderships and ISR memberships away) and may stop once it leads nothing and every
    /// active broker has caught up with the metadata that says so. Returns `should_shut_down`.
    fn shut_down(&mut self, b: &BrokerInfo, want_fence: bool) -> bool {
        let leads = self.leads_any(b.id);
        let now = if b.fenced || want_fence || (!leads && !b.in_controlled_shutdown) {
            true
        } else if !b.in_controlled_shutdown {
            if self.changing.insert(b.id) {
                self.propose_controlled_shutdown(b.id, b.epoch);
            }
            false
        } else if leads {
            false
        } else {
            let applied = self.applied_offset();
            let target = *self.shutdown_offsets.entry(b.id).or_insert(applied);
            let lowest = self
                .image
                .brokers()
                .values()
                .filter(|o| o.id != b.id && !o.fenced && !o.in_controlled_shutdown)
                .map(|o| self.reported.get(&o.id).copied().unwrap_or(-1))
                .min();
            lowest.is_none_or(|l| l >= target)
        };
        if now && !b.fenced && self.changing.insert(b.id) {
            log::info!("controller {}: broker {} may shut down", self.node, b.id);
            self.propose_fencing(b.id, b.epoch, true);
        }
        now
    }

    /// Whether any partition has `broker` as its leader.
    fn leads_any(&self, broker: i32) -> bool {
        self.image
            .topics()
            .any(|t| t.partitions.iter().any(|p| p.leader == broker))
    }

    fn propose_controlled_shutdown(&mut self, id: i32, epoch: i64) {
        use crate::metadata::records::BrokerRegistrationChangeRecord;
        let rec = MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
            broker_id: id,
            broker_epoch: epoch,
            in_controlled_shutdown: 1,
            ..Default::default()
        });
        if self.propose(&rec).is_none() {
            self.changing.remove(&id);
        } else {
            log::info!(
                "controller {}: broker {id} enters controlled shutdown",
                self.node
            );
        }
    }

    fn propose_fencing(&mut self, id: i32, epoch: i64, fence: bool) {
        use crate::metadata::records::{
            fence_broker_record::FenceBrokerRecord, unfence_broker_record::UnfenceBrokerRecord,
        };
        let rec = if fence {
            MetadataRecord::FenceBroker(FenceBrokerRecord { id, epoch })
        } else {
            MetadataRecord::UnfenceBroker(UnfenceBrokerRecord { id, epoch })
        };
        if self.propose(&rec).is_none() {
            self.changing.remove(&id);
        } else {
            log::info!(
                "controller {}: {} broker {id} (epoch {epoch})",
                self.node,
                if fence { "fencing" } else { "unfencing" }
            );
        }
    }

    /// On the active controller: brokers silent for a whole session are fenced.
    fn expire_sessions(&mut self, now: Instant) {
        if !self.quorum.is_leader() {
            return;
        }
        let timeout = self.session_timeout;
        let expired: Vec<(i32, i64)> = self
            .image
            .brokers()
            .values()
            .filter(|b| !b.fenced && !self.changing.contains(&b.id))
            .filter(|b| {
                let last = *self.heartbeats.entry(b.id).or_insert(now);
                now.saturating_duration_since(last) >= timeout
            })
            .map(|b| (b.id, b.epoch))
            .collect();
        for (id, epoch) in expired {
            log::info!("controller {}: broker {id} missed its session", self.node);
            self.changing.insert(id);
            self.propose_fencing(id, epoch, true);
        }
    }

    fn step(&mut self, body: &[u8]) {
        match decode_message(body) {
            Ok(msg) => {
                if let Err(e) = self.quorum.step(msg) {
                    log::debug!("controller {}: raft message refused: {e}", self.node);
                }
            }
            Err(e) => log::warn!("controller {}: undecodable raft message: {e}", self.node),
        }
    }

    fn api_versions(&self, hdr: &RequestHeader<'_>, body: &[u8]) -> DResult<Vec<u8>> {
        let v = hdr.api_version;
        ApiVersionsRequest::decode(&mut Reader::new(body), v)?;
        let resp = ApiVersionsResponse {
            error_code: error::NONE,
            api_keys: CONTROLLER_APIS
                .iter()
                .map(|a| ApiVersion {
                    api_key: a.key,
                    min_version: a.min,
                    max_version: a.max,
                })
                .collect(),
            ..Default::default()
        };
        Ok(frame_response(hdr, |w| resp.encode(w, v), 128))
    }

    fn describe_quorum(
        &self,
        hdr: &RequestHeader<'_>,
        body: &[u8],
        now: Instant,
    ) -> DResult<Vec<u8>> {
        let view = || {
            let now_ms = self.clock.ms(now);
            let s = self.quorum.state();
            let voters = match self.quorum.voter_progress() {
                // The leader knows every voter's log end offset.
                Some(p) => p
                    .iter()
                    .map(|vp| ReplicaState {
                        replica_id: node_id(vp.id),
                        replica_directory_id: if vp.id == raft_id(self.node) {
                            self.directory_id
                        } else {
                            [0; 16]
                        },
                        log_end_offset: vp.match_index as i64,
                        last_fetch_timestamp: if vp.recently_active { now_ms } else { -1 },
                        last_caught_up_timestamp: if vp.lag == 0 { now_ms } else { -1 },
                    })
                    .collect(),
                // Elsewhere, what this node knows: itself.
                None => vec![ReplicaState {
                    replica_id: self.node,
                    replica_directory_id: self.directory_id,
                    log_end_offset: s.last_index as i64,
                    last_fetch_timestamp: -1,
                    last_caught_up_timestamp: -1,
                }],
            };
            QuorumView {
                error: if s.leader.is_some() {
                    error::NONE
                } else {
                    error::LEADER_NOT_AVAILABLE
                },
                leader: s.leader.map_or(-1, node_id),
                epoch: s.term as i32,
                high_watermark: s.commit as i64,
                voters,
            }
        };
        respond(hdr, body, view, Vec::new())
    }
}

impl Service for Controller {
    fn handle(&mut self, conn: ConnId, frame: &mut [u8], now: Instant) -> Reply {
        let (hdr, body) = match RequestHeader::parse(frame) {
            Ok(x) => x,
            Err(e) => {
                log::warn!(
                    "controller {}: connection {conn}: bad header ({e})",
                    self.node
                );
                return Reply::Close;
            }
        };
        // A Raft message: the header's client id carries the sender's cluster id.
        if hdr.api_key == RAFT_MESSAGE {
            if hdr.client_id != Some(self.cluster_id.as_str()) {
                log::error!(
                    "controller {}: connection {conn} sends Raft messages of cluster {:?}, \
                     this quorum is cluster {}: refused (INCONSISTENT_CLUSTER_ID)",
                    self.node,
                    hdr.client_id,
                    self.cluster_id
                );
                return Reply::Close;
            }
            self.step(body);
            return Reply::None;
        }
        if hdr.api_key == METADATA_FETCH {
            if hdr.client_id != Some(self.cluster_id.as_str()) {
                log::error!(
                    "controller {}: connection {conn} fetches metadata of cluster {:?}, this \
                     quorum is cluster {}: refused (INCONSISTENT_CLUSTER_ID)",
                    self.node,
                    hdr.client_id,
                    self.cluster_id
                );
                return Reply::Close;
            }
            let mut r = Reader::new(body);
            let Ok((_broker, offset)) = r.i32().and_then(|b| Ok((b, r.i64()?))) else {
                return Reply::Close;
            };
            return match self.fetch_answer(hdr.correlation_id, offset, false) {
                Some(bytes) => Reply::Now(bytes),
                None => {
                    self.fetchers
                        .push((conn, hdr.correlation_id, offset, now + FETCH_MAX_WAIT));
                    Reply::Parked
                }
            };
        }
        if hdr.api_key == BROKER_REGISTRATION {
            return match self.broker_registration(conn, &hdr, body, now) {
                Ok(reply) => reply,
                Err(e) => {
                    log::warn!(
                        "controller {}: connection {conn}: malformed request ({e})",
                        self.node
                    );
                    Reply::Close
                }
            };
        }
        let out = match hdr.api_key {
            API_VERSIONS => self.api_versions(&hdr, body),
            DESCRIBE_QUORUM => self.describe_quorum(&hdr, body, now),
            BROKER_HEARTBEAT => self.broker_heartbeat(&hdr, body, now),
            key => {
                log::warn!(
                    "controller {}: connection {conn}: api key {key} is not served by a \
                     controller-only node; closing",
                    self.node
                );
                return Reply::Close;
            }
        };
        match out {
            Ok(bytes) => Reply::Now(bytes),
            Err(e) => {
                log::warn!(
                    "controller {}: connection {conn}: malformed request ({e})",
                    self.node
                );
                Reply::Close
            }
        }
    }

    fn tick(&mut self, now: Instant) {
        if !self.failed {
            self.quorum.tick(now);
            self.expire_sessions(now);
        }
        self.drive();
        self.answer_fetchers(now);
    }

    fn flush(&mut self, _now: Instant) {
        if std::mem::take(&mut self.must_sync) {
            if let Err(e) = self.quorum.log_mut().sync() {
                log::error!("controller {}: metadata log fsync failed: {e}", self.node);
                self.failed = true;
                self.after_sync.clear();
                return;
            }
        }
        self.outbound.append(&mut self.after_sync);
    }

    fn take_completions(&mut self, out: &mut Vec<(ConnId, Vec<u8>)>) {
        out.append(&mut self.completions);
    }

    fn next_deadline(&self) -> Option<Instant> {
        Some(self.quorum.next_tick())
    }

    fn connection_closed(&mut self, conn: ConnId) {
        self.fetchers.retain(|(c, _, _, _)| *c != conn);
        self.pending.retain(|(_, c, _)| *c != conn);
        self.completions.retain(|(c, _)| *c != conn);
    }

    fn shutdown(&mut self) {
        if let Err(e) = self.quorum.log_mut().sync() {
            log::error!(
                "controller {}: metadata log fsync at shutdown: {e}",
                self.node
            );
        }
    }

    fn take_outbound(&mut self, out: &mut Vec<ToPeer>) {
        if !self.announced {
            self.announced = true;
            for (id, addr) in &self.peers {
                out.push(ToPeer::Address(*id, addr.clone()));
            }
        }
        out.append(&mut self.outbound);
    }

    fn peer_link(&mut self, peer: PeerId, up: bool) {
        if !up {
            self.quorum.report_unreachable(raft_id(peer));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TempDir;

    fn controller(dir: &std::path::Path) -> Controller {
        let text = format!(
            "process.roles=controller\nnode.id=1\ncontroller.quorum.voters=1@127.0.0.1:1,2@127.0.0.1:2,3@127.0.0.1:3\n\
             listeners=CONTROLLER://127.0.0.1:1\ncontroller.listener.names=CONTROLLER\nlog.dirs={}\n",
            dir.display()
        );
        let (config, _) = Config::from_properties_str(&text).unwrap();
        Controller::open(&config, Instant::now()).unwrap()
    }

    #[test]
    fn garbage_on_the_controller_listener_is_refused_without_harm() {
        let d = TempDir::new("controller-garbage");
        let mut c = controller(d.path());
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let now = Instant::now();
        for i in 0..20_000 {
            let len = (next() % 200) as usize;
            let mut frame: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Half of them look like Raft frames of this cluster, with a garbage body.
            if i % 2 == 0 {
                let mut f = Vec::new();
                let mut w = Writer::new(&mut f);
                w.i16(RAFT_MESSAGE);
                w.i16(0);
                w.i32(0);
                w.nullable_string(Some(&c.cluster_id.clone()));
                w.bytes(&frame);
                frame = f;
            }
            let reply = c.handle(0, &mut frame, now);
            assert!(matches!(reply, Reply::None | Reply::Close | Reply::Now(_)));
            c.tick(now);
        }
        // Still a follower of nobody, still answering.
        assert_eq!(c.leader().0, None);
    }
}
