//! Three combined nodes (`process.roles=broker,controller`) in one process, each with its own
//! loop, spoken to over sockets with raw frames: they register as brokers, every node lists
//! all three, a topic created through any node is spread over the brokers, a broker serves only
//! the partitions it leads, and the coordinator of a group is the leader of its
//! `__consumer_offsets` partition (whichever node that is, the active controller's included).

#[macro_use]
mod support;

use minikafka::config::Config;
use minikafka::protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use minikafka::protocol::messages::find_coordinator_response::FindCoordinatorResponse;
use minikafka::protocol::messages::join_group_request::{
    JoinGroupRequest, JoinGroupRequestProtocol,
};
use minikafka::protocol::messages::join_group_response::JoinGroupResponse;
use minikafka::protocol::messages::metadata_response::MetadataResponse;
use minikafka::server::{self, Running};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::*;

const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const NOT_COORDINATOR: i16 = 16;

fn config(dir: &std::path::Path, id: i32, controller_ports: &[u16]) -> Config {
    config_with(dir, id, controller_ports, "")
}

/// `extra` is appended to the properties.
fn config_with(dir: &std::path::Path, id: i32, controller_ports: &[u16], extra: &str) -> Config {
    let voters: Vec<String> = controller_ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}@127.0.0.1:{p}", i + 1))
        .collect();
    let text = format!(
        "process.roles=broker,controller\nnode.id={id}\ncontroller.quorum.voters={}\n\
         listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:{}\n\
         controller.listener.names=CONTROLLER\nlog.dirs={}\nbroker.heartbeat.interval.ms=200\n\
         broker.session.timeout.ms=1500\n{extra}",
        voters.join(","),
        controller_ports[id as usize - 1],
        dir.join(format!("node{id}")).display()
    );
    Config::from_properties_str(&text).unwrap().0
}

struct Cluster {
    _dir: TempDir,
    ports: Vec<u16>,
    extra: String,
    nodes: Vec<Option<Running>>,
}

impl Cluster {
    fn start(tag: &str) -> Cluster {
        Cluster::start_with(tag, "")
    }

    fn start_with(tag: &str, extra: &str) -> Cluster {
        let dir = TempDir::new(tag);
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let nodes = (1..=3)
            .map(|id| {
                let cfg = config_with(dir.path(), id, &ports, extra);
                Some(server::spawn(cfg).expect("node starts"))
            })
            .collect();
        let c = Cluster {
            _dir: dir,
            ports,
            extra: extra.to_string(),
            nodes,
        };
        c.wait_for_brokers();
        c
    }

    fn stop(&mut self, id: i32) {
        self.nodes[id as usize - 1]
            .take()
            .expect("node running")
            .shutdown();
    }

    fn restart(&mut self, id: i32) {
        let cfg = config_with(self._dir.path(), id, &self.ports, &self.extra);
        self.nodes[id as usize - 1] = Some(server::spawn(cfg).expect("node restarts"));
    }

    fn addr(&self, id: i32) -> SocketAddr {
        self.nodes[id as usize - 1]
            .as_ref()
            .expect("node running")
            .addr
    }

    fn client(&self, id: i32) -> Client {
        let c = Client::connect(self.addr(id));
        c.set_read_timeout(Duration::from_secs(10));
        c
    }

    /// Metadata v12 of `node`: (broker ids with ports, controller id, topic -> partition leaders).
    fn metadata(&self, node: i32, topic: Option<&str>) -> (BTreeMap<i32, i32>, i32, Vec<i32>) {
        let mut c = self.client(node);
        let topics = topic.map(|t| [t]);
        let body = c.metadata_body(12, topics.as_ref().map(|t| &t[..]), false);
        let m = decode!(MetadataResponse, &body, 12);
        let brokers = m.brokers.iter().map(|b| (b.node_id, b.port)).collect();
        let leaders = m
            .topics
            .first()
            .filter(|t| t.error_code == 0)
            .map(|t| t.partitions.iter().map(|p| p.leader_id).collect())
            .unwrap_or_default();
        (brokers, m.controller_id, leaders)
    }

