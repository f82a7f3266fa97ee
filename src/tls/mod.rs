//! TLS on the registry link (`protocol.md` section 1): TLS 1.3 only, with
//! `rustls` and the `ring` provider (no OpenSSL, nothing to install).
//!
//! The registry makes a self-signed certificate (`rcgen`) at first start
//! and keeps it in its certificate directory ([`cert`]); peers pin its
//! SHA-256 [`Fingerprint`] the SSH way: trust on first use, remembered per
//! registry address ([`known`]), or given up front ([`pin`]).
//! [`split`] lets the peer's reader and writer threads share one client
//! connection.

pub mod cert;
pub mod known;
pub mod pin;
pub mod split;

use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// The name the registry's certificate carries and peers ask for. Peers do
/// not check it (they pin the certificate), but TLS needs one.
pub const SERVER_NAME: &str = "lanchat-registry";

/// The crypto provider: `ring`, TLS 1.3 only.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The SHA-256 of a certificate (its DER bytes), shown as
/// `SHA256:AB:CD:…` (32 bytes in hex).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of(der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(der).into())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SHA256:")?;
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Fingerprint {
    type Err = String;

    /// `SHA256:AB:CD:…`, or the 64 hex digits alone; colons, spaces and
    /// case do not matter (copied from a board, they may vary).
    fn from_str(s: &str) -> Result<Fingerprint, String> {
        let t = s.trim();
        let t = t
            .strip_prefix("SHA256:")
            .or_else(|| t.strip_prefix("sha256:"))
            .unwrap_or(t);
        let hex: Vec<u8> = t
            .bytes()
            .filter(|c| !matches!(c, b':' | b' ' | b'-'))
            .collect();
        let bad = || {
            format!("{s:?} is not a certificate fingerprint (SHA256: and 64 hex digits, as the registry prints it)")
        };
        if hex.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, pair) in hex.chunks(2).enumerate() {
            let txt = std::str::from_utf8(pair).map_err(|_| bad())?;
            out[i] = u8::from_str_radix(txt, 16).map_err(|_| bad())?;
        }
        Ok(Fingerprint(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_print_and_parse_back() {
        let fp = Fingerprint::of(b"certificate");
        let s = fp.to_string();
        assert!(s.starts_with("SHA256:") && s.len() == 7 + 32 * 3 - 1, "{s}");
        assert_eq!(s.parse::<Fingerprint>(), Ok(fp));
        let bare: String = s[7..].chars().filter(|c| *c != ':').collect();
        assert_eq!(bare.to_lowercase().parse::<Fingerprint>(), Ok(fp));
        assert!("SHA256:AB".parse::<Fingerprint>().is_err());
        assert!("zz".repeat(32).parse::<Fingerprint>().is_err());
    }
}
