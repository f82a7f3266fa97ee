//! Room datagrams, byte for byte (documented in `protocol.md`).
//!
//! Every datagram is `header ‖ sealed body`: the header travels in the
//! clear (it says which room, sender, addressee and key epoch), and the body
//! is encrypted and authenticated with XChaCha20-Poly1305 under the room key
//! of that epoch, the whole header being the associated data. So only
//! holders of the current key read a room, and a changed byte anywhere
//! fails the tag. All integers are big-endian. Strings are a 1-byte length
//! then that many bytes of ASCII.
//!
//! ```text
//! header: magic "LC" (2) | version 2 (1) | kind (1) | room (str) | from (str) | to (str)
//!         | epoch u64 | nonce (24)
//! body (sealed, then a 16-byte tag):
//! DATA  (kind 1): stream u64 | seq u64 | event (1) | msg_id u64 | frag u16 | frags u16 | len u16 | bytes
//! ACK   (kind 2): stream u64 | cum u64 | sack u64
//! PING  (kind 3): (empty)
//! ```
//!
//! Decoding never panics: every read is bounds-checked, and anything that
//! does not parse exactly (including trailing bytes) is rejected.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};

pub const MAGIC: &[u8; 2] = b"LC";
/// Version 1 had an HMAC tag and no epoch; it is refused as malformed.
pub const VERSION: u8 = 2;
/// Bytes of the Poly1305 tag at the end of every datagram.
pub const TAG_LEN: usize = 16;
/// Bytes of the random XChaCha20 nonce in the header.
pub const NONCE_LEN: usize = 24;
/// The largest datagram we send or accept (payload of one UDP datagram).
pub const MAX_DATAGRAM: usize = 1200;
/// Bytes of message text per DATA fragment; with the largest header
/// (3 names of 32 bytes) a fragment stays within [`MAX_DATAGRAM`].
pub const FRAGMENT_BYTES: usize = 1000;
/// Longest room message, in bytes of UTF-8 (at most 32 fragments).
pub const MAX_MESSAGE: usize = 32 * FRAGMENT_BYTES;

/// A room's key for one epoch. The registry hands out a new one (and a new
/// epoch number) whenever a member leaves the room or its session ends, so
/// a former member's key opens nothing sent afterwards.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RoomKey {
    pub epoch: u64,
    pub key: [u8; 32],
}

impl std::fmt::Debug for RoomKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "RoomKey {{ epoch: {}, .. }}", self.epoch)
    }
}

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Not ours, another version, truncated, trailing bytes, bad field.
    Malformed,
    /// Parsed, but the body does not open under the room's key.
    BadTag,
    /// Parsed, but for a room we are not in (so no key to check it with).
    UnknownRoom,
    /// For a room we are in, but sealed under another epoch's key than the
    /// one we hold: ours is out of date, or the sender's is (or the sender
    /// is no longer a member).
    OtherEpoch { room: String, epoch: u64 },
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let n = b.len().min(255);
    out.push(n as u8);
    out.extend_from_slice(&b[..n]);
}

fn cipher(key: &[u8; 32]) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(key.into())
}

impl Datagram {
    /// Serialises the datagram and seals its body under `key` with `nonce`
    /// (which must never repeat under one key: the engine draws it at
    /// random, 192 bits).
    pub fn encode(&self, key: &RoomKey, nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
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
        out.extend_from_slice(&key.epoch.to_be_bytes());
        out.extend_from_slice(nonce);
        let header = out.len();
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
        let (aad, body) = out.split_at_mut(header);
        let tag = cipher(&key.key)
            .encrypt_in_place_detached(XNonce::from_slice(nonce), aad, body)
            .unwrap_or_else(|_| unreachable!("a datagram is far below the AEAD's size limit"));
        out.extend_from_slice(&tag);
        out
    }

