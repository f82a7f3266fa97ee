//! Room keys made by a member and sealed to each member's X25519 key
//! (protocol.md §4, "Room keys"). The registry only stores and hands out
//! the sealed packages: it never sees a room key.
//!
//! A package for member `to`, made by member `from` (the epoch's key
//! maker), is 80 bytes, sent as 160 hex digits:
//!
//! ```text
//! ephemeral X25519 public key (32) || ChaCha20-Poly1305(room key) (32 + 16)
//! ```
//!
//! The AEAD key is HKDF-SHA256 (no salt) over `DH(e, to) || DH(from, to)`
//! with info `"lanchat room key v1"`; the nonce is zero (each ephemeral key
//! seals one package); the associated data names the room, the epoch and
//! both members. The ephemeral half makes every package fresh; the static
//! half (`from`'s identity key, which the registry vouches for) proves who
//! made it, so neither the registry nor another member can hand a member a
//! key of its own choosing in the maker's name. Pure functions: no I/O.

use crate::identity::Identity;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305;
use hkdf::Hkdf;
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};

/// Bytes of a sealed package.
pub const SEALED_LEN: usize = 32 + 32 + 16;

const INFO: &[u8] = b"lanchat room key v1";

/// The associated data: what the package is for.
fn aad(room: &str, epoch: u64, from: &str, to: &str) -> Vec<u8> {
    let mut a = Vec::with_capacity(16 + room.len() + from.len() + to.len());
    for part in [room.as_bytes(), from.as_bytes(), to.as_bytes()] {
        a.push(part.len() as u8);
        a.extend_from_slice(part);
    }
    a.extend_from_slice(&epoch.to_be_bytes());
    a
}

fn cipher(eph_shared: &[u8; 32], static_shared: &[u8; 32]) -> ChaCha20Poly1305 {
    let mut ikm = [0u8; 64];
    ikm[..32].copy_from_slice(eph_shared);
    ikm[32..].copy_from_slice(static_shared);
    let mut okm = [0u8; 32];
    Hkdf::<Sha256>::new(None, &ikm)
        .expand(INFO, &mut okm)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    ChaCha20Poly1305::new(&okm.into())
}

/// Seals `key` (room `room`, epoch `epoch`) from `maker` (named `from`) to
/// member `to`, whose X25519 public key is `to_kx`; `eph` is the ephemeral
/// secret (random; fixed only in the documentation's examples).
#[allow(clippy::too_many_arguments)]
pub fn seal(
    maker: &Identity,
    from: &str,
    to: &str,
    to_kx: &[u8; 32],
    room: &str,
    epoch: u64,
    key: &[u8; 32],
    eph: [u8; 32],
) -> Vec<u8> {
    let eph = StaticSecret::from(eph);
    let eph_pub = PublicKey::from(&eph).to_bytes();
    let eph_shared = eph.diffie_hellman(&PublicKey::from(*to_kx)).to_bytes();
    let static_shared = maker.agree(to_kx);
    let ct = cipher(&eph_shared, &static_shared)
        .encrypt(
            &[0u8; 12].into(),
            Payload {
                msg: key,
                aad: &aad(room, epoch, from, to),
            },
        )
        .expect("ChaCha20-Poly1305 seals 32 bytes");
    let mut out = Vec::with_capacity(SEALED_LEN);
    out.extend_from_slice(&eph_pub);
    out.extend_from_slice(&ct);
    out
}

/// Opens a package sealed to `me` (named `to`) by the member named `from`,
/// whose X25519 public key (as the registry vouches for it) is `from_kx`.
/// `None` if it was not sealed by that key, for us, for this room and
/// epoch, or was altered.
pub fn open(
    me: &Identity,
    from: &str,
    to: &str,
    from_kx: &[u8; 32],
    room: &str,
    epoch: u64,
    sealed: &[u8],
) -> Option<[u8; 32]> {
    if sealed.len() != SEALED_LEN {
        return None;
    }
    let eph_pub: [u8; 32] = sealed[..32].try_into().ok()?;
    let eph_shared = me.agree(&eph_pub);
    let static_shared = me.agree(from_kx);
    let key = cipher(&eph_shared, &static_shared)
        .decrypt(
            &[0u8; 12].into(),
            Payload {
                msg: &sealed[32..],
                aad: &aad(room, epoch, from, to),
            },
        )
        .ok()?;
    key.try_into().ok()
}

