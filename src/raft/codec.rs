//! Raft messages on the wire: raft-rs's `eraftpb::Message` in its protobuf encoding. Framing (the
//! size prefix, which connection) is the reactor's business; these two functions only turn one
//! message into bytes and back. Decoding never panics: truncated, oversized or garbage input is a
//! [`CodecError`] (rust-protobuf 2.28 checks every length against the input before allocating and
//! rejects groups instead of recursing into them).

use std::fmt;

use protobuf::Message as _;
use raft::eraftpb::Message;

#[derive(Debug)]
pub struct CodecError(String);

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "raft message codec: {}", self.0)
    }
}

impl std::error::Error for CodecError {}

/// Serializes a message for a peer.
pub fn encode_message(msg: &Message) -> Result<Vec<u8>, CodecError> {
    msg.write_to_bytes().map_err(|e| CodecError(e.to_string()))
}

/// Parses a message received from a peer. The result still has to pass
/// [`super::Quorum::step`]'s checks (sender, destination, message type, entries).
pub fn decode_message(bytes: &[u8]) -> Result<Message, CodecError> {
    Message::parse_from_bytes(bytes).map_err(|e| CodecError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::eraftpb::{Entry, MessageType};

    #[test]
    fn round_trip() {
        let mut m = Message {
            to: 2,
            from: 1,
            term: 7,
            index: 41,
            log_term: 6,
            commit: 40,
            ..Default::default()
        };
        m.set_msg_type(MessageType::MsgAppend);
        m.mut_entries().push(Entry {
            index: 42,
            term: 7,
            data: b"hello".to_vec().into(),
            ..Default::default()
        });
        let bytes = encode_message(&m).unwrap();
        assert_eq!(decode_message(&bytes).unwrap(), m);
        // Every strict prefix is an error or a different message, never a panic.
        for n in 0..bytes.len() {
            if let Ok(d) = decode_message(&bytes[..n]) {
                assert_ne!(d, m);
            }
        }
    }

    #[test]
    fn garbage_is_rejected_without_panic() {
        // Huge declared lengths, start-group wire types, deep nesting, bad varints.
        let cases: Vec<Vec<u8>> = vec![
            vec![0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f],
            vec![0x0b; 10_000],
            [vec![0x52, 0x80, 0x80, 0x80, 0x80, 0x10], vec![0; 4]].concat(),
            vec![0xff; 64],
            vec![
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
        ];
        for c in cases {
            let _ = decode_message(&c);
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..2000usize {
            let bytes: Vec<u8> = (0..len % 97)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = decode_message(&bytes);
        }
    }
}