    fn wait_for_brokers(&self) {
        let t0 = Instant::now();
        loop {
            let views: Vec<_> = (1..=3).map(|i| self.metadata(i, None)).collect();
            let ports: BTreeMap<i32, i32> =
                (1..=3).map(|i| (i, self.addr(i).port() as i32)).collect();
            if views.iter().all(|(b, _, _)| *b == ports) {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "brokers not registered: {views:?}"
            );
            std::thread::sleep(Duration::from_millis(20)); // polling for a condition
        }
    }

    /// Until every node reports the topic with `n` partitions, all with the same leaders.
    fn wait_for_topic(&self, name: &str, n: usize) -> Vec<i32> {
        let t0 = Instant::now();
        loop {
            let views: Vec<Vec<i32>> = (1..=3).map(|i| self.metadata(i, Some(name)).2).collect();
            if views[0].len() == n && views.iter().all(|v| *v == views[0]) {
                return views[0].clone();
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "topic {name} not everywhere: {views:?}"
            );
            std::thread::sleep(Duration::from_millis(10)); // polling for a condition
        }
    }

    fn find_coordinator(&self, node: i32, group: &str) -> (i16, i32) {
        let mut c = self.client(node);
        let req = FindCoordinatorRequest {
            key: group,
            key_type: 0,
            coordinator_keys: Vec::new(),
        };
        let body = c.call(10, 3, |w| req.encode(w, 3));
        let r = decode!(FindCoordinatorResponse, &body, 3);
        (r.error_code, r.node_id)
    }

    fn join(&self, node: i32, group: &str) -> i16 {
        let mut c = self.client(node);
        let req = JoinGroupRequest {
            group_id: group,
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            member_id: "",
            group_instance_id: None,
            protocol_type: "consumer",
            protocols: vec![JoinGroupRequestProtocol {
                name: "range",
                metadata: &[0, 0, 0, 0, 0, 0],
            }],
            reason: None,
        };
        let body = c.call(11, 5, |w| req.encode(w, 5));
        decode!(JoinGroupResponse, &body, 5).error_code
    }
}

#[test]
fn three_combined_nodes_serve_one_cluster() {
    let c = Cluster::start("cluster3");
    // Every node names a live broker as the controller (itself: it forwards).
    for i in 1..=3 {
        let (_, controller, _) = c.metadata(i, None);
        assert_eq!(controller, i);
    }
    // Created through each node in turn (forwarded to the active controller's node).
    for (i, name) in [(1, "spread-a"), (2, "spread-b"), (3, "spread-c")] {
        let r = c.client(i).create_topics(7, &[(name, 6, 1)], false);
        assert_eq!(r[0].error, 0, "{r:?}");
        let leaders = c.wait_for_topic(name, 6);
        let set: BTreeSet<i32> = leaders.iter().copied().collect();
        assert_eq!(set, BTreeSet::from([1, 2, 3]), "{name}: {leaders:?}");
        // A second creation of the same name is refused wherever it is sent.
        let again = c.client(i % 3 + 1).create_topics(7, &[(name, 6, 1)], false);
        assert_eq!(again[0].error, 36, "{again:?}");
    }
    // Each broker serves the partitions it leads, and only those.
    let leaders = c.wait_for_topic("spread-a", 6);
    for (p, &leader) in leaders.iter().enumerate() {
        for node in 1..=3 {
            let (err, offset) = c.client(node).produce("spread-a", p as i32, &batch(2, "r"));
            if node == leader {
                assert_eq!((err, offset), (0, 0), "partition {p} on its leader {node}");
            } else {
                assert_eq!(err, NOT_LEADER_OR_FOLLOWER, "partition {p} on {node}");
            }
            let (err, _, end) = c.client(node).list_offset(1, "spread-a", p as i32, -1);
            if node == leader {
                assert_eq!((err, end), (0, 2));
            } else {
                assert_eq!(err, NOT_LEADER_OR_FOLLOWER);
            }
        }
        let fetched = c.client(leader).fetch(&FetchArgs {
            partition: p as i32,
            ..FetchArgs::new("spread-a", 0)
        });
        assert_eq!(fetched.error, 0);
        assert_eq!(fetched.high_watermark, 2);
    }
}

