//! Every wire format of `protocol.md`, as types and pure functions: no
//! sockets, threads or clocks. The registry and the peer both build on this
//! module and never on each other.
//!
//! - [`codec`]: newline-delimited framing with a 64 KiB cap, for registry
//!   and chat connections (§1, §3).
//! - [`messages`]: requests, replies and error codes of the registry
//!   protocol (§1).
//! - [`heartbeat`]: the peer's UDP heartbeat to the registry (§2).
//! - [`chat`]: the one-to-one chat messages between two peers (§3).
//! - [`file`](mod@file): file offers and the transfer connection (§3, "Files").
//! - [`datagram`]: room datagrams byte for byte, sealed under the room key (§4).
//! - [`names`]: the [`Username`] and [`RoomName`] rules.
//! - [`addr`]: which IP the registry records for a peer, and how addresses
//!   compare (IPv4-mapped IPv6 is IPv4).
//!
//! `tests/protocol_doc.rs` runs every example in `protocol.md` through these
//! parsers.

pub mod addr;
pub mod chat;
pub mod codec;
pub mod datagram;
pub mod file;
pub mod heartbeat;
pub mod messages;
pub mod names;
pub mod roomkey;
pub mod secure;

pub use messages::*;
pub use names::{NameError, RoomName, Username};
