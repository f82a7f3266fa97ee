//! Room datagrams, byte for byte (documented in `protocol.md`).
//!
//! Every datagram is `header ‖ sealed body ‖ signature`: the header travels
//! in the clear (it says which room, sender and key epoch), the body is
//! encrypted and authenticated with XChaCha20-Poly1305 under the room key
//! of that epoch, the whole header being the associated data, and the
//! sender signs everything before the signature with its Ed25519 identity
//! key (the one the registry vouches for). So only holders of the current
//! key read a room, a changed byte anywhere fails the tag, and no member
//! can pass a datagram off as another's: the room key is shared, the
//! signing key is not. All integers are big-endian. Strings are a 1-byte
//! length then that many bytes of ASCII.
//!
//! A DATA datagram is addressed to the room, not to one member: the sender
//! seals it once and sends the same bytes to every member. Acknowledgements
//! and syncs name the member they are for inside the sealed body.
//!
//! ```text
//! header: magic "LC" (2) | version 4 (1) | kind (1) | auth 1 (1) | room (str) | from (str)
//!         | epoch u64 | nonce (24)
//! body (sealed, then a 16-byte tag, then the 64-byte Ed25519 signature of
//! everything before it):
//! DATA  (kind 1): stream u64 | seq u64 | event (1) | msg_id u64 | frag u16 | frags u16 | len u16 | bytes
//! ACK   (kind 2): to (str) | stream u64 | cum u64 | high u64 | flags (1) | n (1) | n × (first u64 | count u16)
//! PING  (kind 3): (empty)
//! SYNC  (kind 4): to (str) | stream u64 | next u64
//! LATE  (kind 5): to (str) | stream u64 | upto u64 | noted (1)
//! ```
//!
//! Decoding never panics: every read is bounds-checked, and anything that
//! does not parse exactly (including trailing bytes) is rejected.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
pub use ed25519_dalek::VerifyingKey;

pub const MAGIC: &[u8; 2] = b"LC";
/// Version 1 had an HMAC tag and no epoch, version 2 one stream per
/// (sender, addressee) pair, version 3 no per-sender signature; all are
/// refused as malformed.
pub const VERSION: u8 = 4;
/// The header's `auth` byte: `01`, an Ed25519 signature by the sender of
/// everything before it (header, sealed body, tag) is appended, so that a
/// sender signs each datagram once, whatever the room's size.
pub const AUTH_ED25519: u8 = 1;
/// Bytes of the signature at the end of every datagram.
pub const SIG_LEN: usize = 64;
/// An ACK's flags: the member does not know where the stream starts for it…
pub const ACK_UNSYNCED: u8 = 0x01;
/// …the sender's copies to the room's multicast group reach it.
pub const ACK_GROUP: u8 = 0x02;
/// Missing ranges one ACK lists at most.
pub const MAX_RANGES: usize = 32;
/// Bytes of the Poly1305 tag at the end of every datagram.
pub const TAG_LEN: usize = 16;
/// Bytes of the random XChaCha20 nonce in the header.
pub const NONCE_LEN: usize = 24;
/// The largest datagram we send or accept (payload of one UDP datagram
/// that fits IPv6's minimum MTU of 1280 bytes).
pub const MAX_DATAGRAM: usize = 1232;
/// Bytes of message text per DATA fragment; with the largest header
/// (2 names of 32 bytes) a fragment stays within [`MAX_DATAGRAM`].
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
    /// Member `to`'s report on its stream `stream` from the acker: it holds
    /// every seq ≤ `cum`, nothing above `high`, and every seq in between but
    /// the `missing` ranges (`(first, count)`). `unsynced`: it does not know
    /// where the stream starts for it (it asks for a SYNC). `group`: the
    /// sender's copies to the room's multicast group reach it (it needs no
    /// copy of its own).
    Ack {
        to: String,
        stream: u64,
        cum: u64,
        high: u64,
        unsynced: bool,
        group: bool,
        missing: Vec<(u64, u16)>,
    },
    /// Liveness: "I am still here".
    Ping,
    /// To member `to`: on stream `stream`, your messages start at seq
    /// `next` (you joined while it ran, or were dropped and let back in).
    Sync { to: String, stream: u64, next: u64 },
    /// From a stream's sender to member `to` that was away and is let back
    /// in (`noted` false): what it gets of stream `stream` up to seq `upto`
    /// was sent while it was away (it shows those messages as late). From
    /// the member back to the sender (`noted` true): noted; the sender
    /// sends what it missed only then (or after a second without an
    /// answer), so that none of it arrives unmarked.
    Late {
        to: String,
        stream: u64,
        upto: u64,
        noted: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub room: String,
    pub from: String,
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
    /// The signature is not the named sender's (a forgery, or a sender
    /// whose keys the registry does not vouch for).
    BadSignature,
    /// From a sender whose signing key we do not have (yet).
    UnknownSender { room: String, from: String },
}

