//! Kafka's `Uuid`: 16 bytes, printed as 22 characters of URL-safe base64 without padding.
//! Topic ids, cluster ids and directory ids in files and logs all use this form.

/// 16 raw bytes.
pub type Uuid = [u8; 16];

/// Kafka's `Uuid.ZERO_UUID`.
pub const ZERO_UUID: Uuid = [0; 16];
/// Kafka's `Uuid.METADATA_TOPIC_ID` (0, 1): reserved.
pub const METADATA_TOPIC_ID: Uuid = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

/// A random id as Kafka's `Uuid.randomUuid()` makes them: never zero or reserved, and never
/// one whose string form starts with `-` (it would read as a command-line flag).
pub fn random_uuid() -> Uuid {
    loop {
        let u = uuid::Uuid::new_v4().into_bytes();
        if u != ZERO_UUID && u != METADATA_TOPIC_ID && !uuid_to_string(&u).starts_with('-') {
            return u;
        }
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Kafka's `Uuid.toString()`: 22 characters of URL-safe base64 without padding.
pub fn uuid_to_string(u: &Uuid) -> String {
    let mut out = String::with_capacity(22);
    for chunk in u.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Parses Kafka's 22-character uuid form (also standard base64, with or without `==`).
pub fn uuid_from_string(s: &str) -> Option<Uuid> {
    let s = s.trim_end_matches('=');
    if s.len() != 22 {
        return None;
    }
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = Vec::with_capacity(16);
    for c in s.bytes() {
        // Standard base64 ('+', '/') is accepted too: some tools write ids that way.
        let v = match c {
            b'+' => 62,
            b'/' => 63,
            _ => B64.iter().position(|&x| x == c)? as u32,
        };
        bits = bits << 6 | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    // 22 chars = 132 bits: the last 4 must be zero padding.
    if bits != 0 {
        return None;
    }
    out.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_strings_match_kafka() {
        // Kafka: new Uuid(0L, 1L).toString() == "AAAAAAAAAAAAAAAAAAAAAQ".
        assert_eq!(uuid_to_string(&METADATA_TOPIC_ID), "AAAAAAAAAAAAAAAAAAAAAQ");
        assert_eq!(uuid_to_string(&ZERO_UUID), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(uuid_to_string(&[0xff; 16]), "_____________________w");
        for _ in 0..50 {
            let u = random_uuid();
            let s = uuid_to_string(&u);
            assert_eq!(s.len(), 22);
            assert!(!s.starts_with('-'));
            assert_eq!(uuid_from_string(&s), Some(u));
        }
        // Standard base64 with padding, as the CodeCrafters harness writes directory.id.
        assert_eq!(
            uuid_from_string("EAAAAAAAQACAAAAAAAAAAQ=="),
            Some([0x10, 0, 0, 0, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0, 0, 0, 1])
        );
        assert_eq!(
            uuid_from_string("+/AAAAAAAAAAAAAAAAAAAA"),
            uuid_from_string("-_AAAAAAAAAAAAAAAAAAAA")
        );
        assert_eq!(uuid_from_string("short"), None);
        assert_eq!(uuid_from_string("AAAAAAAAAAAAAAAAAAAAA!"), None);
        assert_eq!(uuid_from_string("AAAAAAAAAAAAAAAAAAAAAB"), None); // nonzero padding
    }
}