#[test]
fn every_group_is_coordinated_by_the_leader_of_its_partition() {
    let c = Cluster::start("cluster-groups");
    // The first lookup creates __consumer_offsets (through the active controller).
    let t0 = Instant::now();
    while c.find_coordinator(1, "g0").0 != 0 {
        assert!(t0.elapsed() < Duration::from_secs(10), "no coordinator");
        std::thread::sleep(Duration::from_millis(20)); // polling for a condition
    }
    c.wait_for_topic("__consumer_offsets", 50);
    // Groups until every node coordinates at least one (the active controller's included).
    let mut by_node: BTreeMap<i32, String> = BTreeMap::new();
    for k in 0..200 {
        let g = format!("g{k}");
        let answers: BTreeSet<(i16, i32)> = (1..=3).map(|n| c.find_coordinator(n, &g)).collect();
        assert_eq!(answers.len(), 1, "nodes disagree on {g}: {answers:?}");
        let (err, node) = *answers.iter().next().unwrap();
        assert_eq!(err, 0);
        by_node.entry(node).or_insert(g);
        if by_node.len() == 3 {
            break;
        }
    }
    assert_eq!(by_node.len(), 3, "{by_node:?}");
    for (&node, g) in &by_node {
        for other in 1..=3 {
            let err = c.join(other, g);
            if other == node {
                // A new member is told its id (MEMBER_ID_REQUIRED): the group is served here.
                assert_eq!(err, 79, "{g} at its coordinator {node}");
            } else {
                assert_eq!(
                    err, NOT_COORDINATOR,
                    "{g} at {other}, coordinated by {node}"
                );
            }
        }
    }
}

#[test]
fn a_node_whose_voters_are_unreachable_elects_nobody_and_refuses_changes() {
    // One node of a three-voter quorum whose other voters never start: no majority, so no
    // leader (no split brain); it serves no brokers and refuses metadata changes with
    // NOT_CONTROLLER once it has waited for a controller (5 s), never answering success.
    let dir = TempDir::new("cluster-alone");
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let node = server::spawn(config(dir.path(), 1, &ports)).expect("node starts");
    let mut c = Client::connect(node.addr);
    c.set_read_timeout(Duration::from_secs(15));
    // Asked again and again for longer than an election timeout: never a controller.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(2500) {
        let body = c.metadata_body(12, None, false);
        let m = decode!(MetadataResponse, &body, 12);
        assert!(
            m.brokers.is_empty(),
            "no broker registered: {:?}",
            m.brokers
        );
        assert_eq!(m.controller_id, -1, "no controller known");
        std::thread::sleep(Duration::from_millis(50)); // polling: the absence of a leader
    }
    let t0 = Instant::now();
    let r = c.create_topics(7, &[("nowhere", 1, 1)], false);
    assert_eq!(r[0].error, 41, "NOT_CONTROLLER: {r:?}");
    assert!(
        t0.elapsed() >= Duration::from_secs(4),
        "it waited for a controller first"
    );
    // Still nothing: the change was not made behind the refusal.
    let body = c.metadata_body(12, Some(&["nowhere"]), false);
    let m = decode!(MetadataResponse, &body, 12);
    assert_eq!(m.topics[0].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    drop(node);
}

