//! The four batch codecs (attributes bits 0..2): gzip, snappy (xerial-framed or raw), lz4 (frame
//! format) and zstd. Decompression is capped: output past `limit` is an error, and no buffer is
//! sized from a declared length before that length is checked against the limit.

use super::stream::{walk_batch, PayloadReader};
use super::{
    attr, compute_crc, off, validate_batch, Compression, RecordsError, BATCH_HEADER_LEN,
    LOG_OVERHEAD,
};
use byteorder::{BigEndian, ByteOrder};
use std::io::{Read, Write};

/// snappy-java's stream header: magic, then version and minimum compatible version (both 1).
pub(super) const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\0";
pub(super) const XERIAL_HEADER_LEN: usize = 16;
/// snappy-java's default block size; the Java broker writes blocks of this size.
const XERIAL_BLOCK: usize = 32 * 1024;

pub(super) fn err(codec: &str, what: impl std::fmt::Display) -> RecordsError {
    RecordsError::Compression(format!("{codec}: {what}"))
}

pub(super) fn too_big(codec: &str, limit: usize) -> RecordsError {
    err(codec, format!("decompressed size exceeds {limit} bytes"))
}

/// Decompresses a batch's records section. `limit` caps the output.
pub fn decompress(codec: Compression, data: &[u8], limit: usize) -> Result<Vec<u8>, RecordsError> {
    match codec {
        Compression::None => {
            if data.len() > limit {
                return Err(too_big("none", limit));
            }
            Ok(data.to_vec())
        }
        Compression::Gzip => read_capped("gzip", flate2::read::MultiGzDecoder::new(data), limit),
        Compression::Snappy => snappy_decompress(data, limit),
        Compression::Lz4 => read_capped("lz4", lz4_flex::frame::FrameDecoder::new(data), limit),
        Compression::Zstd => zstd_decompress(data, limit),
        Compression::Unknown(x) => Err(err("codec", format!("unknown compression codec {x}"))),
    }
}

/// Compresses a records section the way Kafka's own producer and broker do for each codec.
pub fn compress(codec: Compression, data: &[u8]) -> Result<Vec<u8>, RecordsError> {
    compress_with(codec, data, None)
}

/// `compress` with a codec level (Kafka's `compression.<codec>.level`). Only gzip has levels
/// here (1-9; anything else is zlib's default, 6): lz4 and zstd ignore it.
pub fn compress_with(
    codec: Compression,
    data: &[u8],
    level: Option<i32>,
) -> Result<Vec<u8>, RecordsError> {
    match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => {
            let level = match level {
                Some(l @ 1..=9) => flate2::Compression::new(l as u32),
                _ => flate2::Compression::default(),
            };
            let mut enc =
                flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 2 + 64), level);
            enc.write_all(data).map_err(|e| err("gzip", e))?;
            enc.finish().map_err(|e| err("gzip", e))
        }
        Compression::Snappy => snappy_compress(data),
        Compression::Lz4 => {
            // KafkaLZ4BlockOutputStream's choices: 64 KB independent blocks, no checksums but the
            // header's.
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(
                info,
                Vec::with_capacity(data.len() / 2 + 64),
            );
            enc.write_all(data).map_err(|e| err("lz4", e))?;
            enc.finish().map_err(|e| err("lz4", e))
        }
        Compression::Zstd => Ok(ruzstd::encoding::compress_to_vec(
            data,
            ruzstd::encoding::CompressionLevel::Fastest,
        )),
        Compression::Unknown(x) => Err(err("codec", format!("unknown compression codec {x}"))),
    }
}

