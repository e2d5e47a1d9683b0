use super::*;

/// Bitwise CRC-32C (Castagnoli, reflected 0x82F63B78): an independent reference for the crate.
fn crc32c_ref(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn sample() -> Vec<u8> {
    let mut b = BatchBuilder::new(0, 1_000).producer(7, 1, 0);
    b.push(None, 1_000, Some(b"k0"), Some(b"v0"), &[]);
    b.push(
        None,
        1_005,
        None,
        Some(b"v1"),
        &[("h", Some(b"x")), ("n", None)],
    );
    b.push(None, 1_002, Some(b""), None, &[]);
    b.finish()
}

#[test]
fn crc_reference_vector() {
    assert_eq!(crc32c_ref(b"123456789"), 0xE306_9283);
    assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
}

#[test]
fn golden_single_record_batch() {
    // A one-record batch ("Hello Kafka!", null key) as Kafka writes it; CRC 0xabfd0491 is the
    // value stored by a real broker for these bytes.
    let mut b = BatchBuilder::new(0, 0x0191_e05b_6d8b)
        .producer(0, 0, 0)
        .partition_leader_epoch(0);
    b.push(None, 0x0191_e05b_6d8b, None, Some(b"Hello Kafka!"), &[]);
    let batch = b.finish();
    assert_eq!(batch.len(), 80);
    assert_eq!(&batch[8..12], &[0, 0, 0, 0x44]);
    assert_eq!(&batch[17..21], &[0xab, 0xfd, 0x04, 0x91]);
    assert_eq!(&batch[61..66], &[0x24, 0x00, 0x00, 0x00, 0x01]);
    assert_eq!(compute_crc(&batch), crc32c_ref(&batch[21..]));
    let h = validate_batch(&batch).unwrap();
    assert_eq!(h.record_count, 1);
    assert_eq!(h.last_offset(), 0);
    let recs = decode_records(&batch).unwrap();
    assert_eq!(recs[0].value, Some(&b"Hello Kafka!"[..]));
    assert_eq!(recs[0].key, None);
}

#[test]
fn round_trip() {
    let batch = sample();
    let h = validate_batch(&batch).unwrap();
    assert_eq!(h.base_offset, 0);
    assert_eq!(h.total_len(), batch.len());
    assert_eq!(h.last_offset_delta, 2);
    assert_eq!(h.record_count, 3);
    assert_eq!(h.max_timestamp, 1_005);
    assert_eq!(h.base_timestamp, 1_000);
    assert_eq!(
        (h.producer_id, h.producer_epoch, h.base_sequence),
        (7, 1, 0)
    );
    assert_eq!(h.compression(), Compression::None);
    assert!(!h.is_transactional() && !h.is_control() && !h.timestamp_type_is_log_append());
    let recs = decode_records(&batch).unwrap();
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[0].key, Some(&b"k0"[..]));
    assert_eq!(recs[1].timestamp_delta, 5);
    assert_eq!(recs[1].offset_delta, 1);
    assert_eq!(recs[1].headers, vec![("h", Some(&b"x"[..])), ("n", None)]);
    assert_eq!(recs[2].key, Some(&b""[..]));
    assert_eq!(recs[2].value, None);
}

#[test]
fn gzip_round_trip() {
    let mut b = BatchBuilder::new(5, 10).compression(Compression::Gzip);
    for i in 0..100 {
        b.push(None, 10 + i, Some(b"key"), Some(&[b'x'; 100]), &[]);
    }
    let batch = b.finish();
    let h = validate_batch(&batch).unwrap();
    assert_eq!(h.compression(), Compression::Gzip);
    assert!(batch.len() < 100 * 100);
    assert!(decode_records(&batch).is_err());
    let payload = records_payload(&batch, DEFAULT_DECOMPRESS_CAP).unwrap();
    let recs = parse_records(&payload, h.record_count).unwrap();
    assert_eq!(recs.len(), 100);
    assert_eq!(recs[99].offset_delta, 99);
    // The cap stops a bomb.
    assert!(matches!(
        records_payload(&batch, 1000),
        Err(RecordsError::Compression(_))
    ));
}

