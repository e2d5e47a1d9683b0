use super::*;
use crate::group::MemberSnapshot;

fn off(offset: i64, ts: i64) -> CommittedOffset {
    CommittedOffset {
        offset,
        leader_epoch: 3,
        metadata: "m".into(),
        commit_timestamp: ts,
        expire_timestamp: -1,
    }
}

fn apply_all(s: &mut OffsetStore, recs: &[KeyValue]) -> Vec<Replayed> {
    recs.iter()
        .map(|(k, v)| s.apply(k, v.as_deref()).unwrap())
        .collect()
}

fn snapshot(group: &str, members: usize) -> GroupSnapshot {
    GroupSnapshot {
        group_id: group.into(),
        protocol_type: "consumer".into(),
        generation: 4,
        protocol: Some("range".into()),
        leader: (members > 0).then(|| "m-0".into()),
        current_state_timestamp: 1_000,
        members: (0..members)
            .map(|i| MemberSnapshot {
                member_id: format!("m-{i}"),
                group_instance_id: (i == 0).then(|| "static-0".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: vec![0, 1, 2],
                assignment: vec![],
            })
            .collect(),
    }
}

#[test]
fn java_hashcode_known_values() {
    assert_eq!(java_string_hashcode(""), 0);
    assert_eq!(java_string_hashcode("a"), 97);
    assert_eq!(java_string_hashcode("ab"), 3105); // 97*31 + 98
    assert_eq!(java_string_hashcode("my-group"), -1_906_497_762);
    assert_eq!(java_string_hashcode("console-consumer-1"), 35_782_224);
    // The famous string whose hashCode is Integer.MIN_VALUE (Math.abs would stay negative).
    assert_eq!(java_string_hashcode("polygenelubricants"), i32::MIN);
    // Over UTF-16 code units: U+1F600 is the surrogate pair D83D DE00.
    assert_eq!(java_string_hashcode("😀"), 0xD83D * 31 + 0xDE00);
}

#[test]
fn partition_for_matches_kafka() {
    // Reference: the hashCode recurrence written out independently.
    fn reference(s: &str, n: i32) -> i32 {
        let mut h: i64 = 0;
        for u in s.encode_utf16() {
            h = (h * 31 + u as i64) & 0xffff_ffff;
        }
        ((h & 0x7fff_ffff) % n as i64) as i32
    }
    assert_eq!(partition_for("my-group", 50), 36);
    assert_eq!(partition_for("console-consumer-1", 50), 24);
    assert_eq!(partition_for("a", 50), 47);
    assert_eq!(partition_for("polygenelubricants", 50), 0);
    assert_eq!(partition_for("", 50), 0);
    for g in ["my-group", "test-group", "x", "ünïcødé-grüppe", "😀😀"] {
        for n in [1, 3, 50, 7] {
            assert_eq!(partition_for(g, n), reference(g, n), "{g} {n}");
        }
    }
    assert_eq!(partition_for("my-group", 0), 0);
    assert_eq!(partition_for("my-group", -5), 0);
}

#[test]
fn golden_offset_commit_key_v1_and_value_v3() {
    let recs = OffsetStore::commit_records(
        "g",
        &[(
            "tp",
            2,
            CommittedOffset {
                offset: 0x0102,
                leader_epoch: 5,
                metadata: "md".into(),
                commit_timestamp: 0x0A0B,
                expire_timestamp: -1,
            },
        )],
    );
    assert_eq!(recs.len(), 1);
    let (k, v) = &recs[0];
    #[rustfmt::skip]
    let key: &[u8] = &[
        0, 1,             // key version 1
        0, 1, b'g',       // group
        0, 2, b't', b'p', // topic
        0, 0, 0, 2,       // partition
    ];
    #[rustfmt::skip]
    let value: &[u8] = &[
        0, 3,                         // value version 3
        0, 0, 0, 0, 0, 0, 0x01, 0x02, // offset
        0, 0, 0, 5,                   // leader epoch
        0, 2, b'm', b'd',             // metadata
        0, 0, 0, 0, 0, 0, 0x0A, 0x0B, // commit timestamp
    ];
    assert_eq!(k.as_slice(), key);
    assert_eq!(v.as_deref(), Some(value));
}

#[test]
fn expire_timestamp_is_written_as_value_v1() {
    let mut c = off(7, 100);
    c.expire_timestamp = 999;
    let recs = OffsetStore::commit_records("g", &[("t", 0, c.clone())]);
    let v = recs[0].1.as_deref().unwrap();
    #[rustfmt::skip]
    let want: &[u8] = &[
        0, 1,
        0, 0, 0, 0, 0, 0, 0, 7,
        0, 1, b'm',
        0, 0, 0, 0, 0, 0, 0, 100,
        0, 0, 0, 0, 0, 0, 0x03, 0xE7,
    ];
    assert_eq!(v, want);
    let mut s = OffsetStore::new();
    apply_all(&mut s, &recs);
    // v1 has no leader epoch: it reads back as -1.
    c.leader_epoch = -1;
    assert_eq!(s.fetch("g", "t", 0), Some(&c));
}

#[test]
fn reads_every_value_version_and_newer_ones() {
    use crate::protocol::messages::offset_commit_value::OffsetCommitValue;
    use crate::protocol::wire::Writer;
    let key = codec::offset_key("g", "t", 1);
    for version in 0..=6i16 {
        let mut b = Vec::new();
        let mut w = Writer::new(&mut b);
        w.i16(version);
        OffsetCommitValue {
            offset: 42,
            leader_epoch: 9,
            metadata: "x",
            commit_timestamp: 5,
            expire_timestamp: -1,
        }
        .encode(&mut w, version.min(4));
        let mut s = OffsetStore::new();
        assert_eq!(s.apply(&key, Some(&b)).unwrap(), Replayed::Offset);
        let c = s.fetch("g", "t", 1).unwrap();
        assert_eq!(
            (c.offset, c.metadata.as_str(), c.commit_timestamp),
            (42, "x", 5)
        );
        let epoch = if version >= 3 { 9 } else { -1 };
        assert_eq!(c.leader_epoch, epoch, "version {version}");
    }
    // Key version 0 is an offset commit too.
    let mut k0 = codec::offset_key("g", "t", 1);
    k0[1] = 0;
    let mut s = OffsetStore::new();
    let v = codec::offset_value(&off(1, 1));
    assert_eq!(s.apply(&k0, Some(&v)).unwrap(), Replayed::Offset);
    assert!(s.has_offsets("g"));
}

#[test]
fn group_record_round_trips() {
    for members in [0, 1, 3] {
        let snap = snapshot("grp", members);
        let (k, v) = OffsetStore::group_record(&snap);
        assert_eq!(&k[..2], &[0, 2]);
        assert_eq!(&v.as_deref().unwrap()[..2], &[0, 3]);
        let mut s = OffsetStore::new();
        assert_eq!(
            s.apply(&k, v.as_deref()).unwrap(),
            Replayed::Group(snap.clone())
        );
        let (k, v) = OffsetStore::group_tombstone("grp");
        assert_eq!(v, None);
        assert_eq!(
            s.apply(&k, None).unwrap(),
            Replayed::GroupDeleted("grp".into())
        );
    }
}

#[test]
fn store_queries_and_tombstones() {
    let mut s = OffsetStore::new();
    let recs = OffsetStore::commit_records(
        "g",
        &[
            ("b", 1, off(10, 1)),
            ("a", 2, off(20, 1)),
            ("a", 0, off(30, 1)),
        ],
    );
    assert!(apply_all(&mut s, &recs)
        .iter()
        .all(|r| *r == Replayed::Offset));
    apply_all(
        &mut s,
        &OffsetStore::commit_records("h", &[("a", 0, off(1, 1))]),
    );
    let got: Vec<(&str, i32, i64)> = s
        .group_offsets("g")
        .into_iter()
        .map(|(t, p, c)| (t, p, c.offset))
        .collect();
    assert_eq!(got, vec![("a", 0, 30), ("a", 2, 20), ("b", 1, 10)]);
    assert_eq!(s.groups(), vec!["g", "h"]);
    assert_eq!(s.fetch("g", "a", 2).map(|c| c.offset), Some(20));
    assert_eq!(s.fetch("g", "a", 9), None);
    assert_eq!(s.fetch("nope", "a", 0), None);
    assert!(s.group_offsets("nope").is_empty());

    // Tombstones only for offsets that exist.
    let t = s.offset_tombstones("g", &[("a", 2), ("zz", 0), ("a", 7)]);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0], (codec::offset_key("g", "a", 2), None));
    assert_eq!(apply_all(&mut s, &t), vec![Replayed::OffsetDeleted]);
    assert_eq!(s.fetch("g", "a", 2), None);

    let d = s.delete_group_records("g");
    assert_eq!(d.len(), 3);
    assert_eq!(d[2], OffsetStore::group_tombstone("g"));
    apply_all(&mut s, &d);
    assert!(!s.has_offsets("g"));
    assert_eq!(s.groups(), vec!["h"]);
    assert_eq!(s.offset_count(), 1);
    // Deleting what is not there is harmless.
    apply_all(&mut s, &d);
    assert_eq!(s.offset_count(), 1);
}

