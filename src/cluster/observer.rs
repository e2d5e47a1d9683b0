//! A broker-only node's view of the metadata log (`process.roles=broker`): it is not a voter;
//! it reads what the quorum committed from a controller (the private `METADATA_FETCH`), in
//! order, and publishes each committed record to its broker the way a combined node's
//! controller does ([`Published`]). A snapshot replaces everything read so far.
//!
//! Records inside a metadata transaction (KIP-868) are published together at its end, none if
//! it was aborted, as the controllers apply them.

use super::committed::{snapshot_records, Feed, TxnBracket};
use super::controller::Published;
use crate::metadata::records::MetadataRecord;
use crate::metadata::MetadataImage;
use crate::protocol::wire::{DResult, Reader};
use crate::records::{batches, parse_records, records_payload};

pub struct Observer {
    /// The voters, to fetch from while the leader is unknown.
    pub voters: Vec<i32>,
    /// The active controller, as the last answer named it.
    pub leader: Option<i32>,
    /// The next metadata offset to read.
    next_offset: i64,
    txn: TxnBracket,
    published: Vec<Published>,
    image: MetadataImage,
    /// Which voter to try next while the leader is unknown.
    rotate: usize,
}

/// One answer of a controller to a metadata fetch.
pub struct FetchAnswer<'a> {
    pub leader: Option<i32>,
    pub committed_end: i64,
    pub snapshot: Option<(&'a [u8], i64)>,
    pub batches: &'a [u8],
}

impl FetchAnswer<'_> {
    /// Decodes the body written by `Controller::fetch_answer` (after the correlation id).
    pub fn decode<'a>(r: &mut Reader<'a>) -> DResult<FetchAnswer<'a>> {
        let error = r.i16()?;
        let leader = r.i32()?;
        let committed_end = r.i64()?;
        let kind = r.i8()?;
        let len = r.i32()?;
        if len < 0 || len as usize > r.remaining() {
            return Err(crate::protocol::wire::DecodeError::Invalid(
                "metadata fetch length",
            ));
        }
        let data = r.bytes(len as usize)?;
        let snapshot_end = r.i64()?;
        if error != 0 {
            return Err(crate::protocol::wire::DecodeError::Invalid(
                "metadata fetch refused",
            ));
        }
        Ok(FetchAnswer {
            leader: (leader >= 0).then_some(leader),
            committed_end,
            snapshot: (kind == 1).then_some((data, snapshot_end)),
            batches: if kind == 0 { data } else { &[] },
        })
    }
}

impl Observer {
    pub fn new(voters: Vec<i32>) -> Observer {
        Observer {
            voters,
            leader: None,
            next_offset: 0,
            txn: TxnBracket::default(),
            published: Vec::new(),
            image: MetadataImage::default(),
            rotate: 0,
        }
    }

    /// The voter to fetch from: the leader, else each voter in turn; only voters for which
    /// `reachable` holds (a connection is up), so a fetch never waits on a dead one.
    pub fn target(&mut self, reachable: impl Fn(i32) -> bool) -> Option<i32> {
        if let Some(l) = self.leader.filter(|l| reachable(*l)) {
            return Some(l);
        }
        let n = self.voters.len();
        for _ in 0..n {
            self.rotate = (self.rotate + 1) % n;
            let v = self.voters[self.rotate];
            if reachable(v) {
                return Some(v);
            }
        }
        None
    }

    /// The fetch failed (no answer, link down): try another voter next time.
    pub fn lost(&mut self) {
        self.leader = None;
    }

    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// The metadata offset applied so far (heartbeats report it).
    pub fn applied_offset(&self) -> i64 {
        self.next_offset - 1
    }

    pub fn image(&self) -> &MetadataImage {
        &self.image
    }

    pub fn take_published(&mut self) -> Vec<Published> {
        std::mem::take(&mut self.published)
    }

    /// Applies an answer: a snapshot first (everything before is replaced), then the batches.
    pub fn apply(&mut self, answer: &FetchAnswer<'_>) {
        if answer.leader.is_some() {
            self.leader = answer.leader;
        }
        if let Some((data, end)) = answer.snapshot {
            self.restore(data, end);
        }
        for b in batches(answer.batches) {
            let Ok((h, bytes)) = b else {
                log::warn!("metadata fetch: a malformed batch; fetched again");
                return;
            };
            if h.base_offset != self.next_offset {
                // Not what was asked for: read again from where this node is.
                return;
            }
            self.next_offset = h.last_offset() + 1;
            if h.is_control() {
                continue; // a leader's LeaderChangeMessage
            }
            let Ok(payload) = records_payload(bytes, 64 << 20) else {
                continue;
            };
            let Ok(records) = parse_records(&payload, h.record_count) else {
                continue;
            };
            for rec in records {
                if let Some(value) = rec.value {
                    self.record(value);
                }
            }
        }
    }

    fn restore(&mut self, data: &[u8], end: i64) {
        self.image = MetadataImage::default();
        self.txn.clear();
        self.published.clear();
        for rec in snapshot_records(data) {
            if let Ok(r) = MetadataRecord::decode(rec) {
                self.image.apply(&r);
            }
        }
        self.next_offset = end;
        self.published.push(Published::Reset);
        log::info!("metadata image restored from the snapshot at {end} (read from the quorum)");
    }

