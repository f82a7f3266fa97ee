//! Who may join a room: the policy a new room starts with (its creator
//! owns it; a password is hashed like an account's), and the checks a
//! `join_room` passes first: bans, the lock, the room password (wrong ones
//! limited as failed logins are), an invite getting past the last two.

use super::policy::Policy;
use super::{api, no_such_room, ConnSession, Registry};
use crate::protocol::*;
use crate::registry::auth;
use std::net::IpAddr;

impl Registry {
    /// `create_room`'s policy: the creator owns the room; a password is
    /// hashed like an account's.
    pub(super) fn room_created(
        &self,
        room: &str,
        creator: &str,
        password_hash: Option<String>,
    ) -> Result<Policy, ApiError> {
        // A policy left by an earlier room of this name must not apply.
        self.store.delete_room_policy(room)?;
        let p = Policy::created(creator, password_hash);
        let doc = serde_json::to_string(&p).map_err(|e| api(ErrorCode::Internal, e.to_string()))?;
        self.store.put_room_policy(room, &doc, 0)?;
        Ok(p)
    }

    /// The hash of a `create_room` password (checked like an account's).
    pub(super) fn room_password_hash(
        &self,
        password: Option<&str>,
    ) -> Result<Option<String>, ApiError> {
        let Some(pw) = password.filter(|p| !p.is_empty()) else {
            return Ok(None);
        };
        auth::check_password(pw)?;
        Ok(Some(self.hasher.hash(pw)?))
    }

    /// `join_room`: bans, the lock and the password are checked before the
    /// membership is added; an invite gets past the lock and the password.
    pub(super) fn join(
        &self,
        me: &ConnSession,
        ip: IpAddr,
        room: &str,
        password: Option<&str>,
    ) -> Result<ReplyBody, ApiError> {
        let members = self.store.room_members(room)?;
        if members.is_empty() {
            return Err(no_such_room(room));
        }
        let already = members.binary_search(&me.username).is_ok();
        let read = self.policy(room)?;
        if !already {
            self.may_join(me, ip, room, &read.0, password)?;
        }
        match self.store.add_member(room, &me.username) {
            Ok(()) => {}
            Err(crate::registry::store::StoreError::NotFound) => return Err(no_such_room(room)),
            Err(e) => return Err(e.into()),
        }
        // Reconciled with the members before this join, so that a room
        // older than roles gets its owner among them, never the newcomer.
        let (_, p) = self.update_read_policy(room, Some(read), Some(&members), |p| {
            p.added(&me.username);
            Ok(())
        })?;
        self.room_reply(room, true, &me.username, Some(p))
    }

    fn may_join(
        &self,
        me: &ConnSession,
        ip: IpAddr,
        room: &str,
        p: &Policy,
        password: Option<&str>,
    ) -> Result<(), ApiError> {
        let name = &me.username;
        if p.bans.contains(name) {
            return Err(api(
                ErrorCode::Banned,
                format!("you are banned from room {room}"),
            ));
        }
        let invited = p.invites.contains(name);
        if p.locked && !invited {
            return Err(api(
                ErrorCode::RoomLocked,
                format!("room {room} is invite-only; ask its owner or an operator to /invite you"),
            ));
        }
        let (Some(hash), false) = (&p.password_hash, invited) else {
            return Ok(());
        };
        let Some(given) = password.filter(|p| !p.is_empty()) else {
            return Err(api(
                ErrorCode::RoomPasswordRequired,
                format!("room {room} needs a password"),
            ));
        };
        let key = format!("{name}#{room}");
        let delay = self.room_limiter.check(&key, ip)?;
        if !delay.is_zero() {
            self.clock.sleep(delay);
        }
        if !self.hasher.verify(given, Some(hash))? {
            self.room_limiter.record_failure(&key, ip);
            log::info!("wrong password for room {room} from {name}");
            return Err(api(
                ErrorCode::WrongRoomPassword,
                format!("wrong password for room {room}"),
            ));
        }
        self.room_limiter.record_success(&key, ip);
        Ok(())
    }
}