#[test]
fn replay_of_mixed_batches() {
    let mut recs = OffsetStore::commit_records("g", &[("t", 0, off(5, 1)), ("t", 1, off(6, 1))]);
    recs.push(OffsetStore::group_record(&snapshot("g", 2)));
    // A newer-protocol record (ConsumerGroupMetadataKey is key version 3): skipped.
    recs.push((vec![0, 3, 0, 1, b'g'], Some(vec![0, 0, 1, 2, 3])));
    recs.push((codec::offset_key("g", "t", 1), None));
    recs.extend(OffsetStore::commit_records("g", &[("t", 0, off(7, 2))]));
    let mut log = OffsetStore::batch(&recs[..3], 10);
    // A control batch (a transaction marker) in between is skipped.
    let mut ctl = records::BatchBuilder::new(0, 10).control(true);
    ctl.push(
        None,
        10,
        Some(&[0, 0, 0, 0]),
        Some(&[0, 0, 0, 0, 0, 0]),
        &[],
    );
    log.extend(ctl.finish());
    log.extend(OffsetStore::batch(&recs[3..], 11));
    log.extend(OffsetStore::batch(
        &[OffsetStore::group_tombstone("old")],
        12,
    ));

    let mut s = OffsetStore::new();
    let seen = s.replay(&log).unwrap();
    assert_eq!(
        seen,
        vec![
            Replayed::Group(snapshot("g", 2)),
            Replayed::GroupDeleted("old".into())
        ]
    );
    assert_eq!(s.fetch("g", "t", 0).map(|c| c.offset), Some(7));
    assert_eq!(s.fetch("g", "t", 1), None);
    assert_eq!(s.offset_count(), 1);
}

