//! Builds v2 batches (tests, internal topics, control records). Length and CRC are back-filled.

use super::{attr, compute_crc, off, Compression, BATCH_HEADER_LEN, LOG_OVERHEAD, MAGIC_V2};
use crate::protocol::wire::Writer;
use byteorder::{BigEndian, ByteOrder};

pub struct BatchBuilder {
    base_offset: i64,
    base_timestamp: i64,
    max_timestamp: i64,
    partition_leader_epoch: i32,
    attributes: i16,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    last_offset_delta: i32,
    count: i32,
    records: Vec<u8>,
    scratch: Vec<u8>,
}

impl BatchBuilder {
    /// A non-idempotent, uncompressed, CreateTime batch.
    pub fn new(base_offset: i64, base_timestamp: i64) -> BatchBuilder {
        BatchBuilder {
            base_offset,
            base_timestamp,
            max_timestamp: -1,
            partition_leader_epoch: -1,
            attributes: 0,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            last_offset_delta: -1,
            count: 0,
            records: Vec::new(),
            scratch: Vec::new(),
        }
    }

    pub fn producer(mut self, id: i64, epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = id;
        self.producer_epoch = epoch;
        self.base_sequence = base_sequence;
        self
    }

    pub fn partition_leader_epoch(mut self, epoch: i32) -> Self {
        self.partition_leader_epoch = epoch;
        self
    }

    pub fn transactional(mut self, on: bool) -> Self {
        self.set_bit(attr::TRANSACTIONAL, on);
        self
    }

    pub fn control(mut self, on: bool) -> Self {
        self.set_bit(attr::CONTROL, on);
        self
    }

    pub fn log_append_time(mut self, on: bool) -> Self {
        self.set_bit(attr::TIMESTAMP_TYPE, on);
        self
    }

    /// Codec for `finish`: `None` or `Gzip` (others are written uncompressed with their bit set,
    /// which only makes sense in tests).
    pub fn compression(mut self, c: Compression) -> Self {
        self.attributes = (self.attributes & !attr::COMPRESSION_MASK) | c.bits();
        self
    }

    fn set_bit(&mut self, bit: i16, on: bool) {
        if on {
            self.attributes |= bit;
        } else {
            self.attributes &= !bit;
        }
    }

    pub fn record_count(&self) -> i32 {
        self.count
    }

    /// Appends a record. `offset_delta` `None` = the next delta after the previous record.
    pub fn push(
        &mut self,
        offset_delta: Option<i32>,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) {
        let delta = offset_delta.unwrap_or(self.last_offset_delta.wrapping_add(1));
        self.scratch.clear();
        let mut w = Writer::new(&mut self.scratch);
        w.i8(0);
        w.varlong(timestamp.wrapping_sub(self.base_timestamp));
        w.varint(delta);
        put_var_bytes(&mut w, key);
        put_var_bytes(&mut w, value);
        w.varint(headers.len() as i32);
        for (k, v) in headers {
            put_var_bytes(&mut w, Some(k.as_bytes()));
            put_var_bytes(&mut w, *v);
        }
        let mut w = Writer::new(&mut self.records);
        w.varint(self.scratch.len() as i32);
        w.bytes(&self.scratch);
        self.count += 1;
        self.last_offset_delta = self.last_offset_delta.max(delta);
        self.max_timestamp = self.max_timestamp.max(timestamp);
    }

    /// The finished batch with batchLength and CRC filled in.
    pub fn finish(mut self) -> Vec<u8> {
        let codec = Compression::from_bits((self.attributes & attr::COMPRESSION_MASK) as u8);
        let body: Vec<u8> = match codec {
            Compression::None | Compression::Unknown(_) => std::mem::take(&mut self.records),
            c => match super::compression::compress(c, &self.records) {
                Ok(z) => z,
                Err(_) => {
                    // A codec that cannot encode this payload: store it uncompressed instead.
                    self.attributes &= !attr::COMPRESSION_MASK;
                    std::mem::take(&mut self.records)
                }
            },
        };
        let mut b = Vec::with_capacity(BATCH_HEADER_LEN + body.len());
        let mut w = Writer::new(&mut b);
        w.i64(self.base_offset);
        w.i32((BATCH_HEADER_LEN - LOG_OVERHEAD + body.len()) as i32);
        w.i32(self.partition_leader_epoch);
        w.i8(MAGIC_V2);
        w.u32(0);
        w.i16(self.attributes);
        w.i32(self.last_offset_delta.max(0));
        w.i64(self.base_timestamp);
        w.i64(self.max_timestamp);
        w.i64(self.producer_id);
        w.i16(self.producer_epoch);
        w.i32(self.base_sequence);
        w.i32(self.count);
        w.bytes(&body);
        let crc = compute_crc(&b);
        BigEndian::write_u32(&mut b[off::CRC..], crc);
        b
    }
}

fn put_var_bytes(w: &mut Writer<'_>, b: Option<&[u8]>) {
    match b {
        None => w.varint(-1),
        Some(b) => {
            w.varint(b.len() as i32);
            w.bytes(b);
        }
    }
}
