//! Taking sessions offline: a connection that closed, heartbeats that
//! stopped, a restart of this registry instance, and the purge of offline
//! sessions past the resume grace period. Each one also takes the user out
//! of their rooms.

use super::{Conn, Registry};
use crate::registry::store::StoreError;

impl Registry {
    /// Removes a user from every room (their session went offline). What the
    /// store refuses is retried by [`Registry::retry_unfinished_leaves`]: a
    /// member left in a room after its session ended would be sealed the
    /// next key.
    pub fn leave_all_rooms(&self, username: &str) {
        if !self.try_leave_all_rooms(username) {
            self.unfinished().insert(username.to_string());
        }
    }

    /// False if the store refused any part (nothing else is undone).
    fn try_leave_all_rooms(&self, username: &str) -> bool {
        let rooms = match self.store.rooms_of(username) {
            Ok(rooms) => rooms,
            Err(e) => {
                log::warn!("cannot list the rooms of {username}: {e}; will retry");
                return false;
            }
        };
        let mut done = true;
        for room in rooms {
            match self.store.remove_member(&room, username, "") {
                Ok(left) => {
                    if left.room_deleted {
                        log::info!("room {room} is empty and deleted");
                    }
                    self.member_gone(&room, username, left, true);
                }
                Err(e) => {
                    log::warn!("cannot remove {username} from {room}: {e}; will retry");
                    done = false;
                }
            }
        }
        done
    }

    fn unfinished(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeSet<String>> {
        self.unfinished_leaves
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Retries the room leaves the store refused, for users still offline
    /// (one who came back holds their rooms again). Called by the presence
    /// loop once heartbeats could be written, so the store answers again.
    pub fn retry_unfinished_leaves(&self) {
        let names = std::mem::take(&mut *self.unfinished());
        for name in names {
            let back = match self.store.session_by_user(&name) {
                Ok(s) => s.is_some_and(|s| s.attached),
                Err(_) => {
                    self.unfinished().insert(name);
                    continue;
                }
            };
            if !back && !self.try_leave_all_rooms(&name) {
                self.unfinished().insert(name);
            }
        }
    }

    /// A connection closed: its session, if it still holds it, goes offline
    /// at once and leaves its rooms (it can be resumed by its token later).
    pub fn disconnected(&self, conn: &Conn) {
        let Some(held) = &conn.session else { return };
        if !self.presence.release(&held.token_hash, conn.id) {
            return;
        }
        let name = &held.username;
        // Only if still attached here: never takes down a session that
        // moved to another instance.
        match self.store.detach_session(&held.token_hash, &self.instance) {
            Ok(true) => {
                log::info!("{name} disconnected without logout; offline");
                self.leave_all_rooms(name);
            }
            Ok(false) => {}
            Err(e) => log::warn!("cannot take {name} offline: {e}"),
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
