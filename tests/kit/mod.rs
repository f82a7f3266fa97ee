//! The test kit: fixtures for black-box tests of the real `registry` and
//! `peer` binaries (`mod kit;` in a test file, `use kit::*;`), and for the
//! benchmark (`#[path = "../../tests/kit/mod.rs"] mod kit;`).
//!
//! - [`process`]: children spawned with `PR_SET_PDEATHSIG` (they die with
//!   the test process), bounded waits for their first line and their exit.
//! - [`registry`]: [`Registry`], built by [`RegistryBuilder`] (flags, store:
//!   an embedded one in a temporary directory or MongoDB, namespace,
//!   address); kill -9, SIGINT, restart on the same port and store, its log.
//! - [`client`]: [`Client`], a raw NDJSON registry connection with bounded
//!   reads; [`Session`], a user logged in with no peer behind it.
//! - [`heartbeat`]: [`Heartbeater`], UDP heartbeats from a thread.
//! - [`peer`]: [`Peer`], `peer --json` with an event channel and
//!   expect-with-backlog (read its docs before waiting on events).
//! - [`rooms`]: checks across the peers of a room (full mesh, exactly once
//!   in order, delivered).
//! - [`wait`]: polling, for states that have no event.
//! - [`mongo`]: MongoDB for tests (`MONGODB_URI`, else `nx-27017`).
//! - [`noise`]: a raw one-to-one chat client over the Noise channel
//!   ([`NoiseConn`]), and a registry login with a test's own keys.
//! - [`netns`]: a virtual LAN of network namespaces ([`Lab`]).
//! - [`tmux`]: a real terminal running a command ([`tmux::Tmux`]).
//! - [`tls`]: a raw registry client over TLS, and a man in the middle.
//! - [`capture`]: every packet on loopback (`AF_PACKET`, root).
//!
//! Every account the kit creates has the password [`PASSWORD`].
#![allow(dead_code, unused_imports)]

pub mod capture;
pub mod client;
pub mod heartbeat;
pub mod mongo;
pub mod netns;
pub mod noise;
pub mod peer;
pub mod process;
pub mod registry;
pub mod rooms;
pub mod tls;
pub mod tmux;
pub mod wait;

pub use client::{assert_error_shape, is_hex64, login_req, lossy, names, Client, Read1, Session};
pub use heartbeat::Heartbeater;
pub use netns::Lab;
pub use noise::{keyed_login, keys_of, read_frame, until_closed, NoiseConn, Refused};
pub use peer::{field, login_all, login_peers, matches, open_chat, received, Peer, PeerOpts};
pub use process::spawn_child;
pub use registry::{Registry, RegistryBuilder};
pub use rooms::{assert_exact_sequence, await_full_mesh, expect_delivered, expect_exact};
pub use rooms::{form_room, now_us, own_ids, room_key, seal};
pub use wait::{poll, wait_until};

use serde_json::Value;
use std::time::Duration;

/// Password of every account the kit creates (≥ 8 characters).
pub const PASSWORD: &str = "correct horse battery";
/// A generous default deadline for events that should come promptly.
pub const WAIT: Duration = Duration::from_secs(5);
/// "No field filter" for [`Peer::expect`] and friends.
pub const ANY: &[(&str, Value)] = &[];

/// Flags that keep sessions alive for the length of any test that does not
/// exercise time-outs, so a slow (loaded) machine cannot make it flaky.
pub const LONG_SESSIONS: &[&str] = &[
    "--heartbeat-interval-ms",
    "1000",
    "--session-timeout-ms",
    "30000",
];

/// Flags for presence tests: sessions go offline 600 ms after the last heartbeat.
pub const SHORT_SESSIONS: &[&str] = &[
    "--heartbeat-interval-ms",
    "200",
    "--session-timeout-ms",
    "600",
];

/// A deterministic pseudo-random byte source (xorshift64*).
pub struct Xorshift(u64);

impl Xorshift {
    pub fn new(seed: u64) -> Xorshift {
        Xorshift(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}
