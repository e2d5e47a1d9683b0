//! Kafka wire primitives: a bounds-checked reader that borrows from the frame, and a writer.
//!
//! Every length and count read from the wire is checked against the bytes that remain before
//! anything is allocated for it, so a hostile frame can never make us reserve more than its size.

use byteorder::{BigEndian, ByteOrder};
use std::fmt;

/// A decode failure. The frame was not what its header or schema promised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes remain than a field needs.
    Truncated { needed: usize, remaining: usize },
    /// A length or count that is negative (and not the null marker) or larger than the frame.
    BadLength(i64),
    /// A varint longer than its type allows.
    BadVarint,
    /// A string that is not UTF-8.
    BadUtf8,
    /// A field that cannot be null was null.
    UnexpectedNull(&'static str),
    /// Anything else the schema rules out.
    Invalid(&'static str),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { needed, remaining } => {
                write!(f, "truncated: needed {needed} bytes, {remaining} remain")
            }
            DecodeError::BadLength(n) => write!(f, "bad length or count {n}"),
            DecodeError::BadVarint => write!(f, "malformed varint"),
            DecodeError::BadUtf8 => write!(f, "string is not valid UTF-8"),
            DecodeError::UnexpectedNull(what) => write!(f, "unexpected null {what}"),
            DecodeError::Invalid(what) => write!(f, "invalid: {what}"),
        }
    }
}

impl std::error::Error for DecodeError {}

pub type DResult<T> = Result<T, DecodeError>;

