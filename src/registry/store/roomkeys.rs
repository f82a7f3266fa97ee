//! What a room's `key` field holds: the current epoch's key maker and the
//! room key sealed to each member (`protocol::roomkey`), as JSON
//! `{"maker":"alice","sealed":{"alice":"<160 hex>","bob":"<160 hex>"}}`, or
//! `""` while the epoch has no key. The registry stores and hands out these
//! packages; it cannot open them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The parsed `key` field of a room.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomKeys {
    /// The member who made the epoch's key; `None` while nobody has.
    #[serde(default)]
    pub maker: Option<String>,
    /// Username to that member's sealed package (hex).
    #[serde(default)]
    pub sealed: BTreeMap<String, String>,
}

impl RoomKeys {
    /// Parses a stored `key` field. Anything that is not such a document
    /// (`""`, or a 64-hex-digit key an older registry made) is no key.
    pub fn parse(stored: &str) -> RoomKeys {
        serde_json::from_str(stored).unwrap_or_default()
    }

    /// The stored form: `""` when there is no maker and no package.
    pub fn encode(&self) -> String {
        if self.maker.is_none() && self.sealed.is_empty() {
            return String::new();
        }
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_anything_else_as_no_key() {
        let k = RoomKeys {
            maker: Some("alice".into()),
            sealed: BTreeMap::from([("bob".into(), "ab".repeat(80))]),
        };
        let s = k.encode();
        assert!(
            s.starts_with(r#"{"maker":"alice","sealed":{"bob":"abab"#),
            "{s}"
        );
        assert_eq!(RoomKeys::parse(&s), k);
        for other in ["", &"cd".repeat(32), "{", "[1]", r#"{"maker":3}"#] {
            assert_eq!(RoomKeys::parse(other), RoomKeys::default(), "{other}");
        }
        assert_eq!(RoomKeys::default().encode(), "");
    }
}
