//! The broker as one of several: which partitions it leads, which brokers the cluster has,
//! who the active controller is, and how committed metadata reaches its image.
//!
//! A standalone broker has no `ClusterView`: it leads every partition and lists itself. In a
//! cluster (`crate::cluster::node`) the image follows what the controller quorum commits, the
//! broker serves only the partitions it leads, and what it cannot write itself (an internal
//! topic, a block of producer ids) becomes a [`Wish`] the node sends to the active controller.

use super::Broker;
use crate::metadata::records::MetadataRecord;
use crate::metadata::{MetadataError, MetadataImage};
use std::time::Instant;

/// A change this broker needs from the active controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wish {
    /// A topic the broker would create itself on a single node (an internal topic, an
    /// auto-created one).
    CreateTopic {
        name: String,
        partitions: i32,
        replication_factor: i16,
        configs: Vec<(String, String)>,
    },
    /// A block of producer ids (AllocateProducerIds).
    ProducerIds,
    /// Transaction markers for partitions another broker leads (WriteTxnMarkers to it).
    Markers {
        broker: i32,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        partitions: Vec<(String, i32)>,
    },
}

/// What a broker in a cluster knows about the cluster.
#[derive(Debug, Default)]
pub struct ClusterView {
    /// The active controller's node id, when one is known.
    pub active_controller: Option<i32>,
    /// The name of the listener clients use (the endpoint Metadata reports of each broker).
    pub listener: String,
    /// Changes to ask the active controller for, collected by the node each turn.
    pub wishes: Vec<Wish>,
    groups_loaded: bool,
    txns_loaded: bool,
    /// The `__transaction_state` partitions this broker led at the last refresh.
    led_txn_partitions: std::collections::HashSet<i32>,
}

/// A broker as Metadata and DescribeCluster list it.
pub struct BrokerAddress {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
    pub fenced: bool,
}

impl ClusterView {
    pub fn new(listener: &str) -> ClusterView {
        ClusterView {
            listener: listener.to_string(),
            ..Default::default()
        }
    }
}

impl Broker {
    pub fn in_cluster(&self) -> bool {
        self.cluster.is_some()
    }

    /// Whether this broker leads the partition (always, on a single node).
    pub fn leads(&self, topic: &str, partition: i32) -> bool {
        if self.cluster.is_none() {
            return true;
        }
        self.meta
            .image()
            .topic(topic)
            .and_then(|t| t.partition(partition))
            .is_some_and(|p| {
                p.leader == self.config.node_id
                    && self.leads_replicated(topic, partition, p.replicas.len())
            })
    }

    /// A partition that exists and another broker of the cluster leads (NOT_LEADER_OR_FOLLOWER
    /// rather than UNKNOWN_TOPIC_OR_PARTITION). Never on a single node, where it costs nothing.
    pub fn led_elsewhere(&self, topic: &str, partition: i32) -> bool {
        self.cluster.is_some()
            && self
                .meta
                .image()
                .topic(topic)
                .and_then(|t| t.partition(partition))
                .is_some_and(|p| {
                    p.leader != self.config.node_id
                        || !self.leads_replicated(topic, partition, p.replicas.len())
                })
    }

    /// The replicas Metadata lists offline: on a single node all of them when its log is
    /// offline; in a cluster those on brokers that are fenced or gone, and this broker's when
    /// its log is offline.
    pub fn offline_replicas(&self, topic: &str, p: &crate::metadata::PartitionInfo) -> Vec<i32> {
        let here_offline = || self.partition_offline(topic, p.partition);
        if self.cluster.is_none() {
            return if here_offline() {
                p.replicas.clone()
            } else {
                Vec::new()
            };
        }
        let brokers = self.meta.image().brokers();
        p.replicas
            .iter()
            .copied()
            .filter(|&r| {
                brokers.get(&r).is_none_or(|b| b.fenced)
                    || (r == self.config.node_id && here_offline())
            })
            .collect()
    }

    /// The active controller (DescribeCluster): in a cluster the quorum's leader when it is
    /// known and reachable, else this node (which forwards); this node on a single node.
    pub fn controller_id(&self) -> i32 {
        match &self.cluster {
            Some(c) => c.active_controller.unwrap_or(-1),
            None => self.config.node_id,
        }
    }

