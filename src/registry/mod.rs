//! The registry server.
//!
//! - [`server`]: sockets and threads (accept loop, one thread per client,
//!   UDP heartbeats, shutdown).
//! - `connection`: one client connection (lines, idleness, pacing, replies).
//! - `wire`: TLS or (`--insecure`) plaintext, told apart by the first byte.
//! - [`conns`]: open connections, capped per source address.
//! - [`service`]: request handlers, typed in and out, no sockets.
//! - [`presence`]: heartbeat batching, time-outs, clean-up.
//! - [`auth`]: password rule, Argon2id, tokens (name rules are
//!   [`crate::protocol::names`]).
//! - [`limiter`]: failed logins slowed per (name, address), refused per
//!   address, never locking a name's owner out.
//! - [`config`]: the registry's settings.
//! - [`clock`]: the time the logic reads (system, or manual in tests).
//! - [`store`]: users, sessions and rooms, embedded (SQLite), MongoDB, or in
//!   memory for tests.

pub mod auth;
pub mod clock;
pub mod config;
mod connection;
pub mod conns;
pub mod limiter;
pub mod presence;
pub mod server;
pub mod service;
pub mod store;
mod wire;

pub use config::Config;
pub use server::{start, Handle, RunningServer, Server};