/// Reads Kafka primitives from a borrowed buffer.
#[derive(Clone, Copy)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread rest of the buffer.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    pub fn bytes(&mut self, n: usize) -> DResult<&'a [u8]> {
        if n > self.remaining() {
            return Err(DecodeError::Truncated {
                needed: n,
                remaining: self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn skip(&mut self, n: usize) -> DResult<()> {
        self.bytes(n).map(|_| ())
    }

    pub fn i8(&mut self) -> DResult<i8> {
        Ok(self.bytes(1)?[0] as i8)
    }
    pub fn u8(&mut self) -> DResult<u8> {
        Ok(self.bytes(1)?[0])
    }
    pub fn bool(&mut self) -> DResult<bool> {
        Ok(self.u8()? != 0)
    }
    pub fn i16(&mut self) -> DResult<i16> {
        Ok(BigEndian::read_i16(self.bytes(2)?))
    }
    pub fn u16(&mut self) -> DResult<u16> {
        Ok(BigEndian::read_u16(self.bytes(2)?))
    }
    pub fn i32(&mut self) -> DResult<i32> {
        Ok(BigEndian::read_i32(self.bytes(4)?))
    }
    pub fn u32(&mut self) -> DResult<u32> {
        Ok(BigEndian::read_u32(self.bytes(4)?))
    }
    pub fn i64(&mut self) -> DResult<i64> {
        Ok(BigEndian::read_i64(self.bytes(8)?))
    }
    pub fn f64(&mut self) -> DResult<f64> {
        Ok(BigEndian::read_f64(self.bytes(8)?))
    }
    pub fn uuid(&mut self) -> DResult<[u8; 16]> {
        let mut u = [0u8; 16];
        u.copy_from_slice(self.bytes(16)?);
        Ok(u)
    }

    /// Unsigned LEB128 varint, at most 5 bytes (32 bits).
    pub fn uvarint(&mut self) -> DResult<u32> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let b = self.u8()?;
            if i == 4 && b > 0x0f {
                return Err(DecodeError::BadVarint);
            }
            value |= ((b & 0x7f) as u32) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::BadVarint)
    }

    /// Zig-zag signed varint (32 bits).
    pub fn varint(&mut self) -> DResult<i32> {
        let v = self.uvarint()?;
        Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
    }

    /// Unsigned varlong, at most 10 bytes.
    pub fn uvarlong(&mut self) -> DResult<u64> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let b = self.u8()?;
            if i == 9 && b > 0x01 {
                return Err(DecodeError::BadVarint);
            }
            value |= ((b & 0x7f) as u64) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::BadVarint)
    }

    /// Zig-zag signed varlong (64 bits).
    pub fn varlong(&mut self) -> DResult<i64> {
        let v = self.uvarlong()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    /// Checks a declared length against what remains. `None` means the null marker (-1).
    fn checked_len(&self, len: i64) -> DResult<Option<usize>> {
        if len == -1 {
            return Ok(None);
        }
        if len < 0 || len as u64 > self.remaining() as u64 {
            return Err(DecodeError::BadLength(len));
        }
        Ok(Some(len as usize))
    }

    /// Length of a compact field: uvarint N+1, 0 = null.
    fn compact_len(&mut self) -> DResult<i64> {
        Ok(self.uvarint()? as i64 - 1)
    }

    fn str_of(&mut self, len: Option<usize>) -> DResult<Option<&'a str>> {
        match len {
            None => Ok(None),
            Some(n) => {
                let b = self.bytes(n)?;
                std::str::from_utf8(b)
                    .map(Some)
                    .map_err(|_| DecodeError::BadUtf8)
            }
        }
    }

    pub fn nullable_string(&mut self) -> DResult<Option<&'a str>> {
        let len = self.i16()? as i64;
        let len = self.checked_len(len)?;
        self.str_of(len)
    }
    pub fn string(&mut self) -> DResult<&'a str> {
        self.nullable_string()?
            .ok_or(DecodeError::UnexpectedNull("string"))
    }
    pub fn compact_nullable_string(&mut self) -> DResult<Option<&'a str>> {
        let len = self.compact_len()?;
        let len = self.checked_len(len)?;
        self.str_of(len)
    }
    pub fn compact_string(&mut self) -> DResult<&'a str> {
        self.compact_nullable_string()?
            .ok_or(DecodeError::UnexpectedNull("string"))
    }

    pub fn nullable_bytes(&mut self) -> DResult<Option<&'a [u8]>> {
        let len = self.i32()? as i64;
        match self.checked_len(len)? {
            None => Ok(None),
            Some(n) => self.bytes(n).map(Some),
        }
    }
    pub fn compact_nullable_bytes(&mut self) -> DResult<Option<&'a [u8]>> {
        let len = self.compact_len()?;
        match self.checked_len(len)? {
            None => Ok(None),
            Some(n) => self.bytes(n).map(Some),
        }
    }

    /// An array count, checked so that `count * min_elem_size` fits in what remains.
    /// `None` is the null array.
    pub fn array_len(&mut self, compact: bool, min_elem_size: usize) -> DResult<Option<usize>> {
        let n = if compact {
            self.compact_len()?
        } else {
            self.i32()? as i64
        };
        if n == -1 {
            return Ok(None);
        }
        if n < 0 || (n as u64).saturating_mul(min_elem_size.max(1) as u64) > self.remaining() as u64
        {
            return Err(DecodeError::BadLength(n));
        }
        Ok(Some(n as usize))
    }

    /// An array read element by element with `f`, after `array_len`'s count check. `None` is the
    /// null array. An element that consumes no bytes is an error, so a count never outruns the
    /// frame.
    pub fn array<T>(
        &mut self,
        compact: bool,
        min_elem_size: usize,
        mut f: impl FnMut(&mut Reader<'a>) -> DResult<T>,
    ) -> DResult<Option<Vec<T>>> {
        let Some(n) = self.array_len(compact, min_elem_size)? else {
            return Ok(None);
        };
        let mut v = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let at = self.pos;
            v.push(f(self)?);
            if self.pos == at {
                return Err(DecodeError::Invalid("empty array element"));
            }
        }
        Ok(Some(v))
    }

    /// Reads the tagged-field section and calls `f(tag, reader_over_value)` for each field.
    /// Unknown tags are for the caller to ignore.
    pub fn tagged_fields(
        &mut self,
        mut f: impl FnMut(u32, &mut Reader<'a>) -> DResult<()>,
    ) -> DResult<()> {
        let count = self.uvarint()?;
        if count as usize > self.remaining() {
            return Err(DecodeError::BadLength(count as i64));
        }
        for _ in 0..count {
            let tag = self.uvarint()?;
            let size = self.uvarint()? as usize;
            let body = self.bytes(size)?;
            let mut sub = Reader::new(body);
            f(tag, &mut sub)?;
        }
        Ok(())
    }

    /// Skips a tagged-field section entirely.
    pub fn skip_tagged_fields(&mut self) -> DResult<()> {
        self.tagged_fields(|_, _| Ok(()))
    }
}

/// Appends Kafka primitives to a `Vec<u8>`.
pub struct Writer<'w> {
    pub buf: &'w mut Vec<u8>,
}

impl<'w> Writer<'w> {
    pub fn new(buf: &'w mut Vec<u8>) -> Self {
        Writer { buf }
    }
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
    pub fn i8(&mut self, v: i8) {
        self.buf.push(v as u8);
    }
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn bool(&mut self, v: bool) {
        self.buf.push(v as u8);
    }
    pub fn i16(&mut self, v: i16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn uuid(&mut self, v: &[u8; 16]) {
        self.buf.extend_from_slice(v);
    }
    pub fn uvarint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }
    pub fn varint(&mut self, v: i32) {
        self.uvarint(((v << 1) ^ (v >> 31)) as u32);
    }
    pub fn uvarlong(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }
    pub fn varlong(&mut self, v: i64) {
        self.uvarlong(((v << 1) ^ (v >> 63)) as u64);
    }

