//! Every batch codec over raw sockets: batches compressed with each codec are stored and fetched
//! back byte for byte, and a topic whose `compression.type` names a codec gets producer batches
//! recompressed to it.

#[macro_use]
mod support;

use minikafka::protocol::messages::create_topics_request::{
    CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
};
use minikafka::protocol::messages::create_topics_response::CreateTopicsResponse;
use minikafka::records::{
    compress, compute_crc, parse_records, recompress_batch, records_payload, validate_batch,
    BatchBuilder, Compression,
};
use support::*;

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];
const CORRUPT_MESSAGE: i16 = 2;
const CAP: usize = 1 << 24;

/// A batch of `n` records (values long enough to compress) with codec `c`.
fn batch_with(c: Compression, n: usize, tag: &str) -> Vec<u8> {
    let mut b = BatchBuilder::new(0, 1_700_000_000_000);
    for i in 0..n {
        let v = format!("{tag}-{i}-{}", "payload ".repeat(i % 20));
        b.push(
            None,
            1_700_000_000_000 + i as i64,
            Some(format!("key-{i}").as_bytes()),
            Some(v.as_bytes()),
            &[("codec", Some(tag.as_bytes()))],
        );
    }
    recompress_batch(&b.finish(), c, CAP).unwrap()
}

/// (key, value) of every record in a batch of any codec.
fn records_of(batch: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let h = validate_batch(batch).unwrap();
    let payload = records_payload(batch, CAP).unwrap();
    parse_records(&payload, h.record_count)
        .unwrap()
        .iter()
        .map(|r| (r.key.unwrap().to_vec(), r.value.unwrap().to_vec()))
        .collect()
}

fn fetch_all(c: &mut Client, topic: &str) -> Vec<RawBatch> {
    let f = c.fetch(&FetchArgs::new(topic, 0));
    assert_eq!(f.error, 0);
    split_batches(&f.records.unwrap_or_default()).0
}

fn create_with_configs(c: &mut Client, name: &str, configs: &[(&str, &str)]) -> i16 {
    let req = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name,
            num_partitions: 1,
            replication_factor: 1,
            configs: configs
                .iter()
                .map(|&(name, value)| CreatableTopicConfig {
                    name,
                    value: Some(value),
                })
                .collect(),
            ..Default::default()
        }],
        timeout_ms: 5000,
        validate_only: false,
    };
    let body = c.call(CREATE_TOPICS, 7, |w| req.encode(w, 7));
    decode!(CreateTopicsResponse, &body, 7).topics[0].error_code
}

#[test]
fn every_codec_is_stored_as_sent() {
    let b = TestBroker::start("codecs");
    let mut c = b.client();
    c.create_topic("codecs", 1);
    let mut sent = Vec::new();
    for codec in CODECS {
        let batch = batch_with(codec, 300, &format!("{codec:?}"));
        let (err, _) = c.produce("codecs", 0, &batch);
        assert_eq!(err, 0, "{codec:?}");
        sent.push(batch);
    }
    let got = fetch_all(&mut c, "codecs");
    assert_eq!(got.len(), sent.len());
    let mut next = 0;
    for ((codec, s), g) in CODECS.iter().zip(&sent).zip(&got) {
        assert_eq!(g.base_offset, next, "{codec:?}");
        next += 300;
        // Byte-identical from the magic byte on (base offset and leader epoch are the broker's).
        assert_eq!(&g.bytes[16..], &s[16..], "{codec:?}");
        assert_eq!(validate_batch(&g.bytes).unwrap().compression(), *codec);
        assert_eq!(records_of(&g.bytes), records_of(s), "{codec:?}");
    }
}

#[test]
fn raw_snappy_blocks_are_accepted_too() {
    // Some clients send plain snappy blocks rather than the xerial stream.
    let b = TestBroker::start_with("rawsnappy", |cfg| cfg.compression_type = "gzip".into());
    let mut c = b.client();
    c.create_topic("raw", 1);
    let plain = batch_with(Compression::None, 50, "raw");
    let mut raw = plain[..61].to_vec();
    raw.extend_from_slice(&snap_raw(&plain[61..]));
    fix_header(&mut raw, Compression::Snappy);
    assert_eq!(c.produce("raw", 0, &raw).0, 0);
    // The broker's codec is gzip, so it had to read the raw snappy records to rewrite them.
    let got = fetch_all(&mut c, "raw");
    assert_eq!(
        validate_batch(&got[0].bytes).unwrap().compression(),
        Compression::Gzip
    );
    assert_eq!(records_of(&got[0].bytes), records_of(&plain));
}

/// One raw snappy block (what `compress` does not emit: it writes the xerial stream).
fn snap_raw(data: &[u8]) -> Vec<u8> {
    // Literal-only raw snappy: varint length, then literal chunks of up to 60 bytes.
    let mut out = Vec::new();
    let mut n = data.len();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
    for chunk in data.chunks(60) {
        out.push(((chunk.len() - 1) as u8) << 2);
        out.extend_from_slice(chunk);
    }
    out
}

