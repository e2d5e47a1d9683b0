//! KRaft metadata records: the value of each record in `__cluster_metadata`.
//!
//! Layout (Kafka's `MetadataRecordSerde`): uvarint frameVersion (1), uvarint apiKey, uvarint
//! version, then the record in Kafka's flexible encoding (compact strings and arrays, uuids,
//! a tagged-field section at the end of every struct). Schemas: `kafka-spec/metadata/*.json`.
//! Types this broker does not use decode to `Unknown` with their raw body, so replay skips them.

use super::TopicId;
use crate::protocol::wire::{DResult, DecodeError, Reader, Writer};

/// The only frame version Kafka has written so far.
pub const FRAME_VERSION: u32 = 1;

/// Record type ids (`apiKey` in the schemas).
pub mod api {
    pub const REGISTER_BROKER: u16 = 0;
    pub const UNREGISTER_BROKER: u16 = 1;
    pub const TOPIC: u16 = 2;
    pub const PARTITION: u16 = 3;
    pub const CONFIG: u16 = 4;
    pub const PARTITION_CHANGE: u16 = 5;
    pub const FENCE_BROKER: u16 = 7;
    pub const UNFENCE_BROKER: u16 = 8;
    pub const REMOVE_TOPIC: u16 = 9;
    pub const FEATURE_LEVEL: u16 = 12;
    pub const PRODUCER_IDS: u16 = 15;
    pub const NO_OP: u16 = 20;
}

/// `ConfigRecord.ResourceType` values (Kafka's `ConfigResource.Type`).
pub mod resource_type {
    pub const TOPIC: i8 = 2;
    pub const BROKER: i8 = 4;
}

/// PartitionChangeRecord.Leader: "the leader did not change".
pub const NO_LEADER_CHANGE: i32 = -2;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerEndpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub security_protocol: i16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerFeature {
    pub name: String,
    pub min_supported: i16,
    pub max_supported: i16,
}

/// RegisterBrokerRecord (versions 0-3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerRegistration {
    pub broker_id: i32,
    pub is_migrating_zk_broker: bool,
    pub incarnation_id: TopicId,
    pub broker_epoch: i64,
    pub endpoints: Vec<BrokerEndpoint>,
    pub features: Vec<BrokerFeature>,
    pub rack: Option<String>,
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
    pub log_dirs: Vec<TopicId>,
}

/// PartitionRecord (versions 0-2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionRecord {
    pub partition_id: i32,
    pub topic_id: TopicId,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub removing_replicas: Vec<i32>,
    pub adding_replicas: Vec<i32>,
    pub leader: i32,
    pub leader_recovery_state: i8,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// v1+: the log directory of each replica.
    pub directories: Vec<TopicId>,
    /// v2+ (tagged).
    pub eligible_leader_replicas: Option<Vec<i32>>,
    pub last_known_elr: Option<Vec<i32>>,
}

/// PartitionChangeRecord (versions 0-2): `None` / `NO_LEADER_CHANGE` / -1 mean "unchanged".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionChange {
    pub partition_id: i32,
    pub topic_id: TopicId,
    pub isr: Option<Vec<i32>>,
    pub leader: i32,
    pub replicas: Option<Vec<i32>>,
    pub removing_replicas: Option<Vec<i32>>,
    pub adding_replicas: Option<Vec<i32>>,
    pub leader_recovery_state: i8,
    pub directories: Option<Vec<TopicId>>,
    pub eligible_leader_replicas: Option<Vec<i32>>,
    pub last_known_elr: Option<Vec<i32>>,
}

impl PartitionChange {
    /// A change of nothing for one partition (fill in what changes).
    pub fn new(topic_id: TopicId, partition_id: i32) -> PartitionChange {
        PartitionChange {
            partition_id,
            topic_id,
            isr: None,
            leader: NO_LEADER_CHANGE,
            replicas: None,
            removing_replicas: None,
            adding_replicas: None,
            leader_recovery_state: -1,
            directories: None,
            eligible_leader_replicas: None,
            last_known_elr: None,
        }
    }
}

