//! What a voter ([`super::controller`]) and an observer ([`super::observer`]) share in applying
//! the committed metadata: the snapshot's layout and KIP-868 metadata transactions.

use crate::metadata::records::MetadataRecord;

/// A snapshot's bytes: each record as a u32 length and its bytes, in order.
pub fn encode_snapshot(records: &[Vec<u8>]) -> Vec<u8> {
    let mut data = Vec::with_capacity(records.iter().map(|r| r.len() + 4).sum());
    for r in records {
        data.extend_from_slice(&(r.len() as u32).to_be_bytes());
        data.extend_from_slice(r);
    }
    data
}

/// The records of a snapshot, in order; a truncated one ends them (with a log line).
pub fn snapshot_records(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let head = data.get(pos..pos + 4)?;
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let rec = data.get(pos + 4..(pos + 4).saturating_add(len));
        if rec.is_none() {
            log::error!("a truncated metadata snapshot: the records after byte {pos} are lost");
        }
        pos = pos.saturating_add(4 + len);
        rec
    })
}

/// What to apply for one committed record.
pub enum Feed {
    /// This record, now.
    This,
    /// The records of a metadata transaction that just ended, together.
    Held(Vec<Vec<u8>>),
    /// Nothing yet (inside a transaction), or nothing at all (a transaction's markers, an abort).
    Nothing,
}

/// KIP-868: records between a BeginTransaction and its EndTransaction are applied together at
/// the end, none if aborted, so a topic never appears without its partitions.
#[derive(Default)]
pub struct TxnBracket(Option<Vec<Vec<u8>>>);

impl TxnBracket {
    pub fn feed(&mut self, rec: &MetadataRecord<'_>, data: &[u8]) -> Feed {
        match rec {
            MetadataRecord::BeginTransaction(_) => {
                self.0 = Some(Vec::new());
                Feed::Nothing
            }
            MetadataRecord::EndTransaction(_) => Feed::Held(self.0.take().unwrap_or_default()),
            MetadataRecord::AbortTransaction(_) => {
                self.0 = None;
                Feed::Nothing
            }
            _ => match self.0.as_mut() {
                Some(held) => {
                    held.push(data.to_vec());
                    Feed::Nothing
                }
                None => Feed::This,
            },
        }
    }

    /// Inside a transaction (half of it seen).
    pub fn is_open(&self) -> bool {
        self.0.is_some()
    }

    pub fn clear(&mut self) {
        self.0 = None;
    }
}
