//! Chat rooms on the peer: membership (from the registry, then kept up to
//! date peer to peer), fan-out of each message to every member over UDP,
//! reliable ordered delivery. The room logic is a sans-IO [`Engine`] (no
//! socket, thread or clock); `peer::app`'s `rooms` glue connects it to the
//! main loop, and nothing here knows the main loop.
//!
//! - [`engine`]: the engine's state and its `poll_*` surface; its behaviour
//!   by concern in `membership`, `send`, `receive` and `liveness`.
//! - [`event`]: what the engine reports (events, registry requests, typed
//!   reasons, `/stats` counters).
//! - [`flow`]: our stream to a room, and per member what it is owed and how fast.
//! - [`stream`]: receiving one sender's stream: in order, exactly once, acks and NACKs.
//! - [`faults`]: optional drop/duplicate/reorder injection when sending.
//! - `sim` (tests only): many engines on a virtual clock and network.

pub mod engine;
pub mod event;
pub mod faults;
pub mod flow;
pub(crate) mod group;
mod keys;
mod late;
mod liveness;
mod members;
mod membership;
mod owed;
mod progress;
mod receive;
mod retain;
mod send;
pub mod stream;
mod timers;

pub use engine::{Engine, Listed, StreamIds};
pub use event::{Ask, Event, Gone, NotMember, SayError, Stats};
pub use group::{group_of, GROUP_PORT};
pub use progress::{PASTE_MIN, SENDING_EVERY};
pub use retain::RETENTION;

#[cfg(test)]
mod sim;
