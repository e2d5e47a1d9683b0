//! The broker side of groups: parked JoinGroup/SyncGroup requests, the internal
//! `__consumer_offsets` topic, writing offset and group records to it, and replaying it at start.

use super::{Broker, ParkedGroupRequest};
use crate::api::groups::{encode_join, encode_sync};
use crate::group::coordinator::{Completion, Waiter};
use crate::group::offsets::{partition_for, OffsetStore, Replayed, OFFSETS_TOPIC};
use crate::protocol::error::{self, ErrorCode};
use crate::protocol::header::RequestHeader;
use crate::reactor::ConnId;
use crate::records::batches;
use std::time::Instant;

type Records = Vec<(Vec<u8>, Option<Vec<u8>>)>;

impl Broker {
    /// Registers a JoinGroup/SyncGroup that may be answered later; returns its waiter id.
    pub(crate) fn park_group_request(
        &mut self,
        conn: ConnId,
        hdr: &RequestHeader<'static>,
    ) -> Waiter {
        self.next_waiter += 1;
        let w = self.next_waiter;
        self.group_waiters
            .insert(w, ParkedGroupRequest { conn, hdr: *hdr });
        w
    }

    /// The request was answered at once after all.
    pub(crate) fn unpark_group_request(&mut self, waiter: Waiter) {
        self.group_waiters.remove(&waiter);
    }

    /// Moves answers to parked group requests into the reactor's completions.
    pub(super) fn collect_group_completions(&mut self) {
        let mut done = Vec::new();
        self.groups.take_completions(&mut done);
        for c in done {
            let (waiter, bytes) = match &c {
                Completion::Join(w, r) => match self.group_waiters.get(w) {
                    Some(p) => (*w, encode_join(&p.hdr, r)),
                    None => continue,
                },
                Completion::Sync(w, r) => match self.group_waiters.get(w) {
                    Some(p) => (*w, encode_sync(&p.hdr, r)),
                    None => continue,
                },
            };
            if let Some(p) = self.group_waiters.remove(&waiter) {
                self.completions.push((p.conn, bytes));
            }
        }
    }

    /// Forgets the parked group requests of a closed connection.
    pub(super) fn drop_group_requests_of(&mut self, conn: ConnId) {
        let gone: Vec<Waiter> = self
            .group_waiters
            .iter()
            .filter(|(_, p)| p.conn == conn)
            .map(|(w, _)| *w)
            .collect();
        for w in gone {
            self.group_waiters.remove(&w);
            self.groups.cancel_waiter(w);
        }
    }

    /// The client host Kafka reports for a member: "/" and the peer's IP.
    pub(crate) fn peer_host(&self, conn: ConnId) -> String {
        self.peers
            .get(&conn)
            .map_or_else(|| "/unknown".to_string(), |a| format!("/{}", a.ip()))
    }

    /// Creates `__consumer_offsets` (compacted, internal) on first use. False if it cannot be.
    pub(crate) fn ensure_offsets_topic(&mut self, now: Instant) -> bool {
        if self.meta.image().topic(OFFSETS_TOPIC).is_some() {
            return true;
        }
        let configs = [
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("compression.type".to_string(), "producer".to_string()),
            ("segment.bytes".to_string(), "104857600".to_string()),
        ];
        let partitions = self.config.offsets_topic_num_partitions.max(1);
        let rf = self.config.offsets_topic_replication_factor.max(1);
        match self.create_topic(OFFSETS_TOPIC, partitions, rf, &configs, now) {
            Ok(()) => true,
            // Asked of the active controller (a cluster node that is not it).
            Err(e) if Self::not_controller(&e) => false,
            Err(e) => {
                log::error!("creating {OFFSETS_TOPIC}: {e}");
                false
            }
        }
    }

