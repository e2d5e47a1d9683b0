//! The topic admin APIs: deleting and growing topics, topic and broker configs, DeleteRecords,
//! and the cluster / log-dir descriptions.

pub mod cluster;
pub mod configs;
pub mod elect;
pub mod quorum;
pub mod records;
pub mod topics;

/// Kafka error codes only the admin APIs use.
pub const TOPIC_DELETION_DISABLED: i16 = 73;

/// Kafka's `ConfigResource.Type` codes.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
