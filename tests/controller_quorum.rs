//! Three controller-only nodes (`process.roles=controller`) form the KRaft metadata quorum over
//! loopback: they elect one leader, agree on it, elect another when it stops, and take it back
//! as a follower when it returns. A voter of another cluster is kept out.

#[macro_use]
mod support;

use minikafka::config::Config;
use minikafka::protocol::messages::describe_quorum_request as rq;
use minikafka::protocol::messages::describe_quorum_response::DescribeQuorumResponse;
use minikafka::server::{self, Running};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};
use support::*;

const DESCRIBE_QUORUM: i16 = 55;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Node {
    config: Config,
    running: Option<Running>,
}

fn config(dir: &std::path::Path, id: i32, ports: &[u16], extra: &str) -> Config {
    let voters: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}@127.0.0.1:{p}", i + 1))
        .collect();
    let text = format!(
        "process.roles=controller\nnode.id={id}\ncontroller.quorum.voters={}\n\
         listeners=CONTROLLER://127.0.0.1:{}\ncontroller.listener.names=CONTROLLER\n\
         log.dirs={}\n{extra}",
        voters.join(","),
        ports[id as usize - 1],
        dir.join(format!("node{id}")).display()
    );
    Config::from_properties_str(&text).unwrap().0
}

/// (leader, epoch, high watermark, error) as `addr` reports it.
fn describe(addr: SocketAddr) -> Option<(i32, i32, i64, i16)> {
    let mut c = std::panic::catch_unwind(|| Client::connect(addr)).ok()?;
    c.set_read_timeout(Duration::from_secs(2));
    let req = rq::DescribeQuorumRequest {
        topics: vec![rq::TopicData {
            topic_name: "__cluster_metadata",
            partitions: vec![rq::PartitionData { partition_index: 0 }],
        }],
    };
    let body = c.try_call(DESCRIBE_QUORUM, 1, |w| req.encode(w, 1)).ok()?;
    let r = decode!(DescribeQuorumResponse, &body, 1);
    let p = &r.topics.first()?.partitions[0];
    Some((p.leader_id, p.leader_epoch, p.high_watermark, p.error_code))
}

/// Waits until every running node names the same leader (not `not`); returns (leader, epoch).
fn agreed_leader(nodes: &[Node], within: Duration, not: Option<i32>) -> (i32, i32) {
    let t0 = Instant::now();
    loop {
        let views: Vec<_> = nodes
            .iter()
            .filter_map(|n| n.running.as_ref().map(|r| describe(r.addr)))
            .collect();
        if let Some(Some((leader, epoch, _, 0))) = views.first() {
            if *leader >= 0
                && Some(*leader) != not
                && views
                    .iter()
                    .all(|v| matches!(v, Some((l, e, _, 0)) if l == leader && e == epoch))
            {
                return (*leader, *epoch);
            }
        }
        assert!(
            t0.elapsed() < within,
            "no agreed leader within {within:?}: {views:?}"
        );
        std::thread::sleep(Duration::from_millis(20)); // polling for a condition
    }
}

#[test]
fn three_controllers_elect_fail_over_and_rejoin() {
    let dir = TempDir::new("quorum3");
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut nodes: Vec<Node> = (1..=3)
        .map(|id| {
            let config = config(dir.path(), id, &ports, "");
            let running = Some(server::spawn(config.clone()).expect("controller starts"));
            Node { config, running }
        })
        .collect();
    let (leader, epoch) = agreed_leader(&nodes, Duration::from_secs(10), None);
    assert!((1..=3).contains(&leader), "leader {leader}");
    // The leader sees every voter caught up: its high watermark covers its epoch's entry.
    let (_, _, hw, _) =
        describe(nodes[leader as usize - 1].running.as_ref().unwrap().addr).unwrap();
    assert!(hw >= 1, "high watermark {hw}");

    // The leader stops: the other two elect a new leader in a later epoch.
    let t0 = Instant::now();
    nodes[leader as usize - 1]
        .running
        .take()
        .unwrap()
        .shutdown();
    let (leader2, epoch2) = agreed_leader(&nodes, Duration::from_secs(10), Some(leader));
    let took = t0.elapsed();
    assert_ne!(leader2, leader);
    assert!(epoch2 > epoch, "epoch {epoch} -> {epoch2}");
    // Election timeout 1-1.5 s, plus the pre-vote round.
    assert!(took < Duration::from_secs(5), "failover took {took:?}");

    // It comes back (from its own log) and follows the new leader.
    let back = &mut nodes[leader as usize - 1];
    back.running = Some(server::spawn(back.config.clone()).expect("restarts"));
    let (leader3, epoch3) = agreed_leader(&nodes, Duration::from_secs(10), None);
    assert_eq!(
        (leader3, epoch3),
        (leader2, epoch2),
        "a returning voter does not disturb the leader"
    );
}

#[test]
fn a_voter_of_another_cluster_is_kept_out() {
    let dir = TempDir::new("quorum-foreign");
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    // Two voters of the cluster derived from the voter list, the third formatted otherwise.
    let mut nodes: Vec<Node> = (1..=3)
        .map(|id| {
            let mut config = config(dir.path(), id, &ports, "");
            if id == 3 {
                config.cluster_id = Some("AAAAAAAAAAAAAAAAAAAAAA".into());
            }
            let running = Some(server::spawn(config.clone()).expect("controller starts"));
            Node { config, running }
        })
        .collect();
    // Nodes 1 and 2 form a majority and elect one of themselves; node 3 never learns it.
    let first_two = &mut nodes[..2];
    let (leader, _) = agreed_leader(first_two, Duration::from_secs(10), None);
    assert!(leader == 1 || leader == 2, "leader {leader}");
    let third = describe(nodes[2].running.as_ref().unwrap().addr).unwrap();
    assert_ne!(
        third.0, leader,
        "the foreign voter follows nobody of this cluster: {third:?}"
    );
    let meta = std::fs::read_to_string(dir.path().join("node3/meta.properties")).unwrap();
    assert!(meta.contains("cluster.id=AAAAAAAAAAAAAAAAAAAAAA"), "{meta}");
}