    /// The controller Metadata names: where clients send CreateTopics and the other
    /// controller-bound requests. In a cluster this is this broker, as Kafka's KRaft brokers
    /// answer (they forward those requests to the active controller): a client never waits on
    /// a controller that just died. DescribeCluster names the active controller itself.
    pub fn metadata_controller_id(&self) -> i32 {
        match &self.cluster {
            Some(c) if c.active_controller.is_some() => self.config.node_id,
            Some(_) => -1,
            None => self.config.node_id,
        }
    }

    /// The brokers clients may use: this one alone on a single node; in a cluster every
    /// registered broker, with its endpoint of the client listener (fenced ones only when
    /// `with_fenced`, as DescribeCluster may ask).
    pub fn broker_addresses(&self, with_fenced: bool) -> Vec<BrokerAddress> {
        let Some(c) = &self.cluster else {
            return vec![BrokerAddress {
                id: self.config.node_id,
                host: self.config.advertised_host.clone(),
                port: self.config.advertised_port as i32,
                rack: None,
                fenced: false,
            }];
        };
        self.meta
            .image()
            .brokers()
            .values()
            .filter(|b| with_fenced || !b.fenced)
            .filter_map(|b| {
                let e = b
                    .endpoints
                    .iter()
                    .find(|e| e.name.eq_ignore_ascii_case(&c.listener))
                    .or_else(|| b.endpoints.first())?;
                Some(BrokerAddress {
                    id: b.id,
                    host: e.host.clone(),
                    port: e.port as i32,
                    rack: b.rack.clone(),
                    fenced: b.fenced,
                })
            })
            .collect()
    }

    /// Whether this broker coordinates the transactional id (leads its partition of
    /// `__transaction_state`); always on a single node.
    pub fn coordinates_txn(&self, transactional_id: &str) -> bool {
        if self.cluster.is_none() {
            return true;
        }
        let Some(t) = self
            .meta
            .image()
            .topic(crate::txn::log::TRANSACTION_STATE_TOPIC)
        else {
            return false;
        };
        let p = crate::txn::log::partition_for(transactional_id, t.partitions.len() as i32);
        t.partition(p).is_some_and(|p| {
            p.leader == self.config.node_id
                && self.leads_replicated(
                    crate::txn::log::TRANSACTION_STATE_TOPIC,
                    p.partition,
                    p.replicas.len(),
                )
        })
    }

    /// Where a broker of the cluster is reached by clients.
    pub fn broker_address(&self, id: i32) -> Option<BrokerAddress> {
        self.broker_addresses(false)
            .into_iter()
            .find(|b| b.id == id)
    }

    /// A topic this node cannot create itself (a cluster node that is not the active
    /// controller): asked of the controller, once.
    pub(crate) fn wish(&mut self, wish: Wish) {
        if let Some(c) = self.cluster.as_mut() {
            if !c.wishes.contains(&wish) {
                c.wishes.push(wish);
            }
        }
    }

    /// Records the quorum committed, in order (a node that is not the writer).
    pub fn apply_metadata(&mut self, records: &[Vec<u8>], now: Instant) {
        let mut removed = Vec::new();
        let mut changed = Vec::new();
        for bytes in records {
            let rec = match MetadataRecord::decode(bytes) {
                Ok(r) => r,
                Err(e) => {
                    log::warn!("committed metadata record not understood: {e}");
                    continue;
                }
            };
            match &rec {
                MetadataRecord::RemoveTopic(r) => {
                    if let Some(t) = self.meta.image().topic_by_id(&r.topic_id) {
                        removed.push((t.name.clone(), t.partitions.len() as i32));
                    }
                }
                MetadataRecord::Config(c) if c.resource_type == 2 => {
                    changed.push(c.resource_name.to_string());
                }
                _ => {}
            }
            self.meta.apply_committed(&rec);
        }
        self.after_metadata(removed, changed, now);
    }

    /// The image as the quorum committed it (this node stopped being the writer, or a
    /// snapshot replaced the log).
    pub fn reset_metadata(&mut self, image: MetadataImage, now: Instant) {
        let removed: Vec<(String, i32)> = self
            .meta
            .image()
            .topics()
            .filter(|t| image.topic(&t.name).is_none_or(|n| n.id != t.id))
            .map(|t| (t.name.clone(), t.partitions.len() as i32))
            .collect();
        let changed: Vec<String> = image.topics().map(|t| t.name.clone()).collect();
        self.meta.reset_image(image);
        self.after_metadata(removed, changed, now);
    }

