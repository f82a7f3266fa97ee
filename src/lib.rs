//! lanchat: a peer-to-peer terminal chat for a LAN.
//!
//! Two programs share this library: `bin/registry.rs` and `bin/peer.rs`
//! parse flags and hand off to [`registry::Server`] and [`peer::run`]. Both
//! sides build on [`protocol`]; neither imports the other.
//!
//! # Layout
//!
//! Wire formats, no I/O ([`protocol`], all described in `protocol.md`):
//! - [`protocol::codec`]: newline-delimited JSON framing, 64 KiB cap.
//! - [`protocol::messages`]: registry requests, replies, error codes.
//! - [`protocol::heartbeat`]: the peer's UDP heartbeat to the registry.
//! - [`protocol::chat`]: one-to-one chat messages between two peers.
//! - [`protocol::datagram`]: room datagrams byte for byte, sealed with XChaCha20-Poly1305.
//! - [`protocol::names`]: the `Username` and `RoomName` rules.
//! - [`protocol::addr`]: which peer IP is recorded, how addresses compare.
//!
//! The registry server ([`registry`]):
//! - [`registry::server`]: sockets and threads, shutdown; [`registry::start`]
//!   runs one in process (tests).
//! - `registry::connection` (private) serves one client connection: lines,
//!   idleness, pacing, replies; [`registry::conns`] caps them per address.
//! - [`registry::service`]: request handlers, typed in and out, unit-tested
//!   on the memory store and a manual clock.
//! - [`registry::presence`]: heartbeat batching, session time-outs.
//! - [`registry::auth`]: password rule, Argon2id, tokens.
//! - [`registry::limiter`]: failed logins slowed per name and address,
//!   refused per address.
//! - [`registry::config`]: the registry's settings.
//! - [`registry::clock`]: the time the logic reads (system, or manual).
//! - [`registry::store`]: the `Store` trait: users, sessions, rooms.
//! - [`registry::store::embedded`]: the SQLite backend, always built.
//! - [`registry::store::memory`]: in memory, for tests (`--store memory`).
//! - `registry::store::mongo`: the MongoDB backend, cargo feature `mongodb`
//!   (on by default; without it the build has neither the driver nor tokio).
//!
//! The peer program ([`peer`]):
//! - [`peer::app`]: the main loop, which owns all state: session, commands,
//!   glue to the chat and room engines, quitting.
//! - [`peer::events`]: what worker threads tell the main loop.
//! - [`peer::link`]: the connection to the registry.
//! - [`peer::chats`]: one-to-one chats, a sans-IO state machine (with
//!   acknowledgements, and chats resumed after a network cut).
//! - [`peer::chat`]: the threads of one-to-one chat connections.
//! - [`peer::slots`]: how many chat connections may live, in all and per
//!   address.
//! - [`peer::rooms`]: the sans-IO room engine: membership and fan-out to
//!   every member (tested on a simulator, `rooms::sim`).
//! - [`peer::rooms::stream`]: reliable, ordered delivery per member pair.
//! - [`peer::rooms::faults`]: drop/duplicate/reorder injection on sends.
//! - [`peer::commands`]: the `/command` language.
//! - [`peer::script`]: demo scripts.
//! - [`peer::ui`]: the one printer (text or `--json`).
//! - [`peer::ui::sanitize`]: the one sanitiser of network text on its way to
//!   the terminal.
//! - [`peer::term`]: standard input and the terminal.
//!
//! Shared by both programs: [`identity`], a peer's Ed25519 and X25519
//! keys; [`sys`], process set-up (the open-file limit);
//! [`tls`], the registry link's TLS (certificate, pinning, trust on first use).

pub mod discovery;
pub mod identity;
pub mod peer;
pub mod protocol;
pub mod registry;
pub mod sys;
pub mod tls;
