//! A peer's identity keys: an Ed25519 signing key and an X25519
//! key-agreement key, kept per user and device.
//!
//! At login the peer sends the public halves to the registry, which binds
//! them to the authenticated name and returns them wherever it returns an
//! address (`search`, `online`, room replies). Peers check every
//! peer-to-peer identity against that binding, never by IP:
//! - the X25519 key is the static key of the Noise handshake of one-to-one
//!   chats, and what room keys are sealed to;
//! - the Ed25519 key signs room datagrams and room key packages.
//!
//! The secret halves live in `identity/USER.key` in the user's config
//! directory (mode 0600), made at the first login on that device. A student
//! on another machine simply gets a new device key there: the registry
//! binds the name to whichever keys the current session logged in with.

use crate::protocol::messages::PeerKeys;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};
use x25519_dalek::{PublicKey as XPublic, StaticSecret};

/// Bytes of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// Both secret keys of one user on one device.
pub struct Identity {
    sign: SigningKey,
    kx: StaticSecret,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        write!(f, "Identity {{ {} }}", self.public().fingerprint())
    }
}

/// The public halves, as the registry vouches for them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKeys {
    pub sign: VerifyingKey,
    pub kx: [u8; 32],
}

impl fmt::Debug for PublicKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKeys({})", self.fingerprint())
    }
}

/// Why public keys from the wire were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// Not 64 hex digits.
    Malformed(&'static str),
    /// Not a valid Ed25519 point.
    BadSigningKey,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Malformed(which) => write!(f, "{which} key is not 64 hex digits"),
            KeyError::BadSigningKey => f.write_str("sign key is not an Ed25519 public key"),
        }
    }
}

impl std::error::Error for KeyError {}

impl Identity {
    /// Fresh random keys.
    pub fn generate() -> Identity {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        OsRng.fill_bytes(&mut a);
        OsRng.fill_bytes(&mut b);
        Identity::from_secrets(a, b)
    }

    /// Keys from fixed secrets (tests and the documentation's examples).
    pub fn from_secrets(sign: [u8; 32], kx: [u8; 32]) -> Identity {
        Identity {
            sign: SigningKey::from_bytes(&sign),
            kx: StaticSecret::from(kx),
        }
    }

    /// The public halves.
    pub fn public(&self) -> PublicKeys {
        PublicKeys {
            sign: self.sign.verifying_key(),
            kx: XPublic::from(&self.kx).to_bytes(),
        }
    }

    /// The public halves as the registry protocol carries them.
    pub fn wire(&self) -> PeerKeys {
        self.public().wire()
    }

    /// Signs `msg` with the Ed25519 key.
    pub fn sign(&self, msg: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.sign.sign(msg).to_bytes()
    }

    /// The X25519 secret, for the Noise handshake's static key.
    pub fn kx_secret(&self) -> [u8; 32] {
        self.kx.to_bytes()
    }

    /// X25519 agreement of our key with `their` public key.
    pub fn agree(&self, their: &[u8; 32]) -> [u8; 32] {
        self.kx.diffie_hellman(&XPublic::from(*their)).to_bytes()
    }

    /// `identity/USER.key` in `config_dir`.
    pub fn path(config_dir: &Path, username: &str) -> PathBuf {
        config_dir.join("identity").join(format!("{username}.key"))
    }

    /// Loads the keys kept at `path`, or makes and keeps new ones (mode
    /// 0600); the flag says they were made now.
    pub fn load_or_create(path: &Path) -> Result<(Identity, bool), String> {
        match std::fs::read_to_string(path) {
            Ok(text) => Identity::parse(&text)
                .map(|id| (id, false))
                .ok_or_else(|| format!("{} is not a lanchat identity file", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = Identity::generate();
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                }
                let text = format!(
                    "sign {}\nkx {}\n",
                    hex(&id.sign.to_bytes()),
                    hex(&id.kx.to_bytes())
                );
                crate::tls::cert::write_private(path, text.as_bytes())?;
                Ok((id, true))
            }
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    fn parse(text: &str) -> Option<Identity> {
        let mut sign = None;
        let mut kx = None;
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("sign", v)) => sign = unhex32(v.trim()),
                Some(("kx", v)) => kx = unhex32(v.trim()),
                _ => {}
            }
        }
        Some(Identity::from_secrets(sign?, kx?))
    }
}

impl PublicKeys {
    /// Parses the keys the registry returned.
    pub fn from_wire(k: &PeerKeys) -> Result<PublicKeys, KeyError> {
        let sign = unhex32(&k.sign).ok_or(KeyError::Malformed("sign"))?;
        let kx = unhex32(&k.kx).ok_or(KeyError::Malformed("kx"))?;
        let sign = VerifyingKey::from_bytes(&sign).map_err(|_| KeyError::BadSigningKey)?;
        Ok(PublicKeys { sign, kx })
    }

    pub fn wire(&self) -> PeerKeys {
        PeerKeys {
            sign: hex(self.sign.as_bytes()),
            kx: hex(&self.kx),
        }
    }

    /// Whether `sig` is this key's signature of `msg`.
    pub fn verify(&self, msg: &[u8], sig: &[u8; SIGNATURE_LEN]) -> bool {
        self.sign.verify(msg, &Signature::from_bytes(sig)).is_ok()
    }

    /// A short form to compare by eye or read aloud: `SHA256:` and the
    /// first 16 bytes of the SHA-256 of both keys, in groups of four hex
    /// digits.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.sign.as_bytes());
        h.update(self.kx);
        let d = h.finalize();
        let groups: Vec<String> = d[..16].chunks(2).map(hex).collect();
        format!("SHA256:{}", groups.join(" "))
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 64 hex digits to 32 bytes.
pub fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_survive_the_wire_and_sign() {
        let id = Identity::from_secrets([1; 32], [2; 32]);
        // The documented example keys (protocol.md, tests/identity_keys.rs).
        assert_eq!(
            id.wire().sign,
            "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
        );
        let p = PublicKeys::from_wire(&id.wire()).unwrap();
        assert_eq!(p, id.public());
        let sig = id.sign(b"hello");
        assert!(p.verify(b"hello", &sig));
        assert!(!p.verify(b"hellp", &sig));
    }

    #[test]
    fn agreement_is_symmetric() {
        let a = Identity::generate();
        let b = Identity::generate();
        assert_eq!(a.agree(&b.public().kx), b.agree(&a.public().kx));
    }

    #[test]
    fn malformed_keys_are_refused_not_panicked_on() {
        for (s, k) in [("00", "00"), (&"zz".repeat(32)[..], &"00".repeat(32)[..])] {
            let w = PeerKeys {
                sign: s.into(),
                kx: k.into(),
            };
            assert!(PublicKeys::from_wire(&w).is_err());
        }
        let multibyte = PeerKeys {
            sign: "é".repeat(32),
            kx: "00".repeat(32),
        };
        assert!(PublicKeys::from_wire(&multibyte).is_err());
    }

    #[test]
    fn made_once_then_loaded_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = Identity::path(dir.path(), "alice");
        let (a, made) = Identity::load_or_create(&path).unwrap();
        assert!(made);
        let (b, made) = Identity::load_or_create(&path).unwrap();
        assert!(!made);
        assert_eq!(a.public(), b.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