/// One decoded metadata record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataRecord {
    RegisterBroker(BrokerRegistration),
    UnregisterBroker {
        broker_id: i32,
        broker_epoch: i64,
    },
    Topic {
        name: String,
        topic_id: TopicId,
    },
    Partition(PartitionRecord),
    /// `value: None` deletes the key.
    Config {
        resource_type: i8,
        resource_name: String,
        name: String,
        value: Option<String>,
    },
    PartitionChange(PartitionChange),
    FenceBroker {
        id: i32,
        epoch: i64,
    },
    UnfenceBroker {
        id: i32,
        epoch: i64,
    },
    RemoveTopic {
        topic_id: TopicId,
    },
    /// Level 0 removes the feature.
    FeatureLevel {
        name: String,
        level: i16,
    },
    ProducerIds {
        broker_id: i32,
        broker_epoch: i64,
        next_producer_id: i64,
    },
    NoOp,
    /// A type (or frame version) this broker does not interpret; kept raw.
    Unknown {
        api_key: u16,
        version: u16,
        body: Vec<u8>,
    },
}

impl MetadataRecord {
    /// The record type id.
    pub fn api_key(&self) -> u16 {
        match self {
            MetadataRecord::RegisterBroker(_) => api::REGISTER_BROKER,
            MetadataRecord::UnregisterBroker { .. } => api::UNREGISTER_BROKER,
            MetadataRecord::Topic { .. } => api::TOPIC,
            MetadataRecord::Partition(_) => api::PARTITION,
            MetadataRecord::Config { .. } => api::CONFIG,
            MetadataRecord::PartitionChange(_) => api::PARTITION_CHANGE,
            MetadataRecord::FenceBroker { .. } => api::FENCE_BROKER,
            MetadataRecord::UnfenceBroker { .. } => api::UNFENCE_BROKER,
            MetadataRecord::RemoveTopic { .. } => api::REMOVE_TOPIC,
            MetadataRecord::FeatureLevel { .. } => api::FEATURE_LEVEL,
            MetadataRecord::ProducerIds { .. } => api::PRODUCER_IDS,
            MetadataRecord::NoOp => api::NO_OP,
            MetadataRecord::Unknown { api_key, .. } => *api_key,
        }
    }

    /// Highest version this codec reads and writes for the record type.
    pub fn max_version(api_key: u16) -> u16 {
        match api_key {
            api::REGISTER_BROKER => 3,
            api::PARTITION | api::PARTITION_CHANGE => 2,
            _ => 0,
        }
    }

    /// The lowest version that can carry everything this record holds (what `encode` writes).
    pub fn version(&self) -> u16 {
        match self {
            MetadataRecord::Partition(p) => {
                if p.eligible_leader_replicas.is_some() || p.last_known_elr.is_some() {
                    2
                } else if !p.directories.is_empty() {
                    1
                } else {
                    0
                }
            }
            MetadataRecord::PartitionChange(c) => {
                if c.eligible_leader_replicas.is_some() || c.last_known_elr.is_some() {
                    2
                } else if c.directories.is_some() {
                    1
                } else {
                    0
                }
            }
            MetadataRecord::RegisterBroker(b) => {
                if !b.log_dirs.is_empty() {
                    3
                } else if b.is_migrating_zk_broker {
                    2
                } else if b.in_controlled_shutdown {
                    1
                } else {
                    0
                }
            }
            MetadataRecord::Unknown { version, .. } => *version,
            _ => 0,
        }
    }