    fn after_metadata(
        &mut self,
        removed: Vec<(String, i32)>,
        mut changed: Vec<String>,
        now: Instant,
    ) {
        for (name, partitions) in removed {
            for p in 0..partitions {
                if self.logs.get(&name, p).is_some() {
                    if let Err(e) = self.logs.delete(&name, p) {
                        log::error!("deleting the log of {name}-{p}: {e}");
                    }
                }
            }
            self.forget_topic_offsets(&name, now);
            log::info!("topic {name} deleted by the controller");
        }
        changed.sort();
        changed.dedup();
        for name in changed {
            self.refresh_topic_logs(&name);
        }
        self.refresh_roles(now);
    }

    /// What this broker coordinates follows what it leads: the groups of the
    /// `__consumer_offsets` partitions it leads; groups and transactions are loaded once their
    /// topic is known (at start the image comes from the quorum, after the logs were opened).
    pub fn refresh_roles(&mut self, now: Instant) {
        if self.cluster.is_none() {
            return;
        }
        self.refresh_replicas(now);
        // The groups coordinated here: those whose offsets partition this broker leads.
        let node = self.config.node_id;
        let owned = self
            .meta
            .image()
            .topic(crate::group::offsets::OFFSETS_TOPIC)
            .map(|t| {
                let led: std::collections::HashSet<i32> = t
                    .partitions
                    .iter()
                    .filter(|p| {
                        p.leader == node
                            && self.leads_replicated(
                                crate::group::offsets::OFFSETS_TOPIC,
                                p.partition,
                                p.replicas.len(),
                            )
                    })
                    .map(|p| p.partition)
                    .collect();
                (t.partitions.len() as i32, led)
            })
            .unwrap_or_default();
        let before = self.groups.owned_partitions();
        let gained: Vec<i32> = owned
            .1
            .iter()
            .copied()
            .filter(|p| !before.contains(p))
            .collect();
        self.groups.set_owned(Some(owned));
        // A coordinator that moved here reads its groups from the replica it now leads.
        let groups_loaded = self.cluster.as_ref().is_some_and(|c| c.groups_loaded);
        if groups_loaded && !gained.is_empty() {
            self.load_groups_of(&gained, now);
        }
        // Transactions likewise: the `__transaction_state` partitions led here.
        let txn_topic = crate::txn::log::TRANSACTION_STATE_TOPIC;
        let led_txn: std::collections::HashSet<i32> = self
            .meta
            .image()
            .topic(txn_topic)
            .map(|t| {
                t.partitions
                    .iter()
                    .filter(|p| {
                        p.leader == node
                            && self.leads_replicated(txn_topic, p.partition, p.replicas.len())
                    })
                    .map(|p| p.partition)
                    .collect()
            })
            .unwrap_or_default();
        let (txns_loaded, before) = match &self.cluster {
            Some(c) => (c.txns_loaded, c.led_txn_partitions.clone()),
            None => return,
        };
        let gained: Vec<i32> = led_txn
            .iter()
            .copied()
            .filter(|p| !before.contains(p))
            .collect();
        if let Some(c) = self.cluster.as_mut() {
            c.led_txn_partitions = led_txn;
        }
        if txns_loaded && !gained.is_empty() {
            self.load_txns_of(&gained, now);
        }
        let (groups, txns) = match &self.cluster {
            Some(c) => (c.groups_loaded, c.txns_loaded),
            None => return,
        };
        if !groups
            && self
                .meta
                .image()
                .topic(crate::group::offsets::OFFSETS_TOPIC)
                .is_some()
        {
            self.load_groups(now);
            if let Some(c) = self.cluster.as_mut() {
                c.groups_loaded = true;
            }
        }
        if !txns
            && self
                .meta
                .image()
                .topic(crate::txn::log::TRANSACTION_STATE_TOPIC)
                .is_some()
        {
            self.load_txns(now);
            if let Some(c) = self.cluster.as_mut() {
                c.txns_loaded = true;
            }
        }
    }

    /// Whether a metadata error means "ask the controller" rather than a failure.
    pub(crate) fn not_controller(e: &MetadataError) -> bool {
        matches!(e, MetadataError::NotController)
    }
}
