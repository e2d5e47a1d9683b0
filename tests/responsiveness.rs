//! No request waits long behind another: while one client creates thousands of partitions, a
//! client connecting afresh gets its ApiVersions answered at once. Creating every partition's
//! log inside the request held the one loop for about a millisecond per partition (2,000
//! partitions: 2.2 s; a fresh connection's ApiVersions waited all of it), so librdkafka's
//! 10 s ApiVersions timeout could pass.

#[macro_use]
mod support;

use minikafka::protocol::messages::create_partitions_request::*;
use minikafka::protocol::messages::create_partitions_response::CreatePartitionsResponse;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use support::*;

const POLICY_VIOLATION: i16 = 44;

/// Fresh connections, one ApiVersions each, until `stop`; returns (probes, slowest round trip
/// from connect to answer).
fn probe_fresh_connections(addr: SocketAddr, stop: Arc<AtomicBool>) -> (usize, Duration) {
    let (mut n, mut worst) = (0, Duration::ZERO);
    while !stop.load(Ordering::SeqCst) {
        let t = Instant::now();
        let mut c = Client::connect(addr);
        c.call(API_VERSIONS, 3, |w| {
            w.compact_string("probe");
            w.compact_string("1");
            w.uvarint(0);
        });
        worst = worst.max(t.elapsed());
        n += 1;
    }
    (n, worst)
}

fn grow(c: &mut Client, topic: &str, count: i32) -> Vec<(i16, Option<String>)> {
    let v = 3;
    let req = CreatePartitionsRequest {
        topics: vec![CreatePartitionsTopic {
            name: topic,
            count,
            assignments: None,
        }],
        timeout_ms: 5000,
        validate_only: false,
    };
    let body = c.call(CREATE_PARTITIONS, v, |w| req.encode(w, v));
    let resp = decode!(CreatePartitionsResponse, &body, v);
    resp.results
        .iter()
        .map(|r| (r.error_code, r.error_message.map(str::to_string)))
        .collect()
}

#[test]
fn fresh_connections_are_answered_while_thousands_of_partitions_are_created() {
    let b = TestBroker::start("responsive-create");
    let mut c = b.client();
    // The prober runs before, during and after the creations: whichever of its requests
    // arrives while a creation runs measures how long the loop is held.
    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let (addr, stop) = (b.addr, stop.clone());
        thread::spawn(move || probe_fresh_connections(addr, stop))
    };
    let started = Instant::now();
    c.create_topic("many", 5000);
    let r = grow(&mut c, "many", 10_000);
    assert_eq!(r, [(0, None)]);
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let (probes, worst) = prober.join().unwrap();
    assert!(probes > 0);
    assert!(
        worst < Duration::from_secs(1),
        "a fresh connection waited {worst:?} for ApiVersions ({probes} probes while creating \
         10,000 partitions took {took:?})"
    );
    // The partitions work: a write creates the log of its partition.
    assert_eq!(c.metadata_topics(Some(&["many"]), false)[0].3, 10_000);
    for p in [0, 4999, 5000, 9999] {
        assert_eq!(c.produce("many", p, &batch(2, "x")).0, 0, "partition {p}");
        assert!(b.config.log_dir.join(format!("many-{p}")).is_dir());
    }
    assert!(!b.config.log_dir.join("many-1").exists(), "created lazily");
}

#[test]
fn create_partitions_refuses_more_than_ten_thousand_new_partitions_at_once() {
    // Kafka's controller writes at most 10,000 records for one request and answers
    // POLICY_VIOLATION for the whole request otherwise.
    let b = TestBroker::start("responsive-grow-cap");
    let mut c = b.client();
    c.create_topic("capped", 1);
    let r = grow(&mut c, "capped", 10_002);
    assert_eq!(
        r,
        [(
            POLICY_VIOLATION,
            Some("Unable to perform excessively large batch operation.".into())
        )]
    );
    assert_eq!(c.metadata_topics(Some(&["capped"]), false)[0].3, 1);
    assert_eq!(grow(&mut c, "capped", 10_001), [(0, None)]);
}

/// The stall librdkafka's tests met: a consumer's first FindCoordinator creates
/// `__consumer_offsets` (50 partitions by default) inside the request, and fresh connections'
/// ApiVersions wait behind it (1 s measured here while four librdkafka tests ran, 10 s on a
/// loaded machine). With 2,000 offsets partitions the wait is seconds even on an idle machine.
#[test]
fn fresh_connections_are_answered_while_the_offsets_topic_is_created() {
    let b = TestBroker::start_with("responsive-offsets", |c| {
        c.offsets_topic_num_partitions = 2000
    });
    let mut c = b.client();
    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let (addr, stop) = (b.addr, stop.clone());
        thread::spawn(move || probe_fresh_connections(addr, stop))
    };
    let started = Instant::now();
    c.call(FIND_COORDINATOR, 2, |w| {
        w.string("group");
        w.i8(0);
    });
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let (probes, worst) = prober.join().unwrap();
    assert!(
        worst < Duration::from_secs(1),
        "a fresh connection waited {worst:?} for ApiVersions ({probes} probes; FindCoordinator \
         took {took:?})"
    );
}
