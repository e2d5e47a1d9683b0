//! The small interfaces handlers reach the broker's parts through, instead of its fields:
//! read-only views of the configuration and the metadata image, the coordinators, and metadata
//! changes as effects (`delete_topic`, `create_partitions`, `alter_topic_configs`) that keep
//! the logs in step with the image. Partition data is reached through `Broker::served`
//! (`served.rs`); writes through the produce path's `partition_log_mut`.

use super::Broker;
use crate::config::Config;
use crate::group::coordinator::GroupCoordinator;
use crate::group::offsets::OffsetStore;
use crate::log::LogManager;
use crate::metadata::MetadataImage;
use crate::metadata::{MetadataError, MetadataStore};
use crate::txn::TxnCoordinator;
use std::time::Instant;

impl Broker {
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The committed (or, on the active controller's broker, decided) metadata.
    pub fn image(&self) -> &MetadataImage {
        self.meta.image()
    }

    /// A partition's current leader epoch (0 when unknown): what batches written here carry.
    pub fn leader_epoch_of(&self, topic: &str, partition: i32) -> i32 {
        self.meta
            .image()
            .topic(topic)
            .and_then(|t| t.partition(partition))
            .map_or(0, |p| p.leader_epoch.max(0))
    }

    pub fn cluster_id(&self) -> &str {
        self.meta.cluster_id()
    }

    /// Replaces the wall clock (tests and the fuzzer pin it for reproducible runs).
    pub fn set_clock(&mut self, clock: super::Clock) {
        self.clock = clock;
    }

    /// The metadata log's state (DescribeQuorum, the cluster node's proposals).
    pub fn metadata(&self) -> &MetadataStore {
        &self.meta
    }

    pub(crate) fn metadata_mut(&mut self) -> &mut MetadataStore {
        &mut self.meta
    }

    /// The log directory (DescribeLogDirs, tests).
    pub fn logs(&self) -> &LogManager {
        &self.logs
    }

    pub fn groups(&self) -> &GroupCoordinator {
        &self.groups
    }

    pub(crate) fn groups_mut(&mut self) -> &mut GroupCoordinator {
        &mut self.groups
    }

    /// Committed (and transactionally pending) consumer offsets.
    pub fn offsets(&self) -> &OffsetStore {
        &self.offsets
    }

    pub(crate) fn offsets_mut(&mut self) -> &mut OffsetStore {
        &mut self.offsets
    }

    pub fn txns(&self) -> &TxnCoordinator {
        &self.txns
    }

    pub(crate) fn txns_mut(&mut self) -> &mut TxnCoordinator {
        &mut self.txns
    }

    pub(crate) fn cluster_view_mut(&mut self) -> Option<&mut super::cluster::ClusterView> {
        self.cluster.as_mut()
    }

    /// The fetch handler's reusable read buffer (given back with `return_fetch_buf`).
    pub(crate) fn take_fetch_buf(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.fetch_buf)
    }

    /// Whether metadata changes are decided here (single node, or the active controller's
    /// broker); elsewhere they are forwarded.
    pub fn can_change_metadata(&self) -> bool {
        self.meta.can_write()
    }

    /// Deletes a topic: its partition logs first, then the topic in the metadata log, then its
    /// committed offsets. Logs go first: the log manager loads every partition directory it
    /// finds at start, so a crash between the two steps must not leave old data behind that a
    /// re-created topic of the same name would pick up. A crash after the logs are gone leaves
    /// the topic with empty partitions (created again on first use) and the client retries.
    pub fn delete_topic(&mut self, name: &str, now: Instant) -> Result<(), (i16, String)> {
        if !self.meta.can_write() {
            let e = MetadataError::NotController;
            return Err((e.error_code(), e.to_string()));
        }
        let now_ms = self.now_ms(now);
        let partitions: Vec<i32> = self
            .meta
            .image()
            .topic(name)
            .map(|t| t.partitions.iter().map(|p| p.partition).collect())
            .unwrap_or_default();
        for &p in &partitions {
            self.logs.delete(name, p).map_err(|e| {
                (
                    crate::protocol::error::UNKNOWN_SERVER_ERROR,
                    format!("deleting the log of {name}-{p}: {e}"),
                )
            })?;
        }
        self.meta
            .delete_topic(name, now_ms)
            .map_err(|e| (e.error_code(), e.to_string()))?;
        self.forget_topic_offsets(name, now);
        log::info!("deleted topic {name} ({} partitions)", partitions.len());
        Ok(())
    }

    /// Grows a topic to `total` partitions (their logs are created on first use).
    pub fn create_partitions(
        &mut self,
        name: &str,
        total: i32,
        now: Instant,
    ) -> Result<(), MetadataError> {
        let now_ms = self.now_ms(now);
        self.meta
            .create_partitions(name, total, self.config.node_id, now_ms)
            .map(|_| ())
    }

    /// Applies topic config changes (`None`: back to the default) to the metadata and to the
    /// topic's open logs, so that they take effect at once.
    pub fn alter_topic_configs(
        &mut self,
        topic: &str,
        changes: &[(String, Option<String>)],
        now: Instant,
    ) -> Result<(), MetadataError> {
        let now_ms = self.now_ms(now);
        self.meta.alter_topic_configs(topic, changes, now_ms)?;
        self.refresh_topic_logs(topic);
        Ok(())
    }

    /// Gives the open logs of `topic` its current configuration.
    pub(crate) fn refresh_topic_logs(&mut self, topic: &str) {
        let cfg = self.topic_log_config(topic);
        let n = self
            .meta
            .image()
            .topic(topic)
            .map_or(0, |t| t.partitions.len());
        for p in 0..n as i32 {
            if let Some(log) = self.logs.get_mut(topic, p) {
                log.set_config(cfg.clone());
            }
        }
    }

    /// Writes every partition's recovery point and log start offset checkpoints.
    pub(crate) fn checkpoint_logs(&mut self) -> std::io::Result<()> {
        self.logs.checkpoint().map_err(std::io::Error::other)
    }
}