/// Metadata v12 of one topic: (leader, replicas, isr) of each partition.
fn replica_sets(c: &Cluster, node: i32, topic: &str) -> Vec<(i32, Vec<i32>, Vec<i32>)> {
    let mut cl = c.client(node);
    let body = cl.metadata_body(12, Some(&[topic]), false);
    let m = decode!(MetadataResponse, &body, 12);
    m.topics[0]
        .partitions
        .iter()
        .map(|p| (p.leader_id, p.replica_nodes.clone(), p.isr_nodes.clone()))
        .collect()
}

/// The bytes of a partition's first segment on a node (empty when not there yet).
fn segment_bytes(c: &Cluster, node: i32, topic: &str, p: i32) -> Vec<u8> {
    let path = c
        ._dir
        .path()
        .join(format!("node{node}"))
        .join(format!("{topic}-{p}"))
        .join("00000000000000000000.log");
    std::fs::read(path).unwrap_or_default()
}

#[test]
fn acks_all_is_answered_once_every_in_sync_replica_holds_the_records() {
    let c = Cluster::start("cluster-rf3");
    let r = c.client(2).create_topics(7, &[("rep", 3, 3)], false);
    assert_eq!(r[0].error, 0, "{r:?}");
    let leaders = c.wait_for_topic("rep", 3);
    for (_, replicas, isr) in replica_sets(&c, 1, "rep") {
        assert_eq!(replicas.len(), 3);
        assert_eq!(isr.len(), 3);
    }
    // More replicas than brokers: refused.
    let r = c.client(1).create_topics(7, &[("rep4", 1, 4)], false);
    assert_eq!(r[0].error, 38, "INVALID_REPLICATION_FACTOR: {r:?}");
    for (p, &leader) in leaders.iter().enumerate() {
        let p = p as i32;
        for round in 0..3i64 {
            let (e, offset, _) =
                c.client(leader)
                    .produce_to(9, "rep", [0; 16], p, &batch(5, "x"), -1);
            assert_eq!((e, offset), (0, round * 5), "partition {p}");
            // Answered: the followers hold the records, so consumers see them.
            let f = c.client(leader).fetch(&FetchArgs {
                partition: p,
                ..FetchArgs::new("rep", 0)
            });
            assert_eq!(f.error, 0);
            assert_eq!(f.high_watermark, (round + 1) * 5, "partition {p}");
        }
        // The replicas hold the leader's batches byte for byte.
        let on_leader = segment_bytes(&c, leader, "rep", p);
        assert!(!on_leader.is_empty());
        for node in 1..=3 {
            assert_eq!(
                segment_bytes(&c, node, "rep", p),
                on_leader,
                "partition {p} on node {node} (leader {leader})"
            );
        }
    }
}

#[test]
fn consumers_never_see_past_what_the_in_sync_replicas_hold() {
    // Every replica must be in sync for acks=all and for the high watermark to move.
    let mut c = Cluster::start_with("cluster-hw", "min.insync.replicas=3\n");
    let r = c.client(1).create_topics(7, &[("hw", 1, 3)], false);
    assert_eq!(r[0].error, 0, "{r:?}");
    let leader = c.wait_for_topic("hw", 1)[0];
    let (e, _, _) = c
        .client(leader)
        .produce_to(9, "hw", [0; 16], 0, &batch(4, "a"), -1);
    assert_eq!(e, 0);
    // A follower stops and leaves the ISR: below min.insync.replicas.
    let follower = (1..=3).find(|&n| n != leader).unwrap();
    c.stop(follower);
    until_replicas(
        &c,
        leader,
        "hw",
        "the stopped follower out of the ISR",
        |s| s[0].2.len() == 2,
    );
    let (e, offset, _) = c
        .client(leader)
        .produce_to(9, "hw", [0; 16], 0, &batch(3, "b"), 1);
    assert_eq!(
        (e, offset),
        (0, 4),
        "acks=1 is answered by the leader alone"
    );
    let f = c.client(leader).fetch(&FetchArgs::new("hw", 0));
    assert_eq!(
        f.high_watermark, 4,
        "not past what every in-sync replica holds"
    );
    let (_, _, end) = c.client(leader).list_offset(1, "hw", 0, -1);
    assert_eq!(end, 4);
    let (e, _, _) = c
        .client(leader)
        .produce_to(9, "hw", [0; 16], 0, &batch(2, "c"), -1);
    assert_eq!(e, 19, "NOT_ENOUGH_REPLICAS");
    // Back: it catches up, rejoins the ISR, and the high watermark moves on.
    c.restart(follower);
    until_replicas(&c, leader, "hw", "the follower back in the ISR", |s| {
        s[0].2.len() == 3
    });
    let t0 = Instant::now();
    while c
        .client(leader)
        .fetch(&FetchArgs::new("hw", 0))
        .high_watermark
        != 7
    {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "high watermark stuck"
        );
        std::thread::sleep(Duration::from_millis(20)); // polling for a condition
    }
    let (e, offset, _) = c
        .client(leader)
        .produce_to(9, "hw", [0; 16], 0, &batch(2, "d"), -1);
    assert_eq!((e, offset), (0, 7));
}

