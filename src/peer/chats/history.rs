//! An incoming connection whose first line asks for a room's history
//! (`protocol.md` section 3, "Room history") instead of a chat: the same
//! checks as a `hello` (the name the handshake claimed, the registry's key
//! for it, the caps on pending requests), then handed to the owner with
//! [`Action::HistoryAsked`](super::Action::HistoryAsked), without asking
//! our user. Refusals are logged, not shown.

use super::{Action, Chats, ConnId};
use crate::protocol::RoomName;

/// What an incoming history request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryAsk {
    pub room: String,
    pub count: u32,
}

impl Chats {
    /// The first line on `conn` is a history request.
    pub(super) fn history_hello(
        &mut self,
        conn: ConnId,
        from: String,
        version: u32,
        ask: HistoryAsk,
    ) {
        let bad = RoomName::parse(&ask.room).is_err();
        if let Some(c) = self.admit(conn, from, version, bad) {
            c.history = Some(ask);
        }
    }

    /// The asker of history request `conn` passed the identity check: the
    /// owner answers it (the engine forgets the connection, and does not
    /// close it).
    pub(super) fn history_verified(&mut self, conn: ConnId) {
        let Some(c) = self.chats.remove(&conn) else {
            return;
        };
        if let Some(ask) = c.history {
            self.actions.push_back(Action::HistoryAsked {
                conn,
                from: c.user,
                ask,
            });
        }
    }
}