/// `seal` as the wire carries it (hex).
#[allow(clippy::too_many_arguments)]
pub fn seal_hex(
    maker: &Identity,
    from: &str,
    to: &str,
    to_kx: &[u8; 32],
    room: &str,
    epoch: u64,
    key: &[u8; 32],
    eph: [u8; 32],
) -> String {
    crate::identity::hex(&seal(maker, from, to, to_kx, room, epoch, key, eph))
}

/// `open` of a hex package; `None` for bad hex too.
pub fn open_hex(
    me: &Identity,
    from: &str,
    to: &str,
    from_kx: &[u8; 32],
    room: &str,
    epoch: u64,
    sealed: &str,
) -> Option<[u8; 32]> {
    if sealed.len() != 2 * SEALED_LEN || !sealed.is_ascii() {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..SEALED_LEN)
        .map(|i| u8::from_str_radix(&sealed[2 * i..2 * i + 2], 16).ok())
        .collect();
    open(me, from, to, from_kx, room, epoch, &bytes?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Identity {
        Identity::from_secrets([1; 32], [2; 32])
    }
    fn bob() -> Identity {
        Identity::from_secrets([3; 32], [4; 32])
    }

    #[test]
    fn a_package_opens_for_its_member_only_and_only_as_sealed() {
        let (a, b, m) = (alice(), bob(), Identity::from_secrets([5; 32], [6; 32]));
        let key = [9u8; 32];
        let p = seal_hex(&a, "alice", "bob", &b.public().kx, "lab", 3, &key, [7; 32]);
        assert_eq!(p.len(), 2 * SEALED_LEN);
        let akx = a.public().kx;
        assert_eq!(open_hex(&b, "alice", "bob", &akx, "lab", 3, &p), Some(key));
        // Someone else, another room, epoch or maker, or a changed byte.
        assert_eq!(open_hex(&m, "alice", "bob", &akx, "lab", 3, &p), None);
        assert_eq!(open_hex(&b, "alice", "bob", &akx, "den", 3, &p), None);
        assert_eq!(open_hex(&b, "alice", "bob", &akx, "lab", 4, &p), None);
        assert_eq!(open_hex(&b, "mallory", "bob", &akx, "lab", 3, &p), None);
        assert_eq!(
            open_hex(&b, "alice", "bob", &m.public().kx, "lab", 3, &p),
            None
        );
        let mut t = p.clone().into_bytes();
        t[100] = if t[100] == b'0' { b'1' } else { b'0' };
        let t = String::from_utf8(t).unwrap();
        assert_eq!(open_hex(&b, "alice", "bob", &akx, "lab", 3, &t), None);
        assert_eq!(open_hex(&b, "alice", "bob", &akx, "lab", 3, "zz"), None);
        assert_eq!(
            open_hex(&b, "alice", "bob", &akx, "lab", 3, &"é".repeat(80)),
            None
        );
        // A member who made the key can open its own package too.
        let own = seal(&a, "alice", "alice", &akx, "lab", 3, &key, [8; 32]);
        assert_eq!(open(&a, "alice", "alice", &akx, "lab", 3, &own), Some(key));
    }

    #[test]
    fn fresh_ephemerals_make_different_packages_of_one_key() {
        let (a, b) = (alice(), bob());
        let bkx = b.public().kx;
        let p1 = seal(&a, "alice", "bob", &bkx, "lab", 1, &[1; 32], [7; 32]);
        let p2 = seal(&a, "alice", "bob", &bkx, "lab", 1, &[1; 32], [8; 32]);
        assert_ne!(p1, p2);
    }
}