    /// Appends offset or group records for `group` to its `__consumer_offsets` partition and,
    /// once written, applies them to the offset store.
    pub(crate) fn append_group_records(
        &mut self,
        group: &str,
        records: Records,
        now: Instant,
    ) -> Result<(), ErrorCode> {
        if records.is_empty() {
            return Ok(());
        }
        if !self.ensure_offsets_topic(now) {
            return Err(error::COORDINATOR_NOT_AVAILABLE);
        }
        let partitions = self
            .meta
            .image()
            .topic(OFFSETS_TOPIC)
            .map_or(1, |t| t.partitions.len() as i32);
        let p = partition_for(group, partitions);
        // Replicated: written only while enough replicas are in sync (Kafka appends group
        // records with acks=-1 and answers NOT_ENOUGH_REPLICAS as COORDINATOR_NOT_AVAILABLE).
        if let Some(Err(_)) = self.replicated_append_check(OFFSETS_TOPIC, p, -1) {
            return Err(error::COORDINATOR_NOT_AVAILABLE);
        }
        let now_ms = self.clock.ms(now);
        let mut batch = OffsetStore::batch(&records, now_ms);
        // Batches carry the leader epoch they were written in (followers compare them).
        let epoch = self.leader_epoch_of(OFFSETS_TOPIC, p);
        let Some(log) = self.partition_log_mut(OFFSETS_TOPIC, p, now) else {
            return Err(error::COORDINATOR_NOT_AVAILABLE);
        };
        if let Err(e) = log.append(&mut batch, now_ms, epoch) {
            log::error!("writing to {OFFSETS_TOPIC}-{p}: {e}");
            // Kafka's group coordinator: a storage error means this broker cannot coordinate
            // the group now (NOT_COORDINATOR, the client looks it up again); a record too
            // large is UNKNOWN_SERVER_ERROR.
            return Err(match e {
                crate::log::LogError::Offline | crate::log::LogError::Io(_) => {
                    error::NOT_COORDINATOR
                }
                _ => error::UNKNOWN_SERVER_ERROR,
            });
        }
        // Followers of a replicated __consumer_offsets partition fetch it at once.
        self.note_append(OFFSETS_TOPIC, p);
        for (k, v) in &records {
            if let Err(e) = self.offsets.apply(k, v.as_deref()) {
                log::error!("applying a {OFFSETS_TOPIC} record: {e}");
            }
        }
        Ok(())
    }

    /// After a write of `group`'s records: its `__consumer_offsets` partition and the offset
    /// the in-sync replicas must reach, when the partition is replicated and they are not
    /// there yet (None: nothing to wait for).
    pub(crate) fn group_records_end(&self, group: &str) -> Option<(i32, i64)> {
        let n = self.meta.image().topic(OFFSETS_TOPIC)?.partitions.len() as i32;
        let p = partition_for(group, n);
        let hw = self.replicated_high_watermark(OFFSETS_TOPIC, p)?;
        let end = self.logs.get(OFFSETS_TOPIC, p)?.log_end_offset();
        (hw < end).then_some((p, end))
    }

    /// Deletes every group's committed offsets of a deleted topic (as Kafka does), so a
    /// re-created topic of the same name starts without them.
    pub(crate) fn forget_topic_offsets(&mut self, topic: &str, now: Instant) {
        let groups: Vec<String> = self
            .offsets
            .groups()
            .iter()
            .map(|g| g.to_string())
            .collect();
        for g in groups {
            let parts: Vec<(String, i32)> = self
                .offsets
                .group_offsets(&g)
                .into_iter()
                .filter(|(t, _, _)| *t == topic)
                .map(|(t, p, _)| (t.to_string(), p))
                .collect();
            if parts.is_empty() {
                continue;
            }
            let refs: Vec<(&str, i32)> = parts.iter().map(|(t, p)| (t.as_str(), *p)).collect();
            let tombstones = self.offsets.offset_tombstones(&g, &refs);
            if let Err(code) = self.append_group_records(&g, tombstones, now) {
                log::error!("deleting offsets of {topic} for group {g}: error {code}");
            }
        }
    }

    /// Writes committed offsets (already validated) for a group.
    pub(crate) fn commit_offsets(
        &mut self,
        group: &str,
        commits: &[(&str, i32, crate::group::offsets::CommittedOffset)],
        now: Instant,
    ) -> Result<(), ErrorCode> {
        let records = OffsetStore::commit_records(group, commits);
        self.append_group_records(group, records, now)
    }