/// Compresses everything `src` yields with `codec` (the streaming form of `compress_with`).
fn compress_stream(
    codec: Compression,
    src: &mut impl Read,
    level: Option<i32>,
) -> std::io::Result<Vec<u8>> {
    match codec {
        Compression::None => {
            let mut out = Vec::new();
            src.read_to_end(&mut out)?;
            Ok(out)
        }
        Compression::Gzip => {
            let level = match level {
                Some(l @ 1..=9) => flate2::Compression::new(l as u32),
                _ => flate2::Compression::default(),
            };
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), level);
            std::io::copy(src, &mut enc)?;
            enc.finish()
        }
        Compression::Snappy => {
            let mut out = Vec::new();
            out.extend_from_slice(XERIAL_MAGIC);
            out.extend_from_slice(&1u32.to_be_bytes());
            out.extend_from_slice(&1u32.to_be_bytes());
            let mut enc = snap::raw::Encoder::new();
            let mut chunk = vec![0u8; XERIAL_BLOCK];
            loop {
                let mut filled = 0;
                while filled < chunk.len() {
                    match src.read(&mut chunk[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                if filled == 0 {
                    return Ok(out);
                }
                let len_at = out.len();
                out.extend_from_slice(&[0; 4]);
                let start = out.len();
                out.resize(start + snap::raw::max_compress_len(filled), 0);
                let n = enc
                    .compress(&chunk[..filled], &mut out[start..])
                    .map_err(std::io::Error::other)?;
                out.truncate(start + n);
                BigEndian::write_u32(&mut out[len_at..], n as u32);
            }
        }
        Compression::Lz4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
            std::io::copy(src, &mut enc)?;
            enc.finish().map_err(std::io::Error::other)
        }
        Compression::Zstd => {
            // The encoder pulls from a reader; an error of `src` ends its input, so it is
            // remembered and returned instead of the truncated output.
            let mut tracked = ErrorTracking {
                inner: src,
                error: None,
            };
            let out = ruzstd::encoding::compress_to_vec(
                &mut tracked,
                ruzstd::encoding::CompressionLevel::Fastest,
            );
            match tracked.error {
                Some(e) => Err(e),
                None => Ok(out),
            }
        }
        Compression::Unknown(x) => Err(std::io::Error::other(format!(
            "unknown compression codec {x}"
        ))),
    }
}

/// A reader that reports its first error as the end of input and keeps the error.
struct ErrorTracking<'r, R: Read> {
    inner: &'r mut R,
    error: Option<std::io::Error>,
}

impl<R: Read> Read for ErrorTracking<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.error.is_some() {
            return Ok(0);
        }
        match self.inner.read(buf) {
            Ok(n) => Ok(n),
            Err(e) => {
                self.error = Some(e);
                Ok(0)
            }
        }
    }
}

/// Reads a decoder to its end; more than `limit` bytes of output is an error.
fn read_capped(codec: &str, dec: impl Read, limit: usize) -> Result<Vec<u8>, RecordsError> {
    let mut out = Vec::new();
    read_into(codec, dec, &mut out, limit)?;
    Ok(out)
}

