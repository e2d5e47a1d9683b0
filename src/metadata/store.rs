//! The metadata files: `<log_dir>/meta.properties` and the KRaft metadata log
//! `<log_dir>/__cluster_metadata-0/` (plus, if Kafka left one, its latest `.checkpoint` snapshot).
//!
//! Opening replays the log into a `MetadataImage`, judging batches as the partition log's
//! recovery does (CRC, structure, offsets moving forward) and also stopping at records that do
//! not decode. Nothing is written unless something changes: the first change opens the log as a
//! [`PartitionLog`] (the same log implementation as every partition, and as the quorum's log in
//! a cluster), which cuts the tail replay did not apply, and then appends. Every change is one
//! record batch, fsynced before it is applied to the image.

use super::image::{MetadataImage, TopicInfo};
use super::records::{
    resource_type, ConfigRecord, FeatureLevelRecord, MetadataRecord, PartitionRecord,
    ProducerIdsRecord, RemoveTopicRecord, TopicRecord,
};
use super::{
    random_uuid, topic_collision_key, uuid_from_string, uuid_to_string, validate_topic_name,
    MetadataError, TopicId,
};
use crate::config::parse_properties;
use crate::log::{DirHealth, LogConfig, LogError, PartitionLog, SharedHealth};
use crate::records::{batches_checked, parse_records, records_payload, BatchBuilder, RecordsError};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The metadata log's directory inside the log dir.
pub const METADATA_DIR: &str = "__cluster_metadata-0";
const META_PROPERTIES: &str = "meta.properties";
/// Metadata batches are small; a decompressed batch beyond this is treated as corrupt.
const DECOMPRESS_CAP: usize = 64 << 20;
/// Upper bound on partitions per topic, so one request cannot make us build a giant batch.
pub const MAX_PARTITIONS: i32 = 100_000;
/// The metadata.version we record when we start a new log (Kafka 3.9-IV0): the level at which
/// PartitionRecord v1 (with directories) is what Kafka itself writes.
const METADATA_VERSION_LEVEL: i16 = 21;

/// What opening found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayStats {
    pub batches: usize,
    pub records: usize,
    /// Records of types we do not interpret, or that did not decode.
    pub skipped_records: usize,
    /// Bytes after the first torn/corrupt batch (cut off before the next append).
    pub corrupt_tail_bytes: u64,
    /// Whether a snapshot (`.checkpoint`) was loaded.
    pub snapshot: bool,
}

pub struct MetadataStore {
    log_dir: PathBuf,
    dir: PathBuf,
    image: MetadataImage,
    cluster_id: String,
    node_id: i32,
    directory_id: TopicId,
    next_offset: i64,
    epoch: i32,
    /// The metadata log as a partition log, opened at the first change (opening changes
    /// nothing on disk): it keeps exactly what replay applied.
    log: Option<PartitionLog>,
    /// The end offset of the snapshot replay started from (0: none).
    snapshot_end: i64,
    stats: ReplayStats,
    /// The health of the log directory the metadata log lives in (shared with its partitions).
    health: SharedHealth,
    /// Who writes: this store's own log, or a controller quorum (see [`StoreMode`]).
    mode: StoreMode,
    /// In `Leader` mode: the records of each change, to be proposed to the quorum.
    proposals: Vec<Vec<Vec<u8>>>,
    /// Picks replicas over registered brokers in a cluster.
    random: crate::cluster::placement::XorShift,
}

/// Where the metadata a store shows comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreMode {
    /// A single node: changes go to this store's own log and are applied at once.
    Local,
    /// A cluster node whose controller is the active one: changes are applied at once (as
    /// Kafka's controller applies them before they commit) and handed to the quorum; the node
    /// answers the request once they are committed.
    Leader,
    /// A cluster node that is not the active controller: the image follows what the quorum
    /// commits; changes are refused with NOT_CONTROLLER.
    Follower,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> MetadataError + '_ {
    move |err| MetadataError::Io {
        path: path.to_path_buf(),
        err,
    }
}

impl MetadataStore {
    /// Opens (or initialises) the metadata of `log_dir`. See `open_with`.
    pub fn open(log_dir: &Path, node_id: i32, now_ms: i64) -> Result<MetadataStore, MetadataError> {
        Self::open_with(log_dir, node_id, None, now_ms)
    }