    /// Writes the state of groups that changed (a new generation, emptied, deleted). Returns the
    /// groups whose record could not be written, with the error for their members.
    pub(crate) fn persist_dirty_groups(&mut self, now: Instant) -> Vec<(String, ErrorCode)> {
        let mut failed = Vec::new();
        let now_ms = self.clock.ms(now);
        for g in self.groups.take_dirty() {
            let record = match self.groups.snapshot(&g) {
                Some(s) => {
                    if s.members.is_empty() {
                        self.offsets.mark_empty(&g, now_ms);
                    } else {
                        self.offsets.mark_active(&g);
                    }
                    OffsetStore::group_record(&s)
                }
                None => {
                    self.offsets.mark_empty(&g, now_ms);
                    OffsetStore::group_tombstone(&g)
                }
            };
            if let Err(code) = self.append_group_records(&g, vec![record], now) {
                log::error!("persisting group {g}: error {code}");
                failed.push((g, code));
            }
        }
        failed
    }

    /// Deletes offsets past `offsets.retention.minutes`, as tombstones in the log.
    pub(super) fn expire_offsets(&mut self, now: Instant) {
        let now_ms = self.clock.ms(now);
        let retention = self.config.offsets_retention_ms;
        for (group, tombstones) in self.offsets.expired(now_ms, retention) {
            log::info!(
                "expiring {} committed offsets of group {group}",
                tombstones.len()
            );
            if let Err(code) = self.append_group_records(&group, tombstones, now) {
                log::error!("expiring offsets of group {group}: error {code}");
            }
        }
    }

    /// Replays `__consumer_offsets` at start: committed offsets and group states.
    pub(super) fn load_groups(&mut self, now: Instant) {
        let Some(t) = self.meta.image().topic(OFFSETS_TOPIC) else {
            return;
        };
        let partitions: Vec<i32> = (0..t.partitions.len() as i32).collect();
        self.load_groups_of(&partitions, now);
    }

    /// Replays some partitions of `__consumer_offsets`: at start, and when this broker becomes
    /// the leader of one (its replica holds what the previous coordinator wrote).
    pub(super) fn load_groups_of(&mut self, partitions: &[i32], now: Instant) {
        let mut buf = Vec::new();
        // The last state of each group wins; a tombstone leaves nothing to restore.
        let mut latest: std::collections::HashMap<String, Option<crate::group::GroupSnapshot>> =
            std::collections::HashMap::new();
        for &p in partitions {
            let Some(log) = self.logs.get(OFFSETS_TOPIC, p) else {
                continue;
            };
            let mut offset = log.log_start_offset();
            let end = log.log_end_offset();
            while offset < end {
                buf.clear();
                if let Err(e) = log.read(offset, 8 << 20, true, &mut buf) {
                    log::error!("reading {OFFSETS_TOPIC}-{p} at {offset}: {e}");
                    break;
                }
                let Some(next) = batches(&buf)
                    .filter_map(Result::ok)
                    .map(|(h, _)| h.last_offset() + 1)
                    .last()
                else {
                    break;
                };
                match self.offsets.replay(&buf) {
                    Ok(seen) => {
                        for r in seen {
                            match r {
                                Replayed::Group(s) => {
                                    latest.insert(s.group_id.clone(), Some(s));
                                }
                                Replayed::GroupDeleted(g) => {
                                    latest.insert(g, None);
                                }
                                _ => {}
                            }
                        }
                    }
                    Err(e) => log::error!("replaying {OFFSETS_TOPIC}-{p} at {offset}: {e}"),
                }
                offset = next;
            }
        }
        let mut restored = 0;
        for s in latest.into_values().flatten() {
            restored += 1;
            self.groups.restore(s, now);
        }
        // Restoring is not a change to write back.
        let _ = self.groups.take_dirty();
        log::info!("loaded {restored} group states from {OFFSETS_TOPIC} {partitions:?}");
    }
}
