//! The Kafka wire protocol: primitives, headers, messages. Knows bytes and versions, not topics.

pub mod wire;
pub mod messages;
