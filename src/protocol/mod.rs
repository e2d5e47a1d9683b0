//! The Kafka wire protocol: primitives, headers, messages. Knows bytes and versions, not topics.

pub mod apis;
pub mod error;
pub mod header;
pub mod messages;
pub mod wire;
