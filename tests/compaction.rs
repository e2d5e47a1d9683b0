//! Compaction through the broker: a `cleanup.policy=compact` topic is cleaned on the timer
//! tick, leaving the latest value per key at its original offset; keyless records are refused
//! with INVALID_RECORD.

#[macro_use]
mod support;

use minikafka::protocol::messages::create_topics_request::*;
use minikafka::records::{decode_records, BatchBuilder};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::*;

fn create_compacted(c: &mut Client, name: &str) {
    let req = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name,
            num_partitions: 1,
            replication_factor: 1,
            configs: [
                ("cleanup.policy", "compact"),
                ("segment.ms", "1"),
                ("min.cleanable.dirty.ratio", "0.01"),
            ]
            .iter()
            .map(|(k, v)| CreatableTopicConfig {
                name: k,
                value: Some(v),
            })
            .collect(),
            ..Default::default()
        }],
        timeout_ms: 1000,
        validate_only: false,
    };
    c.call(CREATE_TOPICS, 7, |w| req.encode(w, 7));
}

/// (offset, key, value) of every record from offset 0.
fn read_all(c: &mut Client, topic: &str) -> Vec<(i64, Vec<u8>, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let mut args = FetchArgs::new(topic, offset);
        args.max_bytes = 1 << 20;
        args.partition_max_bytes = 1 << 20;
        let f = c.fetch(&args);
        assert_eq!(f.error, 0);
        let (batches, _) = split_batches(f.records.as_deref().unwrap_or(&[]));
        if batches.is_empty() {
            return out;
        }
        for b in &batches {
            for r in decode_records(&b.bytes).unwrap() {
                out.push((
                    b.base_offset + r.offset_delta as i64,
                    r.key.unwrap().to_vec(),
                    r.value.map(<[u8]>::to_vec),
                ));
            }
            offset = b.last_offset + 1;
        }
    }
}

#[test]
fn a_compacted_topic_keeps_the_latest_value_per_key() {
    let b = TestBroker::start("compaction");
    let mut c = b.client();
    create_compacted(&mut c, "latest");
    let mut latest = BTreeMap::new();
    let mut n = 0;
    for round in 0..40 {
        // Kafka rolls on the records' timestamps: each round is 10 ms later (segment.ms=1).
        let ts = 1_700_000_000_000 + round * 10;
        let mut bb = BatchBuilder::new(0, ts);
        for k in 0..10 {
            let key = format!("k{k}");
            let value = format!("v{round}-{k}");
            bb.push(None, ts, Some(key.as_bytes()), Some(value.as_bytes()), &[]);
            latest.insert(key.into_bytes(), n);
            n += 1;
        }
        assert_eq!(c.produce("latest", 0, &bb.finish()), (0, round * 10));
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let records = loop {
        let r = read_all(&mut c, "latest");
        if r.len() <= 20 {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "not compacted: {} records",
            r.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // Per key only the newest record is left (the active segment may still hold one more).
    let mut seen = BTreeMap::new();
    for (offset, key, value) in &records {
        assert!(value.is_some());
        seen.insert(key.clone(), *offset);
    }
    assert_eq!(seen, latest, "the latest offset of every key survives");
    assert!(
        records.windows(2).all(|w| w[0].0 < w[1].0),
        "offsets ascend"
    );
    assert_eq!(
        c.list_offset(7, "latest", 0, -1).2,
        400,
        "the log end is unchanged"
    );

    // A record without a key is refused on a compacted topic.
    let mut bb = BatchBuilder::new(0, 1_700_000_000_000);
    bb.push(None, 1_700_000_000_000, None, Some(b"no key"), &[]);
    assert_eq!(c.produce("latest", 0, &bb.finish()).0, 87);
}