/// Appends a decoder's output to `out`, whose length must stay within `limit`. The buffer grows
/// by doubling but never past `limit`, so a bomb costs at most `limit` bytes of memory.
fn read_into(
    codec: &str,
    mut dec: impl Read,
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), RecordsError> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = match dec.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(err(codec, e)),
        };
        let room = limit - out.len();
        if n > room {
            return Err(too_big(codec, limit));
        }
        if out.capacity() - out.len() < n {
            let grow = out.capacity().max(64 * 1024).min(room).max(n);
            out.reserve_exact(grow);
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// Largest zstd window accepted below `limit`: what zstd levels up to 19 use (windowLog 23).
pub(super) const ZSTD_MIN_WINDOW_CAP: usize = 8 << 20;

/// One or more zstd frames back to back. The window the decoder reserves up front is capped at
/// `limit` (or 8 MB, which every non-"ultra" zstd level fits): a frame declaring a bigger window
/// is refused rather than allocated.
fn zstd_decompress(mut data: &[u8], limit: usize) -> Result<Vec<u8>, RecordsError> {
    let mut out = Vec::new();
    if data.is_empty() {
        return Err(err("zstd", "empty payload"));
    }
    while !data.is_empty() {
        let dec = ruzstd::decoding::StreamingDecoder::new_with_max_window_size(
            &mut data,
            limit.max(ZSTD_MIN_WINDOW_CAP) as u64,
        )
        .map_err(|e| err("zstd", e))?;
        read_into("zstd", dec, &mut out, limit)?;
    }
    Ok(out)
}

fn snappy_decompress(data: &[u8], limit: usize) -> Result<Vec<u8>, RecordsError> {
    if data.len() < XERIAL_HEADER_LEN || &data[..8] != XERIAL_MAGIC {
        let mut out = Vec::new();
        snappy_block(data, limit, &mut out)?;
        return Ok(out);
    }
    let mut out = Vec::new();
    for block in xerial_blocks(data) {
        snappy_block(block?, limit, &mut out)?;
    }
    Ok(out)
}

/// The raw snappy blocks of a xerial-framed payload (whose header the caller has checked).
pub(super) fn xerial_blocks(data: &[u8]) -> XerialBlocks<'_> {
    XerialBlocks {
        rest: &data[XERIAL_HEADER_LEN.min(data.len())..],
    }
}

/// xerial framing: header, then (u32 big-endian length, raw snappy block) repeated.
pub(super) struct XerialBlocks<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for XerialBlocks<'a> {
    type Item = Result<&'a [u8], RecordsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        if self.rest.len() < 4 {
            self.rest = &[];
            return Some(Err(err("snappy", "truncated xerial block length")));
        }
        let n = BigEndian::read_u32(self.rest) as usize;
        let rest = &self.rest[4..];
        if n > rest.len() {
            self.rest = &[];
            return Some(Err(err("snappy", "xerial block longer than the payload")));
        }
        self.rest = &rest[n..];
        Some(Ok(&rest[..n]))
    }
}

/// Appends one raw snappy block to `out`, whose total must stay within `limit`.
fn snappy_block(block: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), RecordsError> {
    let n = snap::raw::decompress_len(block).map_err(|e| err("snappy", e))?;
    if n > limit - out.len() {
        return Err(too_big("snappy", limit));
    }
    let start = out.len();
    if out.capacity() - start < n {
        // Doubling, but never past the limit.
        out.reserve_exact(out.capacity().min(limit - start).max(n));
    }
    out.resize(start + n, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| err("snappy", e))?;
    out.truncate(start + written);
    Ok(())
}

/// xerial-framed output, as the Java client and broker write it (every consumer reads it).
fn snappy_compress(data: &[u8]) -> Result<Vec<u8>, RecordsError> {
    let mut out = Vec::with_capacity(XERIAL_HEADER_LEN + data.len() / 2 + 64);
    out.extend_from_slice(XERIAL_MAGIC);
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&1u32.to_be_bytes());
    let mut enc = snap::raw::Encoder::new();
    for chunk in data.chunks(XERIAL_BLOCK) {
        let len_at = out.len();
        out.extend_from_slice(&[0; 4]);
        let start = out.len();
        out.resize(start + snap::raw::max_compress_len(chunk.len()), 0);
        let n = enc
            .compress(chunk, &mut out[start..])
            .map_err(|e| err("snappy", e))?;
        out.truncate(start + n);
        BigEndian::write_u32(&mut out[len_at..], n as u32);
    }
    Ok(out)
}

/// Rebuilds one v2 batch with `target` as its codec: same header fields (base offset, producer
/// state, timestamps, counts), same records, new attributes, length and CRC. The input batch's
/// CRC and records are checked first, so a corrupt batch is never laundered into a valid one.
pub fn recompress_batch(
    batch: &[u8],
    target: Compression,
    limit: usize,
) -> Result<Vec<u8>, RecordsError> {
    recompress_batch_with(batch, target, None, limit)
}

