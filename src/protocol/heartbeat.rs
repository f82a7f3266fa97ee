//! The heartbeat datagram (`protocol.md` section 2), sent by a logged-in
//! peer to the registry's `heartbeat_port`. Version 2 never carries the
//! session token: the login (or resume) reply, inside TLS, gives a
//! heartbeat id and a 32-byte heartbeat key, and each datagram proves the
//! session with a MAC over the id and a counter that only grows:
//!
//! `{"op":"heartbeat","sid":"<32 hex>","ctr":N,"mac":"<64 hex>"}`, where
//! `mac` is HMAC-SHA256(key, `"lanchat-heartbeat:" + sid + ":" + N`).
//!
//! A datagram whose counter is not above the highest one seen for the
//! session (a capture replayed) is dropped, as is one with a wrong MAC.
//! Other fields are ignored, so that newer peers can add some.

use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;

/// Bytes in a heartbeat id.
pub const SID_BYTES: usize = 16;
/// Bytes in a heartbeat key.
pub const KEY_BYTES: usize = 32;

/// A session's heartbeat credentials, as the login reply gives them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatKey {
    pub sid: [u8; SID_BYTES],
    pub key: [u8; KEY_BYTES],
}

impl std::fmt::Debug for HeartbeatKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HeartbeatKey({}, …)", hex(&self.sid))
    }
}

impl HeartbeatKey {
    /// Fresh random credentials (the registry, at login or resume).
    pub fn random() -> HeartbeatKey {
        let mut k = HeartbeatKey {
            sid: [0; SID_BYTES],
            key: [0; KEY_BYTES],
        };
        rand::rngs::OsRng.fill_bytes(&mut k.sid);
        rand::rngs::OsRng.fill_bytes(&mut k.key);
        k
    }

    /// From the hex strings of a login reply.
    pub fn from_hex(sid: &str, key: &str) -> Option<HeartbeatKey> {
        Some(HeartbeatKey {
            sid: unhex(sid)?,
            key: unhex(key)?,
        })
    }

    pub fn sid_hex(&self) -> String {
        hex(&self.sid)
    }

    pub fn key_hex(&self) -> String {
        hex(&self.key)
    }

    /// The MAC of heartbeat number `ctr`.
    pub fn mac(&self, ctr: u64) -> [u8; 32] {
        self.hmac(ctr).finalize().into_bytes().into()
    }

    fn hmac(&self, ctr: u64) -> Hmac<Sha256> {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        m.update(format!("lanchat-heartbeat:{}:{ctr}", self.sid_hex()).as_bytes());
        m
    }

    /// The datagram for heartbeat number `ctr`.
    pub fn encode(&self, ctr: u64) -> String {
        #[derive(Serialize)]
        struct Wire<'a> {
            op: &'a str,
            sid: String,
            ctr: u64,
            mac: String,
        }
        let w = Wire {
            op: "heartbeat",
            sid: self.sid_hex(),
            ctr,
            mac: hex(&self.mac(ctr)),
        };
        serde_json::to_string(&w).unwrap_or_else(|_| unreachable!("strings and a number"))
    }

    /// Whether `beat`'s MAC is right under this key (in constant time).
    pub fn verify(&self, beat: &Beat) -> bool {
        beat.sid == self.sid && self.hmac(beat.ctr).verify_slice(&beat.mac).is_ok()
    }
}

/// A well-formed heartbeat datagram, not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beat {
    pub sid: [u8; SID_BYTES],
    pub ctr: u64,
    pub mac: [u8; 32],
}

/// The fields of a well-formed heartbeat datagram (a JSON object; other
/// fields ignored); `None` for anything else, a version-1 heartbeat
/// (`token`) included.
pub fn decode(bytes: &[u8]) -> Option<Beat> {
    // Through a map, not a struct: serde would also take an array.
    let Ok(Value::Object(hb)) = serde_json::from_slice::<Value>(bytes) else {
        return None;
    };
    if hb.get("op")?.as_str()? != "heartbeat" {
        return None;
    }
    Some(Beat {
        sid: unhex(hb.get("sid")?.as_str()?)?,
        ctr: hb.get("ctr")?.as_u64()?,
        mac: unhex(hb.get("mac")?.as_str()?)?,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> HeartbeatKey {
        HeartbeatKey {
            sid: [0x11; SID_BYTES],
            key: [0x22; KEY_BYTES],
        }
    }

    #[test]
    fn round_trip_and_verify() {
        let k = key();
        let dg = k.encode(7);
        assert!(dg.starts_with(&format!(
            r#"{{"op":"heartbeat","sid":"{}","ctr":7,"mac":""#,
            "11".repeat(16)
        )));
        let beat = decode(dg.as_bytes()).unwrap();
        assert_eq!(beat.ctr, 7);
        assert!(k.verify(&beat));
        let mut other = k;
        other.key[0] ^= 1;
        assert!(!other.verify(&beat));
        let mut bumped = beat.clone();
        bumped.ctr = 8;
        assert!(!k.verify(&bumped), "the counter is under the MAC");
        assert_eq!(HeartbeatKey::from_hex(&k.sid_hex(), &k.key_hex()), Some(k));
    }

    #[test]
    fn other_fields_are_ignored() {
        let dg = key().encode(1);
        let more = format!(r#"{},"v":{{"x":[1]}}}}"#, &dg[..dg.len() - 1]);
        assert!(key().verify(&decode(more.as_bytes()).unwrap()));
    }

    #[test]
    fn garbage_and_version_1_heartbeats_are_none() {
        for bad in [
            &b"not json"[..],
            br#"{"op":"heartbeat","token":"abc"}"#,
            br#"{"op":"login","sid":"11","ctr":1,"mac":"00"}"#,
            br#"{"op":"heartbeat","sid":5}"#,
            br#"["heartbeat","abc"]"#,
            br#""heartbeat""#,
        ] {
            assert_eq!(decode(bad), None);
        }
        let dg = key().encode(1).replace("\"ctr\":1", "\"ctr\":-1");
        assert_eq!(decode(dg.as_bytes()), None);
    }
}
