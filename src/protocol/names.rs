//! Name rules shared by the registry and the peer (`protocol.md` sections 1
//! and 3): [`Username`] and [`RoomName`], each a `String` that is known to
//! follow its rule. Parsing returns a [`NameError`], which turns into the
//! registry's `invalid_username` / `invalid_room_name` reply.

use super::messages::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};
use std::fmt;

pub const USERNAME_MIN: usize = 3;
pub const USERNAME_MAX: usize = 32;
pub const ROOM_NAME_MAX: usize = 32;

/// A name that breaks its rule; `Display` states the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    Username,
    RoomName,
}

/// Passwords: at least this many characters…
pub const PASSWORD_MIN: usize = 8;
/// …and at most this many bytes.
pub const PASSWORD_MAX: usize = 1024;

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Username => write!(
                f,
                "a username is {USERNAME_MIN}-{USERNAME_MAX} characters of a-z, 0-9, '_', '.', '-', starting with a letter or digit"
            ),
            NameError::RoomName => write!(
                f,
                "a room name is 1-{ROOM_NAME_MAX} characters of a-z, 0-9, '_', '-'"
            ),
        }
    }
}

impl std::error::Error for NameError {}

impl From<NameError> for ApiError {
    fn from(e: NameError) -> ApiError {
        let code = match e {
            NameError::Username => ErrorCode::InvalidUsername,
            NameError::RoomName => ErrorCode::InvalidRoomName,
        };
        ApiError::new(code, e.to_string())
    }
}

fn lower_or_digit(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// Implements the accessors, `Display`, `TryFrom<String>`, `FromStr` and
/// (validating) serde of a name newtype whose rule is `$rule`.
macro_rules! name_type {
    ($name:ident, $rule:expr, $err:expr) => {
        impl $name {
            /// Checks `s` against the rule.
            pub fn parse(s: &str) -> Result<$name, NameError> {
                if $rule(s) {
                    Ok($name(s.to_string()))
                } else {
                    Err($err)
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<$name, NameError> {
                $name::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(s: String) -> Result<$name, NameError> {
                if $rule(&s) {
                    Ok($name(s))
                } else {
                    Err($err)
                }
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }
    };
}

/// A username: 3–32 characters of `a-z`, `0-9`, `_`, `.`, `-`, starting with
/// a letter or digit. Lower case only, so `Alice` and `alice` cannot both
/// exist.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

fn username_ok(name: &str) -> bool {
    name.len() >= USERNAME_MIN
        && is_username_text(name)
        && name.bytes().next().is_some_and(lower_or_digit)
}

/// At most [`USERNAME_MAX`] of the characters a username is made of (maybe
/// none): what a name prefix or a cursor into a list of names may be.
pub fn is_username_text(s: &str) -> bool {
    s.len() <= USERNAME_MAX && s.bytes().all(|b| lower_or_digit(b) || b"_.-".contains(&b))
}

name_type!(Username, username_ok, NameError::Username);

/// A room name: 1–32 characters of `a-z`, `0-9`, `_`, `-` (peers show it as
/// `#name`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoomName(String);

fn room_name_ok(name: &str) -> bool {
    (1..=ROOM_NAME_MAX).contains(&name.len())
        && name
            .bytes()
            .all(|b| lower_or_digit(b) || b"_-".contains(&b))
}

name_type!(RoomName, room_name_ok, NameError::RoomName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_rules() {
        for ok in ["bob", "alice_2", "a.b-c", "0zero", &"a".repeat(32)] {
            assert_eq!(Username::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "ab", "Alice", "_bob", "bob!", "ünï", &"a".repeat(33)] {
            assert_eq!(Username::parse(bad), Err(NameError::Username), "{bad}");
        }
    }

    #[test]
    fn room_name_rules() {
        for ok in ["a", "lobby", "team-2_x", "_x", &"r".repeat(32)] {
            assert_eq!(RoomName::parse(ok).unwrap().to_string(), ok);
        }
        for bad in ["", "Lobby", "a.b", "#x", "a b", &"r".repeat(33)] {
            assert_eq!(RoomName::parse(bad), Err(NameError::RoomName), "{bad}");
        }
    }

    #[test]
    fn errors_become_registry_replies() {
        let e = ApiError::from(NameError::Username);
        assert_eq!(e.code, ErrorCode::InvalidUsername);
        assert_eq!(
            e.message,
            "a username is 3-32 characters of a-z, 0-9, '_', '.', '-', starting with a letter or digit"
        );
        let e = ApiError::from(NameError::RoomName);
        assert_eq!(e.code, ErrorCode::InvalidRoomName);
        assert_eq!(
            e.message,
            "a room name is 1-32 characters of a-z, 0-9, '_', '-'"
        );
    }

    #[test]
    fn serde_validates() {
        let u: Username = serde_json::from_str(r#""bob""#).unwrap();
        assert_eq!(serde_json::to_string(&u).unwrap(), r#""bob""#);
        assert!(serde_json::from_str::<Username>(r#""Bob""#).is_err());
        assert_eq!(
            RoomName::try_from("lobby".to_string()).map(String::from),
            Ok("lobby".to_string())
        );
        assert!(serde_json::from_str::<RoomName>(r#""no way""#).is_err());
    }
}
