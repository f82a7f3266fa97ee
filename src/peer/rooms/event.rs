//! What the room engine hands back to its driver: events for the UI,
//! requests it needs made to the registry, typed reasons and errors, and
//! the datagram counters shown by `/stats`.

use serde::{Deserialize, Serialize};

/// Something the driver should show or do, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// We are in `room` now; `members` is the registry's list (us included).
    Joined {
        room: String,
        members: Vec<String>,
    },
    MemberJoined {
        room: String,
        user: String,
    },
    MemberLeft {
        room: String,
        user: String,
        reason: Gone,
    },
    /// A complete text, ours (`own`, as it goes out) or a member's.
    Message {
        room: String,
        from: String,
        text: String,
        id: u64,
        own: bool,
        /// Sent while we were away, and delivered when we came back (see
        /// the LATE notice in protocol.md).
        late: bool,
    },
    /// Progress or final success of our message `id`: `acked` of `total`.
    Delivery {
        room: String,
        id: u64,
        acked: usize,
        total: usize,
    },
    /// Progress of a long send (a paste) in `room`: `done` of the `total`
    /// messages of the current run are delivered (or reported missed).
    /// Shown every [`SENDING_EVERY`](super::SENDING_EVERY) while a run of at
    /// least [`PASTE_MIN`](super::PASTE_MIN) messages is on its way, and
    /// with `done == total` when such a run is over.
    Sending {
        room: String,
        done: u64,
        total: u64,
    },
    /// Our message `id` did not reach `missing` after every retry.
    DeliveryFailed {
        room: String,
        id: u64,
        missing: Vec<String>,
    },
    /// A request the engine needs made to the registry.
    Ask(Ask),
    /// The registry lists `user` in `room` without identity keys (an
    /// older, version-1 peer): nothing is sent to or taken from it until
    /// it upgrades.
    Outdated {
        room: String,
        user: String,
    },
}

/// Registry requests the engine asks for (the driver holds the session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// Send the current member list of this room back with
    /// [`Engine::members`](super::Engine::members), with the key if the
    /// answer has one (the regular poll, unknown members showed up, or a
    /// datagram came under another key epoch).
    Members(String),
    /// Join this room again (the session was restored); the reply goes to
    /// [`Engine::members`](super::Engine::members) with the room's key.
    Rejoin(String),
    /// Tell the registry we left this room.
    Leave(String),
}

/// Why a member is no longer in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    /// It said so.
    Left,
    /// Nothing heard from it for [`SILENT_LIMIT`](super::engine::SILENT_LIMIT).
    Silent,
    /// It acknowledged nothing after every retransmission.
    Unreachable,
    /// The registry no longer lists it in the room (it left, or its
    /// session ended), though we never got its "leave".
    NotListed,
}

impl Gone {
    /// The words the UI shows (and scripts match on).
    pub fn as_str(self) -> &'static str {
        match self {
            Gone::Left => "left",
            Gone::Silent => "not responding",
            Gone::Unreachable => "unreachable",
            Gone::NotListed => "no longer listed",
        }
    }
}

impl std::fmt::Display for Gone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a text was not sent to a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SayError {
    NotMember,
    TooLong { len: usize },
}

/// A command named a room we are not in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotMember;

/// Counters of what happened to room datagrams (shown by `/stats`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    pub datagrams_in: u64,
    pub malformed: u64,
    pub bad_tag: u64,
    /// Signed by another key than the named sender's (a forgery).
    #[serde(default)]
    pub bad_signature: u64,
    /// From a sender whose signing key the registry has not given us
    /// (held until it answers, counted once).
    #[serde(default)]
    pub unknown_sender: u64,
    pub unknown_room: u64,
    /// Sealed under another key epoch than ours (a former member's old
    /// key, or ours is out of date: we then ask the registry).
    pub other_epoch: u64,
    pub non_member: u64,
    pub wrong_destination: u64,
    pub stale_stream: u64,
    pub duplicates: u64,
    pub out_of_window: u64,
    pub messages_delivered: u64,
    pub datagrams_out: u64,
    pub retransmits: u64,
    pub injected_drops: u64,
    pub injected_dups: u64,
    pub injected_delays: u64,
    /// Datagrams dropped because the main loop's queue was full (a flood).
    pub queue_overflow: u64,
    /// DATA datagrams sent to a room's multicast group (each in place of
    /// one per member that hears the group).
    #[serde(default)]
    pub group_out: u64,
    /// Datagrams that came by a room's multicast group.
    #[serde(default)]
    pub group_in: u64,
}