/// Until `check` holds for what `node` reports of `topic` (up to 20 s).
fn until_replicas(
    c: &Cluster,
    node: i32,
    topic: &str,
    what: &str,
    check: impl Fn(&[(i32, Vec<i32>, Vec<i32>)]) -> bool,
) -> Vec<(i32, Vec<i32>, Vec<i32>)> {
    let t0 = Instant::now();
    loop {
        let sets = replica_sets(c, node, topic);
        if check(&sets) {
            return sets;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "{what}: {sets:?}");
        std::thread::sleep(Duration::from_millis(50)); // polling for a condition
    }
}

#[test]
fn a_replica_takes_over_from_a_stopped_leader_and_nothing_acknowledged_is_lost() {
    let mut c = Cluster::start("cluster-failover");
    let r = c.client(1).create_topics(7, &[("fo", 1, 3)], false);
    assert_eq!(r[0].error, 0, "{r:?}");
    let old = c.wait_for_topic("fo", 1)[0];
    for round in 0..3i64 {
        let (e, offset, _) = c
            .client(old)
            .produce_to(9, "fo", [0; 16], 0, &batch(5, "x"), -1);
        assert_eq!((e, offset), (0, round * 5));
    }
    c.stop(old);
    let other = (1..=3).find(|&n| n != old).unwrap();
    let sets = until_replicas(&c, other, "fo", "a new leader from the ISR", |s| {
        s[0].0 >= 0 && s[0].0 != old && !s[0].2.contains(&old)
    });
    let new = sets[0].0;
    assert_eq!(
        sets[0].2.len(),
        2,
        "the stopped broker left the ISR: {sets:?}"
    );
    // The new leader has everything acknowledged, and takes writes.
    let mut produced = None;
    let t0 = Instant::now();
    while produced.is_none() {
        let (e, offset, _) = c
            .client(new)
            .produce_to(9, "fo", [0; 16], 0, &batch(5, "y"), -1);
        if e == 0 {
            produced = Some(offset);
        } else {
            assert!(t0.elapsed() < Duration::from_secs(10), "produce: error {e}");
            std::thread::sleep(Duration::from_millis(50)); // polling: the leader takes over
        }
    }
    assert_eq!(produced, Some(15));
    let f = c.client(new).fetch(&FetchArgs::new("fo", 0));
    assert_eq!(f.error, 0);
    assert_eq!(f.high_watermark, 20);
    // The old leader comes back as a follower, catches up and rejoins the ISR.
    c.restart(old);
    c.wait_for_brokers();
    until_replicas(&c, new, "fo", "the old leader back in the ISR", |s| {
        s[0].2.len() == 3
    });
    let on_leader = segment_bytes(&c, new, "fo", 0);
    for node in 1..=3 {
        assert_eq!(segment_bytes(&c, node, "fo", 0), on_leader, "node {node}");
    }
}