    /// Reads `meta.properties` (creating it with a new cluster id, or `cluster_id` if given, when
    /// absent) and replays `__cluster_metadata-0` if it exists. A log dir without one is a valid
    /// empty cluster.
    pub fn open_with(
        log_dir: &Path,
        node_id: i32,
        cluster_id: Option<&str>,
        _now_ms: i64,
    ) -> Result<MetadataStore, MetadataError> {
        let mut store = Self::new(log_dir, node_id, cluster_id, StoreMode::Local)?;
        if store.dir.is_dir() {
            store.replay()?;
        }
        Ok(store)
    }

    /// Shares the health of the log directory with the partition logs in it: an I/O error on
    /// either side takes the directory offline for both.
    /// A cluster node's store: `meta.properties` only (the controller owns the metadata log);
    /// the image starts empty and follows the committed records given to `apply_committed`.
    pub fn open_replica(
        log_dir: &Path,
        node_id: i32,
        cluster_id: Option<&str>,
    ) -> Result<MetadataStore, MetadataError> {
        Self::new(log_dir, node_id, cluster_id, StoreMode::Follower)
    }

    /// Whether a change would be accepted now (not a follower in a cluster).
    pub fn can_write(&self) -> bool {
        self.mode != StoreMode::Follower
    }

    fn new(
        log_dir: &Path,
        node_id: i32,
        cluster_id: Option<&str>,
        mode: StoreMode,
    ) -> Result<MetadataStore, MetadataError> {
        fs::create_dir_all(log_dir).map_err(io_err(log_dir))?;
        let (cluster_id, directory_id) = load_meta_properties(log_dir, node_id, cluster_id)?;
        Ok(MetadataStore {
            log_dir: log_dir.to_path_buf(),
            dir: log_dir.join(METADATA_DIR),
            image: MetadataImage::default(),
            cluster_id,
            node_id,
            directory_id,
            next_offset: 0,
            epoch: 0,
            log: None,
            snapshot_end: 0,
            stats: ReplayStats::default(),
            health: DirHealth::new(log_dir),
            mode,
            proposals: Vec::new(),
            random: crate::cluster::placement::XorShift::from_clock(),
        })
    }

    /// Switches a cluster node's store between writing (`Leader`) and following.
    pub fn set_mode(&mut self, mode: StoreMode) {
        self.mode = mode;
    }

    /// The changes made in `Leader` mode since the last call, one list of records each.
    pub fn take_proposals(&mut self) -> Vec<Vec<Vec<u8>>> {
        std::mem::take(&mut self.proposals)
    }

    /// Replaces the image (a cluster node that stopped being the writer goes back to what
    /// the quorum committed).
    pub fn reset_image(&mut self, image: MetadataImage) {
        self.image = image;
        self.proposals.clear();
    }

    /// One record the quorum committed (a follower's image follows them in order).
    pub fn apply_committed(&mut self, rec: &MetadataRecord<'_>) {
        self.image.apply(rec);
    }

    pub fn set_health(&mut self, health: SharedHealth) {
        if let Some(log) = self.log.as_mut() {
            log.set_health(health.clone());
        }
        self.health = health;
    }

    pub fn image(&self) -> &MetadataImage {
        &self.image
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// This log dir's `directory.id`.
    pub fn directory_id(&self) -> &TopicId {
        &self.directory_id
    }

    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// The offset the next metadata record gets.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    pub fn replay_stats(&self) -> &ReplayStats {
        &self.stats
    }

