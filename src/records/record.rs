//! Records inside a batch: the varint layout, decoded borrowing from the batch bytes.

use super::{BatchHeader, Compression, RecordsError, BATCH_HEADER_LEN};
use crate::protocol::wire::Reader;
use std::borrow::Cow;

/// Smallest possible encoded record: length, attributes, timestampDelta, offsetDelta, keyLength,
/// valueLength, headersCount, one byte each.
const MIN_RECORD_LEN: usize = 7;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Vec<(&'a str, Option<&'a [u8]>)>,
}

/// Decodes the records of one uncompressed batch (`batch` = exactly one batch, or at least one
/// batch followed by anything). A compressed batch is an error here: use `records_payload`.
pub fn decode_records(batch: &[u8]) -> Result<Vec<Record<'_>>, RecordsError> {
    let h = BatchHeader::parse(batch)?;
    if h.total_len() > batch.len() {
        return Err(RecordsError::Truncated);
    }
    match h.compression() {
        Compression::None => parse_records(&batch[BATCH_HEADER_LEN..h.total_len()], h.record_count),
        c => Err(RecordsError::Compression(format!(
            "{c:?} batch: decompress with records_payload first"
        ))),
    }
}

/// The records section of a batch, decompressed if needed (every codec). Decompressed output is
/// capped at `cap` bytes. Borrowed when uncompressed.
pub fn records_payload(batch: &[u8], cap: usize) -> Result<Cow<'_, [u8]>, RecordsError> {
    let h = BatchHeader::parse(batch)?;
    if h.total_len() > batch.len() {
        return Err(RecordsError::Truncated);
    }
    let body = &batch[BATCH_HEADER_LEN..h.total_len()];
    match h.compression() {
        Compression::None => Ok(Cow::Borrowed(body)),
        c => Ok(Cow::Owned(super::compression::decompress(c, body, cap)?)),
    }
}

/// Parses `count` records from an (uncompressed) records section; the section must end exactly
/// after the last record.
pub fn parse_records(data: &[u8], count: i32) -> Result<Vec<Record<'_>>, RecordsError> {
    if count < 0 {
        return Err(RecordsError::Corrupt("negative record count"));
    }
    if count as usize > data.len() / MIN_RECORD_LEN {
        return Err(RecordsError::Corrupt(
            "record count larger than the batch can hold",
        ));
    }
    let mut out = Vec::with_capacity(count as usize);
    let mut r = Reader::new(data);
    for _ in 0..count {
        let len = r.varint()?;
        if len < 0 || len as usize > r.remaining() {
            return Err(RecordsError::Corrupt("record length out of range"));
        }
        let body = r.bytes(len as usize)?;
        out.push(parse_one(body)?);
    }
    if !r.is_empty() {
        return Err(RecordsError::Corrupt("bytes after the last record"));
    }
    Ok(out)
}

/// The records of an (uncompressed) records section one at a time, so a batch of millions of
/// records never becomes a vector of them. Yields `count` records; after the last one, bytes
/// left over are an error.
pub fn iter_records(data: &[u8], count: i32) -> RecordIter<'_> {
    RecordIter {
        r: Reader::new(data),
        left: count,
        failed: false,
    }
}

pub struct RecordIter<'a> {
    r: Reader<'a>,
    left: i32,
    failed: bool,
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<Record<'a>, RecordsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.left <= 0 {
            if self.left < 0 || !self.r.is_empty() {
                self.failed = true;
                return Some(Err(RecordsError::Corrupt(if self.left < 0 {
                    "negative record count"
                } else {
                    "bytes after the last record"
                })));
            }
            return None;
        }
        self.left -= 1;
        let item = (|| {
            let len = self.r.varint()?;
            if len < 0 || len as usize > self.r.remaining() {
                return Err(RecordsError::Corrupt("record length out of range"));
            }
            parse_one(self.r.bytes(len as usize)?)
        })();
        if item.is_err() {
            self.failed = true;
        }
        Some(item)
    }
}

fn parse_one(body: &[u8]) -> Result<Record<'_>, RecordsError> {
    let mut r = Reader::new(body);
    let attributes = r.i8()?;
    let timestamp_delta = r.varlong()?;
    let offset_delta = r.varint()?;
    let key = var_bytes(&mut r)?;
    let value = var_bytes(&mut r)?;
    let n = r.varint()?;
    // A header needs at least two bytes (two length varints).
    if n < 0 || n as usize > r.remaining() / 2 {
        return Err(RecordsError::Corrupt("header count out of range"));
    }
    let mut headers = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let k = var_bytes(&mut r)?.ok_or(RecordsError::Corrupt("null header key"))?;
        let k =
            std::str::from_utf8(k).map_err(|_| RecordsError::Corrupt("header key is not UTF-8"))?;
        headers.push((k, var_bytes(&mut r)?));
    }
    if !r.is_empty() {
        return Err(RecordsError::Corrupt(
            "record length does not match its fields",
        ));
    }
    Ok(Record {
        attributes,
        timestamp_delta,
        offset_delta,
        key,
        value,
        headers,
    })
}

/// varint length (-1 = null) then that many bytes.
fn var_bytes<'a>(r: &mut Reader<'a>) -> Result<Option<&'a [u8]>, RecordsError> {
    let len = r.varint()?;
    if len == -1 {
        return Ok(None);
    }
    if len < 0 || len as usize > r.remaining() {
        return Err(RecordsError::Corrupt("field length out of range"));
    }
    Ok(Some(r.bytes(len as usize)?))
}
