//! Chat rooms on the peer: membership (from the registry, then kept up to
//! date peer to peer), fan-out of each message to every member over UDP,
//! reliable ordered delivery. The room logic is a sans-IO [`Engine`] (no
//! socket, thread or clock); [`glue`] connects it to the peer's main loop.
//!
//! - [`engine`]: the engine's state and its `poll_*` surface; its behaviour
//!   by concern in [`membership`], [`send`], [`receive`] and [`liveness`].
//! - [`event`]: what the engine reports (events, registry requests, typed
//!   reasons, `/stats` counters).
//! - [`glue`]: `impl App` feeding the engine and draining it.
//! - [`stream`]: per-(sender, receiver) reliable ordered delivery.
//! - [`faults`]: optional drop/duplicate/reorder injection when sending.
//! - `sim` (tests only): many engines on a virtual clock and network.

pub mod engine;
pub mod event;
pub mod faults;
pub mod glue;
mod liveness;
mod membership;
mod receive;
mod send;
pub mod stream;

pub use engine::{Engine, Listed, StreamIds};
pub use event::{Ask, Event, Gone, NotMember, SayError, Stats};
pub use glue::{RoomCommand, RoomPending, Rooms};

#[cfg(test)]
mod sim;
