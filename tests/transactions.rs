//! Transactions over a socket: every transaction API at every version it is served, the errors
//! clients meet (unknown ids, stale epochs, fencing, concurrent and invalid states), the KIP-890
//! produce check, read_committed fetches and offsets, the bytes of a marker, and an idempotent
//! producer's retry after a restart.

#[macro_use]
mod support;

use minikafka::protocol::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use minikafka::protocol::messages::add_offsets_to_txn_response::AddOffsetsToTxnResponse;
use minikafka::protocol::messages::add_partitions_to_txn_request::*;
use minikafka::protocol::messages::add_partitions_to_txn_response::AddPartitionsToTxnResponse;
use minikafka::protocol::messages::describe_producers_request::*;
use minikafka::protocol::messages::describe_producers_response::DescribeProducersResponse;
use minikafka::protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
use minikafka::protocol::messages::describe_transactions_response::DescribeTransactionsResponse;
use minikafka::protocol::messages::end_txn_request::EndTxnRequest;
use minikafka::protocol::messages::end_txn_response::EndTxnResponse;
use minikafka::protocol::messages::fetch_request::*;
use minikafka::protocol::messages::fetch_response::FetchResponse;
use minikafka::protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use minikafka::protocol::messages::find_coordinator_response::FindCoordinatorResponse;
use minikafka::protocol::messages::init_producer_id_request::InitProducerIdRequest;
use minikafka::protocol::messages::init_producer_id_response::InitProducerIdResponse;
use minikafka::protocol::messages::list_transactions_request::ListTransactionsRequest;
use minikafka::protocol::messages::list_transactions_response::ListTransactionsResponse;
use minikafka::protocol::messages::produce_request::*;
use minikafka::protocol::messages::produce_response::ProduceResponse;
use minikafka::protocol::messages::txn_offset_commit_request::*;
use minikafka::protocol::messages::txn_offset_commit_response::TxnOffsetCommitResponse;
use minikafka::protocol::messages::write_txn_markers_request::*;
use minikafka::protocol::messages::write_txn_markers_response::WriteTxnMarkersResponse;
use minikafka::records::BatchBuilder;
use support::*;

const ADD_PARTITIONS_TO_TXN: i16 = 24;
const ADD_OFFSETS_TO_TXN: i16 = 25;
const END_TXN: i16 = 26;
const WRITE_TXN_MARKERS: i16 = 27;
const TXN_OFFSET_COMMIT: i16 = 28;
const DESCRIBE_PRODUCERS: i16 = 61;
const DESCRIBE_TRANSACTIONS: i16 = 65;
const LIST_TRANSACTIONS: i16 = 66;

const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
const CONCURRENT_TRANSACTIONS: i16 = 51;
const PRODUCER_FENCED: i16 = 90;
const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;
const INVALID_RECORD: i16 = 87;

fn init(c: &mut Client, v: i16, id: &str, timeout_ms: i32) -> (i16, i64, i16) {
    let req = InitProducerIdRequest {
        transactional_id: Some(id),
        transaction_timeout_ms: timeout_ms,
        producer_id: -1,
        producer_epoch: -1,
    };
    let body = c.call(INIT_PRODUCER_ID, v, |w| req.encode(w, v));
    let r = decode!(InitProducerIdResponse, &body, v);
    (r.error_code, r.producer_id, r.producer_epoch)
}

fn add_partitions(
    c: &mut Client,
    v: i16,
    id: &str,
    pid: i64,
    epoch: i16,
    parts: &[(&str, i32)],
) -> Vec<i16> {
    let mut topics: Vec<AddPartitionsToTxnTopic<'_>> = Vec::new();
    for &(t, p) in parts {
        match topics.iter_mut().find(|x| x.name == t) {
            Some(x) => x.partitions.push(p),
            None => topics.push(AddPartitionsToTxnTopic {
                name: t,
                partitions: vec![p],
            }),
        }
    }
    let req = if v <= 3 {
        AddPartitionsToTxnRequest {
            v3_and_below_transactional_id: id,
            v3_and_below_producer_id: pid,
            v3_and_below_producer_epoch: epoch,
            v3_and_below_topics: topics,
            ..Default::default()
        }
    } else {
        AddPartitionsToTxnRequest {
            transactions: vec![AddPartitionsToTxnTransaction {
                transactional_id: id,
                producer_id: pid,
                producer_epoch: epoch,
                verify_only: false,
                topics,
            }],
            ..Default::default()
        }
    };
    let body = c.call(ADD_PARTITIONS_TO_TXN, v, |w| req.encode(w, v));
    let r = decode!(AddPartitionsToTxnResponse, &body, v);
    let results = if v <= 3 {
        r.results_by_topic_v3_and_below.clone()
    } else {
        assert_eq!(r.results_by_transaction.len(), 1);
        r.results_by_transaction[0].topic_results.clone()
    };
    results
        .iter()
        .flat_map(|t| {
            t.results_by_partition
                .iter()
                .map(|p| p.partition_error_code)
        })
        .collect()
}

