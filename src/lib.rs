//! minikafka: a single-threaded, Kafka-wire-compatible broker.
//!
//! Layers: `reactor` (sockets, framing, timers) drives `broker` (sans-IO request handling), which
//! joins `protocol` (bytes and versions) with `log` (segments) and `metadata` (the KRaft image).

pub mod api;
pub mod broker;
pub mod cluster;
pub mod config;
pub mod contain;
pub mod format;
pub mod group;
pub mod kafka_uuid;
pub mod log;
pub mod metadata;
pub mod protocol;
pub mod raft;
pub mod reactor;
pub mod records;
pub mod replication;
pub mod server;
pub mod txn;

#[cfg(test)]
mod fuzzing;

#[cfg(test)]
pub(crate) mod test_util;
