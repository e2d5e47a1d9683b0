//! The table of APIs this broker serves: key, name, version range and first flexible version.
//! It answers ApiVersions and decides header versions, so the two can never disagree.

use super::messages::*;

pub const PRODUCE: i16 = 0;
pub const FETCH: i16 = 1;
/// Broker to controller only (the controller listener).
pub const ALTER_PARTITION: i16 = 56;
pub const LIST_OFFSETS: i16 = 2;
pub const METADATA: i16 = 3;
pub const OFFSET_COMMIT: i16 = 8;
pub const OFFSET_FETCH: i16 = 9;
pub const FIND_COORDINATOR: i16 = 10;
pub const JOIN_GROUP: i16 = 11;
pub const HEARTBEAT: i16 = 12;
pub const LEAVE_GROUP: i16 = 13;
pub const SYNC_GROUP: i16 = 14;
pub const DESCRIBE_GROUPS: i16 = 15;
pub const LIST_GROUPS: i16 = 16;
pub const API_VERSIONS: i16 = 18;
pub const DELETE_GROUPS: i16 = 42;
pub const OFFSET_DELETE: i16 = 47;
pub const INIT_PRODUCER_ID: i16 = 22;
pub const CREATE_TOPICS: i16 = 19;
pub const DESCRIBE_TOPIC_PARTITIONS: i16 = 75;
pub const DELETE_TOPICS: i16 = 20;
pub const DELETE_RECORDS: i16 = 21;
pub const DESCRIBE_CONFIGS: i16 = 32;
pub const ALTER_CONFIGS: i16 = 33;
pub const DESCRIBE_LOG_DIRS: i16 = 35;
pub const ELECT_LEADERS: i16 = 43;
pub const CREATE_PARTITIONS: i16 = 37;
pub const INCREMENTAL_ALTER_CONFIGS: i16 = 44;
pub const DESCRIBE_CLUSTER: i16 = 60;
pub const ADD_PARTITIONS_TO_TXN: i16 = 24;
pub const ADD_OFFSETS_TO_TXN: i16 = 25;
pub const END_TXN: i16 = 26;
pub const WRITE_TXN_MARKERS: i16 = 27;
pub const TXN_OFFSET_COMMIT: i16 = 28;
pub const DESCRIBE_PRODUCERS: i16 = 61;
pub const DESCRIBE_TRANSACTIONS: i16 = 65;
pub const LIST_TRANSACTIONS: i16 = 66;
pub const OFFSET_FOR_LEADER_EPOCH: i16 = 23;
pub const DESCRIBE_QUORUM: i16 = 55;

#[derive(Debug, Clone, Copy)]
pub struct Api {
    pub key: i16,
    pub name: &'static str,
    pub min: i16,
    pub max: i16,
    pub first_flexible: i16,
}

macro_rules! api {
    ($name:literal, $m:ident) => {
        Api {
            key: $m::API_KEY,
            name: $name,
            min: $m::MIN_VERSION,
            max: $m::MAX_VERSION,
            first_flexible: $m::FIRST_FLEXIBLE,
        }
    };
}

/// Served APIs, ordered by key. Ranges come from Kafka's schemas (less unstable versions).
pub const APIS: &[Api] = &[
    api!("Produce", produce_request),
    api!("Fetch", fetch_request),
    api!("ListOffsets", list_offsets_request),
    api!("Metadata", metadata_request),
    api!("OffsetCommit", offset_commit_request),
    api!("OffsetFetch", offset_fetch_request),
    api!("FindCoordinator", find_coordinator_request),
    api!("JoinGroup", join_group_request),
    api!("Heartbeat", heartbeat_request),
    api!("LeaveGroup", leave_group_request),
    api!("SyncGroup", sync_group_request),
    api!("DescribeGroups", describe_groups_request),
    api!("ListGroups", list_groups_request),
    api!("ApiVersions", api_versions_request),
    api!("CreateTopics", create_topics_request),
    api!("DeleteTopics", delete_topics_request),
    api!("DeleteRecords", delete_records_request),
    api!("InitProducerId", init_producer_id_request),
    api!("OffsetForLeaderEpoch", offset_for_leader_epoch_request),
    api!("AddPartitionsToTxn", add_partitions_to_txn_request),
    api!("AddOffsetsToTxn", add_offsets_to_txn_request),
    api!("EndTxn", end_txn_request),
    api!("WriteTxnMarkers", write_txn_markers_request),
    api!("TxnOffsetCommit", txn_offset_commit_request),
    api!("DescribeConfigs", describe_configs_request),
    api!("AlterConfigs", alter_configs_request),
    api!("DescribeLogDirs", describe_log_dirs_request),
    api!("CreatePartitions", create_partitions_request),
    api!("DeleteGroups", delete_groups_request),
    api!("ElectLeaders", elect_leaders_request),
    api!("IncrementalAlterConfigs", incremental_alter_configs_request),
    api!("OffsetDelete", offset_delete_request),
    api!("DescribeQuorum", describe_quorum_request),
    api!("DescribeCluster", describe_cluster_request),
    api!("DescribeProducers", describe_producers_request),
    api!("DescribeTransactions", describe_transactions_request),
    // v2 filters by a Java regular expression (KIP-1152), which is not served: v0-1.
    Api {
        max: 1,
        ..api!("ListTransactions", list_transactions_request)
    },
    api!("DescribeTopicPartitions", describe_topic_partitions_request),
];

