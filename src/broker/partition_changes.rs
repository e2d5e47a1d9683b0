//! Partition changes decided on the active controller's node, by the broker that writes the
//! metadata there (the one writer of partition state, as Kafka's QuorumController is):
//! AlterPartition requests from leaders (ISR shrink and expand), and leader elections when a
//! broker is fenced, shuts down or comes back (`crate::replication::election`'s rules).

use super::Broker;
use crate::metadata::records::{MetadataRecord, PartitionChangeRecord};
use crate::metadata::{MetadataImage, PartitionInfo, TopicId};
use crate::protocol::error::ErrorCode;
use crate::replication::election::{self, PartitionChange, Registration};
use crate::replication::{AlterPartitionAnswer, AlterPartitionRequest, BrokerStatus};
use std::time::Instant;

fn registration(p: &PartitionInfo) -> Registration {
    Registration {
        replicas: p.replicas.clone(),
        isr: p.isr.clone(),
        leader: p.leader,
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        leader_recovering: p.leader_recovery_state == 1,
    }
}

pub(crate) fn broker_status(image: &MetadataImage, id: i32) -> Option<BrokerStatus> {
    image.brokers().get(&id).map(|b| BrokerStatus {
        epoch: b.epoch,
        fenced: b.fenced,
        in_controlled_shutdown: b.in_controlled_shutdown,
    })
}

fn record(topic_id: TopicId, partition: i32, c: &PartitionChange) -> MetadataRecord<'static> {
    MetadataRecord::PartitionChange(PartitionChangeRecord {
        partition_id: partition,
        topic_id,
        isr: c.isr.clone(),
        leader: c.leader.unwrap_or(-2),
        leader_recovery_state: c.leader_recovering.map_or(-1, |r| r as i8),
        ..Default::default()
    })
}

impl Broker {
    /// AlterPartition for one partition, decided here (the active controller's writer): the
    /// change is written to the metadata log (answered once committed, by the node) and the
    /// partition's state after it returned; or the error Kafka answers.
    pub(crate) fn decide_alter_partition(
        &mut self,
        topic_id: &TopicId,
        partition: i32,
        request: &AlterPartitionRequest,
        version: i16,
        now: Instant,
    ) -> Result<AlterPartitionAnswer, ErrorCode> {
        use crate::protocol::error;
        if !self.meta.can_write() {
            return Err(crate::replication::NOT_CONTROLLER);
        }
        let image = self.meta.image();
        let Some(topic) = image.topic_by_id(topic_id) else {
            return Err(error::UNKNOWN_TOPIC_ID);
        };
        let Some(p) = topic.partition(partition) else {
            return Err(error::UNKNOWN_TOPIC_OR_PARTITION);
        };
        let (change, answer) =
            election::alter_partition(&registration(p), request, version, |id| {
                broker_status(image, id)
            })?;
        if let Some(c) = change {
            let name = topic.name.clone();
            let rec = record(*topic_id, partition, &c);
            let now_ms = self.clock.ms(now);
            if let Err(e) = self.meta.append(&[rec], now_ms) {
                log::warn!("AlterPartition of {name}-{partition}: {e}");
                return Err(e.error_code());
            }
        }
        Ok(answer)
    }

    /// After brokers were fenced, unfenced or registered: every partition whose ISR holds a
    /// broker that is no longer active loses it (the last member stays, with no leader), and
    /// every partition without a leader gets one from its ISR (or, with
    /// `unclean.leader.election.enable`, from any live replica). Only the writer decides.
    /// Returns how many partitions changed.
    pub fn elect_after_broker_changes(&mut self, now: Instant) -> usize {
        if !self.meta.can_write() || self.cluster.is_none() {
            return 0;
        }
        let unclean = self.config.unclean_leader_election_enable;
        let image = self.meta.image();
        let active = |id: i32| broker_status(image, id).is_some_and(|s| s.is_active());
        let mut records = Vec::new();
        for t in image.topics() {
            for p in &t.partitions {
                let mut reg = registration(p);
                let mut merged: Option<PartitionChange> = None;
                let gone: Vec<i32> = reg.isr.iter().copied().filter(|&r| !active(r)).collect();
                for b in gone {
                    if let Some(c) = election::remove_broker(&reg, b, unclean, active) {
                        reg = c.apply(&reg);
                        merged = Some(merge(merged, c));
                    }
                }
                if reg.leader < 0 || !active(reg.leader) {
                    if let Some(c) = election::elect_leader(&reg, unclean, active) {
                        reg = c.apply(&reg);
                        merged = Some(merge(merged, c));
                    }
                }
                if let Some(c) = merged {
                    log::info!(
                        "{}-{}: leader {}, isr {:?}",
                        t.name,
                        p.partition,
                        reg.leader,
                        reg.isr
                    );
                    records.push(record(t.id, p.partition, &c));
                }
            }
        }
        let n = records.len();
        if n > 0 {
            let now_ms = self.clock.ms(now);
            if let Err(e) = self.meta.append(&records, now_ms) {
                log::warn!("writing {n} leader election(s): {e}");
                return 0;
            }
        }
        n
    }
}

