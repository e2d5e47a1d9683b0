//! The broker driven directly, without sockets: every API at every version with valid and
//! mangled bodies. A panic here would be a crash in production (the reactor only contains it).

use super::*;
use crate::protocol::apis::APIS;
use crate::protocol::messages::*;
use crate::protocol::wire::Writer;
use crate::reactor::Service;

use crate::test_util::TempDir;

/// A sample body of every served request at `version`, from the generated samples.
fn sample_body(key: i16, version: i16) -> Vec<u8> {
    let mut b = Vec::new();
    let w = &mut Writer::new(&mut b);
    match key {
        apis::PRODUCE => produce_request::sample::produce_request().encode(w, version),
        apis::FETCH => fetch_request::sample::fetch_request().encode(w, version),
        apis::LIST_OFFSETS => {
            list_offsets_request::sample::list_offsets_request().encode(w, version)
        }
        apis::METADATA => metadata_request::sample::metadata_request().encode(w, version),
        apis::API_VERSIONS => {
            api_versions_request::sample::api_versions_request().encode(w, version)
        }
        apis::CREATE_TOPICS => {
            create_topics_request::sample::create_topics_request().encode(w, version)
        }
        apis::INIT_PRODUCER_ID => {
            init_producer_id_request::sample::init_producer_id_request().encode(w, version)
        }
        apis::DESCRIBE_TOPIC_PARTITIONS => {
            describe_topic_partitions_request::sample::describe_topic_partitions_request()
                .encode(w, version)
        }
        apis::FIND_COORDINATOR => {
            find_coordinator_request::sample::find_coordinator_request().encode(w, version)
        }
        apis::JOIN_GROUP => join_group_request::sample::join_group_request().encode(w, version),
        apis::SYNC_GROUP => sync_group_request::sample::sync_group_request().encode(w, version),
        apis::HEARTBEAT => heartbeat_request::sample::heartbeat_request().encode(w, version),
        apis::LEAVE_GROUP => leave_group_request::sample::leave_group_request().encode(w, version),
        apis::OFFSET_COMMIT => {
            offset_commit_request::sample::offset_commit_request().encode(w, version)
        }
        apis::OFFSET_FETCH => {
            offset_fetch_request::sample::offset_fetch_request().encode(w, version)
        }
        apis::DESCRIBE_GROUPS => {
            describe_groups_request::sample::describe_groups_request().encode(w, version)
        }
        apis::LIST_GROUPS => list_groups_request::sample::list_groups_request().encode(w, version),
        apis::DELETE_GROUPS => {
            delete_groups_request::sample::delete_groups_request().encode(w, version)
        }
        apis::OFFSET_DELETE => {
            offset_delete_request::sample::offset_delete_request().encode(w, version)
        }
        apis::DELETE_TOPICS => {
            delete_topics_request::sample::delete_topics_request().encode(w, version)
        }
        apis::CREATE_PARTITIONS => {
            create_partitions_request::sample::create_partitions_request().encode(w, version)
        }
        apis::DESCRIBE_CONFIGS => {
            describe_configs_request::sample::describe_configs_request().encode(w, version)
        }
        apis::ALTER_CONFIGS => {
            alter_configs_request::sample::alter_configs_request().encode(w, version)
        }
        apis::INCREMENTAL_ALTER_CONFIGS => {
            incremental_alter_configs_request::sample::incremental_alter_configs_request()
                .encode(w, version)
        }
        apis::DELETE_RECORDS => {
            delete_records_request::sample::delete_records_request().encode(w, version)
        }
        apis::DESCRIBE_CLUSTER => {
            describe_cluster_request::sample::describe_cluster_request().encode(w, version)
        }
        apis::DESCRIBE_LOG_DIRS => {
            describe_log_dirs_request::sample::describe_log_dirs_request().encode(w, version)
        }
        apis::ADD_PARTITIONS_TO_TXN => {
            add_partitions_to_txn_request::sample::add_partitions_to_txn_request()
                .encode(w, version)
        }
        apis::ADD_OFFSETS_TO_TXN => {
            add_offsets_to_txn_request::sample::add_offsets_to_txn_request().encode(w, version)
        }
        apis::END_TXN => end_txn_request::sample::end_txn_request().encode(w, version),
        apis::WRITE_TXN_MARKERS => {
            write_txn_markers_request::sample::write_txn_markers_request().encode(w, version)
        }
        apis::TXN_OFFSET_COMMIT => {
            txn_offset_commit_request::sample::txn_offset_commit_request().encode(w, version)
        }
        apis::DESCRIBE_PRODUCERS => {
            describe_producers_request::sample::describe_producers_request().encode(w, version)
        }
        apis::DESCRIBE_TRANSACTIONS => {
            describe_transactions_request::sample::describe_transactions_request()
                .encode(w, version)
        }
        apis::LIST_TRANSACTIONS => {
            list_transactions_request::sample::list_transactions_request().encode(w, version)
        }
        apis::DESCRIBE_QUORUM => {
            describe_quorum_request::sample::describe_quorum_request().encode(w, version)
        }
        apis::ELECT_LEADERS => {
            elect_leaders_request::sample::elect_leaders_request().encode(w, version)
        }
        apis::OFFSET_FOR_LEADER_EPOCH => {
            offset_for_leader_epoch_request::sample::offset_for_leader_epoch_request()
                .encode(w, version)
        }
        _ => panic!("no sample for api {key}"),
    }
    b
}

