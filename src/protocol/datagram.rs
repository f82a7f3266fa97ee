//! Room datagrams, byte for byte (documented in `protocol.md`).
//!
//! Every datagram is `header ‖ body ‖ tag`, where `tag` is
//! HMAC-SHA256(room key, header ‖ body), 32 bytes. All integers are
//! big-endian. Strings are a 1-byte length then that many bytes of ASCII.
//!
//! ```text
//! header: magic "LC" (2) | version 1 (1) | kind (1) | room (str) | from (str) | to (str)
//! DATA  (kind 1): stream u64 | seq u64 | event (1) | msg_id u64 | frag u16 | frags u16 | len u16 | bytes
//! ACK   (kind 2): stream u64 | cum u64 | sack u64
//! PING  (kind 3): (no body)
//! ```
//!
//! Decoding never panics: every read is bounds-checked, and anything that
//! does not parse exactly (including trailing bytes) is rejected.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const MAGIC: &[u8; 2] = b"LC";
pub const VERSION: u8 = 1;
pub const TAG_LEN: usize = 32;
/// The largest datagram we send or accept (payload of one UDP datagram).
pub const MAX_DATAGRAM: usize = 1200;
/// Bytes of message text per DATA fragment; with the largest header
/// (3 names of 32 bytes) a fragment stays within [`MAX_DATAGRAM`].
pub const FRAGMENT_BYTES: usize = 1000;
/// Longest room message, in bytes of UTF-8 (at most 32 fragments).
pub const MAX_MESSAGE: usize = 32 * FRAGMENT_BYTES;

type HmacSha256 = Hmac<Sha256>;

/// What a DATA datagram carries, in the sender's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A fragment of a text message.
    Text = 1,
    /// The sender joined the room.
    Join = 2,
    /// The sender is leaving the room.
    Leave = 3,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Data {
        stream: u64,
        seq: u64,
        event: EventKind,
        msg_id: u64,
        frag: u16,
        frags: u16,
        bytes: Vec<u8>,
    },
    /// Acknowledges, on stream `stream` from the addressee to the acker,
    /// every seq ≤ `cum`, and seq `cum + 1 + i` for each bit `i` set in `sack`.
    Ack { stream: u64, cum: u64, sack: u64 },
    /// Liveness: "I am still here".
    Ping,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub room: String,
    pub from: String,
    pub to: String,
    pub body: Body,
}

/// Why a datagram was dropped before its content was looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Not ours, truncated, trailing bytes, bad field.
    Malformed,
    /// Parsed, but the tag does not verify under the room's key.
    BadTag,
    /// Parsed, but for a room we are not in (so no key to check it with).
    UnknownRoom,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let n = b.len().min(255);
    out.push(n as u8);
    out.extend_from_slice(&b[..n]);
}

pub fn mac(key: &[u8; 32], bytes: &[u8]) -> [u8; TAG_LEN] {
    let mut m = <HmacSha256 as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    m.update(bytes);
    m.finalize().into_bytes().into()
}

impl Datagram {
    /// Serialises and tags the datagram.
    pub fn encode(&self, key: &[u8; 32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(match self.body {
            Body::Data { .. } => 1,
            Body::Ack { .. } => 2,
            Body::Ping => 3,
        });
        put_str(&mut out, &self.room);
        put_str(&mut out, &self.from);
        put_str(&mut out, &self.to);
        match &self.body {
            Body::Data {
                stream,
                seq,
                event,
                msg_id,
                frag,
                frags,
                bytes,
            } => {
                out.extend_from_slice(&stream.to_be_bytes());
                out.extend_from_slice(&seq.to_be_bytes());
                out.push(*event as u8);
                out.extend_from_slice(&msg_id.to_be_bytes());
                out.extend_from_slice(&frag.to_be_bytes());
                out.extend_from_slice(&frags.to_be_bytes());
                out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
                out.extend_from_slice(bytes);
            }
            Body::Ack { stream, cum, sack } => {
                out.extend_from_slice(&stream.to_be_bytes());
                out.extend_from_slice(&cum.to_be_bytes());
                out.extend_from_slice(&sack.to_be_bytes());
            }
            Body::Ping => {}
        }
        let tag = mac(key, &out);
        out.extend_from_slice(&tag);
        out
    }

    /// Parses a datagram and checks its tag with the key `key_for` returns
    /// for its room.
    pub fn decode(
        bytes: &[u8],
        key_for: impl FnOnce(&str) -> Option<[u8; 32]>,
    ) -> Result<Datagram, DecodeError> {
        if bytes.len() > MAX_DATAGRAM || bytes.len() < 4 + TAG_LEN {
            return Err(DecodeError::Malformed);
        }
        let (signed, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        let mut r = Reader { b: signed, at: 0 };
        if r.take(2)? != MAGIC || r.u8()? != VERSION {
            return Err(DecodeError::Malformed);
        }
        let kind = r.u8()?;
        let room = r.str()?;
        let from = r.str()?;
        let to = r.str()?;
        let body = match kind {
            1 => {
                let stream = r.u64()?;
                let seq = r.u64()?;
                let event = match r.u8()? {
                    1 => EventKind::Text,
                    2 => EventKind::Join,
                    3 => EventKind::Leave,
                    _ => return Err(DecodeError::Malformed),
                };
                let msg_id = r.u64()?;
                let frag = r.u16()?;
                let frags = r.u16()?;
                let len = r.u16()? as usize;
                let bytes = r.take(len)?.to_vec();
                if frags == 0 || frag >= frags || seq == 0 || bytes.len() > FRAGMENT_BYTES {
                    return Err(DecodeError::Malformed);
                }
                Body::Data {
                    stream,
                    seq,
                    event,
                    msg_id,
                    frag,
                    frags,
                    bytes,
                }
            }
            2 => Body::Ack {
                stream: r.u64()?,
                cum: r.u64()?,
                sack: r.u64()?,
            },
            3 => Body::Ping,
            _ => return Err(DecodeError::Malformed),
        };
        if r.at != signed.len() {
            return Err(DecodeError::Malformed);
        }
        let key = key_for(&room).ok_or(DecodeError::UnknownRoom)?;
        let mut m = <HmacSha256 as Mac>::new_from_slice(&key).map_err(|_| DecodeError::BadTag)?;
        m.update(signed);
        // verify_slice compares in constant time.
        m.verify_slice(tag).map_err(|_| DecodeError::BadTag)?;
        Ok(Datagram {
            room,
            from,
            to,
            body,
        })
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.at.checked_add(n).ok_or(DecodeError::Malformed)?;
        let s = self.b.get(self.at..end).ok_or(DecodeError::Malformed)?;
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(
            self.take(2)?
                .try_into()
                .map_err(|_| DecodeError::Malformed)?,
        ))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(
            self.take(8)?
                .try_into()
                .map_err(|_| DecodeError::Malformed)?,
        ))
    }
    fn str(&mut self) -> Result<String, DecodeError> {
        let n = self.u8()? as usize;
        let s = self.take(n)?;
        if n == 0 || !s.iter().all(|b| b.is_ascii_graphic()) {
            return Err(DecodeError::Malformed);
        }
        Ok(String::from_utf8_lossy(s).into_owned())
    }
}

