//! Three controller-only nodes (`process.roles=controller`) form the KRaft metadata quorum over
//! loopback: they elect one leader, agree on it, elect another when it stops, and take it back
//! as a follower when it returns. A voter of another cluster is kept out.

#[macro_use]
mod support;

use minikafka::config::Config;
use minikafka::protocol::messages::describe_quorum_request as rq;
use minikafka::protocol::messages::describe_quorum_response::DescribeQuorumResponse;
use minikafka::server::{self, Running};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::*;

const DESCRIBE_QUORUM: i16 = 55;

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

/// Three controllers of one quorum, started.
fn start_three(dir: &std::path::Path, ports: &[u16], extra: &str) -> Vec<Node> {
    (1..=3)
        .map(|id| {
            let config = config(dir, id, ports, extra);
            let running = Some(server::spawn(config.clone()).expect("controller starts"));
            Node { config, running }
        })
        .collect()
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
    let mut nodes = start_three(dir.path(), &ports, "");
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

mod brokers {
    use super::*;
    use minikafka::protocol::messages::broker_heartbeat_request::BrokerHeartbeatRequest;
    use minikafka::protocol::messages::broker_heartbeat_response::BrokerHeartbeatResponse;
    use minikafka::protocol::messages::broker_registration_request::*;
    use minikafka::protocol::messages::broker_registration_response::BrokerRegistrationResponse;

    fn cluster_id(dir: &std::path::Path, id: i32) -> String {
        let meta = std::fs::read_to_string(dir.join(format!("node{id}/meta.properties"))).unwrap();
        meta.lines()
            .find_map(|l| l.strip_prefix("cluster.id="))
            .unwrap()
            .to_string()
    }

    /// (error, broker epoch)
    fn register(addr: SocketAddr, cluster: &str, broker: i32, incarnation: u8) -> (i16, i64) {
        let mut c = Client::connect(addr);
        let req = BrokerRegistrationRequest {
            broker_id: broker,
            cluster_id: cluster,
            incarnation_id: [incarnation; 16],
            listeners: vec![Listener {
                name: "PLAINTEXT",
                host: "127.0.0.1",
                port: 9092,
                security_protocol: 0,
            }],
            previous_broker_epoch: -1,
            ..Default::default()
        };
        let body = c.call(62, 4, |w| req.encode(w, 4));
        let r = decode!(BrokerRegistrationResponse, &body, 4);
        (r.error_code, r.broker_epoch)
    }

    /// (error, caught up, fenced)
    fn heartbeat(addr: SocketAddr, broker: i32, epoch: i64) -> (i16, bool, bool) {
        let mut c = Client::connect(addr);
        let req = BrokerHeartbeatRequest {
            broker_id: broker,
            broker_epoch: epoch,
            current_metadata_offset: i64::MAX,
            want_fence: false,
            want_shut_down: false,
            offline_log_dirs: vec![],
        };
        let body = c.call(63, 1, |w| req.encode(w, 1));
        let r = decode!(BrokerHeartbeatResponse, &body, 1);
        (r.error_code, r.is_caught_up, r.is_fenced)
    }

    fn until_unfenced(addr: SocketAddr, broker: i32, epoch: i64) {
        let t0 = Instant::now();
        loop {
            let (e, caught_up, fenced) = heartbeat(addr, broker, epoch);
            assert_eq!(e, 0);
            assert!(caught_up);
            if !fenced {
                return;
            }
            assert!(t0.elapsed() < Duration::from_secs(5), "never unfenced");
            std::thread::sleep(Duration::from_millis(20)); // a broker heartbeats in a loop too
        }
    }

    #[test]
    fn brokers_register_with_the_quorum_and_survive_a_controller_failover() {
        let dir = TempDir::new("quorum-brokers");
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut nodes = start_three(dir.path(), &ports, "broker.session.timeout.ms=1500\n");
        let (leader, _) = agreed_leader(&nodes, Duration::from_secs(10), None);
        let addr = |nodes: &[Node], id: i32| nodes[id as usize - 1].running.as_ref().unwrap().addr;
        let cluster = cluster_id(dir.path(), 1);
        assert_eq!(
            cluster,
            cluster_id(dir.path(), 3),
            "voters derive one cluster id"
        );

        // Only the active controller registers brokers; a wrong cluster id is refused.
        let follower = (1..=3).find(|&i| i != leader).unwrap();
        assert_eq!(
            register(addr(&nodes, follower), &cluster, 10, 1).0,
            41,
            "NOT_CONTROLLER"
        );
        assert_eq!(register(addr(&nodes, leader), "other", 10, 1).0, 104);
        let (e, epoch) = register(addr(&nodes, leader), &cluster, 10, 1);
        assert_eq!(e, 0);
        assert!(epoch >= 0);
        // Its first heartbeats unfence it once the unfence record is committed.
        until_unfenced(addr(&nodes, leader), 10, epoch);
        assert_eq!(
            heartbeat(addr(&nodes, leader), 10, epoch + 1).0,
            77,
            "STALE_BROKER_EPOCH"
        );
        assert_eq!(
            heartbeat(addr(&nodes, leader), 11, 0).0,
            102,
            "BROKER_ID_NOT_REGISTERED"
        );
        // Another process with the same node.id while the first is alive: refused.
        assert_eq!(register(addr(&nodes, leader), &cluster, 10, 2).0, 101);

        // The active controller dies: the new one knows the broker from the replicated log.
        nodes[leader as usize - 1]
            .running
            .take()
            .unwrap()
            .shutdown();
        let (leader2, _) = agreed_leader(&nodes, Duration::from_secs(10), Some(leader));
        let (e, caught_up, _) = heartbeat(addr(&nodes, leader2), 10, epoch);
        assert_eq!(
            (e, caught_up),
            (0, true),
            "the registration survived the failover"
        );

        // Silent for a session (1.5 s): fenced; heartbeating again unfences it.
        std::thread::sleep(Duration::from_millis(2500)); // a silence, by definition timed
        let (e, _, fenced) = heartbeat(addr(&nodes, leader2), 10, epoch);
        assert_eq!((e, fenced), (0, true), "fenced after its session expired");
        until_unfenced(addr(&nodes, leader2), 10, epoch);
    }

    /// (error, partitions, replication factor, message) for one topic.
    fn create_topic(
        addr: SocketAddr,
        name: &str,
        partitions: i32,
        rf: i16,
    ) -> (i16, i32, i16, Option<String>) {
        use minikafka::protocol::messages::create_topics_request::*;
        use minikafka::protocol::messages::create_topics_response::CreateTopicsResponse;
        let mut c = Client::connect(addr);
        let req = CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name,
                num_partitions: partitions,
                replication_factor: rf,
                ..Default::default()
            }],
            timeout_ms: 10_000,
            validate_only: false,
        };
        let body = c.call(19, 7, |w| req.encode(w, 7));
        let r = decode!(CreateTopicsResponse, &body, 7);
        let t = &r.topics[0];
        (
            t.error_code,
            t.num_partitions,
            t.replication_factor,
            t.error_message.map(str::to_string),
        )
    }

    #[test]
    fn topics_are_created_by_the_quorum_over_the_registered_brokers() {
        let dir = TempDir::new("quorum-topics");
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut nodes = start_three(dir.path(), &ports, "");
        let (leader, _) = agreed_leader(&nodes, Duration::from_secs(10), None);
        let addr = |nodes: &[Node], id: i32| nodes[id as usize - 1].running.as_ref().unwrap().addr;
        let cluster = cluster_id(dir.path(), 1);
        // No broker yet: nowhere to put replicas.
        let (e, _, _, msg) = create_topic(addr(&nodes, leader), "early", 3, 1);
        assert_eq!(e, 38, "INVALID_REPLICATION_FACTOR: {msg:?}");
        for b in [10, 11, 12] {
            let (e, epoch) = register(addr(&nodes, leader), &cluster, b, b as u8);
            assert_eq!(e, 0);
            until_unfenced(addr(&nodes, leader), b, epoch);
        }
        assert_eq!(
            create_topic(addr(&nodes, leader), "t", 6, 1),
            (0, 6, 1, None)
        );
        // Replicas on as many brokers as there are, not more.
        assert_eq!(
            create_topic(addr(&nodes, leader), "three", 6, 3),
            (0, 6, 3, None)
        );
        let (e, _, _, msg) = create_topic(addr(&nodes, leader), "four", 6, 4);
        assert_eq!(e, 38, "INVALID_REPLICATION_FACTOR: {msg:?}");
        let follower = (1..=3).find(|&i| i != leader).unwrap();
        assert_eq!(
            create_topic(addr(&nodes, follower), "u", 1, 1).0,
            41,
            "NOT_CONTROLLER"
        );
        let (e, _, _, msg) = create_topic(addr(&nodes, leader), "wide", 1, 4);
        assert_eq!(e, 38);
        assert!(msg.unwrap().contains("only 3 broker(s) are registered"));
        assert_eq!(create_topic(addr(&nodes, leader), "bad/name", 1, 1).0, 17);
        // The topic is in every voter's image: the next active controller refuses it again.
        nodes[leader as usize - 1]
            .running
            .take()
            .unwrap()
            .shutdown();
        let (leader2, _) = agreed_leader(&nodes, Duration::from_secs(10), Some(leader));
        assert_eq!(
            create_topic(addr(&nodes, leader2), "t", 6, 1).0,
            36,
            "TOPIC_ALREADY_EXISTS"
        );
        assert_eq!(create_topic(addr(&nodes, leader2), "t2", 2, 1).0, 0);
    }

    #[test]
    fn snapshots_keep_the_image_across_restarts() {
        let dir = TempDir::new("quorum-snapshot");
        let ports = vec![free_port()];
        // A quorum of one, snapshotting after every few hundred bytes of records.
        let config = config(
            dir.path(),
            1,
            &ports,
            "metadata.log.max.record.bytes.between.snapshots=200\n",
        );
        let mut node = Node {
            running: Some(server::spawn(config.clone()).expect("starts")),
            config,
        };
        let (leader, _) = agreed_leader(std::slice::from_ref(&node), Duration::from_secs(10), None);
        assert_eq!(leader, 1);
        let addr = |n: &Node| n.running.as_ref().unwrap().addr;
        let cluster = cluster_id(dir.path(), 1);
        let (e, epoch) = register(addr(&node), &cluster, 7, 1);
        assert_eq!(e, 0);
        until_unfenced(addr(&node), 7, epoch);
        for i in 0..5 {
            assert_eq!(create_topic(addr(&node), &format!("t{i}"), 2, 1).0, 0);
        }
        let snapshots = || {
            std::fs::read_dir(dir.path().join("node1/__cluster_metadata-0"))
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.ends_with(".checkpoint"))
                .count()
        };
        assert_eq!(snapshots(), 1, "one snapshot, the newest");
        // Restarted: the image comes back from the snapshot plus the log after it.
        node.running.take().unwrap().shutdown();
        node.running = Some(server::spawn(node.config.clone()).expect("restarts"));
        agreed_leader(std::slice::from_ref(&node), Duration::from_secs(10), None);
        for i in 0..5 {
            assert_eq!(
                create_topic(addr(&node), &format!("t{i}"), 2, 1).0,
                36,
                "t{i} is known"
            );
        }
        let (e, caught_up, _) = heartbeat(addr(&node), 7, epoch);
        assert_eq!((e, caught_up), (0, true), "the broker is known");
    }
}