/// What a controller-only node serves on its controller listener (besides its private Raft
/// frames): ApiVersions answers from this table, and the header versions of these APIs come
/// from it too, so BrokerRegistration and BrokerHeartbeat are parsed like any other API.
pub const CONTROLLER_APIS: &[Api] = &[
    api!("CreateTopics", create_topics_request),
    api!("ApiVersions", api_versions_request),
    api!("DescribeQuorum", describe_quorum_request),
    api!("BrokerRegistration", broker_registration_request),
    api!("BrokerHeartbeat", broker_heartbeat_request),
    api!("AllocateProducerIds", allocate_producer_ids_request),
    api!("AlterPartition", alter_partition_request),
];

/// Whether a controller-listener API is served at this version.
pub fn is_controller_api(key: i16, version: i16) -> bool {
    CONTROLLER_APIS
        .iter()
        .any(|a| a.key == key && version >= a.min && version <= a.max)
}

pub fn find(key: i16) -> Option<&'static Api> {
    APIS.iter().find(|a| a.key == key)
}

pub fn is_supported(key: i16, version: i16) -> bool {
    find(key).is_some_and(|a| version >= a.min && version <= a.max)
}

/// Whether a request uses the flexible encoding (header v2). Unknown keys and versions are
/// treated as non-flexible; ApiVersions above our range is read as flexible, as Kafka does,
/// since a newer client sends its newest (flexible) header.
pub fn is_flexible(key: i16, version: i16) -> bool {
    let controller_only = || CONTROLLER_APIS.iter().find(|a| a.key == key);
    match find(key).or_else(controller_only) {
        Some(a) => version >= a.first_flexible,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_match_kafka_4_1() {
        let r = |k| find(k).map(|a| (a.min, a.max));
        assert_eq!(r(PRODUCE), Some((3, 13)));
        assert_eq!(r(FETCH), Some((4, 18)));
        assert_eq!(r(LIST_OFFSETS), Some((1, 9)));
        assert_eq!(r(METADATA), Some((0, 13)));
        assert_eq!(r(API_VERSIONS), Some((0, 4)));
        assert_eq!(r(CREATE_TOPICS), Some((2, 7)));
        assert_eq!(r(DESCRIBE_TOPIC_PARTITIONS), Some((0, 0)));
        assert_eq!(r(INIT_PRODUCER_ID), Some((0, 5)));
        assert_eq!(r(FIND_COORDINATOR), Some((0, 6)));
        assert_eq!(r(JOIN_GROUP), Some((0, 9)));
        assert_eq!(r(SYNC_GROUP), Some((0, 5)));
        assert_eq!(r(HEARTBEAT), Some((0, 4)));
        assert_eq!(r(LEAVE_GROUP), Some((0, 5)));
        assert_eq!(r(OFFSET_COMMIT), Some((2, 9)));
        assert_eq!(r(OFFSET_FETCH), Some((1, 9)));
        assert_eq!(r(DESCRIBE_GROUPS), Some((0, 6)));
        assert_eq!(r(LIST_GROUPS), Some((0, 5)));
        assert_eq!(r(DELETE_GROUPS), Some((0, 2)));
        assert_eq!(r(OFFSET_DELETE), Some((0, 0)));
        assert_eq!(r(DELETE_TOPICS), Some((1, 6)));
        assert_eq!(r(DELETE_RECORDS), Some((0, 2)));
        assert_eq!(r(DESCRIBE_CONFIGS), Some((1, 4)));
        assert_eq!(r(ALTER_CONFIGS), Some((0, 2)));
        assert_eq!(r(DESCRIBE_LOG_DIRS), Some((1, 4)));
        assert_eq!(r(CREATE_PARTITIONS), Some((0, 3)));
        assert_eq!(r(INCREMENTAL_ALTER_CONFIGS), Some((0, 1)));
        assert_eq!(r(DESCRIBE_CLUSTER), Some((0, 2)));
        assert_eq!(r(ADD_PARTITIONS_TO_TXN), Some((0, 5)));
        assert_eq!(r(ADD_OFFSETS_TO_TXN), Some((0, 4)));
        assert_eq!(r(END_TXN), Some((0, 5)));
        assert_eq!(r(WRITE_TXN_MARKERS), Some((1, 1)));
        assert_eq!(r(TXN_OFFSET_COMMIT), Some((0, 5)));
        assert_eq!(r(DESCRIBE_PRODUCERS), Some((0, 0)));
        assert_eq!(r(DESCRIBE_TRANSACTIONS), Some((0, 0)));
        assert_eq!(r(LIST_TRANSACTIONS), Some((0, 1)));
        // Ordered by key, as ApiVersions lists them.
        assert!(APIS.windows(2).all(|w| w[0].key < w[1].key));
    }
}