#[test]
fn in_place_rewrites() {
    let mut batch = sample();
    set_base_offset(&mut batch, 1234);
    set_partition_leader_epoch(&mut batch, 9);
    let h = validate_batch(&batch).unwrap();
    assert_eq!(h.base_offset, 1234);
    assert_eq!(h.last_offset(), 1236);
    assert_eq!(h.partition_leader_epoch, 9);
    set_log_append_time(&mut batch, 99_999);
    let h = validate_batch(&batch).unwrap();
    assert!(h.timestamp_type_is_log_append());
    assert_eq!(h.max_timestamp, 99_999);
    assert_eq!(h.base_timestamp, 1_000);
}

#[test]
fn iterates_back_to_back() {
    let mut buf = sample();
    let mut second = sample();
    set_base_offset(&mut second, 3);
    buf.extend_from_slice(&second);
    let got: Vec<_> = batches_checked(&buf)
        .map(|r| r.unwrap().0.base_offset)
        .collect();
    assert_eq!(got, vec![0, 3]);
    // Torn tail: one good batch then an error, then the end.
    let torn = &buf[..buf.len() - 5];
    let mut it = batches(torn);
    assert!(it.next().unwrap().is_ok());
    assert!(matches!(it.next(), Some(Err(RecordsError::Truncated))));
    assert!(it.next().is_none());
    assert_eq!(it.position(), second.len());
    assert!(batches(&[]).next().is_none());
}

#[test]
fn rejects_corruption() {
    let batch = sample();
    let mut bad = batch.clone();
    let n = bad.len();
    bad[n - 1] ^= 0xff;
    assert!(matches!(
        validate_batch(&bad),
        Err(RecordsError::BadCrc { .. })
    ));
    // Leader epoch and base offset are outside the CRC.
    let mut ok = batch.clone();
    ok[13] ^= 0xff;
    ok[3] ^= 0xff;
    assert!(validate_batch(&ok).is_ok());
    // Truncations at every length: never a panic, always an error.
    for cut in 0..batch.len() {
        assert!(validate_batch(&batch[..cut]).is_err(), "cut {cut}");
        let _ = decode_records(&batch[..cut]);
        let _ = batches(&batch[..cut]).count();
    }
    // Old magic.
    let mut old = batch.clone();
    old[16] = 1;
    assert!(matches!(
        BatchHeader::parse(&old),
        Err(RecordsError::UnsupportedMagic(1))
    ));
    assert!(matches!(
        BatchHeader::parse(&old[..20]),
        Err(RecordsError::UnsupportedMagic(1))
    ));
    // Huge and tiny lengths.
    let mut huge = batch.clone();
    huge[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    assert!(matches!(
        validate_batch(&huge),
        Err(RecordsError::Truncated)
    ));
    let mut tiny = batch.clone();
    tiny[8..12].copy_from_slice(&(-5i32).to_be_bytes());
    assert!(matches!(
        validate_batch(&tiny),
        Err(RecordsError::BadLength(-5))
    ));
}

#[test]
fn hostile_record_fields() {
    // A huge record count in a tiny body must fail before allocating.
    let mut b = sample();
    b[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
    assert!(decode_records(&b).is_err());
    // Every single-byte change of the record section decodes or errors, never panics.
    let base = sample();
    for i in BATCH_HEADER_LEN..base.len() {
        for v in [0x00u8, 0x7f, 0x80, 0xff] {
            let mut m = base.clone();
            m[i] = v;
            let _ = decode_records(&m);
        }
    }
    // Header count beyond the record.
    assert!(parse_records(&[0x04, 0, 0, 0, 1, 1, 0x7e], 1).is_err());
}

#[test]
fn empty_builder() {
    let batch = BatchBuilder::new(0, 0).finish();
    let h = validate_batch(&batch).unwrap();
    assert_eq!(h.record_count, 0);
    assert_eq!(decode_records(&batch).unwrap().len(), 0);
}

#[test]
fn builder_writes_every_codec() {
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let mut b = BatchBuilder::new(5, 1_000).compression(codec);
        for i in 0..50 {
            let v = format!("value {i} {}", "x".repeat(i));
            b.push(None, 1_000 + i as i64, Some(b"k"), Some(v.as_bytes()), &[]);
        }
        let batch = b.finish();
        let h = validate_batch(&batch).unwrap();
        assert_eq!(h.compression(), codec);
        let payload = records_payload(&batch, DEFAULT_DECOMPRESS_CAP).unwrap();
        let recs = parse_records(&payload, h.record_count).unwrap();
        assert_eq!(recs.len(), 50);
        assert_eq!(
            recs[49].value.unwrap(),
            format!("value 49 {}", "x".repeat(49)).as_bytes()
        );
    }
}
