//! The metadata image: what replaying the metadata log leaves behind.

use super::records::{resource_type, MetadataRecord, NO_LEADER_CHANGE};
use super::TopicId;
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionInfo {
    pub partition: i32,
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub adding_replicas: Vec<i32>,
    pub removing_replicas: Vec<i32>,
    pub leader_recovery_state: i8,
    /// The log directory id of each replica (empty when the log predates KIP-858).
    pub directories: Vec<TopicId>,
    pub eligible_leader_replicas: Vec<i32>,
    pub last_known_elr: Vec<i32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub id: TopicId,
    /// Sorted by partition index.
    pub partitions: Vec<PartitionInfo>,
    /// Topic-level config overrides (only the keys set for this topic).
    pub configs: BTreeMap<String, String>,
}

impl TopicInfo {
    pub fn partition(&self, index: i32) -> Option<&PartitionInfo> {
        self.partitions
            .binary_search_by_key(&index, |p| p.partition)
            .ok()
            .map(|i| &self.partitions[i])
    }
}

/// One listener of a registered broker (from its RegisterBrokerRecord).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerEndpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub security_protocol: i16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerInfo {
    pub id: i32,
    pub epoch: i64,
    pub endpoints: Vec<BrokerEndpoint>,
    pub rack: Option<String>,
    pub fenced: bool,
    /// Granted a controlled shutdown: no longer a leader or ISR member, not yet fenced.
    pub in_controlled_shutdown: bool,
}

#[derive(Default, Debug, Clone)]
pub struct MetadataImage {
    topics: BTreeMap<String, TopicInfo>,
    ids: HashMap<TopicId, String>,
    features: BTreeMap<String, i16>,
    brokers: BTreeMap<i32, BrokerInfo>,
    /// Configs by (resource type, resource name) for resources other than existing topics,
    /// including topic configs replayed before their TopicRecord.
    other_configs: BTreeMap<(i8, String), BTreeMap<String, String>>,
    next_producer_id: i64,
}

