//! Wire types shared by the registry and the peer.
//!
//! - [`codec`]: newline-delimited framing with a 64 KiB cap (the only code
//!   that touches bytes on a registry connection).
//! - [`messages`]: requests, replies and error codes of the registry protocol,
//!   as documented in `protocol.md`.

pub mod codec;
pub mod messages;

pub use messages::*;