    pub fn string(&mut self, s: &str) {
        self.i16(s.len() as i16);
        self.bytes(s.as_bytes());
    }
    pub fn nullable_string(&mut self, s: Option<&str>) {
        match s {
            None => self.i16(-1),
            Some(s) => self.string(s),
        }
    }
    pub fn compact_string(&mut self, s: &str) {
        self.uvarint(s.len() as u32 + 1);
        self.bytes(s.as_bytes());
    }
    pub fn compact_nullable_string(&mut self, s: Option<&str>) {
        match s {
            None => self.uvarint(0),
            Some(s) => self.compact_string(s),
        }
    }
    pub fn nullable_bytes(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.i32(-1),
            Some(b) => {
                self.i32(b.len() as i32);
                self.bytes(b);
            }
        }
    }
    pub fn compact_nullable_bytes(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.uvarint(0),
            Some(b) => {
                self.uvarint(b.len() as u32 + 1);
                self.bytes(b);
            }
        }
    }
    /// An array count (or -1 / 0 for a null array).
    pub fn array_len(&mut self, compact: bool, n: Option<usize>) {
        match (compact, n) {
            (false, None) => self.i32(-1),
            (false, Some(n)) => self.i32(n as i32),
            (true, None) => self.uvarint(0),
            (true, Some(n)) => self.uvarint(n as u32 + 1),
        }
    }
    /// Writes one tagged field whose value is produced by `f`.
    pub fn tagged_field(&mut self, tag: u32, f: impl FnOnce(&mut Writer<'_>)) {
        let mut tmp = Vec::new();
        f(&mut Writer::new(&mut tmp));
        self.uvarint(tag);
        self.uvarint(tmp.len() as u32);
        self.bytes(&tmp);
    }
    /// Reserves a 4-byte slot to back-fill later (sizes, CRCs); returns its position.
    pub fn reserve_i32(&mut self) -> usize {
        let at = self.buf.len();
        self.i32(0);
        at
    }
    pub fn patch_i32(&mut self, at: usize, v: i32) {
        self.buf[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }
}

/// Size in bytes of `v` as an unsigned varint.
pub fn uvarint_len(mut v: u32) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0i32, 1, -1, 63, -64, 64, 300, i32::MAX, i32::MIN] {
            let mut b = Vec::new();
            Writer::new(&mut b).varint(v);
            assert_eq!(Reader::new(&b).varint().unwrap(), v);
        }
        for v in [0i64, 1, -1, i64::MAX, i64::MIN, 1 << 40] {
            let mut b = Vec::new();
            Writer::new(&mut b).varlong(v);
            assert_eq!(Reader::new(&b).varlong().unwrap(), v);
        }
        let mut b = Vec::new();
        Writer::new(&mut b).uvarint(300);
        assert_eq!(b, vec![0xac, 0x02]);
        assert_eq!(uvarint_len(300), 2);
    }

    #[test]
    fn lengths_are_checked_before_use() {
        // A string that claims 100 bytes in a 3-byte buffer.
        let b = [0x00, 0x64, b'a'];
        assert_eq!(Reader::new(&b).string(), Err(DecodeError::BadLength(100)));
        // An array of 2^31-1 elements.
        let b = [0x7f, 0xff, 0xff, 0xff];
        assert!(Reader::new(&b).array_len(false, 4).is_err());
        // Overlong varint.
        let b = [0xff; 6];
        assert_eq!(Reader::new(&b).uvarint(), Err(DecodeError::BadVarint));
        // Null compact string.
        assert_eq!(Reader::new(&[0]).compact_nullable_string(), Ok(None));
    }

    #[test]
    fn tagged_fields_skip_unknown() {
        let mut b = Vec::new();
        let mut w = Writer::new(&mut b);
        w.uvarint(2);
        w.tagged_field(0, |w| w.i32(7));
        w.tagged_field(5, |w| w.bytes(b"xyz"));
        w.u8(9);
        let mut r = Reader::new(&b);
        let mut seen = vec![];
        r.tagged_fields(|t, sub| {
            seen.push(t);
            if t == 0 {
                assert_eq!(sub.i32()?, 7);
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, vec![0, 5]);
        assert_eq!(r.u8().unwrap(), 9);
    }
}