    /// Creates a topic: a new random id, `partitions` partitions led by `node_id` (replicas and
    /// ISR `[node_id]`, epochs 0) and the given config overrides, written as one batch.
    pub fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &[(String, String)],
        node_id: i32,
        now_ms: i64,
    ) -> Result<TopicInfo, MetadataError> {
        self.create_topic_with(
            name,
            partitions,
            replication_factor,
            None,
            configs,
            node_id,
            now_ms,
        )
    }

    /// A topic with the replicas of each partition given (CreateTopics' assignments, checked
    /// by the caller against the registered brokers).
    pub fn create_topic_assigned(
        &mut self,
        name: &str,
        assignment: Vec<Vec<i32>>,
        configs: &[(String, String)],
        node_id: i32,
        now_ms: i64,
    ) -> Result<TopicInfo, MetadataError> {
        let partitions = assignment.len() as i32;
        let rf = assignment.first().map_or(0, |r| r.len()) as i16;
        self.create_topic_with(
            name,
            partitions,
            rf,
            Some(assignment),
            configs,
            node_id,
            now_ms,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn create_topic_with(
        &mut self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        assignment: Option<Vec<Vec<i32>>>,
        configs: &[(String, String)],
        node_id: i32,
        now_ms: i64,
    ) -> Result<TopicInfo, MetadataError> {
        validate_topic_name(name).map_err(|why| MetadataError::InvalidTopic {
            name: name.to_string(),
            reason: why.to_string(),
        })?;
        if self.image.topic(name).is_some() {
            return Err(MetadataError::TopicExists(name.to_string()));
        }
        let key = topic_collision_key(name);
        if let Some(other) = self
            .image
            .topics()
            .find(|t| topic_collision_key(&t.name) == key)
        {
            return Err(MetadataError::InvalidTopic {
                name: name.to_string(),
                reason: format!("collides with existing topic {}", other.name),
            });
        }
        if !(1..=MAX_PARTITIONS).contains(&partitions) {
            return Err(MetadataError::InvalidPartitions(format!(
                "{partitions} (must be between 1 and {MAX_PARTITIONS})"
            )));
        }
        if replication_factor < 1 {
            return Err(MetadataError::InvalidReplicationFactor(format!(
                "{replication_factor} (must be at least 1)"
            )));
        }
        let assignment = match assignment {
            Some(a) => a,
            None => self.assign(partitions, replication_factor, node_id)?,
        };
        let topic_id = loop {
            let id = random_uuid();
            if self.image.topic_by_id(&id).is_none() {
                break id;
            }
        };
        let mut recs = Vec::with_capacity(1 + partitions as usize + configs.len());
        recs.push(MetadataRecord::Topic(TopicRecord { name, topic_id }));
        for (k, v) in configs {
            recs.push(MetadataRecord::Config(ConfigRecord {
                resource_type: resource_type::TOPIC,
                resource_name: name,
                name: k,
                value: Some(v),
            }));
        }
        for (p, replicas) in assignment.into_iter().enumerate() {
            recs.push(self.new_partition(topic_id, p as i32, replicas));
        }
        self.append(&recs, now_ms)?;
        self.image
            .topic(name)
            .cloned()
            .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))
    }

    /// Grows a topic to `total` partitions (CreatePartitions).
    pub fn create_partitions(
        &mut self,
        name: &str,
        total: i32,
        node_id: i32,
        now_ms: i64,
    ) -> Result<TopicInfo, MetadataError> {
        let t = self
            .image
            .topic(name)
            .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
        let have = t
            .partitions
            .iter()
            .map(|p| p.partition + 1)
            .max()
            .unwrap_or(0);
        if total <= have || total > MAX_PARTITIONS {
            return Err(MetadataError::InvalidPartitions(format!(
                "topic {name} has {have} partitions; {total} is not a valid new total"
            )));
        }
        let id = t.id;
        let rf = t.partitions.first().map_or(1, |p| p.replicas.len().max(1)) as i16;
        let assignment = self.assign(total - have, rf, node_id)?;
        let recs: Vec<_> = assignment
            .into_iter()
            .zip(have..total)
            .map(|(replicas, p)| self.new_partition(id, p, replicas))
            .collect();
        self.append(&recs, now_ms)?;
        self.image
            .topic(name)
            .cloned()
            .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))
    }

    /// Deletes a topic and its config overrides.
    pub fn delete_topic(&mut self, name: &str, now_ms: i64) -> Result<TopicInfo, MetadataError> {
        let t = self
            .image
            .topic(name)
            .cloned()
            .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
        let mut recs: Vec<MetadataRecord<'_>> = t
            .configs
            .keys()
            .map(|k| {
                MetadataRecord::Config(ConfigRecord {
                    resource_type: resource_type::TOPIC,
                    resource_name: name,
                    name: k,
                    value: None,
                })
            })
            .collect();
        recs.push(MetadataRecord::RemoveTopic(RemoveTopicRecord {
            topic_id: t.id,
        }));
        self.append(&recs, now_ms)?;
        Ok(t)
    }

    /// Sets (`Some`) or removes (`None`) config overrides of an existing topic.
    pub fn alter_topic_configs(
        &mut self,
        name: &str,
        changes: &[(String, Option<String>)],
        now_ms: i64,
    ) -> Result<(), MetadataError> {
        if self.image.topic(name).is_none() {
            return Err(MetadataError::UnknownTopic(name.to_string()));
        }
        let recs: Vec<_> = changes
            .iter()
            .map(|(k, v)| {
                MetadataRecord::Config(ConfigRecord {
                    resource_type: resource_type::TOPIC,
                    resource_name: name,
                    name: k,
                    value: v.as_deref(),
                })
            })
            .collect();
        self.append(&recs, now_ms)
    }

    /// Reserves `count` producer ids (a ProducerIdsRecord, as Kafka's controller writes) and
    /// returns the first one.
    pub fn allocate_producer_ids(&mut self, count: i64, now_ms: i64) -> Result<i64, MetadataError> {
        self.allocate_producer_ids_for(self.node_id, -1, count, now_ms)
    }

    /// The same for a broker of the cluster (AllocateProducerIds on the active controller).
    pub fn allocate_producer_ids_for(
        &mut self,
        broker_id: i32,
        broker_epoch: i64,
        count: i64,
        now_ms: i64,
    ) -> Result<i64, MetadataError> {
        let first = self.image.next_producer_id();
        let rec = MetadataRecord::ProducerIds(ProducerIdsRecord {
            broker_id,
            broker_epoch,
            next_producer_id: first.saturating_add(count.max(1)),
        });
        self.append(std::slice::from_ref(&rec), now_ms)?;
        Ok(first)
    }

    /// Appends `records` as one batch, fsyncs it, then applies them to the image. On error the
    /// image is unchanged.
    pub fn append(
        &mut self,
        records: &[MetadataRecord<'_>],
        now_ms: i64,
    ) -> Result<(), MetadataError> {
        if records.is_empty() {
            return Ok(());
        }
        match self.mode {
            StoreMode::Local => {}
            StoreMode::Follower => return Err(MetadataError::NotController),
            StoreMode::Leader => {
                let mut encoded = Vec::with_capacity(records.len() + 1);
                let version = FeatureLevelRecord {
                    name: "metadata.version",
                    feature_level: METADATA_VERSION_LEVEL,
                };
                let first = (self.image.feature("metadata.version").is_none())
                    .then_some(MetadataRecord::FeatureLevel(version));
                for r in first.iter().chain(records) {
                    let mut value = Vec::new();
                    r.encode(&mut value);
                    encoded.push(value);
                    self.image.apply(r);
                }
                self.proposals.push(encoded);
                return Ok(());
            }
        }
        let mut all: Vec<MetadataRecord<'_>> = Vec::with_capacity(records.len() + 1);
        // A metadata log starts with metadata.version (Kafka requires it to read the log).
        if self.image.feature("metadata.version").is_none() {
            all.push(MetadataRecord::FeatureLevel(FeatureLevelRecord {
                name: "metadata.version",
                feature_level: METADATA_VERSION_LEVEL,
            }));
        }
        all.extend_from_slice(records);
        let mut b = BatchBuilder::new(self.next_offset, now_ms).partition_leader_epoch(self.epoch);
        let mut value = Vec::new();
        for r in &all {
            value.clear();
            r.encode(&mut value);
            b.push(None, now_ms, None, Some(&value), &[]);
        }
        let batch = b.finish();
        self.write_batch(&batch, now_ms)?;
        self.next_offset += all.len() as i64;
        for r in &all {
            self.image.apply(r);
        }
        Ok(())
    }

    /// Everything is fsynced as it is appended; kept for symmetry with the partition logs.
    pub fn flush(&mut self) -> Result<(), MetadataError> {
        Ok(())
    }

    pub fn shutdown(&mut self) -> Result<(), MetadataError> {
        self.flush()
    }

    /// Replicas for `partitions` new partitions: this node alone on a single node; in a
    /// cluster, Kafka's striped placement over the registered brokers that are not fenced.
    fn assign(
        &mut self,
        partitions: i32,
        replication_factor: i16,
        node_id: i32,
    ) -> Result<Vec<Vec<i32>>, MetadataError> {
        use crate::cluster::placement::{place, UsableBroker};
        let brokers: Vec<UsableBroker> = self
            .image
            .brokers()
            .values()
            .map(|b| UsableBroker {
                id: b.id,
                rack: b.rack.clone(),
                // A broker shutting down is used only when the active ones are not enough.
                fenced: b.fenced || b.in_controlled_shutdown,
            })
            .collect();
        if self.mode == StoreMode::Local {
            if replication_factor > 1 {
                return Err(MetadataError::InvalidReplicationFactor(format!(
                    "{replication_factor} cannot be reached: only 1 broker is registered"
                )));
            }
            return Ok(vec![vec![node_id]; partitions.max(0) as usize]);
        }
        place(
            &mut self.random,
            partitions.max(0) as usize,
            replication_factor as i32,
            &brokers,
        )
        .map_err(|e| MetadataError::InvalidReplicationFactor(e.0))
    }

    fn new_partition(
        &self,
        topic_id: TopicId,
        p: i32,
        replicas: Vec<i32>,
    ) -> MetadataRecord<'static> {
        let leader = replicas.first().copied().unwrap_or(self.node_id);
        let directory = if leader == self.node_id {
            self.directory_id
        } else {
            [0; 16] // Kafka's DirectoryId.UNASSIGNED: the replica's broker picks its directory
        };
        MetadataRecord::Partition(PartitionRecord {
            partition_id: p,
            topic_id,
            isr: replicas.clone(),
            replicas,
            removing_replicas: vec![],
            adding_replicas: vec![],
            leader,
            leader_recovery_state: 0,
            leader_epoch: 0,
            partition_epoch: 0,
            directories: vec![directory],
            eligible_leader_replicas: None,
            last_known_elr: None,
        })
    }

    fn write_batch(&mut self, batch: &[u8], now_ms: i64) -> Result<(), MetadataError> {
        if self.health.is_offline() {
            return Err(MetadataError::Offline);
        }
        let dir = self.dir.clone();
        let io = |e: LogError| match e {
            LogError::Offline => MetadataError::Offline,
            LogError::Io(err) => MetadataError::Io {
                path: dir.clone(),
                err,
            },
            other => MetadataError::Io {
                path: dir.clone(),
                err: io::Error::other(other.to_string()),
            },
        };
        if self.log.is_none() {
            fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
            let mut log =
                PartitionLog::open(&self.dir, LogConfig::default(), now_ms).map_err(io)?;
            log.set_health(self.health.clone());
            // The partition log's recovery and replay judge batches by the same rules (CRC,
            // structure, offsets moving forward); replay may stop earlier (records that do not
            // decode): that tail is cut. A log that ends before the snapshot starts again at its
            // end. Anything else is a disagreement, and nothing is cut for it.
            let end = log.log_end_offset();
            if end > self.next_offset {
                log::warn!(
                    "metadata log {}: cutting offsets {}..{end} that replay did not apply",
                    self.dir.display(),
                    self.next_offset
                );
                log.truncate_to(self.next_offset, now_ms).map_err(io)?;
            } else if end < self.next_offset {
                if end > self.snapshot_end {
                    return Err(MetadataError::Io {
                        path: self.dir.clone(),
                        err: io::Error::other(format!(
                            "the log ends at {end} but replay applied up to {}",
                            self.next_offset
                        )),
                    });
                }
                log.truncate_fully_and_start_at(self.next_offset, now_ms)
                    .map_err(io)?;
            }
            self.log = Some(log);
        }
        let Some(log) = self.log.as_mut() else {
            return Err(MetadataError::Offline);
        };
        let end = log.log_end_offset();
        if let Err(e) = log.append_as_follower(batch, now_ms) {
            // Leave no partial batch behind: the next change starts at the same offset.
            let _ = log.truncate_to(end, now_ms);
            return Err(io(e));
        }
        // Never retried after a failure (fsyncgate): the directory goes offline.
        log.flush().map_err(|_| MetadataError::Offline)
    }

    /// Rebuilds the image from the latest snapshot (if any) and the log segments.
    fn replay(&mut self) -> Result<(), MetadataError> {
        let entries = fs::read_dir(&self.dir).map_err(io_err(&self.dir))?;
        let mut segments: Vec<(i64, PathBuf)> = Vec::new();
        let mut snapshots: Vec<(i64, PathBuf)> = Vec::new();
        for e in entries {
            let e = e.map_err(io_err(&self.dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".log") {
                if let Ok(base) = stem.parse::<i64>() {
                    segments.push((base, e.path()));
                }
            } else if let Some(stem) = name.strip_suffix(".checkpoint") {
                // <end offset>-<epoch>.checkpoint
                if let Some(Ok(end)) = stem.split('-').next().map(str::parse::<i64>) {
                    snapshots.push((end, e.path()));
                }
            }
        }
        segments.sort();
        snapshots.sort();

        let mut from_offset = 0;
        if let Some((end, path)) = snapshots.last() {
            let bytes = fs::read(path).map_err(io_err(path))?;
            let mut it = batches_checked(&bytes);
            for item in it.by_ref() {
                match item {
                    Ok((h, batch)) => {
                        if !h.is_control() {
                            self.apply_batch(batch, h.record_count, 0);
                        }
                    }
                    Err(e) => {
                        log::warn!(
                            "metadata snapshot {}: {e}; using what came before",
                            path.display()
                        );
                        break;
                    }
                }
            }
            self.stats.snapshot = true;
            self.snapshot_end = *end;
            from_offset = *end;
            self.next_offset = *end;
        }

        for (i, (base, path)) in segments.iter().enumerate() {
            let bytes = fs::read(path).map_err(io_err(path))?;
            let mut it = batches_checked(&bytes);
            let mut corrupt = None;
            // The end of the batches replayed so far: what is kept is exactly what the image
            // holds (a corrupt batch and everything after it are cut before the next append).
            let mut valid = 0;
            // The partition log's recovery rule: offsets move forward from the segment's base
            // and stay indexable from it.
            let mut expected = *base;
            for item in it.by_ref() {
                match item {
                    Ok((h, _))
                        if h.base_offset < expected
                            || !(0..=i32::MAX as i64).contains(&(h.last_offset() - *base)) =>
                    {
                        corrupt = Some(format!("batch at offset {} out of order", h.base_offset));
                        break;
                    }
                    Ok((h, batch)) => {
                        expected = h.next_offset();
                        if !h.is_control() && h.next_offset() > from_offset {
                            let skip = (from_offset - h.base_offset).max(0);
                            if !self.apply_batch(batch, h.record_count, skip) {
                                corrupt = Some("records do not decode".to_string());
                                break;
                            }
                        }
                        // Only what was applied counts: the next change follows it.
                        self.epoch = self.epoch.max(h.partition_leader_epoch);
                        self.next_offset = self.next_offset.max(h.next_offset());
                        valid += batch.len();
                    }
                    Err(e) => {
                        corrupt = Some(e.to_string());
                        break;
                    }
                }
            }
            let valid = valid as u64;
            self.next_offset = self.next_offset.max(*base);
            let dropped = segments.len() - i - 1;
            let needs_repair = corrupt.is_some();
            if let Some(why) = &corrupt {
                self.stats.corrupt_tail_bytes = bytes.len() as u64 - valid;
                log::warn!(
                    "metadata log {}: {why} at byte {valid}; replay stops there{}",
                    path.display(),
                    if dropped == 0 {
                        String::new()
                    } else {
                        format!(" ({dropped} later segment(s) ignored)")
                    }
                );
            }
            if needs_repair {
                break;
            }
        }
        if self.epoch < 0 {
            self.epoch = 0;
        }
        Ok(())
    }

    /// Applies the records of one data batch from offset delta `skip` on. Returns false when the
    /// batch's records cannot be parsed (a corrupt batch whose CRC happened to match).
    fn apply_batch(&mut self, batch: &[u8], count: i32, skip: i64) -> bool {
        self.stats.batches += 1;
        let payload = match records_payload(batch, DECOMPRESS_CAP) {
            Ok(p) => p,
            Err(RecordsError::Compression(e)) => {
                // A codec we cannot read is not corruption: skip the batch, keep the log.
                log::warn!("metadata batch skipped: {e}");
                return true;
            }
            Err(e) => {
                log::warn!("metadata batch: {e}");
                return false;
            }
        };
        let records = match parse_records(&payload, count) {
            Ok(r) => r,
            Err(e) => {
                log::warn!("metadata batch: {e}");
                return false;
            }
        };
        for r in records {
            if (r.offset_delta as i64) < skip {
                continue;
            }
            self.stats.records += 1;
            let Some(value) = r.value else {
                self.stats.skipped_records += 1;
                continue;
            };
            match MetadataRecord::decode(value) {
                Ok(rec) => self.image.apply(&rec),
                // A type or version a newer Kafka wrote: the frame makes it skippable.
                Err(e) if e.is_unknown() => self.stats.skipped_records += 1,
                Err(e) => {
                    self.stats.skipped_records += 1;
                    log::warn!("metadata record skipped: {e}");
                }
            }
        }
        true
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Reads `meta.properties` or writes a new one. Returns (cluster id, directory id).
pub(crate) fn load_meta_properties(
    log_dir: &Path,
    node_id: i32,
    want_cluster_id: Option<&str>,
) -> Result<(String, TopicId), MetadataError> {
    let path = log_dir.join(META_PROPERTIES);
    let text = match fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err(&path)(e)),
    };
    let bad = |reason: String| MetadataError::BadMetaProperties {
        path: path.clone(),
        reason,
    };
    let mut rewrite = text.is_none();
    let (mut cluster_id, mut directory_id) = (None, None);
    if let Some(text) = &text {
        let p = parse_properties(text);
        match p.get("version").map(str::trim) {
            None | Some("0") | Some("1") => {}
            Some(v) => return Err(bad(format!("unsupported version {v}"))),
        }
        if let Some(n) = p.get("node.id").or(p.get("broker.id")) {
            match n.trim().parse::<i32>() {
                Ok(n) if n == node_id => {}
                Ok(n) => log::warn!(
                    "{}: node.id {n} differs from the configured node id {node_id}; using {node_id}",
                    path.display()
                ),
                Err(_) => return Err(bad(format!("bad node.id {n:?}"))),
            }
        }
        cluster_id = p
            .get("cluster.id")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        if let (Some(have), Some(want)) = (&cluster_id, want_cluster_id) {
            if have != want {
                log::warn!(
                    "{}: cluster.id {have} differs from the configured {want}; keeping {have}",
                    path.display()
                );
            }
        }
        let mut bad_dir_id = false;
        directory_id = match p.get("directory.id") {
            Some(s) => {
                let id = uuid_from_string(s.trim());
                if id.is_none() {
                    // Not worth refusing to start over; the file is left as it is.
                    log::warn!("{}: unreadable directory.id {s:?}", path.display());
                    bad_dir_id = true;
                }
                id
            }
            None => None,
        };
        rewrite = cluster_id.is_none() || (directory_id.is_none() && !bad_dir_id);
    }
    let cluster_id = cluster_id.unwrap_or_else(|| {
        want_cluster_id
            .map(str::to_string)
            .unwrap_or_else(|| uuid_to_string(&random_uuid()))
    });
    let directory_id = directory_id.unwrap_or_else(random_uuid);
    if rewrite {
        write_meta_properties(log_dir, &cluster_id, node_id, &directory_id)?;
    }
    Ok((cluster_id, directory_id))
}

/// Writes `meta.properties` in Kafka's v1 format, atomically.
pub(crate) fn write_meta_properties(
    log_dir: &Path,
    cluster_id: &str,
    node_id: i32,
    directory_id: &TopicId,
) -> Result<(), MetadataError> {
    let path = log_dir.join(META_PROPERTIES);
    let tmp = log_dir.join("meta.properties.tmp");
    let text = format!(
        "#\n#Written by minikafka\ncluster.id={cluster_id}\ndirectory.id={}\nnode.id={node_id}\nversion=1\n",
        uuid_to_string(directory_id)
    );
    (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, &path)
    })()
    .map_err(io_err(&path))?;
    sync_dir(log_dir);
    Ok(())
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
