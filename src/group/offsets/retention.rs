//! `offsets.retention.minutes` with Kafka 2.1+ rules (KIP-211, `GroupMetadata.removeExpiredOffsets`):
//! - a group with members keeps its offsets;
//! - a group that had members and is now empty loses them `retention` after it became empty;
//! - a group that never had members (a "simple" consumer that only commits) loses each offset
//!   `retention` after its commit;
//! - an explicit expire timestamp (old v1 commits) wins over both.

use super::{codec, KeyValue, Membership, OffsetStore};

impl OffsetStore {
    /// Tombstones to append for expired offsets, per group (groups sorted). A group that is not
    /// active and loses all its offsets also gets its group tombstone, as Kafka deletes it then.
    pub fn expired(&self, now_ms: i64, retention_ms: i64) -> Vec<(String, Vec<KeyValue>)> {
        let mut out = Vec::new();
        for (name, g) in &self.groups {
            if g.membership == Membership::Active || g.topics.is_empty() {
                continue;
            }
            let since = match g.membership {
                Membership::Empty(since) => since,
                _ => None,
            };
            let mut tombstones = Vec::new();
            let mut kept = 0usize;
            for (topic, ps) in &g.topics {
                for (p, c) in ps {
                    let gone = if c.expire_timestamp != -1 {
                        now_ms >= c.expire_timestamp
                    } else {
                        let base = since.unwrap_or(c.commit_timestamp);
                        now_ms.saturating_sub(base) >= retention_ms
                    };
                    if gone {
                        tombstones.push((codec::offset_key(name, topic, *p), None));
                    } else {
                        kept += 1;
                    }
                }
            }
            if tombstones.is_empty() {
                continue;
            }
            if kept == 0 {
                tombstones.push(OffsetStore::group_tombstone(name));
            }
            out.push((name.clone(), tombstones));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}
