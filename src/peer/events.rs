//! What the worker threads tell the main loop. The main loop owns the
//! receivers and all state; threads own clones of two bounded senders (see
//! `peer::run`): one for chat connections and the listener, whose traffic a
//! partner controls, and one for everything else (input, registry, dials).
//! When a queue is full its threads wait: nothing is dropped, and the
//! socket behind a waiting reader fills up, which slows its sender.

use super::chats::ConnEnd;
use super::commands::Command;
use crate::protocol::chat::ChatMsg;
use std::net::TcpStream;

pub enum Event {
    /// A parsed line from the terminal, a pipe or a script.
    Input(Command),
    /// A line that did not parse (the message says why).
    InputError(String),
    /// Standard input ended.
    InputEnd,
    /// Ctrl-C or SIGTERM.
    Interrupt,
    /// Something the input side wants the user told (a hint, not an error).
    InputHint(String),

    /// The registry connection is up (from the connector thread), with
    /// what the attempt learnt about the registry addresses.
    RegistryConnected(
        super::link::secure::RegistryStream,
        super::link::dial::Report,
    ),
    /// A connection attempt failed.
    RegistryConnectFailed(String, super::link::dial::Report),
    /// A reply line from the registry (parsed by the reader thread).
    RegistryReply(serde_json::Value),
    /// The registry connection closed or failed.
    RegistryClosed { generation: u64, reason: String },

    /// A partner connected to our listener (and got a connection slot).
    ChatIncoming(super::slots::Incoming),
    /// Our connection to a partner is up, or failed.
    ChatDialed {
        user: String,
        /// The static key the registry vouches for `user`.
        key: [u8; 32],
        result: Result<TcpStream, String>,
    },
    /// Our connection to `user`, to ask for `room`'s history, is up or
    /// failed (see `app::history`).
    HistoryDialed {
        room: String,
        user: String,
        key: [u8; 32],
        result: Result<TcpStream, String>,
    },
    /// The other side of incoming connection `conn` finished the Noise
    /// handshake as `user` (its claim) with static key `key`.
    ChatSecured {
        conn: u64,
        user: String,
        key: [u8; 32],
    },
    /// A message on chat connection `conn`.
    ChatMsg { conn: u64, msg: ChatMsg },
    /// A line on `conn` that is not a chat message (ignored, counted).
    ChatGarbage { conn: u64 },
    /// Chat connection `conn` ended.
    ChatClosed { conn: u64, reason: ConnEnd },

    /// A file transfer thread reports (see `peer::files`).
    File(super::files::Report),
}
