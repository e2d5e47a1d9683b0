//! The group coordinator: consumer groups with Kafka's classic rebalance protocol
//! (`coordinator`), and their committed offsets, kept in the internal compacted topic
//! `__consumer_offsets` (`offsets`). Both take `now` as a parameter and never read the clock.

pub mod coordinator;
pub mod offsets;

/// One member of a group as `__consumer_offsets` stores it (GroupMetadataValue's
/// MemberMetadata).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberSnapshot {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// The member's metadata for the group's chosen protocol.
    pub subscription: Vec<u8>,
    pub assignment: Vec<u8>,
}

/// A group's durable state (GroupMetadataValue): written after each rebalance and replayed at
/// start so members keep their generation across a broker restart.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupSnapshot {
    pub group_id: String,
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp: i64,
    pub members: Vec<MemberSnapshot>,
}
