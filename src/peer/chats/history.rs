//! An incoming connection whose first line asks for a room's history
//! (`protocol.md` section 3, "Room history") instead of a chat: the same
//! checks as a `hello` (the name the handshake claimed, the registry's key
//! for it, the caps on pending requests), then handed to the owner with
//! [`Action::HistoryAsked`](super::Action::HistoryAsked), without asking
//! our user. Refusals are logged, not shown.

use super::{Action, Chats, ConnId, Lookup, RejectReason, State, MAX_PENDING, MAX_PENDING_PER_IP};
use crate::protocol::chat::{ChatMsg, CHAT_VERSION};
use crate::protocol::{RoomName, Username};

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
        let Some(me) = self.me.as_deref() else {
            let reason = RejectReason::NotLoggedIn.wire().to_string();
            self.end(conn, Some(ChatMsg::Reject { reason }));
            return;
        };
        let other_name = self.claimed(conn).is_some_and(|u| u != from);
        if Username::parse(&from).is_err()
            || from == me
            || version != CHAT_VERSION
            || RoomName::parse(&ask.room).is_err()
            || other_name
        {
            self.bad_hello(conn);
            return;
        }
        let Some(ip) = self.chats.get(&conn).map(|c| c.addr.ip()) else {
            return;
        };
        let (from_ip, all) = self.pending(ip);
        if from_ip >= MAX_PENDING_PER_IP || all >= MAX_PENDING {
            log::info!("history ask {conn}: {from_ip} pending from {ip}, {all} in all: busy");
            self.end(conn, Some(ChatMsg::Busy));
            return;
        }
        if let Some(c) = self.chats.get_mut(&conn) {
            c.user = from.clone();
            c.state = State::Verifying;
            c.history = Some(ask);
        }
        self.actions.push_back(Action::Lookup {
            user: from,
            purpose: Lookup::Verify { conn },
        });
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
