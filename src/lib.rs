//! lanchat: a peer-to-peer terminal chat for a LAN.
//!
//! # Layout
//! - [`protocol`]: wire types and the line codec shared by registry and peer.
//! - [`registry`]: the registry server: accept loop, one thread per client,
//!   request handlers, presence, and the [`registry::store`] backends.
//! - [`peer`]: the peer program's library part.
//! - [`sys`]: process set-up shared by both programs (the open-file limit).

pub mod peer;
pub mod protocol;
pub mod registry;
pub mod sys;