/// Controlled shutdown: a leader asked to stop first hands its partitions to other in-sync
/// replicas, and stops only once every running broker knows the new leader, so that the
/// moment it is gone the others already serve its partitions (no wait for a session to end).
#[test]
fn a_stopping_leader_hands_its_partitions_over_before_it_stops() {
    let mut c = Cluster::start("cluster-controlled-shutdown");
    let r = c.client(1).create_topics(7, &[("cs", 2, 3)], false);
    assert_eq!(r[0].error, 0, "{r:?}");
    c.wait_for_topic("cs", 2);
    let sets = until_replicas(&c, 1, "cs", "a full ISR", |s| {
        s.iter().all(|p| p.2.len() == 3)
    });
    let old = sets[0].0;
    let (e, offset, _) = c
        .client(old)
        .produce_to(9, "cs", [0; 16], 0, &batch(5, "x"), -1);
    assert_eq!((e, offset), (0, 0));
    let t0 = Instant::now();
    c.stop(old);
    let took = t0.elapsed();
    // Asked once, right after the stop returned: no polling.
    for node in (1..=3).filter(|&n| n != old) {
        let sets = replica_sets(&c, node, "cs");
        for (p, (leader, _, isr)) in sets.iter().enumerate() {
            assert!(
                *leader >= 0 && *leader != old && !isr.contains(&old),
                "node {node}, partition {p}: leader {leader}, isr {isr:?} ({took:?} to stop)"
            );
        }
    }
    let new = replica_sets(&c, (1..=3).find(|&n| n != old).unwrap(), "cs")[0].0;
    let (e, offset, _) = c
        .client(new)
        .produce_to(9, "cs", [0; 16], 0, &batch(5, "y"), -1);
    assert_eq!((e, offset), (0, 5), "the new leader takes writes at once");
    // The stopped broker comes back as a follower and rejoins the ISR.
    c.restart(old);
    c.wait_for_brokers();
    until_replicas(&c, new, "cs", "the stopped broker back in the ISR", |s| {
        s[0].2.len() == 3
    });
}

/// OffsetCommit v9 of one offset for partition 0 of `topic`, outside any generation.
fn commit_offset(c: &Cluster, node: i32, group: &str, topic: &str, offset: i64) -> i16 {
    use minikafka::protocol::messages::offset_commit_request::*;
    use minikafka::protocol::messages::offset_commit_response::OffsetCommitResponse;
    let req = OffsetCommitRequest {
        group_id: group,
        generation_id_or_member_epoch: -1,
        member_id: "",
        topics: vec![OffsetCommitRequestTopic {
            name: topic,
            partitions: vec![OffsetCommitRequestPartition {
                partition_index: 0,
                committed_offset: offset,
                committed_leader_epoch: -1,
                committed_metadata: Some("m"),
            }],
        }],
        ..Default::default()
    };
    let body = c.client(node).call(8, 9, |w| req.encode(w, 9));
    decode!(OffsetCommitResponse, &body, 9).topics[0].partitions[0].error_code
}

