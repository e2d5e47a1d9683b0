//! Requests waiting for data or a deadline: long-poll fetches.
//!
//! A parked fetch keeps its own frame and is simply run again when one of the partitions it
//! waits on was appended to, or its deadline passed; the fetch handler decides whether it now
//! has enough to answer. Fetches are indexed by partition and their deadlines kept in a heap, so
//! an append wakes only the fetches waiting on that partition and a turn never scans every
//! waiter (Kafka's `DelayedOperationPurgatory` keys its watchers by partition the same way).

use crate::reactor::ConnId;
use slab::Slab;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Instant;

/// A partition as parked fetches name it.
pub type PartitionKey = (String, i32);

pub struct ParkedFetch {
    pub conn: ConnId,
    pub frame: Vec<u8>,
    pub deadline: Instant,
    /// The partitions whose appends may complete it.
    pub waits_on: Vec<PartitionKey>,
}

struct Entry {
    fetch: ParkedFetch,
    /// Tells this entry from a later one in the same slab slot (heap and index entries of a
    /// fetch already taken are skipped by it).
    serial: u64,
}

#[derive(Default)]
pub struct Parked {
    fetches: Slab<Entry>,
    /// topic -> partition -> the fetches waiting on it (slab key, serial).
    by_partition: HashMap<String, HashMap<i32, Vec<(usize, u64)>>>,
    deadlines: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    next_serial: u64,
}

impl Parked {
    pub fn park(&mut self, fetch: ParkedFetch) {
        self.next_serial += 1;
        let serial = self.next_serial;
        let key = self.fetches.vacant_key();
        for (topic, p) in &fetch.waits_on {
            let parts = match self.by_partition.get_mut(topic.as_str()) {
                Some(parts) => parts,
                None => self.by_partition.entry(topic.clone()).or_default(),
            };
            parts.entry(*p).or_default().push((key, serial));
        }
        self.deadlines.push(Reverse((fetch.deadline, key, serial)));
        self.fetches.insert(Entry { fetch, serial });
        // Re-parked fetches leave stale heap entries behind until their deadlines pass; keep
        // the heap within a small multiple of what is parked.
        if self.deadlines.len() > 2 * self.fetches.len() + 64 {
            let live = &self.fetches;
            self.deadlines
                .retain(|Reverse((_, k, s))| live.get(*k).is_some_and(|e| e.serial == *s));
        }
    }