#[test]
fn replay_of_corrupt_or_truncated_buffers_errors_without_panic() {
    let recs = OffsetStore::commit_records("g", &[("t", 0, off(5, 1))]);
    let first = OffsetStore::batch(&recs, 1);
    let second = OffsetStore::batch(&OffsetStore::commit_records("g", &[("t", 1, off(6, 1))]), 2);
    let mut log = first.clone();
    log.extend(&second);

    // Every truncation: no panic; the whole first batch is kept once it is complete.
    for cut in 0..log.len() {
        let mut s = OffsetStore::new();
        let r = s.replay(&log[..cut]);
        if cut == 0 || cut == first.len() {
            assert!(r.is_ok(), "cut {cut}");
        } else {
            assert!(r.is_err(), "cut {cut}");
        }
        assert_eq!(
            s.fetch("g", "t", 0).is_some(),
            cut >= first.len(),
            "cut {cut}"
        );
    }
    // Every single-byte flip in the second batch: no panic, the first batch stays applied.
    for i in first.len()..log.len() {
        let mut bad = log.clone();
        bad[i] ^= 0x5a;
        let mut s = OffsetStore::new();
        let _ = s.replay(&bad);
        assert_eq!(s.fetch("g", "t", 0).map(|c| c.offset), Some(5));
    }
    // A valid batch whose record key is garbage: a decode error, not a panic.
    for key in [
        &[][..],
        &[0][..],
        &[0, 1, 0, 9, b'g'][..],
        &[0xff, 0xff][..],
    ] {
        let b = OffsetStore::batch(&[(key.to_vec(), Some(vec![0, 3]))], 1);
        let mut s = OffsetStore::new();
        let (seen, err) = s.replay_partial(&b);
        assert!(seen.is_empty());
        assert!(matches!(err, Some(OffsetsError::Decode(_))), "{key:?}");
    }
    // A good key with a truncated value.
    let (k, v) = &recs[0];
    let v = v.as_deref().unwrap();
    for cut in 0..v.len() {
        let mut s = OffsetStore::new();
        assert!(s.apply(k, Some(&v[..cut])).is_err());
    }
    let (gk, gv) = OffsetStore::group_record(&snapshot("g", 2));
    let gv = gv.unwrap();
    for cut in 0..gv.len() {
        let mut s = OffsetStore::new();
        assert!(s.apply(&gk, Some(&gv[..cut])).is_err());
    }
}