impl MetadataImage {
    pub fn topic(&self, name: &str) -> Option<&TopicInfo> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &TopicId) -> Option<&TopicInfo> {
        self.ids.get(id).and_then(|n| self.topics.get(n))
    }

    /// All topics, sorted by name.
    pub fn topics(&self) -> impl Iterator<Item = &TopicInfo> {
        self.topics.values()
    }

    pub fn topic_count(&self) -> usize {
        self.topics.len()
    }

    /// Finalized feature levels (e.g. `metadata.version`).
    pub fn features(&self) -> &BTreeMap<String, i16> {
        &self.features
    }

    pub fn feature(&self, name: &str) -> Option<i16> {
        self.features.get(name).copied()
    }

    /// Registered brokers, by id.
    pub fn brokers(&self) -> &BTreeMap<i32, BrokerInfo> {
        &self.brokers
    }

    /// Broker-level (or cluster-level, name "") dynamic configs.
    pub fn broker_configs(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        self.other_configs
            .get(&(resource_type::BROKER, name.to_string()))
    }

    /// The first producer id not yet handed out by a ProducerIdsRecord (0 if none).
    pub fn next_producer_id(&self) -> i64 {
        self.next_producer_id
    }

    /// Applies one record. Records that refer to unknown topics or partitions are ignored.
    pub fn apply(&mut self, rec: &MetadataRecord<'_>) {
        match rec {
            MetadataRecord::Topic(t) => {
                let (name, topic_id) = (t.name, &t.topic_id);
                if let Some(old) = self.topics.get(name) {
                    let old_id = old.id;
                    self.ids.remove(&old_id);
                }
                if let Some(old_name) = self.ids.get(topic_id).cloned() {
                    self.topics.remove(&old_name);
                }
                let configs = self
                    .other_configs
                    .remove(&(resource_type::TOPIC, name.to_string()))
                    .unwrap_or_default();
                self.ids.insert(*topic_id, name.to_string());
                self.topics.insert(
                    name.to_string(),
                    TopicInfo {
                        name: name.to_string(),
                        id: *topic_id,
                        partitions: Vec::new(),
                        configs,
                    },
                );
            }
            MetadataRecord::Partition(p) => {
                let Some(t) = self.topic_mut(&p.topic_id) else {
                    return;
                };
                let info = PartitionInfo {
                    partition: p.partition_id,
                    leader: p.leader,
                    leader_epoch: p.leader_epoch,
                    partition_epoch: p.partition_epoch,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    adding_replicas: p.adding_replicas.clone(),
                    removing_replicas: p.removing_replicas.clone(),
                    leader_recovery_state: p.leader_recovery_state,
                    directories: p.directories.clone(),
                    eligible_leader_replicas: p
                        .eligible_leader_replicas
                        .clone()
                        .unwrap_or_default(),
                    last_known_elr: p.last_known_elr.clone().unwrap_or_default(),
                };
                match t
                    .partitions
                    .binary_search_by_key(&p.partition_id, |x| x.partition)
                {
                    Ok(i) => t.partitions[i] = info,
                    Err(i) => t.partitions.insert(i, info),
                }
            }
            MetadataRecord::PartitionChange(c) => {
                let Some(t) = self.topic_mut(&c.topic_id) else {
                    return;
                };
                let Ok(i) = t
                    .partitions
                    .binary_search_by_key(&c.partition_id, |x| x.partition)
                else {
                    return;
                };
                // As Kafka's PartitionRegistration.merge: a new leader bumps the leader epoch;
                // every change bumps the partition epoch.
                let p = &mut t.partitions[i];
                if c.leader != NO_LEADER_CHANGE {
                    p.leader = c.leader;
                    p.leader_epoch = p.leader_epoch.wrapping_add(1);
                }
                if let Some(v) = &c.isr {
                    p.isr = v.clone();
                }
                if let Some(v) = &c.replicas {
                    p.replicas = v.clone();
                }
                if let Some(v) = &c.removing_replicas {
                    p.removing_replicas = v.clone();
                }
                if let Some(v) = &c.adding_replicas {
                    p.adding_replicas = v.clone();
                }
                if c.leader_recovery_state != -1 {
                    p.leader_recovery_state = c.leader_recovery_state;
                }
                if let Some(v) = &c.directories {
                    p.directories = v.clone();
                }
                if let Some(v) = &c.eligible_leader_replicas {
                    p.eligible_leader_replicas = v.clone();
                }
                if let Some(v) = &c.last_known_elr {
                    p.last_known_elr = v.clone();
                }
                p.partition_epoch = p.partition_epoch.wrapping_add(1);
            }
            MetadataRecord::Config(c) => {
                let rt = c.resource_type;
                let map = if rt == resource_type::TOPIC && self.topics.contains_key(c.resource_name)
                {
                    match self.topics.get_mut(c.resource_name) {
                        Some(t) => &mut t.configs,
                        None => return,
                    }
                } else {
                    self.other_configs
                        .entry((rt, c.resource_name.to_string()))
                        .or_default()
                };
                match c.value {
                    Some(v) => {
                        map.insert(c.name.to_string(), v.to_string());
                    }
                    None => {
                        map.remove(c.name);
                    }
                }
            }
            MetadataRecord::RemoveTopic(r) => {
                if let Some(name) = self.ids.remove(&r.topic_id) {
                    self.topics.remove(&name);
                }
            }
            MetadataRecord::FeatureLevel(f) => {
                if f.feature_level == 0 {
                    self.features.remove(f.name);
                } else {
                    self.features.insert(f.name.to_string(), f.feature_level);
                }
            }
            MetadataRecord::RegisterBroker(b) => {
                let endpoints = b
                    .end_points
                    .iter()
                    .map(|e| BrokerEndpoint {
                        name: e.name.to_string(),
                        host: e.host.to_string(),
                        port: e.port,
                        security_protocol: e.security_protocol,
                    })
                    .collect();
                self.brokers.insert(
                    b.broker_id,
                    BrokerInfo {
                        id: b.broker_id,
                        epoch: b.broker_epoch,
                        endpoints,
                        rack: b.rack.map(str::to_string),
                        fenced: b.fenced,
                        in_controlled_shutdown: b.in_controlled_shutdown,
                    },
                );
            }
            MetadataRecord::UnregisterBroker(u) => {
                self.brokers.remove(&u.broker_id);
            }
            MetadataRecord::FenceBroker(f) => {
                if let Some(b) = self.brokers.get_mut(&f.id) {
                    b.fenced = true;
                }
            }
            MetadataRecord::UnfenceBroker(u) => {
                if let Some(b) = self.brokers.get_mut(&u.id) {
                    b.fenced = false;
                }
            }
            // What Kafka 3.7+ writes instead of Fence/Unfence records, and how a controlled
            // shutdown is recorded: fenced -1 unfences, 1 fences, 0 leaves it.
            MetadataRecord::BrokerRegistrationChange(c) => {
                if let Some(b) = self.brokers.get_mut(&c.broker_id) {
                    if b.epoch == c.broker_epoch {
                        match c.fenced {
                            1 => b.fenced = true,
                            -1 => b.fenced = false,
                            _ => {}
                        }
                        if c.in_controlled_shutdown == 1 {
                            b.in_controlled_shutdown = true;
                        }
                    }
                }
            }
            MetadataRecord::ProducerIds(p) => {
                self.next_producer_id = self.next_producer_id.max(p.next_producer_id);
            }
            // Types the image does not hold (yet): controllers, ACLs, quotas, SCRAM
            // credentials, delegation tokens, transactions, ZK migration, no-ops.
            _ => {}
        }
    }

    /// The records that rebuild this image from nothing, encoded (a metadata snapshot's
    /// content, as Kafka's snapshots hold the records of the image): features, brokers, topics
    /// with their partitions and configs, other configs, the producer-id block.
    pub fn to_records(&self) -> Vec<Vec<u8>> {
        use super::records::{
            config_record::ConfigRecord,
            feature_level_record::FeatureLevelRecord,
            partition_record::PartitionRecord,
            producer_ids_record::ProducerIdsRecord,
            register_broker_record::{BrokerEndpoint as Endpoint, RegisterBrokerRecord},
            topic_record::TopicRecord,
        };
        let mut out = Vec::new();
        let mut push = |rec: MetadataRecord<'_>| {
            let mut b = Vec::new();
            rec.encode(&mut b);
            out.push(b);
        };
        for (name, level) in &self.features {
            push(MetadataRecord::FeatureLevel(FeatureLevelRecord {
                name,
                feature_level: *level,
            }));
        }
        for b in self.brokers.values() {
            push(MetadataRecord::RegisterBroker(RegisterBrokerRecord {
                broker_id: b.id,
                broker_epoch: b.epoch,
                end_points: b
                    .endpoints
                    .iter()
                    .map(|e| Endpoint {
                        name: &e.name,
                        host: &e.host,
                        port: e.port,
                        security_protocol: e.security_protocol,
                    })
                    .collect(),
                rack: b.rack.as_deref(),
                fenced: b.fenced,
                in_controlled_shutdown: b.in_controlled_shutdown,
                ..Default::default()
            }));
        }
        for t in self.topics.values() {
            push(MetadataRecord::Topic(TopicRecord {
                name: &t.name,
                topic_id: t.id,
            }));
            for (k, v) in &t.configs {
                push(MetadataRecord::Config(ConfigRecord {
                    resource_type: resource_type::TOPIC,
                    resource_name: &t.name,
                    name: k,
                    value: Some(v),
                }));
            }
            for p in &t.partitions {
                push(MetadataRecord::Partition(PartitionRecord {
                    partition_id: p.partition,
                    topic_id: t.id,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    removing_replicas: p.removing_replicas.clone(),
                    adding_replicas: p.adding_replicas.clone(),
                    leader: p.leader,
                    leader_recovery_state: p.leader_recovery_state,
                    leader_epoch: p.leader_epoch,
                    partition_epoch: p.partition_epoch,
                    directories: p.directories.clone(),
                    eligible_leader_replicas: Some(p.eligible_leader_replicas.clone()),
                    last_known_elr: Some(p.last_known_elr.clone()),
                }));
            }
        }
        for ((kind, name), configs) in &self.other_configs {
            for (k, v) in configs {
                push(MetadataRecord::Config(ConfigRecord {
                    resource_type: *kind,
                    resource_name: name,
                    name: k,
                    value: Some(v),
                }));
            }
        }
        if self.next_producer_id > 0 {
            push(MetadataRecord::ProducerIds(ProducerIdsRecord {
                broker_id: -1,
                broker_epoch: -1,
                next_producer_id: self.next_producer_id,
            }));
        }
        out
    }

    fn topic_mut(&mut self, id: &TopicId) -> Option<&mut TopicInfo> {
        let name = self.ids.get(id)?;
        self.topics.get_mut(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::records::{
        ConfigRecord, FeatureLevelRecord, PartitionChangeRecord, PartitionRecord,
        ProducerIdsRecord, RemoveTopicRecord, TopicRecord,
    };

    fn part(topic: TopicId, i: i32) -> MetadataRecord<'static> {
        MetadataRecord::Partition(PartitionRecord {
            partition_id: i,
            topic_id: topic,
            replicas: vec![1],
            isr: vec![1],
            removing_replicas: vec![],
            adding_replicas: vec![],
            leader: 1,
            leader_recovery_state: 0,
            leader_epoch: 0,
            partition_epoch: 0,
            directories: vec![],
            eligible_leader_replicas: None,
            last_known_elr: None,
        })
    }

    fn topic(name: &str, id: u8) -> MetadataRecord<'_> {
        MetadataRecord::Topic(TopicRecord {
            name,
            topic_id: [id; 16],
        })
    }

    fn config<'a>(res: &'a str, k: &'a str, v: Option<&'a str>) -> MetadataRecord<'a> {
        MetadataRecord::Config(ConfigRecord {
            resource_type: resource_type::TOPIC,
            resource_name: res,
            name: k,
            value: v,
        })
    }

    #[test]
    fn broker_registration_changes_fence_unfence_and_start_controlled_shutdown() {
        use crate::metadata::records::{
            BrokerRegistrationChangeRecord as Change, RegisterBrokerRecord,
        };
        let mut img = MetadataImage::default();
        img.apply(&MetadataRecord::RegisterBroker(RegisterBrokerRecord {
            broker_id: 2,
            broker_epoch: 7,
            fenced: true,
            ..Default::default()
        }));
        let change = |fenced, shutdown, epoch| {
            MetadataRecord::BrokerRegistrationChange(Change {
                broker_id: 2,
                broker_epoch: epoch,
                fenced,
                in_controlled_shutdown: shutdown,
                ..Default::default()
            })
        };
        let state = |img: &MetadataImage| {
            let b = &img.brokers()[&2];
            (b.fenced, b.in_controlled_shutdown)
        };
        img.apply(&change(-1, 0, 7));
        assert_eq!(state(&img), (false, false), "unfenced");
        img.apply(&change(0, 1, 6));
        assert_eq!(
            state(&img),
            (false, false),
            "another incarnation's change is ignored"
        );
        img.apply(&change(0, 1, 7));
        assert_eq!(state(&img), (false, true), "in controlled shutdown");
        // A snapshot keeps it; a new registration starts over.
        let mut copy = MetadataImage::default();
        for bytes in img.to_records() {
            copy.apply(&MetadataRecord::decode(&bytes).unwrap());
        }
        assert_eq!(state(&copy), (false, true));
        img.apply(&change(1, 0, 7));
        assert_eq!(state(&img), (true, true), "fenced");
        img.apply(&MetadataRecord::RegisterBroker(RegisterBrokerRecord {
            broker_id: 2,
            broker_epoch: 9,
            fenced: true,
            ..Default::default()
        }));
        assert_eq!(state(&img), (true, false));
    }

    #[test]
    fn topics_partitions_configs_and_removal() {
        let mut img = MetadataImage::default();
        img.apply(&config("b", "retention.ms", Some("5"))); // before its topic
        for r in [
            topic("b", 2),
            topic("a", 1),
            part([2; 16], 1),
            part([2; 16], 0),
        ] {
            img.apply(&r);
        }
        img.apply(&part([9; 16], 0)); // unknown topic: ignored
        img.apply(&config("b", "cleanup.policy", Some("compact")));
        img.apply(&config("b", "retention.ms", None));
        let names: Vec<&str> = img.topics().map(|t| t.name.as_str()).collect();
        assert_eq!(names, vec!["a", "b"]);
        let b = img.topic_by_id(&[2; 16]).unwrap();
        assert_eq!(b.name, "b");
        assert_eq!(
            b.partitions.iter().map(|p| p.partition).collect::<Vec<_>>(),
            vec![0, 1]
        );
        assert_eq!(b.configs.len(), 1);
        assert_eq!(b.configs["cleanup.policy"], "compact");
        img.apply(&MetadataRecord::RemoveTopic(RemoveTopicRecord {
            topic_id: [2; 16],
        }));
        assert!(img.topic("b").is_none());
        assert!(img.topic_by_id(&[2; 16]).is_none());
        assert_eq!(img.topic_count(), 1);
    }

    #[test]
    fn partition_change_moves_leader_and_epochs() {
        let mut img = MetadataImage::default();
        img.apply(&topic("t", 1));
        img.apply(&part([1; 16], 0));
        let mut c = PartitionChangeRecord {
            topic_id: [1; 16],
            partition_id: 0,
            ..Default::default()
        };
        c.isr = Some(vec![1, 2]);
        img.apply(&MetadataRecord::PartitionChange(c.clone()));
        let p = img.topic("t").unwrap().partition(0).unwrap().clone();
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (1, 0, 1));
        assert_eq!(p.isr, vec![1, 2]);
        c.isr = None;
        c.leader = 2;
        img.apply(&MetadataRecord::PartitionChange(c));
        let p = img.topic("t").unwrap().partition(0).unwrap();
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (2, 1, 2));
        assert_eq!(p.isr, vec![1, 2]);
    }

    #[test]
    fn features_and_brokers() {
        let mut img = MetadataImage::default();
        img.apply(&MetadataRecord::FeatureLevel(FeatureLevelRecord {
            name: "metadata.version",
            feature_level: 22,
        }));
        assert_eq!(img.feature("metadata.version"), Some(22));
        img.apply(&MetadataRecord::FeatureLevel(FeatureLevelRecord {
            name: "metadata.version",
            feature_level: 0,
        }));
        assert_eq!(img.feature("metadata.version"), None);
        img.apply(&MetadataRecord::ProducerIds(ProducerIdsRecord {
            broker_id: 1,
            broker_epoch: 0,
            next_producer_id: 1000,
        }));
        assert_eq!(img.next_producer_id(), 1000);
    }

    #[test]
    fn recreating_a_name_replaces_the_old_id() {
        let mut img = MetadataImage::default();
        img.apply(&topic("t", 1));
        img.apply(&topic("t", 2));
        assert!(img.topic_by_id(&[1; 16]).is_none());
        assert_eq!(img.topic("t").unwrap().id, [2; 16]);
    }

    #[test]
    fn an_image_rebuilds_itself_from_its_records() {
        use crate::metadata::records::register_broker_record::RegisterBrokerRecord;
        let mut img = MetadataImage::default();
        for r in [
            topic("b", 2),
            topic("a", 1),
            part([2; 16], 1),
            part([2; 16], 0),
            part([1; 16], 0),
            config("b", "cleanup.policy", Some("compact")),
            config("ghost", "retention.ms", Some("7")), // a topic not created (yet)
        ] {
            img.apply(&r);
        }
        img.apply(&MetadataRecord::FeatureLevel(FeatureLevelRecord {
            name: "metadata.version",
            feature_level: 22,
        }));
        img.apply(&MetadataRecord::RegisterBroker(RegisterBrokerRecord {
            broker_id: 4,
            broker_epoch: 12,
            rack: Some("r1"),
            fenced: false,
            ..Default::default()
        }));
        img.apply(&MetadataRecord::ProducerIds(ProducerIdsRecord {
            broker_id: 1,
            broker_epoch: 0,
            next_producer_id: 5000,
        }));
        let mut copy = MetadataImage::default();
        for bytes in img.to_records() {
            copy.apply(&MetadataRecord::decode(&bytes).unwrap());
        }
        assert_eq!(
            copy.topics().collect::<Vec<_>>(),
            img.topics().collect::<Vec<_>>()
        );
        assert_eq!(copy.topic_by_id(&[2; 16]).unwrap().name, "b");
        assert_eq!(copy.brokers(), img.brokers());
        assert_eq!(copy.features(), img.features());
        assert_eq!(copy.next_producer_id(), 5000);
        assert_eq!(copy.other_configs, img.other_configs);
        // And again: a snapshot of a restored image is the same snapshot.
        assert_eq!(copy.to_records(), img.to_records());
    }
}