    /// Encodes the full record value (frame header + body) at `self.version()`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.encode_version(self.version(), out)
    }

    /// Encodes at a given version (fields the version lacks are dropped).
    pub fn encode_version(&self, version: u16, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        w.uvarint(FRAME_VERSION);
        w.uvarint(self.api_key() as u32);
        w.uvarint(version as u32);
        let v = version;
        match self {
            MetadataRecord::RegisterBroker(b) => {
                w.i32(b.broker_id);
                if v >= 2 {
                    w.bool(b.is_migrating_zk_broker);
                }
                w.uuid(&b.incarnation_id);
                w.i64(b.broker_epoch);
                w.array_len(true, Some(b.endpoints.len()));
                for e in &b.endpoints {
                    w.compact_string(&e.name);
                    w.compact_string(&e.host);
                    w.u16(e.port);
                    w.i16(e.security_protocol);
                    w.uvarint(0);
                }
                w.array_len(true, Some(b.features.len()));
                for f in &b.features {
                    w.compact_string(&f.name);
                    w.i16(f.min_supported);
                    w.i16(f.max_supported);
                    w.uvarint(0);
                }
                w.compact_nullable_string(b.rack.as_deref());
                w.bool(b.fenced);
                if v >= 1 {
                    w.bool(b.in_controlled_shutdown);
                }
                if v >= 3 && !b.log_dirs.is_empty() {
                    w.uvarint(1);
                    w.tagged_field(0, |w| put_uuids(w, &b.log_dirs));
                } else {
                    w.uvarint(0);
                }
            }
            MetadataRecord::UnregisterBroker {
                broker_id,
                broker_epoch,
            } => {
                w.i32(*broker_id);
                w.i64(*broker_epoch);
                w.uvarint(0);
            }
            MetadataRecord::Topic { name, topic_id } => {
                w.compact_string(name);
                w.uuid(topic_id);
                w.uvarint(0);
            }
            MetadataRecord::Partition(p) => {
                w.i32(p.partition_id);
                w.uuid(&p.topic_id);
                put_i32s(&mut w, &p.replicas);
                put_i32s(&mut w, &p.isr);
                put_i32s(&mut w, &p.removing_replicas);
                put_i32s(&mut w, &p.adding_replicas);
                w.i32(p.leader);
                w.i32(p.leader_epoch);
                w.i32(p.partition_epoch);
                if v >= 1 {
                    put_uuids(&mut w, &p.directories);
                }
                let mut tags: Vec<(u32, TagWriter<'_>)> = Vec::new();
                if p.leader_recovery_state != 0 {
                    tags.push((0, Box::new(|w| w.i8(p.leader_recovery_state))));
                }
                if v >= 2 {
                    if let Some(elr) = &p.eligible_leader_replicas {
                        tags.push((1, Box::new(move |w| put_i32s(w, elr))));
                    }
                    if let Some(l) = &p.last_known_elr {
                        tags.push((2, Box::new(move |w| put_i32s(w, l))));
                    }
                }
                put_tags(&mut w, tags);
            }
            MetadataRecord::Config {
                resource_type,
                resource_name,
                name,
                value,
            } => {
                w.i8(*resource_type);
                w.compact_string(resource_name);
                w.compact_string(name);
                w.compact_nullable_string(value.as_deref());
                w.uvarint(0);
            }
            MetadataRecord::PartitionChange(c) => {
                w.i32(c.partition_id);
                w.uuid(&c.topic_id);
                let mut tags: Vec<(u32, TagWriter<'_>)> = Vec::new();
                if let Some(isr) = &c.isr {
                    tags.push((0, Box::new(move |w| put_i32s(w, isr))));
                }
                if c.leader != NO_LEADER_CHANGE {
                    tags.push((1, Box::new(|w| w.i32(c.leader))));
                }
                if let Some(r) = &c.replicas {
                    tags.push((2, Box::new(move |w| put_i32s(w, r))));
                }
                if let Some(r) = &c.removing_replicas {
                    tags.push((3, Box::new(move |w| put_i32s(w, r))));
                }
                if let Some(r) = &c.adding_replicas {
                    tags.push((4, Box::new(move |w| put_i32s(w, r))));
                }
                if c.leader_recovery_state != -1 {
                    tags.push((5, Box::new(|w| w.i8(c.leader_recovery_state))));
                }
                if v >= 2 {
                    if let Some(r) = &c.eligible_leader_replicas {
                        tags.push((6, Box::new(move |w| put_i32s(w, r))));
                    }
                    if let Some(r) = &c.last_known_elr {
                        tags.push((7, Box::new(move |w| put_i32s(w, r))));
                    }
                }
                if v >= 1 {
                    if let Some(d) = &c.directories {
                        tags.push((8, Box::new(move |w| put_uuids(w, d))));
                    }
                }
                put_tags(&mut w, tags);
            }
            MetadataRecord::FenceBroker { id, epoch }
            | MetadataRecord::UnfenceBroker { id, epoch } => {
                w.i32(*id);
                w.i64(*epoch);
                w.uvarint(0);
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                w.uuid(topic_id);
                w.uvarint(0);
            }
            MetadataRecord::FeatureLevel { name, level } => {
                w.compact_string(name);
                w.i16(*level);
                w.uvarint(0);
            }
            MetadataRecord::ProducerIds {
                broker_id,
                broker_epoch,
                next_producer_id,
            } => {
                w.i32(*broker_id);
                w.i64(*broker_epoch);
                w.i64(*next_producer_id);
                w.uvarint(0);
            }
            MetadataRecord::NoOp => w.uvarint(0),
            MetadataRecord::Unknown { body, .. } => w.bytes(body),
        }
    }

    /// Decodes a record value. Unknown types, unknown frame versions and versions newer than
    /// this codec knows how to read come back as `Unknown` (the frame makes them skippable).
    pub fn decode(value: &[u8]) -> DResult<MetadataRecord> {
        let mut r = Reader::new(value);
        let frame = r.uvarint()?;
        let api_key = r.uvarint()?;
        let version = r.uvarint()?;
        let (Ok(api_key), Ok(version)) = (u16::try_from(api_key), u16::try_from(version)) else {
            return Err(DecodeError::Invalid(
                "metadata record type or version out of range",
            ));
        };
        let known = matches!(
            api_key,
            api::REGISTER_BROKER
                | api::UNREGISTER_BROKER
                | api::TOPIC
                | api::PARTITION
                | api::CONFIG
                | api::PARTITION_CHANGE
                | api::FENCE_BROKER
                | api::UNFENCE_BROKER
                | api::REMOVE_TOPIC
                | api::FEATURE_LEVEL
                | api::PRODUCER_IDS
                | api::NO_OP
        );
        if frame != FRAME_VERSION || !known || version > Self::max_version(api_key) {
            return Ok(MetadataRecord::Unknown {
                api_key,
                version,
                body: r.rest().to_vec(),
            });
        }
        decode_body(api_key, version, &mut r)
    }
}

fn decode_body(api_key: u16, v: u16, r: &mut Reader<'_>) -> DResult<MetadataRecord> {
    let rec = match api_key {
        api::REGISTER_BROKER => {
            let broker_id = r.i32()?;
            let is_migrating_zk_broker = if v >= 2 { r.bool()? } else { false };
            let incarnation_id = r.uuid()?;
            let broker_epoch = r.i64()?;
            let n = r.array_len(true, 6)?.unwrap_or(0);
            let mut endpoints = Vec::with_capacity(n);
            for _ in 0..n {
                endpoints.push(BrokerEndpoint {
                    name: r.compact_string()?.to_string(),
                    host: r.compact_string()?.to_string(),
                    port: r.u16()?,
                    security_protocol: r.i16()?,
                });
                r.skip_tagged_fields()?;
            }
            let n = r.array_len(true, 6)?.unwrap_or(0);
            let mut features = Vec::with_capacity(n);
            for _ in 0..n {
                features.push(BrokerFeature {
                    name: r.compact_string()?.to_string(),
                    min_supported: r.i16()?,
                    max_supported: r.i16()?,
                });
                r.skip_tagged_fields()?;
            }
            let rack = r.compact_nullable_string()?.map(str::to_string);
            let fenced = r.bool()?;
            let in_controlled_shutdown = if v >= 1 { r.bool()? } else { false };
            let mut log_dirs = Vec::new();
            r.tagged_fields(|tag, sub| {
                if tag == 0 {
                    log_dirs = get_uuids(sub)?;
                }
                Ok(())
            })?;
            MetadataRecord::RegisterBroker(BrokerRegistration {
                broker_id,
                is_migrating_zk_broker,
                incarnation_id,
                broker_epoch,
                endpoints,
                features,
                rack,
                fenced,
                in_controlled_shutdown,
                log_dirs,
            })
        }
        api::UNREGISTER_BROKER => {
            let rec = MetadataRecord::UnregisterBroker {
                broker_id: r.i32()?,
                broker_epoch: r.i64()?,
            };
            r.skip_tagged_fields()?;
            rec
        }
        api::TOPIC => {
            let rec = MetadataRecord::Topic {
                name: r.compact_string()?.to_string(),
                topic_id: r.uuid()?,
            };
            r.skip_tagged_fields()?;
            rec
        }
        api::PARTITION => {
            let partition_id = r.i32()?;
            let topic_id = r.uuid()?;
            let replicas = get_i32s(r)?;
            let isr = get_i32s(r)?;
            let removing_replicas = get_i32s(r)?;
            let adding_replicas = get_i32s(r)?;
            let leader = r.i32()?;
            let leader_epoch = r.i32()?;
            let partition_epoch = r.i32()?;
            let directories = if v >= 1 { get_uuids(r)? } else { Vec::new() };
            let mut leader_recovery_state = 0;
            let mut elr = None;
            let mut last_known_elr = None;
            r.tagged_fields(|tag, sub| {
                match tag {
                    0 => leader_recovery_state = sub.i8()?,
                    1 => elr = get_nullable_i32s(sub)?,
                    2 => last_known_elr = get_nullable_i32s(sub)?,
                    _ => {}
                }
                Ok(())
            })?;
            MetadataRecord::Partition(PartitionRecord {
                partition_id,
                topic_id,
                replicas,
                isr,
                removing_replicas,
                adding_replicas,
                leader,
                leader_recovery_state,
                leader_epoch,
                partition_epoch,
                directories,
                eligible_leader_replicas: elr,
                last_known_elr,
            })
        }
        api::CONFIG => {
            let rec = MetadataRecord::Config {
                resource_type: r.i8()?,
                resource_name: r.compact_string()?.to_string(),
                name: r.compact_string()?.to_string(),
                value: r.compact_nullable_string()?.map(str::to_string),
            };
            r.skip_tagged_fields()?;
            rec
        }
        api::PARTITION_CHANGE => {
            let mut c = PartitionChange::new(TopicId::default(), -1);
            c.partition_id = r.i32()?;
            c.topic_id = r.uuid()?;
            r.tagged_fields(|tag, sub| {
                match tag {
                    0 => c.isr = get_nullable_i32s(sub)?,
                    1 => c.leader = sub.i32()?,
                    2 => c.replicas = get_nullable_i32s(sub)?,
                    3 => c.removing_replicas = get_nullable_i32s(sub)?,
                    4 => c.adding_replicas = get_nullable_i32s(sub)?,
                    5 => c.leader_recovery_state = sub.i8()?,
                    6 => c.eligible_leader_replicas = get_nullable_i32s(sub)?,
                    7 => c.last_known_elr = get_nullable_i32s(sub)?,
                    8 => c.directories = get_nullable_uuids(sub)?,
                    _ => {}
                }
                Ok(())
            })?;
            MetadataRecord::PartitionChange(c)
        }
        api::FENCE_BROKER | api::UNFENCE_BROKER => {
            let (id, epoch) = (r.i32()?, r.i64()?);
            r.skip_tagged_fields()?;
            if api_key == api::FENCE_BROKER {
                MetadataRecord::FenceBroker { id, epoch }
            } else {
                MetadataRecord::UnfenceBroker { id, epoch }
            }
        }
        api::REMOVE_TOPIC => {
            let rec = MetadataRecord::RemoveTopic {
                topic_id: r.uuid()?,
            };
            r.skip_tagged_fields()?;
            rec
        }
        api::FEATURE_LEVEL => {
            let rec = MetadataRecord::FeatureLevel {
                name: r.compact_string()?.to_string(),
                level: r.i16()?,
            };
            r.skip_tagged_fields()?;
            rec
        }
        api::PRODUCER_IDS => {
            let rec = MetadataRecord::ProducerIds {
                broker_id: r.i32()?,
                broker_epoch: r.i64()?,
                next_producer_id: r.i64()?,
            };
            r.skip_tagged_fields()?;
            rec
        }
        api::NO_OP => {
            r.skip_tagged_fields()?;
            MetadataRecord::NoOp
        }
        _ => {
            return Ok(MetadataRecord::Unknown {
                api_key,
                version: v,
                body: r.rest().to_vec(),
            })
        }
    };
    Ok(rec)
}

fn get_i32s(r: &mut Reader<'_>) -> DResult<Vec<i32>> {
    get_nullable_i32s(r)?.ok_or(DecodeError::UnexpectedNull("int32 array"))
}

fn get_nullable_i32s(r: &mut Reader<'_>) -> DResult<Option<Vec<i32>>> {
    match r.array_len(true, 4)? {
        None => Ok(None),
        Some(n) => (0..n).map(|_| r.i32()).collect::<DResult<_>>().map(Some),
    }
}

fn get_uuids(r: &mut Reader<'_>) -> DResult<Vec<TopicId>> {
    get_nullable_uuids(r)?.ok_or(DecodeError::UnexpectedNull("uuid array"))
}

fn get_nullable_uuids(r: &mut Reader<'_>) -> DResult<Option<Vec<TopicId>>> {
    match r.array_len(true, 16)? {
        None => Ok(None),
        Some(n) => (0..n).map(|_| r.uuid()).collect::<DResult<_>>().map(Some),
    }
}

fn put_i32s(w: &mut Writer<'_>, v: &[i32]) {
    w.array_len(true, Some(v.len()));
    for x in v {
        w.i32(*x);
    }
}

fn put_uuids(w: &mut Writer<'_>, v: &[TopicId]) {
    w.array_len(true, Some(v.len()));
    for x in v {
        w.uuid(x);
    }
}

/// Writes the value of one tagged field.
type TagWriter<'a> = Box<dyn Fn(&mut Writer<'_>) + 'a>;