#[test]
fn replay_partial_keeps_group_events_before_the_error() {
    let mut log = OffsetStore::batch(&[OffsetStore::group_record(&snapshot("g", 1))], 1);
    log.extend(&[0u8; 30]);
    let mut s = OffsetStore::new();
    let (seen, err) = s.replay_partial(&log);
    assert_eq!(seen, vec![Replayed::Group(snapshot("g", 1))]);
    assert!(err.is_some());
    assert!(err.unwrap().to_string().contains(OFFSETS_TOPIC));
}

fn expired_groups(s: &OffsetStore, now: i64, retention: i64) -> Vec<(String, usize)> {
    s.expired(now, retention)
        .into_iter()
        .map(|(g, t)| (g, t.len()))
        .collect()
}

#[test]
fn retention_simple_group_by_commit_timestamp() {
    let mut s = OffsetStore::new();
    apply_all(
        &mut s,
        &OffsetStore::commit_records(
            "simple",
            &[("t", 0, off(1, 1_000)), ("t", 1, off(1, 5_000))],
        ),
    );
    assert!(s.expired(1_999, 1_000).is_empty());
    // One of two offsets expired: only its tombstone, no group tombstone.
    let e = s.expired(2_000, 1_000);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].1, vec![(codec::offset_key("simple", "t", 0), None)]);
    apply_all(&mut s, &e[0].1);
    // The last one: its tombstone and the group's.
    let e = s.expired(6_000, 1_000);
    assert_eq!(
        e[0].1,
        vec![
            (codec::offset_key("simple", "t", 1), None),
            OffsetStore::group_tombstone("simple")
        ]
    );
    apply_all(&mut s, &e[0].1);
    assert_eq!(s.offset_count(), 0);
    assert!(s.groups.is_empty());
}

#[test]
fn retention_active_and_empty_groups() {
    let mut s = OffsetStore::new();
    apply_all(
        &mut s,
        &OffsetStore::commit_records("c", &[("t", 0, off(1, 1_000))]),
    );
    s.mark_active("c");
    // Active: never, however old the commit.
    assert!(s.expired(1_000_000, 1_000).is_empty());
    // Empty since 500_000: the clock starts then, not at the commit.
    s.mark_empty("c", 500_000);
    assert!(s.expired(500_999, 1_000).is_empty());
    assert_eq!(expired_groups(&s, 501_000, 1_000), vec![("c".into(), 2)]);
    // Back to active before expiry: kept.
    s.mark_active("c");
    assert!(s.expired(600_000, 1_000).is_empty());

    // The same state comes from group records (after an append, and on replay).
    let mut s2 = OffsetStore::new();
    apply_all(
        &mut s2,
        &OffsetStore::commit_records("c", &[("t", 0, off(1, 1_000))]),
    );
    apply_all(&mut s2, &[OffsetStore::group_record(&snapshot("c", 2))]);
    assert!(s2.expired(1_000_000, 1_000).is_empty());
    let mut empty = snapshot("c", 0);
    empty.current_state_timestamp = 50_000;
    apply_all(&mut s2, &[OffsetStore::group_record(&empty)]);
    assert!(s2.expired(50_999, 1_000).is_empty());
    assert_eq!(expired_groups(&s2, 51_000, 1_000), vec![("c".into(), 2)]);
}

#[test]
fn retention_explicit_expire_timestamp_wins() {
    let mut s = OffsetStore::new();
    let mut c = off(1, 1_000);
    c.expire_timestamp = 10_000_000;
    apply_all(&mut s, &OffsetStore::commit_records("g", &[("t", 0, c)]));
    s.mark_empty("g", 2_000);
    assert!(s.expired(9_999_999, 1_000).is_empty());
    assert_eq!(expired_groups(&s, 10_000_000, 1_000), vec![("g".into(), 2)]);
    // An active group keeps even those.
    s.mark_active("g");
    assert!(s.expired(20_000_000, 1_000).is_empty());
}

