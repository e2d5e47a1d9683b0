//! Kafka's transaction index (`<base>.txnindex`, `TransactionIndex`): one 34-byte entry per
//! aborted transaction whose marker is in that segment — version (0), producer id, first offset,
//! last offset (the marker) and the last stable offset when it was aborted. A read_committed
//! Fetch returns the aborted transactions overlapping what it read, so the consumer can drop
//! their records.

use super::faults;
use byteorder::{BigEndian, ByteOrder};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;

pub const ENTRY_SIZE: usize = 34;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    pub fn encode(&self) -> [u8; ENTRY_SIZE] {
        let mut b = [0u8; ENTRY_SIZE];
        BigEndian::write_i16(&mut b[0..2], 0);
        BigEndian::write_i64(&mut b[2..10], self.producer_id);
        BigEndian::write_i64(&mut b[10..18], self.first_offset);
        BigEndian::write_i64(&mut b[18..26], self.last_offset);
        BigEndian::write_i64(&mut b[26..34], self.last_stable_offset);
        b
    }

    pub fn decode(b: &[u8]) -> Option<AbortedTxn> {
        if b.len() < ENTRY_SIZE || BigEndian::read_i16(&b[0..2]) != 0 {
            return None;
        }
        Some(AbortedTxn {
            producer_id: BigEndian::read_i64(&b[2..10]),
            first_offset: BigEndian::read_i64(&b[10..18]),
            last_offset: BigEndian::read_i64(&b[18..26]),
            last_stable_offset: BigEndian::read_i64(&b[26..34]),
        })
    }
}

/// The entries of a transaction index file (missing: none). A torn last entry is ignored.
pub fn load(path: &Path) -> io::Result<Vec<AbortedTxn>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(bytes
        .chunks_exact(ENTRY_SIZE)
        .map_while(AbortedTxn::decode)
        .collect())
}

/// Appends one entry (the file is created on the first abort in its segment). Synced with the
/// segment's other files.
pub fn append(path: &Path, entry: &AbortedTxn) -> io::Result<()> {
    faults::check(path, faults::Op::Create)?;
    let f = OpenOptions::new().create(true).append(true).open(path)?;
    faults::write_all(&f, path, &entry.encode())
}

/// Replaces the file's entries (after recovery rebuilt them); no entries: no file.
pub fn rewrite(path: &Path, entries: &[AbortedTxn]) -> io::Result<()> {
    if entries.is_empty() {
        return match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    faults::check(path, faults::Op::Create)?;
    let f = File::create(path)?;
    let mut buf = Vec::with_capacity(entries.len() * ENTRY_SIZE);
    for e in entries {
        buf.extend_from_slice(&e.encode());
    }
    faults::write_all(&f, path, &buf)?;
    faults::sync_data(&f, path)
}

/// fsync of an index file if it exists.
pub fn sync(path: &Path) -> io::Result<()> {
    match File::open(path) {
        Ok(f) => faults::sync_data(&f, path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TempDir;

    #[test]
    fn entries_round_trip_and_a_torn_tail_is_ignored() {
        let d = TempDir::new("txnindex");
        let p = d.path().join("00000000000000000000.txnindex");
        assert!(load(&p).unwrap().is_empty());
        let a = AbortedTxn {
            producer_id: 7,
            first_offset: 10,
            last_offset: 20,
            last_stable_offset: 21,
        };
        let b = AbortedTxn {
            producer_id: 8,
            first_offset: 15,
            last_offset: 30,
            last_stable_offset: 31,
        };
        append(&p, &a).unwrap();
        append(&p, &b).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().len(), 68);
        assert_eq!(load(&p).unwrap(), vec![a, b]);
        let mut raw = fs::read(&p).unwrap();
        raw.truncate(50);
        fs::write(&p, &raw).unwrap();
        assert_eq!(load(&p).unwrap(), vec![a]);
        rewrite(&p, &[b]).unwrap();
        assert_eq!(load(&p).unwrap(), vec![b]);
        rewrite(&p, &[]).unwrap();
        assert!(!p.exists());
        // Kafka's layout: version 0 first.
        assert_eq!(&a.encode()[..2], &[0, 0]);
    }
}