#[test]
fn offset_commits_are_acknowledged_only_once_the_replicas_hold_them() {
    let mut c = Cluster::start_with(
        "cluster-commits",
        "offsets.topic.replication.factor=3\noffsets.topic.num.partitions=1\n\
         min.insync.replicas=3\n",
    );
    let r = c.client(1).create_topics(7, &[("data", 1, 3)], false);
    assert_eq!(r[0].error, 0, "{r:?}");
    let t0 = Instant::now();
    let coordinator = loop {
        let (err, node) = c.find_coordinator(1, "g");
        if err == 0 {
            break node;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no coordinator: {err}"
        );
        std::thread::sleep(Duration::from_millis(20)); // polling for a condition
    };
    until_replicas(
        &c,
        coordinator,
        "__consumer_offsets",
        "offsets replicated",
        |s| s[0].2.len() == 3,
    );
    assert_eq!(commit_offset(&c, coordinator, "g", "data", 5), 0);
    // The followers are woken by the write: a commit does not wait out their fetch wait
    // (500 ms) for the replicas (20 of them did, 10 s, before the fix).
    let t0 = Instant::now();
    for i in 0..20 {
        assert_eq!(commit_offset(&c, coordinator, "g", "data", 10 + i), 0);
    }
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    // Every replica of the group's partition holds the commit once it is acknowledged.
    let on_coordinator = segment_bytes(&c, coordinator, "__consumer_offsets", 0);
    assert!(!on_coordinator.is_empty());
    for node in 1..=3 {
        assert_eq!(
            segment_bytes(&c, node, "__consumer_offsets", 0),
            on_coordinator,
            "node {node}"
        );
    }
    // A replica gone: below min.insync.replicas, commits are refused, not acknowledged.
    let other = (1..=3).find(|&n| n != coordinator).unwrap();
    c.stop(other);
    until_replicas(&c, coordinator, "__consumer_offsets", "ISR shrunk", |s| {
        s[0].2.len() == 2
    });
    assert_eq!(
        commit_offset(&c, coordinator, "g", "data", 6),
        15,
        "COORDINATOR_NOT_AVAILABLE"
    );
}

/// ElectLeaders v2 (preferred, 0) for `partitions` of `topic`, or for every partition (None):
/// (top-level error, [(topic, partition, error)]).
fn elect_preferred(
    c: &Cluster,
    node: i32,
    topic: &str,
    partitions: Option<Vec<i32>>,
) -> (i16, Vec<(String, i32, i16)>) {
    use minikafka::protocol::messages::elect_leaders_request::*;
    use minikafka::protocol::messages::elect_leaders_response::ElectLeadersResponse;
    let req = ElectLeadersRequest {
        election_type: 0,
        topic_partitions: partitions.map(|ps| {
            vec![TopicPartitions {
                topic,
                partitions: ps,
            }]
        }),
        timeout_ms: 10_000,
    };
    let body = c.client(node).call(43, 2, |w| req.encode(w, 2));
    let r = decode!(ElectLeadersResponse, &body, 2);
    let results = r
        .replica_election_results
        .iter()
        .flat_map(|t| {
            t.partition_result
                .iter()
                .map(|p| (t.topic.to_string(), p.partition_id, p.error_code))
        })
        .collect();
    (r.error_code, results)
}