/// Sets the codec bits, batchLength and CRC of a hand-assembled batch.
fn fix_header(batch: &mut [u8], codec: Compression) {
    let len = (batch.len() - 12) as i32;
    batch[8..12].copy_from_slice(&len.to_be_bytes());
    let a = (i16::from_be_bytes([batch[21], batch[22]]) & !7) | codec.bits();
    batch[21..23].copy_from_slice(&a.to_be_bytes());
    let crc = compute_crc(batch);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

#[test]
fn zstd_topic_stores_uncompressed_produce_as_zstd() {
    let b = TestBroker::start("zstdtopic");
    let mut c = b.client();
    assert_eq!(
        create_with_configs(&mut c, "z", &[("compression.type", "zstd")]),
        0
    );
    c.create_topic("plain", 1);
    let sent = batch_with(Compression::None, 200, "z");
    let gz = batch_with(Compression::Gzip, 10, "g");
    let zs = batch_with(Compression::Zstd, 10, "zz");
    for topic in ["z", "plain"] {
        for batch in [&sent, &gz, &zs] {
            assert_eq!(c.produce(topic, 0, batch).0, 0, "{topic}");
        }
    }
    let got = fetch_all(&mut c, "z");
    assert_eq!(got.len(), 3);
    for (g, s) in got.iter().zip([&sent, &gz, &zs]) {
        let h = validate_batch(&g.bytes).unwrap();
        assert_eq!(h.compression(), Compression::Zstd);
        assert_eq!(records_of(&g.bytes), records_of(s));
    }
    assert_eq!(
        (got[0].base_offset, got[1].base_offset, got[2].base_offset),
        (0, 200, 210)
    );
    assert!(got[0].bytes.len() < sent.len() / 2);
    // A batch already in the topic's codec is kept as sent.
    assert_eq!(&got[2].bytes[16..], &zs[16..]);
    // The `producer` default keeps every codec.
    let plain = fetch_all(&mut c, "plain");
    for (g, s) in plain.iter().zip([&sent, &gz, &zs]) {
        assert_eq!(&g.bytes[16..], &s[16..]);
    }
}

#[test]
fn broker_codec_applies_and_uncompressed_topic_decompresses() {
    let b = TestBroker::start_with("brokercodec", |cfg| cfg.compression_type = "lz4".into());
    let mut c = b.client();
    c.create_topic("l", 1);
    assert_eq!(
        create_with_configs(&mut c, "u", &[("compression.type", "uncompressed")]),
        0
    );
    let sent = batch_with(Compression::Snappy, 100, "s");
    assert_eq!(c.produce("l", 0, &sent).0, 0);
    assert_eq!(c.produce("u", 0, &sent).0, 0);
    let l = fetch_all(&mut c, "l");
    assert_eq!(
        validate_batch(&l[0].bytes).unwrap().compression(),
        Compression::Lz4
    );
    assert_eq!(records_of(&l[0].bytes), records_of(&sent));
    let u = fetch_all(&mut c, "u");
    assert_eq!(
        validate_batch(&u[0].bytes).unwrap().compression(),
        Compression::None
    );
    assert_eq!(records_of(&u[0].bytes), records_of(&sent));
}

#[test]
fn bad_payloads_are_corrupt_message_on_a_recompressing_topic() {
    let b = TestBroker::start("badcodec");
    let mut c = b.client();
    assert_eq!(
        create_with_configs(&mut c, "z", &[("compression.type", "uncompressed")]),
        0
    );
    let plain = batch_with(Compression::None, 20, "bad");
    for codec in &CODECS[1..] {
        // Garbage where the compressed records should be, with a valid CRC.
        let mut bad = plain[..61].to_vec();
        bad.extend_from_slice(b"\x00garbage, not a compressed stream at all\xff\xff\xff\xff");
        fix_header(&mut bad, *codec);
        assert_eq!(c.produce("z", 0, &bad).0, CORRUPT_MESSAGE, "{codec:?}");
        // A bomb: a small payload expanding far past the cap.
        let huge = compress(*codec, &vec![0u8; 80 << 20]).unwrap();
        assert!(huge.len() < 4 << 20, "{codec:?} {}", huge.len());
        let mut bomb = plain[..61].to_vec();
        bomb.extend_from_slice(&huge);
        fix_header(&mut bomb, *codec);
        assert_eq!(c.produce("z", 0, &bomb).0, CORRUPT_MESSAGE, "{codec:?}");
    }
    // The connection and topic still work.
    assert_eq!(c.produce("z", 0, &plain).0, 0);
    assert_eq!(fetch_all(&mut c, "z").len(), 1);
}

#[test]
fn gzip_topic_honours_its_level() {
    let b = TestBroker::start("gziplevel");
    let mut c = b.client();
    for (name, level) in [("fast", "1"), ("best", "9")] {
        let configs = [
            ("compression.type", "gzip"),
            ("compression.gzip.level", level),
        ];
        assert_eq!(create_with_configs(&mut c, name, &configs), 0, "{name}");
    }
    let sent = batch_with(Compression::None, 500, "level");
    let mut sizes = Vec::new();
    for name in ["fast", "best"] {
        assert_eq!(c.produce(name, 0, &sent).0, 0);
        let got = fetch_all(&mut c, name);
        let h = validate_batch(&got[0].bytes).unwrap();
        assert_eq!(h.compression(), Compression::Gzip);
        assert_eq!(records_of(&got[0].bytes), records_of(&sent));
        sizes.push(got[0].bytes.len());
    }
    assert!(sizes[1] < sizes[0], "{sizes:?}");
}