#[test]
fn memory_stays_flat_under_repeated_commits() {
    let mut s = OffsetStore::new();
    let topics = ["orders", "payments"];
    for i in 0..20_000i64 {
        let commits: Vec<(&str, i32, CommittedOffset)> = (0..4)
            .map(|p| (topics[(p % 2) as usize], p, off(i, i)))
            .collect();
        for (k, v) in OffsetStore::commit_records("busy", &commits) {
            s.apply(&k, v.as_deref()).unwrap();
        }
        if i % 1000 == 0 {
            s.mark_active("busy");
            assert_eq!(s.offset_count(), 4);
            assert_eq!(s.groups.len(), 1);
        }
    }
    assert_eq!(s.fetch("busy", "orders", 2).map(|c| c.offset), Some(19_999));
    // Marking and unmarking groups without offsets does not leave entries behind.
    for i in 0..1000 {
        let g = format!("g{i}");
        s.mark_empty(&g, 1);
        apply_all(&mut s, &[OffsetStore::group_tombstone(&g)]);
    }
    assert_eq!(s.groups.len(), 1);
}

fn txn_batch(pid: i64, recs: &[KeyValue]) -> Vec<u8> {
    let mut b = records::BatchBuilder::new(0, 1)
        .producer(pid, 0, 0)
        .transactional(true);
    for (k, v) in recs {
        b.push(None, 1, Some(k), v.as_deref(), &[]);
    }
    b.finish()
}

fn marker(pid: i64, commit: bool) -> Vec<u8> {
    let mut b = records::BatchBuilder::new(0, 1)
        .producer(pid, 0, -1)
        .transactional(true)
        .control(true);
    b.push(
        None,
        1,
        Some(&[0, 0, 0, commit as u8]),
        Some(&[0, 0, 0, 0, 0, 0]),
        &[],
    );
    b.finish()
}

#[test]
fn replay_applies_transactional_commits_only_at_their_commit_marker() {
    let mut log = txn_batch(
        7,
        &OffsetStore::commit_records("g", &[("t", 0, off(70, 1))]),
    );
    log.extend(txn_batch(
        8,
        &OffsetStore::commit_records("g", &[("t", 1, off(80, 1))]),
    ));
    let mut s = OffsetStore::new();
    s.replay(&log).unwrap();
    assert_eq!(s.offset_count(), 0);
    assert_eq!(s.pending_transactions(), 2);
    // The markers come in a later buffer.
    let mut tail = marker(8, false);
    tail.extend(marker(7, true));
    s.replay(&tail).unwrap();
    assert_eq!(s.fetch("g", "t", 0).map(|c| c.offset), Some(70));
    assert_eq!(s.fetch("g", "t", 1), None);
    assert_eq!(s.pending_transactions(), 0);
}

#[test]
fn retention_clock_survives_group_tombstone_and_repeated_marks() {
    let mut s = OffsetStore::new();
    apply_all(
        &mut s,
        &OffsetStore::commit_records("g", &[("t", 0, off(1, 1_000))]),
    );
    s.mark_active("g");
    s.mark_empty("g", 100_000);
    // A second mark does not restart the clock.
    s.mark_empty("g", 200_000);
    // An empty-group record without a timestamp keeps the mark.
    let mut empty = snapshot("g", 0);
    empty.current_state_timestamp = -1;
    apply_all(&mut s, &[OffsetStore::group_record(&empty)]);
    // The group itself is deleted while its offsets remain: they keep ageing from 100_000.
    apply_all(&mut s, &[OffsetStore::group_tombstone("g")]);
    assert!(s.expired(100_999, 1_000).is_empty());
    assert_eq!(expired_groups(&s, 101_000, 1_000), vec![("g".into(), 2)]);
    // Without offsets, a group tombstone leaves nothing behind.
    let mut s = OffsetStore::new();
    s.mark_active("x");
    apply_all(&mut s, &[OffsetStore::group_tombstone("x")]);
    assert!(s.groups.is_empty());
}