fn end(c: &mut Client, v: i16, id: &str, pid: i64, epoch: i16, commit: bool) -> (i16, i64, i16) {
    let req = EndTxnRequest {
        transactional_id: id,
        producer_id: pid,
        producer_epoch: epoch,
        committed: commit,
    };
    let body = c.call(END_TXN, v, |w| req.encode(w, v));
    let r = decode!(EndTxnResponse, &body, v);
    (r.error_code, r.producer_id, r.producer_epoch)
}

fn txn_batch(pid: i64, epoch: i16, seq: i32, values: &[&str]) -> Vec<u8> {
    let now = now_ms();
    let mut b = BatchBuilder::new(0, now)
        .producer(pid, epoch, seq)
        .transactional(true);
    for v in values {
        b.push(None, now, Some(b"k"), Some(v.as_bytes()), &[]);
    }
    b.finish()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn produce_txn(c: &mut Client, id: Option<&str>, topic: &str, p: i32, batch: &[u8]) -> i16 {
    let v = 9;
    let req = ProduceRequest {
        transactional_id: id,
        acks: -1,
        timeout_ms: 5000,
        topic_data: vec![TopicProduceData {
            name: topic,
            topic_id: [0; 16],
            partition_data: vec![PartitionProduceData {
                index: p,
                records: Some(batch),
            }],
        }],
    };
    let body = c.call(PRODUCE, v, |w| req.encode(w, v));
    let r = decode!(ProduceResponse, &body, v);
    r.responses[0].partition_responses[0].error_code
}

/// (records values, high watermark, last stable offset, aborted producer ids)
fn fetch_all(c: &mut Client, topic: &str, committed: bool) -> (Vec<String>, i64, i64, Vec<i64>) {
    let v = 12;
    let req = FetchRequest {
        max_wait_ms: 0,
        min_bytes: 0,
        max_bytes: 1 << 20,
        isolation_level: committed as i8,
        session_id: 0,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic,
            partitions: vec![FetchPartition {
                partition: 0,
                fetch_offset: 0,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let body = c.call(FETCH, v, |w| req.encode(w, v));
    let r = decode!(FetchResponse, &body, v);
    let p = &r.responses[0].partitions[0];
    // What a read_committed client does with the aborted list: a producer's transactional
    // batches from an aborted transaction's first offset up to its marker are dropped.
    let mut pending: Vec<(i64, i64)> = p
        .aborted_transactions
        .iter()
        .flatten()
        .map(|a| (a.first_offset, a.producer_id))
        .collect();
    pending.sort_unstable();
    let mut pending = pending.into_iter().peekable();
    let mut aborting = std::collections::HashSet::new();
    let mut vals = Vec::new();
    if let Some(recs) = p.records {
        for b in split_batches(recs).0 {
            let h = minikafka::records::BatchHeader::parse(&b.bytes).unwrap();
            while let Some(&(first, pid)) = pending.peek() {
                if first > h.base_offset {
                    break;
                }
                aborting.insert(pid);
                pending.next();
            }
            if h.is_control() {
                aborting.remove(&h.producer_id);
                continue;
            }
            if h.is_transactional() && aborting.contains(&h.producer_id) {
                continue;
            }
            for v in values(&b.bytes) {
                vals.push(String::from_utf8(v).unwrap());
            }
        }
    }
    let aborted = p
        .aborted_transactions
        .iter()
        .flatten()
        .map(|a| a.producer_id)
        .collect();
    (vals, p.high_watermark, p.last_stable_offset, aborted)
}

#[test]
fn a_transaction_at_every_version() {
    let b = TestBroker::start("txn-versions");
    let mut c = b.client();
    c.create_topic("t", 2);
    // FindCoordinator for a transactional id (key type 1), old and batched forms.
    for v in [1, 3, 4, 6] {
        let req = FindCoordinatorRequest {
            key: "app",
            key_type: 1,
            coordinator_keys: vec!["app"],
        };
        let body = c.call(FIND_COORDINATOR, v, |w| req.encode(w, v));
        let r = decode!(FindCoordinatorResponse, &body, v);
        let code = if v >= 4 {
            r.coordinators[0].error_code
        } else {
            r.error_code
        };
        assert_eq!(code, 0, "FindCoordinator v{v}");
    }
    for (i, v) in (0..=5).enumerate() {
        let id = format!("app-v{v}");
        let (e, pid, epoch) = init(&mut c, v.min(5), &id, 60_000);
        assert_eq!((e, epoch), (0, 0), "InitProducerId v{v}");
        let codes = add_partitions(&mut c, v, &id, pid, epoch, &[("t", 0), ("t", 1)]);
        assert_eq!(codes, vec![0, 0], "AddPartitionsToTxn v{v}");
        let batch = txn_batch(pid, epoch, 0, &[&format!("x{i}")]);
        assert_eq!(produce_txn(&mut c, Some(&id), "t", 0, &batch), 0);
        let v_end = v.min(5);
        let (e, rpid, repoch) = end(&mut c, v_end, &id, pid, epoch, i % 2 == 0);
        assert_eq!(e, 0, "EndTxn v{v_end}");
        if v_end >= 5 {
            // Transactions v2: the epoch moved on.
            assert_eq!((rpid, repoch), (pid, epoch + 1));
        }
    }
    // Three committed, three aborted: read_committed sees the committed ones only.
    let (vals, hw, lso, aborted) = fetch_all(&mut c, "t", true);
    assert_eq!(vals, vec!["x0", "x2", "x4"]);
    assert_eq!(hw, lso);
    assert_eq!(aborted.len(), 3);
    let (vals, _, _, aborted) = fetch_all(&mut c, "t", false);
    assert_eq!(
        vals.len(),
        6,
        "read_uncommitted: no aborted list, everything"
    );
    assert!(aborted.is_empty());
    // DescribeTransactions and ListTransactions.
    let req = DescribeTransactionsRequest {
        transactional_ids: vec!["app-v0", "nope", ""],
    };
    let body = c.call(DESCRIBE_TRANSACTIONS, 0, |w| req.encode(w, 0));
    let r = decode!(DescribeTransactionsResponse, &body, 0);
    assert_eq!(r.transaction_states[0].error_code, 0);
    assert_eq!(r.transaction_states[0].transaction_state, "CompleteCommit");
    assert_eq!(
        r.transaction_states[1].error_code,
        TRANSACTIONAL_ID_NOT_FOUND
    );
    assert_eq!(r.transaction_states[2].error_code, 42);
    for v in 0..=1 {
        let req = ListTransactionsRequest {
            state_filters: vec!["CompleteAbort", "Bogus"],
            duration_filter: -1,
            ..Default::default()
        };
        let body = c.call(LIST_TRANSACTIONS, v, |w| req.encode(w, v));
        let r = decode!(ListTransactionsResponse, &body, v);
        assert_eq!(r.unknown_state_filters, vec!["Bogus"]);
        let ids: Vec<&str> = r
            .transaction_states
            .iter()
            .map(|t| t.transactional_id)
            .collect();
        assert_eq!(
            ids,
            vec!["app-v1", "app-v3", "app-v5"],
            "ListTransactions v{v}"
        );
    }
    // DescribeProducers: the partition's producers, no open transaction.
    let req = DescribeProducersRequest {
        topics: vec![TopicRequest {
            name: "t",
            partition_indexes: vec![0, 9],
        }],
    };
    let body = c.call(DESCRIBE_PRODUCERS, 0, |w| req.encode(w, 0));
    let r = decode!(DescribeProducersResponse, &body, 0);
    let p0 = &r.topics[0].partitions[0];
    assert_eq!(p0.error_code, 0);
    assert_eq!(p0.active_producers.len(), 6);
    assert!(p0
        .active_producers
        .iter()
        .all(|p| p.current_txn_start_offset == -1));
    assert_eq!(r.topics[0].partitions[1].error_code, 3);
}

#[test]
fn errors_clients_meet() {
    let b = TestBroker::start("txn-errors");
    let mut c = b.client();
    c.create_topic("t", 1);
    assert_eq!(init(&mut c, 4, "x", 900_001).0, INVALID_TRANSACTION_TIMEOUT);
    assert_eq!(init(&mut c, 4, "", 1000).0, 42, "INVALID_REQUEST");
    // Unknown transactional id.
    assert_eq!(
        add_partitions(&mut c, 3, "unknown", 1, 0, &[("t", 0)]),
        vec![INVALID_PRODUCER_ID_MAPPING]
    );
    let (_, pid, epoch) = init(&mut c, 4, "app", 60_000);
    // A stale epoch is PRODUCER_FENCED from v2, INVALID_PRODUCER_EPOCH before.
    assert_eq!(
        add_partitions(&mut c, 3, "app", pid, epoch + 1, &[("t", 0)]),
        vec![PRODUCER_FENCED]
    );
    assert_eq!(
        add_partitions(&mut c, 1, "app", pid, epoch + 1, &[("t", 0)]),
        vec![INVALID_PRODUCER_EPOCH]
    );
    // An unknown partition fails alone; the rest are not attempted.
    assert_eq!(
        add_partitions(&mut c, 3, "app", pid, epoch, &[("t", 0), ("missing", 0)]),
        vec![55, 3]
    );
    // Nothing to end yet.
    assert_eq!(end(&mut c, 3, "app", pid, epoch, true).0, INVALID_TXN_STATE);
    // KIP-890: a transactional write to a partition not in the transaction is refused.
    assert_eq!(
        produce_txn(
            &mut c,
            Some("app"),
            "t",
            0,
            &txn_batch(pid, epoch, 0, &["stray"])
        ),
        INVALID_TXN_STATE
    );
    assert_eq!(
        add_partitions(&mut c, 3, "app", pid, epoch, &[("t", 0)]),
        vec![0]
    );
    assert_eq!(
        produce_txn(
            &mut c,
            Some("app"),
            "t",
            0,
            &txn_batch(pid, epoch, 0, &["ok"])
        ),
        0
    );
    // A client may not write a control batch.
    let mut cb = BatchBuilder::new(0, now_ms())
        .producer(pid, epoch, -1)
        .transactional(true)
        .control(true);
    cb.push(
        None,
        now_ms(),
        Some(&[0, 0, 0, 1]),
        Some(&[0, 0, 0, 0, 0, 0]),
        &[],
    );
    assert_eq!(
        produce_txn(&mut c, Some("app"), "t", 0, &cb.finish()),
        INVALID_RECORD
    );
    // A second instance fences the first: its open transaction is aborted first
    // (CONCURRENT_TRANSACTIONS, the client retries), then it gets the next epoch.
    assert_eq!(init(&mut c, 4, "app", 60_000).0, CONCURRENT_TRANSACTIONS);
    let (e, pid2, epoch2) = init(&mut c, 4, "app", 60_000);
    assert_eq!((e, pid2, epoch2), (0, pid, epoch + 2));
    assert_eq!(end(&mut c, 3, "app", pid, epoch, true).0, PRODUCER_FENCED);
    assert_eq!(
        end(&mut c, 1, "app", pid, epoch, true).0,
        INVALID_PRODUCER_EPOCH
    );
    assert_eq!(
        produce_txn(
            &mut c,
            Some("app"),
            "t",
            0,
            &txn_batch(pid, epoch, 1, &["zombie"])
        ),
        INVALID_PRODUCER_EPOCH
    );
    let (vals, _, _, _) = fetch_all(&mut c, "t", true);
    assert!(
        vals.is_empty(),
        "the fenced transaction was aborted: {vals:?}"
    );
}

#[test]
fn offsets_committed_in_a_transaction_appear_when_it_commits() {
    let b = TestBroker::start("txn-offsets");
    let mut c = b.client();
    c.create_topic("in", 1);
    let (_, pid, epoch) = init(&mut c, 4, "app", 60_000);
    let commit_offsets = |c: &mut Client, v: i16, offset: i64| -> i16 {
        let req = TxnOffsetCommitRequest {
            transactional_id: "app",
            group_id: "g",
            producer_id: pid,
            producer_epoch: epoch,
            generation_id: -1,
            member_id: "",
            group_instance_id: None,
            topics: vec![TxnOffsetCommitRequestTopic {
                name: "in",
                partitions: vec![TxnOffsetCommitRequestPartition {
                    partition_index: 0,
                    committed_offset: offset,
                    committed_leader_epoch: -1,
                    committed_metadata: Some(""),
                }],
            }],
        };
        let body = c.call(TXN_OFFSET_COMMIT, v, |w| req.encode(w, v));
        decode!(TxnOffsetCommitResponse, &body, v).topics[0].partitions[0].error_code
    };
    let committed = |c: &mut Client| -> i64 {
        use minikafka::protocol::messages::offset_fetch_request::*;
        use minikafka::protocol::messages::offset_fetch_response::OffsetFetchResponse;
        let req = OffsetFetchRequest {
            group_id: "g",
            topics: Some(vec![OffsetFetchRequestTopic {
                name: "in",
                partition_indexes: vec![0],
            }]),
            ..Default::default()
        };
        let body = c.call(OFFSET_FETCH, 5, |w| req.encode(w, 5));
        decode!(OffsetFetchResponse, &body, 5).topics[0].partitions[0].committed_offset
    };
    // The group's coordinator is looked up first (this creates __consumer_offsets).
    let req = FindCoordinatorRequest {
        key: "g",
        key_type: 0,
        coordinator_keys: vec![],
    };
    let body = c.call(FIND_COORDINATOR, 3, |w| req.encode(w, 3));
    assert_eq!(decode!(FindCoordinatorResponse, &body, 3).error_code, 0);
    // Without AddOffsetsToTxn first the commit is refused.
    assert_eq!(commit_offsets(&mut c, 3, 5), INVALID_TXN_STATE);
    for (round, v) in (0..=4).enumerate() {
        let req = AddOffsetsToTxnRequest {
            transactional_id: "app",
            producer_id: pid,
            producer_epoch: epoch,
            group_id: "g",
        };
        let body = c.call(ADD_OFFSETS_TO_TXN, v, |w| req.encode(w, v));
        assert_eq!(
            decode!(AddOffsetsToTxnResponse, &body, v).error_code,
            0,
            "AddOffsetsToTxn v{v}"
        );
        let offset = 10 * (round as i64 + 1);
        assert_eq!(
            commit_offsets(&mut c, v.min(5), offset),
            0,
            "TxnOffsetCommit v{v}"
        );
        let before = committed(&mut c);
        assert_ne!(before, offset, "not visible before the transaction ends");
        // A read_committed consumer asking for stable offsets is told to wait (KIP-447).
        {
            use minikafka::protocol::messages::offset_fetch_request::*;
            use minikafka::protocol::messages::offset_fetch_response::OffsetFetchResponse;
            let req = OffsetFetchRequest {
                group_id: "g",
                topics: Some(vec![OffsetFetchRequestTopic {
                    name: "in",
                    partition_indexes: vec![0],
                }]),
                require_stable: true,
                ..Default::default()
            };
            let body = c.call(OFFSET_FETCH, 7, |w| req.encode(w, 7));
            let r = decode!(OffsetFetchResponse, &body, 7);
            assert_eq!(
                r.topics[0].partitions[0].error_code, 88,
                "UNSTABLE_OFFSET_COMMIT"
            );
        }
        let commit = round % 2 == 0;
        assert_eq!(end(&mut c, 3, "app", pid, epoch, commit).0, 0);
        let after = committed(&mut c);
        if commit {
            assert_eq!(after, offset);
        } else {
            assert_eq!(after, before, "an aborted commit leaves the offset");
        }
    }
    // And they survive a restart (replayed with their markers).
    let want = committed(&mut c);
    let mut b = b;
    b.restart();
    let mut c = b.client();
    assert_eq!(committed(&mut c), want);
}

#[test]
fn write_txn_markers_and_the_bytes_of_a_marker() {
    let b = TestBroker::start("txn-markers");
    let mut c = b.client();
    c.create_topic("t", 1);
    let (_, pid, epoch) = init(&mut c, 4, "app", 60_000);
    assert_eq!(
        add_partitions(&mut c, 3, "app", pid, epoch, &[("t", 0)]),
        vec![0]
    );
    assert_eq!(
        produce_txn(
            &mut c,
            Some("app"),
            "t",
            0,
            &txn_batch(pid, epoch, 0, &["a"])
        ),
        0
    );
    let req = WriteTxnMarkersRequest {
        markers: vec![WritableTxnMarker {
            producer_id: pid,
            producer_epoch: epoch,
            transaction_result: true,
            topics: vec![WritableTxnMarkerTopic {
                name: "t",
                partition_indexes: vec![0, 7],
            }],
            coordinator_epoch: 3,
        }],
    };
    let body = c.call(WRITE_TXN_MARKERS, 1, |w| req.encode(w, 1));
    let r = decode!(WriteTxnMarkersResponse, &body, 1);
    let codes: Vec<i16> = r.markers[0].topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect();
    assert_eq!(codes, vec![0, 3]);
    // The marker as Kafka lays it out.
    let f = c.fetch(&FetchArgs::new("t", 1));
    let (batches, _) = split_batches(f.records.as_deref().unwrap());
    let m = &batches[0].bytes;
    let h = minikafka::records::BatchHeader::parse(m).unwrap();
    assert!(h.is_control() && h.is_transactional());
    assert_eq!(
        (h.producer_id, h.producer_epoch, h.base_sequence),
        (pid, epoch, -1)
    );
    assert_eq!(h.record_count, 1);
    assert_eq!(h.attributes & 0x30, 0x30);
    minikafka::records::validate_batch(m).unwrap();
    let payload = minikafka::records::records_payload(m, 1 << 20).unwrap();
    let recs = minikafka::records::parse_records(&payload, 1).unwrap();
    assert_eq!(recs[0].key, Some(&[0u8, 0, 0, 1][..]), "version 0, COMMIT");
    assert_eq!(
        recs[0].value,
        Some(&[0u8, 0, 0, 0, 0, 3][..]),
        "version 0, coordinator epoch 3"
    );
}

#[test]
fn an_idempotent_retry_after_a_restart_is_not_stored_twice() {
    let mut b = TestBroker::start("idem-restart");
    let mut c = b.client();
    c.create_topic("t", 1);
    let body = c.call(INIT_PRODUCER_ID, 4, |w| {
        InitProducerIdRequest::default().encode(w, 4)
    });
    let pid = decode!(InitProducerIdResponse, &body, 4).producer_id;
    let batch = |seq: i32| {
        let mut bb = BatchBuilder::new(0, now_ms()).producer(pid, 0, seq);
        bb.push(
            None,
            now_ms(),
            None,
            Some(format!("s{seq}").as_bytes()),
            &[],
        );
        bb.finish()
    };
    for seq in 0..6 {
        let (e, off, _) = c.produce_to(9, "t", [0; 16], 0, &batch(seq), -1);
        assert_eq!((e, off), (0, seq as i64));
    }
    b.restart();
    let mut c = b.client();
    // Retries of any of the last five batches are answered with their original offsets.
    for seq in 1..6 {
        let (e, off, _) = c.produce_to(9, "t", [0; 16], 0, &batch(seq), -1);
        assert_eq!((e, off), (0, seq as i64), "retry of sequence {seq}");
    }
    assert_eq!(c.list_offset(7, "t", 0, -1).2, 6, "nothing stored twice");
    let (e, off, _) = c.produce_to(9, "t", [0; 16], 0, &batch(6), -1);
    assert_eq!((e, off), (0, 6));
}

#[test]
fn a_huge_partition_list_is_answered_and_adds_nothing() {
    let b = TestBroker::start("txn-huge");
    let mut c = b.client();
    c.create_topic("t", 1);
    let (_, pid, epoch) = init(&mut c, 4, "app", 60_000);
    // 200,000 partitions of a one-partition topic: one known, the rest unknown.
    let parts: Vec<(&str, i32)> = (0..200_000).map(|p| ("t", p)).collect();
    let t0 = std::time::Instant::now();
    let codes = add_partitions(&mut c, 3, "app", pid, epoch, &parts);
    let took = t0.elapsed();
    assert_eq!(codes.len(), 200_000);
    assert_eq!(codes[0], 55, "OPERATION_NOT_ATTEMPTED for the known one");
    assert!(
        codes[1..].iter().all(|&e| e == 3),
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    // Nothing was added: there is no transaction to end, and the partition refuses its writes.
    assert_eq!(end(&mut c, 3, "app", pid, epoch, true).0, INVALID_TXN_STATE);
    assert_eq!(
        produce_txn(
            &mut c,
            Some("app"),
            "t",
            0,
            &txn_batch(pid, epoch, 0, &["a"])
        ),
        INVALID_TXN_STATE
    );
    // And the broker goes on serving.
    assert_eq!(
        add_partitions(&mut c, 3, "app", pid, epoch, &[("t", 0)]),
        vec![0]
    );
}
