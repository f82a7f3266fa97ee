//! The registry server.
//!
//! - [`store`]: users, sessions and rooms, embedded (SQLite) or MongoDB.

pub mod store;
