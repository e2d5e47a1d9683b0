//! The broker as a sans-IO service: frames in, response frames out, with `now` as a parameter.
//!
//! The reactor hands each whole frame to `Broker::handle`. It parses the header, dispatches to a
//! handler in `crate::api`, and returns the encoded response, or parks the request (long-poll
//! fetch, produce waiting for its fsync) until `flush`/`tick` complete it.

mod access;
pub mod cluster;
mod groups;
mod parked;
mod partition_changes;
mod replicas;
mod served;
pub mod topic_config;
mod txn;

use crate::api;
use crate::config::Config;
use crate::contain::contain;
use crate::log::{LogConfig, LogManager, TimestampType};
use crate::metadata::MetadataStore;
use crate::protocol::apis;
use crate::protocol::header::RequestHeader;
use crate::protocol::wire::DecodeError;
use crate::reactor::{ConnId, Reply, Service};
use parked::{Parked, ParkedFetch};
pub use replicas::{AwaitReplicas, REPLICA_FETCH_VERSION};
pub use served::Served;
use std::fmt;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Why a broker could not start.
#[derive(Debug)]
pub enum StartError {
    Log(crate::log::LogError),
    Metadata(crate::metadata::MetadataError),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Log(e) => write!(f, "opening the partition logs: {e}"),
            StartError::Metadata(e) => write!(f, "opening the metadata log: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// Wall-clock milliseconds derived from the `Instant` the reactor passes in, so handlers never
/// read the clock themselves.
#[derive(Clone, Copy)]
pub struct Clock {
    base: Instant,
    base_ms: i64,
}

impl Clock {
    pub fn new(base: Instant, base_ms: i64) -> Clock {
        Clock { base, base_ms }
    }
    pub fn system(base: Instant) -> Clock {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Clock::new(base, ms)
    }
    pub fn ms(&self, now: Instant) -> i64 {
        self.base_ms + now.saturating_duration_since(self.base).as_millis() as i64
    }
}

pub struct Broker {
    config: Config,
    logs: LogManager,
    meta: MetadataStore,
    clock: Clock,
    parked: Parked,
    completions: Vec<(ConnId, Vec<u8>)>,
    /// Responses held until the group-commit fsync at the end of this loop turn.
    awaiting_flush: Vec<(ConnId, AfterFlush)>,
    /// Partitions appended to this turn that parked fetches wait on: they are re-checked.
    appended: Vec<parked::PartitionKey>,
    /// Wall-clock times (ms) of the next periodic jobs run from `tick`.
    next_retention_ms: i64,
    next_checkpoint_ms: i64,
    /// The group coordinator and the committed offsets it guards.
    groups: crate::group::coordinator::GroupCoordinator,
    offsets: crate::group::offsets::OffsetStore,
    /// JoinGroup/SyncGroup requests waiting for a rebalance, by the coordinator's waiter id.
    group_waiters: std::collections::HashMap<u64, ParkedGroupRequest>,
    next_waiter: u64,
    /// Peer addresses of open connections (for the client host Kafka reports for members).
    peers: std::collections::HashMap<ConnId, std::net::SocketAddr>,
    next_offsets_expiry_ms: i64,
    /// Set while the log cleaner has work left: the tick at which it last ran.
    cleaning_since: Option<Instant>,
    /// The fetch handler's read buffer, kept between requests.
    fetch_buf: Vec<u8>,
    /// Producer ids reserved in the metadata log and not yet handed out: [next, end).
    producer_ids: (i64, i64),
    /// In a cluster: the next block, granted by the active controller before this one ran out.
    next_producer_ids: Option<(i64, i64)>,
    /// The transaction coordinator and the times of its next timer checks.
    txns: crate::txn::TxnCoordinator,
    next_txn_check_ms: i64,
    next_txn_expiry_ms: i64,
    /// Set when this broker is one of a cluster (`crate::cluster::node`).
    cluster: Option<cluster::ClusterView>,
    /// Transaction markers written (producer id, epoch, topic, partition), while their
    /// transaction waits for others: a retry does not write them twice.
    markers_done: std::collections::HashSet<(i64, i16, String, i32)>,
    /// Leader and follower state of replicated partitions (`replicas.rs`).
    replication: replicas::Replication,
}

/// A parked group request: where to send the answer and how to encode it.
pub(crate) struct ParkedGroupRequest {
    conn: ConnId,
    hdr: RequestHeader<'static>,
}

/// Kafka's `AdminUtils.ADMIN_CLIENT_ID`: the client id allowed to produce to internal topics.
const ADMIN_CLIENT_ID: &str = "__admin_client";

/// Producer ids reserved per ProducerIdsRecord, as Kafka's controller allocates them.
const PRODUCER_ID_BLOCK: i64 = 1000;

/// Bytes the log cleaner may read or write per tick.
const CLEAN_BUDGET_BYTES: usize = 256 << 10;

/// Kafka's `log.flush.offset.checkpoint.interval.ms`: how often recovery points are written.
const CHECKPOINT_INTERVAL_MS: i64 = 60_000;

/// Builds a response once this turn's fsync is done, from what the fsync achieved.
pub type AfterFlush = Box<dyn FnOnce(&Broker) -> Vec<u8> + Send>;

/// What a handler returns.
pub enum Outcome {
    /// The whole response frame (size, header, body).
    Body(Vec<u8>),
    /// A response that must wait for this turn's fsync (acks != 0 with flush due); it is built
    /// after the fsync, so it can tell what became durable.
    AfterFlush(AfterFlush),
    /// Long-poll fetch: park until data arrives or the deadline.
    /// Waiting for an append to one of `waits_on`, or for `deadline`.
    ParkFetch {
        deadline: Instant,
        waits_on: Vec<parked::PartitionKey>,
    },
    /// Registered with the group coordinator; answered through `take_completions`.
    Parked,
    /// acks=all on replicated partitions: answered once the high watermark passes the
    /// records (`check` builds the answer then), or at `deadline`.
    AwaitReplicas {
        deadline: Instant,
        check: AwaitReplicas,
    },
    /// Nothing to send (Produce acks=0).
    NoResponse,
}

impl Broker {
    pub fn open(config: Config, now: Instant) -> Result<Broker, StartError> {
        let clock = Clock::system(now);
        let meta = MetadataStore::open_with(
            &config.log_dir,
            config.node_id,
            config.cluster_id.as_deref(),
            clock.ms(now),
        )
        .map_err(StartError::Metadata)?;
        Self::open_with_store(config, meta, None, now)
    }

    /// The broker of a cluster node: its metadata comes from the controller quorum (the
    /// node's controller owns `__cluster_metadata-0`); `listener` names the client listener.
    pub fn open_in_cluster(
        config: Config,
        listener: &str,
        now: Instant,
    ) -> Result<Broker, StartError> {
        let meta = MetadataStore::open_replica(
            &config.log_dir,
            config.node_id,
            config.cluster_id.as_deref(),
        )
        .map_err(StartError::Metadata)?;
        let view = cluster::ClusterView::new(listener);
        Self::open_with_store(config, meta, Some(view), now)
    }

    fn open_with_store(
        config: Config,
        meta: MetadataStore,
        cluster: Option<cluster::ClusterView>,
        now: Instant,
    ) -> Result<Broker, StartError> {
        let clock = Clock::system(now);
        let now_ms = clock.ms(now);
        let logs = LogManager::open(&config.log_dir, default_log_config(&config), now_ms)
            .map_err(StartError::Log)?;
        // One directory, one health: an I/O error in the metadata log or a partition log
        // takes both offline.
        let mut meta = meta;
        meta.set_health(logs.health().clone());
        let group_cfg = group_config(&config);
        let txn_cfg = txn_config(&config);
        let offsets_expiry_at = now_ms + config.offsets_retention_check_interval_ms.max(1);
        let mut broker = Broker {
            next_retention_ms: now_ms + config.log_retention_check_interval_ms.max(1000),
            next_checkpoint_ms: now_ms + CHECKPOINT_INTERVAL_MS,
            config,
            logs,
            meta,
            clock,
            parked: Parked::default(),
            completions: Vec::new(),
            awaiting_flush: Vec::new(),
            appended: Vec::new(),
            producer_ids: (0, 0),
            next_producer_ids: None,
            fetch_buf: Vec::new(),
            cleaning_since: None,
            groups: crate::group::coordinator::GroupCoordinator::new(group_cfg),
            offsets: Default::default(),
            group_waiters: Default::default(),
            next_waiter: 0,
            peers: Default::default(),
            next_offsets_expiry_ms: offsets_expiry_at,
            txns: crate::txn::TxnCoordinator::new(txn_cfg),
            next_txn_check_ms: now_ms,
            next_txn_expiry_ms: now_ms,
            cluster,
            markers_done: Default::default(),
            replication: Default::default(),
        };
        if broker.cluster.is_some() {
            // Nothing is coordinated here until the metadata says which partitions are led.
            broker.groups.set_owned(Some((0, Default::default())));
        }
        broker.apply_topic_overrides();
        broker.load_groups(now);
        broker.load_txns(now);
        broker.log_open_summary(now);
        Ok(broker)
    }

    /// One line on how the logs were opened: after a clean shutdown nothing is recovered.
    fn log_open_summary(&self, started: Instant) {
        let (mut parts, mut recovered, mut truncated, mut tail) = (0, 0, 0, 0);
        for (_, _, log) in self.logs.partitions() {
            let s = log.open_stats();
            parts += 1;
            recovered += s.segments_recovered;
            truncated += s.bytes_truncated;
            tail += s.tail_bytes_scanned;
        }
        log::info!(
            "opened {parts} partition logs after {} shutdown: {recovered} segments recovered, \
             {truncated} bytes truncated, {tail} tail bytes checked, in {:?}",
            if self.logs.had_clean_shutdown() {
                "a clean"
            } else if parts == 0 {
                "no previous"
            } else {
                "an unclean"
            },
            started.elapsed()
        );
    }

    /// Partition logs are opened with the broker defaults; topics with their own configs get
    /// them here.
    fn apply_topic_overrides(&mut self) {
        let topics: Vec<(String, LogConfig)> = self
            .meta
            .image()
            .topics()
            .filter(|t| !t.configs.is_empty())
            .map(|t| (t.name.clone(), self.topic_log_config(&t.name)))
            .collect();
        for (name, cfg) in topics {
            let n = self
                .meta
                .image()
                .topic(&name)
                .map_or(0, |t| t.partitions.len());
            for p in 0..n as i32 {
                if let Some(log) = self.logs.get_mut(&name, p) {
                    log.set_config(cfg.clone());
                }
            }
        }
    }

    /// Periodic log maintenance: retention and recovery-point checkpoints.
    fn maintain(&mut self, now: Instant) {
        let now_ms = self.clock.ms(now);
        if now_ms >= self.next_retention_ms {
            self.next_retention_ms = now_ms + self.config.log_retention_check_interval_ms.max(1000);
            match self.logs.enforce_retention(now_ms) {
                Ok(0) => {}
                Ok(n) => log::info!("retention deleted {n} segment(s)"),
                Err(e) => log::error!("retention: {e}"),
            }
        }
        // One bounded slice of log cleaning per tick keeps every client's wait short.
        if self.config.log_cleaner_enable {
            let progress = self.logs.clean_step(now_ms, CLEAN_BUDGET_BYTES);
            // While there is cleaning to do, the loop comes straight back for the next slice
            // (after serving whatever IO is ready) instead of waiting for traffic or a timer.
            self.cleaning_since = if progress.idle { None } else { Some(now) };
        }
        if now_ms >= self.next_offsets_expiry_ms {
            self.next_offsets_expiry_ms =
                now_ms + self.config.offsets_retention_check_interval_ms.max(1);
            self.expire_offsets(now);
        }
        if now_ms >= self.next_checkpoint_ms && !self.logs.is_offline() {
            self.next_checkpoint_ms = now_ms + CHECKPOINT_INTERVAL_MS;
            if let Err(e) = self.logs.checkpoint() {
                log::error!("writing checkpoints: {e}");
            }
        }
    }

    pub fn now_ms(&self, now: Instant) -> i64 {
        self.clock.ms(now)
    }

    /// The log configuration of a topic: broker defaults overridden by the topic's configs.
    pub fn topic_log_config(&self, topic: &str) -> LogConfig {
        let mut c = default_log_config(&self.config);
        if let Some(t) = self.meta.image().topic(topic) {
            topic_config::apply(&mut c, t.configs.iter());
        }
        c
    }

    /// A new producer id, reserving a block in the metadata log when the last one is used up,
    /// so that ids are never handed out twice, also across restarts.
    pub fn next_producer_id(
        &mut self,
        now: Instant,
    ) -> Result<i64, crate::metadata::MetadataError> {
        if self.producer_ids.0 >= self.producer_ids.1 {
            if let Some(next) = self.next_producer_ids.take() {
                self.producer_ids = next;
            }
        }
        if self.producer_ids.0 >= self.producer_ids.1 {
            let first = match self
                .meta
                .allocate_producer_ids(PRODUCER_ID_BLOCK, self.clock.ms(now))
            {
                Ok(first) => first,
                Err(e) => {
                    if Self::not_controller(&e) {
                        // Asked of the active controller; the client retries meanwhile.
                        self.wish(cluster::Wish::ProducerIds);
                    }
                    return Err(e);
                }
            };
            self.producer_ids = (first, first + PRODUCER_ID_BLOCK);
        }
        let id = self.producer_ids.0;
        self.producer_ids.0 += 1;
        Ok(id)
    }

    /// Creates a topic in the metadata log. Each partition's log is created on its first write
    /// (`partition_log_mut`), so creating a topic of thousands of partitions — the internal
    /// topics inside a FindCoordinator among them — does not hold the loop. Validation of
    /// names, counts and configs is the caller's (CreateTopics and auto-creation differ in
    /// errors).
    pub fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &[(String, String)],
        now: Instant,
    ) -> Result<(), crate::metadata::MetadataError> {
        let now_ms = self.clock.ms(now);
        let made = self.meta.create_topic(
            name,
            partitions,
            replication_factor,
            configs,
            self.config.node_id,
            now_ms,
        );
        match made {
            Ok(_) => Ok(()),
            Err(e) if Self::not_controller(&e) => {
                self.wish(cluster::Wish::CreateTopic {
                    name: name.to_string(),
                    partitions,
                    replication_factor,
                    configs: configs.to_vec(),
                });
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Creates a topic with the replicas of each partition given (CreateTopics' assignments);
    /// decided here, never forwarded.
    pub fn create_topic_assigned(
        &mut self,
        name: &str,
        assignment: Vec<Vec<i32>>,
        configs: &[(String, String)],
        now: Instant,
    ) -> Result<(), crate::metadata::MetadataError> {
        let now_ms = self.clock.ms(now);
        let node = self.config.node_id;
        self.meta
            .create_topic_assigned(name, assignment, configs, node, now_ms)
            .map(|_| ())
    }

    /// A block of producer ids granted by the active controller (AllocateProducerIds).
    pub fn grant_producer_ids(&mut self, first: i64, count: i64) {
        let block = (first, first.saturating_add(count.max(0)));
        if self.producer_ids.0 >= self.producer_ids.1 {
            self.producer_ids = block;
        } else {
            self.next_producer_ids = Some(block);
        }
    }

    /// Whether a cluster broker should ask for its next block of producer ids now (less than
    /// a tenth of this one left and none waiting), so that InitProducerId need not wait for a
    /// round trip to the controller (Kafka's brokers prefetch the same way).
    pub fn wants_producer_ids(&self) -> bool {
        let left = self.producer_ids.1 - self.producer_ids.0;
        self.next_producer_ids.is_none() && left < PRODUCER_ID_BLOCK / 10
    }

    /// The log of an existing partition, created on first use if its directory is missing.
    pub fn partition_log_mut(
        &mut self,
        topic: &str,
        partition: i32,
        now: Instant,
    ) -> Option<&mut crate::log::PartitionLog> {
        let t = self.meta.image().topic(topic)?;
        if partition < 0 || partition as usize >= t.partitions.len() {
            return None;
        }
        if !self.leads(topic, partition) {
            return None;
        }
        let id = t.id;
        if self.logs.get(topic, partition).is_none() {
            let cfg = self.topic_log_config(topic);
            let now_ms = self.clock.ms(now);
            if let Err(e) = self.logs.create(topic, partition, id, cfg, now_ms) {
                log::error!("creating log for {topic}-{partition}: {e}");
                return None;
            }
        }
        self.logs.get_mut(topic, partition)
    }

    /// Whether a partition's log is offline (its directory failed, or work on it panicked):
    /// Metadata lists this broker among its offline replicas, writes get KAFKA_STORAGE_ERROR.
    pub fn partition_offline(&self, topic: &str, partition: i32) -> bool {
        self.logs.is_offline()
            || self
                .logs
                .get(topic, partition)
                .is_some_and(|l| l.is_offline())
    }

    /// Keeps the fetch buffer for the next request unless one huge fetch made it large.
    pub(crate) fn return_fetch_buf(&mut self, buf: Vec<u8>) {
        const KEEP_AT_MOST: usize = 8 << 20;
        if buf.capacity() <= KEEP_AT_MOST {
            self.fetch_buf = buf;
        }
    }

    /// Something was appended to `topic`-`partition`: fetches waiting on it run again at the
    /// end of the turn. Costs nothing when nobody waits on it.
    pub(crate) fn note_append(&mut self, topic: &str, partition: i32) {
        self.note_replicated_append(topic, partition);
        if self.parked.waits_on(topic, partition)
            && !self
                .appended
                .iter()
                .any(|(t, p)| *p == partition && t == topic)
        {
            self.appended.push((topic.to_string(), partition));
        }
    }

    fn dispatch(
        &mut self,
        conn: ConnId,
        hdr: &RequestHeader<'static>,
        client_id: &str,
        body: &mut [u8],
        now: Instant,
    ) -> Result<Outcome, DecodeError> {
        use api::{find_coordinator, groups, offsets};
        match hdr.api_key {
            apis::FIND_COORDINATOR => find_coordinator::handle(self, hdr, body, now),
            apis::JOIN_GROUP => groups::join(self, conn, hdr, client_id, body, now),
            apis::SYNC_GROUP => groups::sync(self, conn, hdr, body, now),
            apis::HEARTBEAT => groups::heartbeat(self, hdr, body, now),
            apis::LEAVE_GROUP => groups::leave(self, hdr, body, now),
            apis::DESCRIBE_GROUPS => groups::describe(self, hdr, body),
            apis::LIST_GROUPS => groups::list(self, hdr, body),
            apis::DELETE_GROUPS => groups::delete(self, hdr, body, now),
            apis::OFFSET_COMMIT => offsets::commit(self, hdr, body, now),
            apis::OFFSET_FETCH => offsets::fetch(self, hdr, body),
            apis::OFFSET_DELETE => offsets::delete(self, hdr, body, now),
            apis::API_VERSIONS => api::api_versions::handle(self, hdr, body),
            apis::METADATA => api::metadata::handle(self, hdr, body, now),
            apis::CREATE_TOPICS => api::create_topics::handle(self, hdr, body, now),
            apis::INIT_PRODUCER_ID => api::init_producer_id::handle(self, hdr, body, now),
            apis::PRODUCE => {
                let internal_ok = client_id == ADMIN_CLIENT_ID;
                api::produce::handle(self, hdr, body, now, internal_ok)
            }
            apis::FETCH => api::fetch::handle(self, hdr, body, now, false),
            apis::LIST_OFFSETS => api::list_offsets::handle(self, hdr, body, now),
            apis::DESCRIBE_TOPIC_PARTITIONS => {
                api::describe_topic_partitions::handle(self, hdr, body)
            }
            apis::DELETE_TOPICS => api::admin::topics::delete_topics(self, hdr, body, now),
            apis::CREATE_PARTITIONS => api::admin::topics::create_partitions(self, hdr, body, now),
            apis::DESCRIBE_CONFIGS => api::admin::configs::describe(self, hdr, body),
            apis::ALTER_CONFIGS => api::admin::configs::alter(self, hdr, body, now),
            apis::INCREMENTAL_ALTER_CONFIGS => {
                api::admin::configs::incremental_alter(self, hdr, body, now)
            }
            apis::DELETE_RECORDS => api::admin::records::handle(self, hdr, body, now),
            apis::ELECT_LEADERS => api::admin::elect::handle(self, hdr, body, now),
            apis::DESCRIBE_CLUSTER => api::admin::cluster::describe_cluster(self, hdr, body),
            apis::DESCRIBE_LOG_DIRS => api::admin::cluster::describe_log_dirs(self, hdr, body),
            apis::ADD_PARTITIONS_TO_TXN => api::txn::add_partitions_to_txn(self, hdr, body, now),
            apis::ADD_OFFSETS_TO_TXN => api::txn::add_offsets_to_txn(self, hdr, body, now),
            apis::END_TXN => api::txn::end_txn(self, hdr, body, now),
            apis::WRITE_TXN_MARKERS => api::txn::write_txn_markers(self, hdr, body, now),
            apis::TXN_OFFSET_COMMIT => api::txn::txn_offset_commit(self, hdr, body, now),
            apis::DESCRIBE_PRODUCERS => api::txn::describe_producers(self, hdr, body),
            apis::DESCRIBE_TRANSACTIONS => api::txn::describe_transactions(self, hdr, body),
            apis::LIST_TRANSACTIONS => api::txn::list_transactions(self, hdr, body, now),
            apis::OFFSET_FOR_LEADER_EPOCH => api::offset_for_leader_epoch::handle(self, hdr, body),
            apis::DESCRIBE_QUORUM => api::admin::quorum::describe_quorum(self, hdr, body, now),
            // Served only where the node routes it: the active controller's writer.
            apis::ALTER_PARTITION if self.cluster.is_some() => {
                api::alter_partition::handle(self, hdr, body, now)
            }
            _ => Err(DecodeError::Invalid("unsupported api")),
        }
    }

    /// Runs one request to completion or park. `frame` is the request without its size prefix.
    fn handle_frame(&mut self, conn: ConnId, frame: &mut [u8], now: Instant) -> Reply {
        // The header is copied out (without the client id) so that the body can be borrowed
        // mutably: Produce rewrites batch offsets in place.
        // JoinGroup records the client id of its member; other requests need not copy it.
        let mut client_id = String::new();
        let parsed = RequestHeader::parse(frame).map(|(h, body)| {
            // Kafka lets only this client id write to internal topics.
            let admin = h.api_key == apis::PRODUCE && h.client_id == Some(ADMIN_CLIENT_ID);
            if h.api_key == apis::JOIN_GROUP || admin {
                client_id = h.client_id.unwrap_or("").to_string();
            }
            let h: RequestHeader<'static> = RequestHeader {
                api_key: h.api_key,
                api_version: h.api_version,
                correlation_id: h.correlation_id,
                client_id: None,
            };
            (h, frame.len() - body.len())
        });
        let (hdr, body_at) = match parsed {
            Ok(x) => x,
            Err(e) => {
                log::warn!("connection {conn}: bad request header ({e}); closing");
                return Reply::Close;
            }
        };
        // AlterPartition reaches the active controller's writer through its node.
        let from_a_broker = hdr.api_key == apis::ALTER_PARTITION
            && self.cluster.is_some()
            && apis::is_controller_api(hdr.api_key, hdr.api_version);
        if !from_a_broker && !apis::is_supported(hdr.api_key, hdr.api_version) {
            if hdr.api_key == apis::API_VERSIONS {
                // Kafka answers an ApiVersions it cannot read with the v0 layout and error 35,
                // listing what it supports so the client can retry with a version we speak.
                return Reply::Now(api::api_versions::unsupported_version_response(&hdr));
            }
            match apis::find(hdr.api_key) {
                Some(a) => log::warn!(
                    "connection {conn}: {} v{} is not supported (we serve v{}-v{}); closing",
                    a.name,
                    hdr.api_version,
                    a.min,
                    a.max
                ),
                None => log::warn!(
                    "connection {conn}: unknown api key {} (v{}); closing",
                    hdr.api_key,
                    hdr.api_version
                ),
            }
            return Reply::Close;
        }
        let body = &mut frame[body_at..];
        match self.dispatch(conn, &hdr, &client_id, body, now) {
            Ok(Outcome::Body(b)) => Reply::Now(b),
            Ok(Outcome::AfterFlush(b)) => {
                self.awaiting_flush.push((conn, b));
                Reply::Parked
            }
            Ok(Outcome::ParkFetch { deadline, waits_on }) => {
                self.parked.park(ParkedFetch {
                    conn,
                    frame: frame.to_vec(),
                    deadline,
                    waits_on,
                });
                Reply::Parked
            }
            Ok(Outcome::AwaitReplicas { deadline, check }) => {
                self.await_replicas(conn, deadline, check);
                Reply::Parked
            }
            Ok(Outcome::NoResponse) => Reply::None,
            Ok(Outcome::Parked) => Reply::Parked,
            Err(e) => {
                let name = apis::find(hdr.api_key).map(|a| a.name).unwrap_or("?");
                log::warn!(
                    "connection {conn}: malformed {name} v{} request ({e}); closing",
                    hdr.api_version
                );
                Reply::Close
            }
        }
    }

    /// Re-runs parked fetches: those whose deadline passed, and (after an append) those that
    /// may now have enough data.
    fn run_parked(&mut self, now: Instant) {
        let appended = std::mem::take(&mut self.appended);
        let due = self.parked.take_ready(now, &appended);
        for p in due {
            let expired = p.deadline <= now;
            let (hdr, body) = match RequestHeader::parse(&p.frame) {
                Ok(x) => x,
                Err(_) => continue, // parsed fine when parked; cannot happen
            };
            let what = format_args!("the parked fetch of connection {}", p.conn);
            match contain(what, || api::fetch::handle(self, &hdr, body, now, expired)) {
                Ok(Ok(Outcome::Body(b))) => self.completions.push((p.conn, b)),
                Ok(Ok(Outcome::ParkFetch { deadline, waits_on })) => {
                    // Same deadline (the handler computed it from `now`, keep the first one).
                    let _ = deadline;
                    self.parked.park(ParkedFetch { waits_on, ..p })
                }
                _ => {
                    // A parked fetch always yields a body or parks again. Otherwise (or after
                    // a panic) the connection is closed: an empty completion.
                    log::error!("connection {}: parked fetch failed to complete", p.conn);
                    self.completions.push((p.conn, Vec::new()));
                }
            }
        }
    }
}

fn group_config(c: &Config) -> crate::group::coordinator::GroupConfig {
    let ms = |v: i64| std::time::Duration::from_millis(v.max(0) as u64);
    crate::group::coordinator::GroupConfig {
        initial_rebalance_delay: ms(c.group_initial_rebalance_delay_ms),
        min_session_timeout: ms(c.group_min_session_timeout_ms as i64),
        max_session_timeout: ms(c.group_max_session_timeout_ms as i64),
        max_size: c.group_max_size.max(1) as usize,
    }
}

fn txn_config(c: &Config) -> crate::txn::TxnConfig {
    crate::txn::TxnConfig {
        max_timeout_ms: c.transaction_max_timeout_ms.clamp(1, i32::MAX as i64) as i32,
        id_expiration_ms: c.transactional_id_expiration_ms,
    }
}

pub fn default_log_config(c: &Config) -> LogConfig {
    LogConfig {
        segment_bytes: c.log_segment_bytes,
        segment_ms: c.log_segment_ms,
        flush_messages: c.log_flush_interval_messages,
        flush_ms: c.log_flush_interval_ms,
        timestamp_type: if c.log_message_timestamp_type == "LogAppendTime" {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        },
        max_message_bytes: c.message_max_bytes,
        retention_ms: c.log_retention_ms,
        retention_bytes: c.log_retention_bytes,
        index_interval_bytes: c.log_index_interval_bytes,
        max_index_bytes: c.log_index_size_max_bytes,
        cleanup_policy_compact: c
            .log_cleanup_policy
            .split(',')
            .any(|p| p.trim() == "compact"),
        cleanup_policy_delete: c
            .log_cleanup_policy
            .split(',')
            .any(|p| p.trim() == "delete"),
        delete_retention_ms: c.log_cleaner_delete_retention_ms,
        min_compaction_lag_ms: c.log_cleaner_min_compaction_lag_ms,
        min_cleanable_dirty_ratio: c.log_cleaner_min_cleanable_ratio,
        producer_id_expiration_ms: c.producer_id_expiration_ms,
        ..LogConfig::default()
    }
}

impl Service for Broker {
    fn handle(&mut self, conn: ConnId, frame: &mut [u8], now: Instant) -> Reply {
        self.handle_frame(conn, frame, now)
    }

    /// Each job is contained on its own: a panic in one is logged and the others still run.
    fn tick(&mut self, now: Instant) {
        let _ = contain("the group coordinator's timers", || self.groups.tick(now));
        let _ = contain("collecting group answers", || {
            self.collect_group_completions()
        });
        let _ = contain("ISR checks", || self.check_isrs(now));
        let _ = contain("replication", || self.replication_turn(now, false));
        let _ = contain("parked fetches", || self.run_parked(now));
        let _ = contain("log maintenance", || self.maintain(now));
        let _ = contain("transaction timers", || self.txn_tick(now));
    }

    fn flush(&mut self, now: Instant) {
        let now_ms = self.clock.ms(now);
        // A partition whose fsync failed does not reach its recovery point, so what waited
        // for it is answered with an error (see `produce::Pending::settle`).
        let failed = self.logs.flush_due(now_ms);
        if !failed.is_empty() {
            log::error!("fsync failed for {} partition(s)", failed.len());
        }
        for (conn, finish) in std::mem::take(&mut self.awaiting_flush) {
            // A response that cannot be built closes its connection (an empty completion).
            let bytes = contain(
                format_args!("answering connection {conn} after the flush"),
                || finish(self),
            )
            .unwrap_or_default();
            self.completions.push((conn, bytes));
        }
        let _ = contain("collecting group answers", || {
            self.collect_group_completions()
        });
        let _ = contain("persisting group states", || self.persist_dirty_groups(now));
        let _ = contain("replication", || self.replication_turn(now, true));
        let _ = contain("parked fetches", || self.run_parked(now));
    }

    fn take_completions(&mut self, out: &mut Vec<(ConnId, Vec<u8>)>) {
        out.append(&mut self.completions);
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.parked.next_deadline(),
            self.groups.next_deadline(),
            self.replication_deadline(),
            self.cleaning_since,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn connection_opened(&mut self, conn: ConnId, peer: std::net::SocketAddr) {
        self.peers.insert(conn, peer);
    }

    fn connection_closed(&mut self, conn: ConnId) {
        self.peers.remove(&conn);
        self.drop_group_requests_of(conn);
        self.parked.remove_conn(conn);
        self.awaiting_flush.retain(|(c, _)| *c != conn);
        self.drop_replica_waits_of(conn);
        self.completions.retain(|(c, _)| *c != conn);
    }

    fn shutdown(&mut self) {
        if let Err(e) = self.logs.shutdown() {
            log::error!("log shutdown: {e}");
        }
        if let Err(e) = self.meta.shutdown() {
            log::error!("metadata shutdown: {e}");
        }
    }
}

/// Topics Kafka marks internal.
pub fn is_internal_topic(name: &str) -> bool {
    matches!(
        name,
        "__consumer_offsets" | "__transaction_state" | "__share_group_state"
    )
}

#[cfg(test)]
mod tests;
