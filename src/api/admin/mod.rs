//! The topic admin APIs: deleting and growing topics, topic and broker configs, DeleteRecords,
//! and the cluster / log-dir descriptions.

pub mod cluster;
pub mod configs;
pub mod quorum;
pub mod records;
pub mod topics;

use crate::broker::Broker;

/// Kafka error codes only the admin APIs use.
pub const TOPIC_DELETION_DISABLED: i16 = 73;

/// Kafka's `ConfigResource.Type` codes.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// Gives each partition log of `topic` the topic's current log config, so a config change
/// takes effect at once.
pub(crate) fn refresh_topic_logs(b: &mut Broker, topic: &str) {
    let cfg = b.topic_log_config(topic);
    let n = b
        .meta
        .image()
        .topic(topic)
        .map_or(0, |t| t.partitions.len());
    for p in 0..n as i32 {
        if let Some(log) = b.logs.get_mut(topic, p) {
            log.set_config(cfg.clone());
        }
    }
}
