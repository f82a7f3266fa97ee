//! The registry server.
//!
//! - [`server`]: sockets and threads (accept loop, one thread per client,
//!   UDP heartbeats, shutdown).
//! - [`service`]: request handlers, typed in and out, no sockets.
//! - [`presence`]: heartbeat batching, time-outs, clean-up.
//! - [`auth`]: password rule, Argon2id, tokens, login rate limit (name rules
//!   are [`crate::protocol::names`]).
//! - [`config`]: the registry's settings.
//! - [`store`]: users, sessions and rooms, embedded (SQLite) or MongoDB.

pub mod auth;
pub mod config;
pub mod presence;
pub mod server;
pub mod service;
pub mod store;

pub use config::Config;
pub use server::{Handle, Server};