/// Signs the datagrams we send and checks those we receive. The peer uses
/// its [`Identity`](crate::identity::Identity) (Ed25519); the room
/// simulator, which moves millions of datagrams, may use a cheap stand-in.
pub trait Authenticator {
    /// Our signature of `msg`.
    fn sign(&self, msg: &[u8]) -> [u8; SIG_LEN];
    /// Whether `sig` is `signer`'s signature of `msg`.
    fn verify(&self, signer: &VerifyingKey, msg: &[u8], sig: &[u8; SIG_LEN]) -> bool;
}

impl Authenticator for crate::identity::Identity {
    fn sign(&self, msg: &[u8]) -> [u8; SIG_LEN] {
        crate::identity::Identity::sign(self, msg)
    }
    fn verify(&self, signer: &VerifyingKey, msg: &[u8], sig: &[u8; SIG_LEN]) -> bool {
        use ed25519_dalek::Verifier;
        signer
            .verify(msg, &ed25519_dalek::Signature::from_bytes(sig))
            .is_ok()
    }
}

/// A datagram's clear header, read before anything is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub kind: u8,
    pub room: String,
    pub from: String,
    pub epoch: u64,
    /// Where the sealed body starts.
    len: usize,
}

impl Header {
    /// Parses the header of `bytes` (length, magic, version, kind, auth).
    pub fn peek(bytes: &[u8]) -> Result<Header, DecodeError> {
        if bytes.len() > MAX_DATAGRAM || bytes.len() < 5 + TAG_LEN + SIG_LEN {
            return Err(DecodeError::Malformed);
        }
        let mut r = Reader { b: bytes, at: 0 };
        if r.take(2)? != MAGIC || r.u8()? != VERSION {
            return Err(DecodeError::Malformed);
        }
        let kind = r.u8()?;
        if !(1..=5).contains(&kind) || r.u8()? != AUTH_ED25519 {
            return Err(DecodeError::Malformed);
        }
        let room = r.str()?;
        let from = r.str()?;
        let epoch = r.u64()?;
        r.take(NONCE_LEN)?;
        if r.at + TAG_LEN + SIG_LEN > bytes.len() {
            return Err(DecodeError::Malformed);
        }
        Ok(Header {
            kind,
            room,
            from,
            epoch,
            len: r.at,
        })
    }
}

/// Splits a datagram into what is signed and the signature (it must have
/// passed [`Header::peek`]).
fn signed(bytes: &[u8]) -> (&[u8], [u8; SIG_LEN]) {
    let (msg, sig) = bytes.split_at(bytes.len().saturating_sub(SIG_LEN));
    let mut s = [0; SIG_LEN];
    if sig.len() == SIG_LEN {
        s.copy_from_slice(sig);
    }
    (msg, s)
}