    fn record(&mut self, data: &[u8]) {
        let rec = match MetadataRecord::decode(data) {
            Ok(r) => r,
            Err(e) => {
                log::warn!("committed metadata record not understood: {e}");
                return;
            }
        };
        match self.txn.feed(&rec, data) {
            Feed::This => self.publish(&rec, data),
            Feed::Held(held) => {
                for bytes in held {
                    if let Ok(r) = MetadataRecord::decode(&bytes) {
                        self.publish(&r, &bytes);
                    }
                }
            }
            Feed::Nothing => {}
        }
    }

    fn publish(&mut self, rec: &MetadataRecord<'_>, data: &[u8]) {
        self.image.apply(rec);
        self.published
            .push(Published::Record(self.next_offset as u64, data.to_vec()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::records::{
        begin_transaction_record::BeginTransactionRecord,
        end_transaction_record::EndTransactionRecord, topic_record::TopicRecord,
    };
    use crate::records::BatchBuilder;

    fn encoded(rec: &MetadataRecord<'_>) -> Vec<u8> {
        let mut v = Vec::new();
        rec.encode(&mut v);
        v
    }

    fn topic(name: &str, id: u8) -> Vec<u8> {
        encoded(&MetadataRecord::Topic(TopicRecord {
            name,
            topic_id: [id; 16],
        }))
    }

    /// Batches of one record each from `offset` on, as the quorum's log holds entries.
    fn log(offset: i64, values: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let mut b = BatchBuilder::new(offset + i as i64, 0);
            b.push(None, 0, None, Some(v), &[]);
            out.extend(b.finish());
        }
        out
    }

    fn answer(batches: &[u8]) -> FetchAnswer<'_> {
        FetchAnswer {
            leader: Some(2),
            committed_end: 0,
            snapshot: None,
            batches,
        }
    }

    fn names(o: &Observer) -> Vec<String> {
        o.image().topics().map(|t| t.name.clone()).collect()
    }

    #[test]
    fn records_are_published_in_order_and_a_transaction_at_its_end() {
        let mut o = Observer::new(vec![1, 2, 3]);
        let begin = encoded(&MetadataRecord::BeginTransaction(BeginTransactionRecord {
            name: None,
        }));
        let end = encoded(&MetadataRecord::EndTransaction(EndTransactionRecord {}));
        let first = log(0, &[topic("a", 1), begin.clone(), topic("b", 2)]);
        o.apply(&answer(&first));
        assert_eq!(o.leader, Some(2));
        assert_eq!(names(&o), ["a"], "b waits for its transaction's end");
        assert_eq!(o.next_offset(), 3);
        let rest = log(3, &[topic("c", 3), end]);
        o.apply(&answer(&rest));
        assert_eq!(names(&o), ["a", "b", "c"]);
        let published = o.take_published();
        assert_eq!(published.len(), 3);
        assert!(matches!(&published[0], Published::Record(_, r) if *r == topic("a", 1)));
        assert_eq!(o.applied_offset(), 4);
    }

    #[test]
    fn an_answer_from_elsewhere_in_the_log_is_not_applied() {
        let mut o = Observer::new(vec![1]);
        o.apply(&answer(&log(0, &[topic("a", 1)])));
        // A batch at offset 5 while offset 1 is next: dropped, fetched again from 1.
        o.apply(&answer(&log(5, &[topic("x", 9)])));
        assert_eq!(names(&o), ["a"]);
        assert_eq!(o.next_offset(), 1);
        // Garbage in place of batches changes nothing either.
        o.apply(&answer(&[0xff; 40]));
        assert_eq!(o.next_offset(), 1);
    }

    #[test]
    fn a_snapshot_replaces_everything_and_reading_goes_on_after_it() {
        let mut o = Observer::new(vec![1]);
        o.apply(&answer(&log(0, &[topic("old", 1)])));
        o.take_published();
        let snapshot =
            crate::cluster::committed::encode_snapshot(&[topic("s1", 4), topic("s2", 5)]);
        let after = log(10, &[topic("later", 6)]);
        o.apply(&FetchAnswer {
            leader: Some(1),
            committed_end: 11,
            snapshot: Some((&snapshot, 10)),
            batches: &after,
        });
        assert_eq!(names(&o), ["later", "s1", "s2"]);
        assert_eq!(o.next_offset(), 11);
        assert!(o.take_published().contains(&Published::Reset));
    }

    #[test]
    fn fetches_go_to_reachable_voters_only() {
        let mut o = Observer::new(vec![1, 2, 3]);
        o.leader = Some(2);
        assert_eq!(o.target(|_| true), Some(2));
        // The leader's link is down: another voter, never the unreachable ones.
        let up = |v: i32| v == 3;
        assert_eq!(o.target(up), Some(3));
        assert_eq!(o.target(|_| false), None);
        o.lost();
        assert_eq!(o.leader, None);
    }
}
