//! File transfers (`protocol.md` section 3, "Files"): the offer that travels as a
//! chat message, and the transfer connection. The receiver connects to the
//! sender's file port (given in the offer), sends one JSON line (a
//! [`Fetch`]), is answered one JSON line (a [`FetchReply`]) and then gets
//! the file from the offset it asked for as sealed chunks: a 4-byte
//! big-endian length, then the chunk sealed with XChaCha20-Poly1305 under
//! the offer's key, its nonce the chunk's index, its associated data the
//! offer id. Pure functions only; the threads are in `peer::files`.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};

use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Bytes of plaintext per chunk (the last one may be shorter).
pub const CHUNK: u64 = 64 * 1024;
/// Poly1305 tag added to each sealed chunk.
pub const TAG: usize = 16;
/// Longest name in an offer, in bytes (the receiver bounds it further).
pub const MAX_NAME: usize = 255;
/// Longest request or reply line on a transfer connection.
pub const MAX_LINE: usize = 1024;

/// An offer of a file (chat message `file_offer`). `key` (64 hex digits,
/// fresh for each offer) seals the chunks and is what a fetch proves it
/// knows; `port` is the sender's file port on the chat partner's address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    pub offer: String,
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub key: String,
    pub port: u16,
}

/// First line from the fetching side on a transfer connection: offer
/// `offer` for user `user` from byte `offset` (a multiple of [`CHUNK`]);
/// `proof` is [`proof`] of the three under the offer's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "fetch")]
pub struct Fetch {
    pub offer: String,
    pub user: String,
    pub offset: u64,
    pub proof: String,
}

/// The serving side's answer: the chunks follow `ok`; `no` closes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FetchReply {
    Ok { offset: u64, size: u64 },
    No { reason: String },
}

type HmacSha256 = Hmac<Sha256>;

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes of a hex string of exactly `N` bytes.
pub fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// HMAC-SHA-256 under `key` of the offer id, the user and the offset (each
/// followed by a newline), in hex: proves knowledge of the key without
/// sending it.
pub fn proof(key: &[u8; 32], offer: &str, user: &str, offset: u64) -> String {
    let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(format!("{offer}\n{user}\n{offset}\n").as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// Whether `proof` is right for the request (constant-time compare).
pub fn check_proof(key: &[u8; 32], f: &Fetch) -> bool {
    let Some(given) = unhex::<32>(&f.proof) else {
        return false;
    };
    let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(key) else {
        return false;
    };
    mac.update(format!("{}\n{}\n{}\n", f.offer, f.user, f.offset).as_bytes());
    mac.verify_slice(&given).is_ok()
}

fn nonce(index: u64) -> XNonce {
    let mut n = [0u8; 24];
    n[..8].copy_from_slice(&index.to_be_bytes());
    *XNonce::from_slice(&n)
}

/// Seals chunk `index` of `offer` in place (`buf` grows by [`TAG`]).
pub fn seal(key: &[u8; 32], offer: &str, index: u64, buf: &mut Vec<u8>) -> bool {
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .encrypt_in_place(&nonce(index), offer.as_bytes(), buf)
        .is_ok()
}

/// Opens chunk `index` of `offer` in place; false when it is not genuine.
pub fn open(key: &[u8; 32], offer: &str, index: u64, buf: &mut Vec<u8>) -> bool {
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .decrypt_in_place(&nonce(index), offer.as_bytes(), buf)
        .is_ok()
}

/// Plaintext length of chunk `index` of a file of `size` bytes.
pub fn chunk_len(size: u64, index: u64) -> usize {
    let start = index.saturating_mul(CHUNK);
    size.saturating_sub(start).min(CHUNK) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proof_binds_offer_user_and_offset() {
        let key = [7u8; 32];
        let f = Fetch {
            offer: "ab".into(),
            user: "bob".into(),
            offset: 65536,
            proof: proof(&key, "ab", "bob", 65536),
        };
        assert!(check_proof(&key, &f));
        assert!(!check_proof(&[8u8; 32], &f));
        let other = Fetch {
            user: "eve".into(),
            ..f.clone()
        };
        assert!(!check_proof(&key, &other));
        let other = Fetch { offset: 0, ..f };
        assert!(!check_proof(&key, &other));
    }

    #[test]
    fn chunks_open_only_at_their_index() {
        let key = [1u8; 32];
        let mut buf = b"hello".to_vec();
        assert!(seal(&key, "o1", 3, &mut buf));
        assert_eq!(buf.len(), 5 + TAG);
        let mut wrong = buf.clone();
        assert!(!open(&key, "o1", 4, &mut wrong));
        let mut wrong = buf.clone();
        assert!(!open(&key, "o2", 3, &mut wrong));
        assert!(open(&key, "o1", 3, &mut buf));
        assert_eq!(buf, b"hello");
    }

    #[test]
    fn wire_forms() {
        let f: Fetch = serde_json::from_str(
            r#"{"type":"fetch","offer":"a","user":"bob","offset":0,"proof":"00"}"#,
        )
        .unwrap();
        assert_eq!(f.user, "bob");
        let r = FetchReply::Ok { offset: 0, size: 5 };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"type":"ok","offset":0,"size":5}"#
        );
        assert_eq!(chunk_len(CHUNK + 1, 1), 1);
        assert_eq!(chunk_len(CHUNK, 1), 0);
        assert_eq!(unhex::<2>("0aff"), Some([10, 255]));
        assert_eq!(unhex::<2>("0aZf"), None);
    }
}