/// Whether `bytes` (past [`Header::peek`]) carries `signer`'s signature.
pub fn verify(auth: &dyn Authenticator, signer: &VerifyingKey, bytes: &[u8]) -> bool {
    let (msg, sig) = signed(bytes);
    auth.verify(signer, msg, &sig)
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
    /// Serialises the datagram, seals its body under `key` with `nonce`
    /// (which must never repeat under one key: the engine draws it at
    /// random, 192 bits) and appends `auth`'s signature of it all.
    pub fn encode(
        &self,
        key: &RoomKey,
        nonce: &[u8; NONCE_LEN],
        auth: &dyn Authenticator,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(224);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(match self.body {
            Body::Data { .. } => 1,
            Body::Ack { .. } => 2,
            Body::Ping => 3,
            Body::Sync { .. } => 4,
            Body::Late { .. } => 5,
        });
        out.push(AUTH_ED25519);
        put_str(&mut out, &self.room);
        put_str(&mut out, &self.from);
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
            Body::Ack {
                to,
                stream,
                cum,
                high,
                unsynced,
                group,
                missing,
            } => {
                put_str(&mut out, to);
                out.extend_from_slice(&stream.to_be_bytes());
                out.extend_from_slice(&cum.to_be_bytes());
                out.extend_from_slice(&high.to_be_bytes());
                out.push(u8::from(*unsynced) | (u8::from(*group) << 1));
                let n = missing.len().min(MAX_RANGES);
                out.push(n as u8);
                for (first, count) in &missing[..n] {
                    out.extend_from_slice(&first.to_be_bytes());
                    out.extend_from_slice(&count.to_be_bytes());
                }
            }
            Body::Ping => {}
            Body::Sync { to, stream, next } => {
                put_str(&mut out, to);
                out.extend_from_slice(&stream.to_be_bytes());
                out.extend_from_slice(&next.to_be_bytes());
            }
            Body::Late {
                to,
                stream,
                upto,
                noted,
            } => {
                put_str(&mut out, to);
                out.extend_from_slice(&stream.to_be_bytes());
                out.extend_from_slice(&upto.to_be_bytes());
                out.push(u8::from(*noted));
            }
        }
        let (aad, body) = out.split_at_mut(header);
        let tag = cipher(&key.key)
            .encrypt_in_place_detached(XNonce::from_slice(nonce), aad, body)
            .unwrap_or_else(|_| unreachable!("a datagram is far below the AEAD's size limit"));
        out.extend_from_slice(&tag);
        let sig = auth.sign(&out);
        out.extend_from_slice(&sig);
        out
    }

    /// Checks and opens a datagram in one go: its header, the signature of
    /// the sender `signer_of` names (by sender), the epoch of the key
    /// `key_for` returns for its room, the tag; then parses the body.
    pub fn decode(
        bytes: &[u8],
        key_for: impl FnOnce(&str) -> Option<RoomKey>,
        signer_of: impl FnOnce(&str) -> Option<VerifyingKey>,
        auth: &dyn Authenticator,
    ) -> Result<Datagram, DecodeError> {
        let h = Header::peek(bytes)?;
        let key = key_for(&h.room).ok_or(DecodeError::UnknownRoom)?;
        let Some(signer) = signer_of(&h.from) else {
            return Err(DecodeError::UnknownSender {
                room: h.room,
                from: h.from,
            });
        };
        if !verify(auth, &signer, bytes) {
            return Err(DecodeError::BadSignature);
        }
        Datagram::open(bytes, h, &key)
    }

    /// Opens a datagram whose header is `h` (from [`Header::peek`]) and
    /// whose signature was checked: the epoch must be `key`'s, the tag must
    /// hold; then parses the body.
    pub fn open(bytes: &[u8], h: Header, key: &RoomKey) -> Result<Datagram, DecodeError> {
        if key.epoch != h.epoch {
            return Err(DecodeError::OtherEpoch {
                room: h.room,
                epoch: h.epoch,
            });
        }
        let sealed = &bytes[..bytes.len() - SIG_LEN];
        let (sealed, tag) = sealed.split_at(sealed.len() - TAG_LEN);
        let nonce = &sealed[h.len - NONCE_LEN..h.len];
        let mut plain = sealed[h.len..].to_vec();
        cipher(&key.key)
            .decrypt_in_place_detached(
                XNonce::from_slice(nonce),
                &sealed[..h.len],
                &mut plain,
                Tag::from_slice(tag),
            )
            .map_err(|_| DecodeError::BadTag)?;
        let body = parse_body(h.kind, &plain)?;
        Ok(Datagram {
            room: h.room,
            from: h.from,
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
        2 => {
            let to = r.str()?;
            let (stream, cum, high) = (r.u64()?, r.u64()?, r.u64()?);
            let flags = r.u8()?;
            if flags & !(ACK_UNSYNCED | ACK_GROUP) != 0 {
                return Err(DecodeError::Malformed);
            }
            let n = r.u8()? as usize;
            if n > MAX_RANGES || high < cum {
                return Err(DecodeError::Malformed);
            }
            let mut missing = Vec::with_capacity(n);
            for _ in 0..n {
                missing.push((r.u64()?, r.u16()?));
            }
            Body::Ack {
                to,
                stream,
                cum,
                high,
                unsynced: flags & ACK_UNSYNCED != 0,
                group: flags & ACK_GROUP != 0,
                missing,
            }
        }
        3 => Body::Ping,
        4 => Body::Sync {
            to: r.str()?,
            stream: r.u64()?,
            next: r.u64()?,
        },
        _ => Body::Late {
            to: r.str()?,
            stream: r.u64()?,
            upto: r.u64()?,
            noted: match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(DecodeError::Malformed),
            },
        },
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
#[path = "datagram_tests.rs"]
mod tests;