    /// Parses a datagram's header, opens its body with the key `key_for`
    /// returns for its room (which must be of the datagram's epoch), and
    /// parses the body.
    pub fn decode(
        bytes: &[u8],
        key_for: impl FnOnce(&str) -> Option<RoomKey>,
    ) -> Result<Datagram, DecodeError> {
        if bytes.len() > MAX_DATAGRAM || bytes.len() < 4 + TAG_LEN {
            return Err(DecodeError::Malformed);
        }
        let (sealed, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        let mut r = Reader { b: sealed, at: 0 };
        if r.take(2)? != MAGIC || r.u8()? != VERSION {
            return Err(DecodeError::Malformed);
        }
        let kind = r.u8()?;
        if !(1..=3).contains(&kind) {
            return Err(DecodeError::Malformed);
        }
        let room = r.str()?;
        let from = r.str()?;
        let to = r.str()?;
        let epoch = r.u64()?;
        let nonce = r.take(NONCE_LEN)?;
        let header = r.at;
        let key = key_for(&room).ok_or(DecodeError::UnknownRoom)?;
        if key.epoch != epoch {
            return Err(DecodeError::OtherEpoch { room, epoch });
        }
        let mut plain = sealed[header..].to_vec();
        cipher(&key.key)
            .decrypt_in_place_detached(
                XNonce::from_slice(nonce),
                &sealed[..header],
                &mut plain,
                Tag::from_slice(tag),
            )
            .map_err(|_| DecodeError::BadTag)?;
        let body = parse_body(kind, &plain)?;
        Ok(Datagram {
            room,
            from,
            to,
            body,
        })
    }
}

/// Parses an opened body of `kind`; it must be used up exactly.
fn parse_body(kind: u8, plain: &[u8]) -> Result<Body, DecodeError> {
    let mut r = Reader { b: plain, at: 0 };
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
        _ => Body::Ping,
    };
    if r.at != plain.len() {
        return Err(DecodeError::Malformed);
    }
    Ok(body)
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

    const KEY: RoomKey = RoomKey {
        epoch: 3,
        key: [7; 32],
    };
    const NONCE: [u8; NONCE_LEN] = [9; NONCE_LEN];

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
            let bytes = d.encode(&KEY, &NONCE);
            assert_eq!(Datagram::decode(&bytes, |_| Some(KEY)), Ok(d.clone()));
            let other_key = RoomKey {
                key: [8; 32],
                ..KEY
            };
            assert_eq!(
                Datagram::decode(&bytes, |_| Some(other_key)),
                Err(DecodeError::BadTag)
            );
            let next_epoch = RoomKey { epoch: 4, ..KEY };
            assert_eq!(
                Datagram::decode(&bytes, |_| Some(next_epoch)),
                Err(DecodeError::OtherEpoch {
                    room: "lab".into(),
                    epoch: 3
                })
            );
            assert_eq!(
                Datagram::decode(&bytes, |_| None),
                Err(DecodeError::UnknownRoom)
            );
            for at in 0..bytes.len() {
                let mut flipped = bytes.clone();
                flipped[at] ^= 1;
                assert!(Datagram::decode(&flipped, |_| Some(KEY)).is_err(), "{at}");
            }
            for cut in 0..bytes.len() {
                assert!(Datagram::decode(&bytes[..cut], |_| Some(KEY)).is_err());
            }
        }
    }

    #[test]
    fn the_text_is_not_on_the_wire() {
        let secret = b"the answer to question 3 is 42";
        let d = Datagram {
            body: Body::Data {
                stream: 9,
                seq: 1,
                event: EventKind::Text,
                msg_id: 4,
                frag: 0,
                frags: 1,
                bytes: secret.to_vec(),
            },
            ..data()
        };
        let bytes = d.encode(&KEY, &NONCE);
        assert!(!bytes.windows(6).any(|w| secret.windows(6).any(|s| s == w)));
        // Another nonce, other bytes: nothing repeats between datagrams.
        let again = d.encode(&KEY, &[10; NONCE_LEN]);
        assert_ne!(bytes[bytes.len() - 40..], again[again.len() - 40..]);
    }

    #[test]
    fn exact_header() {
        let bytes = data().encode(&KEY, &NONCE);
        let mut expect = b"LC\x02\x01\x03lab\x05alice\x03bob".to_vec();
        expect.extend_from_slice(&3u64.to_be_bytes());
        expect.extend_from_slice(&NONCE);
        assert_eq!(bytes[..expect.len()], expect[..]);
        // The 31-byte DATA body with its 2 bytes of text, then the tag.
        assert_eq!(bytes.len(), expect.len() + 31 + 2 + TAG_LEN);
    }

    #[test]
    fn version_1_is_refused() {
        let mut bytes = data().encode(&KEY, &NONCE);
        bytes[2] = 1;
        assert_eq!(
            Datagram::decode(&bytes, |_| Some(KEY)),
            Err(DecodeError::Malformed)
        );
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
        let bytes = d.encode(&KEY, &NONCE);
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
