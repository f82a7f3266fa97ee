//! Taking sessions offline: a connection that closed, heartbeats that
//! stopped, a restart of this registry instance, and the purge of offline
//! sessions past the resume grace period. Each one also takes the user out
//! of their rooms.

use super::{Conn, Registry};
use crate::registry::auth;
use crate::registry::store::StoreError;

impl Registry {
    /// Removes a user from every room (their session went offline).
    pub fn leave_all_rooms(&self, username: &str) {
        match self.store.rooms_of(username) {
            Ok(rooms) => {
                for room in rooms {
                    match self
                        .store
                        .remove_member(&room, username, &auth::new_token())
                    {
                        Ok(left) if left.room_deleted => {
                            log::info!("room {room} is empty and deleted")
                        }
                        Ok(_) => {}
                        Err(e) => log::warn!("cannot remove {username} from {room}: {e}"),
                    }
                }
            }
            Err(e) => log::warn!("cannot list the rooms of {username}: {e}"),
        }
    }

    pub(super) fn release(&self, token_hash: &str, conn_id: u64) -> bool {
        let mut holders = self.holders.lock().unwrap_or_else(|p| p.into_inner());
        if holders.get(token_hash) == Some(&conn_id) {
            holders.remove(token_hash);
            true
        } else {
            false
        }
    }

    /// A connection closed: its session, if it still holds it, goes offline
    /// at once and leaves its rooms (it can be resumed by its token later).
    pub fn disconnected(&self, conn: &Conn) {
        let Some(hash) = &conn.session else { return };
        if !self.release(hash, conn.id) {
            return;
        }
        match self.store.session_by_token(hash) {
            Ok(Some(s)) => match self.store.detach_session(hash, &self.instance) {
                Ok(true) => {
                    log::info!("{} disconnected without logout; offline", s.username);
                    self.leave_all_rooms(&s.username);
                }
                Ok(false) => {}
                Err(e) => log::warn!("cannot take {} offline: {e}", s.username),
            },
            Ok(None) => {}
            Err(e) => log::warn!("cannot take a closed connection's session offline: {e}"),
        }
    }

    /// Detaches sessions whose heartbeats stopped, removing them from rooms.
    pub fn sweep_stale(&self) -> Result<usize, StoreError> {
        let before = self.now_ms() - self.timeout_ms();
        let mut n = 0;
        for s in self.store.stale_sessions(before)? {
            if self.store.detach_if_stale(&s.token_hash, before)? {
                log::info!("{} timed out (no heartbeat); offline", s.username);
                self.leave_all_rooms(&s.username);
                n += 1;
            }
        }
        Ok(n)
    }

    /// Takes offline the sessions a previous run of this instance left
    /// attached (their connections died with it).
    pub fn detach_own_sessions(&self) -> Result<usize, StoreError> {
        let sessions = self.store.detach_instance(&self.instance)?;
        for s in &sessions {
            self.leave_all_rooms(&s.username);
        }
        Ok(sessions.len())
    }

    /// Deletes offline sessions past the resume grace period.
    pub fn purge_old(&self) -> Result<u64, StoreError> {
        self.store
            .purge_sessions(self.now_ms() - self.config.resume_grace.as_millis() as i64)
    }
}
