//! The chat engine's side of the secure channel (`protocol::secure`): the
//! key an incoming connection's handshake showed, and the keys the
//! registry vouches for, compared before a request is shown.

use super::{ChatError, Chats, ConnId, State};
use crate::identity::unhex32;
use crate::protocol::UserInfo;

impl Chats {
    /// Incoming connection `conn` finished its handshake: the other side
    /// claims to be `user` and holds static key `key`.
    pub fn secured(&mut self, conn: ConnId, user: String, key: [u8; 32]) {
        if let Some(c) = self.chats.get_mut(&conn) {
            if c.state == State::Hello {
                c.secured = Some((user, key));
            }
        }
    }

    /// The name the handshake of `conn` claimed, when there was one.
    pub(super) fn claimed(&self, conn: ConnId) -> Option<&str> {
        let c = self.chats.get(&conn)?;
        c.secured.as_ref().map(|(u, _)| u.as_str())
    }

    /// Whether `conn`'s static key is the one `info` vouches for; the
    /// refusal when not.
    pub(super) fn key_check(&self, conn: ConnId, info: &UserInfo) -> Result<(), ChatError> {
        let user = info.username.clone();
        let Some(vouched) = info.keys.as_ref() else {
            return Err(ChatError::NeedsUpgrade { user, unsent: 0 });
        };
        let shown = self.chats.get(&conn).and_then(|c| c.secured.as_ref());
        match (unhex32(&vouched.kx), shown) {
            (Some(k), Some((_, key))) if k == *key => Ok(()),
            _ => Err(ChatError::KeyMismatch { user }),
        }
    }

    /// The key to expect of `user` from a registry answer; the refusal
    /// (a version-1 peer, or keys that do not parse) when there is none.
    pub(super) fn vouched_key(info: &UserInfo, unsent: usize) -> Result<[u8; 32], ChatError> {
        let user = info.username.clone();
        let keys = info.keys.as_ref().ok_or(ChatError::NeedsUpgrade {
            user: user.clone(),
            unsent,
        })?;
        unhex32(&keys.kx).ok_or(ChatError::KeyMismatch { user })
    }
}
