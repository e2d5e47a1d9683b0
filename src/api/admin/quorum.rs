//! DescribeQuorum: the metadata quorum's voters, leader, epoch, high watermark and each voter's
//! log end offset and lag (what `kafka-metadata-quorum.sh describe --status/--replication`
//! shows). A standalone node is a quorum of one: itself, leader of epoch 1 (what a freshly
//! formatted Kafka node reaches when it elects itself), with every record committed as written.

use crate::api::encode;
use crate::broker::{Broker, Outcome};
use crate::protocol::error;
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::describe_quorum_request::DescribeQuorumRequest;
use crate::protocol::messages::describe_quorum_response::*;
use crate::protocol::wire::{DResult, Reader};
use std::time::Instant;

const METADATA_TOPIC: &str = "__cluster_metadata";

/// The epoch a standalone node's quorum is in.
const STANDALONE_EPOCH: i32 = 1;

/// What a node knows of the quorum, for [`respond`].
pub struct QuorumView {
    /// NONE, or LEADER_NOT_AVAILABLE while there is no leader.
    pub error: i16,
    pub leader: i32,
    pub epoch: i32,
    pub high_watermark: i64,
    pub voters: Vec<ReplicaState>,
}

/// Decodes a DescribeQuorum request and answers it from `view` (asked only for
/// `__cluster_metadata-0`; any other partition is UNKNOWN_TOPIC_OR_PARTITION, as Kafka's raft
/// client answers) and `nodes` (v2: the voters' endpoints).
pub fn respond(
    hdr: &RequestHeader<'_>,
    body: &[u8],
    view: impl FnOnce() -> QuorumView,
    nodes: Vec<Node<'_>>,
) -> DResult<Vec<u8>> {
    let v = hdr.api_version;
    let req = DescribeQuorumRequest::decode(&mut Reader::new(body), v)?;
    let asks_metadata = matches!(&req.topics[..], [t] if t.topic_name == METADATA_TOPIC
        && matches!(&t.partitions[..], [p] if p.partition_index == 0));
    let resp = if !asks_metadata {
        DescribeQuorumResponse {
            error_code: error::UNKNOWN_TOPIC_OR_PARTITION,
            error_message: Some(
                "The request asks for a topic or partition that is not the metadata log",
            ),
            ..Default::default()
        }
    } else {
        let q = view();
        DescribeQuorumResponse {
            error_code: error::NONE,
            error_message: None,
            topics: vec![TopicData {
                topic_name: METADATA_TOPIC,
                partitions: vec![PartitionData {
                    partition_index: 0,
                    error_code: q.error,
                    error_message: None,
                    leader_id: q.leader,
                    leader_epoch: q.epoch,
                    high_watermark: q.high_watermark,
                    current_voters: q.voters,
                    observers: Vec::new(),
                }],
            }],
            nodes,
        }
    };
    Ok(encode(hdr, |w| resp.encode(w, v)))
}

pub fn describe_quorum(
    b: &mut Broker,
    hdr: &RequestHeader<'_>,
    body: &[u8],
    now: Instant,
) -> DResult<Outcome> {
    let node = b.config().node_id;
    let now_ms = b.now_ms(now);
    let end = b.metadata().next_offset();
    let me = ReplicaState {
        replica_id: node,
        replica_directory_id: *b.metadata().directory_id(),
        log_end_offset: end,
        last_fetch_timestamp: now_ms,
        last_caught_up_timestamp: now_ms,
    };
    let (host, port) = match (
        &b.config().quorum.controller_listener,
        b.config().quorum.voters.first(),
    ) {
        (_, Some(voter)) => (voter.host.clone(), voter.port),
        (Some((h, p)), None) => (h.clone(), *p),
        (None, None) => (
            b.config().advertised_host.clone(),
            b.config().advertised_port,
        ),
    };
    let host = if host.is_empty() {
        b.config().advertised_host.clone()
    } else {
        host
    };
    let listener = b
        .config()
        .quorum
        .controller_listener_names
        .first()
        .cloned()
        .unwrap_or_else(|| "CONTROLLER".to_string());
    let view = || QuorumView {
        error: error::NONE,
        leader: node,
        epoch: STANDALONE_EPOCH,
        high_watermark: end,
        voters: vec![me],
    };
    let nodes = vec![Node {
        node_id: node,
        listeners: vec![Listener {
            name: &listener,
            host: &host,
            port,
        }],
    }];
    Ok(Outcome::Body(respond(hdr, body, view, nodes)?))
}