fn frame(key: i16, version: i16, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    let mut w = Writer::new(&mut f);
    w.i16(key);
    w.i16(version);
    w.i32(42);
    w.nullable_string(Some("fuzz"));
    if apis::is_flexible(key, version) {
        w.uvarint(0);
    }
    w.bytes(body);
    f
}

/// xorshift64: deterministic noise without a crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn check_reply(r: &Reply, corr: bool) {
    if let Reply::Now(bytes) = r {
        assert!(bytes.len() >= 8);
        let size = i32::from_be_bytes(bytes[0..4].try_into().unwrap()) as usize;
        assert_eq!(size + 4, bytes.len(), "size prefix matches the response");
        if corr {
            assert_eq!(&bytes[4..8], &42i32.to_be_bytes());
        }
    }
}

#[test]
fn every_api_and_version_survives_valid_and_mangled_requests() {
    let dir = TempDir::new("fuzz");
    let now = Instant::now();
    let mut b = Broker::open(crate::config::Config::ephemeral(&dir.0), now).unwrap();
    // The samples name topics "s0", "s1", ...: make them exist so handlers go past the lookup.
    for i in 0..12 {
        b.create_topic(&format!("s{i}"), 3, 1, &[], now).unwrap();
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for api in APIS {
        for v in api.min..=api.max {
            let good = frame(api.key, v, &sample_body(api.key, v));
            let mut f = good.clone();
            let r = b.handle(1, &mut f, now);
            check_reply(&r, true);
            for round in 0..300 {
                let mut f = good.clone();
                match round % 3 {
                    0 => {
                        for _ in 0..1 + rng.below(4) {
                            let i = 8 + rng.below(f.len() - 8);
                            f[i] = rng.next() as u8;
                        }
                    }
                    1 => f.truncate(8 + rng.below(f.len() - 8)),
                    _ => {
                        // A huge length or count somewhere in the body.
                        let i = 8 + rng.below(f.len().saturating_sub(12));
                        f[i..i + 4].copy_from_slice(&0x7fff_fff0u32.to_be_bytes());
                    }
                }
                let r = b.handle(1, &mut f, now);
                check_reply(&r, true);
            }
        }
    }
    // Parked fetches (if any) complete at their deadline without trouble.
    b.tick(now + std::time::Duration::from_secs(60));
    let mut out = Vec::new();
    b.take_completions(&mut out);
    for (_, r) in &out {
        check_reply(&Reply::Now(r.clone()), true);
    }
    b.shutdown();
}

#[test]
fn unknown_keys_and_versions_close_but_api_versions_answers_35() {
    let dir = TempDir::new("versions");
    let now = Instant::now();
    let mut b = Broker::open(crate::config::Config::ephemeral(&dir.0), now).unwrap();
    let mut f = frame(999, 0, &[]);
    assert_eq!(b.handle(1, &mut f, now), Reply::Close);
    let mut f = frame(apis::PRODUCE, 2, &[]);
    assert_eq!(b.handle(1, &mut f, now), Reply::Close);
    let mut f = frame(apis::API_VERSIONS, 77, &[]);
    match b.handle(1, &mut f, now) {
        Reply::Now(bytes) => assert_eq!(&bytes[8..10], &35i16.to_be_bytes()),
        other => panic!("expected an answer, got {other:?}"),
    }
    let mut f = vec![0, 18];
    assert_eq!(b.handle(1, &mut f, now), Reply::Close);
    b.shutdown();
}

/// A WriteTxnMarkers answer that arrives after its transaction completed (a late or repeated
/// answer) must not mark the producer's partitions as written: with the same producer id and
/// epoch (clients that do not bump it per transaction), the next transaction's marker on that
/// partition would be skipped and its last stable offset would never move (seen in CI: a
/// whole output partition of a consume-transform-produce loop stayed invisible to
/// read_committed consumers).
#[test]
fn a_late_marker_answer_marks_nothing_for_the_next_transaction() {
    let dir = TempDir::new("late-markers");
    let now = Instant::now();
    let mut b = Broker::open(crate::config::Config::ephemeral(&dir.0), now).unwrap();
    b.remote_markers_written(4000, 0, &[("tout".to_string(), 5)], now);
    assert!(
        b.markers_done.is_empty(),
        "no transaction waits for it: {:?}",
        b.markers_done
    );
}
