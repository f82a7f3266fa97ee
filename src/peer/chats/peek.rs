//! What the file transfers (`peer::files`) need to know of the chats:
//! which open chat a connection belongs to, and the connection of an open
//! chat with a user. Read-only.

use super::{Chats, ConnId, State};
use std::net::SocketAddr;

impl Chats {
    /// The partner and address of `conn` when its chat is open.
    pub fn open_partner(&self, conn: ConnId) -> Option<(String, SocketAddr)> {
        let c = self.chats.get(&conn)?;
        (c.state == State::Open).then(|| (c.user.clone(), c.addr))
    }

    /// The connection of the open chat with `user`.
    pub fn open_conn(&self, user: &str) -> Option<ConnId> {
        self.find(user, State::Open)
    }
}