/// One topic's ElectLeaders results: (partition, error, message).
pub type ElectionResults = Vec<(String, Vec<(i32, ErrorCode, Option<String>)>)>;

impl Broker {
    /// ElectLeaders (Kafka's `ReplicationControlManager.electLeaders`): a preferred (0) or
    /// unclean (1) election for the partitions named, or for every partition (`None`; then
    /// those that need none are left out of the answer). Decided here, the active
    /// controller's writer.
    pub(crate) fn elect_leaders_request(
        &mut self,
        election_type: i8,
        partitions: Option<Vec<(String, Vec<i32>)>>,
        now: Instant,
    ) -> Result<ElectionResults, ErrorCode> {
        use crate::protocol::error;
        use crate::replication::ElectionType;
        let kind = match election_type {
            0 => ElectionType::Preferred,
            1 => ElectionType::Unclean,
            _ => return Err(error::INVALID_REQUEST),
        };
        if !self.meta.can_write() {
            return Err(crate::replication::NOT_CONTROLLER);
        }
        let image = self.meta.image();
        let all = partitions.is_none();
        let asked: Vec<(String, Vec<i32>)> = partitions.unwrap_or_else(|| {
            image
                .topics()
                .map(|t| {
                    (
                        t.name.clone(),
                        t.partitions.iter().map(|p| p.partition).collect(),
                    )
                })
                .collect()
        });
        let active = |id: i32| broker_status(image, id).is_some_and(|s| s.is_active());
        let mut records = Vec::new();
        let mut results = Vec::new();
        for (topic, parts) in asked {
            let mut out = Vec::new();
            for p in parts {
                let verdict = match image
                    .topic(&topic)
                    .and_then(|t| Some((t.id, t.partition(p)?)))
                {
                    None => Err((error::UNKNOWN_TOPIC_OR_PARTITION, None)),
                    Some((id, info)) => election::elect_leaders(&registration(info), kind, active)
                        .map(|c| records.push(record(id, p, &c)))
                        .map_err(|code| (code, None)),
                };
                match verdict {
                    Ok(()) => out.push((p, error::NONE, None)),
                    Err((crate::replication::ELECTION_NOT_NEEDED, _)) if all => {}
                    Err((code, message)) => out.push((p, code, message)),
                }
            }
            results.push((topic, out));
        }
        if !records.is_empty() {
            let now_ms = self.clock.ms(now);
            self.meta
                .append(&records, now_ms)
                .map_err(|e| e.error_code())?;
        }
        Ok(results)
    }

    /// `auto.leader.rebalance.enable`: every `leader.imbalance.check.interval.seconds`, each
    /// broker that leads fewer than its preferred share of partitions by more than
    /// `leader.imbalance.per.broker.percentage` gets its preferred leaderships back (where it
    /// is alive and in sync). Returns how many partitions changed.
    pub fn rebalance_leaders(&mut self, now: Instant) -> usize {
        use std::collections::HashMap;
        if !self.config.auto_leader_rebalance_enable
            || !self.meta.can_write()
            || self.cluster.is_none()
        {
            return 0;
        }
        let image = self.meta.image();
        let active = |id: i32| broker_status(image, id).is_some_and(|s| s.is_active());
        // Per preferred broker: its partitions, and those another broker leads.
        type Share = (usize, Vec<(TopicId, i32, Registration)>);
        let mut share: HashMap<i32, Share> = HashMap::new();
        for t in image.topics() {
            for p in &t.partitions {
                let reg = registration(p);
                let preferred = reg.preferred_replica();
                let e = share.entry(preferred).or_default();
                e.0 += 1;
                if reg.leader != preferred {
                    e.1.push((t.id, p.partition, reg));
                }
            }
        }
        let limit = self.config.leader_imbalance_per_broker_percentage as f64 / 100.0;
        let mut records = Vec::new();
        for (_, (total, off)) in share {
            if total == 0 || (off.len() as f64 / total as f64) <= limit {
                continue;
            }
            for (id, p, reg) in off {
                if let Ok(c) = election::elect_leaders(
                    &reg,
                    crate::replication::ElectionType::Preferred,
                    active,
                ) {
                    records.push(record(id, p, &c));
                }
            }
        }
        let n = records.len();
        if n > 0 {
            log::info!("moving {n} partition leaderships back to their preferred replicas");
            let now_ms = self.clock.ms(now);
            if let Err(e) = self.meta.append(&records, now_ms) {
                log::warn!("preferred leader elections: {e}");
                return 0;
            }
        }
        n
    }
}

/// Two changes to one partition as one record: the later one's fields win.
fn merge(first: Option<PartitionChange>, then: PartitionChange) -> PartitionChange {
    match first {
        None => then,
        Some(f) => PartitionChange {
            leader: then.leader.or(f.leader),
            isr: then.isr.or(f.isr),
            leader_recovering: then.leader_recovering.or(f.leader_recovering),
        },
    }
}