    /// Takes the fetches to run again: those waiting on a partition in `appended`, and those
    /// whose deadline has passed.
    pub fn take_ready<'a>(
        &mut self,
        now: Instant,
        appended: impl IntoIterator<Item = &'a PartitionKey>,
    ) -> Vec<ParkedFetch> {
        let mut ready = Vec::new();
        for (topic, p) in appended {
            let waiting = self
                .by_partition
                .get_mut(topic.as_str())
                .and_then(|parts| parts.remove(p))
                .unwrap_or_default();
            for (key, serial) in waiting {
                if let Some(f) = self.take(key, serial) {
                    ready.push(f);
                }
            }
        }
        while let Some(&Reverse((deadline, key, serial))) = self.deadlines.peek() {
            if deadline > now {
                break;
            }
            self.deadlines.pop();
            if let Some(f) = self.take(key, serial) {
                ready.push(f);
            }
        }
        if self.fetches.is_empty() {
            // Nothing waits: drop what the heap and the index still hold of taken fetches.
            self.deadlines.clear();
            self.by_partition.clear();
        }
        ready
    }

    /// Removes the fetch in `key` if it is still the one of `serial`, with its index entries.
    fn take(&mut self, key: usize, serial: u64) -> Option<ParkedFetch> {
        if self.fetches.get(key).is_none_or(|e| e.serial != serial) {
            return None;
        }
        let fetch = self.fetches.remove(key).fetch;
        for (topic, p) in &fetch.waits_on {
            let Some(parts) = self.by_partition.get_mut(topic.as_str()) else {
                continue;
            };
            if let Some(list) = parts.get_mut(p) {
                list.retain(|&(k, s)| (k, s) != (key, serial));
                if list.is_empty() {
                    parts.remove(p);
                }
            }
            if parts.is_empty() {
                self.by_partition.remove(topic.as_str());
            }
        }
        Some(fetch)
    }

    /// The earliest deadline (possibly of a fetch already taken: one early wake-up at most).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((d, _, _))| *d)
    }

    pub fn remove_conn(&mut self, conn: ConnId) {
        let gone: Vec<(usize, u64)> = self
            .fetches
            .iter()
            .filter(|(_, e)| e.fetch.conn == conn)
            .map(|(k, e)| (k, e.serial))
            .collect();
        for (key, serial) in gone {
            self.take(key, serial);
        }
    }

    /// Whether some parked fetch waits on this partition (an append must then wake it).
    pub fn waits_on(&self, topic: &str, partition: i32) -> bool {
        self.by_partition
            .get(topic)
            .is_some_and(|parts| parts.contains_key(&partition))
    }

    /// Fetches parked now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.fetches.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn fetch(conn: ConnId, deadline: Instant, parts: &[(&str, i32)]) -> ParkedFetch {
        ParkedFetch {
            conn,
            frame: vec![],
            deadline,
            waits_on: parts.iter().map(|&(t, p)| (t.to_string(), p)).collect(),
        }
    }

    fn conns(v: &[ParkedFetch]) -> Vec<ConnId> {
        let mut c: Vec<ConnId> = v.iter().map(|f| f.conn).collect();
        c.sort_unstable();
        c
    }

    #[test]
    fn deadlines_and_appends() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut p = Parked::default();
        p.park(fetch(1, ms(500), &[("a", 0)]));
        p.park(fetch(2, ms(100), &[("a", 1)]));
        p.park(fetch(3, ms(900), &[("a", 0), ("b", 0)]));
        assert_eq!(p.next_deadline(), Some(ms(100)));
        assert!(p.take_ready(t0, &[]).is_empty());
        assert_eq!(conns(&p.take_ready(ms(200), &[])), vec![2]);
        // An append to b-0 wakes only the fetch waiting on it; a-1 has nobody left.
        let appended = [("b".to_string(), 0), ("a".to_string(), 1)];
        assert_eq!(conns(&p.take_ready(ms(200), &appended)), vec![3]);
        assert_eq!(p.len(), 1);
        assert_eq!(
            conns(&p.take_ready(ms(200), &[("a".to_string(), 0)])),
            vec![1]
        );
        assert_eq!(p.len(), 0);
        assert_eq!(p.next_deadline(), None);
        assert!(p.by_partition.is_empty());
    }

    #[test]
    fn a_woken_fetch_parked_again_is_not_woken_by_its_old_entries() {
        let t0 = Instant::now();
        let mut p = Parked::default();
        p.park(fetch(
            1,
            t0 + Duration::from_millis(100),
            &[("a", 0), ("a", 1)],
        ));
        let mut woken = p.take_ready(t0, &[("a".to_string(), 0)]);
        assert_eq!(woken.len(), 1);
        // Parked again (not enough data yet) with a later deadline, in the same slab slot.
        let mut f = woken.pop().unwrap();
        f.deadline = t0 + Duration::from_millis(500);
        p.park(f);
        // The old deadline passes: the old heap entry must not wake the new parking.
        assert!(p
            .take_ready(t0 + Duration::from_millis(200), &[])
            .is_empty());
        assert_eq!(p.len(), 1);
        // Each partition lists it once.
        assert_eq!(p.by_partition["a"][&1].len(), 1);
        assert!(p.waits_on("a", 1) && !p.waits_on("a", 2) && !p.waits_on("b", 1));
        p.remove_conn(1);
        assert_eq!(p.len(), 0);
        assert!(p.by_partition.is_empty());
    }

    #[test]
    fn many_waiters_stay_indexed_without_growth() {
        // 1,000 fetches of 1,000 partitions each... scaled: 200 x 200. Appends to one partition
        // wake them all, each parks again; the index keeps one entry per (fetch, partition).
        let t0 = Instant::now();
        let mut p = Parked::default();
        let parts: Vec<(&str, i32)> = (0..200).map(|i| ("t", i)).collect();
        for c in 0..200 {
            p.park(fetch(c, t0 + Duration::from_secs(30), &parts));
        }
        for _ in 0..5 {
            let woken = p.take_ready(t0, &[("t".to_string(), 7)]);
            assert_eq!(woken.len(), 200);
            for f in woken {
                p.park(f);
            }
        }
        let entries: usize = p.by_partition["t"].values().map(Vec::len).sum();
        assert_eq!(entries, 200 * 200);
        assert!(p.deadlines.len() <= 2 * 200 + 64, "{}", p.deadlines.len());
        // An append to a partition nobody waits on costs one lookup.
        assert!(p.take_ready(t0, &[("other".to_string(), 0)]).is_empty());
    }
}
