//! Kafka's `StripedReplicaPlacerTest`, vector for vector, with Kafka's `MockRandom`.

use super::*;

/// `org.apache.kafka.server.util.MockRandom` behind `java.util.Random.nextInt(bound)`.
struct MockRandom(i64);

impl MockRandom {
    fn new() -> MockRandom {
        MockRandom(17)
    }

    fn next(&mut self, bits: u32) -> i32 {
        self.0 = self
            .0
            .wrapping_mul(2862933555777941757)
            .wrapping_add(3037000493);
        ((self.0 as u64) >> (64 - bits)) as i32
    }
}

impl PlacementRandom for MockRandom {
    fn next_int(&mut self, bound: i32) -> i32 {
        let mut r = self.next(31);
        let m = bound - 1;
        if bound & m == 0 {
            return ((bound as i64 * r as i64) >> 31) as i32;
        }
        let mut u = r;
        loop {
            r = u % bound;
            if u.wrapping_sub(r).wrapping_add(m) >= 0 {
                return r;
            }
            u = self.next(31);
        }
    }
}

fn b(id: i32, rack: Option<&str>, fenced: bool) -> UsableBroker {
    UsableBroker {
        id,
        rack: rack.map(str::to_string),
        fenced,
    }
}

#[test]
fn broker_list_rotates_per_epoch() {
    let mut l = BrokerList::default();
    assert_eq!(l.next(1), None);
    l.brokers = vec![0, 1, 2, 3];
    let got: Vec<Option<i32>> = (0..6).map(|_| l.next(0)).collect();
    assert_eq!(got, [Some(0), Some(1), Some(2), Some(3), None, None]);
    let got: Vec<Option<i32>> = (0..5).map(|_| l.next(1)).collect();
    assert_eq!(got, [Some(1), Some(2), Some(3), Some(0), None]);
}

#[test]
fn avoids_a_fenced_replica_if_possible_on_a_single_rack() {
    let r = &mut MockRandom::new();
    let brokers = [
        b(3, None, false),
        b(1, None, true),
        b(0, None, false),
        b(4, None, false),
        b(2, None, false),
    ];
    let mut racks = RackList::new(r, &brokers);
    assert_eq!((racks.total, racks.unfenced), (5, 4));
    assert_eq!(racks.names, vec![None]);
    assert!(racks.place(r, 0).is_err());
    assert!(racks.place(r, -1).is_err());
    assert_eq!(racks.place(r, 4).unwrap(), [3, 4, 0, 2]);
    assert_eq!(racks.place(r, 4).unwrap(), [4, 0, 2, 3]);
    assert_eq!(racks.place(r, 4).unwrap(), [0, 2, 3, 4]);
    assert_eq!(racks.place(r, 4).unwrap(), [2, 3, 4, 0]);
    assert_eq!(racks.place(r, 4).unwrap(), [0, 4, 3, 2]);
}

#[test]
fn many_partitions_on_a_single_unfenced_broker() {
    let r = &mut MockRandom::new();
    let got = place(r, 3, 1, &[b(0, None, false), b(1, None, true)]).unwrap();
    assert_eq!(got, vec![vec![0], vec![0], vec![0]]);
}

#[test]
fn a_fenced_replica_is_used_when_needed() {
    let r = &mut MockRandom::new();
    let brokers = [b(3, None, false), b(1, None, true), b(2, None, false)];
    let mut racks = RackList::new(r, &brokers);
    assert_eq!((racks.total, racks.unfenced), (3, 2));
    assert_eq!(racks.place(r, 3).unwrap(), [3, 2, 1]);
    assert_eq!(racks.place(r, 3).unwrap(), [2, 3, 1]);
    assert_eq!(racks.place(r, 3).unwrap(), [3, 2, 1]);
    assert_eq!(racks.place(r, 3).unwrap(), [2, 3, 1]);
}

