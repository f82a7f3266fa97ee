//! The heartbeat datagram (`protocol.md` section 2), sent by a logged-in
//! peer to the registry's `heartbeat_port`: `{"op":"heartbeat","token":"…"}`.
//! Other fields are ignored, as in requests, so that newer peers can add
//! some and still be heard by older registries.

use serde::Serialize;
use serde_json::Value;

/// Longest token a heartbeat may carry; a longer one is garbage.
pub const MAX_TOKEN: usize = 128;

#[derive(Serialize)]
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

/// The token of a well-formed heartbeat datagram (a JSON object; other
/// fields ignored); `None` for anything else.
pub fn decode(bytes: &[u8]) -> Option<String> {
    // Through a map, not the struct: serde would also take `["heartbeat","…"]`.
    let Ok(Value::Object(mut hb)) = serde_json::from_slice::<Value>(bytes) else {
        return None;
    };
    match (hb.remove("op"), hb.remove("token")) {
        (Some(Value::String(op)), Some(Value::String(token)))
            if op == "heartbeat" && token.len() <= MAX_TOKEN =>
        {
            Some(token)
        }
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
    fn other_fields_are_ignored() {
        let dg = br#"{"op":"heartbeat","token":"abc","seq":7,"v":{"x":[1]}}"#;
        assert_eq!(decode(dg).as_deref(), Some("abc"));
    }

    #[test]
    fn garbage_is_none() {
        for bad in [
            &b"not json"[..],
            br#"{"op":"login","token":"abc"}"#,
            br#"{"op":"heartbeat"}"#,
            br#"{"op":"heartbeat","token":5}"#,
            br#"["heartbeat","abc"]"#,
            br#""heartbeat""#,
        ] {
            assert_eq!(decode(bad), None);
        }
        let long = encode(&"a".repeat(MAX_TOKEN + 1));
        assert_eq!(decode(long.as_bytes()), None);
        assert!(decode(encode(&"a".repeat(MAX_TOKEN)).as_bytes()).is_some());
    }
}
