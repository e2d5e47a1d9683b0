//! DescribeQuorum on a standalone node: a quorum of one, itself the leader, every metadata
//! record committed (what `kafka-metadata-quorum.sh describe --status` reads).

#[macro_use]
mod support;

use minikafka::protocol::messages::describe_quorum_request as rq;
use minikafka::protocol::messages::describe_quorum_response::DescribeQuorumResponse;
use support::*;

const DESCRIBE_QUORUM: i16 = 55;

#[test]
fn a_standalone_node_is_a_quorum_of_one() {
    let b = TestBroker::start("quorum");
    let mut c = b.client();
    c.create_topic("t", 3);
    for v in 0..=2 {
        let req = rq::DescribeQuorumRequest {
            topics: vec![rq::TopicData {
                topic_name: "__cluster_metadata",
                partitions: vec![rq::PartitionData { partition_index: 0 }],
            }],
        };
        let body = c.call(DESCRIBE_QUORUM, v, |w| req.encode(w, v));
        let r = decode!(DescribeQuorumResponse, &body, v);
        assert_eq!(r.error_code, 0, "v{v}");
        let p = &r.topics[0].partitions[0];
        let node = b.config.node_id;
        assert_eq!((p.leader_id, p.leader_epoch), (node, 1));
        assert!(p.high_watermark > 0, "the topic's records are committed");
        assert_eq!(p.current_voters.len(), 1);
        assert_eq!(p.current_voters[0].replica_id, node);
        assert_eq!(p.current_voters[0].log_end_offset, p.high_watermark);
        assert!(p.observers.is_empty());
        if v >= 2 {
            assert_eq!(r.nodes.len(), 1);
            assert_eq!(r.nodes[0].node_id, node);
        }
    }
    // Any other partition: UNKNOWN_TOPIC_OR_PARTITION, as Kafka's raft client answers.
    let req = rq::DescribeQuorumRequest {
        topics: vec![rq::TopicData {
            topic_name: "t",
            partitions: vec![rq::PartitionData { partition_index: 0 }],
        }],
    };
    let body = c.call(DESCRIBE_QUORUM, 2, |w| req.encode(w, 2));
    assert_eq!(decode!(DescribeQuorumResponse, &body, 2).error_code, 3);
}