/// Parses a 64-hex-digit room key.
pub fn parse_key(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, k) in key.iter_mut().enumerate() {
        *k = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    fn data() -> Datagram {
        Datagram {
            room: "lab".into(),
            from: "alice".into(),
            to: "bob".into(),
            body: Body::Data {
                stream: 9,
                seq: 1,
                event: EventKind::Text,
                msg_id: 4,
                frag: 0,
                frags: 1,
                bytes: b"hi".to_vec(),
            },
        }
    }

    #[test]
    fn round_trip_and_tag() {
        for d in [
            data(),
            Datagram {
                body: Body::Ack {
                    stream: 9,
                    cum: 3,
                    sack: 0b101,
                },
                ..data()
            },
            Datagram {
                body: Body::Ping,
                ..data()
            },
        ] {
            let bytes = d.encode(&KEY);
            assert_eq!(Datagram::decode(&bytes, |_| Some(KEY)), Ok(d.clone()));
            assert_eq!(
                Datagram::decode(&bytes, |_| Some([8; 32])),
                Err(DecodeError::BadTag)
            );
            assert_eq!(
                Datagram::decode(&bytes, |_| None),
                Err(DecodeError::UnknownRoom)
            );
            let mut flipped = bytes.clone();
            flipped[5] ^= 1;
            assert!(Datagram::decode(&flipped, |_| Some(KEY)).is_err());
            for cut in 0..bytes.len() {
                assert!(Datagram::decode(&bytes[..cut], |_| Some(KEY)).is_err());
            }
        }
    }

    #[test]
    fn exact_bytes() {
        let bytes = data().encode(&KEY);
        let mut expect = b"LC\x01\x01\x03lab\x05alice\x03bob".to_vec();
        expect.extend_from_slice(&9u64.to_be_bytes());
        expect.extend_from_slice(&1u64.to_be_bytes());
        expect.push(1);
        expect.extend_from_slice(&4u64.to_be_bytes());
        expect.extend_from_slice(&[0, 0, 0, 1, 0, 2]);
        expect.extend_from_slice(b"hi");
        let tag = mac(&KEY, &expect);
        expect.extend_from_slice(&tag);
        assert_eq!(bytes, expect);
    }

    #[test]
    fn largest_fragment_fits() {
        let name = "a".repeat(32);
        let d = Datagram {
            room: name.clone(),
            from: name.clone(),
            to: name,
            body: Body::Data {
                stream: u64::MAX,
                seq: u64::MAX,
                event: EventKind::Text,
                msg_id: u64::MAX,
                frag: 0,
                frags: 1,
                bytes: vec![b'x'; FRAGMENT_BYTES],
            },
        };
        let bytes = d.encode(&KEY);
        assert!(bytes.len() <= MAX_DATAGRAM, "{}", bytes.len());
        assert!(Datagram::decode(&bytes, |_| Some(KEY)).is_ok());
    }

    #[test]
    fn keys() {
        assert_eq!(parse_key(&"0a".repeat(32)), Some([10; 32]));
        assert_eq!(parse_key("zz"), None);
        assert_eq!(parse_key(&"g0".repeat(32)), None);
    }
}