/// `recompress_batch` with a codec level (see `compress_with`).
pub fn recompress_batch_with(
    batch: &[u8],
    target: Compression,
    level: Option<i32>,
    limit: usize,
) -> Result<Vec<u8>, RecordsError> {
    if let Compression::Unknown(x) = target {
        return Err(err("codec", format!("unknown compression codec {x}")));
    }
    let h = validate_batch(batch)?;
    let batch = &batch[..h.total_len()];
    // Two streaming passes instead of holding the decompressed records: check them all, then
    // decompress again straight into the new codec. Memory is the output's size.
    walk_batch(batch, limit, |_| {})?;
    let mut payload = PayloadReader::new(batch, limit)?;
    let body = match compress_stream(target, &mut payload, level) {
        Ok(b) => b,
        Err(e) => return Err(payload.error(e)),
    };
    let length = BATCH_HEADER_LEN - LOG_OVERHEAD + body.len();
    let length = i32::try_from(length).map_err(|_| RecordsError::Corrupt("batch too large"))?;
    let mut out = Vec::with_capacity(BATCH_HEADER_LEN + body.len());
    out.extend_from_slice(&batch[..BATCH_HEADER_LEN]);
    out.extend_from_slice(&body);
    BigEndian::write_i32(&mut out[off::LENGTH..], length);
    let a = (h.attributes & !attr::COMPRESSION_MASK) | target.bits();
    BigEndian::write_i16(&mut out[off::ATTRIBUTES..], a);
    let crc = compute_crc(&out);
    BigEndian::write_u32(&mut out[off::CRC..], crc);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{
        decode_records, parse_records, records_payload, BatchBuilder, BatchHeader,
    };

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    fn sample() -> Vec<u8> {
        let mut v = Vec::new();
        for i in 0..20_000u32 {
            v.extend_from_slice(format!("record {i} value {}\n", i % 97).as_bytes());
        }
        v
    }

    #[test]
    fn round_trip_every_codec() {
        let data = sample();
        for c in ALL {
            let z = compress(c, &data).unwrap();
            if c != Compression::None {
                assert!(z.len() < data.len() / 2, "{c:?} did not compress");
            }
            let out = decompress(c, &z, data.len()).unwrap();
            assert_eq!(out, data, "{c:?}");
            // The output buffer never grew past the limit.
            assert!(out.capacity() <= data.len(), "{c:?} {}", out.capacity());
            // Exactly at the limit is fine; one byte less is an error.
            assert!(decompress(c, &z, data.len() - 1).is_err(), "{c:?}");
            // Empty input round-trips too.
            let e = compress(c, b"").unwrap();
            assert_eq!(decompress(c, &e, 10).unwrap(), b"", "{c:?}");
        }
    }

    fn unhex(h: &str) -> Vec<u8> {
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Frames from the reference tools: `zstd -19 --check` then a second frame without a
    /// checksum, and `lz4 --content-size` (content checksum on), of 40 x "hello kafka compression ".
    #[test]
    fn reference_tool_frames() {
        let want = "hello kafka compression ".repeat(40);
        let zst = unhex(
            "28b52ffd64c002050100c068656c6c6f206b61666b6120636f6d7072657373696f6e20010094de6a8e\
             016dc9c96428b52ffd00582900007461696c21",
        );
        let out = decompress(Compression::Zstd, &zst, 4096).unwrap();
        assert_eq!(out, format!("{want}tail!").as_bytes());
        let lz4 = unhex(
            "04224d186c40c003000000000000af26000000ff0968656c6c6f206b61666b6120636f6d707265737369\
             6f6e201800ffffff935073696f6e200000000098c5eb2f",
        );
        assert_eq!(
            decompress(Compression::Lz4, &lz4, 4096).unwrap(),
            want.as_bytes()
        );
        assert!(decompress(Compression::Lz4, &lz4, 959).is_err());
        // A wrong content checksum is caught.
        let mut bad = lz4.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert!(decompress(Compression::Lz4, &bad, 4096).is_err());
    }

    #[test]
    fn gzip_levels() {
        let data = sample();
        let fast = compress_with(Compression::Gzip, &data, Some(1)).unwrap();
        let best = compress_with(Compression::Gzip, &data, Some(9)).unwrap();
        assert!(best.len() < fast.len());
        // Out of range or default (-1): zlib's default.
        let dflt = compress(Compression::Gzip, &data).unwrap();
        assert_eq!(
            compress_with(Compression::Gzip, &data, Some(-1)).unwrap(),
            dflt
        );
        assert_eq!(
            compress_with(Compression::Gzip, &data, Some(42)).unwrap(),
            dflt
        );
        for z in [fast, best] {
            assert_eq!(decompress(Compression::Gzip, &z, data.len()).unwrap(), data);
        }
    }

    #[test]
    fn snappy_xerial_and_raw() {
        let data = sample();
        let x = compress(Compression::Snappy, &data).unwrap();
        assert_eq!(&x[..8], XERIAL_MAGIC);
        // More than one xerial block.
        assert!(data.len() > 2 * XERIAL_BLOCK);
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(
            decompress(Compression::Snappy, &raw, data.len()).unwrap(),
            data
        );
        assert!(decompress(Compression::Snappy, &raw, 100).is_err());
        // A xerial header alone is an empty payload.
        assert_eq!(
            decompress(Compression::Snappy, &x[..XERIAL_HEADER_LEN], 10).unwrap(),
            b""
        );
    }

    #[test]
    fn corrupt_and_truncated_payloads_are_errors() {
        let data = sample();
        for c in &ALL[1..] {
            let z = compress(*c, &data).unwrap();
            for cut in [1, 5, 17, z.len() / 2] {
                assert!(
                    decompress(*c, &z[..cut], 1 << 24).is_err(),
                    "{c:?} cut at {cut}"
                );
            }
            // Losing the last byte (part of lz4's end mark) may still yield all the data, but
            // never less of it.
            if let Ok(out) = decompress(*c, &z[..z.len() - 1], 1 << 24) {
                assert_eq!(out, data, "{c:?}");
            }
            let mut bad = z.clone();
            let n = bad.len();
            for b in &mut bad[n / 3..n / 3 + 16] {
                *b ^= 0x5a;
            }
            // Garbage in the middle: an error or (for codecs without checksums) different
            // bytes, never a panic.
            if let Ok(out) = decompress(*c, &bad, 1 << 24) {
                assert_ne!(out, data, "{c:?}");
            }
            assert!(decompress(*c, b"not compressed at all", 1 << 24).is_err());
            // Empty input: an error or nothing, never a panic.
            let _ = decompress(*c, b"", 1 << 24);
        }
        // xerial: a block length past the end.
        let mut x = compress(Compression::Snappy, b"hello hello hello").unwrap();
        x[XERIAL_HEADER_LEN + 3] = 0xff;
        assert!(decompress(Compression::Snappy, &x, 1 << 20).is_err());
        assert!(decompress(Compression::Unknown(6), b"x", 10).is_err());
        assert!(compress(Compression::Unknown(7), b"x").is_err());
    }

    /// Random bytes and randomly damaged real payloads: errors or output, never a panic.
    #[test]
    fn random_input_never_panics() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let data = sample();
        for c in &ALL[1..] {
            let good = compress(*c, &data[..4096]).unwrap();
            for round in 0..400 {
                let mut buf = if round % 2 == 0 {
                    let n = (next() % 300) as usize;
                    (0..n).map(|_| next() as u8).collect::<Vec<u8>>()
                } else {
                    good.clone()
                };
                // Keep the codec's magic sometimes, so the damage reaches the block decoders.
                if round % 4 == 0 && buf.len() >= 16 {
                    let keep = good.len().min(16);
                    buf[..keep].copy_from_slice(&good[..keep]);
                }
                for _ in 0..(1 + next() % 8) {
                    if buf.is_empty() {
                        break;
                    }
                    let i = (next() as usize) % buf.len();
                    buf[i] = next() as u8;
                }
                let _ = decompress(*c, &buf, 1 << 20);
            }
        }
    }

    #[test]
    fn bombs_stop_at_the_limit() {
        let zeros = vec![0u8; 8 << 20];
        for c in &ALL[1..] {
            let z = compress(*c, &zeros).unwrap();
            assert!(z.len() < 512 << 10, "{c:?} {}", z.len());
            let e = decompress(*c, &z, 1 << 20).unwrap_err();
            assert!(e.to_string().contains("exceeds"), "{c:?}: {e}");
        }
        // A raw snappy block declaring 4 GB: refused before allocating.
        let lie = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
        assert!(decompress(Compression::Snappy, &lie, 1 << 20).is_err());
    }

    fn batch(c: Compression) -> Vec<u8> {
        let mut b = BatchBuilder::new(40, 1_000).producer(7, 2, 11);
        for i in 0..50 {
            let v = format!("value-{i}-{}", "x".repeat(i));
            b.push(
                None,
                1_000 + i as i64,
                Some(format!("k{i}").as_bytes()),
                Some(v.as_bytes()),
                &[("h", Some(b"v"))],
            );
        }
        let plain = b.finish();
        if c == Compression::None {
            plain
        } else {
            recompress_batch(&plain, c, 1 << 20).unwrap()
        }
    }

    #[test]
    fn recompress_keeps_header_and_records() {
        let plain = batch(Compression::None);
        let ph = validate_batch(&plain).unwrap();
        let want = decode_records(&plain).unwrap();
        for c in ALL {
            let z = batch(c);
            let h = validate_batch(&z).unwrap();
            assert_eq!(h.compression(), c);
            assert_eq!(
                (
                    h.base_offset,
                    h.producer_id,
                    h.producer_epoch,
                    h.base_sequence
                ),
                (40, 7, 2, 11)
            );
            assert_eq!(
                (h.base_timestamp, h.max_timestamp, h.record_count),
                (ph.base_timestamp, ph.max_timestamp, ph.record_count)
            );
            assert_eq!(h.last_offset_delta, ph.last_offset_delta);
            let payload = records_payload(&z, 1 << 20).unwrap();
            assert_eq!(parse_records(&payload, h.record_count).unwrap(), want);
            // And back from every codec to every other.
            for t in ALL {
                let back = recompress_batch(&z, t, 1 << 20).unwrap();
                let bh = validate_batch(&back).unwrap();
                assert_eq!(bh.compression(), t);
                let p = records_payload(&back, 1 << 20).unwrap();
                assert_eq!(parse_records(&p, bh.record_count).unwrap(), want);
            }
            if c == Compression::None {
                assert_eq!(recompress_batch(&z, c, 1 << 20).unwrap(), plain);
            }
        }
    }

    #[test]
    fn recompress_refuses_bad_batches() {
        let mut z = batch(Compression::Lz4);
        let n = z.len();
        z[n - 3] ^= 1;
        // The CRC catches it before any decompression.
        assert!(matches!(
            recompress_batch(&z, Compression::Gzip, 1 << 20),
            Err(RecordsError::BadCrc { .. })
        ));
        // A valid CRC over a broken payload: a compression error.
        let crc = compute_crc(&z);
        BigEndian::write_u32(&mut z[off::CRC..], crc);
        assert!(recompress_batch(&z, Compression::Gzip, 1 << 20).is_err());
        // Over the limit.
        let big = batch(Compression::Zstd);
        assert!(recompress_batch(&big, Compression::None, 100).is_err());
        assert!(recompress_batch(&big, Compression::Unknown(5), 1 << 20).is_err());
        let h = BatchHeader::parse(&big).unwrap();
        assert_eq!(h.total_len(), big.len());
    }
}
