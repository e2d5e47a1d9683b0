//! AlterPartition (key 56): a partition leader asks the active controller to change its ISR.
//! Served on the active controller's node by the broker that writes the metadata there;
//! answered once the change is committed (the cluster node holds the answer until then).

use super::encode;
use crate::broker::{Broker, Outcome};
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::alter_partition_request::AlterPartitionRequest;
use crate::protocol::messages::alter_partition_response::*;
use crate::protocol::wire::{DResult, Reader};
use crate::replication::{self, IsrMember};
use std::time::Instant;

pub fn handle(
    b: &mut Broker,
    hdr: &RequestHeader<'_>,
    body: &[u8],
    now: Instant,
) -> DResult<Outcome> {
    let v = hdr.api_version;
    let req = AlterPartitionRequest::decode(&mut Reader::new(body), v)?;
    super::check_partition_count(req.topics.iter().map(|t| t.partitions.len()).sum())?;
    let topics = req
        .topics
        .iter()
        .map(|t| TopicData {
            topic_id: t.topic_id,
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    let new_isr = if v >= 3 {
                        p.new_isr_with_epochs
                            .iter()
                            .map(|m| IsrMember {
                                broker_id: m.broker_id,
                                broker_epoch: m.broker_epoch,
                            })
                            .collect()
                    } else {
                        p.new_isr
                            .iter()
                            .map(|&broker_id| IsrMember {
                                broker_id,
                                broker_epoch: -1,
                            })
                            .collect()
                    };
                    let asked = replication::AlterPartitionRequest {
                        leader_id: req.broker_id,
                        leader_epoch: p.leader_epoch,
                        partition_epoch: p.partition_epoch,
                        new_isr,
                        leader_recovering: p.leader_recovery_state == 1,
                    };
                    match b.decide_alter_partition(&t.topic_id, p.partition_index, &asked, v, now) {
                        Ok(a) => PartitionData {
                            partition_index: p.partition_index,
                            error_code: 0,
                            leader_id: a.leader_id,
                            leader_epoch: a.leader_epoch,
                            isr: a.isr,
                            leader_recovery_state: a.leader_recovering as i8,
                            partition_epoch: a.partition_epoch,
                        },
                        Err(code) => PartitionData {
                            partition_index: p.partition_index,
                            error_code: code,
                            ..Default::default()
                        },
                    }
                })
                .collect(),
        })
        .collect();
    let resp = AlterPartitionResponse {
        throttle_time_ms: 0,
        error_code: 0,
        topics,
    };
    Ok(Outcome::Body(encode(hdr, |w| resp.encode(w, v))))
}