/// Writes a tagged-field section; `tags` must be in ascending tag order.
fn put_tags(w: &mut Writer<'_>, tags: Vec<(u32, TagWriter<'_>)>) {
    w.uvarint(tags.len() as u32);
    for (tag, f) in tags {
        w.tagged_field(tag, |w| f(w));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uuid(b: u8) -> TopicId {
        [b; 16]
    }

    fn round_trip(rec: &MetadataRecord, version: u16) -> MetadataRecord {
        let mut buf = Vec::new();
        rec.encode_version(version, &mut buf);
        let back = MetadataRecord::decode(&buf).unwrap();
        // Re-encoding what we decoded gives the same bytes.
        let mut again = Vec::new();
        back.encode_version(version, &mut again);
        assert_eq!(buf, again, "{rec:?} v{version}");
        back
    }

    fn partition(v: u16) -> PartitionRecord {
        PartitionRecord {
            partition_id: 3,
            topic_id: uuid(7),
            replicas: vec![1, 2],
            isr: vec![1],
            removing_replicas: vec![2],
            adding_replicas: vec![],
            leader: 1,
            leader_recovery_state: 1,
            leader_epoch: 5,
            partition_epoch: 9,
            directories: if v >= 1 {
                vec![uuid(1), uuid(2)]
            } else {
                vec![]
            },
            eligible_leader_replicas: (v >= 2).then(|| vec![2]),
            last_known_elr: (v >= 2).then(Vec::new),
        }
    }

    fn change(v: u16) -> PartitionChange {
        PartitionChange {
            partition_id: 0,
            topic_id: uuid(3),
            isr: Some(vec![1, 2]),
            leader: 2,
            replicas: Some(vec![2, 1]),
            removing_replicas: Some(vec![]),
            adding_replicas: None,
            leader_recovery_state: 0,
            directories: (v >= 1).then(|| vec![uuid(9)]),
            eligible_leader_replicas: (v >= 2).then(|| vec![1]),
            last_known_elr: (v >= 2).then(|| vec![2]),
        }
    }

    fn broker(v: u16) -> BrokerRegistration {
        BrokerRegistration {
            broker_id: 1,
            is_migrating_zk_broker: v >= 2,
            incarnation_id: uuid(4),
            broker_epoch: 12,
            endpoints: vec![BrokerEndpoint {
                name: "PLAINTEXT".into(),
                host: "localhost".into(),
                port: 9092,
                security_protocol: 0,
            }],
            features: vec![BrokerFeature {
                name: "metadata.version".into(),
                min_supported: 7,
                max_supported: 25,
            }],
            rack: if v == 1 { Some("r1".into()) } else { None },
            fenced: true,
            in_controlled_shutdown: v >= 1,
            log_dirs: if v >= 3 { vec![uuid(5)] } else { vec![] },
        }
    }

    #[test]
    fn every_type_round_trips_at_every_version() {
        for v in 0..=2 {
            let p = MetadataRecord::Partition(partition(v));
            assert_eq!(round_trip(&p, v), p);
            assert_eq!(p.version(), v);
            let c = MetadataRecord::PartitionChange(change(v));
            assert_eq!(round_trip(&c, v), c);
            assert_eq!(c.version(), v);
        }
        for v in 0..=3 {
            let b = MetadataRecord::RegisterBroker(broker(v));
            assert_eq!(round_trip(&b, v), b);
            assert_eq!(b.version(), v);
        }
        for rec in [
            MetadataRecord::Topic {
                name: "foo".into(),
                topic_id: uuid(1),
            },
            MetadataRecord::Config {
                resource_type: resource_type::TOPIC,
                resource_name: "foo".into(),
                name: "cleanup.policy".into(),
                value: Some("compact".into()),
            },
            MetadataRecord::Config {
                resource_type: resource_type::BROKER,
                resource_name: "".into(),
                name: "x".into(),
                value: None,
            },
            MetadataRecord::RemoveTopic { topic_id: uuid(2) },
            MetadataRecord::FeatureLevel {
                name: "metadata.version".into(),
                level: 25,
            },
            MetadataRecord::UnregisterBroker {
                broker_id: 2,
                broker_epoch: 3,
            },
            MetadataRecord::FenceBroker { id: 1, epoch: 2 },
            MetadataRecord::UnfenceBroker { id: 1, epoch: 2 },
            MetadataRecord::ProducerIds {
                broker_id: 1,
                broker_epoch: -1,
                next_producer_id: 2000,
            },
            MetadataRecord::NoOp,
        ] {
            assert_eq!(round_trip(&rec, 0), rec);
            assert_eq!(rec.version(), 0);
        }
    }

    #[test]
    fn a_partition_change_of_nothing_is_minimal() {
        let c = MetadataRecord::PartitionChange(PartitionChange::new(uuid(1), 4));
        let mut buf = Vec::new();
        c.encode(&mut buf);
        assert_eq!(buf.len(), 3 + 4 + 16 + 1);
        assert_eq!(MetadataRecord::decode(&buf).unwrap(), c);
    }

    #[test]
    fn topic_record_golden_bytes() {
        let rec = MetadataRecord::Topic {
            name: "foo".into(),
            topic_id: [
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00, 0x91,
            ],
        };
        let mut buf = Vec::new();
        rec.encode(&mut buf);
        // frame 1, type 2, version 0, compact "foo", uuid, no tagged fields: the bytes of a
        // TopicRecord in a Kafka 3.x/4.x metadata log.
        let golden: &[u8] = &[
            0x01, 0x02, 0x00, 0x04, b'f', b'o', b'o', 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40,
            0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x91, 0x00,
        ];
        assert_eq!(buf, golden);
        assert_eq!(MetadataRecord::decode(golden).unwrap(), rec);
    }

    #[test]
    fn partition_record_v1_as_kafka_writes_it() {
        // A PartitionRecord v1 from a Kafka 3.7 log: partition 0, replicas [1], isr [1],
        // leader 1, epochs 0, one directory, no tagged fields.
        let mut b = vec![0x01, 0x03, 0x01];
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&[0xAB; 16]);
        b.extend_from_slice(&[0x02, 0, 0, 0, 1]); // replicas
        b.extend_from_slice(&[0x02, 0, 0, 0, 1]); // isr
        b.extend_from_slice(&[0x01, 0x01]); // removing, adding
        b.extend_from_slice(&1i32.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes());
        b.push(0x02);
        b.extend_from_slice(&[0xCD; 16]);
        b.push(0x00);
        match MetadataRecord::decode(&b).unwrap() {
            MetadataRecord::Partition(p) => {
                assert_eq!(p.replicas, vec![1]);
                assert_eq!(p.isr, vec![1]);
                assert_eq!(p.leader, 1);
                assert_eq!(p.directories, vec![[0xCD; 16]]);
                assert_eq!(p.topic_id, [0xAB; 16]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_types_versions_and_tags_are_skippable() {
        // Type 21 (ZkMigrationRecord), frame version 2, a future PartitionRecord v9.
        for value in [
            &[0x01, 21, 0, 0x05, 0x00][..],
            &[0x02, 2, 0, 1, 2, 3],
            &[1, 3, 9, 0],
        ] {
            match MetadataRecord::decode(value).unwrap() {
                MetadataRecord::Unknown { .. } => {}
                other => panic!("{other:?}"),
            }
        }
        // An unknown tag on a TopicRecord is ignored.
        let mut b = vec![0x01, 0x02, 0x00, 0x02, b'x'];
        b.extend_from_slice(&[1; 16]);
        b.extend_from_slice(&[0x01, 0x63, 0x02, 0xAA, 0xBB]);
        assert_eq!(
            MetadataRecord::decode(&b).unwrap(),
            MetadataRecord::Topic {
                name: "x".into(),
                topic_id: [1; 16]
            }
        );
    }

    #[test]
    fn truncated_or_hostile_values_are_errors() {
        let mut buf = Vec::new();
        MetadataRecord::Partition(partition(2)).encode_version(2, &mut buf);
        for n in 3..buf.len() - 1 {
            assert!(MetadataRecord::decode(&buf[..n]).is_err(), "prefix {n}");
        }
        // A replicas array claiming 2^31 entries.
        let mut b = vec![0x01, 0x03, 0x00, 0, 0, 0, 0];
        b.extend_from_slice(&[0; 16]);
        b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x07]);
        assert!(MetadataRecord::decode(&b).is_err());
        assert!(MetadataRecord::decode(&[]).is_err());
        assert!(MetadataRecord::decode(&[0x01, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }
}
