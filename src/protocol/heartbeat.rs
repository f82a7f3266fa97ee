//! The heartbeat datagram (`protocol.md` section 2), sent by a logged-in
//! peer to the registry's `heartbeat_port`: `{"op":"heartbeat","token":"…"}`.

use serde::{Deserialize, Serialize};

/// Longest token a heartbeat may carry; a longer one is garbage.
pub const MAX_TOKEN: usize = 128;

#[derive(Serialize, Deserialize)]
struct Heartbeat<T> {
    op: String,
    token: T,
}

/// The datagram for a session token.
pub fn encode(token: &str) -> String {
    let hb = Heartbeat {
        op: "heartbeat".to_string(),
        token,
    };
    serde_json::to_string(&hb).unwrap_or_else(|_| unreachable!("two strings serialize"))
}

/// The token of a well-formed heartbeat datagram; `None` for anything else.
pub fn decode(bytes: &[u8]) -> Option<String> {
    match serde_json::from_slice::<Heartbeat<String>>(bytes) {
        Ok(hb) if hb.op == "heartbeat" && hb.token.len() <= MAX_TOKEN => Some(hb.token),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dg = encode("abc");
        assert_eq!(dg, r#"{"op":"heartbeat","token":"abc"}"#);
        assert_eq!(decode(dg.as_bytes()).as_deref(), Some("abc"));
    }

    #[test]
    fn garbage_is_none() {
        for bad in [
            &b"not json"[..],
            br#"{"op":"login","token":"abc"}"#,
            br#"{"op":"heartbeat"}"#,
            br#"{"op":"heartbeat","token":5}"#,
        ] {
            assert_eq!(decode(bad), None);
        }
        let long = encode(&"a".repeat(MAX_TOKEN + 1));
        assert_eq!(decode(long.as_bytes()), None);
        assert!(decode(encode(&"a".repeat(MAX_TOKEN)).as_bytes()).is_some());
    }
}