#[test]
fn several_racks() {
    let r = &mut MockRandom::new();
    let brokers = [
        b(11, Some("1"), false),
        b(10, Some("1"), false),
        b(30, Some("3"), false),
        b(31, Some("3"), false),
        b(21, Some("2"), false),
        b(20, Some("2"), true),
    ];
    let mut racks = RackList::new(r, &brokers);
    assert_eq!((racks.total, racks.unfenced), (6, 5));
    let names: Vec<Option<&str>> = racks.names.iter().map(|n| n.as_deref()).collect();
    assert_eq!(names, [Some("1"), Some("2"), Some("3")]);
    assert_eq!(racks.place(r, 4).unwrap(), [11, 21, 31, 10]);
    assert_eq!(racks.place(r, 4).unwrap(), [21, 30, 10, 20]);
    assert_eq!(racks.place(r, 4).unwrap(), [31, 11, 21, 30]);
}

#[test]
fn racks_with_only_fenced_brokers() {
    let r = &mut MockRandom::new();
    let brokers = [
        b(11, Some("1"), false),
        b(10, Some("1"), false),
        b(30, Some("3"), true),
        b(31, Some("3"), true),
        b(20, Some("2"), true),
        b(21, Some("2"), true),
        b(41, Some("4"), false),
        b(40, Some("4"), true),
    ];
    let mut racks = RackList::new(r, &brokers);
    assert_eq!((racks.total, racks.unfenced), (8, 3));
    assert_eq!(racks.place(r, 4).unwrap(), [41, 11, 21, 30]);
    assert_eq!(racks.place(r, 4).unwrap(), [10, 20, 31, 41]);
    assert_eq!(racks.place(r, 4).unwrap(), [41, 21, 30, 11]);
}

#[test]
fn errors_carry_kafkas_messages() {
    let r = &mut MockRandom::new();
    let fenced = [b(11, Some("1"), true), b(10, Some("1"), true)];
    assert_eq!(
        place(r, 1, 1, &fenced).unwrap_err().0,
        "All brokers are currently fenced."
    );
    let two = [b(11, Some("1"), false), b(10, Some("1"), false)];
    assert_eq!(
        place(r, 1, 3, &two).unwrap_err().0,
        "The target replication factor of 3 cannot be reached because only 2 broker(s) are registered."
    );
    assert_eq!(
        place(r, 1, 0, &two).unwrap_err().0,
        "Invalid replication factor 0: the replication factor must be positive."
    );
}

#[test]
fn successful_placement() {
    let r = &mut MockRandom::new();
    let brokers = [
        b(0, None, false),
        b(3, None, false),
        b(2, None, false),
        b(1, None, false),
    ];
    let got = place(r, 5, 3, &brokers).unwrap();
    assert_eq!(
        got,
        vec![
            vec![2, 3, 0],
            vec![3, 0, 1],
            vec![0, 1, 2],
            vec![1, 2, 3],
            vec![1, 0, 2]
        ]
    );
}

#[test]
fn even_distribution() {
    let r = &mut MockRandom::new();
    let brokers: Vec<UsableBroker> = (0..4).map(|i| b(i, None, false)).collect();
    let got = place(r, 200, 2, &brokers).unwrap();
    let mut counts = std::collections::BTreeMap::new();
    for p in got {
        *counts.entry(p).or_insert(0) += 1;
    }
    let want = [
        ([0, 1], 14),
        ([0, 2], 22),
        ([0, 3], 14),
        ([1, 0], 17),
        ([1, 2], 17),
        ([1, 3], 16),
        ([2, 0], 13),
        ([2, 1], 17),
        ([2, 3], 20),
        ([3, 0], 20),
        ([3, 1], 19),
        ([3, 2], 11),
    ];
    for (pair, n) in want {
        assert_eq!(
            counts.get(pair.as_slice()),
            Some(&n),
            "{pair:?}: {counts:?}"
        );
    }
}

#[test]
fn the_broker_random_spreads_leaders() {
    let mut r = XorShift::new(42);
    let brokers: Vec<UsableBroker> = (1..=3).map(|i| b(i, None, false)).collect();
    let got = place(&mut r, 12, 3, &brokers).unwrap();
    let mut leaders = [0; 4];
    for p in &got {
        let mut sorted = p.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [1, 2, 3], "three distinct replicas: {p:?}");
        leaders[p[0] as usize] += 1;
    }
    assert_eq!(
        leaders[1..],
        [4, 4, 4],
        "12 partitions, 4 leaders each: {got:?}"
    );
}