#[test]
fn preferred_leaders_come_back_with_elect_leaders_and_by_themselves() {
    let mut c = Cluster::start_with("cluster-elect", "auto.leader.rebalance.enable=false\n");
    let r = c.client(1).create_topics(7, &[("pref", 3, 3)], false);
    assert_eq!(r[0].error, 0, "{r:?}");
    c.wait_for_topic("pref", 3);
    let preferred: Vec<i32> = replica_sets(&c, 1, "pref")
        .iter()
        .map(|(_, replicas, _)| replicas[0])
        .collect();
    // Already there: nothing to do.
    let (e, results) = elect_preferred(&c, 1, "pref", Some(vec![0]));
    assert_eq!(e, 0);
    assert_eq!(
        results,
        vec![("pref".to_string(), 0, 84)],
        "ELECTION_NOT_NEEDED"
    );
    let (_, results) = elect_preferred(&c, 1, "pref", Some(vec![7]));
    assert_eq!(results[0].2, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    // A broker stops and comes back: its partitions stay with the others...
    let moved = preferred[0];
    c.stop(moved);
    until_replicas(&c, 1 + moved % 3, "pref", "leadership moved", |s| {
        s.iter().all(|p| p.0 != moved && p.0 >= 0)
    });
    c.restart(moved);
    c.wait_for_brokers();
    let sets = until_replicas(&c, 1 + moved % 3, "pref", "back in the ISRs", |s| {
        s.iter().all(|p| p.2.len() == 3)
    });
    assert!(sets.iter().all(|p| p.0 != moved), "{sets:?}");
    // ...until a preferred election, sent to any node, gives them back.
    let (e, results) = elect_preferred(&c, moved, "pref", None);
    assert_eq!(e, 0);
    assert!(
        !results.is_empty() && results.iter().all(|r| r.2 == 0),
        "{results:?}"
    );
    until_replicas(&c, 1, "pref", "preferred leaders", |s| {
        s.iter().zip(&preferred).all(|(p, &want)| p.0 == want)
    });
}

#[test]
fn the_controller_restores_preferred_leaders_by_itself() {
    let mut c = Cluster::start_with(
        "cluster-rebalance",
        "leader.imbalance.check.interval.seconds=1\n",
    );
    let r = c.client(1).create_topics(7, &[("auto", 3, 3)], false);
    assert_eq!(r[0].error, 0, "{r:?}");
    c.wait_for_topic("auto", 3);
    let preferred: Vec<i32> = replica_sets(&c, 1, "auto")
        .iter()
        .map(|(_, replicas, _)| replicas[0])
        .collect();
    let moved = preferred[0];
    c.stop(moved);
    until_replicas(&c, 1 + moved % 3, "auto", "leadership moved", |s| {
        s.iter().all(|p| p.0 != moved && p.0 >= 0)
    });
    c.restart(moved);
    until_replicas(
        &c,
        1 + moved % 3,
        "auto",
        "preferred leaders restored",
        |s| s.iter().zip(&preferred).all(|(p, &want)| p.0 == want),
    );
}

/// CreateTopics v7 of one topic with explicit replica assignments: (error, message).
fn create_assigned(c: &Cluster, node: i32, name: &str, replicas: &[&[i32]]) -> (i16, String) {
    use minikafka::protocol::messages::create_topics_request::*;
    use minikafka::protocol::messages::create_topics_response::CreateTopicsResponse;
    let req = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name,
            num_partitions: -1,
            replication_factor: -1,
            assignments: replicas
                .iter()
                .enumerate()
                .map(|(i, r)| CreatableReplicaAssignment {
                    partition_index: i as i32,
                    broker_ids: r.to_vec(),
                })
                .collect(),
            configs: Vec::new(),
        }],
        timeout_ms: 10_000,
        validate_only: false,
    };
    let body = c.client(node).call(19, 7, |w| req.encode(w, 7));
    let r = decode!(CreateTopicsResponse, &body, 7);
    let t = &r.topics[0];
    (t.error_code, t.error_message.unwrap_or("").to_string())
}

#[test]
fn create_topics_with_replica_assignments_places_replicas_as_asked() {
    let c = Cluster::start("cluster-assign");
    let (e, msg) = create_assigned(&c, 1, "placed", &[&[2, 3], &[3, 1], &[1, 2]]);
    assert_eq!(e, 0, "{msg}");
    c.wait_for_topic("placed", 3);
    let sets = until_replicas(&c, 2, "placed", "leaders and ISRs", |s| {
        s.iter().all(|p| p.2.len() == 2)
    });
    let replicas: Vec<Vec<i32>> = sets.iter().map(|p| p.1.clone()).collect();
    assert_eq!(replicas, vec![vec![2, 3], vec![3, 1], vec![1, 2]]);
    let leaders: Vec<i32> = sets.iter().map(|p| p.0).collect();
    assert_eq!(leaders, vec![2, 3, 1], "the first replica leads");
    let (e, msg) = create_assigned(&c, 2, "nowhere", &[&[1, 9]]);
    assert_eq!(e, 39, "INVALID_REPLICA_ASSIGNMENT: {msg}");
    assert!(msg.contains("broker 9"), "{msg}");
    let (e, _) = create_assigned(&c, 3, "twice", &[&[1, 1]]);
    assert_eq!(e, 39, "INVALID_REPLICA_ASSIGNMENT");
}
