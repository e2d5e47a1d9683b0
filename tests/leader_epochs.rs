//! OffsetForLeaderEpoch over a socket at every version, and the leader epochs that Produce
//! stamps and ListOffsets reports: what consumers validate their positions with (KIP-320).

#[macro_use]
mod support;

use minikafka::protocol::messages::offset_for_leader_epoch_request::*;
use minikafka::protocol::messages::offset_for_leader_epoch_response::*;
use support::*;

const OFFSET_FOR_LEADER_EPOCH: i16 = 23;

/// (error, leader epoch, end offset) for each (partition, current epoch, epoch) asked.
fn epochs(c: &mut Client, v: i16, topic: &str, asks: &[(i32, i32, i32)]) -> Vec<(i16, i32, i64)> {
    let req = OffsetForLeaderEpochRequest {
        replica_id: -1,
        topics: vec![OffsetForLeaderTopic {
            topic,
            partitions: asks
                .iter()
                .map(
                    |&(partition, current_leader_epoch, leader_epoch)| OffsetForLeaderPartition {
                        partition,
                        current_leader_epoch,
                        leader_epoch,
                    },
                )
                .collect(),
        }],
    };
    let body = c.call(OFFSET_FOR_LEADER_EPOCH, v, |w| req.encode(w, v));
    let r = decode!(OffsetForLeaderEpochResponse, &body, v);
    assert_eq!(r.topics.len(), 1);
    r.topics[0]
        .partitions
        .iter()
        .map(|p| (p.error_code, p.leader_epoch, p.end_offset))
        .collect()
}

#[test]
fn offset_for_leader_epoch_at_every_version() {
    let b = TestBroker::start("ofle");
    let mut c = b.client();
    c.create_topic("t", 2);
    assert_eq!(c.produce("t", 0, &batch(3, "a")).0, 0);
    assert_eq!(c.produce("t", 0, &batch(2, "b")).0, 0);
    for v in 2..=4 {
        let got = epochs(
            &mut c,
            v,
            "t",
            &[
                (0, -1, 0), // the current epoch ends at the log end
                (0, 0, 0),  // the client's current epoch matches ours
                (1, -1, 0), // never written: empty, in the current epoch
                (0, -1, 3), // an epoch newer than any: undefined
                (0, 1, 0),  // the client knows a newer epoch than ours
                (7, -1, 0), // no such partition
            ],
        );
        assert_eq!(
            got,
            vec![
                (0, 0, 5),
                (0, 0, 5),
                (0, 0, 0),
                (0, -1, -1),
                (75, -1, -1),
                (3, -1, -1)
            ],
            "v{v}"
        );
    }
    assert_eq!(epochs(&mut c, 4, "nope", &[(0, -1, 0)]), vec![(3, -1, -1)]);
}
